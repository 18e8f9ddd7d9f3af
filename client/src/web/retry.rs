//! Retries: policy, backoff, Retry-After, budget. STUB: helper-A implements.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// When and how often a request is tried again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Most retries after the first attempt.
    pub retries: u32,
    /// The delay before the first retry.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// Status codes that are retried.
    pub statuses: Vec<u16>,
    /// Retries allowed per origin (shared by clones).
    pub budget: RetryBudget,
}

impl RetryPolicy {
    /// `retries` retries with the defaults.
    pub fn new(_retries: u32) -> RetryPolicy {
        todo!()
    }
}

/// Retries per origin in a sliding window, shared by clones.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    inner: Arc<Mutex<()>>,
}

impl RetryBudget {
    /// At most `max_retries` retries per origin in any `window`.
    pub fn new(_max_retries: u32, _window: Duration) -> RetryBudget {
        todo!()
    }

    /// Take one retry for `origin` at `now`, if the budget has one.
    pub(crate) fn try_take(&self, _origin: &str, _now: Instant) -> bool {
        let _ = &self.inner;
        todo!()
    }
}

/// The delay before retry number `retry` (1 for the first).
pub(crate) fn backoff(_policy: &RetryPolicy, _retry: u32, _random: u64) -> Duration {
    todo!()
}

/// A `Retry-After` value as a delay from `now`.
pub(crate) fn retry_after(_value: &str, _now: SystemTime) -> Option<Duration> {
    todo!()
}

/// 64 random bits from the OS.
pub(crate) fn random_u64() -> u64 {
    todo!()
}
