//! The two error questions, one type each, shared by every front end:
//! [`RequestError`] ("refused now, nothing was sent") and [`Failure`] ("why a
//! connection or request failed later").

use std::fmt;
use std::io;
use std::time::Duration;

use pollhttp_proto::Error as ProtoError;

use crate::status::Status;
use crate::tls_options::TlsConfigError;
use crate::transport::TransportError;

/// Why a call was refused at once: nothing was sent, and the front end is as
/// it was before the call (`HttpClient::connect_to_host`,
/// `HttpClient::request`, `HttpRequest::request*`).
#[derive(Debug)]
#[non_exhaustive]
pub enum RequestError {
    /// `HttpRequest`: a request is already running (Godot's `ERR_BUSY`).
    Busy,
    /// `HttpClient`: the call does not fit the current status (e.g. `request`
    /// while not [`Status::Connected`], as Godot's `ERR_INVALID_PARAMETER`).
    WrongStatus(Status),
    /// The URL does not parse.
    InvalidUrl(url::ParseError),
    /// The URL's scheme is neither `http` nor `https` (the scheme is given).
    UnsupportedScheme(String),
    /// The host is empty or not a host name / IP literal.
    InvalidHost,
    /// `HttpClient::connect_to_host`: the host's `http://` or `https://`
    /// prefix disagrees with the `tls` flag (e.g. `"http://…"` with `tls`
    /// true). Neither is guessed, so nothing is ever sent in plaintext that
    /// the caller asked to protect.
    ConflictingScheme,
    /// The method, request-target or a header field is invalid (a non-token
    /// name, CR, LF or NUL in a value, a Content-Length that does not match
    /// the body, …): proto's error names the rule and the field's index.
    Invalid(ProtoError),
    /// The TLS options cannot be used for this host name.
    Tls(TlsConfigError),
    /// The request body's file cannot be opened or sized.
    Body(io::Error),
    /// The OS refused what a request needs (an epoll instance, an eventfd, a
    /// thread), e.g. when the process is out of file descriptors.
    System(io::Error),
    /// [`crate::RequestPool::pipe`]: the download is not in flight, or its
    /// body has started arriving.
    NotPipeable,
    /// Two settings that cannot work together, named by their
    /// [`Settings`](crate::Settings) fields (`stream_body` hands the body out
    /// in pieces, so a `download_file` would stay empty).
    ConflictingSettings(&'static str, &'static str),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Busy => f.write_str("a request is already running"),
            RequestError::WrongStatus(s) => write!(f, "not possible in status {s:?}"),
            RequestError::InvalidUrl(e) => write!(f, "invalid URL: {e}"),
            RequestError::UnsupportedScheme(s) => {
                write!(f, "invalid URL: unsupported scheme {s:?}")
            }
            RequestError::InvalidHost => f.write_str("invalid host"),
            RequestError::ConflictingScheme => {
                f.write_str("the host's scheme prefix disagrees with the tls flag")
            }
            RequestError::Invalid(e) => write!(f, "invalid request: {e}"),
            RequestError::Tls(e) => write!(f, "TLS configuration: {e}"),
            RequestError::Body(e) => write!(f, "cannot read the request body: {e}"),
            RequestError::System(e) => write!(f, "cannot start the request: {e}"),
            RequestError::NotPipeable => f.write_str(
                "cannot pipe that request: it is not in flight, or its body has started",
            ),
            RequestError::ConflictingSettings(a, b) => {
                write!(f, "the settings {a} and {b} cannot be used together")
            }
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::InvalidUrl(e) => Some(e),
            RequestError::Invalid(e) => Some(e),
            RequestError::Tls(e) => Some(e),
            RequestError::Body(e) | RequestError::System(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a connection (and the request on it) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The resolver failed (the system's error is kept).
    Resolve(io::Error),
    /// Every resolved address refused or failed; the last error is kept.
    Connect(io::Error),
    /// No address connected within the connect timeout.
    ConnectTimeout(Duration),
    /// The HTTPS proxy answered CONNECT with a non-2xx status.
    ProxyRefused {
        /// The proxy's status code.
        status: u16,
    },
    /// The TLS handshake or certificate verification failed.
    Tls(TransportError),
    /// After the handshake, TLS failed: a record that does not decrypt, an
    /// alert from the server.
    TlsSession(rustls::Error),
    /// The response broke HTTP/1.1 or was cut off: proto's error names the
    /// rule and the byte offset. [`ProtoError::UncleanClose`] here means the
    /// TLS connection ended without `close_notify` during a close-delimited
    /// body, which may therefore be truncated (RFC 9112 §9.8).
    Protocol(ProtoError),
    /// A socket error while sending or receiving (e.g. a connection reset),
    /// kept as the cause even when it cut a body short.
    Io(io::Error),
    /// The server closed the connection while it was idle between requests
    /// (a kept-alive connection timed out on the server).
    ClosedWhileIdle,
    /// The server sent bytes while no request was outstanding.
    UnsolicitedData,
    /// The TLS options cannot be used for this host (a redirect to a host
    /// that is not a valid server name): nothing was sent to it. A request
    /// whose first URL has this problem is refused at once instead
    /// ([`RequestError::Tls`]).
    TlsConfig(TlsConfigError),
}

impl Failure {
    /// The [`Status`] an `HttpClient` shows for this failure (Godot's error
    /// statuses).
    pub fn status(&self) -> Status {
        match self {
            Failure::Resolve(_) => Status::CantResolve,
            Failure::Connect(_) | Failure::ConnectTimeout(_) | Failure::ProxyRefused { .. } => {
                Status::CantConnect
            }
            Failure::Tls(_) => Status::TlsHandshakeError,
            Failure::TlsSession(_)
            | Failure::Protocol(_)
            | Failure::Io(_)
            | Failure::ClosedWhileIdle
            | Failure::UnsolicitedData
            | Failure::TlsConfig(_) => Status::ConnectionError,
        }
    }

    /// The proto error, for [`Failure::Protocol`].
    pub fn protocol_error(&self) -> Option<&ProtoError> {
        match self {
            Failure::Protocol(e) => Some(e),
            _ => None,
        }
    }

    /// The I/O error, for failures caused by one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Failure::Resolve(e) | Failure::Connect(e) | Failure::Io(e) => Some(e),
            Failure::Tls(t) => t.io_error(),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Resolve(e) => write!(f, "cannot resolve host: {e}"),
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::ConnectTimeout(d) => {
                write!(f, "connect timed out after {:.1} s", d.as_secs_f64())
            }
            Failure::ProxyRefused { status } => {
                write!(f, "proxy refused the CONNECT tunnel with status {status}")
            }
            Failure::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Failure::TlsSession(e) => write!(f, "TLS connection failed: {e}"),
            Failure::Protocol(e @ ProtoError::UncleanClose { .. }) => write!(
                f,
                "the TLS connection closed without close_notify, so the close-delimited \
                 body may be truncated (RFC 9112 §9.8): {e}"
            ),
            Failure::Protocol(e) => write!(f, "invalid or truncated response: {e}"),
            Failure::Io(e) => write!(f, "connection error: {e}"),
            Failure::ClosedWhileIdle => {
                f.write_str("the server closed the idle kept-alive connection")
            }
            Failure::UnsolicitedData => {
                f.write_str("the server sent data while no request was outstanding")
            }
            Failure::TlsConfig(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Resolve(e) | Failure::Connect(e) | Failure::Io(e) => Some(e),
            Failure::Tls(e) => Some(e),
            Failure::TlsSession(e) => Some(e),
            Failure::Protocol(e) => Some(e),
            Failure::TlsConfig(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TransportError> for Failure {
    /// A transport error after the handshake.
    fn from(e: TransportError) -> Failure {
        match e {
            TransportError::Io(e) => Failure::Io(e),
            TransportError::Tls(e) => Failure::TlsSession(e),
        }
    }
}
