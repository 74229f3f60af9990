//! A report as a small document — headings, paragraphs, lists, tables, preformatted text and
//! figures — written out twice from the same blocks: as Markdown (figures linked as files beside
//! it) and as one self-contained HTML page (figures inline as SVG, no scripts, no network, a short
//! stylesheet for screens and for print). Inline text knows `**bold**` and `` `code` `` only.

/// Escape text for XML and HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table; `right[i]` aligns column i to the right (numbers).
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// A figure: the file it is saved as (linked from Markdown) and its SVG (inlined in HTML).
#[derive(Clone, Debug)]
pub struct FigureBlock {
    pub file: String,
    pub title: String,
    pub caption: String,
    pub svg: String,
}

/// One block of a document.
#[derive(Clone, Debug)]
pub enum Block {
    /// Level 2 or 3.
    Heading(u8, String),
    Para(String),
    List(Vec<String>),
    Table(Table),
    /// Preformatted text (a configuration), with its language for Markdown's fence.
    Pre(String, String),
    Figure(FigureBlock),
}

/// A document: a title and its blocks.
#[derive(Clone, Debug, Default)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:1180px;margin:2em auto;padding:0 1.2em;color:#1a1a1a;line-height:1.45}\
h1{font-size:1.7em;border-bottom:2px solid #0072b2;padding-bottom:.2em}\
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}\
th,td{border:1px solid #ccc;padding:.28em .6em}th{background:#eef3f8;text-align:left}\
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafafa}\
code,pre{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:.9em}\
pre{background:#f6f6f6;border:1px solid #ddd;padding:.8em;overflow-x:auto;white-space:pre-wrap}\
figure{margin:1.5em 0;page-break-inside:avoid;break-inside:avoid}\
figure svg{max-width:100%;height:auto;display:block;border:1px solid #e4e4e4}\
figcaption{font-size:.92em;color:#333;margin-top:.4em}\
@media print{body{max-width:none;margin:0}h2{page-break-after:avoid;break-after:avoid}\
pre{white-space:pre-wrap}a{color:inherit}}";

/// Inline Markdown (`**bold**`, `` `code` ``) as HTML; everything else escaped.
fn inline_html(s: &str) -> String {
    let mut out = String::new();
    let (mut bold, mut code) = (false, false);
    let mut rest = s;
    while !rest.is_empty() {
        if !code && rest.starts_with("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = &rest[2..];
        } else if rest.starts_with('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push_str(&escape(c.encode_utf8(&mut [0; 4])));
            rest = &rest[c.len_utf8()..];
        }
    }
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

/// Text for a Markdown table cell (a `|` would end the cell).
fn cell_md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The SVG of a figure without an XML declaration, ready to inline.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

impl Doc {
    /// The document as Markdown; figures are linked by their file names.
    pub fn markdown(&self) -> String {
        format!("# {}\n\n{}", self.title, self.markdown_body())
    }

    /// The blocks as Markdown, without the title (a part of another page).
    pub fn markdown_body(&self) -> String {
        let mut s = String::new();
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            match b {
                Block::Heading(level, t) => {
                    s.push_str(&format!("{} {t}\n", "#".repeat(*level as usize)))
                }
                Block::Para(t) => s.push_str(&format!("{t}\n")),
                Block::List(items) => {
                    for i in items {
                        s.push_str(&format!("- {i}\n"));
                    }
                }
                Block::Table(t) => {
                    let row = |cells: &[String]| {
                        let c: Vec<String> = cells.iter().map(|c| cell_md(c)).collect();
                        format!("| {} |\n", c.join(" | "))
                    };
                    s.push_str(&row(&t.header));
                    let rule: Vec<&str> = (0..t.header.len())
                        .map(|i| {
                            if t.right.get(i).copied().unwrap_or(false) {
                                "--:"
                            } else {
                                "---"
                            }
                        })
                        .collect();
                    s.push_str(&format!("|{}|\n", rule.join("|")));
                    for r in &t.rows {
                        s.push_str(&row(r));
                    }
                }
                Block::Pre(lang, t) => s.push_str(&format!("```{lang}\n{t}\n```\n")),
                Block::Figure(f) => {
                    s.push_str(&format!("![{}]({})\n\n*{}*\n", f.title, f.file, f.caption))
                }
            }
        }
        s
    }

    /// The document as one self-contained HTML page.
    pub fn html(&self) -> String {
        let mut s = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        for b in &self.blocks {
            match b {
                Block::Heading(level, t) => {
                    s.push_str(&format!("<h{level}>{}</h{level}>\n", inline_html(t)))
                }
                Block::Para(t) => s.push_str(&format!("<p>{}</p>\n", inline_html(t))),
                Block::List(items) => {
                    s.push_str("<ul>\n");
                    for i in items {
                        s.push_str(&format!("<li>{}</li>\n", inline_html(i)));
                    }
                    s.push_str("</ul>\n");
                }
                Block::Table(t) => {
                    let class = |i: usize| {
                        if t.right.get(i).copied().unwrap_or(false) {
                            " class=\"r\""
                        } else {
                            ""
                        }
                    };
                    s.push_str("<table>\n<thead><tr>");
                    for (i, h) in t.header.iter().enumerate() {
                        s.push_str(&format!("<th{}>{}</th>", class(i), inline_html(h)));
                    }
                    s.push_str("</tr></thead>\n<tbody>\n");
                    for r in &t.rows {
                        s.push_str("<tr>");
                        for (i, c) in r.iter().enumerate() {
                            s.push_str(&format!("<td{}>{}</td>", class(i), inline_html(c)));
                        }
                        s.push_str("</tr>\n");
                    }
                    s.push_str("</tbody>\n</table>\n");
                }
                Block::Pre(_, t) => s.push_str(&format!("<pre>{}</pre>\n", escape(t))),
                Block::Figure(f) => s.push_str(&format!(
                    "<figure id=\"{}\">\n{}\n<figcaption><strong>{}.</strong> {} (file: <code>{}</code>)</figcaption>\n</figure>\n",
                    escape(f.file.trim_end_matches(".svg")),
                    inline_svg(&f.svg).trim_end(),
                    escape(&f.title),
                    inline_html(&f.caption),
                    escape(&f.file)
                )),
            }
        }
        s.push_str("</body>\n</html>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_carry_the_same_blocks() {
        let d = Doc {
            title: "T <1>".into(),
            blocks: vec![
                Block::Heading(2, "Tables".into()),
                Block::Para("a **bold** `x|y` & c".into()),
                Block::Table(Table {
                    header: vec!["name".into(), "value".into()],
                    right: vec![false, true],
                    rows: vec![vec!["a|b".into(), "1.5".into()]],
                }),
                Block::Figure(FigureBlock {
                    file: "f.svg".into(),
                    title: "Fig".into(),
                    caption: "what it shows".into(),
                    svg: "<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>".into(),
                }),
            ],
        };
        let md = d.markdown();
        assert!(md.starts_with("# T <1>\n"));
        assert!(md.contains("| name | value |\n|---|--:|\n| a\\|b | 1.5 |\n"));
        assert!(md.contains("![Fig](f.svg)"));
        let html = d.html();
        assert!(html.contains("<title>T &lt;1&gt;</title>"));
        assert!(html.contains("<p>a <strong>bold</strong> <code>x|y</code> &amp; c</p>"));
        assert!(html.contains("<td class=\"r\">1.5</td>"));
        assert!(html.contains("<figure id=\"f\">\n<svg width=\"1\"></svg>"));
        assert!(!html.contains("<?xml") && !html.contains("<script"));
    }
}
