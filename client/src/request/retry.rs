//! Retries (r.http's `attempts`, curl's `--retry`): the policy, the
//! backoff with jitter, `Retry-After`, and a retry budget per origin so a
//! failing server does not get a retry storm. Pure: time and randomness
//! are passed in.

use std::collections::{HashMap, VecDeque};
use std::fmt;
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
///
/// There is no `Default`: how many retries suit a request is the caller's
/// choice (curl's `--retry` has no default count either); write
/// `RetryPolicy::new(3)`.
///
/// ```
/// use std::time::Duration;
/// use pollhttp::web::{RetryBudget, RetryPolicy};
/// let policy = RetryPolicy::new(3)
///     .with_base_delay(Duration::from_millis(250))
///     .with_statuses([503])
///     .with_budget(RetryBudget::new(20, Duration::from_secs(60)));
/// assert_eq!(policy.max_delay, Duration::from_secs(600));
/// ```
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
    /// `retries` retries with the defaults above: a 1 s first delay, a 10
    /// minute cap, statuses 408, 429, 500, 502, 503 and 504, and a budget of
    /// 10 retries per origin in any 10 s.
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

    /// The same with these retried status codes.
    pub fn with_statuses(mut self, statuses: impl Into<Vec<u16>>) -> RetryPolicy {
        self.statuses = statuses.into();
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
/// forgotten first). The lock is never held across I/O, and a poisoned one
/// is used as it is (a budget has no invariant a panic can break).
#[derive(Clone)]
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

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("RetryBudget")
            .field("max_retries", &b.max)
            .field("window", &b.window)
            .field("origins", &b.origins.len())
            .finish()
    }
}

impl RetryBudget {
    /// Whether `self` and `other` are the same budget (one shared window).
    pub(crate) fn same_as(&self, other: &RetryBudget) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// At most `max_retries` retries per origin in any `window` (a sliding
    /// window: a retry at `t` counts until `t + window`). `max_retries` 0
    /// allows none.
    pub fn new(max_retries: u32, window: Duration) -> RetryBudget {
        RetryBudget::with(Some(max_retries), window)
    }

    /// No limit: every retry the policy allows is taken, and nothing is
    /// recorded.
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

    /// Take one retry for `origin` (its ASCII serialization) at `now`:
    /// `true`, and `now` recorded, if fewer than `max_retries` were taken
    /// for it in (now − window, now]; else `false`, nothing recorded. Cost:
    /// amortized O(1), O(256) when a new origin evicts an old one.
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

/// The delay before retry number `retry` (1 for the first; 0 is taken
/// as 1), in the policy's units (a [`Duration`]).
///
/// Exponential backoff as curl's `--retry` (1 s, 2 s, 4 s, …, capped at
/// 10 minutes by default): d = min(`max_delay`, `base_delay` ×
/// 2^(retry−1)), computed without overflow for any `retry` up to
/// `u32::MAX`. Then "equal jitter" (AWS Architecture Blog, "Exponential
/// Backoff And Jitter"): the result is uniform in [d/2, d], picked by
/// `random` (0 gives d/2 rounded down to the nanosecond, `u64::MAX` gives
/// d exactly), so clients that failed together do not come back together.
/// Pure: the caller passes [`jitter_u64`].
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32, random: u64) -> Duration {
    let exp = retry.max(1) - 1;
    let base = policy.base_delay.as_nanos();
    let max = policy.max_delay.as_nanos();
    // base × 2^exp, saturating: it fits when base has more than `exp`
    // leading zero bits.
    let d = if base == 0 {
        0
    } else if exp < base.leading_zeros() {
        (base << exp).min(max)
    } else {
        max
    };
    let half = d / 2;
    let span = d - half;
    // span ≤ 2^94 (a Duration's nanoseconds) and the top 32 random bits
    // < 2^32: the product fits a u128, and u64::MAX maps to span exactly.
    let offset = span * u128::from(random >> 32) / u128::from(u32::MAX);
    from_nanos(half + offset)
}

/// A [`Duration`] of `nanos` nanoseconds (at most a Duration's range).
fn from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// A `Retry-After` field value as a delay from `now` (RFC 9110 §10.2.3).
///
/// Either delay-seconds (`1*DIGIT`, surrounding OWS ignored; a value past
/// `u64::MAX` seconds saturates there) or an HTTP-date in any of the three
/// forms of RFC 9110 §5.6.7 (httpdate), giving the time from `now` until
/// then: zero for a date in the past. Anything else (a sign, a fraction,
/// words): `None`, and the caller falls back to its backoff. `now` is the
/// response's `Date` when it has one, so clock skew does not count.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// 64 random bits from the OS's CSPRNG (getrandom). Should the OS refuse
/// (no entropy source), the bits come from the clock's nanoseconds and a
/// process-wide counter mixed by SplitMix64: varying from call to call,
/// good enough for jitter, but not secret. Never panics.
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    fallback_u64()
}

/// 64 bits for a backoff's jitter, which needs to vary, not to be secret:
/// SplitMix64 over a per-thread state seeded once from [`random_u64`], so
/// one system call per thread rather than one per response (`getrandom`
/// was 3 % of a pool's CPU on many small requests). Never panics.
pub(crate) fn jitter_u64() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(random_u64());
    }
    STATE.with(|state| {
        let z = state.get().wrapping_add(GOLDEN_GAMMA);
        state.set(z);
        splitmix_finalize(z)
    })
}

/// SplitMix64's step.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finalizer.
fn splitmix_finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The non-panicking fallback of [`random_u64`].
fn fallback_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // The finalizer over the clock and the counter's golden-ratio steps.
    splitmix_finalize(t ^ n.wrapping_mul(GOLDEN_GAMMA))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_within_equal_jitter() {
        let p = RetryPolicy::new(5);
        for (retry, lo, hi) in [
            (1, 500, 1000),
            (2, 1000, 2000),
            (3, 2000, 4000),
            (4, 4000, 8000),
            (5, 8000, 16000),
        ] {
            assert_eq!(backoff(&p, retry, 0), ms(lo), "retry {retry}");
            assert_eq!(backoff(&p, retry, u64::MAX), ms(hi), "retry {retry}");
            let mid = backoff(&p, retry, u64::MAX / 2);
            assert!(mid > ms(lo) && mid < ms(hi), "retry {retry}: {mid:?}");
        }
        // Retry 0 is retry 1.
        assert_eq!(backoff(&p, 0, 0), backoff(&p, 1, 0));
        assert_eq!(backoff(&p, 0, u64::MAX), ms(1000));
        // An odd number of nanoseconds: d/2 rounds down.
        let odd = RetryPolicy::new(1).with_base_delay(Duration::from_nanos(3));
        assert_eq!(backoff(&odd, 1, 0), Duration::from_nanos(1));
        assert_eq!(backoff(&odd, 1, u64::MAX), Duration::from_nanos(3));
    }

    #[test]
    fn backoff_caps_without_overflow() {
        let p = RetryPolicy::new(5);
        let cap = p.max_delay;
        // 2^9 s = 512 s is below the 600 s cap, 2^10 s is above.
        assert_eq!(backoff(&p, 10, u64::MAX), Duration::from_secs(512));
        for retry in [11, 31, 32, 33, 64, 200, u32::MAX] {
            assert_eq!(backoff(&p, retry, 0), cap / 2, "retry {retry}");
            assert_eq!(backoff(&p, retry, u64::MAX), cap, "retry {retry}");
        }
        // A tiny base still reaches the cap for huge retry numbers.
        let tiny = RetryPolicy::new(1).with_base_delay(Duration::from_nanos(1));
        // 1 ns × 2^39 ≈ 550 s is below the cap, × 2^40 ≈ 1100 s above.
        assert_eq!(backoff(&tiny, 40, u64::MAX), Duration::from_nanos(1 << 39));
        assert_eq!(backoff(&tiny, 41, u64::MAX), cap);
        assert_eq!(backoff(&tiny, u32::MAX, u64::MAX), cap);
        // No cap at all: the largest Duration, no panic.
        let huge = RetryPolicy::new(1)
            .with_base_delay(Duration::MAX)
            .with_max_delay(Duration::MAX);
        assert_eq!(backoff(&huge, u32::MAX, u64::MAX), Duration::MAX);
        assert!(backoff(&huge, 2, 0) >= Duration::MAX / 2 - Duration::from_nanos(1));
        // A zero base is always zero.
        let zero = RetryPolicy::new(1).with_base_delay(Duration::ZERO);
        assert_eq!(backoff(&zero, u32::MAX, u64::MAX), Duration::ZERO);
    }

    #[test]
    fn defaults_and_setters() {
        let p = RetryPolicy::new(3);
        assert_eq!(p.retries, 3);
        assert_eq!(p.base_delay, Duration::from_secs(1));
        assert_eq!(p.max_delay, Duration::from_secs(600));
        assert_eq!(p.statuses, [408, 429, 500, 502, 503, 504]);
        let p = p.with_statuses([503]).with_max_delay(ms(5));
        assert_eq!(p.statuses, [503]);
        assert_eq!(backoff(&p, 3, u64::MAX), ms(5));
        assert!(format!("{:?}", p.budget).contains("max_retries: Some(10)"));
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
        assert_eq!(retry_after("\t0\t", now), Some(Duration::ZERO));
        // The obsolete date forms (RFC 9110 §5.6.7) too.
        assert_eq!(
            retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Wed Oct 21 07:28:00 2015", now),
            Some(Duration::from_secs(10))
        );
        for bad in [
            "soon",
            "-1",
            "+5",
            "1.5",
            "5 s",
            "",
            "  ",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn the_budget_is_a_sliding_window_per_origin() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let b = RetryBudget::new(2, Duration::from_secs(10));
        assert!(b.try_take("http://a", at(0)));
        assert!(b.try_take("http://a", at(1)));
        // Exhausted for a, not for b.
        assert!(!b.try_take("http://a", at(2)));
        assert!(!b.try_take("http://a", at(9)));
        assert!(b.try_take("http://b", at(2)));
        assert!(b.try_take("http://b", at(3)));
        assert!(!b.try_take("http://b", at(4)));
        // The retry at 0 leaves the window (now − 10 s, now] at 10 s; the
        // one at 1 s at 11 s.
        assert!(b.try_take("http://a", at(10)));
        assert!(!b.try_take("http://a", at(10)));
        assert!(b.try_take("http://a", at(11)));
        // Refused takes recorded nothing: after a long pause, two again.
        assert!(b.try_take("http://a", at(100)));
        assert!(b.try_take("http://a", at(100)));
        assert!(!b.try_take("http://a", at(100)));
    }

    #[test]
    fn clones_share_the_budget() {
        let t0 = Instant::now();
        let b = RetryBudget::new(2, Duration::from_secs(10));
        let clone = b.clone();
        let policy = RetryPolicy::new(1).with_budget(b.clone());
        assert!(b.try_take("http://a", t0));
        assert!(clone.try_take("http://a", t0));
        assert!(!policy.clone().budget.try_take("http://a", t0));
    }

    #[test]
    fn zero_and_unlimited_budgets() {
        let t0 = Instant::now();
        assert!(!RetryBudget::new(0, Duration::from_secs(1)).try_take("x", t0));
        let u = RetryBudget::unlimited();
        assert!((0..1000).all(|_| u.try_take("x", t0)));
        assert_eq!(u.inner.lock().unwrap().origins.len(), 0);
    }

    #[test]
    fn the_budget_forgets_the_origin_idle_longest_past_its_bound() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let b = RetryBudget::new(1, Duration::from_secs(600));
        for i in 0..MAX_ORIGINS as u64 {
            assert!(b.try_take(&format!("o{i}"), at(i)));
        }
        // o0's newest retry is the oldest: a new origin evicts it, so o0
        // gets a fresh budget while o1 is still exhausted.
        assert!(b.try_take("new", at(1000)));
        assert_eq!(b.inner.lock().unwrap().origins.len(), MAX_ORIGINS);
        assert!(!b.inner.lock().unwrap().origins.contains_key("o0"));
        assert!(!b.try_take("o2", at(1001)));
        for i in 0..1000 {
            b.try_take(&format!("more{i}"), at(2000 + i));
        }
        let inner = b.inner.lock().unwrap();
        assert_eq!(inner.origins.len(), MAX_ORIGINS);
        assert!(inner.origins.values().all(|q| q.len() <= 1));
    }

    #[test]
    fn a_poisoned_budget_still_works() {
        let t0 = Instant::now();
        let b = RetryBudget::new(1, Duration::from_secs(10));
        let b2 = b.clone();
        let _ = std::thread::spawn(move || {
            let _guard = b2.inner.lock().unwrap();
            panic!("poisoning the budget's lock on purpose");
        })
        .join();
        assert!(b.inner.is_poisoned());
        assert!(b.try_take("x", t0));
        assert!(!b.try_take("x", t0));
        assert!(format!("{b:?}").contains("origins: 1"));
    }

    #[test]
    fn jitter_bits_vary_and_spread() {
        let a: Vec<u64> = (0..1000).map(|_| jitter_u64()).collect();
        let distinct: std::collections::HashSet<u64> = a.iter().copied().collect();
        assert_eq!(distinct.len(), 1000);
        // The top bits (what `backoff` uses) land in both halves.
        let high = a.iter().filter(|v| **v >> 63 == 1).count();
        assert!((350..=650).contains(&high), "{high}");
        // Another thread has its own sequence.
        let other = std::thread::spawn(jitter_u64).join().unwrap();
        assert!(!distinct.contains(&other));
    }

    #[test]
    fn random_bits_vary() {
        assert_ne!(random_u64(), random_u64());
        // The fallback never repeats within a process either.
        let a: std::collections::HashSet<u64> = (0..1000).map(|_| fallback_u64()).collect();
        assert_eq!(a.len(), 1000);
    }
}
