//! [`Job`]: one request's logic — connection choice and the one safe retry,
//! deadlines, redirects, the body sink — talking to a connection through its
//! exchange. The same job runs inline under `HttpRequest::poll` and on its
//! worker thread.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Registry, Token, Waker};
use pollhttp_proto::{Config, Event, MessageBodyLength, ResponseHead};
use url::Url;

use super::outcome::{Completed, RequestFailure, RequestResult};
use super::redirect::{self, Decision, Policy};
use super::sink::{resume_note, Decoder, Replace, Sink, SinkError};
use super::{status_code, Progress, Settings};
use crate::body::RequestBody;
use crate::conn::{client_proto_config, BodyPlan, Conn, ConnSettings, Phase, Target};
use crate::error::Failure;
use crate::resolve::Resolver;
use crate::status::Status;
use crate::time::{Deadlines, Expired};

/// Most bytes of a redirect's body read to keep its connection for the next
/// hop; past this the connection is dropped instead.
const MAX_REDIRECT_BODY: u64 = 64 * 1024;

/// Most decoded body bytes one step produces, as a multiple of the socket
/// bytes it may read (between 64 KiB and 1 MiB); the rest of the received
/// bytes wait for the next step, so decoding stays inside the budget.
const DECODED_PER_READ: u64 = 4;
const MIN_DECODED_PER_STEP: u64 = 64 << 10;
const MAX_DECODED_PER_STEP: u64 = 1 << 20;

/// Input fed to a decoder at once (its output is checked in between).
const DECODE_PIECE: usize = 8 * 1024;

/// Fewest and most bytes of streamed body pieces held before reading
/// pauses ([`Connections::stream_high_water`]).
pub(crate) const STREAM_HIGH_WATER: (usize, usize) = (1 << 20, 16 << 20);

/// Most bytes reserved up front for a body of known length held in memory
/// (a larger Content-Length grows the buffer as bytes really arrive). The
/// reservation is address space: pages are backed as bytes are written.
/// Reserving the whole body spares the copies of a growing buffer (a
/// 16 MiB copy into fresh pages is several milliseconds in one `poll`).
const MAX_RESERVE: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Establishing the connection; the request goes out once it is ready.
    Connect,
    /// The request is out; reading the response.
    Exchange,
    /// No connection yet: the connection limits are reached.
    Waiting,
    /// Waiting to try again (a retry's backoff), without a connection.
    Backoff,
}

/// What a response that is not the result leads to, once its body is read
/// (a small one, to keep the connection) or dropped.
#[derive(Debug)]
enum Next {
    /// Follow a redirect (a [`Decision::Follow`]).
    Redirect(Decision),
    /// Send the request again with the answer to a Digest challenge (the
    /// `Authorization` field is already set).
    Challenge,
    /// Try again after this delay (a status of the retry policy).
    Retry(Duration),
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
    fn take_idle(&mut self, target: &Target) -> Option<Box<Conn>>;
    /// A token for a new connection to `target`, or `None` when the limits
    /// say wait.
    fn new_token(&mut self, target: &Target) -> Option<Token>;
    /// The job is done with `conn`: keep it for reuse (`keep`: it is idle and
    /// reusable) or close it. A cache that ages idle connections reads its
    /// own clock.
    fn release(&mut self, conn: Box<Conn>, keep: bool);
    /// Most bytes of a streamed body's pieces held before reading pauses.
    fn stream_high_water(&self) -> usize {
        STREAM_HIGH_WATER.0
    }
}

/// Methods a client may send again after a failure (RFC 9110 §9.2.2).
fn is_idempotent(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
}

pub(crate) struct Job {
    /// Shared by the requests a pool was given with equal settings.
    pub(crate) settings: Arc<Settings>,
    url: Url,
    method: String,
    headers: Vec<(String, String)>,
    /// The body to send (again); `None` once a reader body was sent.
    body: Option<RequestBody>,
    deadlines: Deadlines,
    conn: Option<Box<Conn>>,
    stage: Stage,
    redirects: u32,
    /// A redirect, challenge or retry being followed: the body of the
    /// response that led to it is read and dropped.
    next: Option<Next>,
    /// Tries made so far (retries of the retry policy + 1).
    attempts: u32,
    /// The retry's backoff ends then (`Stage::Backoff`).
    retry_at: Option<Instant>,
    /// Digest challenges answered (one, or two when the first nonce was
    /// stale).
    challenges: u8,
    /// Where `settings.auth` applies: the origin of the URL as given.
    /// (`None` without `auth`: no allocation per request for nothing.)
    auth_origin: Option<url::Origin>,
    /// `resume`: the size of the partial download file, asked for from
    /// there on (`Range: bytes=N-`).
    resume_from: Option<u64>,
    /// The caller's own `Cookie` field, merged with the jar's at each hop
    /// (dropped when a redirect leaves the origin).
    user_cookie: Option<String>,
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
    /// The backlog of streamed pieces past which reading pauses (the
    /// driver's [`Connections::stream_high_water`] at the last step).
    stream_high_water: usize,
    /// Body bytes received but not decoded yet: a turn decodes at most
    /// `turn_cap` (a gzip body can expand a thousandfold).
    stash: Bytes,
    /// Decoded bytes this turn.
    turn_output: u64,
    /// Most decoded bytes this step may produce.
    turn_cap: u64,
    /// A streamed body ended (at this time) while several of its pieces
    /// were still waiting: the completion comes at the next step, a poll
    /// later, so the caller can take the pieces first instead of having them
    /// copied into one body.
    end_deferred: Option<Instant>,
    /// The caller's buffer for the body held in memory
    /// ([`RequestPool::collect_into`](crate::RequestPool::collect_into)):
    /// empty (no allocation) when none was given.
    collect: Vec<u8>,
}

impl Job {
    pub(crate) fn new(
        settings: Arc<Settings>,
        url: Url,
        method: String,
        headers: Vec<(String, String)>,
        body: RequestBody,
        start: Instant,
        progress: Arc<Progress>,
    ) -> Job {
        let (headers, user_cookie) = if settings.cookie_jar.is_some() {
            let mut headers = headers;
            let mut cookie: Option<String> = None;
            headers.retain(|(k, v)| {
                if !k.eq_ignore_ascii_case("cookie") {
                    return true;
                }
                match &mut cookie {
                    Some(c) => {
                        c.push_str("; ");
                        c.push_str(v);
                    }
                    None => cookie = Some(v.clone()),
                }
                false
            });
            (headers, cookie)
        } else {
            (headers, None)
        };
        let mut headers = headers;
        let resume_from = resume_offset(&settings, &mut headers);
        Job {
            resume_from,
            auth_origin: settings.auth.is_some().then(|| url.origin()),
            user_cookie,
            attempts: 1,
            retry_at: None,
            challenges: 0,
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
            stream_high_water: STREAM_HIGH_WATER.0,
            stash: Bytes::new(),
            turn_output: 0,
            turn_cap: MAX_DECODED_PER_STEP,
            end_deferred: None,
            collect: Vec::new(),
        }
    }

    pub(crate) fn target(&self) -> Target {
        target_for(&self.url, &self.settings)
    }

    fn conn_settings(&self) -> ConnSettings {
        ConnSettings {
            connect_timeout: self.settings.connect_timeout,
            attempt_delay: self.settings.attempt_delay,
            recv_buffer: self.settings.recv_buffer_size,
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
        self.deadlines.idle = self.settings.idle_timeout.map(|t| now + t);
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
            drv.release(kept, false);
        }
        let Some(token) = drv.new_token(&target) else {
            // No byte can arrive while it waits for a connection: the idle
            // timeout starts when it gets one (its total timeout runs on).
            self.stage = Stage::Waiting;
            self.deadlines.idle = None;
            return;
        };
        self.conn = Some(Box::new(Conn::start(
            target,
            token,
            &self.conn_settings(),
            drv.resolver(),
            drv.registry(),
            drv.waker(),
            now,
        )));
    }

    /// Whether the job waits for a connection (the limits are reached).
    pub(crate) fn is_waiting(&self) -> bool {
        self.stage == Stage::Waiting
    }

    /// A readiness event for the token of this job's connection.
    pub(crate) fn on_event(&mut self, token: Token, ev: &mio::event::Event) {
        if let Some(c) = self.conn.as_deref_mut().filter(|c| c.token() == token) {
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
        let resume = self.stream_paused && self.stream_backlog() <= self.stream_high_water / 2;
        if resume {
            self.stream_paused = false;
        }
        (piece, resume)
    }

    /// Stream the final response's body (`stream_body`) from now on, for a
    /// pipe: possible while no body has started arriving.
    pub(crate) fn stream_from_now(&mut self) -> bool {
        if self.decoder.is_some() {
            return false;
        }
        Arc::make_mut(&mut self.settings).stream_body = true;
        true
    }

    /// Collect the final response's body into `buffer` (cleared; its
    /// capacity kept): possible while no body has started arriving.
    pub(crate) fn collect_into(&mut self, mut buffer: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.decoder.is_some() {
            return Err(buffer);
        }
        buffer.clear();
        self.collect = buffer;
        Ok(())
    }

    /// Drop the body sink (a retry starts over), keeping the caller's
    /// buffer for the next try.
    fn drop_sink(&mut self) {
        if let Some(mut d) = self.decoder.take() {
            let memory = &mut d.sink().memory;
            if memory.capacity() > self.collect.capacity() {
                memory.clear();
                self.collect = std::mem::take(memory);
            }
        }
    }

    /// Whether the job's connection waits for its name lookup.
    pub(crate) fn is_resolving(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.phase() == Phase::Resolving)
    }

    /// The job's connection.
    pub(crate) fn conn_mut(&mut self) -> Option<&mut Conn> {
        self.conn.as_deref_mut()
    }

    /// Take the job's connection away (to close it when the job is dropped).
    pub(crate) fn take_conn(&mut self) -> Option<Box<Conn>> {
        self.conn.take()
    }

    fn close_conn(&mut self, drv: &mut dyn Connections) {
        if let Some(c) = self.conn.take() {
            drv.release(c, false);
        }
    }

    /// The nearest deadline of the job: connect, total, idle.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let connect = self.conn.as_deref().and_then(Conn::deadline);
        [
            connect,
            self.deadlines.next(),
            self.throttled_until,
            self.retry_at,
            self.end_deferred,
        ]
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
        if self.end_deferred.is_some() {
            // Not in this poll: its deadline (now) brings it back next time.
            return false;
        }
        if self.stream_paused {
            return false;
        }
        if !self.stash.is_empty() {
            return true;
        }
        if let Some(at) = self.retry_at {
            return now >= at || self.deadlines.next().is_some_and(|d| now >= d);
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
            .as_deref()
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
        self.stream_high_water = drv.stream_high_water();
        self.turn_cap = (*budget as u64)
            .saturating_mul(DECODED_PER_READ)
            .clamp(MIN_DECODED_PER_STEP, MAX_DECODED_PER_STEP);
        if self.end_deferred.take().is_some() {
            // The body is complete: nothing (not even a deadline) changes
            // that now.
            return Some(self.complete(drv, RequestResult::Success, None));
        }
        if let Some(expired) = self.deadlines.expired(now) {
            if expired == Expired::Idle {
                if let Some(delay) = self.retry_after_failure(now) {
                    self.close_conn(drv);
                    self.schedule_retry(drv, now, delay);
                    return None;
                }
            }
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
        if let Some(at) = self.retry_at {
            if now < at {
                return None;
            }
            self.retry_at = None;
            self.stage = Stage::Connect;
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
            let hop = self.hop();
            let done = match self.stage {
                Stage::Connect => {
                    let conn = self.conn.as_deref_mut()?;
                    if conn.phase() == Phase::Resolving {
                        drv.take_woken();
                    }
                    match conn.establish(drv.registry(), now) {
                        Err(f) => self.on_failure(drv, f, now),
                        Ok(()) if conn.phase() != Phase::Ready => return None,
                        Ok(()) => {
                            if let Some(done) = self.send(drv) {
                                return Some(done);
                            }
                            continue;
                        }
                    }
                }
                Stage::Exchange => self.exchange(drv, now, budget),
                Stage::Waiting | Stage::Backoff => return None,
            };
            // A new hop (a redirect, a challenge's answer, the safe retry)
            // that began in this step goes on now: what it was handed may
            // be ready at once (an idle kept connection, a cached name), and
            // no event would ever come for it.
            if done.is_some() || self.hop() == hop {
                return done;
            }
        }
    }

    /// Counts every new start of the request (redirects followed,
    /// challenges answered, tries, the safe retry): it changes exactly when
    /// a step began another hop. Each is bounded, so a step's loop is too.
    fn hop(&self) -> u32 {
        self.redirects + u32::from(self.challenges) + self.attempts + u32::from(self.retried)
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
        self.set_cookie_field();
        let target = self.target_path();
        let conn = self.conn.as_deref_mut()?;
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
        self.drop_sink();
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
            if self.stream_backlog() > self.stream_high_water {
                // The caller has not taken the streamed pieces: stop reading.
                self.stream_paused = true;
                if let Some(conn) = self.conn.as_deref_mut() {
                    conn.pause(drv.registry());
                }
                return None;
            }
            let Some(allowance) = self.rate_allowance(now) else {
                if let Some(conn) = self.conn.as_deref_mut() {
                    conn.pause(drv.registry());
                }
                return None;
            };
            let conn = self.conn.as_deref_mut()?;
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
                let (x, ready) = self.conn.as_deref_mut()?.exchange_mut()?;
                // The pump read already: drain what proto holds, no second read.
                let event = x.poll_event(ready, &mut 0);
                let body_received = x.proto.body_received();
                match event {
                    Ok(None) => break,
                    Ok(Some(Event::Head(h))) => {
                        if let Some(done) = self.on_head(drv, h, now) {
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
                        if self.stage != Stage::Exchange {
                            // A large redirect body: following on a new
                            // connection (or after a retry's backoff).
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

    fn on_head(
        &mut self,
        drv: &mut dyn Connections,
        head: ResponseHead,
        now: Instant,
    ) -> Option<Completed> {
        if let Some(jar) = &self.settings.cookie_jar {
            jar.store_response(&self.url, head.fields());
        }
        if let Some(next) = self.challenge(&head).or_else(|| self.retry_for(&head, now)) {
            self.response = Some(head);
            self.next = Some(next);
            return None;
        }
        let decision = if self.settings.follow_redirects {
            let policy = Policy {
                max_redirects: self.settings.max_redirects,
                allow_https_to_http: self.settings.allow_https_to_http_redirect,
            };
            redirect::decide(
                &self.url,
                head.status(),
                &self.method,
                head.fields().get_str("location"),
                self.redirects,
                policy,
            )
        } else {
            Decision::Final
        };
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
                self.next = Some(Next::Redirect(follow));
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
        // A decoder exists only when a body does: HEAD, 204, 304 and a
        // Content-Length of 0 carry the coding of a representation they do
        // not send (RFC 9110 §6.4.1, RFC 9112 §6.3).
        let has_body = length != Some(0);
        let decoding = has_body
            && self.settings.accept_gzip
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
        let mut file = None;
        let mut append = false;
        let mut to_file = true;
        if let Some(from) = self.resume_from {
            let head = self.response.as_ref()?;
            match head.status() {
                206 => {
                    let range = head.fields().get_str("content-range").unwrap_or("");
                    if content_range_start(range) != Some(from) {
                        let failure = RequestFailure::RangeMismatch {
                            expected: from,
                            content_range: range.to_string(),
                        };
                        return Some(self.complete(
                            drv,
                            RequestResult::RequestFailed,
                            Some(failure),
                        ));
                    }
                    append = true;
                }
                // Nothing to resume: the file stays as it is, the 416 and
                // its body are the result.
                416 => to_file = false,
                _ => {}
            }
        }
        let mut replace = None;
        if let (Some(path), true) = (&self.settings.download_file, to_file) {
            let opened = if append {
                std::fs::OpenOptions::new().append(true).open(path)
            } else {
                // Emptied when the body starts (or an empty body ends),
                // not now: a response that fails first changes nothing.
                let head = self.response.as_ref()?;
                replace = Some(Replace {
                    note: self
                        .settings
                        .resume
                        .then(|| (resume_note(path), validator_of(head))),
                });
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
            };
            match opened {
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
        let mut memory = match file {
            None => std::mem::take(&mut self.collect),
            Some(_) => Vec::new(),
        };
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
            replace,
        };
        self.decoder = Some(match (decoding, coding.as_deref()) {
            (true, Some("deflate")) => {
                Decoder::Deflate(Box::new(flate2::write::ZlibDecoder::new(sink)))
            }
            (true, _) => Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(sink))),
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
                return self.follow_next(drv, now);
            }
            return None;
        }
        self.feed(drv, chunk.clone())
    }

    /// Decode `data` into the sink, up to this turn's output limit; what is
    /// left waits in the stash for the next turn.
    fn feed(&mut self, drv: &mut dyn Connections, mut data: Bytes) -> Option<Completed> {
        while !data.is_empty() {
            if self.turn_output >= self.turn_cap {
                self.stash = data;
                return None;
            }
            let decoder = self.decoder.as_mut()?;
            // Without a content coding, output is input: one piece (a
            // streamed body then shares it instead of copying it).
            let piece = if decoder.is_identity() {
                let room = self.turn_cap.saturating_sub(self.turn_output);
                data.split_to(data.len().min(usize::try_from(room).unwrap_or(usize::MAX)))
            } else {
                data.split_to(data.len().min(DECODE_PIECE))
            };
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
            .as_deref_mut()
            .and_then(Conn::exchange_mut)
            .is_some_and(|(x, _)| x.proto.can_reuse() && x.proto.reset().is_ok());
        if !reusable {
            self.close_conn(drv);
        }
        if self.next.is_some() {
            return self.follow_next(drv, now);
        }
        if let Some(decoder) = self.decoder.take() {
            let (sink, r) = decoder.finish();
            self.decoder = Some(Decoder::Identity(sink));
            // An empty body (chunked or close-delimited with no byte) has
            // nothing to decode: it is empty, not a corrupt stream.
            let empty = self.progress.downloaded.load(Ordering::Relaxed) == 0;
            if let (Err(e), false) = (r, empty) {
                return Some(self.sink_failure(drv, Some(e)));
            }
        }
        let waiting_pieces = self
            .decoder
            .as_mut()
            .and_then(|d| d.sink().stream.as_ref())
            .map_or(0, |(pieces, _)| pieces.len());
        if waiting_pieces > 1 {
            // Completing now would copy the pieces into one body inside this
            // poll: give the caller a chance to take them first. The
            // connection goes back now.
            if let Some(conn) = self.conn.take() {
                let keep = conn.is_idle();
                drv.release(conn, keep);
            }
            self.end_deferred = Some(now);
            return None;
        }
        Some(self.complete(drv, RequestResult::Success, None))
    }

    /// Go on after a response that is not the result: the next hop of a
    /// redirect, the answer to a challenge, or a retry's backoff.
    fn follow_next(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        let (url, method, drop_body, drop_credentials) = match self.next.take() {
            Some(Next::Redirect(Decision::Follow {
                url,
                method,
                drop_body,
                drop_credentials,
            })) => (url, method, drop_body, drop_credentials),
            Some(Next::Challenge) => {
                self.response = None;
                return self.send_again(drv, now);
            }
            Some(Next::Retry(delay)) => {
                self.schedule_retry(drv, now, delay);
                return None;
            }
            _ => return None,
        };
        if drop_credentials {
            {
                self.user_cookie = None;
            }
            // The caller's Host named the first origin (curl sends a custom
            // Host only there).
            self.headers.retain(|(k, _)| {
                !["authorization", "cookie", "proxy-authorization", "host"]
                    .iter()
                    .any(|n| k.eq_ignore_ascii_case(n))
            });
        }
        // Credentials in the Location are the next hop's (curl uses them).
        if let Some(value) = super::auth::basic_from_url(&url) {
            self.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            self.headers.push(("Authorization".into(), value));
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
        self.send_again(drv, now)
    }

    /// Send the request (as it now is) on the same connection when it is
    /// idle and fits the URL, else on another one.
    fn send_again(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        let target = self.target();
        let same = self
            .conn
            .as_deref_mut()
            .is_some_and(|c| c.is_idle() && c.reuse_for(&target));
        if same {
            self.reused = true;
            return self.send(drv);
        }
        self.begin(drv, now);
        None
    }

    /// A `401` that `settings.auth` (Digest) answers: the `Authorization`
    /// field for the same request again (RFC 7616 §3.4). One answer per
    /// request, a second only when the server says the first nonce was
    /// stale (§3.3); never for another origin than the one given, nor with
    /// a body that cannot be sent again (the 401 is then the result).
    fn challenge(&mut self, head: &ResponseHead) -> Option<Next> {
        if head.status() != 401 || Some(self.url.origin()) != self.auth_origin {
            return None;
        }
        let Some(super::auth::Auth::Digest { user, password }) = &self.settings.auth else {
            return None;
        };
        let values = head
            .fields()
            .get_all("www-authenticate")
            .filter_map(|v| std::str::from_utf8(v).ok());
        let challenge = super::auth::parse_digest_challenge(values)?;
        let again = self.challenges == 1 && challenge.stale;
        if (self.challenges > 0 && !again) || !self.body_replayable() {
            return None;
        }
        self.challenges += 1;
        let value = super::auth::digest_value(
            &challenge,
            user,
            password,
            &self.method,
            &self.target_path(),
            1,
            &super::auth::new_cnonce(),
        );
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        self.headers.push(("Authorization".into(), value));
        Some(Next::Challenge)
    }

    /// A response whose status the retry policy retries: the delay before
    /// the next try. The server answered, so the request was sent: only an
    /// idempotent method is sent again (RFC 9110 §9.2.2). `Retry-After`
    /// (RFC 9110 §10.2.3; a date counts from the response's `Date`, else
    /// from the local clock) replaces the backoff; one longer than the
    /// policy's `max_delay` or past the request's deadline makes this
    /// response the result.
    fn retry_for(&self, head: &ResponseHead, now: Instant) -> Option<Next> {
        let policy = self.settings.retry.as_ref()?;
        if !policy.statuses.contains(&head.status()) || !is_idempotent(&self.method) {
            return None;
        }
        let fields = head.fields();
        let retry_after = fields.get_str("retry-after").and_then(|v| {
            let base = fields
                .get_str("date")
                .and_then(|d| httpdate::parse_http_date(d).ok())
                .unwrap_or_else(std::time::SystemTime::now);
            super::retry::retry_after(v, base)
        });
        self.retry_delay(retry_after, now).map(Next::Retry)
    }

    /// The delay before another try, if the retry policy allows one now:
    /// tries left, a body that can be sent again, no body byte handed out
    /// yet, within the deadline and the origin's retry budget.
    fn retry_delay(&self, retry_after: Option<Duration>, now: Instant) -> Option<Duration> {
        let policy = self.settings.retry.as_ref()?;
        if self.attempts > policy.retries || !self.body_replayable() {
            return None;
        }
        let delivered = self.progress.downloaded.load(Ordering::Relaxed) > 0
            && self.next.is_none()
            && self.response.is_some();
        if delivered {
            return None;
        }
        let delay = match retry_after {
            Some(d) if d > policy.max_delay => return None,
            Some(d) => d,
            None => super::retry::backoff(policy, self.attempts, super::retry::random_u64()),
        };
        if self.deadlines.total.is_some_and(|t| now + delay >= t) {
            return None;
        }
        let origin = self.url.origin().ascii_serialization();
        policy.budget.try_take(&origin, now).then_some(delay)
    }

    /// A failure the retry policy retries (no connection, no response, a
    /// reset, a cut body, the idle timeout): the delay before the next try.
    /// Only for an idempotent method, or when nothing was sent.
    fn retry_after_failure(&self, now: Instant) -> Option<Duration> {
        self.settings.retry.as_ref()?;
        let nothing_sent = self
            .conn
            .as_deref()
            .and_then(Conn::exchange)
            .is_none_or(|x| x.nothing_sent());
        if !(is_idempotent(&self.method) || nothing_sent) {
            return None;
        }
        self.retry_delay(None, now)
    }

    fn body_replayable(&self) -> bool {
        self.body.as_ref().is_some_and(RequestBody::is_replayable)
    }

    /// Wait `delay`, then try again from the start (a reusable connection
    /// is kept for it).
    fn schedule_retry(&mut self, drv: &mut dyn Connections, now: Instant, delay: Duration) {
        if let Some(conn) = self.conn.take() {
            let keep = conn.is_idle();
            drv.release(conn, keep);
        }
        self.attempts += 1;
        self.next = None;
        self.response = None;
        self.drop_sink();
        self.stash = Bytes::new();
        self.progress.downloaded.store(0, Ordering::Relaxed);
        self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
        let at = now + delay;
        self.retry_at = Some(at);
        self.deadlines.idle = self.settings.idle_timeout.map(|t| at + t);
        self.stage = Stage::Backoff;
    }

    /// The `Cookie` field of the next hop: the caller's own, then the
    /// jar's cookies for the URL (RFC 6265 §5.4).
    fn set_cookie_field(&mut self) {
        let Some(jar) = &self.settings.cookie_jar else {
            return;
        };
        let from_jar = jar.cookie_header(&self.url);
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("cookie"));
        let value = match (self.user_cookie.as_deref(), from_jar) {
            (Some(u), Some(j)) => format!("{u}; {j}"),
            (Some(u), None) => u.to_string(),
            (None, Some(j)) => j,
            (None, None) => return,
        };
        self.headers.push(("Cookie".into(), value));
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
                .as_deref()
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
        let transient = matches!(
            result,
            RequestResult::CantConnect
                | RequestResult::CantResolve
                | RequestResult::ConnectionError
                | RequestResult::NoResponse
                | RequestResult::ChunkedBodySizeMismatch
        );
        if let Some(delay) = transient.then(|| self.retry_after_failure(now)).flatten() {
            self.close_conn(drv);
            self.schedule_retry(drv, now, delay);
            return None;
        }
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
            drv.release(conn, keep);
        }
        let (body, body_bytes) = match self.decoder.take() {
            Some(d) => {
                let (mut sink, _) = d.finish();
                if let (RequestResult::Success, Some(path)) = (result, &self.settings.download_file)
                {
                    if let Err(error) = sink.finish_download(path) {
                        let path = path.clone();
                        return self.complete(
                            drv,
                            RequestResult::DownloadFileWriteError,
                            Some(RequestFailure::DownloadFileWrite { path, error }),
                        );
                    }
                }
                // Streamed pieces not taken come with the completion: one
                // piece as it is, several copied together.
                let body = match sink.stream.take() {
                    Some((mut pieces, _)) if pieces.len() == 1 && sink.memory.is_empty() => {
                        pieces.pop_front().unwrap_or_default()
                    }
                    Some((pieces, pending)) => {
                        sink.memory.reserve_exact(pending);
                        for p in pieces {
                            sink.memory.extend_from_slice(&p);
                        }
                        Bytes::from(sink.memory)
                    }
                    None => Bytes::from(sink.memory),
                };
                (body, sink.total)
            }
            None => (Bytes::new(), 0),
        };
        let head = self.response.take();
        if let (true, Some(head)) = (self.settings.resume, &head) {
            self.stamp_download(head);
        }
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
            headers: head.map(ResponseHead::into_fields).unwrap_or_default(),
            body: if result == RequestResult::Success {
                body
            } else {
                Bytes::new()
            },
            final_url: self.url.to_string(),
            redirects: self.redirects,
            wire_bytes: self.wire,
            body_bytes,
            attempts: self.attempts,
        }
    }
}

impl Job {
    /// `resume`: give the download file the response's `Last-Modified` as
    /// its modification time (curl's `-R`) when the request ends, complete
    /// or cut. Informational: a resume's `If-Range` comes from the note
    /// beside the file ([`resume_note`]), which a killed process leaves
    /// right, where it leaves the modification time at the cut.
    fn stamp_download(&self, head: &ResponseHead) {
        let (Some(path), true) = (&self.settings.download_file, head.status() / 100 == 2) else {
            return;
        };
        let Some(time) = head
            .fields()
            .get_str("last-modified")
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            return;
        };
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = file.set_modified(time);
        }
    }
}

pub(crate) use crate::conn::url_origin;

/// Where a request for `url` under `settings` connects: its origin, the
/// proxy (the settings', else the environment's when they say so) with its
/// credentials, the TLS settings. A pool queues a request by its key
/// before it is a job.
pub(crate) fn target_for(url: &Url, settings: &Settings) -> Target {
    let (tls, host, port) = url_origin(url);
    let mut proxy = if tls {
        settings.https_proxy.clone()
    } else {
        settings.http_proxy.clone()
    };
    let mut credentials = settings.proxy_auth.clone();
    if proxy.is_none() && settings.proxy_from_env {
        if let Some(p) = super::proxy::env_proxy(url) {
            proxy = Some((p.host, p.port));
            credentials = credentials.or(p.credentials);
        }
    }
    let proxy_auth = proxy
        .as_ref()
        .and(credentials.as_ref())
        .map(|(u, p)| super::auth::basic_value(u, p));
    Target {
        tls,
        host: host.to_string(),
        port,
        proxy,
        proxy_auth,
        tls_options: tls.then(|| settings.tls.clone().unwrap_or_default()),
    }
}

/// `resume`: the size of a partial download file (> 0), with `Range` and
/// `If-Range` added to `headers` (unless the caller gave a `Range`).
fn resume_offset(settings: &Settings, headers: &mut Vec<(String, String)>) -> Option<u64> {
    if !settings.resume || headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("range")) {
        return None;
    }
    let meta = std::fs::metadata(settings.download_file.as_ref()?).ok()?;
    let size = meta.len();
    if size == 0 || !meta.is_file() {
        return None;
    }
    headers.push(("Range".into(), format!("bytes={size}-")));
    // Only a validator the server gave for these bytes (RFC 9110 §13.1.5):
    // without one, the Range goes alone (as curl's `-C -`).
    let note = std::fs::read_to_string(resume_note(settings.download_file.as_ref()?));
    if let Some(v) = note
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && pollhttp_proto::is_field_value(v.as_bytes()))
    {
        headers.push(("If-Range".into(), v));
    }
    Some(size)
}

/// The `If-Range` validator of a response (RFC 9110 §13.1.5): its ETag when
/// strong, else its Last-Modified date; `None` when it has neither.
fn validator_of(head: &ResponseHead) -> Option<String> {
    let fields = head.fields();
    fields
        .get_str("etag")
        .map(str::trim)
        .filter(|e| e.starts_with('"'))
        .or_else(|| fields.get_str("last-modified").map(str::trim))
        .map(str::to_string)
}

/// The first byte of a `Content-Range: bytes first-last/complete` value
/// (RFC 9110 §14.4).
fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{content_range_start, is_idempotent};

    #[test]
    fn content_range_first_byte() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

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
