//! Progress bars on stderr, one per phase (the binary's [`Reporter`]).

use super::Reporter;
use indicatif::{ProgressBar, ProgressStyle};

/// Progress bars on stderr, one per phase; each phase's summary is printed as a line when it ends.
#[derive(Default)]
pub struct Bars {
    bar: Option<ProgressBar>,
    /// Lines printed when the first phase starts — once every input has been checked, so a run
    /// refused for a bad input prints its one error line and nothing else.
    pub header: Vec<String>,
}

impl Bars {
    /// Bars that print `header` (one line each) when the first phase starts.
    pub fn with_header(header: Vec<String>) -> Bars {
        Bars { bar: None, header }
    }
}

impl Reporter for Bars {
    fn phase(&mut self, name: &str, total: u64) {
        for line in self.header.drain(..) {
            eprintln!("{line}");
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{prefix:>28} [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_prefix(name.to_string());
        self.bar = Some(b);
    }
    fn progress(&mut self, pos: u64, status: &str) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
            b.set_message(status.to_string());
        }
    }
    fn finish(&mut self, summary: &str) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        eprintln!("{summary}");
    }
}
