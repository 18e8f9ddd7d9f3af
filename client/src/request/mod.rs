//! [`HttpRequest`]: one request at a time, Godot's HTTPRequest node done
//! right: redirects per RFC 9110, one wall-clock deadline, an idle timeout,
//! gzip, a body limit that counts decoded bytes, download to a file, a
//! non-blocking cancel, an optional worker thread — and, unlike Godot, the
//! connection kept for the next request to the same origin.
//!
//! The per-request logic is [`job::Job`]; [`redirect`] is the redirect
//! policy as a pure function; [`sink`] holds the decoders and the body sink;
//! [`outcome`] the result types.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use url::Url;

use crate::body::RequestBody;
use crate::client::{Status, WakeHandle};
use crate::conn::{Conn, Target};
use crate::error::RequestError;
use crate::reactor::Reactor;
use crate::resolve::Resolver;
use crate::time::sleep_for;
use crate::tls_options::TlsOptions;
use mio::{Registry, Token, Waker};

pub(crate) mod job;
pub(crate) mod outcome;
pub(crate) mod redirect;
pub(crate) mod sink;

use job::{Connections, Job};
pub use outcome::{Completed, RequestFailure, RequestResult};
pub use redirect::Refusal;

/// Settings of an [`HttpRequest`], with Godot's defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest body in bytes, counted after decoding; `None` (default) for no
    /// limit. A declared Content-Length above it fails at the head.
    pub body_size_limit: Option<u64>,
    /// Most bytes read per body chunk (Godot's `download_chunk_size`).
    /// Default 65 536.
    pub download_chunk_size: usize,
    /// Stream the body into this file instead of memory. Created or
    /// truncated only when the final response's body starts.
    pub download_file: Option<PathBuf>,
    /// Continue a partial `download_file` (curl's `-C -`): a file of N > 0
    /// bytes asks for `Range: bytes=N-` with `If-Range:` the file's
    /// modification time (RFC 9110 §14.2, §13.1.5). With `resume` on, a
    /// download file gets the response's `Last-Modified` as its
    /// modification time when the request ends (curl's `-R`), so that
    /// `If-Range` matches exactly only while the resource is unchanged. A
    /// 206 whose Content-Range starts at N is appended; a 200 (the resource
    /// changed, or ranges are not supported) rewrites the file whole; a 416
    /// is the result and the file is left as it is; a 206 that starts
    /// elsewhere fails with [`RequestFailure::RangeMismatch`]. Default
    /// false.
    pub resume: bool,
    /// Most redirects followed. Default 8.
    pub max_redirects: u32,
    /// One deadline on wall-clock time from `request` to completion, covering
    /// resolve, connect, TLS, redirects and body. `None` (default): none.
    pub timeout: Option<Duration>,
    /// Fail when no byte arrives for this long, counted from when the
    /// request has a connection (not while it waits for one in a
    /// [`RequestPool`](crate::RequestPool)'s queue). `None` (default): none.
    pub idle_timeout: Option<Duration>,
    /// Run the request on a worker thread; `poll` then only collects.
    /// Default false.
    pub use_threads: bool,
    /// Send `Accept-Encoding: gzip, deflate` and decode gzip and zlib-wrapped
    /// deflate bodies. Default true.
    pub accept_gzip: bool,
    /// Follow a redirect from https to http. Default false (refused with
    /// [`RequestResult::RequestFailed`]).
    pub allow_https_to_http_redirect: bool,
    /// Proxy for http URLs, as (host, port).
    pub http_proxy: Option<(String, u16)>,
    /// Proxy (CONNECT tunnel) for https URLs, as (host, port).
    pub https_proxy: Option<(String, u16)>,
    /// User and password for the proxy (`Proxy-Authorization: Basic`, RFC
    /// 9110 §11.7.2), sent on CONNECT and with each request through an
    /// HTTP proxy, never to the origin. `None` (default).
    pub proxy_auth: Option<(String, String)>,
    /// Take the proxy from the environment when none is set here
    /// (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`, by curl's
    /// rules: [`crate::web::proxy_for`]; credentials in the proxy URL are
    /// used unless `proxy_auth` is set). Default false.
    pub proxy_from_env: bool,
    /// TLS settings for https URLs.
    pub tls: Option<TlsOptions>,
    /// How long connecting may take (resolve excluded), over every address,
    /// counted from the first attempt: then [`RequestResult::CantConnect`].
    /// Default 30 s (Godot's connect timeout).
    pub connect_timeout: Duration,
    /// Happy Eyeballs' delay before the next address is tried beside a
    /// pending one (RFC 8305 §5). Default 250 ms.
    pub attempt_delay: Duration,
    /// The receive buffer (`SO_RCVBUF`, bytes) of the sockets this request
    /// opens, set before connecting so the TCP window scale covers it
    /// (RFC 7323 §2.2). A program that reads once per frame gets at most
    /// about this much per connection per frame, whatever the link: at
    /// 60 fps, 128 KiB (Linux's usual start, which autotuning often never
    /// grows for a reader that drains in bursts) is about 7.5 MiB/s per
    /// connection; 4 MiB is about 240 MiB/s. The kernel clamps the size
    /// (Linux: to `net.core.rmem_max`, often 208 KiB unless raised) and
    /// stops autotuning the socket, so set it only where frames pace the
    /// reads. A kept connection keeps the buffer it was opened with.
    /// `None` (default): the kernel's default and autotuning.
    pub recv_buffer_size: Option<usize>,
    /// `RequestPool` only: hand the body out in pieces as they arrive
    /// ([`crate::RequestPool::read_body`]) instead of collecting it; reading
    /// pauses while more than one poll's byte budget
    /// ([`crate::PoolSettings::byte_budget`], 4 MiB by default; at least 1
    /// MiB, at most 16 MiB) is waiting to be taken, so a caller that takes
    /// the pieces after each poll never slows a download. Pieces of 16 KiB
    /// or more of a body without a content coding are the receive buffer's
    /// own bytes, shared rather than copied; a waiting piece keeps its
    /// buffer, so the backlog holds at most about four times that much
    /// memory. A body
    /// that ends while several pieces are still waiting completes one poll
    /// later (its connection is free at once), so they can be taken rather
    /// than copied into one inside the `poll`. What was not taken when the
    /// request completes comes in [`Completed::body`].
    /// Default false.
    pub stream_body: bool,
    /// Most bytes per second this request reads (a background download
    /// that must not crowd out the ones a player waits for; curl's
    /// `CURLOPT_MAX_RECV_SPEED_LARGE`). `None` (default): no limit. Reading
    /// pauses (no polling, a timer) while the request is over its rate.
    pub max_recv_speed: Option<u64>,
    /// Socket bytes processed per [`HttpRequest::poll`] when not using
    /// threads, so a frame never stalls. Default 1 MiB.
    pub poll_budget: usize,
    /// Follow redirects (default true). `false` is Parse's
    /// `followRedirects: false`: a 3xx is the result, with its body.
    pub follow_redirects: bool,
    /// Credentials for the request's origin (never sent to another one
    /// after a redirect): Basic is sent with the first request, Digest
    /// answers the server's `401` challenge, on the same connection when
    /// the server keeps it. An `Authorization` header given with the
    /// request wins; both win over the URL's userinfo. `None` (default).
    pub auth: Option<crate::web::Auth>,
    /// Try again on connection failures and on the policy's status codes
    /// (r.http's `attempts`, curl's `--retry`): idempotent methods only (or
    /// when nothing was sent), with exponential backoff and jitter,
    /// `Retry-After` honoured within the request's `timeout`, a retry budget
    /// per origin. [`Completed::attempts`] counts the tries. `None`
    /// (default): no retries (the one transparent retry of a request that
    /// met a stale keep-alive connection stays).
    pub retry: Option<crate::web::RetryPolicy>,
    /// A cookie jar the request reads and fills (every hop: a `Set-Cookie`
    /// on a 3xx applies to the next one). Shared by the requests and
    /// threads that hold a clone. `None` (default): cookies are only what
    /// the caller sends.
    #[cfg(feature = "cookies")]
    pub cookie_jar: Option<crate::web::SharedCookieJar>,
}

impl Settings {
    /// Whether a request made with `self` behaves exactly as one made with
    /// `other`, so a pool may share one copy between them: every field
    /// equal; shared state (TLS configuration, retry budget, cookie jar)
    /// the same object. The destructuring names every field, so a new one
    /// cannot be forgotten here.
    pub(crate) fn same_as(&self, other: &Settings) -> bool {
        let Settings {
            body_size_limit,
            download_chunk_size,
            download_file,
            resume,
            max_redirects,
            timeout,
            idle_timeout,
            use_threads,
            accept_gzip,
            allow_https_to_http_redirect,
            http_proxy,
            https_proxy,
            proxy_auth,
            proxy_from_env,
            tls,
            connect_timeout,
            attempt_delay,
            recv_buffer_size,
            stream_body,
            max_recv_speed,
            poll_budget,
            follow_redirects,
            auth,
            retry,
            #[cfg(feature = "cookies")]
            cookie_jar,
        } = self;
        #[cfg(feature = "cookies")]
        let same_jar = match (cookie_jar, &other.cookie_jar) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        #[cfg(not(feature = "cookies"))]
        let same_jar = true;
        let same_tls = match (tls, &other.tls) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_settings(b),
            _ => false,
        };
        let same_retry = match (retry, &other.retry) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                let crate::web::RetryPolicy {
                    retries,
                    base_delay,
                    max_delay,
                    statuses,
                    budget,
                } = a;
                *retries == b.retries
                    && *base_delay == b.base_delay
                    && *max_delay == b.max_delay
                    && *statuses == b.statuses
                    && budget.same_as(&b.budget)
            }
            _ => false,
        };
        same_jar
            && same_tls
            && same_retry
            && *body_size_limit == other.body_size_limit
            && *download_chunk_size == other.download_chunk_size
            && *download_file == other.download_file
            && *resume == other.resume
            && *max_redirects == other.max_redirects
            && *timeout == other.timeout
            && *idle_timeout == other.idle_timeout
            && *use_threads == other.use_threads
            && *accept_gzip == other.accept_gzip
            && *allow_https_to_http_redirect == other.allow_https_to_http_redirect
            && *http_proxy == other.http_proxy
            && *https_proxy == other.https_proxy
            && *proxy_auth == other.proxy_auth
            && *proxy_from_env == other.proxy_from_env
            && *connect_timeout == other.connect_timeout
            && *attempt_delay == other.attempt_delay
            && *recv_buffer_size == other.recv_buffer_size
            && *stream_body == other.stream_body
            && *max_recv_speed == other.max_recv_speed
            && *poll_budget == other.poll_budget
            && *follow_redirects == other.follow_redirects
            && *auth == other.auth
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            body_size_limit: None,
            download_chunk_size: 65_536,
            download_file: None,
            resume: false,
            max_redirects: 8,
            timeout: None,
            idle_timeout: None,
            use_threads: false,
            accept_gzip: true,
            allow_https_to_http_redirect: false,
            http_proxy: None,
            https_proxy: None,
            proxy_auth: None,
            proxy_from_env: false,
            tls: None,
            connect_timeout: Duration::from_secs(30),
            attempt_delay: Duration::from_millis(250),
            recv_buffer_size: None,
            stream_body: false,
            max_recv_speed: None,
            poll_budget: 1 << 20,
            follow_redirects: true,
            auth: None,
            retry: None,
            #[cfg(feature = "cookies")]
            cookie_jar: None,
        }
    }
}

/// Progress shared with a worker thread.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Content-Length of the current response, `u64::MAX` when unknown.
    pub(crate) body_size: AtomicU64,
    pub(crate) downloaded: AtomicU64,
    pub(crate) uploaded: AtomicU64,
    pub(crate) status: AtomicU8,
}

pub(crate) fn status_code(s: Status) -> u8 {
    s as u8
}

pub(crate) fn status_from(code: u8) -> Status {
    Status::ALL
        .get(code as usize)
        .copied()
        .unwrap_or(Status::Disconnected)
}

/// The machinery one request at a time runs on: a reactor, the resolver,
/// and the connection kept from the last request.
pub(crate) struct Driver {
    reactor: Reactor,
    resolver: Resolver,
    kept: Option<Box<Conn>>,
    /// Events were collected by `wait`; the next step uses them.
    fresh_events: bool,
}

/// The token of the driver's one connection.
const CONN: Token = Token(0);

impl Driver {
    fn new() -> std::io::Result<Driver> {
        Ok(Driver {
            reactor: Reactor::new(8)?,
            resolver: Resolver::new(),
            kept: None,
            fresh_events: false,
        })
    }

    fn collect(&mut self, job: &mut Job, timeout: Option<Duration>) {
        self.reactor
            .poll(timeout, |token, ev| job.on_event(token, ev));
    }

    /// Collect readiness (unless `wait` just did), then step the job.
    fn step(&mut self, job: &mut Job, now: Instant, budget: &mut usize) -> Option<Completed> {
        if !self.fresh_events {
            self.collect(job, Some(Duration::ZERO));
        }
        self.fresh_events = false;
        job.step(self, now, budget)
    }

    /// Sleep until the job has work, `timeout` passes, or one of its
    /// deadlines (connect, total, idle) is due. Never spins.
    fn wait(&mut self, job: &mut Job, timeout: Option<Duration>) {
        let now = Instant::now();
        if job.has_pending_work(self.reactor.is_woken(), now) {
            return;
        }
        self.collect(job, sleep_for(timeout, job.next_deadline(), now));
        self.fresh_events = true;
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
        if !kept.target().can_reuse_for(target) {
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

    fn new_token(&mut self, _target: &Target) -> Option<Token> {
        Some(CONN)
    }

    fn release(&mut self, mut conn: Box<Conn>, keep: bool, _now: Instant) {
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
/// req.settings_mut().timeout = Some(Duration::from_secs(10));
/// req.request("https://example.com/", &[], "GET", "").unwrap();
/// let done = loop {
///     // A game calls poll() once per frame; a tool can sleep in wait().
///     if let Some(done) = req.poll() {
///         break done;
///     }
///     req.wait(Some(Duration::from_millis(100)));
/// };
/// assert_eq!(done.result, RequestResult::Success);
/// println!("{} {} bytes", done.response_code, done.body.len());
/// ```
pub struct HttpRequest {
    settings: Settings,
    running: Option<Running>,
    progress: Arc<Progress>,
    /// Idle between requests (inline mode, and a worker's when it is done).
    driver: Option<Driver>,
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
    /// An idle request with default [`Settings`]. Allocates nothing of the OS
    /// until the first request.
    pub fn new() -> HttpRequest {
        HttpRequest {
            settings: Settings::default(),
            running: None,
            progress: Arc::new(Progress::default()),
            driver: None,
        }
    }

    /// The settings; they apply to the next `request`.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Change the settings; they apply to the next `request`.
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
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
        let start = Instant::now();
        let (url, headers) = prepare(url, headers, method, &body, &settings)?;
        let mut driver = match self.driver.take() {
            Some(d) => d,
            None => Driver::new().map_err(RequestError::System)?,
        };
        self.progress = Arc::new(Progress::default());
        self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
        let use_threads = settings.use_threads;
        let mut job = Job::new(
            Arc::new(settings),
            url,
            method.to_string(),
            headers,
            body,
            start,
            Arc::clone(&self.progress),
        );
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
    /// Without threads it reads at most [`Settings::poll_budget`] socket
    /// bytes; with threads it only collects. Never blocks.
    pub fn poll(&mut self) -> Option<Completed> {
        let done = match self.running.as_mut()? {
            Running::Inline(job, driver) => {
                let mut budget = job.settings.poll_budget.max(1);
                driver.step(job, Instant::now(), &mut budget)
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
    /// `timeout` passes (never past the request's own deadlines). Returns at
    /// once when idle. Never spins.
    pub fn wait(&mut self, timeout: Option<Duration>) {
        match self.running.as_mut() {
            None => {}
            Some(Running::Inline(job, driver)) => driver.wait(job, timeout),
            Some(Running::Thread { rx, ready, .. }) => {
                if ready.is_some() {
                    return;
                }
                let got = match timeout {
                    Some(t) => rx.recv_timeout(t).ok(),
                    None => rx.recv().ok(),
                };
                if let Some((done, driver)) = got {
                    self.driver = Some(driver);
                    *ready = Some(Box::new(done));
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
        if let Some(done) = driver.step(&mut job, Instant::now(), &mut budget) {
            let _ = tx.send((done, driver));
            return;
        }
        if cancel.load(Ordering::Acquire) {
            return;
        }
        driver.wait(&mut job, None);
    }
}

/// Check a request before anything starts (URL, method, fields by proto's
/// rules, a body file) and add what the URL and settings imply:
/// `Authorization: Basic` from URL userinfo, `Accept-Encoding` when gzip is
/// on. Shared by every front end.
pub(crate) fn prepare(
    url: impl IntoUrl,
    headers: &[(&str, &str)],
    method: &str,
    body: &RequestBody,
    settings: &Settings,
) -> Result<(Url, Vec<(String, String)>), RequestError> {
    let url = parse_url(url)?;
    // proto's own rules, checked now so a bad field fails at once.
    if !pollhttp_proto::is_token(method.as_bytes()) {
        return Err(RequestError::Invalid(pollhttp_proto::Error::InvalidMethod));
    }
    for (index, (k, v)) in headers.iter().enumerate() {
        if !pollhttp_proto::is_token(k.as_bytes()) {
            return Err(RequestError::Invalid(
                pollhttp_proto::Error::InvalidRequestFieldName { index },
            ));
        }
        if !pollhttp_proto::is_field_value(v.as_bytes()) {
            return Err(RequestError::Invalid(
                pollhttp_proto::Error::InvalidRequestFieldValue { index },
            ));
        }
    }
    body.check_files().map_err(RequestError::Body)?;
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(crate::web::Auth::Basic { user, password }) = &settings.auth {
        if !has_header(&headers, "authorization") {
            headers.push((
                "Authorization".into(),
                crate::web::basic_value(user, password),
            ));
        }
    }
    if !url.username().is_empty() && !has_header(&headers, "authorization") {
        let decode = |s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let pass = decode(url.password().unwrap_or(""));
        headers.push((
            "Authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            ),
        ));
    }
    if settings.accept_gzip && !has_header(&headers, "accept-encoding") {
        headers.push(("Accept-Encoding".into(), "gzip, deflate".into()));
    }
    Ok((url, headers))
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// What a request's URL may be given as: a string (parsed here), or a
/// [`Url`] parsed before (no second parse: a program sending many requests
/// builds them from one base with [`Url::join`] or by cloning).
pub trait IntoUrl {
    /// The parsed URL.
    ///
    /// # Errors
    /// The [`url::ParseError`] of a string that is not a URL.
    fn into_url(self) -> Result<Url, url::ParseError>;
}

impl IntoUrl for Url {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Ok(self)
    }
}

impl IntoUrl for &Url {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Ok(self.clone())
    }
}

impl IntoUrl for &str {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Url::parse(self)
    }
}

impl IntoUrl for &String {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Url::parse(self)
    }
}

impl IntoUrl for String {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Url::parse(&self)
    }
}

fn parse_url(url: impl IntoUrl) -> Result<Url, RequestError> {
    let mut url = url.into_url().map_err(RequestError::InvalidUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RequestError::UnsupportedScheme(url.scheme().to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(RequestError::InvalidHost);
    }
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_shared_only_when_every_field_and_shared_object_match() {
        let base = Settings::default();
        assert!(base.same_as(&Settings::default()));
        let differ = [
            Settings {
                timeout: Some(Duration::from_secs(1)),
                ..Settings::default()
            },
            Settings {
                body_size_limit: Some(10),
                ..Settings::default()
            },
            Settings {
                stream_body: true,
                ..Settings::default()
            },
            Settings {
                tls: Some(TlsOptions::new()),
                ..Settings::default()
            },
            Settings {
                retry: Some(crate::web::RetryPolicy::new(2)),
                ..Settings::default()
            },
        ];
        for d in &differ {
            assert!(!base.same_as(d) && !d.same_as(&base), "{d:?}");
            assert!(d.same_as(&d.clone()), "a clone shares: {d:?}");
        }
        // Separately made TLS options and retry budgets are other objects.
        let a = Settings {
            tls: Some(TlsOptions::new()),
            ..Settings::default()
        };
        let b = Settings {
            tls: Some(TlsOptions::new()),
            ..Settings::default()
        };
        assert_eq!(
            a.same_as(&b),
            a.tls
                .as_ref()
                .unwrap()
                .same_settings(b.tls.as_ref().unwrap())
        );
        let r1 = Settings {
            retry: Some(crate::web::RetryPolicy::new(2)),
            ..Settings::default()
        };
        let r2 = Settings {
            retry: Some(crate::web::RetryPolicy::new(2)),
            ..Settings::default()
        };
        assert!(!r1.same_as(&r2), "two budgets");
    }

    #[test]
    fn a_parsed_url_is_checked_as_a_string_is() {
        let parsed = Url::parse("http://example.com/a?b#frag").unwrap();
        let from_url = parse_url(&parsed).unwrap();
        let from_str = parse_url("http://example.com/a?b#frag").unwrap();
        assert_eq!(from_url, from_str);
        assert_eq!(
            from_url.as_str(),
            "http://example.com/a?b",
            "fragment dropped"
        );
        assert!(matches!(
            parse_url(Url::parse("ftp://example.com/").unwrap()),
            Err(RequestError::UnsupportedScheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            parse_url(String::from("not a url")),
            Err(RequestError::InvalidUrl(
                url::ParseError::RelativeUrlWithoutBase
            ))
        ));
    }
}
