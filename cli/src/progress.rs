//! Progress on stderr: a bar for a long download on a terminal, and with
//! `-Z` one line per running transfer (indicatif).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pollhttp::{Completed, RequestId, RequestProgress, RequestResult, Status};

use crate::plan::Transfer;

/// `-Z` on a terminal: a line per running transfer, and one for each that
/// ends.
pub(crate) struct Bars {
    pub(crate) multi: Option<MultiProgress>,
    pub(crate) bars: HashMap<RequestId, ProgressBar>,
}

impl Bars {
    pub(crate) fn new(on: bool) -> Bars {
        Bars {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: HashMap::new(),
        }
    }

    pub(crate) fn update(&mut self, id: RequestId, t: &Transfer, p: RequestProgress) {
        let Some(multi) = &self.multi else { return };
        // A transfer still waiting for a connection has no line yet.
        if p.status == Status::Disconnected && p.downloaded == 0 {
            return;
        }
        let style = |sized: bool| {
            let template = if sized {
                "{prefix:32} {bytes:>10}/{total_bytes:10} [{bar:30}] {bytes_per_sec:>12} {msg}"
            } else {
                "{prefix:32} {bytes:>10} {spinner} {bytes_per_sec:>12} {msg}"
            };
            ProgressStyle::with_template(template).map(|s| s.progress_chars("=> "))
        };
        let pb = self.bars.entry(id).or_insert_with(|| {
            let pb = multi.add(ProgressBar::no_length());
            if let Ok(s) = style(false) {
                pb.set_style(s);
            }
            pb.set_prefix(short(&t.label, 32));
            pb
        });
        // The length is known once the head arrives (and changes after a
        // redirect).
        if pb.length() != p.body_size {
            if let Ok(s) = style(p.body_size.is_some()) {
                pb.set_style(s);
            }
            match p.body_size {
                Some(n) => pb.set_length(n),
                None => pb.unset_length(),
            }
        }
        pb.set_message(format!("{:?}", p.status));
        pb.set_position(p.downloaded);
    }

    pub(crate) fn end(&mut self, id: RequestId, t: &Transfer, done: &Completed) {
        let Some(multi) = &self.multi else { return };
        if let Some(pb) = self.bars.remove(&id) {
            pb.finish_and_clear();
            multi.remove(&pb);
        }
        let what = if done.result == RequestResult::Success {
            format!(
                "HTTP {} {}",
                done.response_code(),
                human_bytes(done.body_bytes)
            )
        } else {
            format!("{}: {}", done.result, done.reason)
        };
        let _ = multi.println(format!("{} {what}", short(&t.label, 32)));
    }
}

pub(crate) fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(n - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

pub(crate) fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Which of curl's meters a transfer draws on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MeterKind {
    /// curl's default meter: two header lines, then one line redrawn
    /// (`\r`) about once a second and once at the end, then a newline.
    Classic,
    /// `-#`: a line of `#` with the percentage (`\r` redrawn), or a
    /// moving `-=O=-` when the size is not known.
    Bar,
}

/// The sizes a meter line shows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sizes {
    /// The response body's length, when known.
    pub(crate) dl_total: Option<u64>,
    pub(crate) dl: u64,
    /// The request body's length, when known.
    pub(crate) ul_total: Option<u64>,
    pub(crate) ul: u64,
}

/// curl's progress meter for one transfer, on stderr (curl's
/// `lib/progress.c` and, for `-#`, `src/tool_cb_prg.c`).
pub(crate) struct Meter {
    kind: MeterKind,
    start: Instant,
    /// When the line was last drawn (`None`: not yet).
    drawn: Option<Instant>,
    /// `-#`: the line's width (curl's: `COLUMNS`, else 79).
    width: usize,
    /// `-#` without a size: the fly's position and direction.
    tick: usize,
}

impl Meter {
    /// A meter started now: the classic meter draws its header at once.
    pub(crate) fn start(kind: MeterKind) -> Meter {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w > 20)
            .unwrap_or(79)
            .min(256);
        if kind == MeterKind::Classic {
            eprint!("{}", classic_header());
        }
        Meter {
            kind,
            start: Instant::now(),
            drawn: None,
            width,
            tick: 0,
        }
    }

    /// Redraws the line when a second passed since it was last drawn (or
    /// it never was).
    pub(crate) fn update(&mut self, sizes: Sizes) {
        let now = Instant::now();
        if self
            .drawn
            .is_some_and(|d| now.duration_since(d) < Duration::from_secs(1))
        {
            return;
        }
        self.drawn = Some(now);
        self.draw(sizes, now);
    }

    /// The last line (with the final sizes), then the newline.
    pub(crate) fn finish(mut self, sizes: Sizes) {
        self.draw(sizes, Instant::now());
        eprintln!();
    }

    fn draw(&mut self, sizes: Sizes, now: Instant) {
        let spent = now.duration_since(self.start).as_secs_f64();
        let line = match self.kind {
            MeterKind::Classic => classic_line(sizes, spent),
            MeterKind::Bar => {
                let point = sizes.dl + sizes.ul;
                let total = sizes.dl_total.unwrap_or(0) + sizes.ul_total.unwrap_or(0);
                if total > 0 {
                    bar_line(point.min(total), total, self.width)
                } else {
                    self.tick += 1;
                    fly_line(self.tick, self.width)
                }
            }
        };
        eprint!("{line}");
    }
}

/// The classic meter's two header lines, as curl prints them.
pub(crate) fn classic_header() -> &'static str {
    "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n\
     \x20                                Dload  Upload   Total   Spent    Left  Speed\n"
}

/// One classic meter line (`\r` first): the percentages and sizes (total,
/// received, sent), the average speeds, the times (total estimated, spent,
/// left) and the current speed, each field as wide as curl's.
pub(crate) fn classic_line(s: Sizes, spent: f64) -> String {
    let percent = |cur: u64, total: Option<u64>| match total {
        Some(t) if t > 0 => cur.min(t) * 100 / t,
        _ => 0,
    };
    let total = match (s.dl_total, s.ul_total) {
        (None, None) => None,
        (d, u) => Some(d.unwrap_or(0) + u.unwrap_or(0)),
    };
    let whole = spent.max(0.0);
    let speed = |n: u64| {
        if whole > 0.0 {
            (n as f64 / whole) as u64
        } else {
            n
        }
    };
    let (dl_speed, ul_speed) = (speed(s.dl), speed(s.ul));
    let secs = whole as u64;
    // With a known size, the total time is estimated from the speed so far.
    let (total_time, left) = match (total, dl_speed.max(ul_speed)) {
        (Some(t), v) if t > 0 && v > 0 => {
            let estimate = t / v;
            (estimate, estimate.saturating_sub(secs))
        }
        _ => (0, 0),
    };
    let done = s.dl + s.ul;
    format!(
        "\r{:3} {}  {:3} {}  {:3} {}  {}  {} {} {} {} {}",
        percent(done, total),
        max5(total.unwrap_or(0)),
        percent(s.dl, s.dl_total),
        max5(s.dl),
        percent(s.ul, s.ul_total),
        max5(s.ul),
        max5(dl_speed),
        max5(ul_speed),
        time8(total_time),
        time8(secs),
        time8(left),
        max5(dl_speed.max(ul_speed)),
    )
}

/// A byte count in five characters, curl's `max5data`: `12345`, ` 976k`,
/// `12.3M`, ` 123M`, `12.3G`...
pub(crate) fn max5(n: u64) -> String {
    const K: u64 = 1024;
    const M: u64 = K * K;
    const G: u64 = M * K;
    const T: u64 = G * K;
    if n < 100_000 {
        format!("{n:5}")
    } else if n < 10_000 * K {
        format!("{:4}k", n / K)
    } else if n < 100 * M {
        format!("{:2}.{}M", n / M, (n % M) / (M / 10))
    } else if n < 10_000 * M {
        format!("{:4}M", n / M)
    } else if n < 100 * G {
        format!("{:2}.{}G", n / G, (n % G) / (G / 10))
    } else if n < 10_000 * G {
        format!("{:4}G", n / G)
    } else if n < 10_000 * T {
        format!("{:4}T", n / T)
    } else {
        format!("{:4}P", n / (T * K))
    }
}

/// Seconds in eight characters, curl's `time2str`: `--:--:--` for none,
/// ` 0:00:07`, then days (`  3d 04h`).
pub(crate) fn time8(secs: u64) -> String {
    if secs == 0 {
        return "--:--:--".to_string();
    }
    let h = secs / 3600;
    if h <= 99 {
        return format!("{h:2}:{:02}:{:02}", (secs % 3600) / 60, secs % 60);
    }
    let d = secs / 86_400;
    if d <= 999 {
        format!("{d:3}d {:02}h", (secs % 86_400) / 3600)
    } else {
        format!("{d:7}d")
    }
}

/// `-#` with a known size: `#` for the share done over `width - 7`
/// columns, then the percentage with one decimal (curl's).
pub(crate) fn bar_line(point: u64, total: u64, width: usize) -> String {
    let bar = width.saturating_sub(7);
    let frac = point as f64 / total as f64;
    let n = ((bar as f64) * frac) as usize;
    format!("\r{:<bar$} {:5.1}%", "#".repeat(n.min(bar)), frac * 100.0)
}

/// `-#` without a size: `-=O=-` moving back and forth over the line.
pub(crate) fn fly_line(tick: usize, width: usize) -> String {
    let span = width.saturating_sub(7).max(1);
    let pos = tick % (2 * span);
    let at = if pos < span { pos } else { 2 * span - pos };
    format!("\r{:at$}-=O=-{:rest$}", "", "", rest = span - at.min(span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_meter_is_curls_to_the_column() {
        // curl 7.88's own output for a 3-byte download at 4830 bytes/s.
        assert_eq!(
            classic_header(),
            "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n\
             \x20                                Dload  Upload   Total   Spent    Left  Speed\n"
        );
        assert_eq!(classic_header().lines().nth(1).unwrap().find('D'), Some(33));
        let start = classic_line(Sizes::default(), 0.0);
        assert_eq!(
            start,
            "\r  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0"
        );
        let done = Sizes {
            dl_total: Some(3),
            dl: 3,
            ..Sizes::default()
        };
        assert_eq!(
            classic_line(done, 3.0 / 4830.5),
            "\r100     3  100     3    0     0   4830      0 --:--:-- --:--:-- --:--:--  4830"
        );
        // A megabyte in two seconds of an estimated four.
        let half = Sizes {
            dl_total: Some(2 << 20),
            dl: 1 << 20,
            ..Sizes::default()
        };
        assert_eq!(
            classic_line(half, 2.0),
            "\r 50 2048k   50 1024k    0     0   512k      0  0:00:04  0:00:02  0:00:02  512k"
        );
    }

    #[test]
    fn sizes_and_times_fit_curls_widths() {
        assert_eq!(max5(99_999), "99999");
        assert_eq!(max5(100_000), "  97k");
        assert_eq!(max5(10_000 * 1024), " 9.7M");
        assert_eq!(max5(150 << 20), " 150M");
        assert_eq!(max5(15 << 30), "15.0G");
        for n in [0, 5, 99_999, 100_000, 1 << 30, 1 << 50] {
            assert_eq!(max5(n).len(), 5, "{n}");
        }
        assert_eq!(time8(0), "--:--:--");
        assert_eq!(time8(7), " 0:00:07");
        assert_eq!(time8(99 * 3600 + 59 * 60 + 59), "99:59:59");
        assert_eq!(time8(100 * 3600), "  4d 04h");
        assert_eq!(time8(1000 * 86_400), "   1000d");
    }

    #[test]
    fn the_bar_is_hashes_then_the_percentage() {
        let full = bar_line(3, 3, 79);
        assert_eq!(full, format!("\r{} 100.0%", "#".repeat(72)));
        let half = bar_line(1, 2, 79);
        assert_eq!(
            half,
            format!("\r{}{} {:>5}%", "#".repeat(36), " ".repeat(36), "50.0")
        );
        for tick in 0..200 {
            let fly = fly_line(tick, 79);
            assert!(fly.contains("-=O=-") && fly.len() <= 80, "{tick}: {fly:?}");
        }
    }
}
