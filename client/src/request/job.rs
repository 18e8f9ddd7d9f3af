//! [`Job`]: one request's logic — connection choice and the one safe retry,
//! deadlines, redirects, the body sink — talking to a connection through its
//! exchange. The same job runs inline under `HttpRequest::poll` and on its
//! worker thread.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Registry, Token, Waker};
use pollhttp_proto::{Config, Event, MessageBodyLength, ResponseHead};
use url::Url;

use super::outcome::{Completed, RequestFailure, RequestResult};
use super::redirect::{self, Decision, Policy};
use super::sink::{Decoder, Sink, SinkError};
use super::{status_code, Progress, Settings};
use crate::body::RequestBody;
use crate::client::{client_proto_config, Status};
use crate::conn::{BodyPlan, Conn, ConnSettings, Phase, Target};
use crate::error::Failure;
use crate::resolve::Resolver;
use crate::time::{Deadlines, Expired};

/// Most bytes of a redirect's body read to keep its connection for the next
/// hop; past this the connection is dropped instead.
const MAX_REDIRECT_BODY: u64 = 64 * 1024;

/// Most decoded body bytes one turn produces; the rest of the received
/// bytes wait for the next turn, so decoding stays inside the budget.
const MAX_DECODED_PER_TURN: u64 = 1 << 20;

/// Input fed to a decoder at once (its output is checked in between).
const DECODE_PIECE: usize = 8 * 1024;

/// Most bytes of streamed body pieces held before reading pauses.
const STREAM_HIGH_WATER: usize = 1 << 20;

/// Most bytes reserved up front for a body of known length held in memory
/// (a larger Content-Length grows the buffer as bytes really arrive).
const MAX_RESERVE: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Establishing the connection; the request goes out once it is ready.
    Connect,
    /// The request is out; reading the response.
    Exchange,
    /// No connection yet: the connection limits are reached.
    Waiting,
}

/// Where a job gets its connections: the one-request driver of an
/// `HttpRequest` (one kept connection) or a `RequestPool` (a cache with
/// limits). One reactor serves them all.
pub(crate) trait Connections {
    fn registry(&self) -> &Registry;
    fn resolver(&self) -> &Resolver;
    fn waker(&self) -> &Arc<Waker>;
    /// A lookup finished (the waker fired): consume the wake.
    fn take_woken(&mut self);
    /// A kept connection made for `target`, if one is idle (its readiness
    /// is up to date; the job probes it before use).
    fn take_idle(&mut self, target: &Target) -> Option<Conn>;
    /// A token for a new connection to `target`, or `None` when the limits
    /// say wait.
    fn new_token(&mut self, target: &Target) -> Option<Token>;
    /// The job is done with `conn`: keep it for reuse (`keep`: it is idle and
    /// reusable) or close it.
    fn release(&mut self, conn: Conn, keep: bool, now: Instant);
}

/// Methods a client may send again after a failure (RFC 9110 §9.2.2).
fn is_idempotent(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
}

pub(crate) struct Job {
    pub(crate) settings: Settings,
    url: Url,
    method: String,
    headers: Vec<(String, String)>,
    /// The body to send (again); `None` once a reader body was sent.
    body: Option<RequestBody>,
    deadlines: Deadlines,
    conn: Option<Conn>,
    stage: Stage,
    redirects: u32,
    /// A redirect being followed: its body is read and dropped.
    next: Option<Decision>,
    /// The request went out on a kept connection.
    reused: bool,
    /// The one safe retry was used.
    retried: bool,
    decoder: Option<Decoder>,
    response: Option<ResponseHead>,
    progress: Arc<Progress>,
    /// HTTP bytes read for this request, over every connection.
    wire: u64,
    /// The receive rate limit's start and bytes since (`max_recv_speed`).
    rate_start: Option<Instant>,
    /// Reading is paused until then (the rate limit).
    throttled_until: Option<Instant>,
    /// Reading is paused until the caller takes streamed body pieces.
    stream_paused: bool,
    /// Body bytes received but not decoded yet: a turn decodes at most
    /// [`MAX_DECODED_PER_TURN`] (a gzip body can expand a thousandfold).
    stash: Bytes,
    /// Decoded bytes this turn.
    turn_output: u64,
}

impl Job {
    pub(crate) fn new(
        settings: Settings,
        url: Url,
        method: String,
        headers: Vec<(String, String)>,
        body: RequestBody,
        start: Instant,
        progress: Arc<Progress>,
    ) -> Job {
        Job {
            deadlines: Deadlines {
                connect: None,
                total: settings.timeout.map(|t| start + t),
                idle: settings.idle_timeout.map(|t| start + t),
            },
            settings,
            url,
            method,
            headers,
            body: Some(body),
            conn: None,
            stage: Stage::Connect,
            redirects: 0,
            next: None,
            reused: false,
            retried: false,
            decoder: None,
            response: None,
            progress,
            wire: 0,
            rate_start: None,
            throttled_until: None,
            stream_paused: false,
            stash: Bytes::new(),
            turn_output: 0,
        }
    }

    pub(crate) fn target(&self) -> Target {
        let tls = self.url.scheme() == "https";
        let host = self.url.host_str().unwrap_or("");
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Target {
            tls,
            host: host.to_string(),
            port: self.url.port_or_known_default().unwrap_or(80),
            proxy: if tls {
                self.settings.https_proxy.clone()
            } else {
                self.settings.http_proxy.clone()
            },
            tls_options: tls.then(|| self.settings.tls.clone().unwrap_or_default()),
        }
    }

    fn conn_settings(&self) -> ConnSettings {
        ConnSettings {
            connect_timeout: self.settings.connect_timeout,
            attempt_delay: self.settings.attempt_delay,
            config: client_proto_config(Config::default(), self.settings.download_chunk_size),
        }
    }

    /// Take a connection for the current URL: a kept one made for the same
    /// target that is still alive, else a new one when the limits allow it
    /// (else the job waits: [`is_waiting`](Self::is_waiting)).
    pub(crate) fn begin(&mut self, drv: &mut dyn Connections, now: Instant) {
        let target = self.target();
        self.close_conn(drv);
        self.reused = false;
        self.stage = Stage::Connect;
        while let Some(mut kept) = drv.take_idle(&target) {
            // A server that closed the idle connection is noticed now,
            // before anything is sent.
            let alive = kept.is_idle()
                && kept
                    .exchange_mut()
                    .is_some_and(|(x, ready)| x.pump(ready, &mut 0).is_ok());
            if alive {
                self.reused = true;
                self.conn = Some(kept);
                return;
            }
            drv.release(kept, false, now);
        }
        let Some(token) = drv.new_token(&target) else {
            self.stage = Stage::Waiting;
            return;
        };
        self.conn = Some(Conn::start(
            target,
            token,
            &self.conn_settings(),
            drv.resolver(),
            drv.registry(),
            drv.waker(),
            now,
        ));
    }

    /// Whether the job waits for a connection (the limits are reached).
    pub(crate) fn is_waiting(&self) -> bool {
        self.stage == Stage::Waiting
    }

    /// A readiness event for the token of this job's connection.
    pub(crate) fn on_event(&mut self, token: Token, ev: &mio::event::Event) {
        if let Some(c) = self.conn.as_mut().filter(|c| c.token() == token) {
            c.on_event(ev);
        }
    }

    /// Bytes of streamed body pieces not taken yet.
    fn stream_backlog(&mut self) -> usize {
        self.decoder
            .as_mut()
            .and_then(|d| d.sink().stream.as_ref())
            .map_or(0, |(_, n)| *n)
    }

    /// The next streamed body piece (`stream_body`), if one arrived. Taking
    /// pieces lets a job paused by its backlog read again: returns whether
    /// it should get a turn.
    pub(crate) fn take_chunk(&mut self) -> (Option<Bytes>, bool) {
        let piece = self
            .decoder
            .as_mut()
            .and_then(|d| d.sink().stream.as_mut())
            .and_then(|(pieces, pending)| {
                let p = pieces.pop_front()?;
                *pending -= p.len();
                Some(p)
            });
        let resume = self.stream_paused && self.stream_backlog() <= STREAM_HIGH_WATER / 2;
        if resume {
            self.stream_paused = false;
        }
        (piece, resume)
    }

    /// Whether the job's connection waits for its name lookup.
    pub(crate) fn is_resolving(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.phase() == Phase::Resolving)
    }

    /// The job's connection.
    pub(crate) fn conn_mut(&mut self) -> Option<&mut Conn> {
        self.conn.as_mut()
    }

    /// Take the job's connection away (to close it when the job is dropped).
    pub(crate) fn take_conn(&mut self) -> Option<Conn> {
        self.conn.take()
    }

    fn close_conn(&mut self, drv: &mut dyn Connections) {
        if let Some(c) = self.conn.take() {
            drv.release(c, false, Instant::now());
        }
    }

    /// The nearest deadline of the job: connect, total, idle.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let connect = self.conn.as_ref().and_then(Conn::deadline);
        [connect, self.deadlines.next(), self.throttled_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Bytes the receive rate limit allows now (`usize::MAX`: no limit), or
    /// `None` with `throttled_until` set when reading must pause. A token
    /// bucket: `rate` bytes per second since the first read, with a burst of
    /// a tenth of a second (at least 16 KiB).
    fn rate_allowance(&mut self, now: Instant) -> Option<usize> {
        let Some(rate) = self.settings.max_recv_speed.filter(|r| *r > 0) else {
            return Some(usize::MAX);
        };
        let start = *self.rate_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start).as_secs_f64();
        let burst = (rate / 10).max(16 * 1024) as f64;
        let allowed = rate as f64 * elapsed + burst - self.wire as f64;
        // Read in pieces of a useful size (not a few bytes per poll): wait
        // until the bucket holds 16 KiB (or the whole burst, if smaller).
        let piece = burst.min(16.0 * 1024.0);
        if allowed >= piece {
            self.throttled_until = None;
            return Some(allowed as usize);
        }
        let wait = (self.wire as f64 + piece - burst) / rate as f64;
        self.throttled_until = Some(start + Duration::from_secs_f64(wait.max(0.0)));
        None
    }

    /// Whether a step would make progress now without waiting (`woken`: the
    /// reactor's waker fired).
    pub(crate) fn has_pending_work(&self, woken: bool, now: Instant) -> bool {
        if self.stream_paused {
            return false;
        }
        if !self.stash.is_empty() {
            return true;
        }
        if let Some(until) = self.throttled_until {
            return now >= until;
        }
        let Some(conn) = &self.conn else {
            return self.stage != Stage::Waiting;
        };
        (woken && conn.phase() != Phase::Resolving)
            || conn.has_pending_work(woken)
            || self.next_deadline().is_some_and(|d| now >= d)
    }

    pub(crate) fn publish_status(&self) {
        let status = self
            .conn
            .as_ref()
            .map_or(Status::Disconnected, Conn::status);
        self.progress
            .status
            .store(status_code(status), Ordering::Relaxed);
    }

    /// Advance; `Some` when finished. `budget` bounds the socket bytes read
    /// (decremented). The caller collected readiness before.
    pub(crate) fn step(
        &mut self,
        drv: &mut dyn Connections,
        now: Instant,
        budget: &mut usize,
    ) -> Option<Completed> {
        self.turn_output = 0;
        if let Some(expired) = self.deadlines.expired(now) {
            let failure = match expired {
                Expired::Idle => {
                    RequestFailure::IdleTimeout(self.settings.idle_timeout.unwrap_or_default())
                }
                Expired::Total | Expired::Connect => {
                    RequestFailure::Timeout(self.settings.timeout.unwrap_or_default())
                }
            };
            return Some(self.complete(drv, RequestResult::Timeout, Some(failure)));
        }
        if self.conn.is_none() {
            self.begin(drv, now);
            if self.stage == Stage::Waiting {
                return None;
            }
        }
        let done = self.advance(drv, now, budget);
        if done.is_none() {
            self.publish_status();
        }
        done
    }

    fn advance(
        &mut self,
        drv: &mut dyn Connections,
        now: Instant,
        budget: &mut usize,
    ) -> Option<Completed> {
        loop {
            match self.stage {
                Stage::Connect => {
                    let conn = self.conn.as_mut()?;
                    if conn.phase() == Phase::Resolving {
                        drv.take_woken();
                    }
                    if let Err(f) = conn.establish(drv.registry(), now) {
                        return self.on_failure(drv, f, now);
                    }
                    if conn.phase() != Phase::Ready {
                        return None;
                    }
                    if let Some(done) = self.send(drv) {
                        return Some(done);
                    }
                }
                Stage::Exchange => return self.exchange(drv, now, budget),
                Stage::Waiting => return None,
            }
        }
    }

    fn target_path(&self) -> String {
        let path = self.url.path();
        let path = if path.is_empty() { "/" } else { path };
        match self.url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    fn send(&mut self, drv: &mut dyn Connections) -> Option<Completed> {
        let body = match self.body.as_ref().and_then(RequestBody::replay) {
            Some(b) => b,
            None => match self.body.take() {
                Some(reader) => reader,
                None => {
                    return Some(self.complete(
                        drv,
                        RequestResult::RequestFailed,
                        Some(RequestFailure::BodyNotReplayable),
                    ))
                }
            },
        };
        let source = match body.open() {
            Ok(s) => s,
            Err(e) => {
                return Some(self.complete(
                    drv,
                    RequestResult::RequestFailed,
                    Some(RequestFailure::Body(e)),
                ))
            }
        };
        let target = self.target_path();
        let conn = self.conn.as_mut()?;
        if let Err(e) = conn.start_request(
            &self.method,
            &target,
            &self.headers,
            BodyPlan::Source(source),
        ) {
            return Some(self.complete(
                drv,
                RequestResult::RequestFailed,
                Some(RequestFailure::Connection(Failure::Protocol(e))),
            ));
        }
        self.stage = Stage::Exchange;
        self.response = None;
        self.next = None;
        self.decoder = None;
        None
    }

    fn exchange(
        &mut self,
        drv: &mut dyn Connections,
        now: Instant,
        budget: &mut usize,
    ) -> Option<Completed> {
        loop {
            if !self.stash.is_empty() {
                let data = std::mem::take(&mut self.stash);
                if let Some(done) = self.feed(drv, data) {
                    return Some(done);
                }
                if !self.stash.is_empty() {
                    return None;
                }
            }
            if self.stream_backlog() > STREAM_HIGH_WATER {
                // The caller has not taken the streamed pieces: stop reading.
                self.stream_paused = true;
                if let Some(conn) = self.conn.as_mut() {
                    conn.pause(drv.registry());
                }
                return None;
            }
            let Some(allowance) = self.rate_allowance(now) else {
                if let Some(conn) = self.conn.as_mut() {
                    conn.pause(drv.registry());
                }
                return None;
            };
            let conn = self.conn.as_mut()?;
            if conn.is_paused() {
                conn.resume(drv.registry());
            }
            let (x, ready) = conn.exchange_mut()?;
            let before = x.bytes_read;
            let mut quantum = (*budget).min(allowance);
            let given = quantum;
            let pumped = x.pump(ready, &mut quantum);
            *budget -= given - quantum;
            let got = x.bytes_read - before;
            self.progress
                .uploaded
                .store(x.body_bytes_sent, Ordering::Relaxed);
            conn.update_interest(drv.registry());
            if got > 0 {
                self.wire += got;
                self.deadlines.idle = self.settings.idle_timeout.map(|t| now + t);
            }
            if let Err(f) = pumped {
                return self.on_failure(drv, f, now);
            }
            loop {
                let (x, ready) = self.conn.as_mut()?.exchange_mut()?;
                // The pump read already: drain what proto holds, no second read.
                let event = x.poll_event(ready, &mut 0);
                let body_received = x.proto.body_received();
                match event {
                    Ok(None) => break,
                    Ok(Some(Event::Head(h))) => {
                        if let Some(done) = self.on_head(drv, h) {
                            return Some(done);
                        }
                    }
                    Ok(Some(Event::Body(b))) => {
                        self.progress
                            .downloaded
                            .store(body_received, Ordering::Relaxed);
                        if let Some(done) = self.on_body(drv, &b, body_received, now) {
                            return Some(done);
                        }
                        if !self.stash.is_empty() {
                            // This turn's decoding is used up.
                            return None;
                        }
                        if self.stage == Stage::Connect {
                            // A large redirect body: following on a new connection.
                            return None;
                        }
                    }
                    Ok(Some(Event::End)) => return self.on_end(drv, now),
                    Ok(Some(_)) => {}
                    Err(f) => return self.on_failure(drv, f, now),
                }
            }
            if *budget == 0 || got == 0 {
                return None;
            }
        }
    }

    fn on_head(&mut self, drv: &mut dyn Connections, head: ResponseHead) -> Option<Completed> {
        let policy = Policy {
            max_redirects: self.settings.max_redirects,
            allow_https_to_http: self.settings.allow_https_to_http_redirect,
        };
        let decision = redirect::decide(
            &self.url,
            head.status(),
            &self.method,
            head.fields().get_str("location"),
            self.redirects,
            policy,
        );
        self.response = Some(head);
        match decision {
            Decision::Final => {}
            Decision::LimitReached => {
                let n = self.settings.max_redirects;
                return Some(self.complete(
                    drv,
                    RequestResult::RedirectLimitReached,
                    Some(RequestFailure::RedirectLimit(n)),
                ));
            }
            Decision::Refuse(r) => {
                return Some(self.complete(
                    drv,
                    RequestResult::RequestFailed,
                    Some(RequestFailure::Redirect(r)),
                ))
            }
            follow @ Decision::Follow { .. } => {
                self.next = Some(follow);
                return None;
            }
        }
        // The final response.
        let head = self.response.as_ref()?;
        let length = match head.body_length() {
            MessageBodyLength::ContentLength(n) => Some(n),
            MessageBodyLength::None => Some(0),
            _ => None,
        };
        self.progress
            .body_size
            .store(length.unwrap_or(u64::MAX), Ordering::Relaxed);
        let coding = head
            .fields()
            .get_str("content-encoding")
            .map(|v| v.trim().to_ascii_lowercase());
        let decoding = self.settings.accept_gzip
            && matches!(coding.as_deref(), Some("gzip" | "x-gzip" | "deflate"));
        if let (Some(limit), Some(n), false) = (self.settings.body_size_limit, length, decoding) {
            if n > limit {
                return Some(self.complete(
                    drv,
                    RequestResult::BodySizeLimitExceeded,
                    Some(RequestFailure::BodySizeLimit {
                        limit,
                        declared: Some(n),
                    }),
                ));
            }
        }
        let has_body = length != Some(0);
        let mut file = None;
        if let (Some(path), true) = (&self.settings.download_file, has_body) {
            match File::create(path) {
                Ok(f) => file = Some(f),
                Err(e) => {
                    return Some(self.complete(
                        drv,
                        RequestResult::DownloadFileCantOpen,
                        Some(RequestFailure::DownloadFileOpen {
                            path: path.clone(),
                            error: e,
                        }),
                    ));
                }
            }
        }
        let mut memory = Vec::new();
        if let (None, false, Some(n)) = (&file, decoding, length) {
            memory.reserve(n.min(MAX_RESERVE) as usize);
        }
        let sink = Sink {
            memory,
            file,
            limit: self.settings.body_size_limit,
            total: 0,
            error: None,
            stream: self.settings.stream_body.then(|| (VecDeque::new(), 0)),
        };
        self.decoder = Some(match (decoding, coding.as_deref()) {
            (true, Some("deflate")) => Decoder::Deflate(flate2::write::ZlibDecoder::new(sink)),
            (true, _) => Decoder::Gzip(flate2::write::GzDecoder::new(sink)),
            _ => Decoder::Identity(sink),
        });
        None
    }

    fn on_body(
        &mut self,
        drv: &mut dyn Connections,
        chunk: &Bytes,
        received: u64,
        now: Instant,
    ) -> Option<Completed> {
        if self.next.is_some() {
            // A redirect's body: drain a small one to keep the connection; a
            // large one is not worth reading: reconnect instead.
            if received > MAX_REDIRECT_BODY {
                self.close_conn(drv);
                return self.follow_redirect(drv, now);
            }
            return None;
        }
        self.feed(drv, chunk.clone())
    }

    /// Decode `data` into the sink, up to this turn's output limit; what is
    /// left waits in the stash for the next turn.
    fn feed(&mut self, drv: &mut dyn Connections, mut data: Bytes) -> Option<Completed> {
        while !data.is_empty() {
            if self.turn_output >= MAX_DECODED_PER_TURN {
                self.stash = data;
                return None;
            }
            let piece = data.split_to(data.len().min(DECODE_PIECE));
            let decoder = self.decoder.as_mut()?;
            let before = decoder.sink().total;
            if decoder.write(&piece).is_err() {
                return Some(self.sink_failure(drv, None));
            }
            self.turn_output += decoder.sink().total - before;
        }
        None
    }

    fn sink_failure(
        &mut self,
        drv: &mut dyn Connections,
        finish_error: Option<std::io::Error>,
    ) -> Completed {
        let err = self.decoder.as_mut().and_then(|d| d.sink().error.take());
        match err {
            Some(SinkError::Limit(limit)) => self.complete(
                drv,
                RequestResult::BodySizeLimitExceeded,
                Some(RequestFailure::BodySizeLimit {
                    limit,
                    declared: None,
                }),
            ),
            Some(SinkError::Write(error)) => {
                let path = self.settings.download_file.clone().unwrap_or_default();
                self.complete(
                    drv,
                    RequestResult::DownloadFileWriteError,
                    Some(RequestFailure::DownloadFileWrite { path, error }),
                )
            }
            None => {
                let e = finish_error.unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt compressed body")
                });
                self.complete(
                    drv,
                    RequestResult::BodyDecompressFailed,
                    Some(RequestFailure::Decompress(e)),
                )
            }
        }
    }

    fn on_end(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        let reusable = self
            .conn
            .as_mut()
            .and_then(Conn::exchange_mut)
            .is_some_and(|(x, _)| x.proto.can_reuse() && x.proto.reset().is_ok());
        if !reusable {
            self.close_conn(drv);
        }
        if self.next.is_some() {
            return self.follow_redirect(drv, now);
        }
        if let Some(decoder) = self.decoder.take() {
            let (sink, r) = decoder.finish();
            self.decoder = Some(Decoder::Identity(sink));
            if let Err(e) = r {
                return Some(self.sink_failure(drv, Some(e)));
            }
        }
        Some(self.complete(drv, RequestResult::Success, None))
    }

    fn follow_redirect(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        let Some(Decision::Follow {
            url,
            method,
            drop_body,
            drop_credentials,
        }) = self.next.take()
        else {
            return None;
        };
        if drop_credentials {
            self.headers.retain(|(k, _)| {
                !["authorization", "cookie", "proxy-authorization"]
                    .iter()
                    .any(|n| k.eq_ignore_ascii_case(n))
            });
        }
        if drop_body {
            self.body = Some(RequestBody::Empty);
            self.headers.retain(|(k, _)| {
                !["content-length", "content-type", "transfer-encoding"]
                    .iter()
                    .any(|n| k.eq_ignore_ascii_case(n))
            });
        }
        self.method = method;
        self.redirects += 1;
        self.url = url;
        self.response = None;
        self.progress.downloaded.store(0, Ordering::Relaxed);
        self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
        let same = self
            .conn
            .as_ref()
            .is_some_and(|c| c.is_idle() && c.target().can_reuse_for(&self.target()));
        if same {
            self.reused = true;
            return self.send(drv);
        }
        self.begin(drv, now);
        None
    }

    fn on_failure(
        &mut self,
        drv: &mut dyn Connections,
        failure: Failure,
        now: Instant,
    ) -> Option<Completed> {
        // A kept connection that died under the request before any response
        // byte: once, on a fresh connection, when sending again is safe (RFC
        // 9110 §9.2.2: an idempotent method, or nothing was sent).
        let safe = self.reused
            && !self.retried
            && self.response.is_none()
            && self.body.as_ref().is_some_and(RequestBody::is_replayable)
            && self
                .conn
                .as_ref()
                .and_then(Conn::exchange)
                .is_some_and(|x| {
                    x.no_response_byte() && (is_idempotent(&self.method) || x.nothing_sent())
                });
        if safe {
            self.retried = true;
            self.close_conn(drv);
            self.begin(drv, now);
            return None;
        }
        let result = RequestResult::for_failure(&failure);
        Some(self.complete(drv, result, Some(RequestFailure::Connection(failure))))
    }

    /// End the job: the result, and the connection back to the driver when it
    /// can carry another request.
    fn complete(
        &mut self,
        drv: &mut dyn Connections,
        result: RequestResult,
        failure: Option<RequestFailure>,
    ) -> Completed {
        if let Some(conn) = self.conn.take() {
            let keep = result == RequestResult::Success && conn.is_idle();
            drv.release(conn, keep, Instant::now());
        }
        let (body, body_bytes) = match self.decoder.take() {
            Some(d) => {
                let (mut sink, _) = d.finish();
                // Streamed pieces not taken come with the completion.
                if let Some((pieces, _)) = sink.stream.take() {
                    for p in pieces {
                        sink.memory.extend_from_slice(&p);
                    }
                }
                (sink.memory, sink.total)
            }
            None => (Vec::new(), 0),
        };
        let head = self.response.take();
        self.progress
            .status
            .store(status_code(Status::Disconnected), Ordering::Relaxed);
        Completed {
            result,
            reason: failure
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            failure,
            response_code: head.as_ref().map_or(0, ResponseHead::status),
            headers: head.map(|h| h.fields().clone()).unwrap_or_default(),
            body: if result == RequestResult::Success {
                Bytes::from(body)
            } else {
                Bytes::new()
            },
            final_url: self.url.to_string(),
            redirects: self.redirects,
            wire_bytes: self.wire,
            body_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_idempotent;

    #[test]
    fn idempotent_methods_are_rfc_9110s() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(is_idempotent(m), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "get", "PROPFIND"] {
            assert!(!is_idempotent(m), "{m}");
        }
    }
}
