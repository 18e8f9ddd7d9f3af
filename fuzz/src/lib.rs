//! Shared helpers of the pollhttp-proto fuzz targets: a byte reader for
//! hand-decoding fuzz input, a response-stream driver that checks the
//! connection's invariants after every event, and an independent reference
//! decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! Every `assert!` here is an invariant of pollhttp-proto: a failure is either
//! a bug in proto or in this file, never "expected".

use pollhttp_proto::{
    CloseReason, Config, Connection, Error, Event, Fields, MessageBodyLength, ResponseHead, Version,
};

// ------------------------------------------------------------------ input

/// Hand-decodes fuzz input: fixed-size parameters from the front, the rest is
/// data. Past the end it reads zeros, so every input is usable.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    /// Split points for `len` bytes of data: a count byte (low nibble: number
    /// of cuts; bit 4: cut before every byte), then one gap byte per cut.
    /// Returns ascending cut offsets in `1..len`.
    pub fn cuts(&mut self, len_of_rest: impl FnOnce(usize) -> usize) -> Vec<usize> {
        let spec = self.byte();
        let n = (spec & 0x0f) as usize;
        let gaps: Vec<u8> = (0..n).map(|_| self.byte()).collect();
        let len = len_of_rest(self.data.len());
        if spec & 0x10 != 0 {
            return (1..len).collect();
        }
        let mut cuts = Vec::new();
        let mut pos = 0usize;
        for g in gaps {
            pos += g as usize + 1;
            if pos >= len {
                break;
            }
            cuts.push(pos);
        }
        cuts
    }
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// A small limit from one byte: high bit set means `default`, else `scale *
/// (b & 0x7f)` (zero included: proto must cope with a limit of 0).
pub fn limit(b: u8, scale: usize, default: usize) -> usize {
    if b & 0x80 != 0 {
        default
    } else {
        scale * (b & 0x7f) as usize
    }
}

/// Cut `input` at ascending offsets.
pub fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for &c in cuts {
        let c = c.clamp(prev, input.len());
        out.push(&input[prev..c]);
        prev = c;
    }
    out.push(&input[prev..]);
    out
}

// ------------------------------------------------------------------ driver

/// The first request of a run. Later requests (after `reset`) are GETs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Req {
    Get,
    Head,
    Connect,
    /// POST with `Content-Length: 10`, 3 bytes sent, never finished.
    PostLength,
    /// POST with chunked framing, one chunk sent, never finished.
    PostChunked,
}

impl Req {
    pub fn from_byte(b: u8) -> Req {
        match b % 5 {
            0 => Req::Get,
            1 => Req::Head,
            2 => Req::Connect,
            3 => Req::PostLength,
            _ => Req::PostChunked,
        }
    }
}

/// Send a request and take its bytes off the transmit queue.
pub fn send(conn: &mut Connection, req: Req) {
    let host = ("Host", "example.com");
    let r = match req {
        Req::Get => conn.send_request("GET", "/", [host]),
        Req::Head => conn.send_request("HEAD", "/", [host]),
        Req::Connect => conn.send_request("CONNECT", "example.com:443", [host]),
        Req::PostLength => conn
            .send_request("POST", "/", [host, ("Content-Length", "10")])
            .and_then(|()| conn.send_body(b"abc")),
        Req::PostChunked => conn
            .send_request("POST", "/", [host, ("Transfer-Encoding", "chunked")])
            .and_then(|()| conn.send_body(b"abc")),
    };
    r.expect("a valid request on a fresh or reset connection");
    let n = conn.transmit_buf().len();
    assert!(n > 0);
    conn.advance_transmit(n);
    assert!(conn.transmit_buf().is_empty());
}

pub type FieldList = Vec<(String, Vec<u8>)>;

pub fn field_list(f: &Fields) -> FieldList {
    assert_eq!(f.iter().len(), f.len());
    f.iter()
        .map(|x| (x.name().to_string(), x.value().to_vec()))
        .collect()
}

/// What a run made of its input, normalized so that it does not depend on
/// how the input was split: consecutive body bytes of one message merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Info {
        status: u16,
        version: Version,
        reason: Vec<u8>,
        fields: FieldList,
    },
    Head {
        status: u16,
        version: Version,
        reason: Vec<u8>,
        fields: FieldList,
        body: MessageBodyLength,
    },
    Body(Vec<u8>),
    Trailers(FieldList),
    End(Option<CloseReason>),
    /// After a 101 or a 2xx to CONNECT: `take_remaining()` plus all later input.
    HandedOver(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Out>,
    pub error: Option<Error>,
    /// `input_offset()` at the end of a run without error.
    pub consumed: Option<u64>,
}

impl Outcome {
    /// The body bytes of the first message.
    pub fn first_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.events {
            match e {
                Out::Body(b) => out.extend_from_slice(b),
                Out::End(_) => break,
                _ => {}
            }
        }
        out
    }
    /// The outcome up to and including the first `End` (what a run fed with
    /// EOF can be compared on: after EOF the connection is never reused, but a
    /// run that saw `End` before the EOF arrived may reuse it).
    pub fn up_to_first_end(&self) -> Outcome {
        match self.events.iter().position(|e| matches!(e, Out::End(_))) {
            Some(i) => Outcome {
                events: self.events[..=i].to_vec(),
                error: None,
                consumed: None,
            },
            None => self.clone(),
        }
    }
}

/// One scripted response stream.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub config: Config,
    pub req: Req,
    pub input: &'a [u8],
    /// Call `receive_eof` after the last piece.
    pub eof: bool,
    /// Most responses to read on the connection (reset + GET in between).
    pub max_responses: usize,
}

struct Drive<'r, 'a> {
    run: &'r Run<'a>,
    conn: Connection,
    out: Outcome,
    /// Bytes handed to the connection.
    fed: usize,
    /// Ok(Some) events handed out.
    events: usize,
    heads: usize,
    ends: usize,
    body_this_msg: u64,
    /// Body length of the current response's head.
    framing: MessageBodyLength,
    /// Bytes handed out: heads, body bytes, remaining.
    handed_out: usize,
    responses: usize,
    finished: bool,
    handed_over: Option<Vec<u8>>,
    /// Input offset where the hand-over happened.
    handover_at: usize,
}

impl<'a> Run<'a> {
    /// Feed the input whole, with one `receive` call.
    pub fn whole(&self) -> Outcome {
        self.drive(&[], false)
    }

    /// Feed the input in pieces cut at `cuts`, alternating the two input paths
    /// (`recv_buf` + `receive_filled`, and `receive`).
    pub fn split(&self, cuts: &[usize]) -> Outcome {
        self.drive(cuts, true)
    }

    fn drive(&self, cuts: &[usize], alternate: bool) -> Outcome {
        let mut d = Drive {
            run: self,
            conn: Connection::new(self.config.clone()),
            out: Outcome {
                events: Vec::new(),
                error: None,
                consumed: None,
            },
            fed: 0,
            events: 0,
            heads: 0,
            ends: 0,
            body_this_msg: 0,
            framing: MessageBodyLength::None,
            handed_out: 0,
            responses: 0,
            finished: false,
            handed_over: None,
            handover_at: 0,
        };
        send(&mut d.conn, self.req);
        let pieces = pieces(self.input, cuts);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            if d.finished {
                break;
            }
            if let Some(rest) = &mut d.handed_over {
                rest.extend_from_slice(piece);
                continue;
            }
            if alternate && i % 2 == 0 {
                d.feed_lent(piece);
            } else {
                d.conn.receive(piece);
                d.fed += piece.len();
                d.check_offsets();
            }
            if d.finished || d.handed_over.is_some() {
                continue;
            }
            if i == last && self.eof {
                d.conn.receive_eof();
            }
            d.drain();
        }
        d.finish()
    }
}

impl Drive<'_, '_> {
    /// Feed through the lent receive buffer; when it is full, poll (the
    /// connection must then make room or end).
    fn feed_lent(&mut self, piece: &[u8]) {
        let mut rest = piece;
        while !rest.is_empty() {
            let buf = self.conn.recv_buf();
            assert!(buf.len() <= self.run.config.recv_buf_size.max(1));
            if buf.is_empty() {
                let before = (self.conn.input_offset(), self.conn.buffered());
                self.drain();
                if self.finished {
                    return;
                }
                if let Some(r) = &mut self.handed_over {
                    r.extend_from_slice(rest);
                    return;
                }
                // A full buffer must make the connection progress: no deadlock,
                // no unbounded buffering.
                assert_ne!(
                    before,
                    (self.conn.input_offset(), self.conn.buffered()),
                    "recv_buf() empty and poll_event made no progress"
                );
                continue;
            }
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.conn.receive_filled(n);
            rest = &rest[n..];
            self.fed += n;
            self.check_offsets();
        }
    }

    fn check_offsets(&self) {
        assert_eq!(
            self.conn.input_offset() + self.conn.buffered() as u64,
            self.fed as u64,
            "input_offset + buffered != bytes fed"
        );
    }

    /// The input bytes that the last event took: `input[off - n .. off]`.
    fn taken(&self, n: usize) -> &[u8] {
        let off = self.conn.input_offset() as usize;
        assert!(off <= self.fed && n <= off, "event took bytes never fed");
        &self.run.input[off - n..off]
    }

    fn check_head(&self, h: &ResponseHead) {
        let raw = h.raw();
        assert!(!raw.is_empty());
        let src = self.taken(raw.len());
        if self.run.config.lenient.obs_fold {
            // Unfolding replaces CR and LF inside a value with SP, nothing else.
            for (&a, &b) in raw.iter().zip(src) {
                assert!(a == b || (a == b' ' && (b == b'\r' || b == b'\n')));
            }
        } else {
            assert_eq!(&raw[..], src, "head bytes differ from the input");
        }
        assert!((100..=999).contains(&h.status()));
        assert!(raw.ends_with(b"\n"));
        // Empty lines before the status line are skipped, not part of the head.
        assert!(
            raw.starts_with(b"HTTP/"),
            "head does not start with the status line"
        );
        if !self.run.config.lenient.bare_lf {
            for (i, &b) in raw.iter().enumerate() {
                if b == b'\n' {
                    assert!(
                        i > 0 && raw[i - 1] == b'\r',
                        "bare LF accepted in strict mode"
                    );
                }
            }
        }
        assert!(h.fields().len() <= self.run.config.max_fields);
        for f in h.fields().iter() {
            assert!(!f.name().is_empty());
            assert!(f.name().bytes().all(is_tchar), "field name not a token");
            assert!(
                f.value()
                    .iter()
                    .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
                "control byte in a field value"
            );
        }
        // At most max_head_bytes, however it arrived.
        assert!(raw.len() <= self.run.config.max_head_bytes);
    }

    fn drain(&mut self) {
        loop {
            let before = self.conn.input_offset();
            let bound = 2 * self.fed + 8;
            let r = self.conn.poll_event();
            self.check_offsets();
            match r {
                Ok(None) => return,
                Ok(Some(ev)) => {
                    self.events += 1;
                    assert!(self.events <= bound, "too many events for the input");
                    if !matches!(ev, Event::End) {
                        assert!(
                            self.conn.input_offset() > before,
                            "an event that consumed no input: {ev:?}"
                        );
                    }
                    self.event(ev);
                    if self.finished || self.handed_over.is_some() {
                        return;
                    }
                }
                Err(e) => {
                    self.error(e);
                    return;
                }
            }
        }
    }

    fn event(&mut self, ev: Event) {
        let cfg = &self.run.config;
        match ev {
            Event::Informational(h) => {
                assert_eq!(self.heads, self.ends, "Informational inside a response");
                assert!((100..200).contains(&h.status()) && h.status() != 101);
                assert!(h.is_informational());
                assert_eq!(h.body_length(), MessageBodyLength::None);
                self.check_head(&h);
                self.handed_out += h.raw().len();
                self.out.events.push(Out::Info {
                    status: h.status(),
                    version: h.version(),
                    reason: h.reason().to_vec(),
                    fields: field_list(h.fields()),
                });
            }
            Event::Head(h) => {
                assert_eq!(self.heads, self.ends, "two heads in one response");
                self.heads += 1;
                assert!(!(100..200).contains(&h.status()) || h.status() == 101);
                self.check_head(&h);
                self.handed_out += h.raw().len();
                self.body_this_msg = 0;
                self.framing = h.body_length();
                if let (MessageBodyLength::ContentLength(n), Some(l)) =
                    (h.body_length(), cfg.body_size_limit)
                {
                    assert!(n <= l, "Content-Length past body_size_limit accepted");
                }
                self.out.events.push(Out::Head {
                    status: h.status(),
                    version: h.version(),
                    reason: h.reason().to_vec(),
                    fields: field_list(h.fields()),
                    body: h.body_length(),
                });
            }
            Event::Body(b) => {
                assert_eq!(self.heads, self.ends + 1, "Body outside a response");
                assert!(!b.is_empty(), "empty Body event");
                assert_ne!(
                    self.framing,
                    MessageBodyLength::None,
                    "Body for a response without one"
                );
                assert!(
                    b.len() <= cfg.read_chunk_size.max(1),
                    "Body over read_chunk_size"
                );
                assert_eq!(
                    &b[..],
                    self.taken(b.len()),
                    "body bytes differ from the input"
                );
                self.body_this_msg += b.len() as u64;
                assert_eq!(self.conn.body_received(), self.body_this_msg);
                if let Some(l) = cfg.body_size_limit {
                    assert!(self.body_this_msg <= l, "body past body_size_limit");
                }
                self.handed_out += b.len();
                match self.out.events.last_mut() {
                    Some(Out::Body(prev)) => prev.extend_from_slice(&b),
                    _ => self.out.events.push(Out::Body(b.to_vec())),
                }
            }
            Event::Trailers(t) => {
                assert_eq!(self.heads, self.ends + 1, "Trailers outside a response");
                assert!(!t.is_empty(), "Trailers event without fields");
                assert_eq!(
                    self.framing,
                    MessageBodyLength::Chunked,
                    "Trailers without chunked"
                );
                assert!(t.len() <= cfg.max_trailer_fields);
                self.out.events.push(Out::Trailers(field_list(&t)));
            }
            Event::End => {
                assert_eq!(self.heads, self.ends + 1, "End without a head");
                self.ends += 1;
                self.responses += 1;
                assert!(self.conn.is_response_complete());
                match self.framing {
                    MessageBodyLength::None => assert_eq!(self.body_this_msg, 0),
                    MessageBodyLength::ContentLength(n) => {
                        assert_eq!(
                            self.body_this_msg, n,
                            "Content-Length body of another length"
                        )
                    }
                    MessageBodyLength::CloseDelimited => {
                        assert!(
                            self.run.eof && self.fed == self.run.input.len(),
                            "close-delimited End before EOF"
                        );
                        assert!(
                            self.conn.close_reason().is_some(),
                            "close-delimited body, reusable"
                        );
                    }
                    MessageBodyLength::Chunked => {}
                }
                let reason = self.conn.close_reason();
                assert_eq!(self.conn.can_reuse(), reason.is_none());
                // Whether EOF had arrived when End was handed out depends on the
                // split; PeerClosed says only that.
                let norm = reason.filter(|r| *r != CloseReason::PeerClosed);
                self.out.events.push(Out::End(norm));
                match reason {
                    Some(CloseReason::SwitchingProtocols | CloseReason::Tunnel) => {
                        let at = self.conn.input_offset() as usize;
                        let rem = self.conn.take_remaining();
                        assert_eq!(&rem[..], &self.run.input[at..self.fed]);
                        assert_eq!(self.conn.buffered(), 0);
                        assert!(self.conn.take_remaining().is_empty());
                        assert_eq!(self.conn.poll_event(), Ok(None));
                        assert_eq!(
                            self.conn.send_request("GET", "/", [("Host", "h")]),
                            Err(Error::ClosedByPeer)
                        );
                        self.handed_out += rem.len();
                        self.handover_at = at;
                        self.handed_over = Some(rem.to_vec());
                    }
                    None if self.responses < self.run.max_responses => {
                        self.conn
                            .reset()
                            .expect("reset after End on a reusable connection");
                        assert!(self.conn.is_idle());
                        send(&mut self.conn, Req::Get);
                    }
                    None => self.finished = true,
                    Some(_) => {
                        assert!(matches!(self.conn.reset(), Err(Error::InvalidState { .. })));
                        self.finished = true;
                    }
                }
            }
        }
        assert!(
            self.handed_out <= self.run.input.len(),
            "more bytes out than in"
        );
    }

    fn error(&mut self, e: Error) {
        assert!(!e.is_caller_error(), "caller error from poll_event: {e:?}");
        if let Some(off) = e.offset() {
            // An offset names a byte that arrived (or the end of the input).
            assert!(
                off <= self.fed as u64,
                "error offset {off} past the input received ({} bytes): {e:?}",
                self.fed
            );
        }
        // Dead connections stay dead and say so, everywhere.
        for _ in 0..2 {
            assert_eq!(self.conn.poll_event(), Err(e.clone()));
        }
        assert_eq!(self.conn.error(), Some(&e));
        assert_eq!(self.conn.close_reason(), Some(CloseReason::Error));
        assert!(!self.conn.can_reuse());
        assert_eq!(self.conn.reset(), Err(e.clone()));
        assert_eq!(
            self.conn.send_request("GET", "/", [("Host", "h")]),
            Err(e.clone())
        );
        self.conn.receive(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(self.conn.poll_event(), Err(e.clone()));
        self.out.error = Some(e);
        self.finished = true;
    }

    fn finish(mut self) -> Outcome {
        if let Some(rest) = self.handed_over.take() {
            assert_eq!(&rest[..], &self.run.input[self.handover_at..]);
            self.out.events.push(Out::HandedOver(rest));
        } else if self.out.error.is_none() {
            self.out.consumed = Some(self.conn.input_offset());
        }
        self.out
    }
}

/// Feed the run whole and split; both must give the same outcome.
pub fn check_split_independence(run: &Run<'_>, cuts: &[usize]) -> Outcome {
    let whole = run.whole();
    let split = run.split(cuts);
    let (w, s) = if run.eof {
        (whole.up_to_first_end(), split.up_to_first_end())
    } else {
        (whole.clone(), split)
    };
    if w != s {
        panic!("whole vs split at {cuts:?} differ:\n whole: {w:?}\n split: {s:?}");
    }
    whole
}

// ------------------------------------------------------------------ grammar

/// tchar (RFC 9110 §5.6.2).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

// ------------------------------------------------------------------ reference chunked decoder

/// Limits the reference decoder applies, as pollhttp-proto documents them.
#[derive(Debug, Clone, Copy)]
pub struct RefLimits {
    pub max_ext: usize,
    pub max_trailer_bytes: usize,
    pub max_trailer_fields: usize,
    pub body_limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefErr {
    /// Input ended before the message did.
    Incomplete,
    /// A grammar violation in a chunk-size line or after chunk-data.
    Syntax,
    /// More than 16 hex digits.
    SizeOverflow,
    ExtTooLarge,
    BodyTooLarge,
    /// Anything wrong in the trailer section (syntax or limits).
    Trailer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefResult {
    Ok {
        body: Vec<u8>,
        trailers: Vec<(Vec<u8>, Vec<u8>)>,
        /// Bytes of the chunked message (through the final CRLF).
        consumed: usize,
    },
    Err {
        kind: RefErr,
        /// The offset the error is reported at.
        offset: usize,
        /// The start of the trailer section when the error is inside it
        /// (after the last-chunk line).
        trailer_start: Option<usize>,
    },
}

/// A strict RFC 9112 §7.1 decoder for a complete input (EOF after it):
///
/// ```text
/// chunked-body   = *chunk last-chunk trailer-section CRLF
/// chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-size     = 1*HEXDIG            ; at most 16 digits here
/// last-chunk     = 1*("0") [ chunk-ext ] CRLF
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token
/// chunk-ext-val  = token / quoted-string
/// trailer-section = *( field-line CRLF )
/// field-line     = field-name ":" OWS field-value OWS
/// ```
///
/// Errors are reported at the first byte that no valid message can continue
/// with, except the limits, reported as proto documents them.
pub fn reference_chunked(input: &[u8], lim: RefLimits) -> RefResult {
    let mut p = RefChunked {
        b: input,
        pos: 0,
        ext_total: 0,
        lim,
        trailer_start: None,
    };
    match p.message() {
        Ok(r) => r,
        Err((kind, offset)) => RefResult::Err {
            kind,
            offset,
            trailer_start: p.trailer_start,
        },
    }
}

type RefRes<T> = Result<T, (RefErr, usize)>;

struct RefChunked<'a> {
    b: &'a [u8],
    pos: usize,
    ext_total: usize,
    lim: RefLimits,
    trailer_start: Option<usize>,
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_qdtext(b: u8) -> bool {
    b == b'\t'
        || b == b' '
        || b == 0x21
        || (0x23..=0x5b).contains(&b)
        || (0x5d..=0x7e).contains(&b)
        || b >= 0x80
}

impl RefChunked<'_> {
    fn peek(&self) -> RefRes<u8> {
        self.b
            .get(self.pos)
            .copied()
            .ok_or((RefErr::Incomplete, self.b.len()))
    }

    fn syntax(&self) -> (RefErr, usize) {
        (RefErr::Syntax, self.pos)
    }

    fn message(&mut self) -> RefRes<RefResult> {
        let mut body = Vec::new();
        loop {
            let size = self.chunk_line()?;
            if size == 0 {
                break;
            }
            let data_start = self.pos;
            if let Some(limit) = self.lim.body_limit {
                // Reported at the start of the chunk-data that would pass it.
                if (body.len() as u64).saturating_add(size) > limit {
                    return Err((RefErr::BodyTooLarge, data_start));
                }
            }
            let avail = (self.b.len() - data_start) as u64;
            if avail < size {
                return Err((RefErr::Incomplete, self.b.len()));
            }
            let end = data_start + size as usize;
            body.extend_from_slice(&self.b[data_start..end]);
            self.pos = end;
            for want in [b'\r', b'\n'] {
                if self.peek()? != want {
                    return Err(self.syntax());
                }
                self.pos += 1;
            }
        }
        let trailers = self.trailers()?;
        Ok(RefResult::Ok {
            body,
            trailers,
            consumed: self.pos,
        })
    }

    /// chunk-size [ chunk-ext ] CRLF; returns the size.
    fn chunk_line(&mut self) -> RefRes<u64> {
        let start = self.pos;
        let mut size: u64 = 0;
        while let Some(&c) = self.b.get(self.pos) {
            let Some(v) = (c as char).to_digit(16) else {
                break;
            };
            if self.pos - start == 16 {
                return Err((RefErr::SizeOverflow, self.pos));
            }
            size = size << 4 | u64::from(v);
            self.pos += 1;
        }
        if self.pos == start {
            self.peek()?;
            return Err(self.syntax());
        }
        // Extensions: parse the grammar, then check the byte budget. Proto
        // counts every byte between the size and the CR, each before looking at
        // its syntax (so an offending byte counts, unless it is a CR or the
        // first byte after the digits, which the size parser rejects), and
        // reports the first byte past the budget.
        let ext_start = self.pos;
        let r = self.chunk_ext();
        let counted_end = match &r {
            Ok(()) => self.pos, // at the CR
            Err((RefErr::Incomplete, _)) => self.b.len(),
            Err((_, at)) if *at > ext_start && self.b[*at] != b'\r' => *at + 1,
            Err((_, at)) => *at,
        };
        let room = self.lim.max_ext - self.ext_total;
        if counted_end - ext_start > room {
            return Err((RefErr::ExtTooLarge, ext_start + room));
        }
        let ext_end = self.pos;
        r?;
        self.ext_total += ext_end - ext_start;
        // CRLF
        self.pos += 1; // the CR chunk_ext stopped at
        if self.peek()? != b'\n' {
            return Err(self.syntax());
        }
        self.pos += 1;
        Ok(size)
    }

    /// `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`
    /// followed by CR; leaves `pos` at the CR.
    fn chunk_ext(&mut self) -> RefRes<()> {
        loop {
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            match self.peek()? {
                // No BWS before the CRLF.
                b'\r' if !is_ws(self.b[self.pos - 1]) => return Ok(()),
                b';' => self.pos += 1,
                _ => return Err(self.syntax()),
            }
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            if !is_tchar(self.peek()?) {
                return Err(self.syntax());
            }
            while is_tchar(self.peek()?) {
                self.pos += 1;
            }
            // [ BWS "=" BWS value ]: look past whitespace for "=".
            let save = self.pos;
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            if self.peek()? != b'=' {
                self.pos = save;
                continue;
            }
            self.pos += 1;
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            let c = self.peek()?;
            if c == b'"' {
                self.pos += 1;
                loop {
                    let c = self.peek()?;
                    if c == b'"' {
                        self.pos += 1;
                        break;
                    } else if c == b'\\' {
                        self.pos += 1;
                        let e = self.peek()?;
                        if !(e == b'\t' || e == b' ' || (0x21..=0x7e).contains(&e) || e >= 0x80) {
                            return Err(self.syntax());
                        }
                        self.pos += 1;
                    } else if is_qdtext(c) {
                        self.pos += 1;
                    } else {
                        return Err(self.syntax());
                    }
                }
            } else if is_tchar(c) {
                while is_tchar(self.peek()?) {
                    self.pos += 1;
                }
            } else {
                return Err(self.syntax());
            }
        }
    }

    /// `*( field-line CRLF ) CRLF` with proto's limits. Trailer errors are not
    /// located precisely (proto locates them with httparse); the reported
    /// offset is the start of the section.
    fn trailers(&mut self) -> RefRes<Vec<(Vec<u8>, Vec<u8>)>> {
        let start = self.pos;
        self.trailer_start = Some(start);
        let terr = (RefErr::Trailer, start);
        let mut fields = Vec::new();
        loop {
            // Too large: proto gives up once more than the budget is buffered.
            if self.pos - start > self.lim.max_trailer_bytes && !fields.is_empty() {
                return Err(terr);
            }
            match self.peek()? {
                b'\r' => {
                    self.pos += 1;
                    if self.peek()? != b'\n' {
                        return Err(terr);
                    }
                    self.pos += 1;
                    if !fields.is_empty() && self.pos - start > self.lim.max_trailer_bytes {
                        return Err(terr);
                    }
                    return Ok(fields);
                }
                _ if fields.len() == self.lim.max_trailer_fields => return Err(terr),
                _ => {}
            }
            let n0 = self.pos;
            while is_tchar(self.peek()?) {
                self.pos += 1;
            }
            if self.pos == n0 || self.peek()? != b':' {
                return Err(terr);
            }
            let name = self.b[n0..self.pos].to_vec();
            self.pos += 1;
            let v0 = self.pos;
            loop {
                let c = self.peek()?;
                if c == b'\r' {
                    break;
                }
                if !(c == b'\t' || (c >= 0x20 && c != 0x7f)) {
                    return Err(terr);
                }
                self.pos += 1;
            }
            let value = trim_ows(&self.b[v0..self.pos]).to_vec();
            self.pos += 1;
            if self.peek()? != b'\n' {
                return Err(terr);
            }
            self.pos += 1;
            fields.push((name, value));
        }
    }
}

/// Encode `body` as one chunk (none when empty), the last-chunk and `trailers`.
pub fn encode_chunked(body: &[u8], trailers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    if !body.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        out.extend_from_slice(n);
        out.push(b':');
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
