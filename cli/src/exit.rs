//! curl's exit codes (its man page, "EXIT CODES"), for every failure fetch
//! can have: [`of`] maps a transfer's outcome to one, in one place.
//!
//! | code | curl's name | fetch's causes |
//! |---:|---|---|
//! | 0 | OK | the response arrived (any status without `-f`) |
//! | 1 | UNSUPPORTED_PROTOCOL | a scheme other than http/https; a redirect that cannot be followed (https → http); a response that is not HTTP (its status line) |
//! | 2 | FAILED_INIT | a usage error (unknown option, bad value, no URL) |
//! | 3 | URL_MALFORMAT | the URL does not parse |
//! | 5 | COULDNT_RESOLVE_PROXY | the proxy's name did not resolve |
//! | 6 | COULDNT_RESOLVE_HOST | the host's name did not resolve |
//! | 7 | COULDNT_CONNECT | every address refused |
//! | 8 | WEIRD_SERVER_REPLY | the response broke HTTP/1.1 (the rule is named) |
//! | 18 | PARTIAL_FILE | the connection closed inside the body |
//! | 22 | HTTP_RETURNED_ERROR | `-f`/`--fail-with-body` and a status ≥ 400 |
//! | 23 | WRITE_ERROR | the output file cannot be created or written |
//! | 26 | READ_ERROR | the request body (`-T`, `--data-file`, `-F @FILE`) cannot be read |
//! | 28 | OPERATION_TIMEDOUT | `-m`, `--connect-timeout`, the idle timeout |
//! | 33 | RANGE_ERROR | `-C`: the 206 does not start where asked |
//! | 35 | SSL_CONNECT_ERROR | the TLS handshake failed |
//! | 47 | TOO_MANY_REDIRECTS | more than `--max-redirs` |
//! | 52 | GOT_NOTHING | the server closed without a response byte |
//! | 55 | SEND_ERROR | the request could not be sent |
//! | 56 | RECV_ERROR | a socket or TLS error while receiving; a broken chunked body; the proxy refused CONNECT |
//! | 60 | PEER_FAILED_VERIFICATION | the server certificate was rejected |
//! | 61 | BAD_CONTENT_ENCODING | the body's content coding cannot be decoded |
//! | 63 | FILESIZE_EXCEEDED | `--max-filesize` |
//! | 65 | SEND_FAIL_REWIND | a body that cannot be sent again (a redirect, a retry) |

use std::fmt;

use pollhttp::proto::Error as ProtoError;
use pollhttp::web::WebError;
use pollhttp::{Completed, Failure, RequestError, RequestFailure, RequestResult};

/// Why fetch stops, or a transfer cannot start: what to say, and curl's
/// exit code for it (typed inside, a number only at the edge).
#[derive(Debug)]
pub(crate) struct Error {
    /// The exit code.
    pub(crate) code: u8,
    /// What went wrong, in words.
    pub(crate) message: String,
}

impl Error {
    /// A usage error (curl's 2).
    pub(crate) fn usage(message: impl Into<String>) -> Error {
        Error::new(2, message)
    }

    /// `message`, with the exit `code`.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// A request refused at once, for `url`.
    pub(crate) fn refused(url: &str, e: &WebError) -> Error {
        let code = match e {
            WebError::Refused(r) => refused(r),
            _ => 2,
        };
        Error::new(code, format!("{url}: {e}"))
    }

    /// Output that cannot be written (curl's 23).
    pub(crate) fn write(message: impl Into<String>) -> Error {
        Error::new(23, message)
    }

    /// Input that cannot be read (curl's 26).
    pub(crate) fn read(message: impl Into<String>) -> Error {
        Error::new(26, message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::usage(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::usage(message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code of a request the library refused at once.
pub(crate) fn refused(e: &RequestError) -> u8 {
    match e {
        RequestError::UnsupportedScheme(_) => 1,
        RequestError::InvalidUrl(_) | RequestError::InvalidHost => 3,
        RequestError::Tls(_) => 35,
        RequestError::Body(_) => 26,
        _ => 2,
    }
}

/// The exit code of a transfer that ended as `done`: `fail` is `-f` (or
/// `--fail-with-body`), `via_proxy` whether a proxy was in the way (a name
/// that does not resolve is then the proxy's, as curl says).
pub(crate) fn of(done: &Completed, fail: bool, via_proxy: bool) -> u8 {
    code(
        done.result,
        done.failure.as_ref(),
        done.response_code(),
        fail,
        via_proxy,
    )
}

/// [`of`] on the parts of a completion, so the tests can build each case.
pub(crate) fn code(
    result: RequestResult,
    failure: Option<&RequestFailure>,
    status: u16,
    fail: bool,
    via_proxy: bool,
) -> u8 {
    if result == RequestResult::Success {
        return if fail && status >= 400 { 22 } else { 0 };
    }
    match failure {
        Some(RequestFailure::Connection(f)) => connection(f, via_proxy),
        Some(RequestFailure::Timeout(_) | RequestFailure::IdleTimeout(_)) => 28,
        Some(RequestFailure::BodySizeLimit { .. }) => 63,
        Some(RequestFailure::Decompress(_)) => 61,
        Some(
            RequestFailure::DownloadFileOpen { .. } | RequestFailure::DownloadFileWrite { .. },
        ) => 23,
        Some(RequestFailure::RedirectLimit(_)) => 47,
        Some(RequestFailure::Redirect(_)) => 1,
        Some(RequestFailure::BodyNotReplayable) => 65,
        Some(RequestFailure::Body(_)) => 26,
        Some(RequestFailure::PipeClosed) => 55,
        Some(RequestFailure::RangeMismatch { .. }) => 33,
        // A stored body that cannot be read: a local read error.
        Some(RequestFailure::CacheRead(_)) => 26,
        _ => by_result(result),
    }
}

/// A connection failure's code.
fn connection(f: &Failure, via_proxy: bool) -> u8 {
    match f {
        Failure::Resolve(_) if via_proxy => 5,
        Failure::Resolve(_) => 6,
        Failure::Connect(_) => 7,
        Failure::ConnectTimeout(_) => 28,
        Failure::ProxyRefused { .. } => 56,
        Failure::Tls(t) if t.is_certificate_error() => 60,
        Failure::Tls(_) | Failure::TlsConfig(_) => 35,
        Failure::Protocol(p) => protocol(p),
        Failure::ClosedWhileIdle => 52,
        Failure::UnsolicitedData => 8,
        _ => 56,
    }
}

/// A protocol failure's code: a response cut short is 52 or 18, any other
/// broken rule is a weird server reply.
fn protocol(p: &ProtoError) -> u8 {
    match p {
        ProtoError::IncompleteHead { received: 0, .. } => 52,
        ProtoError::IncompleteBody { .. }
        | ProtoError::IncompleteChunkedBody { .. }
        | ProtoError::LastChunkThenEof { .. }
        | ProtoError::UncleanClose { .. } => 18,
        ProtoError::BodyTooLarge { .. } => 63,
        // curl reads these as "not HTTP": an unsupported protocol.
        ProtoError::InvalidStatusLine { .. }
        | ProtoError::InvalidVersion { .. }
        | ProtoError::InvalidStatusCode { .. } => 1,
        // curl's chunked decoder fails as a receive error.
        ProtoError::InvalidChunkSize { .. }
        | ProtoError::ChunkSizeOverflow { .. }
        | ProtoError::InvalidChunkExtension { .. }
        | ProtoError::ChunkExtensionTooLarge { .. }
        | ProtoError::InvalidChunkLineEnding { .. }
        | ProtoError::MissingChunkDataCrlf { .. } => 56,
        _ => 8,
    }
}

/// The code of a result whose cause is not known more precisely.
fn by_result(result: RequestResult) -> u8 {
    match result {
        RequestResult::Success => 0,
        RequestResult::ChunkedBodySizeMismatch => 18,
        RequestResult::CantConnect => 7,
        RequestResult::CantResolve => 6,
        RequestResult::ConnectionError => 56,
        RequestResult::TlsHandshakeError => 35,
        RequestResult::NoResponse => 52,
        RequestResult::BodySizeLimitExceeded => 63,
        RequestResult::BodyDecompressFailed => 61,
        RequestResult::RequestFailed => 55,
        RequestResult::DownloadFileCantOpen | RequestResult::DownloadFileWriteError => 23,
        RequestResult::RedirectLimitReached => 47,
        RequestResult::Timeout => 28,
        // curl has no integrity check: a code of ours, outside curl's table.
        RequestResult::IntegrityFailed => 100,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn conn(f: Failure) -> Option<RequestFailure> {
        Some(RequestFailure::Connection(f))
    }

    fn io_err() -> io::Error {
        io::Error::other("x")
    }

    #[test]
    fn success_and_fail() {
        use RequestResult::Success;
        assert_eq!(code(Success, None, 200, false, false), 0);
        assert_eq!(code(Success, None, 404, false, false), 0);
        assert_eq!(code(Success, None, 404, true, false), 22);
        assert_eq!(code(Success, None, 399, true, false), 0);
    }

    #[test]
    fn every_failure_has_curls_code() {
        use RequestResult as R;
        let cases: Vec<(R, Option<RequestFailure>, bool, u8)> = vec![
            (R::CantResolve, conn(Failure::Resolve(io_err())), false, 6),
            (R::CantResolve, conn(Failure::Resolve(io_err())), true, 5),
            (R::CantConnect, conn(Failure::Connect(io_err())), false, 7),
            (
                R::CantConnect,
                conn(Failure::ConnectTimeout(Duration::from_secs(1))),
                false,
                28,
            ),
            (
                R::CantConnect,
                conn(Failure::ProxyRefused { status: 403 }),
                true,
                56,
            ),
            (R::ConnectionError, conn(Failure::Io(io_err())), false, 56),
            (
                R::ConnectionError,
                conn(Failure::ClosedWhileIdle),
                false,
                52,
            ),
            (R::ConnectionError, conn(Failure::UnsolicitedData), false, 8),
            (
                R::NoResponse,
                conn(Failure::Protocol(ProtoError::IncompleteHead {
                    offset: 0,
                    received: 0,
                })),
                false,
                52,
            ),
            (
                R::ConnectionError,
                conn(Failure::Protocol(ProtoError::IncompleteHead {
                    offset: 9,
                    received: 9,
                })),
                false,
                8,
            ),
            (
                R::ChunkedBodySizeMismatch,
                conn(Failure::Protocol(ProtoError::UncleanClose { offset: 9 })),
                false,
                18,
            ),
            (
                R::Timeout,
                Some(RequestFailure::Timeout(Duration::ZERO)),
                false,
                28,
            ),
            (
                R::Timeout,
                Some(RequestFailure::IdleTimeout(Duration::ZERO)),
                false,
                28,
            ),
            (
                R::BodySizeLimitExceeded,
                Some(RequestFailure::BodySizeLimit { limit: 1 }),
                false,
                63,
            ),
            (
                R::BodyDecompressFailed,
                Some(RequestFailure::Decompress(io_err())),
                false,
                61,
            ),
            (
                R::DownloadFileCantOpen,
                Some(RequestFailure::DownloadFileOpen {
                    path: PathBuf::from("f"),
                    error: io_err(),
                }),
                false,
                23,
            ),
            (
                R::DownloadFileWriteError,
                Some(RequestFailure::DownloadFileWrite {
                    path: PathBuf::from("f"),
                    error: io_err(),
                }),
                false,
                23,
            ),
            (
                R::RedirectLimitReached,
                Some(RequestFailure::RedirectLimit(8)),
                false,
                47,
            ),
            (
                R::RequestFailed,
                Some(RequestFailure::BodyNotReplayable),
                false,
                65,
            ),
            (
                R::RequestFailed,
                Some(RequestFailure::Body(io_err())),
                false,
                26,
            ),
            (
                R::RequestFailed,
                Some(RequestFailure::RangeMismatch {
                    expected: 1,
                    content_range: "bytes 0-1/2".into(),
                }),
                false,
                33,
            ),
        ];
        for (result, failure, proxy, want) in cases {
            let got = code(result, failure.as_ref(), 0, false, proxy);
            assert_eq!(got, want, "{result:?} {failure:?} proxy={proxy}");
            // -f changes nothing when no response arrived.
            assert_eq!(code(result, failure.as_ref(), 0, true, proxy), want);
        }
    }

    #[test]
    fn a_result_without_its_cause_has_a_code() {
        use RequestResult as R;
        for (r, want) in [
            (R::ChunkedBodySizeMismatch, 18),
            (R::CantConnect, 7),
            (R::CantResolve, 6),
            (R::ConnectionError, 56),
            (R::TlsHandshakeError, 35),
            (R::NoResponse, 52),
            (R::BodySizeLimitExceeded, 63),
            (R::BodyDecompressFailed, 61),
            (R::RequestFailed, 55),
            (R::DownloadFileCantOpen, 23),
            (R::DownloadFileWriteError, 23),
            (R::RedirectLimitReached, 47),
            (R::Timeout, 28),
        ] {
            assert_eq!(code(r, None, 0, false, false), want, "{r:?}");
        }
    }
}
