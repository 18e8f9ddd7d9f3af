//! One time model: a request's timers in one table, `now` passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// A clock: `Instant::now` unless a test injects its own (a fake clock that
/// moves only when told to).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The timers of one request (quinn-proto's `TimerTable` is the model):
/// each is a point in time or off, and the next wake-up is one `min` over
/// the table. A connection's own timers (the connect deadline, Happy
/// Eyeballs' next attempt) belong to the connection
/// ([`Conn::deadline`](crate::conn::Conn::deadline)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The request's deadline (`Settings::timeout`), from its start.
    Total,
    /// No byte arrived for the idle timeout (`Settings::idle_timeout`),
    /// counted from the last byte, or from when the request got a
    /// connection.
    Idle,
    /// A retry's backoff ends: the next try starts.
    Retry,
    /// The receive rate limit lets reading go on.
    Throttle,
    /// A streamed body that ended is reported complete (a poll later, so
    /// its waiting pieces can be taken first).
    DeferredEnd,
    /// A request sent with `Expect: 100-continue` stops waiting for the
    /// 100 and sends its body (`Timeouts::expect_continue`).
    ExpectContinue,
}

const TIMERS: usize = 6;

/// When each [`Timer`] fires (`None`: off).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; TIMERS],
}

impl TimerTable {
    /// Fire `timer` at `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer as usize] = Some(at);
    }

    /// Fire `timer` `after` from `now`, or turn it off when `after` is
    /// `None` (a timeout that is not set).
    pub(crate) fn set_after(&mut self, timer: Timer, now: Instant, after: Option<Duration>) {
        self.at[timer as usize] = after.map(|d| now + d);
    }

    /// Turn `timer` off.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    /// When `timer` fires, if it is on.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer as usize]
    }

    /// Whether `timer` is on and due at `now`.
    pub(crate) fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| now >= t)
    }

    /// The next time a timer fires.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

/// The timeout to sleep for: `cap` (`None`: forever), shortened so the sleep
/// ends at `deadline`.
pub(crate) fn sleep_for(
    cap: Option<Duration>,
    deadline: Option<Instant>,
    now: Instant,
) -> Option<Duration> {
    match deadline {
        None => cap,
        Some(d) => {
            let left = d.saturating_duration_since(now);
            Some(cap.map_or(left, |c| c.min(left)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_fires_its_earliest_timer() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Total, t0 + 5 * s);
        t.set_after(Timer::Idle, t0, Some(2 * s));
        t.set(Timer::Retry, t0 + 3 * s);
        assert_eq!(t.next(), Some(t0 + 2 * s));
        assert!(!t.is_due(Timer::Idle, t0 + s));
        assert!(t.is_due(Timer::Idle, t0 + 2 * s));
        t.stop(Timer::Idle);
        assert_eq!(t.next(), Some(t0 + 3 * s));
        t.set_after(Timer::Retry, t0, None);
        assert_eq!((t.get(Timer::Retry), t.next()), (None, Some(t0 + 5 * s)));
    }

    #[test]
    fn sleep_is_capped_by_the_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(sleep_for(None, None, t0), None);
        assert_eq!(sleep_for(Some(s), None, t0), Some(s));
        assert_eq!(sleep_for(None, Some(t0 + 2 * s), t0), Some(2 * s));
        assert_eq!(sleep_for(Some(s), Some(t0 + 2 * s), t0), Some(s));
        assert_eq!(sleep_for(Some(s), Some(t0), t0 + s), Some(Duration::ZERO));
    }
}
