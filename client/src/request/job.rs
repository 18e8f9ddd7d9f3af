//! [`Job`]: one request's mechanism — take a connection, send the request
//! as it is at this hop ([`Call`]), drive the exchange within a budget,
//! feed the sink, keep the timers — applying what the decision table
//! ([`next`]) says after each response head and each failure. The same job
//! runs under `HttpRequest` (inline or on its worker thread) and under
//! `RequestPool`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Registry, Token, Waker};
use pollhttp_proto::{Config, Error as ProtoError, Event, MessageBodyLength, ResponseHead};
use url::Url;

use super::cached::{CacheUse, Lookup};
use super::download::{resume_offset, settle_failed, stamp};
use super::next::{self, Attempt, Next, Trouble};
use super::outcome::{Completed, RequestFailure, RequestResult};
use super::rate;
use super::retry::jitter_u64;
use super::sink::{Decoder, SinkError, SinkOptions};
use super::{status_code, Call, Progress, Settings};
use crate::body::RequestBody;
use crate::cache::store::StoreError;
use crate::cache::CacheStatus;
use crate::conn::{
    client_proto_config, BodyPlan, Conn, ConnKey, ConnSettings, Phase, Route, Target,
};
use crate::error::Failure;
use crate::resolve::Resolver;
use crate::status::Status;
use crate::time::{Timer, TimerTable};

/// Most bytes of a redirect's body read to keep its connection for the next
/// hop; past this the connection is dropped instead.
const MAX_REDIRECT_BODY: u64 = 64 * 1024;

/// Most decoded body bytes one step produces, as a multiple of the socket
/// bytes it may read (between 64 KiB and 1 MiB); the rest of the received
/// bytes wait for the next step, so decoding stays inside the budget.
const DECODED_PER_READ: u64 = 4;
const MIN_DECODED_PER_STEP: u64 = 64 << 10;
const MAX_DECODED_PER_STEP: u64 = 1 << 20;

/// Most input fed to a decoder at once (its output is checked in between).
const DECODE_PIECE: usize = 8 * 1024;

/// Most bytes of a stored body read from the cache at once (and never more
/// than the turn's budget).
const CACHE_PIECE: usize = 256 * 1024;

/// The first piece of a coded body, and the least: pieces then grow or
/// shrink by the ratio the last one decoded at, aiming at the room left in
/// the turn, so a body that expands ten-thousandfold (a br or zstd bomb:
/// 1 GiB of zeros in 2 KB) is fed a few bytes at a time and stops near the
/// turn's cap instead of decoding in one call what 8 KiB of it hold.
const MIN_DECODE_PIECE: usize = 16;

/// Bytes of streamed body pieces held before reading pauses, unless the
/// driver says otherwise ([`Connections::stream_high_water`]).
const STREAM_HIGH_WATER: usize = 4 << 20;

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
    /// Answering from the cache's store, without a connection.
    FromCache,
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
    /// A token for a new connection with key `key`, or `None` when the
    /// limits say wait.
    fn new_token(&mut self, key: &ConnKey) -> Option<Token>;
    /// The job is done with `conn`: keep it for reuse (`keep`: it is idle and
    /// reusable) or close it. A cache that ages idle connections reads its
    /// own clock.
    fn release(&mut self, conn: Box<Conn>, keep: bool);
    /// Most bytes of a streamed body's pieces held before reading pauses.
    fn stream_high_water(&self) -> usize {
        STREAM_HIGH_WATER
    }
}

pub(crate) struct Job {
    /// Shared by the requests a pool was given with equal settings.
    pub(crate) settings: Arc<Settings>,
    /// The request as it goes out at this hop.
    call: Call,
    /// Where `call`'s URL connects and its connection key, made once per
    /// hop ([`target_for`]).
    route: Route,
    /// Every timer of the request but its connection's own.
    timers: TimerTable,
    conn: Option<Box<Conn>>,
    stage: Stage,
    redirects: u32,
    /// A redirect, challenge or retry being followed: the body of the
    /// response that led to it is read and dropped first.
    next: Option<Next>,
    /// Tries made so far (retries of the retry policy + 1).
    attempts: u32,
    /// Digest challenges answered (one, or two when the first nonce was
    /// stale).
    challenges: u8,
    /// Where `settings.auth` applies: the origin of the URL as given.
    /// (`None` without `auth`: no allocation per request for nothing.)
    auth_origin: Option<url::Origin>,
    /// `resume`: the size of the partial download file, asked for from
    /// there on (`Range: bytes=N-`).
    resume_from: Option<u64>,
    /// The request went out on a kept connection.
    reused: bool,
    /// The one safe retry was used.
    retried: bool,
    decoder: Option<Decoder>,
    response: Option<ResponseHead>,
    /// The heads before `response` ([`Completed::earlier_heads`]).
    earlier_heads: Vec<ResponseHead>,
    /// Interim (1xx) heads kept in `earlier_heads` so far.
    informational: usize,
    progress: Arc<Progress>,
    /// HTTP bytes read for this request, over every connection.
    wire: u64,
    /// The receive rate limit's token bucket (`max_recv_speed`), from the
    /// first read on.
    rate_bucket: Option<rate::Bucket>,
    /// Reading is paused until the caller takes streamed body pieces.
    stream_paused: bool,
    /// The caller paused the request ([`RequestPool::pause`](crate::RequestPool::pause)):
    /// once its exchange has started it neither reads nor sends until
    /// resumed, and its idle timer is off.
    user_paused: bool,
    /// The backlog of streamed pieces past which reading pauses (the
    /// driver's [`Connections::stream_high_water`] at the last step).
    stream_high_water: usize,
    /// Body bytes received but not decoded yet: a turn decodes at most
    /// `turn_cap` (a gzip body can expand a thousandfold).
    stash: Bytes,
    /// Decoded bytes this turn.
    turn_output: u64,
    /// The next piece of coded input fed to the decoder (adapted to its
    /// ratio: [`MIN_DECODE_PIECE`]).
    decode_piece: usize,
    /// Most decoded bytes this step may produce.
    turn_cap: u64,
    /// The request's use of the HTTP cache (`None` without one).
    cache: Option<Box<CacheUse>>,
    /// How the job ends at its next step, decided before it could step
    /// (an only-if-cached miss; a stored answer's sink refused).
    pending: Option<(RequestResult, RequestFailure)>,
    /// The caller's buffer for the body held in memory
    /// ([`RequestPool::collect_into`](crate::RequestPool::collect_into)):
    /// empty (no allocation) when none was given. Its length is
    /// initialised room the body is read into (see
    /// [`BodyMemory`](super::sink::BodyMemory)), not body.
    collect: Vec<u8>,
}

impl Job {
    /// `route` is `target_for(&url, &settings)`'s route (a pool has made
    /// it to queue the request by its key).
    // The parts of a request as given, each moved in: two callers.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        settings: Arc<Settings>,
        route: Route,
        url: Url,
        method: String,
        headers: Vec<(String, String)>,
        body: RequestBody,
        start: Instant,
        progress: Arc<Progress>,
    ) -> Job {
        let mut headers = headers;
        let resume_from = resume_offset(&settings, &mut headers);
        // The idle timer starts when the request has a connection (begin).
        let mut timers = TimerTable::default();
        timers.set_after(Timer::Total, start, settings.timeouts.total);
        let auth_origin = settings.auth.is_some().then(|| url.origin());
        let call = Call::new(method, url, headers, body, settings.cookie_jar.is_some());
        let cache = CacheUse::new(&settings.cache, &call, resume_from.is_some()).map(Box::new);
        Job {
            resume_from,
            auth_origin,
            call,
            route,
            attempts: 1,
            challenges: 0,
            timers,
            settings,
            conn: None,
            stage: Stage::Connect,
            redirects: 0,
            next: None,
            reused: false,
            retried: false,
            decoder: None,
            response: None,
            earlier_heads: Vec::new(),
            informational: 0,
            progress,
            wire: 0,
            rate_bucket: None,
            stream_paused: false,
            user_paused: false,
            stream_high_water: STREAM_HIGH_WATER,
            stash: Bytes::new(),
            decode_piece: MIN_DECODE_PIECE,
            turn_output: 0,
            turn_cap: MAX_DECODED_PER_STEP,
            cache,
            pending: None,
            collect: Vec::new(),
        }
    }

    /// Look in the cache (when the request has one) before anything
    /// starts: answer from it, or go on with conditional fields added.
    /// `background`: the driver revalidates stale answers in the background
    /// ([`take_revalidation`](Self::take_revalidation)). Call once, right
    /// after [`new`](Self::new).
    pub(crate) fn consult_cache(&mut self, background: bool) {
        let Some(cache) = self.cache.as_deref_mut() else {
            return;
        };
        match cache.lookup(&mut self.call, background) {
            Lookup::Serve => self.start_from_cache(),
            Lookup::NotCached => {
                self.pending = Some((RequestResult::RequestFailed, RequestFailure::NotCached));
            }
            Lookup::Network => {}
        }
    }

    /// After a stale answer within `stale-while-revalidate`: the request
    /// that revalidates it (its URL and field lines, for the driver to send
    /// in the background with [`CacheMode::Refresh`](crate::CacheMode)).
    pub(crate) fn take_revalidation(&mut self) -> Option<(Url, Vec<(String, String)>)> {
        if !self.cache.as_deref_mut()?.take_revalidate_later() {
            return None;
        }
        Some((self.call.url.clone(), self.call.headers.clone()))
    }

    /// Answer from the cache's store: the stored head, and a sink for the
    /// stored body, which [`serve_stored`](Self::serve_stored) feeds.
    fn start_from_cache(&mut self) {
        let Some(head) = self.cache.as_deref().and_then(CacheUse::served_head) else {
            return;
        };
        self.response = Some(head);
        self.stage = Stage::FromCache;
        self.timers.stop(Timer::Idle);
        self.stash = Bytes::new();
        self.progress.downloaded.store(0, Ordering::Relaxed);
        // The sink is made at the first step that serves (so a buffer given
        // with `collect_into` before then is used).
        self.decoder = None;
    }

    /// Which connections may carry this hop (what a pool queues it by).
    pub(crate) fn conn_key(&self) -> &ConnKey {
        &self.route.key
    }

    fn conn_settings(&self) -> ConnSettings {
        ConnSettings {
            connect_timeout: self.settings.timeouts.connect,
            attempt_delay: self.settings.timeouts.attempt_delay,
            recv_buffer: self.settings.recv_buffer_size,
            config: client_proto_config(Config::default(), self.settings.body.download_chunk_size),
        }
    }

    /// Take a connection for the current URL: a kept one made for the same
    /// target that is still alive, else a new one when the limits allow it
    /// (else the job waits: [`is_waiting`](Self::is_waiting)).
    pub(crate) fn begin(&mut self, drv: &mut dyn Connections, now: Instant) {
        if self.stage == Stage::FromCache || self.pending.is_some() {
            return;
        }
        self.close_conn(drv);
        self.reused = false;
        self.stage = Stage::Connect;
        self.timers
            .set_after(Timer::Idle, now, self.settings.timeouts.idle);
        while let Some(mut kept) = drv.take_idle(&self.route.target) {
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
        let Some(token) = drv.new_token(&self.route.key) else {
            // No byte can arrive while it waits for a connection: the idle
            // timeout starts when it gets one (its total timeout runs on).
            self.stage = Stage::Waiting;
            self.timers.stop(Timer::Idle);
            return;
        };
        self.conn = Some(Box::new(Conn::start(
            self.route.clone(),
            token,
            &self.conn_settings(),
            drv.resolver(),
            drv.registry(),
            drv.waker(),
            now,
        )));
    }

    /// Whether the cache answers (or refuses, only-if-cached) this request,
    /// so it needs no connection.
    pub(crate) fn needs_no_connection(&self) -> bool {
        self.stage == Stage::FromCache || self.pending.is_some()
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

    /// The next streamed body piece (`stream_body`), if one arrived, taken
    /// at `now`. Taking pieces lets a job paused by its backlog read again
    /// (its idle timeout starts again whole from `now`): returns whether it
    /// should get a turn.
    pub(crate) fn take_chunk(&mut self, now: Instant) -> (Option<Bytes>, bool) {
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
            if self.conn.is_some() && !self.user_paused {
                self.timers
                    .set_after(Timer::Idle, now, self.settings.timeouts.idle);
            }
        }
        // A request the caller paused reads again only when resumed.
        (piece, resume && !self.user_paused)
    }

    /// The caller pauses the request: from its exchange on (a connection
    /// being set up goes on; a queued request keeps its place) it neither
    /// reads nor sends, its socket leaves the reactor (no event wakes it),
    /// and its idle timer is off; its total timeout runs on. Bytes already
    /// received stay where they are (in proto, the stash, the streamed
    /// backlog). Returns whether it was not paused already.
    pub(crate) fn pause(&mut self, registry: &Registry) -> bool {
        if self.user_paused {
            return false;
        }
        self.user_paused = true;
        self.timers.stop(Timer::Idle);
        if self.stage == Stage::Exchange {
            if let Some(conn) = self.conn.as_deref_mut() {
                conn.pause(registry);
            }
        }
        true
    }

    /// Undo [`pause`](Self::pause): the idle timer starts again from `now`
    /// (a whole idle timeout), and the next step reads (the socket is
    /// registered again there, its readiness taken as readable). Returns
    /// whether it was paused.
    pub(crate) fn unpause(&mut self, now: Instant) -> bool {
        if !self.user_paused {
            return false;
        }
        self.user_paused = false;
        if self.conn.is_some() {
            self.timers
                .set_after(Timer::Idle, now, self.settings.timeouts.idle);
        }
        true
    }

    /// Whether the caller paused the request.
    pub(crate) fn is_paused(&self) -> bool {
        self.user_paused
    }

    /// Paused by the caller at a stage that reads: nothing to do.
    fn held(&self) -> bool {
        self.user_paused && matches!(self.stage, Stage::Exchange | Stage::FromCache)
    }

    /// Stream the final response's body (`stream_body`) from now on, for a
    /// pipe: possible while no body has started arriving and none goes to a
    /// download file.
    pub(crate) fn stream_from_now(&mut self) -> bool {
        // A body on its way to a file, or already arriving, stays where it
        // goes.
        if self.decoder.is_some() || self.settings.body.download_file.is_some() {
            return false;
        }
        Arc::make_mut(&mut self.settings).body.stream = true;
        true
    }

    /// Collect the final response's body into `buffer` (cleared; its
    /// capacity kept, and zeroed now, so that body bytes can be read into
    /// it inside `poll()` without zeroing or copying them there): possible
    /// while no body has started arriving. Cost: a memset of the buffer's
    /// capacity.
    pub(crate) fn collect_into(&mut self, mut buffer: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.decoder.is_some() {
            return Err(buffer);
        }
        buffer.clear();
        buffer.resize(buffer.capacity(), 0);
        self.collect = buffer;
        Ok(())
    }

    /// Drop the body sink (a retry starts over), keeping the caller's
    /// buffer for the next try.
    fn drop_sink(&mut self) {
        if let Some(mut d) = self.decoder.take() {
            let memory = std::mem::take(&mut d.sink().memory);
            if memory.capacity() > self.collect.capacity() {
                self.collect = memory.into_room();
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

    /// The next time the job needs a step without an event: its nearest
    /// timer, or its connection's (connect deadline, next attempt).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let conn = self.conn.as_deref().and_then(Conn::deadline);
        [conn, self.timers.next()].into_iter().flatten().min()
    }

    /// Bytes the receive rate limit allows now (`usize::MAX`: no limit), or
    /// `None` with the throttle timer set when reading must pause.
    fn rate_allowance(&mut self, now: Instant) -> Option<usize> {
        let Some(rate) = self.settings.body.max_recv_speed.filter(|r| *r > 0) else {
            return Some(usize::MAX);
        };
        let wire = self.wire;
        let bucket = self
            .rate_bucket
            .get_or_insert_with(|| rate::Bucket::new(rate, wire, now));
        match bucket.allowance(rate, wire, now) {
            Ok(n) => {
                self.timers.stop(Timer::Throttle);
                Some(n)
            }
            Err(until) => {
                self.timers.set(Timer::Throttle, until);
                None
            }
        }
    }

    /// Whether a step would make progress now without waiting (`woken`: the
    /// reactor's waker fired).
    pub(crate) fn has_pending_work(&self, woken: bool, now: Instant) -> bool {
        if self.timers.get(Timer::DeferredEnd).is_some() {
            // Not in this poll: its timer (now) brings it back next time.
            return false;
        }
        if self.stream_paused || self.held() {
            return false;
        }
        if !self.stash.is_empty() {
            return true;
        }
        if self.stage == Stage::Backoff || self.timers.get(Timer::Throttle).is_some() {
            return self.timers.next().is_some_and(|t| now >= t);
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
        let done = self.step_inner(drv, now, budget)?;
        // The origin failed before a final body was handed out: a stale
        // stored response may answer (RFC 5861 `stale-if-error`).
        let fallback = self.stage != Stage::FromCache
            && self.progress.downloaded.load(Ordering::Relaxed) == 0
            && self
                .cache
                .as_deref_mut()
                .is_some_and(|c| c.serve_on_failure(done.result));
        if !fallback {
            return Some(done);
        }
        self.timers.stop(Timer::Total);
        self.timers.stop(Timer::Idle);
        self.next = None;
        self.start_from_cache();
        self.serve_stored(drv, now, budget)
    }

    fn step_inner(
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
        if self.timers.get(Timer::DeferredEnd).is_some() {
            // The body is complete: nothing (not even a deadline) changes
            // that now.
            return Some(self.complete(drv, RequestResult::Success, None));
        }
        if let Some((result, failure)) = self.pending.take() {
            return Some(self.complete(drv, result, Some(failure)));
        }
        if self.timers.is_due(Timer::Total, now) {
            let failure = RequestFailure::Timeout(self.settings.timeouts.total.unwrap_or_default());
            return Some(self.complete(drv, RequestResult::Timeout, Some(failure)));
        }
        if self.timers.is_due(Timer::Idle, now) {
            return self.on_trouble(drv, Trouble::IdleTimeout, now);
        }
        if self.timers.is_due(Timer::ExpectContinue, now) {
            // No 100 in time: the body goes anyway.
            self.release_body();
        }
        if self.stage == Stage::Backoff {
            if !self.timers.is_due(Timer::Retry, now) {
                return None;
            }
            self.timers.stop(Timer::Retry);
            self.stage = Stage::Connect;
        }
        if self.conn.is_none() && self.stage != Stage::FromCache {
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
                        Err(f) => self.on_trouble(drv, Trouble::Connection(f), now),
                        Ok(()) if conn.phase() != Phase::Ready => return None,
                        Ok(()) => {
                            if let Some(done) = self.send(drv, now) {
                                return Some(done);
                            }
                            continue;
                        }
                    }
                }
                Stage::Exchange => self.exchange(drv, now, budget),
                Stage::FromCache => return self.serve_stored(drv, now, budget),
                Stage::Waiting | Stage::Backoff => return None,
            };
            if self.stage == Stage::FromCache {
                // A 304 ended: the stored body answers, in this step.
                continue;
            }
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

    fn send(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        let body = match self.call.body.as_ref().and_then(RequestBody::replay) {
            Some(b) => b,
            None => match self.call.body.take() {
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
        if let Some(jar) = &self.settings.cookie_jar {
            self.call.set_cookie_field(jar.as_ref());
        }
        let target = self.call.target();
        let conn = self.conn.as_deref_mut()?;
        // proto counts every response body of this request on the wire
        // against the limit (the sink counts the final one's decoded bytes).
        if let Some((x, _)) = conn.exchange_mut() {
            x.proto.set_body_size_limit(self.settings.body.size_limit);
            x.proto.set_leniency(self.settings.leniency.clone());
        }
        if let Err(e) = conn.start_request(
            &self.call.method,
            &target,
            &self.call.headers,
            BodyPlan::Source(source),
        ) {
            return Some(self.complete(
                drv,
                RequestResult::RequestFailed,
                Some(RequestFailure::Connection(Failure::Protocol(e))),
            ));
        }
        self.timers.stop(Timer::ExpectContinue);
        if self.call.expects_continue() {
            let held = conn.exchange_mut().is_some_and(|(x, _)| x.hold_body());
            if held {
                self.timers.set(
                    Timer::ExpectContinue,
                    now + self.settings.timeouts.expect_continue,
                );
            }
        }
        self.stage = Stage::Exchange;
        self.response = None;
        self.next = None;
        self.drop_sink();
        if let Some(c) = self.cache.as_deref_mut() {
            c.sent();
        }
        None
    }

    /// Feed the stored body into the sink within `budget` (disk bytes count
    /// as read bytes), and complete at its end.
    fn serve_stored(
        &mut self,
        drv: &mut dyn Connections,
        now: Instant,
        budget: &mut usize,
    ) -> Option<Completed> {
        if self.held() {
            return None;
        }
        if self.decoder.is_none() {
            if let Err((result, failure)) = self.make_sink() {
                return Some(self.complete(drv, result, Some(failure)));
            }
        }
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
                self.stream_paused = true;
                return None;
            }
            if *budget == 0 {
                return None;
            }
            let max = (*budget).min(CACHE_PIECE);
            // A body kept in memory as it is: read straight into it.
            if let Some(sink) = self.decoder.as_mut().and_then(Decoder::in_place) {
                let room = self.turn_cap.saturating_sub(self.turn_output);
                if room == 0 {
                    return None;
                }
                let max = max.min(usize::try_from(room).unwrap_or(usize::MAX));
                let memory = sink.in_place()?;
                let start = memory.len();
                let cache = self.cache.as_deref_mut()?;
                let read = memory.append_with(|v| cache.read_into(v, max));
                match read {
                    Ok(Some(n)) => {
                        *budget -= n;
                        self.turn_output += n as u64;
                        self.progress
                            .downloaded
                            .fetch_add(n as u64, Ordering::Relaxed);
                        if sink.accept_appended(start).is_err() {
                            return Some(self.sink_failure(drv, None));
                        }
                        continue;
                    }
                    Ok(None) => return self.finish_body(drv, now),
                    Err(e) => return Some(self.cache_read_failure(drv, e)),
                }
            }
            let piece = self.cache.as_deref_mut()?.read_piece(max);
            match piece {
                Ok(Some(piece)) => {
                    *budget -= piece.len();
                    let total =
                        self.progress.downloaded.load(Ordering::Relaxed) + piece.len() as u64;
                    self.progress.downloaded.store(total, Ordering::Relaxed);
                    if let Some(done) = self.feed(drv, piece) {
                        return Some(done);
                    }
                }
                Ok(None) => return self.finish_body(drv, now),
                Err(e) => return Some(self.cache_read_failure(drv, e)),
            }
        }
    }

    /// End the job: the stored body could not be read (or failed its
    /// checks and was removed).
    fn cache_read_failure(&mut self, drv: &mut dyn Connections, e: StoreError) -> Completed {
        let error = match e {
            StoreError::Io(e) => e,
            StoreError::Corrupt(why) => std::io::Error::new(std::io::ErrorKind::InvalidData, why),
        };
        self.complete(
            drv,
            RequestResult::RequestFailed,
            Some(RequestFailure::CacheRead(error)),
        )
    }

    fn exchange(
        &mut self,
        drv: &mut dyn Connections,
        now: Instant,
        budget: &mut usize,
    ) -> Option<Completed> {
        if self.held() {
            // Paused by the caller: nothing read, decoded or sent, and no
            // idle timeout (it may have started again with a new hop).
            self.timers.stop(Timer::Idle);
            if let Some(conn) = self.conn.as_deref_mut() {
                conn.pause(drv.registry());
            }
            return None;
        }
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
                // The caller has not taken the streamed pieces: stop reading,
                // and hold the idle timeout (as a pause does): the wait is the
                // caller's, not the server's.
                self.stream_paused = true;
                self.timers.stop(Timer::Idle);
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
            // The final body, kept in memory as it is, with a Content-Length
            // and nothing buffered: read from the socket straight into the
            // body's memory (no receive buffer to zero, no copy out of it).
            let room = usize::try_from(self.turn_cap.saturating_sub(self.turn_output))
                .unwrap_or(usize::MAX);
            let in_memory = match (&self.next, self.stash.is_empty(), room > 0) {
                (None, true, true) => self.decoder.as_mut().and_then(Decoder::in_place),
                _ => None,
            };
            let direct = in_memory.and_then(|sink| {
                let want = x.proto.direct_body_room(quantum.min(room));
                (want > 0).then_some((sink, want))
            });
            let mut sink_failed = false;
            let pumped = match direct {
                Some((sink, want)) => {
                    let start = sink.memory.len();
                    let read = x.read_body_into(ready, &mut quantum, sink.memory.room(want));
                    if let Ok(n @ 1..) = read {
                        sink.memory.commit(n);
                        self.turn_output += n as u64;
                        self.progress
                            .downloaded
                            .store(x.proto.body_received(), Ordering::Relaxed);
                        if let Some(c) = self.cache.as_deref_mut() {
                            c.write(&sink.memory.as_slice()[start..]);
                        }
                        sink_failed = sink.accept_appended(start).is_err();
                    }
                    read.map(drop)
                }
                None => x.pump(ready, &mut quantum),
            };
            *budget -= given - quantum;
            let got = x.bytes_read - before;
            self.progress
                .uploaded
                .store(x.body_bytes_sent, Ordering::Relaxed);
            conn.update_interest(drv.registry());
            if got > 0 {
                self.wire += got;
                self.timers
                    .set_after(Timer::Idle, now, self.settings.timeouts.idle);
            }
            if let Err(f) = pumped {
                return self.on_trouble(drv, Trouble::Connection(f), now);
            }
            if sink_failed {
                return Some(self.sink_failure(drv, None));
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
                    Ok(Some(Event::Informational(h))) => {
                        if h.status() == 100 {
                            self.release_body();
                        }
                        if self.informational < Completed::MAX_INFORMATIONAL_HEADS {
                            self.informational += 1;
                            self.earlier_heads.push(h);
                        }
                    }
                    Ok(Some(_)) => {}
                    Err(f) => return self.on_trouble(drv, Trouble::Connection(f), now),
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
            jar.store_response(&self.call.url, head.fields());
        }
        let next = next::after_head(&head, &self.attempt(), &self.settings, now, jitter_u64());
        self.response = Some(head);
        match next {
            Next::Final => {}
            Next::Fail(result, failure) => return Some(self.complete(drv, result, Some(failure))),
            // Once this response's body is drained (or dropped).
            other => {
                self.next = Some(other);
                return None;
            }
        }
        // The final response: the cache may answer instead (a 304 that
        // revalidated), or store it; its body goes to a sink built for it.
        if let (Some(c), Some(head)) = (self.cache.as_deref_mut(), self.response.as_ref()) {
            if c.on_final_head(&self.call, head) {
                return None;
            }
        }
        match self.make_sink() {
            Ok(()) => None,
            Err((result, failure)) => Some(self.complete(drv, result, Some(failure))),
        }
    }

    /// Build the sink for the final response's body (its coding, declared
    /// length, range check, download file).
    fn make_sink(&mut self) -> Result<(), (RequestResult, RequestFailure)> {
        let Some(head) = self.response.as_ref() else {
            return Ok(());
        };
        let options = SinkOptions {
            accept_gzip: self.settings.body.accept_gzip,
            verify_digests: self.settings.body.verify_digests,
            expected_sha256: self.settings.body.expected_sha256,
            body_size_limit: self.settings.body.size_limit,
            download_file: self.settings.body.download_file.as_deref(),
            resume: self.settings.body.resume,
            resume_from: self.resume_from,
            stream_body: self.settings.body.stream,
        };
        let length = head.body_length();
        self.progress.body_size.store(
            match length {
                MessageBodyLength::ContentLength(n) => n,
                MessageBodyLength::None => 0,
                _ => u64::MAX,
            },
            Ordering::Relaxed,
        );
        self.decoder = Some(Decoder::for_response(head, &options, &mut self.collect)?);
        self.decode_piece = MIN_DECODE_PIECE;
        Ok(())
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
        if let Some(c) = self.cache.as_deref_mut() {
            c.write(chunk);
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
            let room = self.turn_cap.saturating_sub(self.turn_output);
            let identity = decoder.is_identity();
            let piece = if identity {
                data.split_to(data.len().min(usize::try_from(room).unwrap_or(usize::MAX)))
            } else {
                data.split_to(data.len().min(self.decode_piece))
            };
            let before = decoder.sink().total;
            if decoder.write(&piece).is_err() {
                return Some(self.sink_failure(drv, None));
            }
            let out = decoder.sink().total - before;
            self.turn_output += out;
            if !identity {
                self.decode_piece = next_piece(piece.len(), out, room);
            }
        }
        None
    }

    /// End the job with why the sink stopped: over the limit, a write to
    /// the download file, or a body that does not decode.
    fn sink_failure(
        &mut self,
        drv: &mut dyn Connections,
        finish_error: Option<std::io::Error>,
    ) -> Completed {
        let error = self.decoder.as_mut().and_then(|d| d.sink().error.take());
        let path = self.settings.body.download_file.as_deref();
        let (result, failure) = SinkError::outcome(error, path, finish_error);
        self.complete(drv, result, Some(failure))
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
        if self
            .cache
            .as_deref_mut()
            .is_some_and(CacheUse::take_serve_after_end)
        {
            if let Some(conn) = self.conn.take() {
                let keep = conn.is_idle();
                drv.release(conn, keep);
            }
            self.start_from_cache();
            return None;
        }
        self.finish_body(drv, now)
    }

    /// The final body ended: finish decoding, then complete (or defer the
    /// completion while streamed pieces wait).
    fn finish_body(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        if let Some(decoder) = self.decoder.take() {
            let (mut sink, r) = decoder.finish();
            let verified = sink.verify_body();
            self.decoder = Some(Decoder::Identity(sink));
            // An empty body (chunked or close-delimited with no byte) has
            // nothing to decode: it is empty, not a corrupt stream.
            let empty = self.progress.downloaded.load(Ordering::Relaxed) == 0;
            if let (Err(e), false) = (r, empty) {
                return Some(self.sink_failure(drv, Some(e)));
            }
            // Fail closed: a body that does not match its digests is never
            // a success.
            if let Err(failure) = verified {
                return Some(self.complete(drv, RequestResult::IntegrityFailed, Some(failure)));
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
            self.timers.set(Timer::DeferredEnd, now);
            return None;
        }
        Some(self.complete(drv, RequestResult::Success, None))
    }

    /// Go on after a response that is not the result: the next hop of a
    /// redirect, the answer to a challenge, or a retry's backoff.
    fn follow_next(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        match self.next.take() {
            Some(Next::Redirect(follow)) => {
                follow.apply(&mut self.call);
                self.route = Route::new(target_for(&self.call.url, &self.settings));
                self.redirects += 1;
                self.progress.downloaded.store(0, Ordering::Relaxed);
                self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
                // The new URL is looked up in the cache as a request for
                // it would be.
                let lookup = self
                    .cache
                    .as_deref_mut()
                    .map(|c| c.redirected(&mut self.call));
                match lookup {
                    Some(Lookup::Serve) => {
                        if let Some(conn) = self.conn.take() {
                            let keep = conn.is_idle();
                            drv.release(conn, keep);
                        }
                        self.response = None;
                        self.start_from_cache();
                        return None;
                    }
                    Some(Lookup::NotCached) => {
                        return Some(self.complete(
                            drv,
                            RequestResult::RequestFailed,
                            Some(RequestFailure::NotCached),
                        ));
                    }
                    Some(Lookup::Network) | None => {}
                }
            }
            Some(Next::Challenge(value)) => {
                self.challenges += 1;
                let headers = &mut self.call.headers;
                headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
                headers.push(("Authorization".into(), value));
            }
            Some(Next::Retry(delay)) => {
                self.schedule_retry(drv, now, delay);
                return None;
            }
            _ => return None,
        }
        self.keep_earlier_head();
        self.send_again(drv, now)
    }

    /// An `Expect: 100-continue` request's body goes out (its 100 came,
    /// or the wait ended).
    fn release_body(&mut self) {
        self.timers.stop(Timer::ExpectContinue);
        if let Some((x, _)) = self.conn.as_deref_mut().and_then(Conn::exchange_mut) {
            x.release_body();
        }
    }

    /// The response that led to another hop (a redirect, a challenge, a
    /// retry) is not the result: its head joins the earlier ones.
    fn keep_earlier_head(&mut self) {
        if let Some(head) = self.response.take() {
            self.earlier_heads.push(head);
        }
    }

    /// Send the request (as it now is) on the same connection when it is
    /// idle and fits the URL, else on another one.
    fn send_again(&mut self, drv: &mut dyn Connections, now: Instant) -> Option<Completed> {
        let target = &self.route.target;
        let same = self
            .conn
            .as_deref_mut()
            .is_some_and(|c| c.is_idle() && c.reuse_for(target));
        if same {
            self.reused = true;
            return self.send(drv, now);
        }
        self.begin(drv, now);
        None
    }

    /// The attempt's history, as the decision table reads it.
    fn attempt(&self) -> Attempt<'_> {
        let exchange = self.conn.as_deref().and_then(Conn::exchange);
        Attempt {
            url: &self.call.url,
            method: &self.call.method,
            attempts: self.attempts,
            redirects: self.redirects,
            challenges: self.challenges,
            reused: self.reused,
            retried: self.retried,
            nothing_sent: exchange.is_none_or(|x| x.nothing_sent()),
            no_response_byte: exchange.is_some_and(|x| x.no_response_byte()),
            answered: self.response.is_some(),
            delivered: self.progress.downloaded.load(Ordering::Relaxed) > 0
                && self.next.is_none()
                && self.response.is_some(),
            body_replayable: self.body_replayable(),
            deadline: self.timers.get(Timer::Total),
            at_auth_origin: self
                .auth_origin
                .as_ref()
                .is_some_and(|o| *o == self.call.url.origin()),
        }
    }

    fn body_replayable(&self) -> bool {
        self.call
            .body
            .as_ref()
            .is_some_and(RequestBody::is_replayable)
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
        self.keep_earlier_head();
        self.drop_sink();
        self.stash = Bytes::new();
        self.progress.downloaded.store(0, Ordering::Relaxed);
        self.progress.body_size.store(u64::MAX, Ordering::Relaxed);
        let at = now + delay;
        self.timers.set(Timer::Retry, at);
        self.timers
            .set_after(Timer::Idle, at, self.settings.timeouts.idle);
        self.stage = Stage::Backoff;
    }

    /// A failure or the idle timeout: what the decision table says (the
    /// transparent retry now, the retry policy's next try after a backoff,
    /// or the end).
    fn on_trouble(
        &mut self,
        drv: &mut dyn Connections,
        trouble: Trouble,
        now: Instant,
    ) -> Option<Completed> {
        let refused_body = matches!(
            trouble,
            Trouble::Connection(Failure::Protocol(ProtoError::BodyTooLarge { .. }))
        );
        if refused_body && self.next.is_some() {
            // The body of a response that is not the result (a redirect's,
            // a challenge's) is over the wire limit: not worth reading, as
            // a large one in `on_body`; go on without it.
            self.close_conn(drv);
            return self.follow_next(drv, now);
        }
        let next = next::after_failure(trouble, &self.attempt(), &self.settings, now, jitter_u64());
        match next {
            Next::RetryNow => {
                self.retried = true;
                self.close_conn(drv);
                self.begin(drv, now);
                None
            }
            Next::Retry(delay) => {
                self.close_conn(drv);
                self.schedule_retry(drv, now, delay);
                None
            }
            Next::Fail(result, failure) => Some(self.complete(drv, result, Some(failure))),
            // Not answers to a failure.
            Next::Final | Next::Redirect(_) | Next::Challenge(_) => None,
        }
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
                if let (false, Some(path)) = (
                    result == RequestResult::Success,
                    &self.settings.body.download_file,
                ) {
                    let integrity = result == RequestResult::IntegrityFailed;
                    if sink.file_touched()
                        && (integrity || self.settings.body.expected_sha256.is_some())
                    {
                        sink.file = None;
                        settle_failed(path, self.settings.body.resume, integrity);
                    }
                }
                if let (RequestResult::Success, Some(path)) =
                    (result, &self.settings.body.download_file)
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
                let total = sink.total;
                (sink.into_body(), total)
            }
            None => (Bytes::new(), 0),
        };
        let cache = match self.cache.as_deref_mut() {
            Some(c) => {
                c.finish(result == RequestResult::Success);
                c.status
            }
            None => CacheStatus::NotUsed,
        };
        let head = self.response.take();
        if let (true, Some(head)) = (self.settings.body.resume, &head) {
            if let Some(path) = &self.settings.body.download_file {
                stamp(path, head);
            }
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
            head,
            earlier_heads: std::mem::take(&mut self.earlier_heads),
            partial_body: match result {
                RequestResult::Success | RequestResult::IntegrityFailed => Bytes::new(),
                _ => body.clone(),
            },
            body: if result == RequestResult::Success {
                body
            } else {
                Bytes::new()
            },
            final_url: self.call.url.to_string(),
            redirects: self.redirects,
            wire_bytes: self.wire,
            body_bytes,
            attempts: self.attempts,
            cache,
        }
    }
}

/// The next piece of coded input: `len` bytes decoded to `out`; sized so
/// that at the same ratio it fills the turn's `room` (at least a quarter of
/// the turn's least cap, so a small room does not mean tiny pieces), between
/// [`MIN_DECODE_PIECE`] and [`DECODE_PIECE`].
fn next_piece(len: usize, out: u64, room: u64) -> usize {
    if out == 0 {
        return (len * 2).clamp(MIN_DECODE_PIECE, DECODE_PIECE);
    }
    let aim = room.max(MIN_DECODED_PER_STEP / 4);
    let n = (len as u64).saturating_mul(aim) / out;
    usize::try_from(n)
        .unwrap_or(DECODE_PIECE)
        .clamp(MIN_DECODE_PIECE, DECODE_PIECE)
}

pub(crate) use crate::conn::url_origin;

/// Where a request for `url` under `settings` connects: its origin, the
/// proxy (the settings', else the environment's when they say so) with its
/// credentials, the TLS settings. A pool queues a request by its key
/// before it is a job.
pub(crate) fn target_for(url: &Url, settings: &Settings) -> Target {
    let (tls, host, port) = url_origin(url);
    let mut proxy = if tls {
        settings.proxy.https.clone()
    } else {
        settings.proxy.http.clone()
    };
    let mut credentials = settings.proxy.auth.clone();
    if proxy.is_none() && settings.proxy.from_env {
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

#[cfg(test)]
mod piece_tests {
    use super::*;

    #[test]
    fn coded_pieces_follow_the_ratio_towards_the_room_left() {
        // gzip-like ratios reach full pieces at once.
        assert_eq!(next_piece(16, 40, 1 << 20), DECODE_PIECE);
        // A bomb's ratio (16 bytes to 16 MiB) keeps pieces at the floor.
        assert_eq!(next_piece(16, 16 << 20, 1 << 20), MIN_DECODE_PIECE);
        // Nothing out yet (a header): grow.
        assert_eq!(next_piece(16, 0, 1 << 20), 32);
        assert_eq!(next_piece(DECODE_PIECE, 0, 0), DECODE_PIECE);
        // In between: in proportion.
        assert_eq!(next_piece(1000, 1000 * 200, 1 << 20), 5242);
    }
}
