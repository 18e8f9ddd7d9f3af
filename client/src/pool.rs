//! [`RequestPool`]: many requests under one `poll()` with a frame budget,
//! per-origin keep-alive and connection limits. The same per-request code
//! ([`Job`]) runs here as under `HttpRequest`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Registry, Token, Waker};

use crate::body::{lock, PipeEnd, PipeState, Piped, RequestBody};
use crate::budget::{PollBudget, TurnCost, FIRST_TURN};
use crate::conn::cache::{CacheLimits, ConnCache, Owner};
use crate::conn::{Conn, ConnKey, Route, Target};
use crate::error::RequestError;
use crate::reactor::Reactor;
use crate::request::job::{target_for, Connections, Job};
use crate::request::{prepare, status_from, Completed, IntoUrl, Progress, Settings};
use crate::resolve::{system_lookup, LookupFn, Resolver, ResolverConfig};
use crate::status::{Status, WakeHandle};
use crate::time::sleep_for;

/// A request in a [`RequestPool`]. Generational: an id of a request that
/// completed or was cancelled never matches a later request in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    index: u32,
    generation: u32,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// Limits and budgets of a [`RequestPool`] (curl's multi options where curl
/// has one).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections open to one origin (scheme, host, port), active and
    /// idle together (curl's `CURLMOPT_MAX_HOST_CONNECTIONS`). Default 6, as
    /// browsers. At least 1. Connections that cannot carry each other's
    /// requests (other TLS settings, another proxy) count apart; plain
    /// `http` through an HTTP proxy counts the connections to the proxy,
    /// whatever the origin (as curl).
    pub max_connections_per_origin: usize,
    /// Most connections open in all (curl's `CURLMOPT_MAX_TOTAL_CONNECTIONS`).
    /// Default 64. At least 1.
    pub max_connections: usize,
    /// Most idle keep-alive connections kept per origin (counted as
    /// [`max_connections_per_origin`](Self::max_connections_per_origin)).
    /// Default 6.
    pub max_idle_per_origin: usize,
    /// Most idle keep-alive connections kept in all (curl's
    /// `CURLMOPT_MAXCONNECTS`). Default 32.
    pub max_idle: usize,
    /// An idle connection older than this is closed (curl's
    /// `CURLOPT_MAXAGE_CONN`, default 118 s there). Default 60 s.
    pub idle_age: Duration,
    /// What one [`RequestPool::poll`] may do over all requests: socket
    /// bytes and wall-clock time ([`PollBudget`], the same type and default
    /// as every front end's: 4 MiB, 1 ms, a sixteenth of a 60 fps frame).
    /// Time is checked between turns, each sized by its request's measured
    /// cost per byte to fit half the time left: the last turns shrink by
    /// halves, and the overshoot is a fraction of one small turn (game_loop,
    /// 2 ms: `poll()` CPU p99 about 2.3 ms).
    pub poll_budget: PollBudget,
    /// Most bytes of a streamed body ([`BodySettings::stream`](crate::BodySettings::stream))
    /// waiting to be taken before its request stops reading (it resumes
    /// once half of it was taken). Default 4 MiB, a default poll's byte
    /// budget, so a caller who takes the pieces after every poll never
    /// slows a download. At least 64 KiB.
    pub stream_high_water: usize,
    /// Most name lookups running at once, each on its own thread; further
    /// ones wait in a FIFO queue. IP literals never take one. Default 4.
    pub resolver_workers: usize,
    /// How long a resolved name is reused. Default 60 s (curl's
    /// `CURLOPT_DNS_CACHE_TIMEOUT`).
    pub dns_cache_ttl: Duration,
    /// How long a failed lookup is reused (so a name that fails is not asked
    /// for again by every queued request). Default 5 s.
    pub dns_failure_ttl: Duration,
    /// Most names in the DNS cache (the oldest goes first). Default 256.
    pub dns_cache_entries: usize,
    /// The no-starvation rule of the wait queue (see
    /// [`RequestPool::request_with_priority`]): every `oldest_every`-th
    /// request admitted from the queue is the oldest one waiting, whatever
    /// its priority, so a request waits for at most about `oldest_every`
    /// times as many admissions as there are requests older than it. 0:
    /// strict priority (a low priority may wait as long as higher ones keep
    /// coming). Default 8.
    pub oldest_every: u32,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            max_connections_per_origin: 6,
            max_connections: 64,
            max_idle_per_origin: 6,
            max_idle: 32,
            idle_age: Duration::from_secs(60),
            poll_budget: PollBudget::default(),
            stream_high_water: 4 << 20,
            resolver_workers: 4,
            dns_cache_ttl: Duration::from_secs(60),
            dns_failure_ttl: Duration::from_secs(5),
            dns_cache_entries: 256,
            oldest_every: 8,
        }
    }
}

/// Most bytes a pipe holds between a download and its upload; past this the
/// download's pieces wait (and past its streamed high water, one poll's
/// byte budget, it stops reading).
const PIPE_HIGH_WATER: usize = 1 << 20;

/// A download whose body is an upload's ([`RequestPool::pipe`]).
struct PipeLink {
    from: RequestId,
    to: RequestId,
    shared: Arc<Mutex<PipeState>>,
}

/// Progress of one request, readable at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestProgress {
    /// Where its connection is, with [`crate::HttpClient`]'s names.
    pub status: Status,
    /// Body bytes of the current response received so far (wire bytes).
    pub downloaded: u64,
    /// The current response's Content-Length, when known.
    pub body_size: Option<u64>,
    /// Request body bytes handed to the connection so far.
    pub uploaded: u64,
}

pub use crate::time::Clock;

/// The connection side of the pool: the reactor, the resolver, and the
/// connection cache with its limits (from [`PoolSettings`], synced at each
/// [`RequestPool::poll`] and [`RequestPool::wait`]).
struct Conns {
    reactor: Reactor,
    resolver: Resolver,
    settings: PoolSettings,
    clock: Clock,
    cache: ConnCache,
}

/// The cache's limits in the pool's settings.
fn cache_limits(settings: &PoolSettings) -> CacheLimits {
    CacheLimits {
        per_origin: settings.max_connections_per_origin,
        total: settings.max_connections,
        idle_per_origin: settings.max_idle_per_origin,
        idle: settings.max_idle,
        idle_age: settings.idle_age,
    }
}

fn pool_resolver(lookup: LookupFn, settings: &PoolSettings, clock: &Clock) -> Resolver {
    let config = ResolverConfig {
        workers: settings.resolver_workers,
        ttl: settings.dns_cache_ttl,
        failure_ttl: settings.dns_failure_ttl,
        max_entries: settings.dns_cache_entries,
    };
    Resolver::with_config(lookup, config, Arc::clone(clock))
}

impl Conns {
    /// [`PoolSettings::stream_high_water`], at least 64 KiB.
    fn stream_high_water(&self) -> usize {
        self.settings.stream_high_water.max(64 * 1024)
    }

    /// The pool's connections as the job in slot `owner` sees them while it
    /// is stepped: the connections it opens or takes are its own.
    fn serving(&mut self, owner: u32) -> Serving<'_> {
        Serving { conns: self, owner }
    }

    /// The cache's limits as the settings now say ([`RequestPool::settings_mut`]
    /// may have changed them).
    fn sync_limits(&mut self) {
        self.cache.set_limits(cache_limits(&self.settings));
    }

    /// Close `conn` (a cancelled request's).
    fn close(&mut self, conn: Box<Conn>) {
        self.cache.close(conn, self.reactor.registry());
    }
}

/// [`Conns`] for one job: the owner of what it takes.
struct Serving<'a> {
    conns: &'a mut Conns,
    owner: u32,
}

impl Connections for Serving<'_> {
    fn registry(&self) -> &Registry {
        self.conns.reactor.registry()
    }

    fn stream_high_water(&self) -> usize {
        self.conns.stream_high_water()
    }

    fn resolver(&self) -> &Resolver {
        &self.conns.resolver
    }

    fn waker(&self) -> &Arc<Waker> {
        self.conns.reactor.waker()
    }

    fn take_woken(&mut self) {
        // A wake is for every resolving request: the pool clears it once
        // per poll.
    }

    fn take_idle(&mut self, target: &Target) -> Option<Box<Conn>> {
        self.conns.cache.take_idle(target, self.owner)
    }

    fn new_token(&mut self, key: &ConnKey) -> Option<Token> {
        let Conns { reactor, cache, .. } = &mut *self.conns;
        cache.new_token(key, self.owner, reactor.registry())
    }

    fn release(&mut self, conn: Box<Conn>, keep: bool) {
        let now = (self.conns.clock)();
        let Conns { reactor, cache, .. } = &mut *self.conns;
        cache.release(conn, keep, now, reactor.registry());
    }
}

/// Requests waiting for a connection, per [`ConnKey`] (per origin; per
/// proxy for plain http through one: the requests that wait for the same
/// connections), served highest priority first across keys, oldest first
/// among equals; every `oldest_every`-th admission goes to the oldest
/// request waiting whatever its priority (no starvation). A key whose best
/// request cannot get a connection is skipped for the rest of a pass, so a
/// pass costs a few look-ups per key, not one per waiting request, and no
/// allocation.
#[derive(Default)]
struct WaitQueue {
    by_key: HashMap<ConnKey, KeyQueue>,
    next_seq: u64,
    len: usize,
    /// Admissions since the last one that went to the oldest request.
    since_oldest: u32,
    /// Admission passes so far (what [`KeyQueue::blocked_in`] compares
    /// with).
    passes: u64,
}

/// One key's waiting requests, by rank and by age: (slot, the slot's
/// generation: a cancelled request's entry never admits the slot's next
/// request).
#[derive(Default)]
struct KeyQueue {
    by_rank: BTreeMap<(Reverse<i32>, u64), (u32, u32)>,
    by_age: BTreeMap<u64, i32>,
    /// The pass in which its best request could not get a connection
    /// (skipped for the rest of that pass).
    blocked_in: u64,
}

impl WaitQueue {
    /// Queue slot `index` under `key`; its arrival number (what
    /// [`reprioritize`](Self::reprioritize) finds it by).
    /// Cost: O(log n); the key is copied only when no request waits under
    /// it.
    fn push(&mut self, key: &ConnKey, index: u32, generation: u32, priority: i32) -> u64 {
        let seq = self.next_seq;
        if !self.by_key.contains_key(key) {
            self.by_key.insert(key.clone(), KeyQueue::default());
        }
        let q = self.by_key.get_mut(key).expect("inserted above");
        q.by_rank
            .insert((Reverse(priority), seq), (index, generation));
        q.by_age.insert(seq, priority);
        self.next_seq += 1;
        self.len += 1;
        seq
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Move the entry `seq` of `key` from priority `old` to `new` (its
    /// arrival, and so its place among equals, kept). Cost: O(log n).
    fn reprioritize(&mut self, key: &ConnKey, seq: u64, old: i32, new: i32) {
        let Some(q) = self.by_key.get_mut(key) else {
            return;
        };
        if let Some(entry) = q.by_rank.remove(&(Reverse(old), seq)) {
            q.by_rank.insert((Reverse(new), seq), entry);
            q.by_age.insert(seq, new);
        }
    }

    /// Offer a connection to the best waiting request of each key in turn
    /// (highest priority, then oldest; the oldest whatever its priority on
    /// every `oldest_every`-th admission): `admit(slot, generation)` says
    /// `Some(true)` (admitted), `Some(false)` (still waiting: its key is
    /// full for this pass) or `None` (gone).
    fn admit(&mut self, oldest_every: u32, mut admit: impl FnMut(u32, u32) -> Option<bool>) {
        self.passes += 1;
        let pass = self.passes;
        let mut emptied = false;
        loop {
            let oldest_turn = oldest_every > 0 && self.since_oldest + 1 >= oldest_every;
            // Each key's candidate, as (rank across keys, arrival, priority).
            let best = self
                .by_key
                .values_mut()
                .filter(|q| q.blocked_in != pass)
                .filter_map(|q| {
                    let (seq, priority) = if oldest_turn {
                        q.by_age.first_key_value().map(|(s, p)| (*s, *p))?
                    } else {
                        q.by_rank.first_key_value().map(|((p, s), _)| (*s, p.0))?
                    };
                    let rank = if oldest_turn { 0 } else { priority };
                    Some(((Reverse(rank), seq), priority, q))
                })
                .min_by_key(|(rank, _, _)| *rank);
            let Some(((_, seq), priority, queue)) = best else {
                break;
            };
            let (i, generation) = queue.by_rank[&(Reverse(priority), seq)];
            match admit(i, generation) {
                Some(false) => queue.blocked_in = pass,
                found => {
                    queue.by_rank.remove(&(Reverse(priority), seq));
                    queue.by_age.remove(&seq);
                    self.len -= 1;
                    emptied |= queue.by_rank.is_empty();
                    if found == Some(true) {
                        self.since_oldest = if oldest_turn {
                            0
                        } else {
                            self.since_oldest + 1
                        };
                    }
                }
            }
        }
        if emptied {
            self.by_key.retain(|_, q| !q.by_rank.is_empty());
        }
    }
}

/// A request in its slot: as it was given, while it waits for its first
/// connection (about 420 bytes with its route, and its URL: 10 000
/// requests queued at once take a few MiB, not the 1.2 KiB of a running
/// job each), or running.
enum Work {
    Queued(Box<Queued>),
    Running(Box<Job>),
}

/// What [`RequestPool::request`] was given, until the request is admitted
/// (or looked at closely: `collect_into`, `pipe`).
struct Queued {
    settings: Arc<Settings>,
    /// Where `url` connects, and the key it waits under.
    route: Route,
    url: url::Url,
    method: String,
    headers: Vec<(String, String)>,
    body: RequestBody,
    start: Instant,
    progress: Arc<Progress>,
}

/// The running job of `work`, built from its queued form first if need be.
fn job_of(work: &mut Option<Work>) -> Option<&mut Job> {
    if let Some(Work::Queued(_)) = work {
        if let Some(Work::Queued(q)) = work.take() {
            *work = Some(Work::Running(Box::new(into_job(*q))));
        }
    }
    match work {
        Some(Work::Running(job)) => Some(job),
        _ => None,
    }
}

fn into_job(q: Queued) -> Job {
    let Queued {
        settings,
        route,
        url,
        method,
        headers,
        body,
        start,
        progress,
    } = q;
    let mut job = Job::new(settings, route, url, method, headers, body, start, progress);
    job.consult_cache(true);
    job
}

/// The slot of request `id` while it is in flight (its generation, and
/// work in it).
fn slot_of(slots: &mut [Slot], id: RequestId) -> Option<&mut Slot> {
    slots
        .get_mut(id.index as usize)
        .filter(|s| s.generation == id.generation && s.job.is_some())
}

/// The key a request waits under for a connection.
fn wait_key(work: &Work) -> &ConnKey {
    match work {
        Work::Queued(q) => &q.route.key,
        Work::Running(job) => job.conn_key(),
    }
}

/// The running job of `work`, `None` while it is queued.
fn running(work: &mut Option<Work>) -> Option<&mut Job> {
    match work {
        Some(Work::Running(job)) => Some(job),
        _ => None,
    }
}

struct Slot {
    generation: u32,
    job: Option<Work>,
    progress: Arc<Progress>,
    /// In the run queue.
    queued: bool,
    /// The earliest deadline of this request in the deadline heap.
    armed: Option<Instant>,
    /// What this request's turns cost per byte read: a gzip body costs
    /// several times a plain one per socket byte.
    cost: TurnCost,
    /// Its priority in the wait queue (higher first).
    priority: i32,
    /// Its entry in the wait queue (arrival number) while it waits.
    wait_seq: Option<u64>,
}

/// Many requests under one [`poll`](Self::poll), on one thread: per-origin
/// keep-alive, connection limits with a FIFO queue, and a frame budget.
///
/// Each request runs the same logic as an [`crate::HttpRequest`] (redirects,
/// timeouts, gzip, body limit, download file, the one safe retry) and ends in
/// the same [`Completed`]. Connections are kept per target (scheme, host,
/// port, proxy, TLS settings: never reused across TLS settings or proxies,
/// as curl's CONNREUSE rules) and shared by the requests that follow; a
/// connection to an HTTP proxy carries plain `http` requests for any
/// origin (absolute-form), an `https` tunnel through it only its origin's.
///
/// `poll()` never blocks and does bounded work: it reads at most
/// [`PoolSettings::poll_budget`]'s socket bytes, stops starting new work
/// once its time has passed (checked between turns; each
/// turn reads at most what its request's measured cost per byte fits in
/// half the time left, between 4 and 512 KiB, so the overshoot is about
/// one small turn), and steps
/// only the requests that have something to do (an event on their socket, a
/// deadline due, a lookup done): its cost follows ready events, not the
/// number of connections. What is left is picked up by the next call, and
/// the requests left over go first then, so a large download cannot starve
/// the others.
///
/// ```no_run
/// use pollhttp::{RequestPool, Settings};
/// use std::time::Duration;
///
/// let mut pool = RequestPool::new().unwrap();
/// let ids: Vec<_> = (0..8)
///     .map(|i| pool.get(&format!("http://127.0.0.1:8080/asset{i}"), &Settings::default()).unwrap())
///     .collect();
/// let mut done = 0;
/// while done < ids.len() {
///     pool.poll(); // once per frame in a game
///     while let Some((id, completed)) = pool.poll_completed() {
///         println!("{id}: {} {} bytes", completed.result, completed.body.len());
///         done += 1;
///     }
///     pool.wait(Some(Duration::from_millis(16)));
/// }
/// ```
pub struct RequestPool {
    conns: Conns,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// Requests with something to do, in turn order.
    run: VecDeque<u32>,
    /// Requests waiting for a connection, per [`ConnKey`], oldest first.
    waiting: WaitQueue,
    /// Deadlines (connect, total, idle) of requests: (when, slot, generation).
    deadlines: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    completed: VecDeque<(RequestId, Completed)>,
    /// Events were collected by `wait`; the next `poll` uses them.
    fresh_events: bool,
    /// Requests were added since the waiting queue was last looked at.
    arrivals: bool,
    in_flight: usize,
    /// Socket bytes read over the pool's life.
    bytes_read: u64,
    /// What turns cost over all requests per byte read: the first guess
    /// for a request not measured yet.
    turn_cost: TurnCost,
    /// The settings of the last request started, shared with the next one
    /// made with equal settings.
    last_settings: Option<Arc<Settings>>,
    /// Downloads piped into uploads.
    pipes: Vec<PipeLink>,
    /// Background revalidations of stale cached answers (RFC 5861
    /// `stale-while-revalidate`): in flight, but not the caller's (their
    /// completions are dropped, and [`in_flight`](RequestPool::in_flight)
    /// does not count them).
    hidden: Vec<RequestId>,
}

impl fmt::Debug for RequestPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestPool")
            .field("in_flight", &self.in_flight)
            .field("connections", &self.conns.cache.open())
            .field("idle", &self.conns.cache.idle())
            .field("completed", &self.completed.len())
            .finish()
    }
}

impl RequestPool {
    /// A pool with default [`PoolSettings`] and its own reactor.
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub fn new() -> io::Result<RequestPool> {
        RequestPool::with_settings(PoolSettings::default())
    }

    /// A pool with these limits and budgets.
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub fn with_settings(settings: PoolSettings) -> io::Result<RequestPool> {
        RequestPool::with_clock(settings, Arc::new(Instant::now))
    }

    /// A pool whose logic reads the time from `clock` (deadlines, the time
    /// budget, idle ages): a test can drive it with a fake clock.
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub fn with_clock(settings: PoolSettings, clock: Clock) -> io::Result<RequestPool> {
        let resolver = pool_resolver(Arc::new(system_lookup), &settings, &clock);
        Ok(RequestPool {
            conns: Conns {
                reactor: Reactor::new(256)?,
                resolver,
                cache: ConnCache::new(cache_limits(&settings)),
                settings,
                clock,
            },
            slots: Vec::new(),
            free_slots: Vec::new(),
            run: VecDeque::new(),
            waiting: WaitQueue::default(),
            deadlines: BinaryHeap::new(),
            completed: VecDeque::new(),
            fresh_events: false,
            arrivals: false,
            in_flight: 0,
            bytes_read: 0,
            turn_cost: TurnCost::default(),
            last_settings: None,
            pipes: Vec::new(),
            hidden: Vec::new(),
        })
    }

    /// Replace the name lookup (default: the system resolver), e.g. to pin
    /// names in tests; it runs on the resolver's worker threads. The DNS
    /// cache starts empty.
    pub fn set_lookup(&mut self, lookup: LookupFn) {
        self.conns.resolver = pool_resolver(lookup, &self.conns.settings, &self.conns.clock);
    }

    /// The limits and budgets.
    pub fn settings(&self) -> &PoolSettings {
        &self.conns.settings
    }

    /// Change the limits and budgets (they apply from the next call).
    pub fn settings_mut(&mut self) -> &mut PoolSettings {
        &mut self.conns.settings
    }

    fn now(&self) -> Instant {
        (self.conns.clock)()
    }

    /// Start a GET without a body. See [`request`](Self::request).
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub fn get(
        &mut self,
        url: impl IntoUrl,
        settings: &Settings,
    ) -> Result<RequestId, RequestError> {
        self.request(url, &[], "GET", RequestBody::Empty, settings)
    }

    /// Start a request: what `HttpRequest::request_body` takes, with its own
    /// [`Settings`] (timeout, idle timeout, body size limit, download file,
    /// gzip, redirects, chunk size, TLS, proxies; `use_threads` and
    /// `poll_budget` do not apply: the pool's budget does). Returns at once
    /// with the request's id; nothing is sent before the next
    /// [`poll`](Self::poll). Never blocks.
    ///
    /// Cost: the checks of the URL and fields, and a few hundred bytes
    /// while the request waits for a connection (its URL, fields, body and
    /// settings; requests made one after another with equal settings share
    /// one copy of them). It becomes a running job when admitted.
    ///
    /// With a cache ([`Settings::cache`]), the request is looked up in it
    /// here (a disk store: the entry's metadata file opened and read, a few
    /// hundred bytes; the body is read later, within the polls' budgets):
    /// one the cache answers (a fresh hit, or `OnlyIfCached`) needs no
    /// connection, so it runs from the next [`poll`](Self::poll) on,
    /// without waiting behind requests that need one (and outside the
    /// priority order, which orders connections). One that goes to the
    /// network waits as a running job (about 1.3 KiB).
    ///
    /// # Errors
    /// As `HttpRequest::request_body`, at once: nothing was started.
    pub fn request(
        &mut self,
        url: impl IntoUrl,
        headers: &[(&str, &str)],
        method: &str,
        body: impl Into<RequestBody>,
        settings: &Settings,
    ) -> Result<RequestId, RequestError> {
        self.request_with_priority(0, url, headers, method, body, settings)
    }

    /// [`request`](Self::request) with a priority for the wait queue
    /// (default 0; higher goes first), changeable while the request waits
    /// ([`set_priority`](Self::set_priority): a camera moved).
    ///
    /// The rule, applied whenever connections are scarce (a per-origin or
    /// total limit reached, so requests wait for one): the waiting request
    /// with the highest priority gets the next connection its origin can
    /// have; among equal priorities the one that waited longest (FIFO). No
    /// starvation: every [`PoolSettings::oldest_every`]-th admission (8 by
    /// default) goes to the oldest waiting request whatever its priority,
    /// so a low priority waits for at most about that many times the
    /// admissions of the requests older than it. A request that has its
    /// connection runs to its end: priorities order admission, they do not
    /// pause running requests by themselves ([`pause`](Self::pause) one,
    /// or cancel it, to make room).
    ///
    /// Cost: as [`request`](Self::request), plus O(log n) in the queue's
    /// length; each admission compares one candidate per origin waiting.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub fn request_with_priority(
        &mut self,
        priority: i32,
        url: impl IntoUrl,
        headers: &[(&str, &str)],
        method: &str,
        body: impl Into<RequestBody>,
        settings: &Settings,
    ) -> Result<RequestId, RequestError> {
        let body = body.into();
        let now = self.now();
        let (url, headers) = prepare(url, headers, method, &body, settings)?;
        let progress = Arc::new(Progress::default());
        progress
            .body_size
            .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
        // Requests made with equal settings share one copy.
        let settings = match &self.last_settings {
            Some(last) if last.same_as(settings) => Arc::clone(last),
            _ => {
                let copy = Arc::new(settings.clone());
                self.last_settings = Some(Arc::clone(&copy));
                copy
            }
        };
        let route = Route::new(target_for(&url, &settings));
        let timeout = settings.timeouts.total;
        let queued = Queued {
            settings,
            route,
            url,
            method: method.to_string(),
            headers,
            body,
            start: now,
            progress: Arc::clone(&progress),
        };
        let index = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    job: None,
                    progress: Arc::clone(&progress),
                    queued: false,
                    armed: None,
                    cost: TurnCost::default(),
                    priority: 0,
                    wait_seq: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        // With a cache, it is looked up now: a request the cache answers
        // needs no connection and runs at once instead of waiting behind
        // requests that do (a hit costs no socket). One that goes to the
        // network waits as a running job (its lookup done).
        let uses_cache = queued.settings.cache.cache.is_some()
            && queued.settings.cache.mode != crate::CacheMode::Bypass;
        let work = if uses_cache {
            Work::Running(Box::new(into_job(queued)))
        } else {
            Work::Queued(Box::new(queued))
        };
        let answered = matches!(&work, Work::Running(job) if job.needs_no_connection());
        let slot = &mut self.slots[index as usize];
        let generation = slot.generation;
        // It asks for a connection by priority, in arrival order with those
        // of its priority.
        slot.wait_seq = (!answered).then(|| {
            self.waiting
                .push(wait_key(&work), index, generation, priority)
        });
        slot.job = Some(work);
        slot.progress = progress;
        slot.queued = false;
        slot.priority = priority;
        // Its timeout counts from now, queued or not.
        slot.armed = timeout.map(|t| now + t);
        if let Some(d) = slot.armed {
            self.deadlines.push(Reverse((d, index, generation)));
        }
        self.in_flight += 1;
        if answered {
            self.enqueue(index);
        } else {
            self.arrivals = true;
        }
        Ok(RequestId { index, generation })
    }

    /// Start an upload whose body is the body of the request `from` as it
    /// arrives (got's `stream.pipeline`): `from`'s body is streamed (as with
    /// [`BodySettings::stream`](crate::BodySettings::stream)) into the new request, sent chunked, with
    /// back-pressure both ways: the pipe holds at most 1 MiB, and the
    /// download stops reading while the upload cannot take more, so a pipe
    /// of any size holds a few MiB. `from` completes as usual (its
    /// [`Completed::body`] empty); if it fails, the upload fails
    /// ([`RequestResult::ConnectionError`](crate::RequestResult) with an I/O
    /// `BrokenPipe` cause); if the upload ends first, `from` is stopped and
    /// completes with [`RequestFailure::PipeClosed`](crate::RequestFailure).
    /// Never blocks.
    ///
    /// # Errors
    /// [`RequestError::NotPipeable`] when `from` is not in flight or its
    /// body has started arriving (pipe right after starting it); else as
    /// [`request`](Self::request).
    pub fn pipe(
        &mut self,
        from: RequestId,
        url: impl IntoUrl,
        headers: &[(&str, &str)],
        method: &str,
        settings: &Settings,
    ) -> Result<RequestId, RequestError> {
        let streaming = slot_of(&mut self.slots, from)
            .and_then(|s| job_of(&mut s.job))
            .is_some_and(|job| job.stream_from_now());
        if !streaming {
            return Err(RequestError::NotPipeable);
        }
        let shared = Arc::new(Mutex::new(PipeState::default()));
        let body = RequestBody::Piped(Piped {
            shared: Arc::clone(&shared),
        });
        let to = self.request(url, headers, method, body, settings)?;
        self.pipes.push(PipeLink { from, to, shared });
        Ok(to)
    }

    fn in_flight_job(&mut self, id: RequestId) -> Option<&mut Job> {
        slot_of(&mut self.slots, id).and_then(|s| job_of(&mut s.job))
    }

    /// Move what the piped downloads received into their pipes (up to the
    /// high water), wake the uploads that got something, and settle the
    /// pipes whose ends are gone. Cost: per pipe, a lock and the pieces
    /// moved (shared, not copied).
    fn move_pipes(&mut self) {
        let now = (self.conns.clock)();
        let mut i = 0;
        while i < self.pipes.len() {
            let PipeLink { from, to, .. } = self.pipes[i];
            let shared = Arc::clone(&self.pipes[i].shared);
            let upload_alive = self.in_flight_job(to).is_some();
            let registry = self.conns.reactor.registry();
            let slots = &mut self.slots;
            let Some(job) = slot_of(slots, from).and_then(|s| job_of(&mut s.job)) else {
                // The download is gone (completed or cancelled) without
                // closing the pipe: the upload fails.
                let mut state = lock(&shared);
                if state.end == PipeEnd::Open {
                    state.end = PipeEnd::Failed;
                }
                drop(state);
                self.enqueue(to.index);
                self.pipes.swap_remove(i);
                continue;
            };
            if !upload_alive {
                // The upload ended first: stop the download.
                self.pipes.swap_remove(i);
                if self.cancel(from) {
                    self.completed.push_back((
                        from,
                        Completed::failed(
                            crate::RequestResult::RequestFailed,
                            crate::RequestFailure::PipeClosed,
                        ),
                    ));
                }
                continue;
            }
            let mut moved = false;
            let mut resume = false;
            {
                let mut state = lock(&shared);
                while state.len < PIPE_HIGH_WATER {
                    let (piece, r) = job.take_chunk(now);
                    resume |= r;
                    let Some(piece) = piece else { break };
                    state.len += piece.len();
                    state.pieces.push_back(piece);
                    moved = true;
                }
            }
            if resume {
                if let Some(conn) = job.conn_mut() {
                    conn.resume(registry);
                }
                self.enqueue(from.index);
            }
            if moved {
                self.enqueue(to.index);
            }
            i += 1;
        }
    }

    /// `id` completed with `done`: if it feeds a pipe, its last pieces go
    /// in and the pipe is closed (done or failed), and its upload is woken.
    fn close_pipe(&mut self, id: RequestId, done: &mut Completed) {
        let Some(k) = self.pipes.iter().position(|l| l.from == id) else {
            return;
        };
        let link = self.pipes.swap_remove(k);
        let mut state = lock(&link.shared);
        let rest = std::mem::take(&mut done.body);
        if !rest.is_empty() {
            state.len += rest.len();
            state.pieces.push_back(rest);
        }
        state.end = if done.result == crate::RequestResult::Success {
            PipeEnd::Done
        } else {
            PipeEnd::Failed
        };
        drop(state);
        self.enqueue(link.to.index);
    }

    fn slot(&self, id: RequestId) -> Option<&Slot> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation && s.job.is_some())
    }

    /// Progress of a request in flight, `None` for an unknown, completed or
    /// cancelled id.
    pub fn progress(&self, id: RequestId) -> Option<RequestProgress> {
        use std::sync::atomic::Ordering::Relaxed;
        let p = &self.slot(id)?.progress;
        Some(RequestProgress {
            status: status_from(p.status.load(Relaxed)),
            downloaded: p.downloaded.load(Relaxed),
            body_size: match p.body_size.load(Relaxed) {
                u64::MAX => None,
                n => Some(n),
            },
            uploaded: p.uploaded.load(Relaxed),
        })
    }

    /// The next piece of a streamed body ([`BodySettings::stream`](crate::BodySettings::stream)), as it
    /// arrived (decoded), `None` when none is waiting (or `id` is not in
    /// flight). A request whose backlog passed its high water (the byte
    /// budget, see [`BodySettings::stream`](crate::BodySettings::stream)) resumes reading once half of
    /// it was taken. Never blocks.
    pub fn read_body(&mut self, id: RequestId) -> Option<bytes::Bytes> {
        let now = (self.conns.clock)();
        let slot = slot_of(&mut self.slots, id)?;
        let (piece, resume) = running(&mut slot.job)?.take_chunk(now);
        if resume {
            if let Some(job) = running(&mut slot.job) {
                if let Some(conn) = job.conn_mut() {
                    conn.resume(self.conns.reactor.registry());
                }
            }
            self.enqueue(id.index);
        }
        piece
    }

    /// Collect the body of `id` into `buffer` (cleared first; its capacity
    /// kept) instead of a new allocation: the [`Completed::body`] is then
    /// `buffer`'s allocation (`Vec::from(body)` gives it back whole, to use
    /// again). A game that allocates its asset memory at loading time keeps
    /// `poll()` from paying the page faults of fresh memory: on Linux a
    /// first write to a page costs about as much as receiving it, and a
    /// body that outgrows `buffer` is moved to a larger allocation as usual.
    /// The capacity is zeroed here (a memset, which also touches the
    /// pages), so that a body without a content coding whose length is
    /// known is read from the socket straight into it inside `poll()`: no
    /// receive buffer, no copy (proto's `direct_body_room`). A body streamed to a
    /// [`BodySettings::download_file`](crate::BodySettings::download_file) does not use it; a streamed one
    /// ([`BodySettings::stream`](crate::BodySettings::stream)) uses it only for the pieces still waiting
    /// at its end. A retry starts over in the same buffer; a redirect's or
    /// challenge's body never touches it. Never blocks; cost: the memset of
    /// `buffer`'s capacity.
    ///
    /// # Errors
    /// `buffer` comes back when `id` is not in flight or its body has
    /// started arriving (give it right after starting the request).
    pub fn collect_into(&mut self, id: RequestId, buffer: Vec<u8>) -> Result<(), Vec<u8>> {
        match self.in_flight_job(id) {
            Some(job) => job.collect_into(buffer),
            None => Err(buffer),
        }
    }

    /// Requests started and not yet completed or cancelled.
    pub fn in_flight(&self) -> usize {
        self.in_flight - self.hidden.len()
    }

    /// Connections open (active and idle).
    pub fn connections(&self) -> usize {
        self.conns.cache.open()
    }

    /// Socket bytes read by the pool so far (plaintext, heads included): the
    /// difference over one [`poll`](Self::poll) is the bytes it read.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Connections opened over the pool's life.
    pub fn connections_opened(&self) -> u64 {
        self.conns.cache.opened()
    }

    /// Idle keep-alive connections kept for reuse.
    pub fn idle_connections(&self) -> usize {
        self.conns.cache.idle()
    }

    /// Change the priority of request `id` (see
    /// [`request_with_priority`](Self::request_with_priority)). While it
    /// waits for a connection it moves to its new place at once, keeping its
    /// arrival among equals; once admitted the priority no longer matters
    /// (unless it waits again, for a redirect's new origin). Returns whether
    /// `id` is in flight. Never blocks.
    ///
    /// Cost: while it waits, its connection key is worked out again (a few
    /// small allocations) and its entry moved (O(log n)); else nothing.
    pub fn set_priority(&mut self, id: RequestId, priority: i32) -> bool {
        let Some(slot) = slot_of(&mut self.slots, id) else {
            return false;
        };
        let old = std::mem::replace(&mut slot.priority, priority);
        if let (Some(seq), Some(work)) = (slot.wait_seq, &slot.job) {
            if old != priority {
                self.waiting
                    .reprioritize(wait_key(work), seq, old, priority);
            }
        }
        true
    }

    /// The priority of request `id`, `None` when it is not in flight.
    pub fn priority(&self, id: RequestId) -> Option<i32> {
        self.slot(id).map(|s| s.priority)
    }

    /// Pause request `id` (curl's `curl_easy_pause` with `CURLPAUSE_ALL`):
    /// from its exchange on it reads nothing and sends nothing until
    /// [`resume`](Self::resume), and keeps its connection. A streamed
    /// download of lower priority can so make way for a more urgent one
    /// on a slow link.
    ///
    /// - Nothing is lost: what the server sends waits in the socket (TCP
    ///   flow control slows the server once the buffers are full), and
    ///   pieces already decoded can still be taken with
    ///   [`read_body`](Self::read_body) (taking them does not restart
    ///   reading).
    /// - Its socket leaves the reactor: no event wakes the pool for it and
    ///   no turn is spent on it.
    /// - A request not yet admitted keeps its place in the wait queue; one
    ///   looking up a name or connecting goes on with that, then stops
    ///   before its request is sent.
    /// - Timeouts: the idle timeout does not count while paused (as curl's
    ///   low-speed check) and starts again, whole, at `resume`; the total
    ///   timeout (`Settings::timeouts`' `total`) runs on and ends a paused
    ///   request with [`RequestResult::Timeout`](crate::RequestResult).
    ///   A body that has already arrived completes as usual.
    /// - [`cancel`](Self::cancel) works as on any request.
    ///
    /// Returns whether `id` is in flight (pausing twice is pausing once).
    /// Never blocks. Cost: a queued request's job is built now (as when it
    /// is admitted); one `epoll_ctl` to take a connected socket out of the
    /// reactor.
    pub fn pause(&mut self, id: RequestId) -> bool {
        let registry = self.conns.reactor.registry();
        let Some(job) = slot_of(&mut self.slots, id).and_then(|s| job_of(&mut s.job)) else {
            return false;
        };
        job.pause(registry);
        true
    }

    /// Let a request paused with [`pause`](Self::pause) go on: it takes a
    /// turn in the next [`poll`](Self::poll) (its socket registered again,
    /// taken as readable), and its idle timeout starts again from now.
    /// Returns whether `id` is in flight (resuming one not paused does
    /// nothing). Never blocks. Cost: O(1); the socket goes back into the
    /// reactor (one `epoll_ctl`) in its next turn.
    pub fn resume(&mut self, id: RequestId) -> bool {
        let now = self.now();
        let Some(slot) = slot_of(&mut self.slots, id) else {
            return false;
        };
        let waiting = slot.wait_seq.is_some();
        let resumed = match &mut slot.job {
            Some(Work::Running(job)) => job.unpause(now),
            Some(Work::Queued(_)) => false,
            None => return false,
        };
        // One waiting for a connection gets it from the wait queue.
        if resumed && !waiting {
            self.enqueue(id.index);
        }
        true
    }

    /// Whether request `id` is paused ([`pause`](Self::pause)), `None` when
    /// it is not in flight.
    pub fn is_paused(&self, id: RequestId) -> Option<bool> {
        match &self.slot(id)?.job {
            Some(Work::Running(job)) => Some(job.is_paused()),
            _ => Some(false),
        }
    }

    /// Stop a request at once: nothing completes for `id` afterwards, and its
    /// connection is closed (a lookup or a TLS handshake in progress is
    /// abandoned, never waited for). Returns whether `id` was in flight.
    /// Never blocks.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let Some(slot) = slot_of(&mut self.slots, id) else {
            return false;
        };
        let Some(work) = slot.job.take() else {
            return false;
        };
        // A queued request has no connection yet.
        if let Work::Running(mut job) = work {
            if let Some(conn) = job.take_conn() {
                self.conns.close(conn);
            }
        }
        self.free(id.index);
        true
    }

    fn free(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        slot.job = None;
        slot.generation = slot.generation.wrapping_add(1);
        slot.queued = false;
        slot.cost = TurnCost::default();
        slot.priority = 0;
        slot.wait_seq = None;
        self.free_slots.push(index);
        self.in_flight -= 1;
    }

    fn enqueue(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        if slot.job.is_some() && !slot.queued {
            slot.queued = true;
            self.run.push_back(index);
        }
    }

    /// Collect readiness and hand each event to the request (or idle
    /// connection) that owns the socket.
    /// Readiness from the OS (waiting at most `timeout`), filed to the
    /// requests' turns; whether any event (or a wake-up) came.
    fn collect(&mut self, timeout: Option<Duration>) -> bool {
        let Conns { reactor, cache, .. } = &mut self.conns;
        let slots = &mut self.slots;
        let run = &mut self.run;
        reactor.poll(timeout, |token, ev| match cache.owner(token) {
            Some(Owner::Job(i)) => {
                if let Some(slot) = slots.get_mut(i as usize) {
                    if let Some(job) = running(&mut slot.job) {
                        job.on_event(token, ev);
                        if !slot.queued {
                            slot.queued = true;
                            run.push_back(i);
                        }
                    }
                }
            }
            // Rare (a server closing a kept connection): looked at in the
            // next maintenance.
            Some(Owner::Idle) => cache.on_idle_event(token, ev),
            _ => {}
        })
    }

    /// Drive every request that has something to do, within the budget:
    /// readiness from the OS (a zero-timeout `epoll_wait`), lookups that
    /// finished, deadlines that passed, requests waiting for a connection;
    /// then the completions are ready for
    /// [`poll_completed`](Self::poll_completed). Returns how many completions
    /// are waiting to be taken.
    ///
    /// Never blocks. Cost per call: one `epoll_wait`, then per request with
    /// work turns in rotation (at most 512 KiB of reads each, fewer when
    /// the time left is short: a turn reads what its request's measured
    /// cost per byte fits in half of it, at least 4 KiB) until the byte
    /// budget is used, the time budget has passed, or a whole round made no
    /// progress.
    pub fn poll(&mut self) -> usize {
        let start = self.now();
        self.conns.sync_limits();
        if !self.fresh_events {
            self.collect(Some(Duration::ZERO));
        }
        self.fresh_events = false;
        if self.conns.reactor.take_woken() {
            // A lookup finished (or a WakeHandle): every resolving request
            // takes a look (a cheap check of its lookup).
            for i in 0..self.slots.len() as u32 {
                let resolving = self.slots[i as usize]
                    .job
                    .as_ref()
                    .is_some_and(|w| matches!(w, Work::Running(j) if j.is_resolving()));
                if resolving {
                    self.enqueue(i);
                }
            }
        }
        // Deadlines due.
        while let Some(Reverse((when, i, generation))) = self.deadlines.peek().copied() {
            if when > start {
                break;
            }
            self.deadlines.pop();
            let slot = &mut self.slots[i as usize];
            if slot.generation == generation && slot.armed == Some(when) {
                slot.armed = None;
                self.enqueue(i);
            }
        }
        self.conns
            .cache
            .maintain_idle(start, self.conns.reactor.registry());
        let mut bytes = self.conns.settings.poll_budget.byte_limit();
        let time_budget = self
            .conns
            .settings
            .poll_budget
            .time
            .unwrap_or(Duration::MAX);
        // Requests waiting for a connection ask first, oldest first. Asking
        // is cheap (a cache look-up, or a socket and a non-blocking connect);
        // those admitted take their turns below, within the budget.
        if self.arrivals || self.conns.cache.capacity_freed() {
            self.admit_waiting(start);
        }
        // Idle connections nobody took since the last poll give their
        // buffers back.
        self.conns.cache.release_idle_buffers();
        // Turns round the run queue until a budget runs out or nobody makes
        // progress (a whole round of turns that read nothing).
        // Each turn reads what its request's measured cost per byte lets it
        // do in half the time left (at most a quantum), so the last turns
        // shrink by halves and end about when the budget does, even when
        // one costs twice its estimate.
        let mut fruitless = 0;
        let mut now = self.now();
        while fruitless <= self.run.len() {
            let elapsed = now.saturating_duration_since(start);
            if bytes == 0 || elapsed >= time_budget {
                break;
            }
            let Some(i) = self.run.pop_front() else {
                break;
            };
            self.slots[i as usize].queued = false;
            if self.slots[i as usize].job.is_some() {
                let before = bytes;
                let completions = self.completed.len();
                let slot_cost = self.slots[i as usize].cost;
                let left = time_budget - elapsed;
                let quantum = if slot_cost.is_unknown() {
                    // Not measured yet (a gzip body may cost several times
                    // the others): a short turn, to measure it.
                    self.turn_cost.turn(left).min(FIRST_TURN)
                } else {
                    slot_cost.turn(left)
                };
                self.turn(i, start, &mut bytes, quantum);
                // A connection this turn gave back (kept or closed) goes to
                // the next request waiting for it now, not a poll later.
                if self.conns.cache.capacity_freed() {
                    self.admit_waiting(start);
                }
                let after = self.now();
                let read = before - bytes;
                let took = after.saturating_duration_since(now);
                let slot = &mut self.slots[i as usize];
                // A request that just completed has its slot reset.
                if slot.job.is_some() {
                    slot.cost.sample(read, took);
                }
                self.turn_cost.sample(read, took);
                now = after;
                if bytes == before && self.completed.len() == completions {
                    fruitless += 1;
                } else {
                    fruitless = 0;
                }
            }
        }
        if !self.pipes.is_empty() {
            self.move_pipes();
        }
        self.completed.len()
    }

    /// Offer the connections free now to the requests waiting for one,
    /// oldest first (fairly across keys); those admitted join the run
    /// queue. Cost: per admitted request a cache look-up or a non-blocking
    /// connect; per key still waiting, one comparison.
    fn admit_waiting(&mut self, now: Instant) {
        self.conns.cache.take_capacity_freed();
        self.arrivals = false;
        if self.waiting.is_empty() {
            return;
        }
        let mut waiting = std::mem::take(&mut self.waiting);
        waiting.admit(self.conns.settings.oldest_every, |i, generation| {
            let slot = &mut self.slots[i as usize];
            if slot.generation != generation {
                return None; // cancelled while it waited
            }
            let job = job_of(&mut slot.job)?;
            job.begin(&mut self.conns.serving(i), now);
            if job.is_waiting() {
                return Some(false);
            }
            slot.wait_seq = None;
            self.enqueue(i);
            Some(true)
        });
        self.waiting = waiting;
    }

    /// One request's turn: step it, then file it where it belongs (done,
    /// waiting for a connection, more to do now, or sleeping until an event
    /// or its deadline).
    fn turn(&mut self, i: u32, now: Instant, bytes: &mut usize, quantum: usize) {
        job_of(&mut self.slots[i as usize].job);
        let Some(Work::Running(mut job)) = self.slots[i as usize].job.take() else {
            return;
        };
        let mut quantum = (*bytes).min(quantum);
        let before = quantum;
        let done = job.step(&mut self.conns.serving(i), now, &mut quantum);
        *bytes -= before - quantum;
        self.bytes_read += (before - quantum) as u64;
        let generation = self.slots[i as usize].generation;
        if let Some(mut done) = done {
            let revalidation = job
                .take_revalidation()
                .map(|r| (r, Arc::clone(&job.settings)));
            drop(job);
            self.free(i);
            let id = RequestId {
                index: i,
                generation,
            };
            if !self.pipes.is_empty() {
                self.close_pipe(id, &mut done);
            }
            if let Some(h) = self.hidden.iter().position(|h| *h == id) {
                self.hidden.swap_remove(h);
            } else {
                self.completed.push_back((id, done));
            }
            if let Some(((url, headers), settings)) = revalidation {
                self.revalidate_in_background(url, headers, &settings);
            }
            return;
        }
        let waiting = job.is_waiting();
        let more = !waiting && job.has_pending_work(false, now);
        if waiting {
            let priority = self.slots[i as usize].priority;
            let seq = self.waiting.push(job.conn_key(), i, generation, priority);
            self.slots[i as usize].wait_seq = Some(seq);
        }
        // One live heap entry per request: a later deadline (an idle
        // timeout pushed back by new bytes) is armed when the earlier fires.
        let slot = &mut self.slots[i as usize];
        if let Some(d) = job.next_deadline() {
            if slot.armed.is_none_or(|a| d < a) {
                slot.armed = Some(d);
                self.deadlines.push(Reverse((d, i, generation)));
            }
        }
        slot.job = Some(Work::Running(job));
        if more {
            self.enqueue(i);
        }
    }

    /// Revalidate a stale cached answer in the background: the same GET,
    /// refreshing the cache, its completion dropped. Starting it never fails
    /// the request that was answered; a refusal is ignored.
    fn revalidate_in_background(
        &mut self,
        url: url::Url,
        headers: Vec<(String, String)>,
        settings: &Settings,
    ) {
        let mut settings = settings.clone();
        settings.cache.mode = crate::CacheMode::Refresh;
        settings.body.download_file = None;
        settings.body.stream = false;
        settings.body.resume = false;
        let fields: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Ok(id) = self.request(url, &fields, "GET", "", &settings) {
            self.hidden.push(id);
        }
    }

    /// The next completion, in completion order, with its request's id.
    pub fn poll_completed(&mut self) -> Option<(RequestId, Completed)> {
        self.completed.pop_front()
    }

    /// The completion of `id`, if it is waiting to be taken (the others stay
    /// in their order). Cost: a scan of the completions waiting.
    pub fn take_completed(&mut self, id: RequestId) -> Option<Completed> {
        let i = self.completed.iter().position(|(c, _)| *c == id)?;
        self.completed.remove(i).map(|(_, c)| c)
    }

    /// Every completion waiting to be taken, in completion order.
    pub fn drain_completed(&mut self) -> impl Iterator<Item = (RequestId, Completed)> + '_ {
        self.completed.drain(..)
    }

    fn has_pending_work(&self) -> bool {
        !self.completed.is_empty()
            || !self.run.is_empty()
            || (!self.waiting.is_empty() && (self.arrivals || self.conns.cache.capacity_freed()))
            || self.conns.reactor.is_woken()
    }

    fn next_deadline(&self) -> Option<Instant> {
        let job = self.deadlines.peek().map(|Reverse((d, _, _))| *d);
        // (A stale entry only wakes the pool early; never late.)
        [job, self.conns.cache.next_idle_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// How long the pool can sleep before [`poll`](Self::poll) has work
    /// without a socket event: `Some(ZERO)` when work is pending now, the
    /// time to the nearest deadline (a request's connect, total or idle
    /// timeout, an idle connection's age), or `None` when only socket events
    /// can bring work. For nesting the pool in another event loop with
    /// the pool's `AsRawFd`.
    pub fn next_timeout(&self) -> Option<Duration> {
        if self.has_pending_work() {
            return Some(Duration::ZERO);
        }
        self.next_deadline()
            .map(|d| d.saturating_duration_since(self.now()))
    }

    /// Sleep in `epoll_wait` until a socket, the resolver or a
    /// [`WakeHandle`] has work for [`poll`](Self::poll), the nearest deadline
    /// is due, or `timeout` passes (`None`: no limit but the deadlines).
    /// Returns at once when work is pending. Never spins. Returns whether
    /// something may be ready for `poll` (as every front end's `wait`):
    /// work was pending, an event or a wake-up came, or a deadline is due.
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        self.conns.sync_limits();
        if self.has_pending_work() {
            return true;
        }
        let deadline = self.next_deadline();
        let got = self.collect(sleep_for(timeout, deadline, self.now()));
        self.fresh_events = true;
        got || deadline.is_some_and(|d| self.now() >= d)
    }

    /// A handle that wakes this pool's [`wait`](Self::wait) (or the program's
    /// own `epoll_wait` on the pool's `AsRawFd`) from any thread.
    pub fn wake_handle(&self) -> WakeHandle {
        WakeHandle(Arc::clone(self.conns.reactor.waker()))
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for RequestPool {
    /// The pool's epoll file descriptor: readable when [`RequestPool::poll`]
    /// has socket work. Put it in your own `epoll`/`select` with
    /// [`RequestPool::next_timeout`] as the timeout.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.conns.reactor.as_raw_fd()
    }
}

impl Drop for RequestPool {
    /// Closes every connection at once; lookups still running finish on
    /// their own threads and are discarded (never joined).
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(job) = running(&mut slot.job) {
                if let Some(conn) = job.take_conn() {
                    self.conns.close(conn);
                }
            }
        }
        self.conns.cache.close_idle(self.conns.reactor.registry());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_backlog_holds_its_own_setting_at_least_64_kib() {
        for (set, high_water) in [
            (4 << 20, 4 << 20),
            (1024, 64 << 10),
            (usize::MAX, usize::MAX),
        ] {
            let pool = RequestPool::with_settings(PoolSettings {
                stream_high_water: set,
                ..PoolSettings::default()
            })
            .unwrap();
            assert_eq!(pool.conns.stream_high_water(), high_water, "{set}");
        }
        assert_eq!(
            PoolSettings::default().poll_budget,
            crate::PollBudget::default(),
            "one default for every front end"
        );
    }
}
