//! The vocabulary every front end shares: [`Status`] (Godot's HTTPClient
//! states, derived from a connection's phase and proto's receive state) and
//! [`WakeHandle`] (wakes a sleeping `wait` from another thread).

use std::fmt;
use std::sync::Arc;

use mio::Waker;

/// The state of an [`HttpClient`](crate::HttpClient), with Godot's HTTPClient names and meanings.
///
/// Error states (`CantResolve`, `CantConnect`, `ConnectionError`,
/// `TlsHandshakeError`) stay until [`HttpClient::close`](crate::HttpClient::close) or a new
/// [`HttpClient::connect_to_host`](crate::HttpClient::connect_to_host); [`HttpClient::failure`](crate::HttpClient::failure) says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// No connection.
    Disconnected,
    /// Resolving the host name on a resolver thread.
    Resolving,
    /// The host name could not be resolved.
    CantResolve,
    /// Connecting (TCP, then the proxy tunnel and the TLS handshake).
    Connecting,
    /// No address could be connected to, the connect timed out, or the proxy
    /// refused the tunnel.
    CantConnect,
    /// Connected and idle: ready for [`HttpClient::request`](crate::HttpClient::request).
    Connected,
    /// A request is being sent or its response head awaited.
    Requesting,
    /// The response head arrived; its body is being read with
    /// [`HttpClient::read_response_body_chunk`](crate::HttpClient::read_response_body_chunk).
    Body,
    /// The connection failed: an I/O error, a truncated or malformed response,
    /// or the server closed an idle kept-alive connection.
    ConnectionError,
    /// The TLS handshake or certificate verification failed.
    TlsHandshakeError,
}

impl Status {
    /// Every status, in declaration order (`ALL[s as usize] == s`).
    pub(crate) const ALL: [Status; 10] = [
        Status::Disconnected,
        Status::Resolving,
        Status::CantResolve,
        Status::Connecting,
        Status::CantConnect,
        Status::Connected,
        Status::Requesting,
        Status::Body,
        Status::ConnectionError,
        Status::TlsHandshakeError,
    ];

    /// Whether this is one of the four error states.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Status::CantResolve
                | Status::CantConnect
                | Status::ConnectionError
                | Status::TlsHandshakeError
        )
    }
}

/// Wakes a sleeping `wait` (of an [`HttpClient`](crate::HttpClient) or an `HttpRequest`) from
/// another thread. Cheap to clone.
#[derive(Clone)]
pub struct WakeHandle(pub(crate) Arc<Waker>);

impl WakeHandle {
    /// Make the current or next `wait` return at once. Never blocks.
    pub fn wake(&self) {
        let _ = self.0.wake();
    }
}

impl fmt::Debug for WakeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WakeHandle")
    }
}
