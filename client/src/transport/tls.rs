//! [`TlsStream`]: a rustls client session over a non-blocking TCP socket.
//!
//! # Receive path
//!
//! rustls, left to itself, asks the socket for about 4 KiB per `read_tls`
//! call. [`TlsStream`] instead reads the socket into one ciphertext buffer
//! and feeds rustls from memory, which saves most receive syscalls on fast
//! transfers. The read size adapts ([`ReadSize`]): it starts at
//! [`TLS_FIRST_READ`] bytes, doubles while reads fill it, up to the gulp
//! ([`GULP`]), halves after short reads, and never exceeds the budget left.
//! The buffer is allocated when the socket is read and given back while the
//! connection is idle ([`TlsStream::release_buffers`]; a grown one already
//! at the end of each response, [`TlsStream::trim_buffers`]), so an idle
//! connection holds none. Ciphertext stays in that buffer until rustls has accepted it,
//! so nothing is lost when rustls applies back-pressure (its received
//! plaintext buffer is bounded): the documented path, checking `wants_read`
//! before `read_tls`, is what decides whether to feed it more.
//!
//! One socket read may hold good records and, behind them, one that does not
//! decrypt. rustls then fails `process_new_packets` (and keeps failing: the
//! error is sticky), but the plaintext of the records before the bad one
//! stays in its reader: it is handed up first, and the error after it, as a
//! socket error after data is.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use pollhttp_proto::ReadSize;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::{ReadOutcome, ReadState, TransportError, GULP};

/// The first socket read of a TLS connection (and of each response), in
/// bytes: a whole TLS record (16 KiB of plaintext) and its overhead.
pub(crate) const TLS_FIRST_READ: usize = 17 * 1024;

/// Per-call cap in bytes on socket reads done by
/// [`TlsStream::drive_handshake`], so a misbehaving server cannot make one
/// call do unbounded work.
const HANDSHAKE_READ_BUDGET: usize = 256 * 1024;
/// A TLS client connection (rustls) over a non-blocking TCP socket.
///
/// Receive path: socket → one ciphertext buffer (reads of an adaptive size,
/// up to [`GULP`] bytes) → rustls (fed from memory) → caller.
pub(crate) struct TlsStream {
    conn: ClientConnection,
    sock: TcpStream,
    /// Ciphertext read from the socket; `inbuf[in_start..in_end]` has not
    /// been accepted by rustls yet.
    inbuf: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    /// The socket's end-of-file, then the end of input as rustls' reader
    /// judges it (`close_notify` or not); whether the last socket read did
    /// not end in `WouldBlock`; an error to report once the data read before
    /// it is taken.
    read: ReadState<TransportError>,
    socket_reads: u64,
    /// How much the next socket read asks for (the receive buffer is
    /// allocated at this size; it is given back while the connection is
    /// idle: [`TlsStream::release_buffers`]).
    read_size: ReadSize,
    /// Every socket read's size asked for and the budget left then, for
    /// tests.
    #[cfg(test)]
    asks: Vec<(usize, usize)>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .field("handshaking", &self.conn.is_handshaking())
            .field("buffered_ciphertext", &(self.in_end - self.in_start))
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

/// Internal result of one step of the receive path.
enum Pump {
    /// Ciphertext was handed to rustls, or the socket was read.
    Progress,
    /// The socket has nothing more right now.
    WouldBlock,
    /// The read budget is used up.
    Budget,
    /// The socket reached end-of-file and all ciphertext was handed over.
    Eof,
    /// rustls' plaintext buffer is full; drain it first.
    PlaintextFull,
}

impl TlsStream {
    /// Starts a TLS client session for `server_name` over the connected
    /// socket `sock` (the ClientHello is queued; call
    /// [`drive_handshake`](Self::drive_handshake)), with `initial` ciphertext
    /// that was already read from the socket (bytes that arrived right after
    /// a proxy's `CONNECT` reply): it is handed to rustls before anything
    /// read from the socket. The receive buffer is allocated by the first
    /// socket read. Does no I/O.
    ///
    /// # Errors
    /// [`TransportError::Tls`] if rustls cannot start a session with `config`.
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        sock: TcpStream,
        initial: &[u8],
    ) -> Result<Self, TransportError> {
        Self::with_gulp(config, server_name, sock, initial, GULP)
    }

    /// [`new`](Self::new) with socket reads of at most `gulp` bytes.
    pub(crate) fn with_gulp(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        sock: TcpStream,
        initial: &[u8],
        gulp: usize,
    ) -> Result<Self, TransportError> {
        let conn = ClientConnection::new(config, server_name)?;
        let inbuf: Box<[u8]> = initial.into();
        Ok(Self {
            conn,
            sock,
            inbuf,
            in_start: 0,
            in_end: initial.len(),
            read: ReadState::new(),
            socket_reads: 0,
            read_size: ReadSize::new(TLS_FIRST_READ.min(gulp), gulp),
            #[cfg(test)]
            asks: Vec::new(),
        })
    }

    /// Advances the handshake as far as possible without blocking: writes
    /// queued handshake records, reads and processes the server's. Returns
    /// `Ok(true)` once the handshake is complete (a final flight may still be
    /// queued; it goes out with the next [`flush`](Self::flush)), `Ok(false)`
    /// if it must wait for the socket. Reads at most 256 KiB per call.
    ///
    /// # Errors
    /// [`TransportError::Tls`] with the rustls error for certificate and
    /// protocol failures (the matching alert is sent best-effort);
    /// [`TransportError::Io`] for socket errors, and with
    /// [`io::ErrorKind::UnexpectedEof`] if the server closed the connection
    /// during the handshake.
    pub(crate) fn drive_handshake(&mut self) -> Result<bool, TransportError> {
        if let Some(e) = self.read.take_error() {
            return Err(e);
        }
        let mut budget = HANDSHAKE_READ_BUDGET;
        loop {
            self.flush()?;
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            if !self.conn.wants_read() {
                // Records still queued and the socket is full.
                return Ok(false);
            }
            match self.pump(&mut budget)? {
                Pump::Progress => {}
                Pump::WouldBlock | Pump::Budget | Pump::PlaintextFull => return Ok(false),
                Pump::Eof => {
                    return Err(TransportError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the TLS handshake",
                    )))
                }
            }
        }
    }

    /// Whether the handshake is still in progress.
    #[cfg(test)]
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Reads decrypted bytes into `out`, looping until `out` is full, the
    /// socket would block, or `*budget` (socket bytes; decremented by what
    /// was read from the socket) is used up. Plaintext rustls already holds
    /// is returned before the socket is touched. Never blocks. Also sends any
    /// records rustls queued in response (alerts, key updates) if the socket
    /// accepts them.
    ///
    /// [`ReadOutcome::Eof`] says whether the session ended with
    /// `close_notify` (`clean`) or the TCP connection just ended (possible
    /// truncation, which the HTTP framing judges: RFC 9112 §9.8).
    ///
    /// # Errors
    /// Socket errors and TLS failures. Bytes decrypted before an error are
    /// returned first, those of records that arrived in the same socket read
    /// as a record that does not decrypt too; the error comes on the next
    /// call once they are all taken.
    pub(crate) fn read(
        &mut self,
        out: &mut [u8],
        budget: &mut usize,
    ) -> Result<ReadOutcome, TransportError> {
        if let Some(e) = self.read.take_error() {
            // Plaintext rustls decrypted before the error goes up first.
            let n = self.take_plaintext(out);
            if n > 0 {
                self.read.keep_error(e);
                return Ok(ReadOutcome::Data(n));
            }
            return Err(e);
        }
        if let Some(eof) = self.read.end_outcome() {
            return Ok(eof);
        }
        if out.is_empty() {
            return Ok(ReadOutcome::WouldBlock);
        }
        let mut n = 0;
        let outcome = loop {
            if n == out.len() {
                break ReadOutcome::Data(n);
            }
            match self.conn.reader().read(&mut out[n..]) {
                Ok(0) => {
                    self.read.set_end(true);
                    break self.read.outcome(n);
                }
                Ok(k) => {
                    n += k;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.read.set_end(false);
                    break self.read.outcome(n);
                }
                Err(e) => return self.fail_after(out, n, TransportError::Io(e)),
            }
            match self.pump(budget) {
                Ok(Pump::Progress) => {}
                Ok(Pump::WouldBlock) | Ok(Pump::Budget) | Ok(Pump::PlaintextFull) => {
                    break self.read.outcome(n)
                }
                Ok(Pump::Eof) => {
                    // rustls was told about the EOF; this is the unlikely case
                    // where it still reported no state. Treat as unclean.
                    self.read.set_end(false);
                    break self.read.outcome(n);
                }
                Err(e) => return self.fail_after(out, n, e),
            }
        };
        if self.conn.wants_write() {
            if let Err(e) = self.flush() {
                return self.fail_after(out, n, e);
            }
        }
        Ok(outcome)
    }

    /// Encrypts as much of `data` as rustls' bounded send buffer (64 KiB of
    /// TLS records) accepts; if it is full, first pushes queued records to
    /// the socket. `Ok(0)` when nothing could be accepted (wait for
    /// WRITABLE). Before the handshake completes, data is buffered and sent
    /// once it is done. Never blocks; call [`flush`](Self::flush) afterwards.
    ///
    /// # Errors
    /// Socket errors, and the rustls error if the session already failed.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<usize, TransportError> {
        if data.is_empty() {
            return Ok(0);
        }
        let k = self.conn.writer().write(data)?;
        if k > 0 {
            return Ok(k);
        }
        // Send buffer full: push records out, then retry once.
        self.flush()?;
        Ok(self.conn.writer().write(data)?)
    }

    /// Writes queued TLS records to the socket until none are left
    /// (`Ok(true)`) or the socket would block (`Ok(false)`). Never blocks.
    ///
    /// # Errors
    /// Socket errors.
    pub(crate) fn flush(&mut self) -> Result<bool, TransportError> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(TransportError::Io(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
        Ok(true)
    }

    /// Give the receive buffer back while nothing is buffered (an idle
    /// kept-alive connection); the next socket read allocates it again, and
    /// reads start small again.
    pub(crate) fn release_buffers(&mut self) {
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
            self.inbuf = Box::new([]);
            self.read_size.reset();
        }
    }

    /// At the end of a response: reads start small again, and a receive
    /// buffer grown past the first read size goes back (while nothing is
    /// buffered); a small one stays for the next response.
    pub(crate) fn trim_buffers(&mut self) {
        if self.inbuf.len() > TLS_FIRST_READ {
            self.release_buffers();
        } else if self.in_start == self.in_end {
            self.read_size.reset();
        }
    }

    /// Bytes of receive buffer held (allocated), for tests bounding idle
    /// memory.
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.inbuf.len()
    }

    /// Whether TLS records are queued for the socket (rustls' `wants_write`).
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Whether `read` may make progress without a new readiness event:
    /// unconsumed ciphertext or plaintext is buffered, an error or EOF is
    /// waiting to be reported, or the socket was not read until it would
    /// block (budget or `out` ran out first).
    pub(crate) fn has_pending_input(&self) -> bool {
        self.read.has_pending_input()
            || (!self.read.end_returned()
                && (self.in_start < self.in_end
                    // Plaintext buffered, or close_notify received but not
                    // reported.
                    || (!self.conn.is_handshaking() && !self.conn.wants_read())))
    }

    /// Queues a `close_notify` alert and tries to send it (best effort; any
    /// remainder goes out with the next [`flush`](Self::flush)). Never blocks.
    pub(crate) fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
    }

    /// The socket, e.g. to (re)register it with a [`mio::Registry`].
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// The sizes of the socket reads since the last call, each with the
    /// budget left when it was made.
    #[cfg(test)]
    pub(crate) fn take_asks(&mut self) -> Vec<(usize, usize)> {
        std::mem::take(&mut self.asks)
    }

    /// Whether the end of input seen was a clean `close_notify`.
    #[cfg(test)]
    pub(crate) fn eof_was_clean(&self) -> bool {
        self.read.end() == Some(true)
    }

    /// The rustls session (negotiated protocol version, ALPN, ...).
    #[cfg(test)]
    pub(crate) fn connection(&self) -> &ClientConnection {
        &self.conn
    }

    /// Number of `read` syscalls made on the socket so far.
    #[cfg(test)]
    pub(crate) fn socket_reads(&self) -> u64 {
        self.socket_reads
    }

    /// After an error, with `out[..n]` already filled: adds the plaintext
    /// rustls still holds (a failed `process_new_packets` keeps what it
    /// decrypted from the records before the bad one), and if that makes any
    /// bytes, returns them and keeps `e` for the next call; else returns `e`.
    fn fail_after(
        &mut self,
        out: &mut [u8],
        n: usize,
        e: TransportError,
    ) -> Result<ReadOutcome, TransportError> {
        let n = n + self.take_plaintext(&mut out[n..]);
        if n > 0 {
            self.read.keep_error(e);
            Ok(ReadOutcome::Data(n))
        } else {
            Err(e)
        }
    }

    /// Copies plaintext rustls holds into `out` (no socket I/O, no record
    /// processing); returns how many bytes. rustls' reader hands out its
    /// received plaintext whatever the session's state, also after
    /// `process_new_packets` failed.
    fn take_plaintext(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match self.conn.reader().read(&mut out[n..]) {
                Ok(k) if k > 0 => n += k,
                // Nothing buffered (WouldBlock), or the end: close_notify
                // (Ok(0)) or TCP EOF without it (UnexpectedEof).
                _ => break,
            }
        }
        n
    }

    /// One step of the receive path: hand buffered ciphertext to rustls (and
    /// process it), or, if none is buffered, read the socket once.
    fn pump(&mut self, budget: &mut usize) -> Result<Pump, TransportError> {
        if self.in_start < self.in_end {
            if !self.conn.wants_read() {
                // rustls holds plaintext the caller has not taken yet: keep
                // the ciphertext until it has room again.
                return Ok(Pump::PlaintextFull);
            }
            let mut pending = &self.inbuf[self.in_start..self.in_end];
            match self.conn.read_tls(&mut pending) {
                // close_notify already received: rustls ignores the rest,
                // as RFC 8446 requires.
                Ok(0) => self.in_start = self.in_end,
                Ok(k) => self.in_start += k,
                Err(e) => return Err(TransportError::Io(e)),
            }
            if self.in_start == self.in_end {
                self.in_start = 0;
                self.in_end = 0;
            }
            self.process()?;
            return Ok(Pump::Progress);
        }
        if !self.read.socket_open() {
            return Ok(Pump::Eof);
        }
        if *budget == 0 {
            return Ok(Pump::Budget);
        }
        // Nothing is buffered: the buffer may be replaced. Allocated (given
        // back while idle, or first use) at the read size, and again when
        // that grew past it; kept when it shrinks (no churn while a response
        // is read: the end of the response trims it).
        let size = self.read_size.next();
        if self.inbuf.len() < size {
            self.inbuf = vec![0u8; size].into_boxed_slice();
        }
        let cap = size.min(*budget);
        #[cfg(test)]
        self.asks.push((cap, *budget));
        loop {
            self.socket_reads += 1;
            match self.sock.read(&mut self.inbuf[..cap]) {
                Ok(0) => {
                    self.read.note_socket_eof();
                    // Tell rustls (it records the EOF so its reader reports
                    // a clean or unclean close).
                    let _ = self.conn.read_tls(&mut &[][..]);
                    return Ok(Pump::Progress);
                }
                Ok(k) => {
                    self.read_size.record(cap, k);
                    self.in_start = 0;
                    self.in_end = k;
                    *budget -= k;
                    self.read.set_maybe_readable(true);
                    return Ok(Pump::Progress);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read.set_maybe_readable(false);
                    return Ok(Pump::WouldBlock);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
    }

    fn process(&mut self) -> Result<(), TransportError> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                // Send the alert rustls queued, best effort.
                let _ = self.flush();
                Err(TransportError::Tls(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls_options::{ring_provider, TlsConfigError, TlsOptions, ALPN_HTTP11};
    use crate::transport::{PlainStream, Transport, TransportError as TlsError};
    use mio::Interest;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ServerConfig, ServerConnection, StreamOwned};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::OnceLock;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    const TOKEN: mio::Token = mio::Token(0);
    type ServerStream = StreamOwned<ServerConnection, std::net::TcpStream>;

    struct Pki {
        ca_pem: String,
        chain: Vec<CertificateDer<'static>>,
        key_der: Vec<u8>,
    }

    /// A CA and a leaf for `localhost`, minted once per test binary.
    fn pki() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "pollhttp test CA");
            ca_params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::CrlSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            let ca =
                rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                    .unwrap();
            let leaf_key = rcgen::KeyPair::generate().unwrap();
            let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .unwrap()
                .signed_by(&leaf_key, &ca)
                .unwrap();
            Pki {
                ca_pem: ca.pem(),
                chain: vec![leaf.der().clone(), ca.der().clone()],
                key_der: leaf_key.serialize_der(),
            }
        })
    }

    fn server_config() -> Arc<ServerConfig> {
        let pki = pki();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone()));
        let mut config = ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), key)
            .unwrap();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Arc::new(config)
    }

    /// A blocking one-connection TLS server thread running `f`.
    fn spawn_server<T: Send + 'static>(
        f: impl FnOnce(&mut ServerStream) -> T + Send + 'static,
    ) -> (SocketAddr, JoinHandle<T>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            tcp.set_write_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let conn = ServerConnection::new(server_config()).unwrap();
            let mut stream = StreamOwned::new(conn, tcp);
            f(&mut stream)
        });
        (addr, handle)
    }

    fn tcp_connect(addr: SocketAddr) -> TcpStream {
        let std = std::net::TcpStream::connect(addr).unwrap();
        std.set_nonblocking(true).unwrap();
        TcpStream::from_std(std)
    }

    fn client(addr: SocketAddr, opts: &TlsOptions, host: &str) -> (mio::Poll, TlsStream) {
        let poll = mio::Poll::new().unwrap();
        let name = opts.server_name(host).unwrap();
        let mut tls = TlsStream::new(
            Arc::clone(opts.client_config()),
            name,
            tcp_connect(addr),
            &[],
        )
        .unwrap();
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(tls.socket(), TOKEN, interest)
            .unwrap();
        (poll, tls)
    }

    fn wait(poll: &mut mio::Poll, tls: &mut TlsStream, deadline: Instant) {
        assert!(Instant::now() < deadline, "test deadline exceeded");
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .reregister(tls.socket(), TOKEN, interest)
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
    }

    fn handshake(poll: &mut mio::Poll, tls: &mut TlsStream) -> Result<(), TlsError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tls.drive_handshake()? {
            wait(poll, tls, deadline);
        }
        assert!(!tls.is_handshaking());
        assert_eq!(tls.connection().alpn_protocol(), Some(ALPN_HTTP11));
        Ok(())
    }

    fn write_all(poll: &mut mio::Poll, tls: &mut TlsStream, mut data: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !data.is_empty() {
            match tls.write(data) {
                Ok(0) => wait(poll, tls, deadline),
                Ok(k) => data = &data[k..],
                Err(e) => panic!("write failed: {e}"),
            }
        }
        loop {
            match tls.flush() {
                Ok(true) => return,
                Ok(false) => wait(poll, tls, deadline),
                Err(e) => panic!("flush failed: {e}"),
            }
        }
    }

    /// Reads until EOF, calling `sink` with every chunk; checks the
    /// `out.len()` bound with varying `out` sizes and budgets.
    fn read_to_eof(poll: &mut mio::Poll, tls: &mut TlsStream, sink: impl FnMut(&[u8])) {
        const OUT_SIZES: [usize; 6] = [16384, 1, 65536, 333, 100_000, 4096];
        const BUDGETS: [usize; 4] = [1 << 20, 1000, 0, 256 * 1024];
        read_to_eof_with(poll, tls, &OUT_SIZES, &BUDGETS, sink);
    }

    fn read_to_eof_with(
        poll: &mut mio::Poll,
        tls: &mut TlsStream,
        out_sizes: &[usize],
        budgets: &[usize],
        mut sink: impl FnMut(&[u8]),
    ) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = vec![0u8; out_sizes.iter().copied().max().unwrap()];
        let mut i = 0usize;
        loop {
            let len = out_sizes[i % out_sizes.len()];
            let mut budget = budgets[i % budgets.len()];
            let budget_before = budget;
            i += 1;
            match tls.read(&mut out[..len], &mut budget) {
                Ok(ReadOutcome::Data(n)) => {
                    assert!(
                        n > 0 && n <= len,
                        "read_plain returned {n} for out.len() {len}"
                    );
                    sink(&out[..n]);
                }
                Ok(ReadOutcome::WouldBlock) => {
                    if !tls.has_pending_input() {
                        wait(poll, tls, deadline);
                    }
                }
                Ok(eof @ ReadOutcome::Eof { .. }) => {
                    assert_eq!(tls.read(&mut out, &mut 100).unwrap(), eof);
                    return;
                }
                Err(e) => panic!("read failed: {e}"),
            }
            assert!(budget <= budget_before);
            assert!(Instant::now() < deadline, "test deadline exceeded");
        }
    }

    fn ping_pong_server(stream: &mut ServerStream) {
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        stream.write_all(b"pong").unwrap();
        stream.conn.send_close_notify();
        stream.flush().unwrap();
    }

    fn ping_pong(poll: &mut mio::Poll, tls: &mut TlsStream) {
        write_all(poll, tls, b"ping");
        let mut got = Vec::new();
        read_to_eof(poll, tls, |c| got.extend_from_slice(c));
        assert_eq!(got, b"pong");
    }

    fn is_name_error(e: &TlsError) -> bool {
        matches!(
            e.rustls_error(),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        )
    }

    #[test]
    fn verifies_with_root_pem() {
        let (addr, server) = spawn_server(ping_pong_server);
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let (mut poll, mut tls) = client(addr, &opts, "localhost");
        handshake(&mut poll, &mut tls).unwrap();
        ping_pong(&mut poll, &mut tls);
        assert!(tls.eof_was_clean());
        server.join().unwrap();
    }

    #[test]
    fn default_roots_reject_private_ca() {
        let (addr, _server) = spawn_server(|s| {
            let _ = s.read(&mut [0u8; 1]);
        });
        let (mut poll, mut tls) = client(addr, &TlsOptions::default(), "localhost");
        let e = handshake(&mut poll, &mut tls).unwrap_err();
        assert!(
            matches!(
                e.rustls_error(),
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{e}"
        );
        assert!(e.is_certificate_error());
        eprintln!("default roots: {e}");
    }

    #[test]
    fn wrong_name_is_rejected() {
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        for (opts, host) in [
            (
                opts.clone().server_name_override("wrong.example"),
                "localhost",
            ),
            (opts, "127.0.0.1"),
        ] {
            let (addr, _server) = spawn_server(|s| {
                let _ = s.read(&mut [0u8; 1]);
            });
            let (mut poll, mut tls) = client(addr, &opts, host);
            let e = handshake(&mut poll, &mut tls).unwrap_err();
            assert!(is_name_error(&e), "{e}");
        }
    }

    #[test]
    fn name_override_is_used_for_verification() {
        let (addr, server) = spawn_server(|s| {
            ping_pong_server(s);
            s.conn.server_name().map(str::to_owned)
        });
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes())
            .unwrap()
            .server_name_override("localhost");
        let (mut poll, mut tls) = client(addr, &opts, "127.0.0.1");
        handshake(&mut poll, &mut tls).unwrap();
        ping_pong(&mut poll, &mut tls);
        assert_eq!(server.join().unwrap().as_deref(), Some("localhost"));
    }

    #[test]
    fn dangerous_disable_verification_accepts_anything() {
        let (addr, server) = spawn_server(ping_pong_server);
        let opts = TlsOptions::default()
            .dangerous_disable_verification()
            .server_name_override("anything.invalid");
        assert!(opts.is_verification_disabled());
        let (mut poll, mut tls) = client(addr, &opts, "localhost");
        handshake(&mut poll, &mut tls).unwrap();
        ping_pong(&mut poll, &mut tls);
        server.join().unwrap();
    }

    #[test]
    fn configs_are_cached() {
        let a = TlsOptions::default();
        let b = TlsOptions::new();
        assert!(Arc::ptr_eq(a.client_config(), b.client_config()));
        let c = a.clone().dangerous_disable_verification();
        let d = TlsOptions::new().dangerous_disable_verification();
        assert!(Arc::ptr_eq(c.client_config(), d.client_config()));
        assert!(!Arc::ptr_eq(a.client_config(), c.client_config()));
        assert_eq!(a.client_config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn pem_errors() {
        assert!(matches!(
            TlsOptions::with_root_pem(b"not pem at all"),
            Err(TlsConfigError::NoCertificates)
        ));
        let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = TlsOptions::with_root_pem(bad).unwrap_err();
        assert!(matches!(e, TlsConfigError::BadCertificate(_)), "{e}");
        let e = TlsOptions::default().server_name("bad name!").unwrap_err();
        assert!(matches!(e, TlsConfigError::InvalidServerName(_)), "{e}");
        assert!(matches!(
            TlsOptions::default().server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn unclean_eof_is_reported() {
        let (addr, server) = spawn_server(|s| {
            s.write_all(b"partial").unwrap();
            s.flush().unwrap();
            s.sock.shutdown(std::net::Shutdown::Both).unwrap();
        });
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let (mut poll, mut tls) = client(addr, &opts, "localhost");
        handshake(&mut poll, &mut tls).unwrap();
        let mut got = Vec::new();
        read_to_eof(&mut poll, &mut tls, |c| got.extend_from_slice(c));
        assert_eq!(got, b"partial");
        assert!(!tls.eof_was_clean());
        server.join().unwrap();
    }

    #[test]
    fn eof_seen_with_data_stays_pending() {
        let (addr, server) = spawn_server(|s| {
            s.write_all(b"partial").unwrap();
            s.flush().unwrap();
            s.sock.shutdown(std::net::Shutdown::Both).unwrap();
        });
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let (mut poll, mut tls) = client(addr, &opts, "localhost");
        handshake(&mut poll, &mut tls).unwrap();
        server.join().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut out = [0u8; 64];
        let deadline = Instant::now() + Duration::from_secs(5);
        let n = loop {
            match tls.read(&mut out, &mut { usize::MAX }).unwrap() {
                ReadOutcome::Data(n) => break n,
                ReadOutcome::WouldBlock => wait(&mut poll, &mut tls, deadline),
                ReadOutcome::Eof { .. } => panic!("EOF before data"),
            }
        };
        assert_eq!(&out[..n], b"partial");
        // The EOF was (most likely) seen in the same call: no readiness event
        // will come for it, so the stream must say it has more to report.
        assert!(tls.has_pending_input());
        assert_eq!(
            tls.read(&mut out, &mut { usize::MAX }).unwrap(),
            ReadOutcome::Eof { clean: false }
        );
        assert!(!tls.has_pending_input());
        assert!(!tls.eof_was_clean());
    }

    /// A server that, once the handshake is done, puts `plaintext` in
    /// records and a record that does not decrypt behind them into one
    /// socket write, says so on the channel, and waits for the client to go.
    fn bad_record_server(
        plaintext: &'static [u8],
    ) -> (SocketAddr, JoinHandle<()>, std::sync::mpsc::Receiver<()>) {
        let (written, rx) = std::sync::mpsc::channel();
        let (addr, server) = spawn_server(move |s| {
            // The tickets rustls sends after the handshake must not hold the
            // write below back (Nagle): all of it is to be there at once.
            s.sock.set_nodelay(true).unwrap();
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock).unwrap();
            }
            s.conn.writer().write_all(plaintext).unwrap();
            let mut wire = Vec::new();
            while s.conn.wants_write() {
                s.conn.write_tls(&mut wire).unwrap();
            }
            // Application data, 32 bytes no key decrypts.
            wire.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x20]);
            wire.extend_from_slice(&[0x5a; 32]);
            s.sock.write_all(&wire).unwrap();
            written.send(()).unwrap();
            // The client's alert, then its close.
            while matches!(s.sock.read(&mut [0u8; 4096]), Ok(1..)) {}
        });
        (addr, server, rx)
    }

    #[test]
    fn bad_record_in_the_same_socket_read_keeps_what_decrypted() {
        for out_len in [3, 64] {
            let (addr, server, written) = bad_record_server(b"partial");
            let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
            let (mut poll, mut tls) = client(addr, &opts, "localhost");
            handshake(&mut poll, &mut tls).unwrap();
            written.recv_timeout(Duration::from_secs(10)).unwrap();
            let reads_before = tls.socket_reads();
            let mut got = Vec::new();
            let mut out = vec![0u8; out_len];
            let deadline = Instant::now() + Duration::from_secs(10);
            let e = loop {
                match tls.read(&mut out, &mut { usize::MAX }) {
                    Ok(ReadOutcome::Data(n)) => {
                        got.extend_from_slice(&out[..n]);
                        // The error waits behind the data: no readiness
                        // event will come for it.
                        assert!(tls.has_pending_input());
                    }
                    Ok(ReadOutcome::WouldBlock) => wait(&mut poll, &mut tls, deadline),
                    Ok(ReadOutcome::Eof { clean }) => panic!("EOF ({clean}) before the error"),
                    Err(e) => break e,
                }
            };
            // Good records and the bad one came in one socket read.
            assert_eq!(tls.socket_reads() - reads_before, 1, "out {out_len}");
            assert_eq!(got, b"partial", "out {out_len}");
            assert!(
                matches!(e.rustls_error(), Some(rustls::Error::DecryptError)),
                "out {out_len}: {e:?}"
            );
            drop(tls);
            server.join().unwrap();
        }
    }

    #[test]
    fn eof_during_handshake_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.read(&mut [0u8; 4096]); // ClientHello
        });
        let (mut poll, mut tls) = client(addr, &TlsOptions::default(), "localhost");
        let e = handshake(&mut poll, &mut tls).unwrap_err();
        assert!(
            matches!(&e, TlsError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof),
            "{e:?}"
        );
        server.join().unwrap();
    }

    #[test]
    fn initial_bytes_are_fed_first() {
        // The "server" never speaks TLS; the initial bytes must be what
        // rustls chokes on.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            while matches!(s.read(&mut [0u8; 4096]), Ok(1..)) {}
        });
        let opts = TlsOptions::default();
        let mut tls = TlsStream::new(
            Arc::clone(opts.client_config()),
            opts.server_name("localhost").unwrap(),
            tcp_connect(addr),
            b"HTTP/1.1 200 OK\r\n\r\n",
        )
        .unwrap();
        let mut poll = mio::Poll::new().unwrap();
        poll.registry()
            .register(tls.socket(), TOKEN, Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        let e = handshake(&mut poll, &mut tls).unwrap_err();
        assert!(matches!(e, TlsError::Tls(_)), "{e:?}");
        drop(tls);
        server.join().unwrap();
    }

    #[test]
    fn tls_over_proxy_tunnel() {
        // A "proxy" that answers CONNECT, then terminates TLS itself.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut req = Vec::new();
            while !req.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                assert_eq!(tcp.read(&mut b).unwrap(), 1);
                req.push(b[0]);
            }
            assert!(req.starts_with(b"CONNECT localhost:443 "));
            tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .unwrap();
            let conn = ServerConnection::new(server_config()).unwrap();
            ping_pong_server(&mut StreamOwned::new(conn, tcp));
        });

        let mut poll = mio::Poll::new().unwrap();
        let mut transport = Transport::Plain(PlainStream::new(tcp_connect(addr)));
        poll.registry()
            .register(
                transport.socket(),
                TOKEN,
                Interest::READABLE | Interest::WRITABLE,
            )
            .unwrap();
        let req = b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n";
        let mut sent = 0;
        let mut reply = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = mio::Events::with_capacity(4);
        let head_end = loop {
            assert!(Instant::now() < deadline);
            if sent < req.len() {
                let k = transport.write(&req[sent..]).unwrap();
                sent += k;
                transport.flush().unwrap();
            }
            let mut buf = [0u8; 1024];
            match transport.read(&mut buf, &mut 4096).unwrap() {
                ReadOutcome::Data(n) => reply.extend_from_slice(&buf[..n]),
                ReadOutcome::WouldBlock => {
                    poll.poll(&mut events, Some(Duration::from_millis(50)))
                        .unwrap();
                }
                ReadOutcome::Eof { .. } => panic!("proxy closed"),
            }
            if let Some(p) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        assert!(reply.starts_with(b"HTTP/1.1 200"));
        let Transport::Plain(plain) = transport else {
            unreachable!()
        };
        let mut sock = plain.into_inner();
        poll.registry().deregister(&mut sock).unwrap();
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let mut tls = TlsStream::new(
            Arc::clone(opts.client_config()),
            opts.server_name("localhost").unwrap(),
            sock,
            &reply[head_end..],
        )
        .unwrap();
        poll.registry()
            .register(tls.socket(), TOKEN, Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        handshake(&mut poll, &mut tls).unwrap();
        ping_pong(&mut poll, &mut tls);
        assert!(tls.eof_was_clean());
        server.join().unwrap();
    }

    #[test]
    fn plain_stream_respects_out_and_budget() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let total = 1 << 20;
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            s.write_all(&data).unwrap();
        });
        let mut poll = mio::Poll::new().unwrap();
        let mut t = Transport::Plain(PlainStream::new(tcp_connect(addr)));
        let interest = t.interest(false);
        assert_eq!(interest, Interest::READABLE);
        poll.registry()
            .register(t.socket(), TOKEN, interest)
            .unwrap();
        let mut got = Vec::new();
        let mut out = [0u8; 1000];
        let mut events = mio::Events::with_capacity(4);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline);
            let mut budget = 700;
            match t.read(&mut out, &mut budget).unwrap() {
                ReadOutcome::Data(n) => {
                    assert!(n <= 700);
                    assert_eq!(budget, 700 - n);
                    got.extend_from_slice(&out[..n]);
                }
                ReadOutcome::WouldBlock => {
                    if !t.has_pending_input() {
                        poll.poll(&mut events, Some(Duration::from_millis(50)))
                            .unwrap();
                    }
                }
                ReadOutcome::Eof { clean } => {
                    assert!(clean, "a plain TCP end of input is clean");
                    break;
                }
            }
        }
        assert_eq!(got.len(), total);
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        assert_eq!(
            t.read(&mut out, &mut 10).unwrap(),
            ReadOutcome::Eof { clean: true }
        );
        server.join().unwrap();
    }

    #[test]
    fn upload_through_tls() {
        const TOTAL: usize = 4 << 20;
        let (addr, server) = spawn_server(|s| {
            let mut n = 0usize;
            let mut buf = vec![0u8; 65536];
            let mut sum = 0u64;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => {
                        sum += buf[..k].iter().map(|&b| u64::from(b)).sum::<u64>();
                        n += k;
                    }
                    Err(e) => panic!("server read: {e}"),
                }
            }
            (n, sum)
        });
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let (mut poll, mut tls) = client(addr, &opts, "localhost");
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 253) as u8).collect();
        // Written before the handshake finished: buffered by rustls.
        let early = tls.write(&data[..100]).unwrap();
        assert_eq!(early, 100);
        handshake(&mut poll, &mut tls).unwrap();
        write_all(&mut poll, &mut tls, &data[100..]);
        tls.send_close_notify();
        write_all(&mut poll, &mut tls, &[]);
        let (n, sum) = server.join().unwrap();
        assert_eq!(n, TOTAL);
        assert_eq!(sum, data.iter().map(|&b| u64::from(b)).sum::<u64>());
    }

    const PATTERN_LEN: usize = 65_537;

    fn pattern() -> Vec<u8> {
        (0..PATTERN_LEN)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect()
    }

    /// Server that sends `total` pattern bytes, then close_notify.
    fn bulk_server(total: usize) -> (SocketAddr, JoinHandle<()>) {
        spawn_server(move |s| {
            let pat = pattern();
            let mut sent = 0;
            let mut chunk = vec![0u8; 1 << 20];
            while sent < total {
                let len = chunk.len().min(total - sent);
                for (j, b) in chunk[..len].iter_mut().enumerate() {
                    *b = pat[(sent + j) % PATTERN_LEN];
                }
                s.write_all(&chunk[..len]).unwrap();
                sent += len;
            }
            s.conn.send_close_notify();
            s.flush().unwrap();
        })
    }

    /// Receives a bulk transfer and checks every byte; returns
    /// (bytes, elapsed, socket reads). `realistic`: 64 KiB `out`, 1 MiB
    /// budget per call; otherwise adversarial varying sizes and budgets.
    fn receive_bulk(total: usize, buffer_size: usize, realistic: bool) -> (usize, Duration, u64) {
        let (addr, server) = bulk_server(total);
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut tls = TlsStream::with_gulp(
            Arc::clone(opts.client_config()),
            opts.server_name("localhost").unwrap(),
            tcp_connect(addr),
            &[],
            buffer_size,
        )
        .unwrap();
        poll.registry()
            .register(tls.socket(), TOKEN, Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        handshake(&mut poll, &mut tls).unwrap();
        let pat = pattern();
        let mut off = 0usize;
        let t0 = Instant::now();
        let (out_sizes, budgets): (&[usize], &[usize]) = if realistic {
            (&[64 << 10], &[1 << 20])
        } else {
            (
                &[16384, 1, 65536, 333, 100_000, 4096],
                &[1 << 20, 1000, 0, 256 * 1024],
            )
        };
        read_to_eof_with(&mut poll, &mut tls, out_sizes, budgets, |mut chunk| {
            while !chunk.is_empty() {
                let start = off % PATTERN_LEN;
                let len = chunk.len().min(PATTERN_LEN - start);
                assert!(
                    chunk[..len] == pat[start..start + len],
                    "corrupt data near offset {off}"
                );
                chunk = &chunk[len..];
                off += len;
            }
        });
        let elapsed = t0.elapsed();
        assert!(tls.eof_was_clean());
        server.join().unwrap();
        (off, elapsed, tls.socket_reads())
    }

    #[test]
    fn socket_reads_grow_within_the_gulp_and_the_budget_and_the_buffer_goes_back() {
        const TOTAL: usize = 16 << 20;
        let (addr, server) = bulk_server(TOTAL);
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let (mut poll, mut tls) = client(addr, &opts, "localhost");
        handshake(&mut poll, &mut tls).unwrap();
        assert!(tls.buffer_capacity() <= TLS_FIRST_READ);
        let pat = pattern();
        let (mut off, mut largest, mut calls) = (0usize, 0usize, 0usize);
        let mut out = vec![0u8; 64 << 10];
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline);
            // A tool's budget for the first half, a frame's small one after.
            let given = if off < TOTAL / 2 { 1 << 20 } else { 5000 };
            let mut budget = given;
            let outcome = tls.read(&mut out, &mut budget).unwrap();
            calls += 1;
            for (ask, left) in tls.take_asks() {
                assert!(ask <= GULP && ask <= left, "read {ask}, budget left {left}");
                largest = largest.max(ask);
            }
            assert!(tls.buffer_capacity() <= GULP);
            match outcome {
                ReadOutcome::Data(n) => {
                    let mut chunk = &out[..n];
                    while !chunk.is_empty() {
                        let start = off % PATTERN_LEN;
                        let len = chunk.len().min(PATTERN_LEN - start);
                        assert!(chunk[..len] == pat[start..start + len], "at {off}");
                        chunk = &chunk[len..];
                        off += len;
                    }
                }
                ReadOutcome::WouldBlock => {
                    if !tls.has_pending_input() {
                        wait(&mut poll, &mut tls, deadline);
                    }
                }
                ReadOutcome::Eof { clean } => {
                    assert!(clean);
                    break;
                }
            }
        }
        assert_eq!(off, TOTAL);
        // The reads grew past the first size (reads that filled it).
        assert!(largest > TLS_FIRST_READ, "largest read {largest}");
        eprintln!("largest socket read {largest} B over {calls} calls");
        // At the end of a response a grown buffer goes back; an idle
        // connection keeps none.
        tls.trim_buffers();
        assert!(tls.buffer_capacity() <= TLS_FIRST_READ);
        tls.release_buffers();
        assert_eq!(tls.buffer_capacity(), 0);
        server.join().unwrap();
    }

    #[test]
    fn transfer_64_mib_intact() {
        const TOTAL: usize = 64 << 20;
        for realistic in [false, true] {
            let (n, elapsed, reads) = receive_bulk(TOTAL, GULP, realistic);
            assert_eq!(n, TOTAL);
            eprintln!(
                "64 MiB over TLS in {elapsed:?} ({:.0} MiB/s), {reads} socket reads \
                 (gulp {} KiB, {})",
                64.0 / elapsed.as_secs_f64(),
                GULP / 1024,
                if realistic {
                    "64 KiB out, 1 MiB budget"
                } else {
                    "varying out/budget"
                }
            );
        }
    }

    /// Measurement only: `cargo test -p pollhttp --release -- --ignored
    /// --nocapture read_buffer_sizes`.
    #[test]
    #[ignore]
    fn read_buffer_sizes() {
        const TOTAL: usize = 64 << 20;
        for size in [
            4 << 10,
            16 << 10,
            64 << 10,
            128 << 10,
            256 << 10,
            512 << 10,
            1 << 20,
        ] {
            let (n, elapsed, reads) = receive_bulk(TOTAL, size, true);
            assert_eq!(n, TOTAL);
            eprintln!(
                "gulp {:>4} KiB: {elapsed:>10.2?} {:>6.0} MiB/s {reads:>7} socket reads",
                size / 1024,
                64.0 / elapsed.as_secs_f64()
            );
        }
        // Baseline: rustls reading the socket itself.
        let (addr, server) = bulk_server(TOTAL);
        let opts = TlsOptions::with_root_pem(pki().ca_pem.as_bytes()).unwrap();
        let mut conn = ClientConnection::new(
            Arc::clone(opts.client_config()),
            opts.server_name("localhost").unwrap(),
        )
        .unwrap();
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        let mut reads = 0u64;
        let mut got = 0usize;
        let mut out = vec![0u8; 65536];
        let t0 = Instant::now();
        loop {
            while conn.wants_write() {
                conn.write_tls(&mut sock).unwrap();
            }
            match conn.reader().read(&mut out) {
                Ok(0) => break,
                Ok(k) => {
                    got += k;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            reads += 1;
            if conn.read_tls(&mut sock).unwrap() == 0 {
                break;
            }
            conn.process_new_packets().unwrap();
        }
        let elapsed = t0.elapsed();
        server.join().unwrap();
        assert_eq!(got, TOTAL);
        eprintln!(
            "rustls alone:  {elapsed:>10.2?} {:>6.0} MiB/s {reads:>7} socket reads",
            64.0 / elapsed.as_secs_f64()
        );
    }
}
