//! [`Settings`]: what one request does, in groups as ureq's `Config`
//! groups its own: [`Timeouts`], [`Redirects`], [`BodySettings`] (the
//! response body: limits, decoding, a download file, streaming),
//! [`ProxySettings`], TLS, retries, credentials and cookies. A front end's
//! own knobs (a poll's budget, a worker thread) are its own setters, not
//! fields here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::auth::Auth;
use super::coding::ContentCoding;
use super::cookie_store::CookieStore;
use super::retry::RetryPolicy;
use crate::cache::CacheSettings;
use crate::tls_options::TlsOptions;
use pollhttp_proto::Leniency;

#[allow(unused_imports)] // named in docs
use crate::budget::PollBudget;

/// Settings of a request (an [`HttpRequest`](crate::HttpRequest)'s, or
/// one given to [`RequestPool::request`](crate::RequestPool::request)),
/// with Godot's defaults where Godot has one.
///
/// Built field by field from [`Settings::default`]:
///
/// ```
/// use std::time::Duration;
/// use pollhttp::Settings;
///
/// let mut s = Settings::default();
/// s.timeouts.total = Some(Duration::from_secs(10));
/// s.redirects.max = 3;
/// s.body.size_limit = Some(64 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long each part of a request may take.
    pub timeouts: Timeouts,
    /// Whether and how redirects are followed.
    pub redirects: Redirects,
    /// The response body: its limit, decoding, where it goes.
    pub body: BodySettings,
    /// Proxies for http and https URLs.
    pub proxy: ProxySettings,
    /// TLS settings for https URLs. `None` (default): verification against
    /// the bundled web roots, ALPN `http/1.1`.
    pub tls: Option<TlsOptions>,
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
    /// Try again on connection failures and on the policy's status codes
    /// (r.http's `attempts`, curl's `--retry`): idempotent methods only (or
    /// when nothing was sent), with exponential backoff and jitter,
    /// `Retry-After` honoured within the request's total timeout, a retry
    /// budget per origin. [`Completed::attempts`](crate::Completed::attempts)
    /// counts the tries. `None` (default): no retries (the one transparent
    /// retry of a request that met a stale keep-alive connection stays).
    pub retry: Option<RetryPolicy>,
    /// Credentials for the request's origin (never sent to another one
    /// after a redirect): Basic is sent with the first request, Digest
    /// answers the server's `401` challenge, on the same connection when
    /// the server keeps it. An `Authorization` header given with the
    /// request wins; both win over the URL's userinfo. `None` (default).
    pub auth: Option<Auth>,
    /// The cookies the request reads and fills, at every hop (a
    /// `Set-Cookie` on a 3xx applies to the next one): a
    /// [`web::CookieJar`](crate::web::CookieJar) behind a mutex
    /// (`Some(jar.clone())` with a
    /// [`SharedCookieJar`](crate::web::SharedCookieJar)), or any
    /// [`CookieStore`]. Shared by the requests and threads that hold a
    /// clone. `None` (default): cookies are only what the caller sends.
    pub cookie_jar: Option<Arc<dyn CookieStore>>,
    /// The HTTP cache the request uses, and how ([`CacheSettings`]): a
    /// fresh stored answer costs no connection, a stale one is revalidated,
    /// a storable response is stored as it arrives. Default: none.
    pub cache: CacheSettings,
    /// Which rules of RFC 9112 a response may break and still be read
    /// (proto's [`Leniency`], one switch per rule: a bare LF ending a
    /// line, §2.2; obs-fold, §5.2; whitespace before a field's colon, §5.1;
    /// Content-Length beside Transfer-Encoding, §6.3 rule 3; a chunked
    /// body ended by its last-chunk then the connection's end, §7.1). A
    /// response that breaks a rule not turned on fails with
    /// [`Failure::Protocol`](crate::Failure::Protocol) naming the rule.
    /// Applied to each response of the request (a kept connection takes the
    /// request's own). Default: strict, except `obs_fold`, which is on (the
    /// client is a user agent, which RFC 9112 §5.2 lets unfold obs-fold by
    /// replacing it with SP; curl does too). [`Leniency::all`] turns every
    /// one on (what curl accepts, and a chunked body cut after its
    /// last-chunk, which curl does not). Costs nothing per call.
    pub leniency: Leniency,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeouts: Timeouts::default(),
            redirects: Redirects::default(),
            body: BodySettings::default(),
            proxy: ProxySettings::default(),
            tls: None,
            recv_buffer_size: None,
            retry: None,
            auth: None,
            cookie_jar: None,
            cache: CacheSettings::default(),
            leniency: Leniency {
                obs_fold: true,
                ..Leniency::default()
            },
        }
    }
}

/// How long each part of a request may take (ureq's `Timeouts`, curl's
/// `CURLOPT_TIMEOUT` / `CURLOPT_CONNECTTIMEOUT`). Every time is measured on
/// the front end's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One deadline from `request` to completion, covering resolve,
    /// connect, TLS, redirects, retries and body (Godot's `timeout`).
    /// `None` (default): none.
    pub total: Option<Duration>,
    /// Fail when no byte arrives for this long, counted from when the
    /// request has a connection (not while it waits for one in a
    /// [`RequestPool`](crate::RequestPool)'s queue). `None` (default): none.
    pub idle: Option<Duration>,
    /// How long connecting may take (resolve excluded), over every address,
    /// counted from the first attempt: then
    /// [`RequestResult::CantConnect`](crate::RequestResult::CantConnect).
    /// Default 30 s (Godot's connect timeout).
    pub connect: Duration,
    /// Happy Eyeballs' delay before the next address is tried beside a
    /// pending one (RFC 8305 §5). Default 250 ms.
    pub attempt_delay: Duration,
    /// A request with a body that carries `Expect: 100-continue` (a field
    /// the caller gives; RFC 9110 §10.1.1) sends its head alone and holds
    /// the body until a `100 Continue` arrives, or until this much time
    /// has passed since the head was queued (then it sends the body
    /// anyway, as RFC 9110 §10.1.1 lets a client that has waited "for some
    /// time"). A final response that arrives first is the answer (a 417,
    /// a 401 challenge, a redirect): the body is not sent, and the
    /// connection is closed after it. Default 1 s (curl's
    /// `--expect100-timeout`). Without that field, the body goes at once.
    pub expect_continue: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            total: None,
            idle: None,
            connect: Duration::from_secs(30),
            attempt_delay: Duration::from_millis(250),
            expect_continue: Duration::from_secs(1),
        }
    }
}

/// Whether and how redirects are followed (RFC 9110 §15.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirects {
    /// Follow redirects. Default true. `false` is Parse's
    /// `followRedirects: false` (and curl's default): a 3xx is the result,
    /// with its body.
    pub follow: bool,
    /// Most redirects followed (Godot's `max_redirects`); one more is
    /// [`RequestResult::RedirectLimitReached`](crate::RequestResult::RedirectLimitReached).
    /// Default 8.
    pub max: u32,
    /// Follow a redirect from https to http. Default false (refused with
    /// [`RequestResult::RequestFailed`](crate::RequestResult::RequestFailed)).
    pub https_to_http: bool,
}

impl Default for Redirects {
    fn default() -> Redirects {
        Redirects {
            follow: true,
            max: 8,
            https_to_http: false,
        }
    }
}

/// The response body: its limit, its decoding, where it goes, how fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodySettings {
    /// Largest body in bytes (Godot's `body_size_limit`); `None` (default)
    /// for no limit. Two counts, one per layer, both ending in
    /// [`RequestResult::BodySizeLimitExceeded`](crate::RequestResult::BodySizeLimitExceeded):
    /// proto holds every response body of the request to it on the wire (a
    /// declared Content-Length above it fails at the head, before a body
    /// byte is read; a chunked or close-delimited one as it arrives:
    /// `Failure::Protocol(BodyTooLarge)`), and the sink holds the final
    /// body to it after decoding (a decompression bomb stops there:
    /// [`RequestFailure::BodySizeLimit`](crate::RequestFailure::BodySizeLimit)).
    pub size_limit: Option<u64>,
    /// Decode content codings (Godot's `accept_gzip`, kept as the switch
    /// for all of them): send `Accept-Encoding` with [`codings`](Self::codings)
    /// and decode a response's `Content-Encoding` (gzip, deflate, br, zstd,
    /// stacked up to three, undone last applied first), whichever of those
    /// the server chose. A coding pollhttp does not decode fails the request
    /// at the head ([`RequestFailure::UnsupportedCoding`](crate::RequestFailure::UnsupportedCoding),
    /// as curl's `CURLE_BAD_CONTENT_ENCODING`) rather than hand out bytes
    /// still coded as if decoded. The body size limit counts decoded bytes
    /// for each coding, so a bomb of any of them stops at it. `false`: no
    /// `Accept-Encoding`, and a body comes as received, its
    /// `Content-Encoding` in the head. Default true.
    pub accept_gzip: bool,
    /// The codings `Accept-Encoding` asks for when
    /// [`accept_gzip`](Self::accept_gzip) is on, in this order (servers
    /// pick the first they have; each listed once). Default
    /// [`ContentCoding::GZIP_DEFLATE`] (`gzip, deflate`, Godot's);
    /// [`ContentCoding::ALL`] asks for `zstd, br, gzip, deflate` (curl's
    /// `--compressed`). Empty: nothing asked (what arrives is still decoded).
    pub codings: Vec<ContentCoding>,
    /// Check the response's `Content-Digest` and `Repr-Digest` (RFC 9530:
    /// sha-256, sha-512; other algorithms ignored) as the body arrives:
    /// a mismatch or a malformed field fails the request with
    /// [`RequestResult::IntegrityFailed`](crate::RequestResult::IntegrityFailed),
    /// never `Success`. Costs one hash pass over the body when the server
    /// sends one (sha-256 about 1 GB/s here; see the README). Default true.
    pub verify_digests: bool,
    /// The SHA-256 the body must have (an asset manifest's;
    /// [`crate::sha256_from_hex`] reads `sha256sum`'s hex): the body as
    /// decoded, with a resumed file's earlier bytes first. A mismatch fails
    /// closed: [`RequestResult::IntegrityFailed`](crate::RequestResult::IntegrityFailed)
    /// with [`RequestFailure::DigestMismatch`](crate::RequestFailure::DigestMismatch),
    /// the body not handed out, the download file removed (with its
    /// `.resume` note). A download that fails otherwise is removed too,
    /// unless [`resume`](Self::resume) keeps it as a partial, marked by its
    /// `.resume` note. A response without a body (HEAD, 204, 304) is not
    /// checked. A streamed body's pieces are handed out as they arrive,
    /// before the check: the completion says whether they were good.
    /// Default `None`.
    pub expected_sha256: Option<[u8; 32]>,
    /// Most bytes read per body chunk (Godot's `download_chunk_size`).
    /// Default 65 536.
    pub download_chunk_size: usize,
    /// Stream the body into this file instead of memory (Godot's
    /// `download_file`). The file is opened (created if missing) when the
    /// final response's head arrives; its old content is replaced when the
    /// body's first byte arrives, or when an empty body completes (curl
    /// truncates then too), so a request that fails before any body byte
    /// leaves an existing file as it was.
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
    /// fails with [`RequestFailure::RangeMismatch`](crate::RequestFailure::RangeMismatch).
    /// The file also gets the response's `Last-Modified` as its
    /// modification time when the request ends (curl's `-R`). Default false.
    pub resume: bool,
    /// [`RequestPool`](crate::RequestPool) only: hand the body out in
    /// pieces as they arrive ([`crate::RequestPool::read_body`]) instead of
    /// collecting it; reading pauses while more than
    /// [`PoolSettings::stream_high_water`](crate::PoolSettings::stream_high_water)
    /// (4 MiB by default, a default poll's byte budget) is waiting to be
    /// taken, so a caller that takes the pieces after each poll never slows
    /// a download. While reading is paused so, the idle timeout is held (the
    /// wait is the caller's, not the server's); it starts again whole when
    /// taking pieces resumes reading. Pieces of 16 KiB or more of a body without a content
    /// coding are the receive buffer's own bytes, shared rather than
    /// copied; a waiting piece keeps its buffer, so the backlog holds at
    /// most about four times that much memory. A body that ends while
    /// several pieces are still waiting completes one poll later (its
    /// connection is free at once), so they can be taken rather than copied
    /// into one inside the `poll`. What was not taken when the request
    /// completes comes in [`Completed::body`](crate::Completed::body). Not
    /// with a `download_file` (refused at `request`:
    /// [`RequestError::ConflictingSettings`](crate::RequestError::ConflictingSettings));
    /// an [`HttpRequest`](crate::HttpRequest) collects the body whatever
    /// this says. Default false.
    pub stream: bool,
    /// Most bytes per second this request reads (a background download
    /// that must not crowd out the ones a player waits for; curl's
    /// `CURLOPT_MAX_RECV_SPEED_LARGE`). `None` (default): no limit. Reading
    /// pauses (no polling, a timer) while the request is over its rate: a
    /// token bucket holding a tenth of a second's worth (at least 16 KiB),
    /// so a request that read nothing for a while (paused, or a slow
    /// server) gets one burst back, not the bytes it missed.
    pub max_recv_speed: Option<u64>,
}

impl Default for BodySettings {
    fn default() -> BodySettings {
        BodySettings {
            size_limit: None,
            accept_gzip: true,
            codings: ContentCoding::GZIP_DEFLATE.to_vec(),
            verify_digests: true,
            expected_sha256: None,
            download_chunk_size: 65_536,
            download_file: None,
            resume: false,
            stream: false,
            max_recv_speed: None,
        }
    }
}

/// Proxies (curl's `CURLOPT_PROXY`, `CURLOPT_PROXYUSERPWD`, and its
/// environment variables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for http URLs, as (host, port): requests go to it in
    /// absolute-form (RFC 9112 §3.2.2).
    pub http: Option<(String, u16)>,
    /// Proxy for https URLs, as (host, port): a CONNECT tunnel (RFC 9110
    /// §9.3.6).
    pub https: Option<(String, u16)>,
    /// User and password for the proxy (`Proxy-Authorization: Basic`, RFC
    /// 9110 §11.7.2), sent on CONNECT and with each request through an
    /// HTTP proxy, never to the origin. `None` (default).
    pub auth: Option<(String, String)>,
    /// Take the proxy from the environment when none is set here
    /// (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`, by curl's
    /// rules: [`crate::web::proxy_for`]; credentials in the proxy URL are
    /// used unless `auth` is set). Default false.
    pub from_env: bool,
}

impl Settings {
    /// Whether a request made with `self` behaves exactly as one made with
    /// `other`, so a pool may share one copy between them: every field
    /// equal; shared state (TLS configuration, retry budget, cookie jar)
    /// the same object. The destructuring names every field, so a new one
    /// cannot be forgotten here; the groups compare as values.
    pub(crate) fn same_as(&self, other: &Settings) -> bool {
        let Settings {
            timeouts,
            redirects,
            body,
            proxy,
            tls,
            recv_buffer_size,
            retry,
            auth,
            cookie_jar,
            cache,
            leniency,
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
                let RetryPolicy {
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
            && *timeouts == other.timeouts
            && *redirects == other.redirects
            && *body == other.body
            && *proxy == other.proxy
            && *recv_buffer_size == other.recv_buffer_size
            && *auth == other.auth
            && *cache == other.cache
            && *leniency == other.leniency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_shared_only_when_every_field_and_shared_object_match() {
        let base = Settings::default();
        assert!(base.same_as(&Settings::default()));
        let mut differ = vec![Settings::default(); 7];
        differ[0].timeouts.total = Some(Duration::from_secs(1));
        differ[1].body.size_limit = Some(10);
        differ[2].body.stream = true;
        differ[3].tls = Some(TlsOptions::new());
        differ[4].retry = Some(RetryPolicy::new(2));
        differ[5].proxy.from_env = true;
        differ[6].leniency.bare_lf = true;
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
            retry: Some(RetryPolicy::new(2)),
            ..Settings::default()
        };
        let r2 = Settings {
            retry: Some(RetryPolicy::new(2)),
            ..Settings::default()
        };
        assert!(!r1.same_as(&r2), "two budgets");
    }
}
