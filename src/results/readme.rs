//! A run's results quoted on another page (the README's "What `run` shows"): the run's facts, its
//! test accuracies and the paper's claims with their verdicts, written between two marker lines
//! by `symclone-gpu report RUN --readme FILE`, so the page shows what the run wrote, not numbers
//! typed by hand.

use super::compare;
use super::types::Report;
use crate::files::write_atomic;
use crate::report::doc::{Block, Doc, Table};
use crate::{Error, Result};
use std::path::Path;

/// The line before the block.
pub const BEGIN: &str =
    "<!-- a run's results: written by `symclone-gpu report RUN --readme FILE`; edits here are lost -->";
/// The line after it.
pub const END: &str = "<!-- end of the run's results -->";

/// The block for the report of the run in `dir` (named as given, so the page says which run).
pub fn summary(r: &Report, dir: &str) -> String {
    let c = &r.config;
    let mut blocks = vec![Block::Para(format!(
        "`symclone-gpu run` ({} preset, {} seed{}, config hash {}), {}, through {}: **{:.0} s** in \
         all. Written from `{dir}/report.json` by `symclone-gpu report {dir} --readme`.",
        c.preset,
        c.seeds,
        if c.seeds == 1 { "" } else { "s" },
        r.config_hash,
        r.version,
        r.adapter,
        r.seconds
    ))];
    if let Some(why) = &r.incomplete {
        blocks.push(Block::Para(format!("**Incomplete:** {why}.")));
    }
    blocks.push(Block::Table(Table {
        header: ["task", "model", "test accuracy", "train time"]
            .map(String::from)
            .to_vec(),
        right: vec![false, false, true, true],
        rows: r
            .results
            .iter()
            .map(|m| {
                vec![
                    m.task.clone(),
                    m.model.to_string(),
                    if m.test_acc.len() > 1 {
                        format!("{:.2} ± {:.2} %", 100.0 * m.mean, 100.0 * m.std)
                    } else {
                        format!("{:.2} %", 100.0 * m.mean)
                    },
                    format!("{:.0} s", m.train_seconds),
                ]
            })
            .collect(),
    }));
    if let Some(worst) = r
        .clones
        .iter()
        .map(|c| c.best_relative_mse)
        .max_by(|a, b| a.total_cmp(b))
    {
        blocks.push(Block::Para(format!(
            "{} clones; the worst ends at {worst:.1e} relative MSE.",
            r.clones.len()
        )));
    }
    // The claims' table, under the page's own heading level.
    for b in compare::section(&r.results) {
        blocks.push(match b {
            Block::Heading(_, t) => Block::Heading(3, t),
            other => other,
        });
    }
    Doc {
        title: String::new(),
        blocks,
    }
    .markdown_body()
}

/// `page` with the text between its [`BEGIN`] and [`END`] lines replaced by `block`; an error
/// naming what is missing when the page lacks either line or has them out of order.
pub fn splice(page: &str, block: &str) -> Result<String> {
    let begin = page.find(BEGIN);
    let end = page.find(END);
    match (begin, end) {
        (Some(b), Some(e)) if b < e => Ok(format!(
            "{}{BEGIN}\n\n{}\n{}",
            &page[..b],
            block.trim_end(),
            &page[e..]
        )),
        _ => Err(Error::invalid(format!(
            "the page has no block to write into: it needs the line `{BEGIN}` and, after it, the line `{END}`"
        ))),
    }
}

/// Write the summary of the run in `dir` into the page at `page`, between its markers.
pub fn write_into(page: &Path, r: &Report, dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(page).map_err(|e| Error::io(page, e))?;
    let name = dir.to_string_lossy();
    let new = splice(&text, &summary(r, name.trim_end_matches('/'))).map_err(|_| {
        Error::invalid(format!(
            "{}: no block to write into: it needs the line `{BEGIN}` and, after it, the line `{END}`",
            page.display()
        ))
    })?;
    write_atomic(page, new.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_between_the_markers_is_replaced_and_the_rest_kept() {
        let page = format!("# Title\n\ntext\n\n{BEGIN}\n\nold table\n\n{END}\n\nafter\n");
        let out = splice(&page, "new table\n").unwrap();
        assert_eq!(
            out,
            format!("# Title\n\ntext\n\n{BEGIN}\n\nnew table\n{END}\n\nafter\n")
        );
        // Again: the same page (the block is replaced, not added).
        assert_eq!(splice(&out, "new table").unwrap(), out);
        for bad in [
            "no markers".to_string(),
            format!("{END}\n{BEGIN}\n"),
            format!("{BEGIN}\nonly the first\n"),
        ] {
            assert!(splice(&bad, "x").is_err(), "{bad}");
        }
    }
}
