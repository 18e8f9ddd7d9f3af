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

/// Shows (once the download is big or slow) and advances the progress bar.
pub(crate) fn update_progress(
    bar: &mut Option<ProgressBar>,
    size: Option<u64>,
    got: u64,
    start: Instant,
) {
    if bar.is_none() {
        let big = size.is_some_and(|n| n > 1 << 20);
        let slow = start.elapsed() > Duration::from_millis(500);
        if !(big || slow) {
            return;
        }
        let pb = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
        let template = if size.is_some() {
            "{bytes:>10}/{total_bytes} [{bar:30}] {bytes_per_sec:>12} eta {eta}"
        } else {
            "{spinner} {bytes:>10} {bytes_per_sec:>12} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        *bar = Some(pb);
    }
    if let Some(pb) = bar {
        // The length changes after a redirect, or when the head arrives.
        if pb.length() != size {
            match size {
                Some(n) => pb.set_length(n),
                None => pb.unset_length(),
            }
        }
        pb.set_position(got);
    }
}
