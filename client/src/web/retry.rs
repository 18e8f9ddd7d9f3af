//! Retries (r.http's `attempts`, curl's `--retry`): the policy, the
//! backoff with jitter, `Retry-After`, and a retry budget per origin so a
//! failing server does not get a retry storm. Pure: time and randomness
//! are passed in.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Most origins a [`RetryBudget`] keeps track of.
const MAX_ORIGINS: usize = 256;

/// When and how often a request is tried again ([`crate::Settings::retry`]).
///
/// Retried: connection failures (no connection, no response, a reset, a
/// cut body, the idle timeout) and the `statuses`; for idempotent methods
/// only (RFC 9110 §9.2.2), or when nothing was sent; never once a body
/// byte was handed out. Each retry waits the backoff (or the response's
/// `Retry-After`), within the request's `timeout` and the origin's budget.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Most retries after the first attempt (curl's `--retry N`).
    pub retries: u32,
    /// The delay before the first retry; doubled for each next one (curl's
    /// backoff). Default 1 s.
    pub base_delay: Duration,
    /// The longest delay between two attempts; a `Retry-After` longer than
    /// this makes the response the result. Default 10 minutes (curl's cap).
    pub max_delay: Duration,
    /// Status codes that are retried. Default 408, 429, 500, 502, 503, 504
    /// (curl's transient HTTP errors).
    pub statuses: Vec<u16>,
    /// Retries allowed per origin (shared by clones of the policy).
    /// Default 10 in any 10 s.
    pub budget: RetryBudget,
}

impl RetryPolicy {
    /// `retries` retries with the defaults above.
    pub fn new(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            statuses: vec![408, 429, 500, 502, 503, 504],
            budget: RetryBudget::new(10, Duration::from_secs(10)),
        }
    }

    /// The same with this first delay.
    pub fn with_base_delay(mut self, delay: Duration) -> RetryPolicy {
        self.base_delay = delay;
        self
    }

    /// The same with this longest delay.
    pub fn with_max_delay(mut self, delay: Duration) -> RetryPolicy {
        self.max_delay = delay;
        self
    }

    /// The same with this budget.
    pub fn with_budget(mut self, budget: RetryBudget) -> RetryPolicy {
        self.budget = budget;
        self
    }
}

/// Retries per origin in a sliding window, shared by the clones (and the
/// requests and threads that hold one): at most `max_retries` in any
/// `window` for one origin. Memory is bounded: `max_retries` instants per
/// origin, at most 256 origins (the one whose last retry is oldest is
/// forgotten first).
#[derive(Debug, Clone)]
pub struct RetryBudget {
    inner: Arc<Mutex<Budget>>,
}

#[derive(Debug)]
struct Budget {
    /// `None`: unlimited.
    max: Option<u32>,
    window: Duration,
    origins: HashMap<String, VecDeque<Instant>>,
}

impl RetryBudget {
    /// At most `max_retries` retries per origin in any `window`.
    pub fn new(max_retries: u32, window: Duration) -> RetryBudget {
        RetryBudget::with(Some(max_retries), window)
    }

    /// No limit.
    pub fn unlimited() -> RetryBudget {
        RetryBudget::with(None, Duration::ZERO)
    }

    fn with(max: Option<u32>, window: Duration) -> RetryBudget {
        RetryBudget {
            inner: Arc::new(Mutex::new(Budget {
                max,
                window,
                origins: HashMap::new(),
            })),
        }
    }

    /// Take one retry for `origin` at `now`, if the budget has one.
    pub(crate) fn try_take(&self, origin: &str, now: Instant) -> bool {
        let mut b = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(max) = b.max else {
            return true;
        };
        if max == 0 {
            return false;
        }
        let window = b.window;
        if !b.origins.contains_key(origin) && b.origins.len() >= MAX_ORIGINS {
            let oldest = b
                .origins
                .iter()
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                b.origins.remove(&k);
            }
        }
        let taken = b.origins.entry(origin.to_string()).or_default();
        while taken
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            taken.pop_front();
        }
        if taken.len() >= max as usize {
            return false;
        }
        taken.push_back(now);
        true
    }
}

/// The delay before retry number `retry` (1 for the first): d =
/// min(`max_delay`, `base_delay` × 2^(retry−1)), then "equal jitter": a
/// point in [d/2, d] chosen by `random`, so clients that failed together
/// do not come back together. Never overflows.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32, random: u64) -> Duration {
    let exp = retry.max(1) - 1;
    let factor = 1u32.checked_shl(exp.min(31)).unwrap_or(u32::MAX);
    let d = policy
        .base_delay
        .checked_mul(factor)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay);
    let half = d / 2;
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    half + (d - half).mul_f64(fraction)
}

/// A `Retry-After` value as a delay from `now` (RFC 9110 §10.2.3): either
/// delay-seconds (digits; a huge value saturates) or an HTTP-date (a date
/// in the past is zero). Anything else: `None`.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// 64 random bits from the OS (getrandom). Should the OS refuse, the bits
/// come from the clock and a counter: fine for jitter, which is all they
/// are used for.
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ n).wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_equal_jitter_and_caps() {
        let p = RetryPolicy::new(5);
        for (retry, lo, hi) in [
            (1, 500, 1000),
            (2, 1000, 2000),
            (3, 2000, 4000),
            (5, 8000, 16000),
        ] {
            let low = backoff(&p, retry, 0);
            let high = backoff(&p, retry, u64::MAX);
            assert_eq!(low, Duration::from_millis(lo), "retry {retry}");
            assert!(
                high <= Duration::from_millis(hi) && high > Duration::from_millis(hi) * 99 / 100
            );
        }
        assert_eq!(backoff(&p, 0, 0), backoff(&p, 1, 0));
        let capped = backoff(&p, u32::MAX, u64::MAX);
        assert!(capped <= p.max_delay && capped >= p.max_delay / 2);
        assert!(backoff(&p, 40, 0) >= p.max_delay / 2);
    }

    #[test]
    fn retry_after_both_forms() {
        let date = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let now = date - Duration::from_secs(10);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 5 ", now), Some(Duration::from_secs(5)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(
                "Wed, 21 Oct 2015 07:28:00 GMT",
                date + Duration::from_secs(60)
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("", now), None);
    }

    #[test]
    fn the_budget_is_a_sliding_window_per_origin_shared_by_clones() {
        let t0 = Instant::now();
        let b = RetryBudget::new(2, Duration::from_secs(10));
        let clone = b.clone();
        assert!(b.try_take("http://a", t0));
        assert!(clone.try_take("http://a", t0 + Duration::from_secs(1)));
        assert!(!b.try_take("http://a", t0 + Duration::from_secs(2)));
        assert!(b.try_take("http://b", t0 + Duration::from_secs(2)));
        // The first retry leaves the window at t0 + 10 s.
        assert!(b.try_take("http://a", t0 + Duration::from_secs(10)));
        assert!(!b.try_take("http://a", t0 + Duration::from_secs(10)));
        assert!(!RetryBudget::new(0, Duration::from_secs(1)).try_take("x", t0));
        let u = RetryBudget::unlimited();
        assert!((0..1000).all(|_| u.try_take("x", t0)));
    }

    #[test]
    fn the_budget_forgets_the_oldest_origin_past_its_bound() {
        let t0 = Instant::now();
        let b = RetryBudget::new(1, Duration::from_secs(600));
        for i in 0..MAX_ORIGINS + 10 {
            assert!(b.try_take(&format!("o{i}"), t0 + Duration::from_millis(i as u64)));
        }
        assert!(b.inner.lock().unwrap().origins.len() <= MAX_ORIGINS);
    }

    #[test]
    fn random_bits_vary() {
        assert_ne!(random_u64(), random_u64());
    }
}
