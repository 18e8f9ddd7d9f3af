//! [`HttpRequest`]: one request at a time, Godot's HTTPRequest node done
//! right: redirects per RFC 9110, one wall-clock deadline, an idle timeout,
//! gzip, a body limit that counts decoded bytes, download to a file, a
//! non-blocking cancel, and an optional worker thread.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use pollhttp_proto::{Error as ProtoError, Fields};
use url::Url;

use crate::client::{Failure, HttpClient, Status, WakeHandle};
use crate::tls::TlsOptions;

/// The outcome of an [`HttpRequest`], with Godot 4's codes and meanings
/// (`HTTPRequest.Result`). Each has one clear cause; the
/// [`Completed::reason`] says it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RequestResult {
    /// The response arrived complete (any status code, 404 included).
    Success = 0,
    /// The connection closed before the body was complete: fewer bytes than
    /// the Content-Length, or a chunked body without its last-chunk.
    ChunkedBodySizeMismatch = 1,
    /// No connection: every address refused or timed out, or the proxy
    /// refused the tunnel.
    CantConnect = 2,
    /// The host name did not resolve.
    CantResolve = 3,
    /// The connection failed or the response broke HTTP/1.1 (the reason names
    /// the rule).
    ConnectionError = 4,
    /// The TLS handshake or certificate verification failed.
    TlsHandshakeError = 5,
    /// The server closed the connection without sending a response.
    NoResponse = 6,
    /// The body (decoded, when gzip is on) is larger than the body size limit.
    BodySizeLimitExceeded = 7,
    /// The gzip or deflate content coding could not be decoded.
    BodyDecompressFailed = 8,
    /// The request could not be sent (refused by the client, or a redirect
    /// that cannot be followed).
    RequestFailed = 9,
    /// The download file could not be created.
    DownloadFileCantOpen = 10,
    /// Writing the download file failed (e.g. the device is full).
    DownloadFileWriteError = 11,
    /// More redirects than `max_redirects`.
    RedirectLimitReached = 12,
    /// The deadline (`timeout`) or the idle timeout passed.
    Timeout = 13,
}

impl RequestResult {
    /// The variant name, e.g. `"Success"`.
    pub fn name(self) -> &'static str {
        use RequestResult::*;
        match self {
            Success => "Success",
            ChunkedBodySizeMismatch => "ChunkedBodySizeMismatch",
            CantConnect => "CantConnect",
            CantResolve => "CantResolve",
            ConnectionError => "ConnectionError",
            TlsHandshakeError => "TlsHandshakeError",
            NoResponse => "NoResponse",
            BodySizeLimitExceeded => "BodySizeLimitExceeded",
            BodyDecompressFailed => "BodyDecompressFailed",
            RequestFailed => "RequestFailed",
            DownloadFileCantOpen => "DownloadFileCantOpen",
            DownloadFileWriteError => "DownloadFileWriteError",
            RedirectLimitReached => "RedirectLimitReached",
            Timeout => "Timeout",
        }
    }
}

impl fmt::Display for RequestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A finished request: Godot's `request_completed(result, response_code,
/// headers, body)` plus what a tool wants to know.
#[derive(Debug, Clone)]
pub struct Completed {
    /// What happened.
    pub result: RequestResult,
    /// The cause in words (empty for [`RequestResult::Success`]).
    pub reason: String,
    /// The final response's status code, 0 when none arrived.
    pub response_code: u16,
    /// The final response's header fields in wire order (empty when none
    /// arrived). Content-Encoding and Content-Length are kept as received,
    /// as in Godot, even when the body was decoded.
    pub headers: Fields,
    /// The body (decoded when gzip was on); empty when it went to the
    /// download file, and for results other than `Success`.
    pub body: Bytes,
    /// The URL of the last request made (after redirects).
    pub final_url: String,
    /// Redirects followed.
    pub redirects: u32,
    /// Bytes of HTTP read from the connection(s), heads included.
    pub wire_bytes: u64,
    /// Body bytes after decoding (also when written to a file).
    pub body_bytes: u64,
}

/// Why [`HttpRequest::request`] refused at once (nothing was started).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// A request is already running (Godot's ERR_BUSY).
    Busy,
    /// The URL does not parse, or its scheme is not http or https.
    InvalidUrl(String),
    /// A header name is not a token or a value holds CR, LF, NUL or another
    /// control character (the index in the caller's list).
    InvalidHeader(usize),
    /// The method is not a token.
    InvalidMethod,
    /// The OS refused what a request needs (an epoll instance, an eventfd, a
    /// thread), e.g. when the process is out of file descriptors.
    System(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Busy => f.write_str("a request is already running"),
            StartError::InvalidUrl(e) => write!(f, "invalid URL: {e}"),
            StartError::InvalidHeader(i) => write!(f, "invalid header field at index {i}"),
            StartError::InvalidMethod => f.write_str("invalid method"),
            StartError::System(e) => write!(f, "cannot start the request: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

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
    /// Most redirects followed. Default 8.
    pub max_redirects: u32,
    /// One deadline on wall-clock time from `request` to completion, covering
    /// resolve, connect, TLS, redirects and body. `None` (default): none.
    pub timeout: Option<Duration>,
    /// Fail when no byte arrives for this long. `None` (default): none.
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
    /// TLS settings for https URLs.
    pub tls: Option<TlsOptions>,
    /// Socket bytes processed per [`HttpRequest::poll`] when not using
    /// threads, so a frame never stalls. Default 1 MiB.
    pub poll_budget: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            body_size_limit: None,
            download_chunk_size: 65_536,
            download_file: None,
            max_redirects: 8,
            timeout: None,
            idle_timeout: None,
            use_threads: false,
            accept_gzip: true,
            allow_https_to_http_redirect: false,
            http_proxy: None,
            https_proxy: None,
            tls: None,
            poll_budget: 1 << 20,
        }
    }
}

/// Progress shared with a worker thread.
#[derive(Debug, Default)]
struct Progress {
    /// Content-Length of the current response, `u64::MAX` when unknown.
    body_size: AtomicU64,
    downloaded: AtomicU64,
    status: AtomicU8,
}

fn status_code(s: Status) -> u8 {
    s as u8
}

fn status_from(code: u8) -> Status {
    Status::ALL
        .get(code as usize)
        .copied()
        .unwrap_or(Status::Disconnected)
}

/// One HTTP request at a time, driven by [`poll`](Self::poll) from the
/// caller's loop; Godot's HTTPRequest node without its flaws.
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
}

enum Running {
    Inline(Box<Job>),
    Thread {
        rx: mpsc::Receiver<Completed>,
        cancel: Arc<AtomicBool>,
        wake: WakeHandle,
        ready: Option<Completed>,
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
    /// An idle request with default [`Settings`].
    pub fn new() -> HttpRequest {
        HttpRequest {
            settings: Settings::default(),
            running: None,
            progress: Arc::new(Progress::default()),
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
    /// [`request_raw`](Self::request_raw).
    ///
    /// # Errors
    /// As [`request_raw`](Self::request_raw).
    pub fn request(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        method: &str,
        body: &str,
    ) -> Result<(), StartError> {
        self.request_raw(url, headers, method, body.as_bytes())
    }

    /// Start a request: `url` (http or https; userinfo becomes Basic
    /// authorization unless an Authorization header is given; the fragment is
    /// dropped), extra header fields, a method (any token), and a body. Returns
    /// at once; [`poll`](Self::poll) drives it and returns the [`Completed`].
    ///
    /// # Errors
    /// [`StartError::Busy`] while a request runs; [`StartError::InvalidUrl`],
    /// [`StartError::InvalidHeader`], [`StartError::InvalidMethod`] at once for
    /// bad input; [`StartError::System`] when the OS refuses a poller or
    /// thread. Nothing is sent then.
    pub fn request_raw(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        method: &str,
        body: &[u8],
    ) -> Result<(), StartError> {
        if self.running.is_some() {
            return Err(StartError::Busy);
        }
        let start = Instant::now();
        let url = parse_url(url)?;
        // proto's own rules, checked now so a bad header fails at once.
        if !pollhttp_proto::is_token(method.as_bytes()) {
            return Err(StartError::InvalidMethod);
        }
        for (i, (k, v)) in headers.iter().enumerate() {
            if !pollhttp_proto::is_token(k.as_bytes())
                || !pollhttp_proto::is_field_value(v.as_bytes())
            {
                return Err(StartError::InvalidHeader(i));
            }
        }
        let mut headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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
        if self.settings.accept_gzip && !has_header(&headers, "accept-encoding") {
            headers.push(("Accept-Encoding".into(), "gzip, deflate".into()));
        }
        self.progress = Arc::new(Progress::default());
        self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
        let job = Job::new(
            self.settings.clone(),
            url,
            method.to_string(),
            headers,
            Bytes::copy_from_slice(body),
            start,
            Arc::clone(&self.progress),
        )
        .map_err(|e| StartError::System(e.to_string()))?;
        if self.settings.use_threads {
            let (tx, rx) = mpsc::channel();
            let cancel = Arc::new(AtomicBool::new(false));
            let wake = job.client.wake_handle();
            let flag = Arc::clone(&cancel);
            let spawned = std::thread::Builder::new()
                .name("pollhttp-request".into())
                .spawn(move || run_worker(job, flag, tx));
            if let Err(e) = spawned {
                return Err(StartError::System(format!(
                    "cannot start the worker thread: {e}"
                )));
            }
            self.running = Some(Running::Thread {
                rx,
                cancel,
                wake,
                ready: None,
            });
        } else {
            self.running = Some(Running::Inline(Box::new(job)));
        }
        Ok(())
    }

    /// Advance the request and return its [`Completed`] once, when it ends.
    /// Without threads it does at most [`Settings::poll_budget`] bytes of work;
    /// with threads it only collects. Never blocks.
    pub fn poll(&mut self) -> Option<Completed> {
        let done = match self.running.as_mut()? {
            Running::Inline(job) => {
                let mut budget = job.settings.poll_budget.max(1);
                job.step(&mut budget)
            }
            Running::Thread { rx, ready, .. } => ready.take().or_else(|| match rx.try_recv() {
                Ok(done) => Some(done),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(failed(
                    RequestResult::RequestFailed,
                    "the worker thread ended without a result".into(),
                )),
            }),
        };
        if done.is_some() {
            self.running = None;
        }
        done
    }

    /// Sleep until the request has something for [`poll`](Self::poll), or
    /// `timeout` passes (never past the request's own deadlines). Returns at
    /// once when idle. Never spins.
    pub fn wait(&mut self, timeout: Option<Duration>) {
        match self.running.as_mut() {
            None => {}
            Some(Running::Inline(job)) => job.wait(timeout),
            Some(Running::Thread { rx, ready, .. }) => {
                if ready.is_some() {
                    return;
                }
                let got = match timeout {
                    Some(t) => rx.recv_timeout(t).ok(),
                    None => rx.recv().ok(),
                };
                *ready = got;
            }
        }
    }

    /// Stop the request at once: the connection is closed, a worker thread is
    /// told to stop (and woken; it is never joined, so this never blocks), and
    /// nothing completes afterwards.
    pub fn cancel_request(&mut self) {
        if let Some(Running::Thread { cancel, wake, .. }) = self.running.take() {
            cancel.store(true, Ordering::Release);
            wake.wake();
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

    /// The status of the underlying [`HttpClient`].
    pub fn http_client_status(&self) -> Status {
        if self.running.is_none() {
            return Status::Disconnected;
        }
        status_from(self.progress.status.load(Ordering::Relaxed))
    }
}

fn run_worker(mut job: Job, cancel: Arc<AtomicBool>, tx: mpsc::Sender<Completed>) {
    loop {
        if cancel.load(Ordering::Acquire) {
            return; // the job and its connection drop here
        }
        let mut budget = usize::MAX;
        if let Some(done) = job.step(&mut budget) {
            let _ = tx.send(done);
            return;
        }
        if cancel.load(Ordering::Acquire) {
            return;
        }
        job.wait(None);
    }
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

fn parse_url(url: &str) -> Result<Url, StartError> {
    let mut url = Url::parse(url).map_err(|e| StartError::InvalidUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(StartError::InvalidUrl(format!(
            "unsupported scheme {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(StartError::InvalidUrl("no host".into()));
    }
    url.set_fragment(None);
    Ok(url)
}

fn failed(result: RequestResult, reason: String) -> Completed {
    Completed {
        result,
        reason,
        response_code: 0,
        headers: Fields::default(),
        body: Bytes::new(),
        final_url: String::new(),
        redirects: 0,
        wire_bytes: 0,
        body_bytes: 0,
    }
}

// ---------------------------------------------------------------- body sink

#[derive(Debug)]
enum SinkError {
    Limit(u64),
    Write(io::Error),
}

/// Where decoded body bytes go: memory or the download file, with the body
/// size limit counted here (after decoding: a decompression bomb stops at it).
struct Sink {
    memory: Vec<u8>,
    file: Option<File>,
    limit: Option<u64>,
    total: u64,
    error: Option<SinkError>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.limit {
            if self.total + buf.len() as u64 > limit {
                self.error = Some(SinkError::Limit(limit));
                return Err(io::Error::other("body size limit"));
            }
        }
        match &mut self.file {
            Some(f) => {
                if let Err(e) = f.write_all(buf) {
                    let msg = e.to_string();
                    self.error = Some(SinkError::Write(e));
                    return Err(io::Error::other(msg));
                }
            }
            None => self.memory.extend_from_slice(buf),
        }
        self.total += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Identity(Sink),
    Gzip(flate2::write::GzDecoder<Sink>),
    Deflate(flate2::write::ZlibDecoder<Sink>),
}

impl Decoder {
    fn sink(&mut self) -> &mut Sink {
        match self {
            Decoder::Identity(s) => s,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
        }
    }
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Decoder::Identity(s) => s.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Deflate(d) => d.write_all(data),
        }
    }
    fn finish(self) -> (Sink, io::Result<()>) {
        match self {
            Decoder::Identity(s) => (s, Ok(())),
            Decoder::Gzip(mut d) => {
                let r = d.try_finish();
                // finish() after try_finish() only returns the writer.
                match d.finish() {
                    Ok(s) => (s, r),
                    Err(e) => (empty_sink(), Err(e)),
                }
            }
            Decoder::Deflate(mut d) => {
                let r = d.try_finish();
                match d.finish() {
                    Ok(s) => (s, r),
                    Err(e) => (empty_sink(), Err(e)),
                }
            }
        }
    }
}

fn empty_sink() -> Sink {
    Sink {
        memory: Vec::new(),
        file: None,
        limit: None,
        total: 0,
        error: None,
    }
}

// ---------------------------------------------------------------- the job

/// Most bytes of a redirect's body read to keep its connection for the next
/// hop; past this the connection is dropped instead.
const MAX_REDIRECT_BODY: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Requesting,
    Body,
    /// Reading (and dropping) a redirect's body before following it.
    SkipBody,
}

struct Job {
    settings: Settings,
    client: HttpClient,
    url: Url,
    method: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    deadline: Option<Instant>,
    last_byte: Instant,
    phase: Phase,
    redirects: u32,
    next: Option<Url>,
    reused: bool,
    decoder: Option<Decoder>,
    /// `client.bytes_read()` when a byte was last seen (idle timeout).
    seen_bytes: u64,
    progress: Arc<Progress>,
}

impl Job {
    fn new(
        settings: Settings,
        url: Url,
        method: String,
        headers: Vec<(String, String)>,
        body: Bytes,
        start: Instant,
        progress: Arc<Progress>,
    ) -> io::Result<Job> {
        let mut client = HttpClient::new()?;
        client.set_read_chunk_size(settings.download_chunk_size);
        if let Some(tls) = &settings.tls {
            client.set_tls_options(tls.clone());
        }
        if let Some((h, p)) = &settings.http_proxy {
            client.set_http_proxy(h, *p);
        }
        if let Some((h, p)) = &settings.https_proxy {
            client.set_https_proxy(h, *p);
        }
        let mut job = Job {
            deadline: settings.timeout.map(|t| start + t),
            settings,
            client,
            url,
            method,
            headers,
            body,
            last_byte: Instant::now(),
            phase: Phase::Connecting,
            redirects: 0,
            next: None,
            reused: false,
            decoder: None,
            seen_bytes: 0,
            progress,
        };
        job.connect();
        job.progress
            .status
            .store(status_code(job.client.status()), Ordering::Relaxed);
        Ok(job)
    }

    /// (Re)connect to the current URL's origin; the client closes any previous
    /// connection first.
    fn connect(&mut self) {
        self.phase = Phase::Connecting;
        self.reused = false;
        let host = self.url.host_str().unwrap_or("");
        let port = self.url.port_or_known_default();
        let tls = self.url.scheme() == "https";
        // Errors show up as the client's status at the next step.
        let _ = self.client.connect_to_host(host, port, tls);
    }

    fn target(&self) -> String {
        let path = self.url.path();
        let path = if path.is_empty() { "/" } else { path };
        match self.url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    fn wait(&mut self, timeout: Option<Duration>) {
        let mut t = timeout;
        for d in [
            self.deadline,
            self.settings.idle_timeout.map(|i| self.last_byte + i),
        ]
        .into_iter()
        .flatten()
        {
            let left = d.saturating_duration_since(Instant::now());
            t = Some(t.map_or(left, |t| t.min(left)));
        }
        self.client.wait(t);
    }

    fn done(&mut self, result: RequestResult, reason: String) -> Completed {
        let response_code = self.client.response_code();
        let headers = self.client.response_headers().cloned().unwrap_or_default();
        let (body, body_bytes) = match self.decoder.take() {
            Some(d) => {
                let (sink, _) = d.finish();
                (sink.memory, sink.total)
            }
            None => (Vec::new(), 0),
        };
        let wire_bytes = self.client.bytes_read();
        self.client.close();
        self.progress
            .status
            .store(status_code(Status::Disconnected), Ordering::Relaxed);
        Completed {
            result,
            reason,
            response_code,
            headers,
            body: if result == RequestResult::Success {
                Bytes::from(body)
            } else {
                Bytes::new()
            },
            final_url: self.url.to_string(),
            redirects: self.redirects,
            wire_bytes,
            body_bytes,
        }
    }

    fn failure_result(&mut self) -> Completed {
        let (result, reason) = match self.client.failure() {
            None => (
                RequestResult::ConnectionError,
                format!("client is {:?}", self.client.status()),
            ),
            Some(f) => {
                let reason = f.to_string();
                let result = match f {
                    Failure::Resolve(_) => RequestResult::CantResolve,
                    Failure::Connect(_)
                    | Failure::ConnectTimeout(_)
                    | Failure::ProxyRefused { .. } => RequestResult::CantConnect,
                    Failure::Tls(_) => RequestResult::TlsHandshakeError,
                    Failure::Protocol(ProtoError::IncompleteHead { received: 0, .. }) => {
                        RequestResult::NoResponse
                    }
                    Failure::Protocol(
                        ProtoError::IncompleteBody { .. }
                        | ProtoError::IncompleteChunkedBody { .. },
                    ) => RequestResult::ChunkedBodySizeMismatch,
                    Failure::Protocol(ProtoError::BodyTooLarge { .. }) => {
                        RequestResult::BodySizeLimitExceeded
                    }
                    _ => RequestResult::ConnectionError,
                };
                (result, reason)
            }
        };
        self.done(result, reason)
    }

    /// Advance; `Some` when finished. `budget` bounds body bytes handled.
    fn step(&mut self, budget: &mut usize) -> Option<Completed> {
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            let t = self.settings.timeout.unwrap_or_default();
            return Some(self.done(
                RequestResult::Timeout,
                format!(
                    "the request did not complete within {:.3} s",
                    t.as_secs_f64()
                ),
            ));
        }
        let status = self.client.poll();
        self.progress
            .status
            .store(status_code(status), Ordering::Relaxed);
        if self.client.bytes_read() != self.seen_bytes {
            self.seen_bytes = self.client.bytes_read();
            self.last_byte = now;
        }
        if let Some(idle) = self.settings.idle_timeout {
            if now.duration_since(self.last_byte) >= idle {
                return Some(self.done(
                    RequestResult::Timeout,
                    format!("no byte arrived for {:.3} s", idle.as_secs_f64()),
                ));
            }
        }
        loop {
            match self.phase {
                Phase::Connecting => match self.client.status() {
                    Status::Resolving | Status::Connecting => return None,
                    Status::Connected => {
                        if let Some(done) = self.send() {
                            return Some(done);
                        }
                    }
                    _ => return Some(self.failure_result()),
                },
                Phase::Requesting => match self.client.status() {
                    Status::Requesting => return None,
                    Status::Body | Status::Connected | Status::Disconnected
                        if self.client.has_response() =>
                    {
                        if let Some(done) = self.on_head() {
                            return Some(done);
                        }
                    }
                    Status::ConnectionError if self.reused && !self.client.has_response() => {
                        // The kept-alive connection died under the request:
                        // retry once on a fresh one.
                        self.connect();
                    }
                    _ => return Some(self.failure_result()),
                },
                Phase::Body | Phase::SkipBody => return self.read_body(budget),
            }
        }
    }

    fn send(&mut self) -> Option<Completed> {
        let target = self.target();
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match self
            .client
            .request(&self.method, &target, &headers, &self.body)
        {
            Ok(()) => {
                self.phase = Phase::Requesting;
                None
            }
            Err(e) => Some(self.done(RequestResult::RequestFailed, e.to_string())),
        }
    }

    fn on_head(&mut self) -> Option<Completed> {
        let code = self.client.response_code();
        let location = self
            .client
            .response_headers()
            .and_then(|h| h.get_str("location"))
            .map(str::to_string);
        if matches!(code, 301 | 302 | 303 | 307 | 308) {
            if let Some(location) = location {
                if self.redirects >= self.settings.max_redirects {
                    return Some(self.done(
                        RequestResult::RedirectLimitReached,
                        format!("more than {} redirects", self.settings.max_redirects),
                    ));
                }
                let next = match self.url.join(location.trim()) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
                    _ => {
                        return Some(self.done(
                            RequestResult::RequestFailed,
                            format!("cannot follow redirect to {location:?}"),
                        ))
                    }
                };
                if self.url.scheme() == "https"
                    && next.scheme() == "http"
                    && !self.settings.allow_https_to_http_redirect
                {
                    return Some(self.done(
                        RequestResult::RequestFailed,
                        format!("refused redirect from https to http ({next})"),
                    ));
                }
                self.next = Some(next);
                self.phase = Phase::SkipBody;
                self.decoder = None;
                return None;
            }
        }
        // The final response.
        let length = self.client.response_body_length();
        self.progress.body_size.store(
            if self.client.is_response_chunked() {
                u64::MAX
            } else {
                length.unwrap_or(u64::MAX)
            },
            Ordering::Relaxed,
        );
        if let (Some(limit), Some(n)) = (self.settings.body_size_limit, length) {
            if n > limit {
                return Some(self.done(
                    RequestResult::BodySizeLimitExceeded,
                    format!("Content-Length {n} is over the body size limit of {limit} bytes"),
                ));
            }
        }
        let has_body = self.client.status() == Status::Body;
        let mut file = None;
        if let (Some(path), true) = (&self.settings.download_file, has_body) {
            match File::create(path) {
                Ok(f) => file = Some(f),
                Err(e) => {
                    let reason = format!("cannot create {}: {e}", path.display());
                    return Some(self.done(RequestResult::DownloadFileCantOpen, reason));
                }
            }
        }
        let sink = Sink {
            memory: Vec::new(),
            file,
            limit: self.settings.body_size_limit,
            total: 0,
            error: None,
        };
        let coding = self
            .client
            .response_headers()
            .and_then(|h| h.get_str("content-encoding"))
            .map(|v| v.trim().to_ascii_lowercase());
        self.decoder = Some(match (self.settings.accept_gzip, coding.as_deref()) {
            (true, Some("gzip" | "x-gzip")) => Decoder::Gzip(flate2::write::GzDecoder::new(sink)),
            (true, Some("deflate")) => Decoder::Deflate(flate2::write::ZlibDecoder::new(sink)),
            _ => Decoder::Identity(sink),
        });
        self.phase = Phase::Body;
        None
    }

    fn read_body(&mut self, budget: &mut usize) -> Option<Completed> {
        while self.client.status() == Status::Body {
            if *budget == 0 {
                return None;
            }
            let Some(chunk) = self.client.read_response_body_chunk() else {
                break;
            };
            *budget = budget.saturating_sub(chunk.len());
            self.last_byte = Instant::now();
            self.progress
                .downloaded
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if self.phase == Phase::SkipBody {
                // Drain a small redirect body to keep the connection; a large
                // one is not worth reading: reconnect instead.
                if self.progress.downloaded.load(Ordering::Relaxed) > MAX_REDIRECT_BODY {
                    self.client.close();
                    return self.follow_redirect();
                }
                continue;
            }
            if let Some(decoder) = self.decoder.as_mut() {
                if let Err(e) = decoder.write(&chunk) {
                    return Some(self.sink_failure(e));
                }
            }
        }
        match self.client.status() {
            Status::Body => None,
            Status::Connected | Status::Disconnected => {
                if self.phase == Phase::SkipBody {
                    return self.follow_redirect();
                }
                let decoder = self.decoder.take();
                if let Some(decoder) = decoder {
                    let (sink, r) = decoder.finish();
                    if let Err(e) = r {
                        self.decoder = Some(Decoder::Identity(sink));
                        return Some(self.sink_failure(e));
                    }
                    self.decoder = Some(Decoder::Identity(sink));
                }
                Some(self.done(RequestResult::Success, String::new()))
            }
            _ => Some(self.failure_result()),
        }
    }

    fn sink_failure(&mut self, e: io::Error) -> Completed {
        let err = self.decoder.as_mut().and_then(|d| d.sink().error.take());
        match err {
            Some(SinkError::Limit(limit)) => self.done(
                RequestResult::BodySizeLimitExceeded,
                format!(
                    "body is over the body size limit of {limit} bytes (counted after decoding)"
                ),
            ),
            Some(SinkError::Write(w)) => {
                let path = self.settings.download_file.clone().unwrap_or_default();
                self.done(
                    RequestResult::DownloadFileWriteError,
                    format!("cannot write {}: {w}", path.display()),
                )
            }
            None => self.done(
                RequestResult::BodyDecompressFailed,
                format!("cannot decode the body: {e}"),
            ),
        }
    }

    fn follow_redirect(&mut self) -> Option<Completed> {
        let next = self.next.take()?;
        let code = self.client.response_code();
        let same_origin = next.origin() == self.url.origin();
        if !same_origin {
            // Credentials stay with their origin (RFC 9110 §15.4).
            self.headers.retain(|(k, _)| {
                !["authorization", "cookie", "proxy-authorization"]
                    .iter()
                    .any(|n| k.eq_ignore_ascii_case(n))
            });
        }
        // 303, and 301/302 after POST, become GET without a body (RFC 9110
        // §15.4.2-4); 307 and 308 keep the method and body.
        if code == 303 && self.method != "HEAD"
            || (matches!(code, 301 | 302) && self.method == "POST")
        {
            self.method = "GET".into();
            self.body = Bytes::new();
            self.headers.retain(|(k, _)| {
                !["content-length", "content-type", "transfer-encoding"]
                    .iter()
                    .any(|n| k.eq_ignore_ascii_case(n))
            });
        }
        self.redirects += 1;
        self.url = next;
        self.progress.downloaded.store(0, Ordering::Relaxed);
        self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
        if same_origin && self.client.status() == Status::Connected {
            self.reused = true;
            return self.send();
        }
        self.connect();
        None
    }
}
