//! The exported functions. Each one checks its arguments (through
//! `raw.rs`, the only module that dereferences a C pointer), runs under
//! [`guard`] (a panic becomes `PH_ERR_PANIC`, never an unwind into C) and
//! returns a `PhCode`. `unsafe` is allowed here for `#[unsafe(no_mangle)]`
//! only; there is no `unsafe` block in this file (tests/header.rs checks).
#![allow(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use pollhttp::{
    Completed, PollBudget, PoolSettings, RequestBody, RequestId, RequestPool, Settings, TlsOptions,
    WakeHandle,
};

use crate::error::*;
use crate::raw;

/// The id of a request in a pool: never 0, never reused by the same pool.
pub type PhId = u64;

/// A pool of requests (opaque): curl's multi handle. Made by
/// `ph_pool_new`, freed by `ph_pool_free`.
pub struct PhPool {
    pool: RequestPool,
    next_id: PhId,
    in_flight: HashMap<PhId, RequestId>,
    ids: HashMap<RequestId, PhId>,
    /// The rest of a streamed piece the caller's buffer had no room for.
    partial: HashMap<PhId, Bytes>,
    done: HashMap<PhId, Done>,
    /// Completions in completion order, for `ph_pool_next_completion` (an
    /// id freed or taken meanwhile is skipped).
    order: VecDeque<PhId>,
    /// Completions not yet returned by `ph_pool_next_completion` nor freed.
    untaken: usize,
    last_error: CString,
    /// A panic was caught in a call on this pool.
    poisoned: bool,
}

/// A completed request, held by its pool until `ph_completion_free`.
struct Done {
    completed: Completed,
    /// The body (with the rest of a streamed body not read yet).
    body: Bytes,
    /// `Name: value` lines.
    headers: Vec<CString>,
    reason: CString,
    final_url: CString,
    taken: bool,
}

/// A request being built (opaque): curl's easy handle, without callbacks.
/// Made by `ph_request_new`, freed by `ph_request_free`; submitting it
/// copies it, so it can be changed and submitted again.
pub struct PhRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: ReqBody,
    settings: Settings,
    root_pem: Option<TlsOptions>,
    dangerous: bool,
    server_name: Option<String>,
}

#[derive(Clone)]
enum ReqBody {
    Empty,
    Bytes(Bytes),
    File(PathBuf),
}

/// Wakes a pool's `ph_pool_wait` from any thread (opaque). Made by
/// `ph_pool_wake_handle`, freed by `ph_wake_free`.
pub struct PhWake {
    handle: WakeHandle,
}

/// Run `f`, turning a panic into `PH_ERR_PANIC`.
fn guard(f: impl FnOnce() -> Result<(), Code>) -> Code {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => PH_OK,
        Ok(Err(code)) => code,
        Err(_) => PH_ERR_PANIC,
    }
}

/// Run `f` on the pool behind `pool`: NULL and a poisoned pool are refused,
/// a panic poisons it, and a failure's text is kept for
/// `ph_pool_last_error`.
fn with_pool(pool: *mut PhPool, f: impl FnOnce(&mut PhPool) -> Result<(), Code>) -> Code {
    guard(|| {
        let p = raw::handle_mut(pool)?;
        if p.poisoned {
            return Err(PH_ERR_PANIC);
        }
        if !p.last_error.is_empty() {
            p.last_error = CString::default();
        }
        let r = match catch_unwind(AssertUnwindSafe(|| f(&mut *p))) {
            Ok(r) => r,
            Err(_) => {
                p.poisoned = true;
                Err(PH_ERR_PANIC)
            }
        };
        if let Err(code) = r {
            if code != PH_AGAIN && p.last_error.is_empty() {
                p.last_error = text(code).to_owned();
            }
        }
        r
    })
}

fn with_request(req: *mut PhRequest, f: impl FnOnce(&mut PhRequest) -> Result<(), Code>) -> Code {
    guard(|| f(raw::handle_mut(req)?))
}

/// A C string from Rust text (a NUL inside, impossible in what proto
/// accepts, is dropped rather than failing).
fn c_string(text: impl Into<Vec<u8>>) -> CString {
    let mut v = text.into();
    v.retain(|&b| b != 0);
    CString::new(v).unwrap_or_default()
}

fn duration_ms(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

fn flag(on: c_int) -> bool {
    on != 0
}

// ---------------------------------------------------------------- version

/// The library's version as `PH_VERSION` encodes it (`major << 16 | minor
/// << 8 | patch`): compare with `PH_VERSION` to check that the library
/// loaded is the one the program was compiled against.
#[unsafe(no_mangle)]
pub extern "C" fn ph_version() -> u32 {
    crate::version_number()
}

/// The library's version as text ("0.1.0"): a static string (never freed).
#[unsafe(no_mangle)]
pub extern "C" fn ph_version_string() -> *const c_char {
    crate::VERSION_C.as_ptr()
}

/// The text of a `PH_OK`, `PH_AGAIN` or `PH_ERR_*` code: a static string
/// (never freed, never NULL; "unknown error code" for other values).
#[unsafe(no_mangle)]
pub extern "C" fn ph_strerror(code: PhCode) -> *const c_char {
    message(code)
}

/// The name of a `PH_RESULT_*` value ("Success", "Timeout", ...): a static
/// string (never freed, never NULL; "Unknown" for other values).
#[unsafe(no_mangle)]
pub extern "C" fn ph_result_name(result: i32) -> *const c_char {
    crate::result_name(result).as_ptr()
}

// ---------------------------------------------------------------- pool

/// Make a pool with default limits and budgets (6 connections per origin,
/// 64 in all, a poll budget of 4 MiB and 1 ms) into `*out`. Change them
/// with the `ph_pool_set_*` functions. Free it with `ph_pool_free`.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_SYSTEM` (no epoll instance or eventfd).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_new(out: *mut *mut PhPool) -> PhCode {
    guard(|| {
        raw::write_out(out, std::ptr::null_mut())?;
        let pool =
            RequestPool::with_settings(PoolSettings::default()).map_err(|_| PH_ERR_SYSTEM)?;
        let handle = raw::new_handle(PhPool {
            pool,
            next_id: 1,
            in_flight: HashMap::new(),
            ids: HashMap::new(),
            partial: HashMap::new(),
            done: HashMap::new(),
            order: VecDeque::new(),
            untaken: 0,
            last_error: CString::default(),
            poisoned: false,
        });
        raw::write_out(out, handle)
    })
}

/// Free a pool: every request in flight is cancelled and every connection
/// closed at once (lookups still running end on their own threads, never
/// waited for); every completion not freed is freed, so the pointers it
/// gave out are invalid from now on. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_free(pool: *mut PhPool) {
    let _ = guard(|| {
        drop(raw::free_handle(pool));
        Ok(())
    });
}

/// The most connections open in all (`total`) and to one origin
/// (`per_origin`), active and idle together: curl's
/// `CURLMOPT_MAX_TOTAL_CONNECTIONS` and `CURLMOPT_MAX_HOST_CONNECTIONS`.
/// Requests over the limits wait in a FIFO queue. Applies from the next
/// call.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_INVALID_ARGUMENT` (a zero).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_set_max_connections(
    pool: *mut PhPool,
    total: usize,
    per_origin: usize,
) -> PhCode {
    with_pool(pool, |p| {
        if total == 0 || per_origin == 0 {
            return Err(PH_ERR_INVALID_ARGUMENT);
        }
        let s = p.pool.settings_mut();
        s.max_connections = total;
        s.max_connections_per_origin = per_origin;
        Ok(())
    })
}

/// What one `ph_pool_poll` may do: read at most `bytes` socket bytes and
/// spend about `time_us` microseconds (a negative `time_us`: no time
/// limit). The default is 4 MiB and 1000 us. Applies from the next poll.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_INVALID_ARGUMENT` (`bytes` is 0).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_set_poll_budget(pool: *mut PhPool, bytes: usize, time_us: i64) -> PhCode {
    with_pool(pool, |p| {
        if bytes == 0 {
            return Err(PH_ERR_INVALID_ARGUMENT);
        }
        let time = u64::try_from(time_us).ok().map(Duration::from_micros);
        p.pool.settings_mut().poll_budget = PollBudget::new(bytes, time);
        Ok(())
    })
}

/// Most bytes of a streamed body (`ph_request_set_stream_body`) waiting
/// to be read before its request stops reading from the socket; it
/// resumes once half was read. Default 4 MiB; at least 65536.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_INVALID_ARGUMENT` (under 65536).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_set_stream_high_water(pool: *mut PhPool, bytes: usize) -> PhCode {
    with_pool(pool, |p| {
        if bytes < 64 * 1024 {
            return Err(PH_ERR_INVALID_ARGUMENT);
        }
        p.pool.settings_mut().stream_high_water = bytes;
        Ok(())
    })
}

/// Start the request `req` describes; its id goes to `*id`. Returns at
/// once: nothing is sent before the next `ph_pool_poll`. Never blocks.
/// `req` is copied: it stays the caller's, to change, submit again or free.
///
/// Errors (nothing was started, `*id` is 0, `ph_pool_last_error` says
/// why): `PH_ERR_NULL`, `PH_ERR_INVALID_URL`, `PH_ERR_INVALID_REQUEST`,
/// `PH_ERR_TLS`, `PH_ERR_BODY_FILE`, `PH_ERR_CONFLICTING_SETTINGS`,
/// `PH_ERR_SYSTEM`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_submit(
    pool: *mut PhPool,
    req: *const PhRequest,
    id: *mut PhId,
) -> PhCode {
    with_pool(pool, |p| {
        raw::write_out(id, 0)?;
        let r = raw::handle_ref(req)?;
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = match &r.body {
            ReqBody::Empty => RequestBody::Empty,
            ReqBody::Bytes(b) => RequestBody::Bytes(b.clone()),
            ReqBody::File(path) => RequestBody::File(path.clone()),
        };
        let settings = r.settings_with_tls().inspect_err(|_| {
            p.last_error = c_string("TLS: the server name is not a DNS name or IP address");
        })?;
        match p
            .pool
            .request(r.url.as_str(), &headers, &r.method, body, &settings)
        {
            Ok(rid) => {
                let new = p.next_id;
                p.next_id += 1;
                p.in_flight.insert(new, rid);
                p.ids.insert(rid, new);
                raw::write_out(id, new)
            }
            Err(e) => {
                p.last_error = c_string(e.to_string());
                Err(code_of(&e))
            }
        }
    })
}

/// Do what is ready, within the pool's poll budget: collect socket
/// readiness, finished name lookups and due deadlines, step each request
/// with work in turn, and file the completions. Never blocks. The number
/// of completions waiting to be taken goes to `*completions` (NULL: not
/// wanted).
///
/// Errors: `PH_ERR_NULL` (pool).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_poll(pool: *mut PhPool, completions: *mut usize) -> PhCode {
    with_pool(pool, |p| {
        p.pool.poll();
        p.file_completions();
        raw::write_opt(completions, p.untaken);
        Ok(())
    })
}

/// Sleep until the pool has work for `ph_pool_poll` (a socket is ready, a
/// lookup finished, a deadline is due, a `ph_wake`) or `timeout_ms`
/// passed (negative: no limit but the pool's own deadlines; with nothing
/// in flight and no wake, that is forever). Returns at once when work is
/// pending. Never spins. Whether something may be ready goes to `*ready`
/// (1 or 0; NULL: not wanted).
///
/// Errors: `PH_ERR_NULL` (pool).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_wait(pool: *mut PhPool, timeout_ms: i64, ready: *mut c_int) -> PhCode {
    with_pool(pool, |p| {
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let got = if p.untaken > 0 {
            true
        } else {
            p.pool.wait(timeout)
        };
        raw::write_opt(ready, c_int::from(got));
        Ok(())
    })
}

/// The pool's file descriptor (an epoll instance) into `*fd`: readable
/// when `ph_pool_poll` has socket work. To nest the pool in a program's
/// own `poll`/`select`/`epoll` loop, wait for it to be readable with
/// `ph_pool_timeout` as the timeout, then call `ph_pool_poll`. Owned by
/// the pool: never close it; valid until `ph_pool_free`.
///
/// Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_fd(pool: *mut PhPool, fd: *mut c_int) -> PhCode {
    with_pool(pool, |p| {
        use std::os::fd::AsRawFd;
        raw::write_out(fd, p.pool.as_raw_fd())
    })
}

/// How long the program may sleep (on `ph_pool_fd`) before `ph_pool_poll`
/// has work without a socket event, in milliseconds, rounded up, into
/// `*timeout_ms`: 0 when work is pending now, -1 when only socket events
/// can bring work (curl's `curl_multi_timeout`).
///
/// Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_timeout(pool: *mut PhPool, timeout_ms: *mut i64) -> PhCode {
    with_pool(pool, |p| {
        let ms = if p.untaken > 0 {
            0
        } else {
            match p.pool.next_timeout() {
                None => -1,
                Some(d) => i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX),
            }
        };
        raw::write_out(timeout_ms, ms)
    })
}

/// Requests in flight (submitted, not completed nor cancelled) into `*n`.
///
/// Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_in_flight(pool: *mut PhPool, n: *mut usize) -> PhCode {
    with_pool(pool, |p| raw::write_out(n, p.in_flight.len()))
}

/// Stop a request at once: no completion comes for `id`, its connection is
/// closed (a lookup or handshake in progress is abandoned, never waited
/// for). Never blocks.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_UNKNOWN_ID` (not in flight: unknown,
/// cancelled, or completed; free a completion with `ph_completion_free`).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_cancel(pool: *mut PhPool, id: PhId) -> PhCode {
    with_pool(pool, |p| {
        let rid = p.in_flight.remove(&id).ok_or(PH_ERR_UNKNOWN_ID)?;
        p.ids.remove(&rid);
        p.partial.remove(&id);
        p.pool.cancel(rid);
        Ok(())
    })
}

/// Pause a request in flight (curl's `curl_easy_pause`): from its
/// exchange on it neither reads nor sends (a connection being set up goes
/// on; a request waiting for a connection keeps its place), it keeps its
/// connection and the bytes already received, and its idle timeout is
/// held; its total timeout runs on. Pausing a paused request changes
/// nothing. Never blocks; cost: one `epoll_ctl`.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_UNKNOWN_ID` (not in flight).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_pause(pool: *mut PhPool, id: PhId) -> PhCode {
    with_pool(pool, |p| {
        let rid = *p.in_flight.get(&id).ok_or(PH_ERR_UNKNOWN_ID)?;
        p.pool.pause(rid);
        Ok(())
    })
}

/// Undo `ph_pool_pause`: the request reads and sends again from the next
/// `ph_pool_poll`, its idle timeout starting whole. Resuming a request
/// that is not paused changes nothing. Never blocks.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_UNKNOWN_ID` (not in flight).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_resume(pool: *mut PhPool, id: PhId) -> PhCode {
    with_pool(pool, |p| {
        let rid = *p.in_flight.get(&id).ok_or(PH_ERR_UNKNOWN_ID)?;
        p.pool.resume(rid);
        Ok(())
    })
}

/// Progress of a request in flight; each out-pointer may be NULL (not
/// wanted): `*stage` a `PH_STAGE_*` value, `*downloaded` body bytes of the
/// current response received so far (wire bytes), `*body_size` its
/// Content-Length or -1 when unknown, `*uploaded` request body bytes sent.
///
/// Errors: `PH_ERR_NULL` (pool), `PH_ERR_UNKNOWN_ID` (not in flight).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_progress(
    pool: *mut PhPool,
    id: PhId,
    stage: *mut c_int,
    downloaded: *mut u64,
    body_size: *mut i64,
    uploaded: *mut u64,
) -> PhCode {
    with_pool(pool, |p| {
        let rid = *p.in_flight.get(&id).ok_or(PH_ERR_UNKNOWN_ID)?;
        let pr = p.pool.progress(rid).ok_or(PH_ERR_UNKNOWN_ID)?;
        raw::write_opt(stage, stage_of(pr.status));
        raw::write_opt(downloaded, pr.downloaded);
        raw::write_opt(
            body_size,
            pr.body_size
                .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
        );
        raw::write_opt(uploaded, pr.uploaded);
        Ok(())
    })
}

/// Copy the next bytes of a streamed body (`ph_request_set_stream_body`)
/// into `buf` (`cap` bytes); how many go to `*len`. Never blocks. Once the
/// request completed, the bytes not read yet are its completion's body.
///
/// Returns `PH_OK` (`*len` > 0), `PH_AGAIN` (nothing waiting now: poll
/// and ask again; `*len` is 0). Errors: `PH_ERR_NULL`,
/// `PH_ERR_INVALID_ARGUMENT` (`cap` is 0), `PH_ERR_UNKNOWN_ID` (not in
/// flight).
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_read_body(
    pool: *mut PhPool,
    id: PhId,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> PhCode {
    with_pool(pool, |p| {
        raw::write_out(len, 0)?;
        if cap == 0 {
            return Err(PH_ERR_INVALID_ARGUMENT);
        }
        let buf = raw::buf_arg(buf, cap)?;
        let rid = *p.in_flight.get(&id).ok_or(PH_ERR_UNKNOWN_ID)?;
        let mut piece = match p.partial.remove(&id) {
            Some(rest) => rest,
            None => match p.pool.read_body(rid) {
                Some(b) => b,
                None => return Err(PH_AGAIN),
            },
        };
        let n = piece.len().min(cap);
        buf[..n].copy_from_slice(&piece[..n]);
        let rest = piece.split_off(n);
        if !rest.is_empty() {
            p.partial.insert(id, rest);
        }
        raw::write_out(len, n)
    })
}

/// The next completion, in completion order: its id goes to `*id`. The
/// completion stays in the pool (read it with the `ph_completion_*`
/// functions) until `ph_completion_free(pool, id)`. Never blocks.
///
/// Returns `PH_OK`, or `PH_AGAIN` when none is waiting (`*id` is 0).
/// Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_next_completion(pool: *mut PhPool, id: *mut PhId) -> PhCode {
    with_pool(pool, |p| {
        raw::write_out(id, 0)?;
        while let Some(next) = p.order.pop_front() {
            if let Some(done) = p.done.get_mut(&next) {
                if !done.taken {
                    done.taken = true;
                    p.untaken -= 1;
                    return raw::write_out(id, next);
                }
            }
        }
        Err(PH_AGAIN)
    })
}

/// The text of the last failure of a call on this pool (more precise than
/// `ph_strerror`: "invalid URL: relative URL without a base"), "" when
/// none. Owned by the pool, valid until the next call on it. NULL for a
/// NULL pool.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_last_error(pool: *mut PhPool) -> *const c_char {
    let mut out: *const c_char = std::ptr::null();
    let _ = guard(|| {
        let p = raw::handle_mut(pool)?;
        out = p.last_error.as_ptr();
        Ok(())
    });
    out
}

/// A handle that wakes this pool's `ph_pool_wait` (or the program's own
/// wait on `ph_pool_fd`) from any thread, into `*out`. Free it with
/// `ph_wake_free`; it may outlive the pool (waking then does nothing).
///
/// Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_pool_wake_handle(pool: *mut PhPool, out: *mut *mut PhWake) -> PhCode {
    with_pool(pool, |p| {
        raw::write_out(out, std::ptr::null_mut())?;
        let handle = p.pool.wake_handle();
        raw::write_out(out, raw::new_handle(PhWake { handle }))
    })
}

/// Make the pool's current or next `ph_pool_wait` return at once. May be
/// called from any thread, at the same time as any pool call. Never
/// blocks.
///
/// Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_wake(wake: *const PhWake) -> PhCode {
    guard(|| {
        raw::handle_ref(wake)?.handle.wake();
        Ok(())
    })
}

/// Free a wake handle (from the thread that uses it, once no other thread
/// uses it). NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn ph_wake_free(wake: *mut PhWake) {
    let _ = guard(|| {
        drop(raw::free_handle(wake));
        Ok(())
    });
}

// ---------------------------------------------------------------- requests

/// Make a request for `method` (a token: "GET", "POST", ...) on `url`
/// (`http://` or `https://`, checked at submit) into `*out`, with the
/// default settings: no timeout but a 30 s connect timeout, up to 8
/// redirects followed, gzip accepted and decoded, the body collected in
/// memory, TLS verified against the bundled Mozilla roots. Free it with
/// `ph_request_free`.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_UTF8`, `PH_ERR_INVALID_REQUEST` (the
/// method is not a token).
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_new(
    method: *const c_char,
    url: *const c_char,
    out: *mut *mut PhRequest,
) -> PhCode {
    guard(|| {
        raw::write_out(out, std::ptr::null_mut())?;
        let method = checked_method(raw::str_arg(method)?)?;
        let url = raw::str_arg(url)?.to_string();
        let handle = raw::new_handle(PhRequest {
            method,
            url,
            headers: Vec::new(),
            body: ReqBody::Empty,
            settings: Settings::default(),
            root_pem: None,
            dangerous: false,
            server_name: None,
        });
        raw::write_out(out, handle)
    })
}

fn checked_method(m: &str) -> Result<String, Code> {
    if pollhttp::proto::is_token(m.as_bytes()) {
        Ok(m.to_string())
    } else {
        Err(PH_ERR_INVALID_REQUEST)
    }
}

/// Free a request. Requests submitted from it are not affected. NULL is a
/// no-op.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_free(req: *mut PhRequest) {
    let _ = guard(|| {
        drop(raw::free_handle(req));
        Ok(())
    });
}

/// Change the method. Errors: `PH_ERR_NULL`, `PH_ERR_UTF8`,
/// `PH_ERR_INVALID_REQUEST` (not a token).
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_method(req: *mut PhRequest, method: *const c_char) -> PhCode {
    with_request(req, |r| {
        r.method = checked_method(raw::str_arg(method)?)?;
        Ok(())
    })
}

/// Change the URL (checked at submit). Errors: `PH_ERR_NULL`,
/// `PH_ERR_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_url(req: *mut PhRequest, url: *const c_char) -> PhCode {
    with_request(req, |r| {
        r.url = raw::str_arg(url)?.to_string();
        Ok(())
    })
}

/// Add a header line, `"Name: value"` (no CR or LF; whitespace around the
/// value is trimmed). Host, Content-Length and Connection are the library's
/// unless given here.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_UTF8`, `PH_ERR_INVALID_REQUEST` (no `:`,
/// a name that is not a token, a CR, LF or other control byte in the
/// value); nothing is added then.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_add_header(req: *mut PhRequest, line: *const c_char) -> PhCode {
    with_request(req, |r| {
        let line = raw::str_arg(line)?;
        let (name, value) = line.split_once(':').ok_or(PH_ERR_INVALID_REQUEST)?;
        let value = value.trim_matches([' ', '\t']);
        if !pollhttp::proto::is_token(name.as_bytes())
            || !pollhttp::proto::is_field_value(value.as_bytes())
        {
            return Err(PH_ERR_INVALID_REQUEST);
        }
        r.headers.push((name.to_string(), value.to_string()));
        Ok(())
    })
}

/// Remove every header line added. Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_clear_headers(req: *mut PhRequest) -> PhCode {
    with_request(req, |r| {
        r.headers.clear();
        Ok(())
    })
}

/// Send the `len` bytes at `data` as the body (copied now; `data` may be
/// NULL when `len` is 0, for an empty body with Content-Length: 0).
/// Replaces a body file. Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_body(req: *mut PhRequest, data: *const u8, len: usize) -> PhCode {
    with_request(req, |r| {
        let bytes = raw::bytes_arg(data, len)?;
        r.body = ReqBody::Bytes(Bytes::copy_from_slice(bytes));
        Ok(())
    })
}

/// Send the file at `path` as the body, streamed from disk (opened and
/// sized at submit; its size is the Content-Length). Replaces a body in
/// memory. Errors: `PH_ERR_NULL`, `PH_ERR_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_body_file(req: *mut PhRequest, path: *const c_char) -> PhCode {
    with_request(req, |r| {
        r.body = ReqBody::File(PathBuf::from(raw::str_arg(path)?));
        Ok(())
    })
}

/// Write the response body to the file at `path` (created or truncated
/// when the response starts) instead of memory; "" goes back to memory.
/// Errors: `PH_ERR_NULL`, `PH_ERR_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_download_file(req: *mut PhRequest, path: *const c_char) -> PhCode {
    with_request(req, |r| {
        let path = raw::str_arg(path)?;
        r.settings.body.download_file = (!path.is_empty()).then(|| PathBuf::from(path));
        Ok(())
    })
}

/// The whole request's deadline, redirects and retries included (0: none,
/// the default). Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_timeout_ms(req: *mut PhRequest, ms: u64) -> PhCode {
    with_request(req, |r| {
        r.settings.timeouts.total = duration_ms(ms);
        Ok(())
    })
}

/// Fail when no byte arrives for this long (0: never, the default).
/// Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_idle_timeout_ms(req: *mut PhRequest, ms: u64) -> PhCode {
    with_request(req, |r| {
        r.settings.timeouts.idle = duration_ms(ms);
        Ok(())
    })
}

/// The connect timeout (TCP, proxy tunnel, TLS handshake); default 30000.
/// Errors: `PH_ERR_NULL`, `PH_ERR_INVALID_ARGUMENT` (0).
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_connect_timeout_ms(req: *mut PhRequest, ms: u64) -> PhCode {
    with_request(req, |r| {
        r.settings.timeouts.connect = duration_ms(ms).ok_or(PH_ERR_INVALID_ARGUMENT)?;
        Ok(())
    })
}

/// Whether redirects are followed (`follow` non-zero, the default) and how
/// many at most (`max`, default 8; more fail with
/// `PH_RESULT_REDIRECT_LIMIT_REACHED`). Not followed, a redirect response
/// is the completion. Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_redirects(req: *mut PhRequest, follow: c_int, max: u32) -> PhCode {
    with_request(req, |r| {
        r.settings.redirects.follow = flag(follow);
        r.settings.redirects.max = max;
        Ok(())
    })
}

/// Whether to ask for gzip and deflate and decode them (non-zero: the
/// default). Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_accept_gzip(req: *mut PhRequest, on: c_int) -> PhCode {
    with_request(req, |r| {
        r.settings.body.accept_gzip = flag(on);
        Ok(())
    })
}

/// Fail with `PH_RESULT_BODY_SIZE_LIMIT_EXCEEDED` when the body (decoded)
/// is over `limit` bytes (0: no limit, the default). Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_body_size_limit(req: *mut PhRequest, limit: u64) -> PhCode {
    with_request(req, |r| {
        r.settings.body.size_limit = (limit > 0).then_some(limit);
        Ok(())
    })
}

/// Hand the body out in pieces (`ph_pool_read_body`) instead of
/// collecting it (non-zero: on). Cannot go with a download file
/// (`PH_ERR_CONFLICTING_SETTINGS` at submit). Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_stream_body(req: *mut PhRequest, on: c_int) -> PhCode {
    with_request(req, |r| {
        r.settings.body.stream = flag(on);
        Ok(())
    })
}

/// Read the body at most this fast, in bytes per second (0: no limit, the
/// default; curl's `CURLOPT_MAX_RECV_SPEED_LARGE`). Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_max_recv_speed(req: *mut PhRequest, bytes_per_s: u64) -> PhCode {
    with_request(req, |r| {
        r.settings.body.max_recv_speed = (bytes_per_s > 0).then_some(bytes_per_s);
        Ok(())
    })
}

/// Verify servers against the CA certificates in the PEM text at `pem`
/// (`len` bytes, copied now) instead of the bundled Mozilla roots.
///
/// Errors: `PH_ERR_NULL`, `PH_ERR_TLS` (malformed, or no certificate);
/// the roots are unchanged then.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_tls_root_pem(
    req: *mut PhRequest,
    pem: *const u8,
    len: usize,
) -> PhCode {
    with_request(req, |r| {
        let pem = raw::bytes_arg(pem, len)?;
        r.root_pem = Some(TlsOptions::with_root_pem(pem).map_err(|_| PH_ERR_TLS)?);
        Ok(())
    })
}

/// Verify the server certificate against `name` (and send it as SNI)
/// instead of the URL's host; "" goes back to the URL's host.
/// Errors: `PH_ERR_NULL`, `PH_ERR_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_tls_server_name(
    req: *mut PhRequest,
    name: *const c_char,
) -> PhCode {
    with_request(req, |r| {
        let name = raw::str_arg(name)?;
        r.server_name = (!name.is_empty()).then(|| name.to_string());
        Ok(())
    })
}

/// **Dangerous** (non-zero `on`): accept any server certificate for any
/// name, so anyone on the path can read and change the traffic. For
/// development against self-signed servers only. Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_tls_dangerous_disable_verification(
    req: *mut PhRequest,
    on: c_int,
) -> PhCode {
    with_request(req, |r| {
        r.dangerous = flag(on);
        Ok(())
    })
}

/// Send `http://` requests through the HTTP proxy at `host`:`port`, and
/// tunnel `https://` ones through it with CONNECT; "" as `host`: no proxy
/// (the default). Errors: `PH_ERR_NULL`, `PH_ERR_UTF8`,
/// `PH_ERR_INVALID_ARGUMENT` (port 0).
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_proxy(
    req: *mut PhRequest,
    host: *const c_char,
    port: u16,
) -> PhCode {
    with_request(req, |r| {
        let host = raw::str_arg(host)?;
        let proxy = if host.is_empty() {
            None
        } else if port == 0 {
            return Err(PH_ERR_INVALID_ARGUMENT);
        } else {
            Some((host.to_string(), port))
        };
        r.settings.proxy.http = proxy.clone();
        r.settings.proxy.https = proxy;
        Ok(())
    })
}

/// Basic credentials for the proxy ("" as `user`: none). Errors:
/// `PH_ERR_NULL`, `PH_ERR_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_proxy_auth(
    req: *mut PhRequest,
    user: *const c_char,
    password: *const c_char,
) -> PhCode {
    with_request(req, |r| {
        let user = raw::str_arg(user)?;
        let password = raw::str_arg(password)?;
        r.settings.proxy.auth =
            (!user.is_empty()).then(|| (user.to_string(), password.to_string()));
        Ok(())
    })
}

/// Take the proxies from `http_proxy`, `https_proxy` and `no_proxy` when
/// none is set (non-zero: on; off by default). Errors: `PH_ERR_NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_request_set_proxy_from_env(req: *mut PhRequest, on: c_int) -> PhCode {
    with_request(req, |r| {
        r.settings.proxy.from_env = flag(on);
        Ok(())
    })
}

impl PhRequest {
    /// The settings with the TLS options the setters chose.
    fn settings_with_tls(&self) -> Result<Settings, Code> {
        let mut s = self.settings.clone();
        let mut tls = match (&self.root_pem, self.dangerous, &self.server_name) {
            (None, false, None) => None,
            (Some(t), _, _) => Some(t.clone()),
            (None, _, _) => Some(TlsOptions::new()),
        };
        if self.dangerous {
            tls = tls.map(TlsOptions::dangerous_disable_verification);
        }
        if let Some(name) = &self.server_name {
            let t = tls
                .take()
                .unwrap_or_default()
                .server_name_override(name.clone());
            t.server_name("unused").map_err(|_| PH_ERR_TLS)?;
            tls = Some(t);
        }
        s.tls = tls;
        Ok(s)
    }
}

// ---------------------------------------------------------------- completions

impl PhPool {
    /// Move the pool's completions into `done`, under their C ids.
    fn file_completions(&mut self) {
        while let Some((rid, mut completed)) = self.pool.poll_completed() {
            let Some(id) = self.ids.remove(&rid) else {
                continue;
            };
            self.in_flight.remove(&id);
            let tail = std::mem::take(&mut completed.body);
            let body = match self.partial.remove(&id) {
                Some(rest) if !tail.is_empty() => {
                    let mut all = Vec::with_capacity(rest.len() + tail.len());
                    all.extend_from_slice(&rest);
                    all.extend_from_slice(&tail);
                    Bytes::from(all)
                }
                Some(rest) => rest,
                None => tail,
            };
            let headers = completed
                .headers()
                .iter()
                .map(|f| {
                    let mut line = Vec::with_capacity(f.name().len() + 2 + f.value().len());
                    line.extend_from_slice(f.name().as_bytes());
                    line.extend_from_slice(b": ");
                    line.extend_from_slice(f.value());
                    c_string(line)
                })
                .collect();
            let done = Done {
                reason: c_string(completed.reason.as_str()),
                final_url: c_string(completed.final_url.as_str()),
                headers,
                body,
                completed,
                taken: false,
            };
            self.done.insert(id, done);
            self.order.push_back(id);
            self.untaken += 1;
        }
    }

    /// The completion of `id`.
    fn completion(&self, id: PhId) -> Result<&Done, Code> {
        match self.done.get(&id) {
            Some(d) => Ok(d),
            None if self.in_flight.contains_key(&id) => Err(PH_AGAIN),
            None => Err(PH_ERR_UNKNOWN_ID),
        }
    }
}

/// Run `f` on the completion of `id`; `outs` says whether the required
/// out-pointers are non-NULL (checked first: a NULL is `PH_ERR_NULL`
/// whatever the id).
fn with_completion(
    pool: *mut PhPool,
    id: PhId,
    outs: bool,
    f: impl FnOnce(&Done) -> Result<(), Code>,
) -> Code {
    with_pool(pool, |p| {
        if !outs {
            return Err(PH_ERR_NULL);
        }
        f(p.completion(id)?)
    })
}

/// The `PH_RESULT_*` of a completed request into `*result`
/// (`PH_RESULT_SUCCESS` when a response arrived, whatever its status).
///
/// Every `ph_completion_*` getter answers `PH_AGAIN` while `id` is in
/// flight and `PH_ERR_UNKNOWN_ID` for an id that is not a completion
/// waiting to be freed (never made, cancelled, or freed: a double free is
/// this error, never a crash).
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_result(pool: *mut PhPool, id: PhId, result: *mut c_int) -> PhCode {
    with_completion(pool, id, !result.is_null(), |d| {
        raw::write_out(result, c_int::from(d.completed.result as u8))
    })
}

/// The response's status code into `*status` (0 when no response came).
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_status(pool: *mut PhPool, id: PhId, status: *mut c_int) -> PhCode {
    with_completion(pool, id, !status.is_null(), |d| {
        raw::write_out(status, c_int::from(d.completed.response_code()))
    })
}

/// The body: its first byte's address into `*data` and its length into
/// `*len` (decoded; empty when written to a download file; for a streamed
/// body, the bytes not read with `ph_pool_read_body`). Owned by the pool,
/// valid and unchanged until `ph_completion_free(pool, id)` or
/// `ph_pool_free`. Never NULL (an empty body has a valid address).
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_body(
    pool: *mut PhPool,
    id: PhId,
    data: *mut *const u8,
    len: *mut usize,
) -> PhCode {
    with_completion(pool, id, !data.is_null() && !len.is_null(), |d| {
        raw::write_out(data, d.body.as_ptr())?;
        raw::write_out(len, d.body.len())
    })
}

/// The body bytes that arrived before a request failed (a connection cut
/// mid-body, a timeout: what `curl` writes before it exits with 18, 28 or
/// 56), decoded as far as they went: address into `*data`, length into
/// `*len`. Not a complete body. Empty for a success (its body is
/// `ph_completion_body`'s), for a body that failed its integrity check
/// (never handed out), and for a body written to a download file. Owned by the pool, valid and unchanged until
/// `ph_completion_free(pool, id)` or `ph_pool_free`. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_partial_body(
    pool: *mut PhPool,
    id: PhId,
    data: *mut *const u8,
    len: *mut usize,
) -> PhCode {
    with_completion(pool, id, !data.is_null() && !len.is_null(), |d| {
        let partial = &d.completed.partial_body;
        raw::write_out(data, partial.as_ptr())?;
        raw::write_out(len, partial.len())
    })
}

/// How many header lines the response has, into `*count` (0 without a
/// response).
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_header_count(
    pool: *mut PhPool,
    id: PhId,
    count: *mut usize,
) -> PhCode {
    with_completion(pool, id, !count.is_null(), |d| {
        raw::write_out(count, d.headers.len())
    })
}

/// The header line at `index` (0-based, in the order received) as a
/// NUL-terminated `"Name: value"` into `*line`. Owned by the pool, valid
/// until `ph_completion_free(pool, id)` or `ph_pool_free`. Errors also:
/// `PH_ERR_INVALID_ARGUMENT` (index past the end).
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_header(
    pool: *mut PhPool,
    id: PhId,
    index: usize,
    line: *mut *const c_char,
) -> PhCode {
    with_completion(pool, id, !line.is_null(), |d| {
        let l = d.headers.get(index).ok_or(PH_ERR_INVALID_ARGUMENT)?;
        raw::write_out(line, l.as_ptr())
    })
}

/// The value of the first header named `name` (ASCII case-insensitive) as
/// a NUL-terminated string into `*value`: a pointer into its line, valid
/// as the line. Errors also: `PH_ERR_UTF8`, `PH_ERR_NOT_FOUND`.
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_header_value(
    pool: *mut PhPool,
    id: PhId,
    name: *const c_char,
    value: *mut *const c_char,
) -> PhCode {
    with_completion(pool, id, !name.is_null() && !value.is_null(), |d| {
        let name = raw::str_arg(name)?;
        for line in &d.headers {
            let bytes = line.as_bytes();
            let Some(colon) = bytes.iter().position(|&b| b == b':') else {
                continue;
            };
            if bytes[..colon].eq_ignore_ascii_case(name.as_bytes()) {
                // The value starts after ": ", inside the same C string.
                let start = (colon + 2).min(bytes.len());
                return raw::write_out(value, line.as_ptr().wrapping_add(start));
            }
        }
        Err(PH_ERR_NOT_FOUND)
    })
}

/// Why the request failed, as text ("" for `PH_RESULT_SUCCESS`), into
/// `*reason`; valid as the body.
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_reason(
    pool: *mut PhPool,
    id: PhId,
    reason: *mut *const c_char,
) -> PhCode {
    with_completion(pool, id, !reason.is_null(), |d| {
        raw::write_out(reason, d.reason.as_ptr())
    })
}

/// The URL of the final response (after redirects; "" without a
/// response) into `*url`, and how many redirects were followed into
/// `*redirects` (NULL: not wanted); valid as the body.
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_final_url(
    pool: *mut PhPool,
    id: PhId,
    url: *mut *const c_char,
    redirects: *mut u32,
) -> PhCode {
    with_completion(pool, id, !url.is_null(), |d| {
        raw::write_out(url, d.final_url.as_ptr())?;
        raw::write_opt(redirects, d.completed.redirects);
        Ok(())
    })
}

/// Free a completion (whether or not `ph_pool_next_completion` returned
/// it): every pointer its getters gave out is invalid from now on.
///
/// Errors: `PH_ERR_NULL` (pool), `PH_AGAIN` (still in flight: cancel it
/// instead), `PH_ERR_UNKNOWN_ID` (no such completion: a second free of the
/// same id is this error, harmless).
#[unsafe(no_mangle)]
pub extern "C" fn ph_completion_free(pool: *mut PhPool, id: PhId) -> PhCode {
    with_pool(pool, |p| {
        p.completion(id)?;
        if let Some(done) = p.done.remove(&id) {
            if !done.taken {
                p.untaken -= 1;
            }
        }
        Ok(())
    })
}

// The header's thread rules, checked: a pool or a request may move
// between threads (used by one at a time); a wake handle is shared.
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync<T: Send + Sync>() {}
    send::<PhPool>();
    send::<PhRequest>();
    send_sync::<PhWake>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_code_and_poisons_its_pool() {
        assert_eq!(guard(|| panic!("a bug")), PH_ERR_PANIC);
        assert_eq!(guard(|| Err(PH_ERR_UTF8)), PH_ERR_UTF8);
        let mut pool: *mut PhPool = std::ptr::null_mut();
        assert_eq!(ph_pool_new(&mut pool), PH_OK);
        assert_eq!(
            with_pool(pool, |_| panic!("a bug in a pool call")),
            PH_ERR_PANIC
        );
        // From then on the pool refuses every call but the free.
        let mut n = 0usize;
        assert_eq!(ph_pool_poll(pool, &mut n), PH_ERR_PANIC);
        assert_eq!(ph_pool_in_flight(pool, &mut n), PH_ERR_PANIC);
        ph_pool_free(pool);
        let mut req: *mut PhRequest = std::ptr::null_mut();
        assert_eq!(
            ph_request_new(c"GET".as_ptr(), c"http://h/".as_ptr(), &mut req),
            PH_OK
        );
        assert_eq!(
            with_request(req, |_| panic!("a bug in a request call")),
            PH_ERR_PANIC
        );
        ph_request_free(req);
    }

    #[test]
    fn a_failed_call_leaves_its_text_until_the_next_call() {
        let mut pool: *mut PhPool = std::ptr::null_mut();
        assert_eq!(ph_pool_new(&mut pool), PH_OK);
        let text = |p| {
            crate::raw::handle_mut::<PhPool>(p)
                .unwrap()
                .last_error
                .clone()
        };
        assert_eq!(
            ph_pool_set_max_connections(pool, 0, 1),
            PH_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            text(pool).as_c_str(),
            crate::error::text(PH_ERR_INVALID_ARGUMENT)
        );
        assert_eq!(ph_pool_poll(pool, std::ptr::null_mut()), PH_OK);
        assert!(text(pool).is_empty());
        let mut id = 0;
        assert_eq!(ph_pool_next_completion(pool, &mut id), PH_AGAIN);
        assert!(text(pool).is_empty(), "PH_AGAIN is not a failure");
        ph_pool_free(pool);
    }
}
