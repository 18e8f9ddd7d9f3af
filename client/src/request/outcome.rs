//! What a request ends with: [`RequestResult`] (Godot's codes) and
//! [`Completed`], which carries the typed [`Failure`] beside it.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use pollhttp_proto::{Error as ProtoError, Fields, ResponseHead};

use crate::error::Failure;

macro_rules! request_results {
    ($($(#[$doc:meta])* $name:ident = $code:expr,)*) => {
        /// The outcome of a request, with Godot 4's codes and meanings
        /// (`HTTPRequest.Result`). Each has one clear cause; the
        /// [`Completed::reason`] says it in words and [`Completed::failure`]
        /// gives it typed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum RequestResult {
            $($(#[$doc])* $name = $code,)*
        }

        impl RequestResult {
            /// The variant name, e.g. `"Success"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(RequestResult::$name => stringify!($name),)*
                }
            }
        }
    };
}

request_results! {
    /// The response arrived complete (any status code, 404 included).
    Success = 0,
    /// The connection closed before the body was complete: fewer bytes than
    /// the Content-Length, a chunked body without its last-chunk, or a
    /// close-delimited body whose TLS connection ended without `close_notify`.
    ChunkedBodySizeMismatch = 1,
    /// No connection: every address refused or timed out, or the proxy
    /// refused the tunnel.
    CantConnect = 2,
    /// The host name did not resolve.
    CantResolve = 3,
    /// The connection failed (a reset, a TLS error) or the response broke
    /// HTTP/1.1 (the failure names the rule).
    ConnectionError = 4,
    /// The TLS handshake or certificate verification failed.
    TlsHandshakeError = 5,
    /// The server closed the connection without sending a response.
    NoResponse = 6,
    /// The body (decoded, when gzip is on) is larger than the body size limit.
    BodySizeLimitExceeded = 7,
    /// The content coding (gzip, deflate, br, zstd, or a stack of them)
    /// could not be decoded, or names a coding pollhttp does not decode
    /// ([`RequestFailure::UnsupportedCoding`]).
    BodyDecompressFailed = 8,
    /// The request could not be sent (a redirect that cannot be followed, a
    /// request body that cannot be read or sent again).
    RequestFailed = 9,
    /// The download file could not be created.
    DownloadFileCantOpen = 10,
    /// Writing the download file failed (e.g. the device is full).
    DownloadFileWriteError = 11,
    /// More redirects than `max_redirects`.
    RedirectLimitReached = 12,
    /// The deadline (`timeout`) or the idle timeout passed.
    Timeout = 13,
    /// Not one of Godot's codes: the body failed its integrity check (a
    /// response's `Content-Digest` / `Repr-Digest`, or the request's
    /// expected SHA-256; [`RequestFailure::DigestMismatch`]), or a digest
    /// field was malformed ([`RequestFailure::MalformedDigest`]). The body
    /// is not handed out and a download file is removed.
    IntegrityFailed = 14,
}

impl fmt::Display for RequestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl RequestResult {
    /// The result a connection failure gives (Godot's mapping, with the
    /// truncation cases named).
    pub fn for_failure(failure: &Failure) -> RequestResult {
        match failure {
            Failure::Resolve(_) => RequestResult::CantResolve,
            Failure::Connect(_) | Failure::ConnectTimeout(_) | Failure::ProxyRefused { .. } => {
                RequestResult::CantConnect
            }
            Failure::Tls(_) => RequestResult::TlsHandshakeError,
            Failure::TlsConfig(_) => RequestResult::RequestFailed,
            Failure::Protocol(ProtoError::IncompleteHead { received: 0, .. }) => {
                RequestResult::NoResponse
            }
            Failure::Protocol(
                ProtoError::IncompleteBody { .. }
                | ProtoError::IncompleteChunkedBody { .. }
                | ProtoError::LastChunkThenEof { .. }
                | ProtoError::UncleanClose { .. },
            ) => RequestResult::ChunkedBodySizeMismatch,
            Failure::Protocol(ProtoError::BodyTooLarge { .. }) => {
                RequestResult::BodySizeLimitExceeded
            }
            _ => RequestResult::ConnectionError,
        }
    }
}

/// Why a request failed where no connection [`Failure`] is the cause.
#[derive(Debug)]
#[non_exhaustive]
pub enum RequestFailure {
    /// A connection failure (resolve, connect, TLS, I/O, protocol).
    Connection(Failure),
    /// The request's deadline (its `timeout`) passed.
    Timeout(Duration),
    /// No byte arrived for the idle timeout.
    IdleTimeout(Duration),
    /// The decoded body went over the body size limit (`limit` bytes,
    /// counted after decoding, as it arrived: a decompression bomb stops
    /// here). A body whose bytes on the wire are over the limit fails
    /// earlier, in proto, before they are read (a declared Content-Length at
    /// the head): [`Failure::Protocol`] with
    /// [`BodyTooLarge`](pollhttp_proto::Error::BodyTooLarge), also
    /// [`RequestResult::BodySizeLimitExceeded`].
    BodySizeLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The content coding could not be decoded.
    Decompress(std::io::Error),
    /// The response's `Content-Encoding` names a coding pollhttp does not
    /// decode, or stacks more than three (RFC 9110 §8.4: a recipient that
    /// cannot decode the content must not pass it on as decoded; curl's
    /// `CURLE_BAD_CONTENT_ENCODING`). Refused at the head, before any body
    /// byte is read. [`RequestResult::BodyDecompressFailed`].
    UnsupportedCoding {
        /// The `Content-Encoding` field as received.
        content_encoding: String,
    },
    /// The body does not match a digest (RFC 9530, or the expected
    /// SHA-256). [`RequestResult::IntegrityFailed`].
    DigestMismatch {
        /// Which check failed.
        check: crate::request::digest::DigestCheck,
        /// Its algorithm.
        algorithm: crate::request::digest::DigestAlgorithm,
        /// The digest the check asked for.
        expected: Vec<u8>,
        /// The digest of the bytes received.
        actual: Vec<u8>,
    },
    /// A `Content-Digest` or `Repr-Digest` field that is not a valid RFC
    /// 9530 field (an RFC 8941 dictionary; sha-256 and sha-512 values byte
    /// sequences of their length). [`RequestResult::IntegrityFailed`].
    MalformedDigest {
        /// The field.
        check: crate::request::digest::DigestCheck,
        /// Its value as received (field lines joined).
        value: String,
    },
    /// The download file could not be created.
    DownloadFileOpen {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Writing the download file failed.
    DownloadFileWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// More redirects than allowed.
    RedirectLimit(u32),
    /// A redirect that cannot be followed (its reason in words).
    Redirect(crate::request::redirect::Refusal),
    /// The request body cannot be sent again (a reader) for a redirect or a
    /// retry that needs it.
    BodyNotReplayable,
    /// The request body's file could not be opened again (for a redirect
    /// or a retry).
    Body(std::io::Error),
    /// The worker thread (`use_threads`) ended without a result.
    WorkerGone,
    /// [`crate::RequestPool::pipe`]: the upload this download fed ended
    /// first, so the download was stopped.
    PipeClosed,
    /// `resume`: the server's 206 does not start where the partial file
    /// ends (the file is left as it was).
    RangeMismatch {
        /// The partial file's size: the first byte asked for.
        expected: u64,
        /// The response's Content-Range, as received.
        content_range: String,
    },
    /// [`CacheMode::OnlyIfCached`](crate::CacheMode::OnlyIfCached): nothing
    /// usable is stored, and the network is not asked (RFC 9111
    /// §5.2.1.7's `only-if-cached`, where a cache answers 504).
    NotCached,
    /// A stored body could not be read to its end: an I/O error, or its
    /// bytes failed their hash (`InvalidData`; the entry was removed, and
    /// the next request fetches it again). What was handed out of it is
    /// not a complete body.
    CacheRead(std::io::Error),
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFailure::Connection(e) => e.fmt(f),
            RequestFailure::Timeout(t) => write!(
                f,
                "the request did not complete within {:.3} s",
                t.as_secs_f64()
            ),
            RequestFailure::IdleTimeout(t) => {
                write!(f, "no byte arrived for {:.3} s", t.as_secs_f64())
            }
            RequestFailure::BodySizeLimit { limit } => write!(
                f,
                "body is over the body size limit of {limit} bytes (counted after decoding)"
            ),
            RequestFailure::Decompress(e) => write!(f, "cannot decode the body: {e}"),
            RequestFailure::UnsupportedCoding { content_encoding } => write!(
                f,
                "refused Content-Encoding {content_encoding:?}: only gzip, deflate, br and zstd, \
                 at most three stacked, are decoded"
            ),
            RequestFailure::DigestMismatch {
                check,
                algorithm,
                expected,
                actual,
            } => write!(
                f,
                "the body does not match {check} ({}): expected {}, got {}",
                algorithm.key(),
                hex(expected),
                hex(actual)
            ),
            RequestFailure::MalformedDigest { check, value } => {
                write!(f, "malformed {check} field: {value:?}")
            }
            RequestFailure::DownloadFileOpen { path, error } => {
                write!(f, "cannot create {}: {error}", path.display())
            }
            RequestFailure::DownloadFileWrite { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
            RequestFailure::RedirectLimit(n) => write!(f, "more than {n} redirects"),
            RequestFailure::Redirect(r) => r.fmt(f),
            RequestFailure::Body(e) => write!(f, "cannot read the request body: {e}"),
            RequestFailure::WorkerGone => f.write_str("the worker thread ended without a result"),
            RequestFailure::NotCached => f.write_str(
                "only-if-cached: no usable stored response, and the network was not asked",
            ),
            RequestFailure::CacheRead(e) => write!(f, "cannot read the stored response: {e}"),
            RequestFailure::PipeClosed => {
                f.write_str("the upload this download was piped into ended first")
            }
            RequestFailure::RangeMismatch {
                expected,
                content_range,
            } => write!(
                f,
                "asked for the bytes from {expected} on, got Content-Range {content_range:?}"
            ),
            RequestFailure::BodyNotReplayable => {
                f.write_str("the request body (a reader) cannot be sent again")
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::error::Error for RequestFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestFailure::Connection(e) => Some(e),
            RequestFailure::Decompress(e) | RequestFailure::Body(e) => Some(e),
            RequestFailure::DownloadFileOpen { error, .. }
            | RequestFailure::DownloadFileWrite { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A finished request: Godot's `request_completed(result, response_code,
/// headers, body)` plus what a tool wants to know.
#[derive(Debug)]
pub struct Completed {
    /// What happened.
    pub result: RequestResult,
    /// The cause in words (empty for [`RequestResult::Success`]).
    pub reason: String,
    /// The cause, typed (`None` for [`RequestResult::Success`]): proto's rule
    /// and byte offset, the I/O error, the TLS error...
    pub failure: Option<RequestFailure>,
    /// The final response's head as received: version, status code, reason
    /// phrase and header fields in wire order (`None` when none arrived).
    /// Content-Encoding and Content-Length are kept as received, as in
    /// Godot, even when the body was decoded.
    /// [`response_code`](Self::response_code) and
    /// [`headers`](Self::headers) read it.
    pub head: Option<ResponseHead>,
    /// Every response head that arrived before [`head`](Self::head), in
    /// the order received: interim 1xx heads (100 Continue, 103 Early
    /// Hints; RFC 9110 §15.2), each redirect's 3xx (§15.4), each 401 a
    /// Digest challenge was answered from (§11.6.1), and the heads of tries
    /// the retry policy gave up on (a 503 before the retry). Each as
    /// received (version, status, reason phrase, field lines; at most
    /// proto's `max_head_bytes`, 64 KiB, each). How many is bounded: the
    /// redirects followed ([`Redirects::max`](crate::Redirects::max)), the
    /// challenges (two at most), the tries, and
    /// [`MAX_INFORMATIONAL_HEADS`](Self::MAX_INFORMATIONAL_HEADS) 1xx heads
    /// (further ones are not kept). Empty when the final head was the
    /// first. What curl's `-i`, `-v` and `-D` print before the final head.
    pub earlier_heads: Vec<ResponseHead>,
    /// The body (decoded when gzip was on); empty when it went to the
    /// download file, and for results other than `Success`.
    pub body: Bytes,
    /// For a result other than `Success`: the final response's body bytes
    /// that arrived before the failure (decoded as far as they went, at
    /// most the body size limit), which curl writes out before it exits 18
    /// or 28 or 56. Not a complete body. Empty for `Success` (see
    /// [`body`](Self::body)), for [`RequestResult::IntegrityFailed`] (a body
    /// that failed its check is never handed out), and when the body went
    /// to the download file (whose bytes stay there); for a streamed body,
    /// the pieces not taken.
    pub partial_body: Bytes,
    /// The URL of the last request made (after redirects).
    pub final_url: String,
    /// Redirects followed.
    pub redirects: u32,
    /// Bytes of HTTP read from the connection(s), heads included.
    pub wire_bytes: u64,
    /// Body bytes after decoding (also when written to a file).
    pub body_bytes: u64,
    /// Tries made (1 when no retry happened; see [`crate::Settings::retry`]).
    pub attempts: u32,
    /// What the cache did ([`crate::CacheSettings`]): answered, revalidated,
    /// stored, or nothing.
    pub cache: crate::CacheStatus,
}

impl Completed {
    /// Most interim (1xx) heads kept in
    /// [`earlier_heads`](Self::earlier_heads) for one request; the ones
    /// after are read and dropped.
    pub const MAX_INFORMATIONAL_HEADS: usize = 16;

    /// A completion without a response.
    pub(crate) fn failed(result: RequestResult, failure: RequestFailure) -> Completed {
        Completed {
            result,
            reason: failure.to_string(),
            failure: Some(failure),
            head: None,
            earlier_heads: Vec::new(),
            body: Bytes::new(),
            partial_body: Bytes::new(),
            final_url: String::new(),
            redirects: 0,
            wire_bytes: 0,
            body_bytes: 0,
            attempts: 1,
            cache: crate::CacheStatus::NotUsed,
        }
    }

    /// The final response's status code, 0 when none arrived (Godot's
    /// `response_code`).
    pub fn response_code(&self) -> u16 {
        self.head.as_ref().map_or(0, ResponseHead::status)
    }

    /// The final response's header fields in wire order; empty when none
    /// arrived.
    pub fn headers(&self) -> &Fields {
        static NONE: OnceLock<Fields> = OnceLock::new();
        match &self.head {
            Some(h) => h.fields(),
            None => NONE.get_or_init(Fields::default),
        }
    }

    /// The connection failure, if that is why the request failed.
    pub fn connection_failure(&self) -> Option<&Failure> {
        match &self.failure {
            Some(RequestFailure::Connection(f)) => Some(f),
            _ => None,
        }
    }
}
