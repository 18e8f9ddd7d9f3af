//! [`PlainStream`]: bare TCP with the same shape as the TLS stream.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use super::{ReadOutcome, ReadState};

/// A bare TCP byte stream with the same shape as [`TlsStream`].
#[derive(Debug)]
pub(crate) struct PlainStream {
    sock: TcpStream,
    /// End of input (the socket's end-of-file: clean), read error kept
    /// behind data.
    read: ReadState<io::Error>,
    /// The poller reported the peer's write side closed: read on to EOF.
    read_closed: bool,
}

impl PlainStream {
    /// Wraps a connected non-blocking socket.
    pub(crate) fn new(sock: TcpStream) -> Self {
        Self {
            sock,
            read: ReadState::new(),
            read_closed: false,
        }
    }

    /// The poller reported that the peer closed its write side: the next reads
    /// go on to end-of-file, since no further readiness event will come.
    pub(crate) fn note_read_closed(&mut self) {
        self.read_closed = true;
        self.read.set_maybe_readable(true);
    }

    /// Reads received bytes directly into `out` (no intermediate copy),
    /// looping until the socket would block, `out` is full, or `*budget`
    /// (bytes; decremented by what was read) is used up. A short read ends the
    /// call too: TCP returns everything it has, so the socket is drained and
    /// the next readiness edge says when more arrives (one `EAGAIN` read saved
    /// per wakeup). Never blocks.
    ///
    /// # Errors
    /// Socket errors (e.g. connection reset). If an error happens after some
    /// bytes were read, those bytes are returned first and the error on the
    /// next call.
    pub(crate) fn read(&mut self, out: &mut [u8], budget: &mut usize) -> io::Result<ReadOutcome> {
        if let Some(e) = self.read.take_error() {
            return Err(e);
        }
        let mut n = 0;
        while n < out.len() && self.read.socket_open() && *budget > 0 {
            let cap = (out.len() - n).min(*budget);
            match self.sock.read(&mut out[n..n + cap]) {
                // On plain TCP the socket's end is the clean end of input.
                Ok(0) => self.read.set_end(true),
                Ok(k) => {
                    n += k;
                    *budget -= k;
                    if k < cap && !self.read_closed {
                        self.read.set_maybe_readable(false);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read.set_maybe_readable(false);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if n > 0 => {
                    self.read.keep_error(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if *budget == 0 && n < out.len() {
            // Stopped by the budget, not by the socket: more may be there.
            self.read.set_maybe_readable(true);
        }
        Ok(self.read.outcome(n))
    }

    /// Writes as much of `data` to the socket as it accepts now; `Ok(0)` when
    /// it accepts nothing (wait for WRITABLE). Never blocks.
    ///
    /// # Errors
    /// Socket errors.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        loop {
            match self.sock.write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => return Ok(k),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `read_plain` may make progress without a new readiness event
    /// (the socket was not yet read until it would block).
    pub(crate) fn has_pending_input(&self) -> bool {
        self.read.has_pending_input()
    }

    /// The socket, e.g. to (re)register it with a [`mio::Registry`].
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Takes the socket back (e.g. to start TLS over a proxy tunnel).
    pub(crate) fn into_inner(self) -> TcpStream {
        self.sock
    }
}
