//! Progress of long work: the [`Reporter`] every long command reports to, and [`Bars`], the
//! binary's: bars on stderr on a terminal; plain lines otherwise (a log file, CI), where a bar
//! would print nothing until the end of a phase.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Where long work reports progress (the binary draws progress bars; tests stay silent).
pub trait Reporter {
    /// A phase of `total` units starts.
    fn phase(&mut self, name: &str, total: u64);
    /// Progress within the phase, with a short status (loss, speed).
    fn progress(&mut self, pos: u64, status: &str);
    /// The phase ended with a one-line summary.
    fn finish(&mut self, summary: &str);
}

/// A reporter that says nothing.
pub struct Silent;

impl Reporter for Silent {
    fn phase(&mut self, _: &str, _: u64) {}
    fn progress(&mut self, _: u64, _: &str) {}
    fn finish(&mut self, _: &str) {}
}

/// A duration as a person writes it: seconds (`600`, `90s`), minutes (`30m`), hours (`2h`), or
/// hours and minutes (`1h30m`); at least one second and at most 30 days.
pub fn parse_duration(s: &str) -> crate::Result<Duration> {
    let bad = || {
        crate::Error::invalid(format!(
            "duration '{}': give seconds (600, 90s), minutes (30m), hours (2h) or both (1h30m), from 1 s to 30 days",
            s.escape_debug()
        ))
    };
    let mut total = 0f64;
    let mut num = String::new();
    let mut units = 0;
    for c in s.trim().chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' => {
                let v: f64 = num.parse().map_err(|_| bad())?;
                total += v * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
                units += 1;
            }
            _ => return Err(bad()),
        }
    }
    match (num.is_empty(), units) {
        // A bare number is seconds; a number after a unit (`1h30`) is ambiguous.
        (false, 0) => total = num.parse::<f64>().map_err(|_| bad())?,
        (true, n) if n > 0 => {}
        _ => return Err(bad()),
    }
    if !(1.0..=30.0 * 86_400.0).contains(&total) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Progress on stderr: a bar per phase when stderr is a terminal, else [`Lines`]. Each phase's
/// summary is printed as a line when it ends.
pub struct Bars {
    mode: Mode,
    /// Lines printed when the first phase starts — once every input has been checked, so a run
    /// refused for a bad input prints its one error line and nothing else.
    pub header: Vec<String>,
}

enum Mode {
    Bar(Option<ProgressBar>),
    Lines(Lines<std::io::Stderr>),
}

impl Default for Bars {
    fn default() -> Self {
        Bars::with_header(Vec::new())
    }
}

impl Bars {
    /// Bars that print `header` (one line each) when the first phase starts.
    pub fn with_header(header: Vec<String>) -> Bars {
        let stderr = std::io::stderr();
        Bars {
            mode: if stderr.is_terminal() {
                Mode::Bar(None)
            } else {
                Mode::Lines(Lines::new(stderr))
            },
            header,
        }
    }
}

impl Reporter for Bars {
    fn phase(&mut self, name: &str, total: u64) {
        for line in self.header.drain(..) {
            eprintln!("{line}");
        }
        match &mut self.mode {
            Mode::Lines(l) => l.phase(name, total),
            Mode::Bar(bar) => {
                if let Some(b) = bar.take() {
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
                *bar = Some(b);
            }
        }
    }
    fn progress(&mut self, pos: u64, status: &str) {
        match &mut self.mode {
            Mode::Lines(l) => l.progress(pos, status),
            Mode::Bar(Some(b)) => {
                b.set_position(pos);
                b.set_message(status.to_string());
            }
            Mode::Bar(None) => {}
        }
    }
    fn finish(&mut self, summary: &str) {
        match &mut self.mode {
            Mode::Lines(l) => l.finish(summary),
            Mode::Bar(bar) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                eprintln!("{summary}");
            }
        }
    }
}

/// Progress as plain lines: a line when a phase starts, one at about every 10 % of it and at
/// least one every [`Lines::every`] while it runs (each with the position, the status — loss and
/// speed —, the elapsed time and an ETA), and its summary when it ends.
pub struct Lines<W: Write> {
    out: W,
    clock: Box<dyn Fn() -> Duration + Send>,
    /// The longest silence during a phase (30 s).
    pub every: Duration,
    name: String,
    total: u64,
    start: Duration,
    last: Duration,
    next_mark: u64,
}

/// `1h02m`, `3m07s`, `12s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl<W: Write> Lines<W> {
    /// Lines to `out`, timed by the wall clock.
    pub fn new(out: W) -> Self {
        let t0 = Instant::now();
        Self::with_clock(out, Box::new(move || t0.elapsed()))
    }

    /// Lines to `out`, timed by `clock` (time since some fixed start).
    pub fn with_clock(out: W, clock: Box<dyn Fn() -> Duration + Send>) -> Self {
        Lines {
            out,
            clock,
            every: Duration::from_secs(30),
            name: String::new(),
            total: 0,
            start: Duration::ZERO,
            last: Duration::ZERO,
            next_mark: 0,
        }
    }

    /// The writer (what the lines went to).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn mark_after(&self, pos: u64) -> u64 {
        let t = self.total.max(1);
        // The next multiple of 10 % strictly after pos.
        ((pos * 10 / t + 1) * t).div_ceil(10)
    }
}

impl<W: Write> Reporter for Lines<W> {
    fn phase(&mut self, name: &str, total: u64) {
        let now = (self.clock)();
        self.name = name.to_string();
        self.total = total;
        self.start = now;
        self.last = now;
        self.next_mark = self.mark_after(0);
        // A phase of one unit is a reused result: its summary line follows at once.
        if total > 1 {
            let _ = writeln!(self.out, "{name}: started ({total} steps)");
        }
    }

    fn progress(&mut self, pos: u64, status: &str) {
        let now = (self.clock)();
        if pos < self.next_mark && now.saturating_sub(self.last) < self.every {
            return;
        }
        let spent = now.saturating_sub(self.start);
        let eta = if pos > 0 && pos < self.total {
            let left = spent.as_secs_f64() * (self.total - pos) as f64 / pos as f64;
            format!(", ETA {}", human(Duration::from_secs_f64(left)))
        } else {
            String::new()
        };
        let pct = 100 * pos / self.total.max(1);
        let _ = writeln!(
            self.out,
            "{}: {pos}/{} ({pct}%) {}  [{}{eta}]",
            self.name,
            self.total,
            status.trim(),
            human(spent)
        );
        self.last = now;
        self.next_mark = self.mark_after(pos);
    }

    fn finish(&mut self, summary: &str) {
        let _ = writeln!(self.out, "{summary}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn durations_as_written() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs_f64()).ok();
        assert_eq!(secs("600"), Some(600.0));
        assert_eq!(secs("90s"), Some(90.0));
        assert_eq!(secs("30m"), Some(1800.0));
        assert_eq!(secs("2h"), Some(7200.0));
        assert_eq!(secs("1h30m"), Some(5400.0));
        assert_eq!(secs(" 1.5m "), Some(90.0));
        for bad in [
            "", "0", "0s", "1h30", "ten", "5d", "-5", "1e9", "31000000", "m",
        ] {
            assert_eq!(secs(bad), None, "{bad:?} was accepted");
        }
    }

    #[test]
    fn lines_come_every_tenth_and_at_least_every_30_seconds() {
        let now = Arc::new(AtomicU64::new(0));
        let n = now.clone();
        let mut l = Lines::with_clock(
            Vec::new(),
            Box::new(move || Duration::from_secs(n.load(Ordering::SeqCst))),
        );
        // A fast phase: 1000 steps of 10 ms → 10 progress lines, at 10 %, 20 %, … 100 %.
        l.phase("fast", 1000);
        for pos in 1..=1000 {
            now.store(pos / 100, Ordering::SeqCst);
            l.progress(pos, "loss 1.0");
        }
        l.finish("fast: done");
        // A slow phase: 100 steps of 7 s → a line at least every 30 s though 10 % takes 70 s.
        l.phase("slow", 100);
        let t0 = now.load(Ordering::SeqCst);
        for pos in 1..=100 {
            now.store(t0 + 7 * pos, Ordering::SeqCst);
            l.progress(pos, "loss 2.0");
        }
        l.phase("reused", 1);
        l.finish("reused: reused");
        let text = String::from_utf8(l.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "fast: started (1000 steps)");
        let fast: Vec<&&str> = lines.iter().filter(|l| l.contains("/1000 ")).collect();
        assert_eq!(fast.len(), 10, "{text}");
        assert!(
            fast[0].starts_with("fast: 100/1000 (10%) loss 1.0  [1s, ETA 9s]"),
            "{text}"
        );
        assert!(lines.contains(&"fast: done"));
        let slow: Vec<&&str> = lines.iter().filter(|l| l.contains("/100 ")).collect();
        // 700 s at one line per ≤ 35 s (the first step past 30 s) plus the 10 % marks.
        assert_eq!(slow.len(), 20, "{text}"); // every 5 steps (35 s), 10 % marks among them
        assert!(
            slow[0].starts_with("slow: 5/100 (5%) loss 2.0  [35s, ETA 11m05s]"),
            "{text}"
        );
        assert!(!text.contains("reused: started"));
        assert!(text.ends_with("reused: reused\n"));
    }
}
