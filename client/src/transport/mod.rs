//! The byte transports a connection runs over: [`PlainStream`] (bare TCP) and
//! [`TlsStream`] (rustls over TCP), behind [`Transport`] so the exchange has
//! one code path.
//!
//! Nothing here blocks: every method does the socket I/O that is possible
//! right now. Nothing here parses HTTP. What the layers above need to judge a
//! response is kept: a read says whether the end of input was clean (a TCP
//! FIN on plain TCP, a `close_notify` alert on TLS) or not (RFC 9112 §9.8),
//! and errors are typed ([`TransportError`]), never a rustls error smuggled
//! through [`io::Error`].

use std::fmt;
use std::io;

use mio::net::TcpStream;
use mio::Interest;

mod plain;
mod tls;

pub(crate) use plain::PlainStream;
pub(crate) use tls::TlsStream;

/// The largest socket read, in bytes (a "gulp"): plain reads go straight
/// into proto's receive room, which grows up to this size while reads fill
/// it ([`client_proto_config`](crate::conn::client_proto_config)); TLS reads
/// ciphertext in reads of the same adaptive size. On loopback and busy NICs a
/// reader inside `recv` while segments arrive does their receive work
/// itself, so small back-to-back reads cost several times the kernel CPU per
/// byte of a few large ones. Each read is also at most the budget left.
pub(crate) const GULP: usize = 512 * 1024;

/// Result of a `read` call on a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// This many bytes (at least 1, at most `out.len()`) were written to the
    /// start of `out`.
    Data(usize),
    /// No data available right now: the socket has nothing more, or the
    /// per-call budget ran out ([`Transport::has_pending_input`] tells the two
    /// apart).
    WouldBlock,
    /// The input ended and everything before it was returned. `clean`: the
    /// end is proof that nothing was cut off (a TCP FIN on plain TCP, a TLS
    /// `close_notify`); `false` for TLS without `close_notify`. Every later
    /// call returns the same.
    Eof {
        /// Whether the end of input was clean.
        clean: bool,
    },
}

/// Where a stream's input stands; see [`ReadState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// The socket has not reached end-of-file. `maybe_readable`: it was not
    /// read until it would block, so a read may make progress without a
    /// readiness event.
    Open { maybe_readable: bool },
    /// (TLS) The socket reached end-of-file; whether the session ended
    /// cleanly is not known yet (rustls has not said).
    SocketEof,
    /// The end of input is known: `clean` or not (see
    /// [`ReadOutcome::Eof`]); `returned` once `Eof` went to the caller.
    Ended { clean: bool, returned: bool },
}

/// The read side of a stream, the same for [`PlainStream`] and
/// [`TlsStream`]: how far the input got, and an error waiting behind data
/// already handed up (`E`: the stream's error type). The order a caller sees
/// is data, then the error, then the end.
#[derive(Debug)]
pub(crate) struct ReadState<E> {
    input: Input,
    pending_error: Option<E>,
}

impl<E> ReadState<E> {
    /// An open socket that may have input.
    pub(crate) fn new() -> Self {
        Self {
            input: Input::Open {
                maybe_readable: true,
            },
            pending_error: None,
        }
    }

    /// Whether the socket has not reached end-of-file (nor the input ended).
    pub(crate) fn socket_open(&self) -> bool {
        matches!(self.input, Input::Open { .. })
    }

    /// Whether the socket may have input without a readiness event (while it
    /// is open; a no-op after its end-of-file).
    pub(crate) fn set_maybe_readable(&mut self, maybe_readable: bool) {
        if let Input::Open { .. } = self.input {
            self.input = Input::Open { maybe_readable };
        }
    }

    /// The socket returned end-of-file, and what that means for the input is
    /// not known yet (TLS: rustls judges it). See [`set_end`](Self::set_end).
    pub(crate) fn note_socket_eof(&mut self) {
        if let Input::Open { .. } = self.input {
            self.input = Input::SocketEof;
        }
    }

    /// The end of input is known (the first call decides `clean`).
    pub(crate) fn set_end(&mut self, clean: bool) {
        if !matches!(self.input, Input::Ended { .. }) {
            self.input = Input::Ended {
                clean,
                returned: false,
            };
        }
    }

    /// `Some(clean)` once the end of input is known.
    #[cfg(test)]
    pub(crate) fn end(&self) -> Option<bool> {
        match self.input {
            Input::Ended { clean, .. } => Some(clean),
            _ => None,
        }
    }

    /// Whether `Eof` went to the caller.
    pub(crate) fn end_returned(&self) -> bool {
        matches!(self.input, Input::Ended { returned: true, .. })
    }

    /// `Eof` once the end of input is known (it then counts as returned).
    pub(crate) fn end_outcome(&mut self) -> Option<ReadOutcome> {
        match &mut self.input {
            Input::Ended { clean, returned } => {
                *returned = true;
                Some(ReadOutcome::Eof { clean: *clean })
            }
            _ => None,
        }
    }

    /// The outcome of a read that put `n` bytes into `out`: `Data(n)`, else
    /// [`end_outcome`](Self::end_outcome), else `WouldBlock`.
    pub(crate) fn outcome(&mut self, n: usize) -> ReadOutcome {
        if n > 0 {
            return ReadOutcome::Data(n);
        }
        self.end_outcome().unwrap_or(ReadOutcome::WouldBlock)
    }

    /// Keep `e` for the next read (data read before it goes first).
    pub(crate) fn keep_error(&mut self, e: E) {
        self.pending_error = Some(e);
    }

    /// The error kept for this read, if any.
    pub(crate) fn take_error(&mut self) -> Option<E> {
        self.pending_error.take()
    }

    /// Whether a read may make progress without a readiness event: an error
    /// or the end waits to be reported, the socket reached end-of-file, or it
    /// was not read until it would block. Once `Eof` was returned, only an
    /// error can still come.
    pub(crate) fn has_pending_input(&self) -> bool {
        self.pending_error.is_some()
            || match self.input {
                Input::Open { maybe_readable } => maybe_readable,
                Input::SocketEof => true,
                Input::Ended { returned, .. } => !returned,
            }
    }
}

/// A connection's transport failed: a socket error, or (TLS) a protocol,
/// certificate or record error reported by rustls, or an alert from the
/// server.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// rustls rejected the connection (certificate, handshake, a record that
    /// does not decrypt, an alert); the original error is kept.
    Tls(rustls::Error),
    /// The socket failed (or the peer closed it while TLS needed it).
    Io(io::Error),
}

impl TransportError {
    /// The rustls error, if this is a TLS (not an I/O) failure.
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        match self {
            Self::Tls(e) => Some(e),
            Self::Io(_) => None,
        }
    }

    /// The I/O error, if this is a socket (not a TLS) failure.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Io(e) => Some(e),
            Self::Tls(_) => None,
        }
    }

    /// Whether the server's certificate was rejected (unknown issuer, wrong
    /// name, expired, ...).
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            Self::Tls(rustls::Error::InvalidCertificate(_))
                | Self::Tls(rustls::Error::NoCertificatesPresented)
        )
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls(e) => write!(f, "TLS error: {e}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Tls(e) => Some(e),
            Self::Io(e) => Some(e),
        }
    }
}

impl From<rustls::Error> for TransportError {
    fn from(e: rustls::Error) -> Self {
        Self::Tls(e)
    }
}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A connection's byte stream, plain or TLS, behind one interface.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Bare TCP (`http://`, or a proxy connection before `CONNECT`).
    Plain(PlainStream),
    /// TLS over TCP (`https://`).
    Tls(Box<TlsStream>),
}

impl Transport {
    /// The poller reported the peer's write side closed (plain streams then
    /// read on to EOF after a short read; TLS streams always do).
    pub(crate) fn note_read_closed(&mut self) {
        if let Self::Plain(s) = self {
            s.note_read_closed();
        }
    }

    /// Read into `out`, at most `*budget` socket bytes (decremented). Never
    /// blocks. Bytes read before an error are returned first; the error comes
    /// on the next call.
    pub(crate) fn read(
        &mut self,
        out: &mut [u8],
        budget: &mut usize,
    ) -> Result<ReadOutcome, TransportError> {
        match self {
            Self::Plain(s) => s.read(out, budget).map_err(TransportError::Io),
            Self::Tls(s) => s.read(out, budget),
        }
    }

    /// Write as much of `data` as the transport accepts now; `Ok(0)` when it
    /// accepts nothing (wait for WRITABLE). Never blocks.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<usize, TransportError> {
        match self {
            Self::Plain(s) => s.write(data).map_err(TransportError::Io),
            Self::Tls(s) => s.write(data),
        }
    }

    /// Push buffered TLS records to the socket; `Ok(true)` when none are left
    /// (always for plain streams). Never blocks.
    pub(crate) fn flush(&mut self) -> Result<bool, TransportError> {
        match self {
            Self::Plain(_) => Ok(true),
            Self::Tls(s) => s.flush(),
        }
    }

    /// The readiness the transport needs from the poller: always `READABLE`,
    /// plus `WRITABLE` while the caller has bytes to write (`want_write`) or
    /// TLS records are queued (rustls' `wants_write`).
    pub(crate) fn interest(&self, want_write: bool) -> Interest {
        let tls_write = match self {
            Self::Plain(_) => false,
            Self::Tls(s) => s.wants_write(),
        };
        if want_write || tls_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Whether `read` may make progress without a readiness event.
    pub(crate) fn has_pending_input(&self) -> bool {
        match self {
            Self::Plain(s) => s.has_pending_input(),
            Self::Tls(s) => s.has_pending_input(),
        }
    }

    /// The socket, e.g. to (re)register it with a [`mio::Registry`].
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(s) => s.socket(),
            Self::Tls(s) => s.socket(),
        }
    }

    /// Give receive buffers back while the connection is idle.
    pub(crate) fn release_buffers(&mut self) {
        if let Self::Tls(s) = self {
            s.release_buffers();
        }
    }

    /// A response ended: reads start small again, a grown TLS receive
    /// buffer goes back (a plain stream has none: it reads into proto's).
    pub(crate) fn trim_buffers(&mut self) {
        if let Self::Tls(s) = self {
            s.trim_buffers();
        }
    }

    /// Best effort, never blocks: a TLS stream queues `close_notify` and tries
    /// to send it; a plain stream does nothing (dropping it closes the socket).
    pub(crate) fn close_notify(&mut self) {
        if let Self::Tls(s) = self {
            s.send_close_notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ReadOutcome, ReadState};

    #[test]
    fn read_state_reports_data_then_error_then_end() {
        let mut r = ReadState::<&str>::new();
        assert!(r.socket_open() && r.has_pending_input());
        r.set_maybe_readable(false);
        assert!(!r.has_pending_input());
        assert_eq!(r.outcome(0), ReadOutcome::WouldBlock);
        // TLS: the socket ended, rustls has not judged it yet.
        r.note_socket_eof();
        assert!(!r.socket_open() && r.has_pending_input());
        r.set_maybe_readable(true);
        assert_eq!(r.end(), None);
        r.set_end(false);
        r.set_end(true); // the first judgement stands
        r.keep_error("reset");
        assert_eq!(r.outcome(5), ReadOutcome::Data(5));
        assert!(!r.end_returned() && r.has_pending_input());
        assert_eq!(r.take_error(), Some("reset"));
        assert_eq!(r.outcome(0), ReadOutcome::Eof { clean: false });
        assert!(r.end_returned() && !r.has_pending_input());
        assert_eq!(r.end_outcome(), Some(ReadOutcome::Eof { clean: false }));
    }
}
