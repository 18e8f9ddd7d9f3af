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

/// What turns cost, measured: nanoseconds of a turn per KiB it read, a
/// moving average (weight 1/4 for a new sample; the first is taken as it
/// is). One model for every front end: the pool keeps one per request and
/// one over all of them, [`Allowance`] one per poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TurnCost(u64);

/// Fewest bytes a turn reads when time is short (a turn smaller than this
/// costs more in calls than it saves in overshoot).
pub(crate) const MIN_TURN: usize = 4 * 1024;

/// Most bytes a turn reads before its cost per byte is known (a gzip body
/// may cost several times a plain one).
pub(crate) const FIRST_TURN: usize = 16 * 1024;

/// Most bytes one turn reads: one gulp, the largest read (a lone big
/// download in a frame takes one or two large reads, not dozens of small
/// ones: a reader inside `recv` while segments arrive does their TCP
/// receive work itself, so small back-to-back reads cost the kernel more
/// per byte).
pub(crate) const MAX_TURN: usize = crate::transport::GULP;

/// A turn that read at least this many bytes is a sample of the cost.
const COST_SAMPLE: usize = 4 * 1024;

impl TurnCost {
    /// Whether no turn was measured yet.
    pub(crate) fn is_unknown(self) -> bool {
        self.0 == 0
    }

    /// A turn read `read` bytes in `took`. A turn under 4 KiB is no
    /// sample. A sample counts as at most 8 times the average: a turn the
    /// thread was preempted in (or the VM's host took the CPU) says little
    /// about the request and must not shrink its turns for long.
    pub(crate) fn sample(&mut self, read: usize, took: Duration) {
        if read < COST_SAMPLE {
            return;
        }
        let sample = u64::try_from(took.as_nanos().saturating_mul(1024) / read as u128)
            .unwrap_or(u64::MAX)
            .max(1);
        self.0 = if self.0 == 0 {
            sample
        } else {
            (self.0 * 3 + sample.min(self.0.saturating_mul(8))) / 4
        };
    }

    /// How many bytes a turn may read with `left` of its poll's time:
    /// [`FIRST_TURN`] while unknown, else what fits in half of `left`,
    /// between [`MIN_TURN`] and [`MAX_TURN`]. Planning for half the time
    /// left makes a poll's last turns shrink by halves, so a turn that
    /// costs twice its estimate still ends in time: one request's cost per
    /// byte varies that much from turn to turn (a gzip body's, 6–13 µs per
    /// KiB in `game_loop`). Measured: `poll()` CPU p99 2.15–2.47 ms (median
    /// 2.32) against 2.38–2.66 (median 2.42) when turns planned for all of
    /// it, at the same MB/s.
    pub(crate) fn turn(self, left: Duration) -> usize {
        if self.0 == 0 {
            return FIRST_TURN;
        }
        let fit = (left / 2).as_nanos().saturating_mul(1024) / u128::from(self.0);
        usize::try_from(fit)
            .unwrap_or(MAX_TURN)
            .clamp(MIN_TURN, MAX_TURN)
    }
}

/// One poll's allowance in progress: bytes left, the time it must stop
/// starting turns, and the measured cost per byte that sizes each turn.
#[derive(Debug)]
pub(crate) struct Allowance {
    pub(crate) bytes: usize,
    pub(crate) deadline: Option<Instant>,
    cost: TurnCost,
}

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
            cost: TurnCost::default(),
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
        self.cost.turn(deadline - now).min(self.bytes)
    }

    /// A turn read `read` bytes in `took`.
    pub(crate) fn spent(&mut self, read: usize, took: Duration) {
        self.bytes -= read.min(self.bytes);
        self.cost.sample(read, took);
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
        // 64 KiB in 64 µs: 1 µs per KiB, so with 300 µs left a turn plans
        // 150 µs, 150 KiB...
        a.spent(64 * 1024, Duration::from_micros(64));
        assert_eq!(a.next_turn(t0 + Duration::from_micros(700)), 150 * 1024);
        // ...and with 900 µs, 450 KiB.
        assert_eq!(a.next_turn(t0 + Duration::from_micros(100)), 450 * 1024);
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

    #[test]
    fn the_cost_is_a_moving_average_of_samples() {
        let mut c = TurnCost::default();
        assert!(c.is_unknown());
        c.sample(4095, Duration::from_secs(1));
        assert!(c.is_unknown(), "under 4 KiB is no sample");
        c.sample(8 * 1024, Duration::from_micros(8));
        assert_eq!(c, TurnCost(1000), "the first sample as it is");
        c.sample(8 * 1024, Duration::from_micros(16));
        assert_eq!(c, TurnCost(1250), "then weight 1/4");
        c.sample(8 * 1024, Duration::from_secs(10));
        assert_eq!(
            c,
            TurnCost((1250 * 3 + 10_000) / 4),
            "at most 8 times the average"
        );
        let mut zero = TurnCost::default();
        zero.sample(8 * 1024, Duration::ZERO);
        assert!(!zero.is_unknown(), "a measured cost is never 'unknown'");
    }

    #[test]
    fn a_turn_reads_what_fits_in_the_time_left() {
        let unknown = TurnCost::default();
        assert_eq!(unknown.turn(Duration::from_secs(1)), FIRST_TURN);
        // 1 µs per KiB (1 GB/s) with 20 µs left: half of it, 10 KiB.
        assert_eq!(TurnCost(1000).turn(Duration::from_micros(20)), 10 * 1024);
        // Plenty of time: never past a gulp.
        assert_eq!(TurnCost(1000).turn(Duration::from_millis(5)), MAX_TURN);
        // Almost no time, or a very costly request (a gzip bomb): the floor.
        assert_eq!(TurnCost(1000).turn(Duration::ZERO), MIN_TURN);
        assert_eq!(TurnCost(u64::MAX).turn(Duration::from_millis(1)), MIN_TURN);
    }
}
