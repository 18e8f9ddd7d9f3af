//! [`Exchange`]: a proto [`Connection`] over a [`Transport`], and the one I/O
//! pump between them. The proxy CONNECT tunnel and every request use it.

use std::fmt;

use bytes::Bytes;
use pollhttp_proto::{Config, Connection, Error as ProtoError, Event, RecvState};

use crate::body::BodySource;
use crate::error::Failure;
use crate::reactor::Readiness;
use crate::transport::{ReadOutcome, Transport, TransportError};

/// Most request bytes proto holds queued for the socket: the body source is
/// read only while less is queued (back-pressure), so a body of any size
/// costs about this much memory beside its source.
pub(crate) const TX_HIGH_WATER: usize = 256 * 1024;

/// Largest piece of a request body handed to proto at once.
const BODY_PIECE: usize = 64 * 1024;

/// A request/response exchange on an established transport.
pub(crate) struct Exchange {
    pub(crate) proto: Connection,
    transport: Transport,
    /// The rest of the current request's body.
    body: Option<BodySource>,
    /// The body waits (an `Expect: 100-continue` request before its 100):
    /// nothing of it is sent until [`release_body`](Self::release_body).
    body_held: bool,
    /// Writing failed: nothing more is sent, but what the server sent is
    /// still read (an early response, RFC 9112 §9.5).
    write_error: Option<TransportError>,
    /// Reading failed: proto was told the input ended uncleanly, and this is
    /// the cause reported for what that cut short.
    read_error: Option<TransportError>,
    /// The transport reported the end of input (or an error).
    input_ended: bool,
    /// Bytes read from the transport (plaintext), over every request.
    pub(crate) bytes_read: u64,
    /// Bytes of the current request written to the transport.
    request_bytes_sent: u64,
    /// Body bytes of the current request handed to proto.
    pub(crate) body_bytes_sent: u64,
    /// proto's input offset when the current request was queued: input past
    /// it belongs to the current response.
    response_start: u64,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("proto", &self.proto)
            .field("transport", &self.transport)
            .field("write_error", &self.write_error)
            .field("read_error", &self.read_error)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    pub(crate) fn new(transport: Transport, config: Config) -> Exchange {
        Exchange {
            proto: Connection::new(config),
            transport,
            body: None,
            body_held: false,
            write_error: None,
            read_error: None,
            input_ended: false,
            bytes_read: 0,
            request_bytes_sent: 0,
            body_bytes_sent: 0,
            response_start: 0,
        }
    }

    pub(crate) fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The transport and the bytes that arrived past the last response (a
    /// proxy tunnel's first TLS bytes).
    pub(crate) fn into_parts(mut self) -> (Transport, Bytes) {
        let rest = self.proto.take_remaining();
        (self.transport, rest)
    }

    /// Queue a request head, and the body to stream after it. Writes nothing
    /// yet (the next [`pump`](Self::pump) does).
    ///
    /// # Errors
    /// proto's caller errors (nothing is queued then).
    pub(crate) fn start_request<'a>(
        &mut self,
        method: &str,
        target: &str,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: Option<BodySource>,
    ) -> Result<(), ProtoError> {
        self.proto.send_request(method, target, fields)?;
        self.body = body.filter(|_| self.proto.is_sending_body());
        self.body_held = false;
        self.request_bytes_sent = 0;
        self.body_bytes_sent = 0;
        self.response_start = self.proto.input_offset();
        Ok(())
    }

    /// Hold the current request's body back (an `Expect: 100-continue`
    /// request, RFC 9110 §10.1.1): its head goes out alone. Returns whether
    /// there is a body to hold.
    pub(crate) fn hold_body(&mut self) -> bool {
        self.body_held = self.body.is_some();
        self.body_held
    }

    /// Send the held body from the next [`pump`](Self::pump) on.
    pub(crate) fn release_body(&mut self) {
        self.body_held = false;
    }

    /// Whether no byte of the current request reached the transport.
    pub(crate) fn nothing_sent(&self) -> bool {
        self.request_bytes_sent == 0
    }

    /// Whether no byte of a response arrived for the current request.
    pub(crate) fn no_response_byte(&self) -> bool {
        self.proto.input_offset() + self.proto.buffered() as u64 == self.response_start
    }

    /// Whether there is request data to write (and writing has not failed).
    pub(crate) fn wants_write(&self) -> bool {
        self.write_error.is_none()
            && (self.proto.wants_transmit()
                || (!self.body_held
                    && self.body.as_ref().is_some_and(BodySource::is_ready)
                    && self.proto.transmit_buf().len() < TX_HIGH_WATER))
    }

    /// The readiness to register for.
    pub(crate) fn interest(&self) -> mio::Interest {
        self.transport.interest(self.wants_write())
    }

    /// Whether [`pump`](Self::pump) or [`poll_event`](Self::poll_event) can
    /// make progress now without a new readiness event.
    pub(crate) fn has_pending_work(&self, ready: &Readiness) -> bool {
        if self.wants_write() && ready.writable {
            return true;
        }
        let reading = !self.input_ended && (ready.readable || self.transport.has_pending_input());
        match self.proto.recv_state() {
            // A readable idle connection: the server closed it (or sent junk).
            RecvState::Idle => reading,
            RecvState::Head | RecvState::Body | RecvState::Trailers => {
                reading || !self.proto.wants_receive()
            }
            _ => false,
        }
    }

    /// Write what is queued (feeding the body while little is queued), then
    /// read at most `*budget` bytes (decremented) into proto. Never blocks.
    ///
    /// # Errors
    /// For an idle connection (no request outstanding) that became readable:
    /// [`Failure::ClosedWhileIdle`], [`Failure::UnsolicitedData`] or the I/O
    /// error. A request body source that fails: [`Failure::Io`]. Failures
    /// of an outstanding request come out of [`poll_event`](Self::poll_event),
    /// after everything that arrived before them.
    pub(crate) fn pump(
        &mut self,
        ready: &mut Readiness,
        budget: &mut usize,
    ) -> Result<(), Failure> {
        self.write_side(ready)?;
        self.read_side(ready, budget)
    }

    fn feed_body(&mut self) -> Result<(), Failure> {
        let Some(source) = self.body.as_mut() else {
            return Ok(());
        };
        // A final response while the body is being sent: stop sending (RFC
        // 9112 §9.5); proto closes the connection after it (EarlyResponse).
        if !matches!(self.proto.recv_state(), RecvState::Idle | RecvState::Head) {
            self.body = None;
            return Ok(());
        }
        if self.body_held {
            return Ok(());
        }
        while self.proto.is_sending_body() && self.proto.transmit_buf().len() < TX_HIGH_WATER {
            let piece = match source.next_piece(BODY_PIECE) {
                Ok(piece) => piece,
                // A pipe with nothing new yet: the pool wakes us when it has.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(Failure::Io(e)),
            };
            if piece.is_empty() {
                self.proto.finish().map_err(Failure::Protocol)?;
                break;
            }
            self.proto.send_body(&piece).map_err(Failure::Protocol)?;
            self.body_bytes_sent += piece.len() as u64;
        }
        if !self.proto.is_sending_body() {
            self.body = None;
        }
        Ok(())
    }

    fn write_side(&mut self, ready: &mut Readiness) -> Result<(), Failure> {
        if self.write_error.is_some() {
            return Ok(());
        }
        let failed = loop {
            self.feed_body()?;
            if !self.proto.wants_transmit() || !ready.writable {
                break None;
            }
            match self.transport.write(self.proto.transmit_buf()) {
                Ok(0) => {
                    ready.writable = false;
                    break None;
                }
                Ok(n) => {
                    self.proto.advance_transmit(n);
                    self.request_bytes_sent += n as u64;
                }
                Err(e) => break Some(e),
            }
        };
        let failed = failed.or_else(|| match self.transport.flush() {
            Ok(true) => None,
            Ok(false) => {
                ready.writable = false;
                None
            }
            Err(e) => Some(e),
        });
        if let Some(e) = failed {
            // Keep reading: the server's answer (a 413, say) may be waiting.
            self.write_error = Some(e);
            self.body = None;
            ready.readable = true;
        }
        Ok(())
    }

    fn read_side(&mut self, ready: &mut Readiness, budget: &mut usize) -> Result<(), Failure> {
        if self.input_ended {
            return Ok(());
        }
        if ready.read_closed {
            self.transport.note_read_closed();
        }
        if !ready.readable && !self.transport.has_pending_input() {
            return Ok(());
        }
        if self.proto.recv_state() == RecvState::Idle {
            return self.probe_idle(ready);
        }
        while *budget > 0 {
            // The adaptive room (up to the gulp), within the budget left.
            let out = self.proto.recv_buf_within(*budget);
            if out.is_empty() {
                break;
            }
            let room = out.len();
            let read = self.transport.read(out, budget);
            if !self.take_read(read, room, *budget, ready, false).1 {
                break;
            }
        }
        Ok(())
    }

    /// What a read into `room` bytes came to: bytes counted (in proto's
    /// receive buffer, or, `direct`, as body bytes read straight into the
    /// caller's memory), or the end of the input or a read error noted for
    /// proto (what arrived before stays; proto judges what was cut).
    /// Returns the bytes read and whether the socket may have more now (a
    /// short read not cut by the budget, `budget_left` > 0, drained it: the
    /// next edge says when more arrives).
    fn take_read(
        &mut self,
        read: Result<ReadOutcome, TransportError>,
        room: usize,
        budget_left: usize,
        ready: &mut Readiness,
        direct: bool,
    ) -> (usize, bool) {
        match read {
            Ok(ReadOutcome::Data(n)) => {
                if direct {
                    self.proto.receive_body_direct(n);
                } else {
                    self.proto.receive_filled(n);
                }
                self.bytes_read += n as u64;
                let drained = n < room && budget_left > 0 && !self.transport.has_pending_input();
                if drained {
                    ready.readable = false;
                }
                (n, !drained)
            }
            Ok(ReadOutcome::WouldBlock) => {
                ready.readable = self.transport.has_pending_input();
                (0, false)
            }
            Ok(ReadOutcome::Eof { clean }) => {
                if clean {
                    self.proto.receive_eof();
                } else {
                    self.proto.receive_unclean_eof();
                }
                self.input_ended = true;
                ready.readable = false;
                (0, false)
            }
            Err(e) => {
                self.proto.receive_unclean_eof();
                self.read_error = Some(e);
                self.input_ended = true;
                ready.readable = false;
                (0, false)
            }
        }
    }

    /// One read of body bytes from the socket straight into `dest` (the
    /// body's memory; at most what proto's
    /// [`direct_body_room`](pollhttp_proto::Connection::direct_body_room)
    /// lent, and `*budget`), skipping the receive buffer; pending writes go
    /// first, as in [`pump`](Self::pump). Returns the bytes read, counted
    /// by proto as body (0: none now; an end of input or a read error is
    /// noted for proto, which reports what it cut at the next event).
    ///
    /// # Errors
    /// A write error that ends the exchange, as [`pump`](Self::pump).
    pub(crate) fn read_body_into(
        &mut self,
        ready: &mut Readiness,
        budget: &mut usize,
        dest: &mut [u8],
    ) -> Result<usize, Failure> {
        self.write_side(ready)?;
        if self.input_ended || dest.is_empty() || *budget == 0 {
            return Ok(0);
        }
        if ready.read_closed {
            self.transport.note_read_closed();
        }
        if !ready.readable && !self.transport.has_pending_input() {
            return Ok(0);
        }
        let room = dest.len().min(*budget);
        let read = self.transport.read(&mut dest[..room], budget);
        Ok(self.take_read(read, room, *budget, ready, true).0)
    }

    /// Idle and readable: the server closed the connection, or sent bytes no
    /// request asked for.
    fn probe_idle(&mut self, ready: &mut Readiness) -> Result<(), Failure> {
        let mut probe = [0u8; 1];
        match self.transport.read(&mut probe, &mut 1) {
            Ok(ReadOutcome::WouldBlock) => {
                ready.readable = self.transport.has_pending_input();
                Ok(())
            }
            Ok(ReadOutcome::Eof { .. }) => Err(Failure::ClosedWhileIdle),
            Ok(ReadOutcome::Data(_)) => Err(Failure::UnsolicitedData),
            Err(e) => Err(e.into()),
        }
    }

    /// The next response event; reads once (at most `*budget` bytes) when
    /// proto needs input. `Ok(None)`: nothing more until the socket has more.
    ///
    /// # Errors
    /// The response's failure: the read or write error that cut it short
    /// (the cause, not its symptom), or proto's error (rule and offset).
    pub(crate) fn poll_event(
        &mut self,
        ready: &mut Readiness,
        budget: &mut usize,
    ) -> Result<Option<Event>, Failure> {
        let mut read = false;
        loop {
            match self.proto.poll_event() {
                Ok(Some(Event::End)) => {
                    // The response is read: a grown receive buffer goes back.
                    self.transport.trim_buffers();
                    return Ok(Some(Event::End));
                }
                Ok(Some(ev)) => return Ok(Some(ev)),
                Ok(None) => {
                    if read || *budget == 0 || !self.proto.wants_receive() {
                        return Ok(None);
                    }
                    read = true;
                    self.read_side(ready, budget)?;
                }
                Err(e) => return Err(self.failure_for(e)),
            }
        }
    }

    fn failure_for(&mut self, e: ProtoError) -> Failure {
        if let Some(cause) = self.read_error.take() {
            return cause.into();
        }
        if matches!(e, ProtoError::IncompleteHead { received: 0, .. }) {
            if let Some(cause) = self.write_error.take() {
                return cause.into();
            }
        }
        Failure::Protocol(e)
    }

    /// Give the buffers back while idle (a kept-alive connection costs a few
    /// KiB, not its receive buffers): proto's buffers go with a fresh
    /// `Connection` when nothing is buffered, the TLS receive buffer too.
    /// The next request allocates them again.
    pub(crate) fn release_buffers(&mut self) {
        if self.proto.is_idle() && self.proto.buffered() == 0 && !self.proto.wants_transmit() {
            let config = self.proto.config().clone();
            self.proto = Connection::new(config);
            self.response_start = 0;
        }
        self.transport.release_buffers();
    }

    /// Best effort, never blocks: a TLS `close_notify`.
    pub(crate) fn close_notify(&mut self) {
        self.transport.close_notify();
    }
}
