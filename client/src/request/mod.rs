//! The request logic every front end shares: [`Settings`], [`prepare`] (a
//! request checked before anything starts), [`job::Job`] (one request's
//! logic over a connection), [`redirect`] (the redirect policy as a pure
//! function), [`retry`], [`auth`] and [`proxy`] (pure policies), [`sink`]
//! (the decoders and the body sink) and [`outcome`] (the result types).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::body::RequestBody;
use crate::error::RequestError;
use crate::status::Status;
use crate::tls_options::{check_server_name, TlsOptions};

pub(crate) mod auth;
pub(crate) mod cookie_store;
pub(crate) mod download;
pub(crate) mod job;
pub(crate) mod next;
pub(crate) mod outcome;
pub(crate) mod proxy;
pub(crate) mod rate;
pub(crate) mod redirect;
pub(crate) mod retry;
pub(crate) mod sink;

pub use cookie_store::CookieStore;
pub use outcome::{Completed, RequestFailure, RequestResult};
pub use redirect::Refusal;

/// Settings of an [`HttpRequest`](crate::HttpRequest), with Godot's defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest body in bytes; `None` (default) for no limit. Two counts, one
    /// per layer, both ending in [`RequestResult::BodySizeLimitExceeded`]:
    /// proto holds every response body of the request to it on the wire (a
    /// declared Content-Length above it fails at the head, before a body
    /// byte is read; a chunked or close-delimited one as it arrives:
    /// `Failure::Protocol(BodyTooLarge)`), and the sink holds the final
    /// body to it after decoding (a decompression bomb stops there:
    /// [`RequestFailure::BodySizeLimit`]).
    pub body_size_limit: Option<u64>,
    /// Most bytes read per body chunk (Godot's `download_chunk_size`).
    /// Default 65 536.
    pub download_chunk_size: usize,
    /// Stream the body into this file instead of memory. The file is
    /// opened (created if missing) when the final response's head arrives;
    /// its old content is replaced when the body's first byte arrives, or
    /// when an empty body completes (curl truncates then too), so a request
    /// that fails before any body byte leaves an existing file as it was.
    pub download_file: Option<PathBuf>,
    /// Continue a partial `download_file` (curl's `-C -`): a file of N > 0
    /// bytes asks for `Range: bytes=N-`, with `If-Range:` the validator of
    /// the response its bytes came from (a strong ETag, else its
    /// Last-Modified date; RFC 9110 §14.2, §13.1.5), kept beside the file
    /// in `FILE.resume` from the moment the file's bytes start until the
    /// download completes, so it survives a killed process. Without a
    /// validator the Range goes alone, as curl's. A 206 whose Content-Range
    /// starts at N is appended; a 200 (the resource changed, or ranges are
    /// not supported) replaces the file from its first body byte; a 416 is
    /// the result and the file is left as it is; a 206 that starts elsewhere
    /// fails with [`RequestFailure::RangeMismatch`]. The file also gets the
    /// response's `Last-Modified` as its modification time when the request
    /// ends (curl's `-R`). Default false.
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
    /// request completes comes in [`Completed::body`]. Not with a
    /// `download_file` (refused: [`RequestError::ConflictingSettings`]).
    /// Default false.
    pub stream_body: bool,
    /// Most bytes per second this request reads (a background download
    /// that must not crowd out the ones a player waits for; curl's
    /// `CURLOPT_MAX_RECV_SPEED_LARGE`). `None` (default): no limit. Reading
    /// pauses (no polling, a timer) while the request is over its rate.
    pub max_recv_speed: Option<u64>,
    /// Socket bytes processed per [`HttpRequest::poll`](crate::HttpRequest::poll) when not using
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
    pub auth: Option<auth::Auth>,
    /// Try again on connection failures and on the policy's status codes
    /// (r.http's `attempts`, curl's `--retry`): idempotent methods only (or
    /// when nothing was sent), with exponential backoff and jitter,
    /// `Retry-After` honoured within the request's `timeout`, a retry budget
    /// per origin. [`Completed::attempts`] counts the tries. `None`
    /// (default): no retries (the one transparent retry of a request that
    /// met a stale keep-alive connection stays).
    pub retry: Option<retry::RetryPolicy>,
    /// The cookies the request reads and fills, at every hop (a
    /// `Set-Cookie` on a 3xx applies to the next one): a
    /// [`web::CookieJar`](crate::web::CookieJar) behind a mutex
    /// (`Some(jar.clone())` with a
    /// [`SharedCookieJar`](crate::web::SharedCookieJar)), or any
    /// [`CookieStore`]. Shared by the requests and threads that hold a
    /// clone. `None` (default): cookies are only what the caller sends.
    pub cookie_jar: Option<Arc<dyn CookieStore>>,
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
            cookie_jar,
        } = self;
        let same_jar = match (cookie_jar, &other.cookie_jar) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            _ => false,
        };
        let same_tls = crate::conn::same_tls(tls.as_ref(), other.tls.as_ref());
        let same_retry = match (retry, &other.retry) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                let retry::RetryPolicy {
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
            cookie_jar: None,
        }
    }
}

/// The request as it goes out at each hop: what a redirect rewrites
/// ([`redirect::Follow::apply`]), a challenge's answer and the cookie jar
/// add to.
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) url: Url,
    /// The field lines given (with what `prepare` added).
    pub(crate) headers: Vec<(String, String)>,
    /// The body to send (again); `None` once a reader body was sent.
    pub(crate) body: Option<RequestBody>,
    /// The caller's own `Cookie` field when a jar is in use: merged with
    /// the jar's at each hop, dropped when a redirect leaves the origin.
    pub(crate) user_cookie: Option<String>,
}

impl Call {
    /// The request as given. With a cookie jar (`jar`), the caller's own
    /// `Cookie` fields are taken out (joined into one) to be merged with
    /// the jar's at each hop.
    pub(crate) fn new(
        method: String,
        url: Url,
        mut headers: Vec<(String, String)>,
        body: RequestBody,
        jar: bool,
    ) -> Call {
        let mut user_cookie: Option<String> = None;
        if jar {
            headers.retain(|(k, v)| {
                if !k.eq_ignore_ascii_case("cookie") {
                    return true;
                }
                match &mut user_cookie {
                    Some(c) => {
                        c.push_str("; ");
                        c.push_str(v);
                    }
                    None => user_cookie = Some(v.clone()),
                }
                false
            });
        }
        Call {
            method,
            url,
            headers,
            body: Some(body),
            user_cookie,
        }
    }

    /// The origin-form request-target of this hop (RFC 9112 §3.2.1): the
    /// path (`/` when empty) and the query.
    pub(crate) fn target(&self) -> String {
        request_target(&self.url)
    }

    /// The `Cookie` field of this hop: the caller's own, then the jar's
    /// cookies for the URL (RFC 6265 §5.4).
    pub(crate) fn set_cookie_field(&mut self, jar: &dyn CookieStore) {
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
}

/// The origin-form request-target of `url` (RFC 9112 §3.2.1): its path
/// (`/` when empty) and query.
pub(crate) fn request_target(url: &Url) -> String {
    let path = url.path();
    let path = if path.is_empty() { "/" } else { path };
    match url.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
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
    if settings.stream_body && settings.download_file.is_some() {
        return Err(RequestError::ConflictingSettings(
            "stream_body",
            "download_file",
        ));
    }
    body.check_files().map_err(RequestError::Body)?;
    if url.scheme() == "https" {
        let (_, host, _) = job::url_origin(&url);
        check_server_name(settings.tls.as_ref(), host).map_err(RequestError::Tls)?;
    }
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Credentials: the caller's Authorization field, else `settings.auth`
    // (Basic now, Digest in answer to a challenge), else the URL's userinfo
    // as Basic.
    if !has_header(&headers, "authorization") {
        let value = match &settings.auth {
            Some(auth::Auth::Basic { user, password }) => Some(auth::basic_value(user, password)),
            Some(_) => None,
            None => auth::basic_from_url(&url),
        };
        if let Some(value) = value {
            headers.push(("Authorization".into(), value));
        }
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
                retry: Some(retry::RetryPolicy::new(2)),
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
            retry: Some(retry::RetryPolicy::new(2)),
            ..Settings::default()
        };
        let r2 = Settings {
            retry: Some(retry::RetryPolicy::new(2)),
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
