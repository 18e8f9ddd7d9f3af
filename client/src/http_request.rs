//! [`HttpRequest`]: one request at a time, Godot's HTTPRequest node done
//! right: redirects per RFC 9110, one wall-clock deadline, an idle timeout,
//! gzip, a body limit that counts decoded bytes, download to a file, a
//! non-blocking cancel, an optional worker thread — and, unlike Godot, the
//! connection kept for the next request to the same origin. The request
//! logic is the shared [`Job`]; this file is the driver that gives it one
//! connection and the front end around it.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Registry, Token, Waker};

use crate::body::RequestBody;
use crate::budget::{Allowance, FrameBudget, PollBudget};
use crate::conn::{Conn, ConnKey, Route, Target};
use crate::error::RequestError;
use crate::reactor::Reactor;
use crate::request::job::{target_for, Connections, Job};
use crate::request::{
    prepare, status_code, status_from, Completed, IntoUrl, Progress, RequestFailure, RequestResult,
    Settings,
};
use crate::resolve::{system_lookup, LookupFn, Resolver, ResolverConfig};
use crate::status::{Status, WakeHandle};
use crate::time::{sleep_for, Clock};

/// The machinery one request at a time runs on: a reactor, the resolver,
/// the clock, and the connection kept from the last request.
pub(crate) struct Driver {
    reactor: Reactor,
    resolver: Resolver,
    /// Where every step and wait reads the time (inline and on the worker).
    clock: Clock,
    kept: Option<Box<Conn>>,
    /// Events were collected by `wait`; the next step uses them.
    fresh_events: bool,
}

/// The token of the driver's one connection.
const CONN: Token = Token(0);

impl Driver {
    fn new(resolver: Resolver, clock: Clock) -> std::io::Result<Driver> {
        Ok(Driver {
            reactor: Reactor::new(8)?,
            resolver,
            clock,
            kept: None,
            fresh_events: false,
        })
    }

    fn collect(&mut self, job: &mut Job, timeout: Option<Duration>) -> bool {
        self.reactor
            .poll(timeout, |token, ev| job.on_event(token, ev))
    }

    /// Collect readiness (unless `wait` just did), then step the job at the
    /// clock's time.
    fn step(&mut self, job: &mut Job, budget: &mut usize) -> Option<Completed> {
        if !self.fresh_events {
            self.collect(job, Some(Duration::ZERO));
        }
        self.fresh_events = false;
        let now = (self.clock)();
        job.step(self, now, budget)
    }

    /// One `poll`'s work: collect readiness (unless `wait` just did), then
    /// step the job in turns within `budget` and what `frame` has left, the
    /// clock read between turns (one turn when the budget has no time).
    /// What was read is spent from `frame`.
    fn step_within(
        &mut self,
        job: &mut Job,
        budget: PollBudget,
        frame: Option<&FrameBudget>,
    ) -> Option<Completed> {
        if !self.fresh_events {
            self.collect(job, Some(Duration::ZERO));
        }
        self.fresh_events = false;
        let mut now = (self.clock)();
        let mut allowance = Allowance::new(budget, now, frame);
        let mut read_total = 0;
        let done = loop {
            let turn = allowance.next_turn(now);
            let mut left = turn;
            let done = job.step(self, now, &mut left);
            let read = turn - left;
            read_total += read;
            if done.is_some() || read == 0 || allowance.deadline.is_none() {
                break done;
            }
            let later = (self.clock)();
            allowance.spent(read, later.saturating_duration_since(now));
            now = later;
            if allowance.next_turn(now) == 0 {
                break None;
            }
        };
        if let Some(frame) = frame {
            frame.spend(read_total);
        }
        done
    }

    /// Sleep until the job has work, `timeout` passes, or one of its
    /// deadlines (connect, total, idle) is due. Never spins.
    fn wait(&mut self, job: &mut Job, timeout: Option<Duration>) -> bool {
        let now = (self.clock)();
        if job.has_pending_work(self.reactor.is_woken(), now) {
            return true;
        }
        let deadline = job.next_deadline();
        let got = self.collect(job, sleep_for(timeout, deadline, now));
        self.fresh_events = true;
        got || deadline.is_some_and(|d| (self.clock)() >= d)
    }
}

impl Connections for Driver {
    fn registry(&self) -> &Registry {
        self.reactor.registry()
    }

    fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    fn waker(&self) -> &Arc<Waker> {
        self.reactor.waker()
    }

    fn take_woken(&mut self) {
        self.reactor.take_woken();
    }

    fn take_idle(&mut self, target: &Target) -> Option<Box<Conn>> {
        let mut kept = self.kept.take()?;
        if !kept.reuse_for(target) {
            kept.close(self.reactor.registry());
            return None;
        }
        // A fresh look at the socket: did the server close it meanwhile?
        self.reactor.poll(Some(Duration::ZERO), |token, ev| {
            if token == kept.token() {
                kept.on_event(ev);
            }
        });
        Some(kept)
    }

    fn new_token(&mut self, _key: &ConnKey) -> Option<Token> {
        Some(CONN)
    }

    fn release(&mut self, mut conn: Box<Conn>, keep: bool) {
        if keep {
            // One connection: its buffers are worth keeping warm.
            if let Some(mut old) = self.kept.replace(conn) {
                old.close(self.reactor.registry());
            }
        } else {
            conn.close(self.reactor.registry());
        }
    }
}

/// One HTTP request at a time, driven by [`poll`](Self::poll) from the
/// caller's loop; Godot's HTTPRequest node without its flaws. The connection
/// of a request is kept (when the response allows it) and carries the next
/// request to the same origin.
///
/// ```no_run
/// use pollhttp::{HttpRequest, RequestResult};
/// use std::time::Duration;
///
/// let mut req = HttpRequest::new();
/// req.settings_mut().timeouts.total = Some(Duration::from_secs(10));
/// req.request("https://example.com/", &[], "GET", "").unwrap();
/// let done = loop {
///     // A game calls poll() once per frame; a tool can sleep in wait().
///     if let Some(done) = req.poll() {
///         break done;
///     }
///     req.wait(Some(Duration::from_millis(100)));
/// };
/// assert_eq!(done.result, RequestResult::Success);
/// println!("{} {} bytes", done.response_code(), done.body.len());
/// ```
pub struct HttpRequest {
    settings: Settings,
    /// Run the next request on a worker thread (Godot's `use_threads`).
    use_threads: bool,
    /// What one inline `poll` may do.
    poll_budget: PollBudget,
    /// A budget shared with other requests polled in the same frame.
    frame: Option<FrameBudget>,
    running: Option<Running>,
    progress: Arc<Progress>,
    /// Idle between requests (inline mode, and a worker's when it is done).
    driver: Option<Driver>,
    /// Where this request reads the time: the driver's clock.
    clock: Clock,
    /// The name lookup and its cache, shared with the driver (each request
    /// starts on it, so a lookup set between requests applies to the next).
    resolver: Resolver,
}

/// The resolver of an [`HttpRequest`]: `lookup` behind the default cache,
/// whose answers age on `clock`.
fn request_resolver(lookup: LookupFn, clock: &Clock) -> Resolver {
    Resolver::with_config(lookup, ResolverConfig::default(), Arc::clone(clock))
}

enum Running {
    Inline(Box<Job>, Box<Driver>),
    Thread {
        rx: mpsc::Receiver<(Completed, Driver)>,
        cancel: Arc<AtomicBool>,
        wake: WakeHandle,
        ready: Option<Box<Completed>>,
    },
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("busy", &self.is_busy())
            .field("status", &self.http_client_status())
            .finish()
    }
}

impl Default for HttpRequest {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpRequest {
    /// An idle request with default [`Settings`], on the system clock and
    /// the system resolver. Allocates nothing of the OS until the first
    /// request.
    pub fn new() -> HttpRequest {
        HttpRequest::with_clock(Arc::new(Instant::now))
    }

    /// An idle request whose logic reads the time from `clock`, as
    /// [`RequestPool::with_clock`](crate::RequestPool::with_clock) does: the
    /// request's deadlines (total, idle, connect, retry backoff, rate
    /// limit), the start of each request, and the age of cached name
    /// lookups. Inline and on the worker thread
    /// ([`set_use_threads`](Self::set_use_threads)) alike. A test can drive a request with a
    /// fake clock that moves only when told to.
    ///
    /// `clock` is called a few times per [`poll`](Self::poll) and
    /// [`wait`](Self::wait) (and from the worker and the resolver's threads),
    /// so it must be cheap and must never block; it should never go
    /// backwards. [`wait`](Self::wait) still sleeps in real time: a fake
    /// clock that stands still makes it sleep until its `timeout` (or a
    /// socket event), never spin. Allocates nothing of the OS until the
    /// first request.
    pub fn with_clock(clock: Clock) -> HttpRequest {
        HttpRequest {
            settings: Settings::default(),
            use_threads: false,
            poll_budget: PollBudget::default(),
            frame: None,
            running: None,
            progress: Arc::new(Progress::default()),
            driver: None,
            resolver: request_resolver(Arc::new(system_lookup), &clock),
            clock,
        }
    }

    /// Replace the name lookup (default: the system resolver), e.g. to pin
    /// names in tests, as [`RequestPool::set_lookup`](crate::RequestPool::set_lookup)
    /// does. It applies from the next request on (a running one keeps its
    /// lookup), and the name cache starts empty. Never blocks and costs one
    /// small allocation; `lookup` itself runs on the resolver's worker
    /// threads, never in [`poll`](Self::poll), so it may block.
    pub fn set_lookup(&mut self, lookup: LookupFn) {
        self.resolver = request_resolver(lookup, &self.clock);
    }

    /// The settings; they apply to the next `request`.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Change the settings; they apply to the next `request`.
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Run the next request on a worker thread (Godot's `use_threads`):
    /// [`poll`](Self::poll) then only collects what the worker reports, and
    /// the poll budget does not apply (the worker reads as the data
    /// comes). Default false. Applies to the next `request`.
    pub fn set_use_threads(&mut self, on: bool) {
        self.use_threads = on;
    }

    /// Whether the next request runs on a worker thread.
    pub fn is_using_threads(&self) -> bool {
        self.use_threads
    }

    /// What one inline [`poll`](Self::poll) may do: socket bytes and time
    /// ([`PollBudget`], the same type and default as every front end's:
    /// 4 MiB, 1 ms). Applies from the next `poll`.
    pub fn set_poll_budget(&mut self, budget: PollBudget) {
        self.poll_budget = budget;
    }

    /// The budget of one inline [`poll`](Self::poll).
    pub fn poll_budget(&self) -> PollBudget {
        self.poll_budget
    }

    /// Share a frame's budget with other requests (`None`, the default:
    /// only this request's own [`PollBudget`]): each inline `poll` takes at
    /// most what the frame has left, and spends what it reads from it. See
    /// [`FrameBudget`]. Applies from the next `poll`.
    pub fn set_frame_budget(&mut self, frame: Option<FrameBudget>) {
        self.frame = frame;
    }

    /// Whether a request is running.
    pub fn is_busy(&self) -> bool {
        self.running.is_some()
    }

    /// Start a request with a text body (UTF-8; empty for none). See
    /// [`request_body`](Self::request_body).
    ///
    /// # Errors
    /// As [`request_body`](Self::request_body).
    pub fn request(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        method: &str,
        body: &str,
    ) -> Result<(), RequestError> {
        self.request_raw(url, headers, method, body.as_bytes())
    }

    /// Start a request with a body of bytes (copied once; hand over a
    /// [`RequestBody`] with [`request_body`](Self::request_body) to avoid the
    /// copy).
    ///
    /// # Errors
    /// As [`request_body`](Self::request_body).
    pub fn request_raw(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        method: &str,
        body: &[u8],
    ) -> Result<(), RequestError> {
        let body = if body.is_empty() {
            RequestBody::Empty
        } else {
            RequestBody::Bytes(Bytes::copy_from_slice(body))
        };
        self.request_body(url, headers, method, body)
    }

    /// Start a request whose body is the file at `path`, streamed from disk
    /// (its size is the Content-Length; memory stays at a few hundred KiB
    /// whatever the file's size).
    ///
    /// # Errors
    /// As [`request_body`](Self::request_body).
    pub fn request_file(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        method: &str,
        path: impl Into<PathBuf>,
    ) -> Result<(), RequestError> {
        self.request_body(url, headers, method, RequestBody::File(path.into()))
    }

    /// Start a request: `url` (http or https; userinfo becomes Basic
    /// authorization unless an Authorization header is given; the fragment is
    /// dropped), extra header fields, a method (any token), and a body, taken
    /// as it is (see [`RequestBody`]: bytes are not copied, files and readers
    /// are streamed with back-pressure). Returns at once; [`poll`](Self::poll)
    /// drives it and returns the [`Completed`].
    ///
    /// # Errors
    /// [`RequestError::Busy`] while a request runs;
    /// [`RequestError::InvalidUrl`] / [`RequestError::UnsupportedScheme`] /
    /// [`RequestError::InvalidHost`] for a bad URL; [`RequestError::Invalid`]
    /// for a method or field that breaks proto's rules (with the field's
    /// index); [`RequestError::Body`] when a body file cannot be opened;
    /// [`RequestError::System`] when the OS refuses a poller or a thread.
    /// Nothing is sent then.
    pub fn request_body(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        method: &str,
        body: RequestBody,
    ) -> Result<(), RequestError> {
        let settings = self.settings.clone();
        self.request_with(url, headers, method, body, settings)
    }

    /// [`request_body`](Self::request_body) under `settings` instead of
    /// this request's own (which stay as they are): the web builder's path.
    pub(crate) fn request_with(
        &mut self,
        url: impl IntoUrl,
        headers: &[(&str, &str)],
        method: &str,
        body: RequestBody,
        settings: Settings,
    ) -> Result<(), RequestError> {
        if self.running.is_some() {
            return Err(RequestError::Busy);
        }
        let start = (self.clock)();
        let (url, headers) = prepare(url, headers, method, &body, &settings)?;
        let mut driver = match self.driver.take() {
            Some(d) => d,
            None => Driver::new(self.resolver.clone(), Arc::clone(&self.clock))
                .map_err(RequestError::System)?,
        };
        // A lookup set since the last request applies from this one.
        driver.resolver = self.resolver.clone();
        self.progress = Arc::new(Progress::default());
        self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
        let use_threads = self.use_threads;
        let route = Route::new(target_for(&url, &settings));
        let mut job = Job::new(
            Arc::new(settings),
            route,
            url,
            method.to_string(),
            headers,
            body,
            start,
            Arc::clone(&self.progress),
        );
        // One request at a time: no background revalidation.
        job.consult_cache(false);
        job.begin(&mut driver, start);
        job.publish_status();
        if use_threads {
            let (tx, rx) = mpsc::channel();
            let cancel = Arc::new(AtomicBool::new(false));
            let wake = WakeHandle(Arc::clone(driver.reactor.waker()));
            let flag = Arc::clone(&cancel);
            let spawned = std::thread::Builder::new()
                .name("pollhttp-request".into())
                .spawn(move || run_worker(job, driver, flag, tx));
            if let Err(e) = spawned {
                return Err(RequestError::System(e));
            }
            self.running = Some(Running::Thread {
                rx,
                cancel,
                wake,
                ready: None,
            });
        } else {
            self.running = Some(Running::Inline(Box::new(job), Box::new(driver)));
        }
        Ok(())
    }

    /// Advance the request and return its [`Completed`] once, when it ends.
    /// Without threads it works within its [`PollBudget`]
    /// ([`set_poll_budget`](Self::set_poll_budget)) and what a shared
    /// [`FrameBudget`] has left, at the times the request's clock reads
    /// (once per turn; see
    /// [`with_clock`](Self::with_clock)); with threads it only collects.
    /// Never blocks.
    pub fn poll(&mut self) -> Option<Completed> {
        let done = match self.running.as_mut()? {
            Running::Inline(job, driver) => {
                driver.step_within(job, self.poll_budget, self.frame.as_ref())
            }
            Running::Thread { rx, ready, .. } => {
                ready.take().map(|b| *b).or_else(|| match rx.try_recv() {
                    Ok((done, driver)) => {
                        self.driver = Some(driver);
                        Some(done)
                    }
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => Some(Completed::failed(
                        RequestResult::RequestFailed,
                        RequestFailure::WorkerGone,
                    )),
                })
            }
        };
        if done.is_some() {
            if let Some(Running::Inline(_, driver)) = self.running.take() {
                self.driver = Some(*driver);
            }
        }
        done
    }

    /// Sleep until the request has something for [`poll`](Self::poll), or
    /// `timeout` passes (never past the request's own deadlines, measured on
    /// the request's clock: see [`with_clock`](Self::with_clock)). Returns at
    /// once when idle (and, inline, when a deadline is already due on the
    /// clock). The only call that blocks; it never spins. Returns whether
    /// something may be ready for `poll` (as every front end's `wait`): no
    /// request runs, work was pending, an event or a wake-up came, a
    /// deadline is due, or the worker finished.
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        match self.running.as_mut() {
            None => true,
            Some(Running::Inline(job, driver)) => driver.wait(job, timeout),
            Some(Running::Thread { rx, ready, .. }) => {
                if ready.is_some() {
                    return true;
                }
                let got = match timeout {
                    Some(t) => rx.recv_timeout(t).ok(),
                    None => rx.recv().ok(),
                };
                match got {
                    Some((done, driver)) => {
                        self.driver = Some(driver);
                        *ready = Some(Box::new(done));
                        true
                    }
                    None => false,
                }
            }
        }
    }

    /// Stop the request at once: the connection is closed, a worker thread is
    /// told to stop (and woken; it is never joined, so this never blocks), and
    /// nothing completes afterwards.
    pub fn cancel_request(&mut self) {
        match self.running.take() {
            Some(Running::Thread { cancel, wake, .. }) => {
                cancel.store(true, Ordering::Release);
                wake.wake();
            }
            Some(Running::Inline(job, mut driver)) => {
                drop(job); // its connection closes here
                driver.kept = None;
                self.driver = Some(*driver);
            }
            None => {}
        }
        self.progress
            .status
            .store(status_code(Status::Disconnected), Ordering::Relaxed);
    }

    /// The Content-Length of the current response, or `None` when unknown
    /// (chunked, close-delimited, or no response yet).
    pub fn body_size(&self) -> Option<u64> {
        match self.progress.body_size.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    /// Body bytes received on the wire for the current response (reset at
    /// each redirect), updated as they arrive.
    pub fn downloaded_bytes(&self) -> u64 {
        self.progress.downloaded.load(Ordering::Relaxed)
    }

    /// Request body bytes handed to the connection so far.
    pub fn uploaded_bytes(&self) -> u64 {
        self.progress.uploaded.load(Ordering::Relaxed)
    }

    /// The status of the connection under the request, with
    /// [`crate::HttpClient`]'s names.
    pub fn http_client_status(&self) -> Status {
        if self.running.is_none() {
            return Status::Disconnected;
        }
        status_from(self.progress.status.load(Ordering::Relaxed))
    }
}

fn run_worker(
    mut job: Job,
    mut driver: Driver,
    cancel: Arc<AtomicBool>,
    tx: mpsc::Sender<(Completed, Driver)>,
) {
    loop {
        if cancel.load(Ordering::Acquire) {
            return; // the job, its connection and the driver drop here
        }
        let mut budget = usize::MAX;
        if let Some(done) = driver.step(&mut job, &mut budget) {
            let _ = tx.send((done, driver));
            return;
        }
        if cancel.load(Ordering::Acquire) {
            return;
        }
        driver.wait(&mut job, None);
    }
}
