//! How much work one `poll()` may do, in one type for every front end
//! ([`PollBudget`]), and a budget many [`HttpRequest`](crate::HttpRequest)s
//! share in one frame ([`FrameBudget`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How much one `poll()` may do: socket bytes read and wall-clock time
/// spent. The same type and the same default for
/// [`HttpClient::set_poll_budget`](crate::HttpClient::set_poll_budget),
/// [`HttpRequest::set_poll_budget`](crate::HttpRequest::set_poll_budget)
/// and [`PoolSettings::poll_budget`](crate::PoolSettings::poll_budget).
///
/// Both limits are checked between turns (a turn reads, parses, decodes and
/// stores at most a bounded number of bytes, sized from the measured cost
/// per byte to end about when the time does), so a poll overshoots its time
/// by a fraction of one small turn, never by a whole download. A poll also
/// ends early when nothing more is ready. Time is measured on the front
/// end's clock (`with_clock`): under a fake clock that does not move, only
/// the byte limit applies.
///
/// ```
/// use std::time::Duration;
/// use pollhttp::PollBudget;
///
/// // A sixteenth of a 60 fps frame, at most 4 MiB: the default.
/// assert_eq!(PollBudget::default(), PollBudget::new(4 << 20, Some(Duration::from_millis(1))));
/// // Bytes only (a tool with no frame to keep).
/// let tool = PollBudget::new(64 << 20, None);
/// assert_eq!(tool.time, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBudget {
    /// Most socket bytes one poll reads, over all its requests. At least 1
    /// (0 is taken as 1). Default 4 MiB.
    pub bytes: usize,
    /// Most wall-clock time one poll spends; `None`: no time limit (bytes
    /// only). Default 1 ms (a sixteenth of a 60 fps frame).
    pub time: Option<Duration>,
}

impl PollBudget {
    /// A budget of `bytes` socket bytes and `time` (`None`: no time limit).
    pub const fn new(bytes: usize, time: Option<Duration>) -> PollBudget {
        PollBudget { bytes, time }
    }

    /// The byte limit, at least 1.
    pub(crate) fn byte_limit(&self) -> usize {
        self.bytes.max(1)
    }

    /// When a poll that started at `start` must stop starting turns.
    pub(crate) fn deadline(&self, start: Instant) -> Option<Instant> {
        self.time.and_then(|t| start.checked_add(t))
    }
}

impl Default for PollBudget {
    fn default() -> PollBudget {
        PollBudget {
            bytes: 4 << 20,
            time: Some(Duration::from_millis(1)),
        }
    }
}

/// One budget shared by many [`HttpRequest`](crate::HttpRequest)s polled in
/// the same frame (Godot's habit of one HTTPRequest node per download):
/// call [`begin`](Self::begin) once per frame, then `poll` each request;
/// each poll takes what is left of the frame's bytes and time (and no more
/// than its own [`PollBudget`]), and spends what it reads. Once the frame's
/// budget is spent, the remaining requests' polls read nothing (they still
/// collect events and notice deadlines) until the next `begin`. Which
/// requests go first is the caller's order; rotate it for fairness.
///
/// Cheap to clone (a shared handle); usable from any thread.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use pollhttp::{FrameBudget, HttpRequest, PollBudget};
///
/// let frame = FrameBudget::new(PollBudget::new(8 << 20, Some(Duration::from_millis(2))));
/// let mut downloads: Vec<HttpRequest> = (0..20).map(|_| HttpRequest::new()).collect();
/// for d in &mut downloads {
///     d.set_frame_budget(Some(frame.clone()));
/// }
/// loop {
///     frame.begin(Instant::now());
///     for d in &mut downloads {
///         d.poll();
///     }
///     // … render the frame …
/// #   break;
/// }
/// ```
#[derive(Debug, Clone)]
pub struct FrameBudget {
    shared: Arc<Mutex<FrameState>>,
}

#[derive(Debug)]
struct FrameState {
    budget: PollBudget,
    bytes_left: usize,
    deadline: Option<Instant>,
}

impl FrameBudget {
    /// A shared budget of `budget` per frame. Spent until the first
    /// [`begin`](Self::begin).
    pub fn new(budget: PollBudget) -> FrameBudget {
        FrameBudget {
            shared: Arc::new(Mutex::new(FrameState {
                budget,
                bytes_left: 0,
                deadline: None,
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FrameState> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Start a frame at `now` (on the requests' clock): the whole budget is
    /// available again, its time counted from `now`.
    pub fn begin(&self, now: Instant) {
        let mut s = self.state();
        s.bytes_left = s.budget.byte_limit();
        s.deadline = s.budget.deadline(now);
    }

    /// Socket bytes this frame still allows.
    pub fn bytes_left(&self) -> usize {
        self.state().bytes_left
    }

    /// The per-frame budget.
    pub fn budget(&self) -> PollBudget {
        self.state().budget
    }

    /// Change the per-frame budget (from the next [`begin`](Self::begin)).
    pub fn set_budget(&self, budget: PollBudget) {
        self.state().budget = budget;
    }

    /// What a poll at `now` may use: bytes left and the frame's deadline.
    pub(crate) fn take(&self, now: Instant) -> (usize, Option<Instant>) {
        let s = self.state();
        if s.deadline.is_some_and(|d| now >= d) {
            return (0, s.deadline);
        }
        (s.bytes_left, s.deadline)
    }

    /// Count `bytes` read against the frame.
    pub(crate) fn spend(&self, bytes: usize) {
        let mut s = self.state();
        s.bytes_left = s.bytes_left.saturating_sub(bytes);
    }
}

/// One poll's allowance in progress: bytes left, the time it must stop
/// starting turns, and the measured cost per byte that sizes each turn.
#[derive(Debug)]
pub(crate) struct Allowance {
    pub(crate) bytes: usize,
    pub(crate) deadline: Option<Instant>,
    /// Nanoseconds per KiB of the last turn that read enough to measure; 0
    /// before one did.
    cost: u64,
}

/// Fewest bytes a turn reads when time is short (a smaller turn costs more
/// in calls than it saves in overshoot).
const MIN_TURN: usize = 16 * 1024;

/// Most bytes a turn reads before the cost per byte is known.
const FIRST_TURN: usize = 64 * 1024;

impl Allowance {
    /// A poll starting at `now` under `budget`, within what `frame` (if
    /// any) has left.
    pub(crate) fn new(budget: PollBudget, now: Instant, frame: Option<&FrameBudget>) -> Allowance {
        let mut bytes = budget.byte_limit();
        let mut deadline = budget.deadline(now);
        if let Some(frame) = frame {
            let (left, frame_deadline) = frame.take(now);
            bytes = bytes.min(left);
            deadline = match (deadline, frame_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Allowance {
            bytes,
            deadline,
            cost: 0,
        }
    }

    /// How many bytes the next turn, starting at `now`, may read: 0 when
    /// the bytes or the time are spent. Without a deadline, everything left.
    pub(crate) fn next_turn(&self, now: Instant) -> usize {
        let Some(deadline) = self.deadline else {
            return self.bytes;
        };
        if now >= deadline || self.bytes == 0 {
            return 0;
        }
        let fit = if self.cost == 0 {
            FIRST_TURN
        } else {
            let left = deadline - now;
            let fit = left.as_nanos().saturating_mul(1024) / u128::from(self.cost);
            usize::try_from(fit).unwrap_or(usize::MAX).max(MIN_TURN)
        };
        fit.min(self.bytes)
    }

    /// A turn read `read` bytes in `took`.
    pub(crate) fn spent(&mut self, read: usize, took: Duration) {
        self.bytes -= read.min(self.bytes);
        if read >= 4096 {
            let sample = u64::try_from(took.as_nanos().saturating_mul(1024) / read as u128)
                .unwrap_or(u64::MAX)
                .max(1);
            // As the pool's average: weight 1/4, a sample at most 8 times it.
            self.cost = if self.cost == 0 {
                sample
            } else {
                (self.cost * 3 + sample.min(self.cost.saturating_mul(8))) / 4
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_budget_is_shared_and_refilled_by_begin() {
        let t0 = Instant::now();
        let frame = FrameBudget::new(PollBudget::new(1000, Some(Duration::from_millis(2))));
        assert_eq!(frame.take(t0), (0, None), "spent until the first begin");
        frame.begin(t0);
        let a = Allowance::new(PollBudget::new(600, None), t0, Some(&frame));
        assert_eq!(
            (a.bytes, a.deadline),
            (600, Some(t0 + Duration::from_millis(2)))
        );
        frame.spend(600);
        let b = Allowance::new(PollBudget::default(), t0, Some(&frame));
        assert_eq!(b.bytes, 400, "the second request gets what is left");
        frame.spend(400);
        let c = Allowance::new(PollBudget::default(), t0, Some(&frame));
        assert_eq!(c.next_turn(t0), 0, "the third reads nothing");
        // Past the frame's time, nothing either, whatever bytes are left.
        frame.begin(t0);
        let late = t0 + Duration::from_millis(3);
        assert_eq!(frame.take(late).0, 0);
        frame.begin(late);
        assert_eq!(frame.bytes_left(), 1000);
    }

    #[test]
    fn turns_fit_the_time_left_by_the_measured_cost() {
        let t0 = Instant::now();
        let mut a = Allowance::new(
            PollBudget::new(10 << 20, Some(Duration::from_millis(1))),
            t0,
            None,
        );
        assert_eq!(a.next_turn(t0), FIRST_TURN, "unmeasured: a first turn");
        // 64 KiB in 64 µs: 1 µs per KiB, so 900 µs left fits 900 KiB.
        a.spent(64 * 1024, Duration::from_micros(64));
        let now = t0 + Duration::from_micros(100);
        assert_eq!(a.next_turn(now), 900 * 1024);
        // Little time left: never below the smallest turn.
        assert_eq!(a.next_turn(t0 + Duration::from_micros(999)), MIN_TURN);
        assert_eq!(a.next_turn(t0 + Duration::from_millis(1)), 0);
        // Bytes bound every turn.
        let b = Allowance::new(PollBudget::new(5, Some(Duration::from_secs(1))), t0, None);
        assert_eq!(b.next_turn(t0), 5);
        // No time limit: one turn of everything.
        let c = Allowance::new(PollBudget::new(0, None), t0, None);
        assert_eq!(c.next_turn(t0), 1, "0 bytes is taken as 1");
    }
}
