//! Outputs: figures (SVG) and the report document written as Markdown and HTML.
//! What a run measured is the pipeline's; this module knows charts and pages only.

mod bars;
pub mod doc;
pub mod maps;
pub mod plot;
pub mod render;
