//! One time model: a request's deadlines in one place, `now` passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// A clock: `Instant::now` unless a test injects its own (a fake clock that
/// moves only when told to).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// The connect timeout (resolve, TCP, proxy tunnel, TLS handshake).
    Connect,
    /// The whole request's deadline.
    Total,
    /// No byte arrived for the idle timeout.
    Idle,
}

/// The deadlines of a connection attempt and of a request. `None`: none.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadlines {
    pub(crate) connect: Option<Instant>,
    pub(crate) total: Option<Instant>,
    pub(crate) idle: Option<Instant>,
}

impl Deadlines {
    /// The nearest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        [self.connect, self.total, self.idle]
            .into_iter()
            .flatten()
            .min()
    }

    /// The first deadline that passed at `now`, total before idle before
    /// connect (the most specific answer a caller gets).
    pub(crate) fn expired(&self, now: Instant) -> Option<Expired> {
        let passed = |d: Option<Instant>| d.is_some_and(|d| now >= d);
        if passed(self.total) {
            Some(Expired::Total)
        } else if passed(self.idle) {
            Some(Expired::Idle)
        } else if passed(self.connect) {
            Some(Expired::Connect)
        } else {
            None
        }
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
    fn next_and_expired() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let d = Deadlines {
            connect: Some(t0 + 3 * s),
            total: Some(t0 + 5 * s),
            idle: Some(t0 + 2 * s),
        };
        assert_eq!(d.next(), Some(t0 + 2 * s));
        assert_eq!(d.expired(t0 + s), None);
        assert_eq!(d.expired(t0 + 2 * s), Some(Expired::Idle));
        assert_eq!(d.expired(t0 + 3 * s), Some(Expired::Idle));
        assert_eq!(d.expired(t0 + 5 * s), Some(Expired::Total));
        let c = Deadlines {
            connect: Some(t0 + s),
            ..Deadlines::default()
        };
        assert_eq!(c.expired(t0 + s), Some(Expired::Connect));
        assert_eq!(Deadlines::default().next(), None);
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
