//! The scripted peer: one response stream fed to a [`Connection`] in
//! arbitrary splits, with every invariant of the connection checked after
//! every input and every event, and the outcome recorded in a form that must
//! not depend on the splits.
//!
//! One file, compiled in two places: by pollhttp-proto's integration tests
//! (`mod common;`) and by the fuzz targets (`fuzz/src/lib.rs` includes it
//! with `#[path]`). Sharing the source rather than a crate keeps it out of
//! proto's public API and features, and needs no extra package in either
//! workspace. It uses nothing but `pollhttp_proto` and `std`.
//!
//! Every `assert!` here is an invariant of pollhttp-proto: a failure is a bug
//! in proto or in this file, never "expected".
#![allow(dead_code)]

use pollhttp_proto::{
    CloseReason, Config, Connection, Error, Event, Fields, MessageBodyLength, RecvState,
    ResponseHead, SendState, Version,
};

// ------------------------------------------------------------------ requests

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

/// tchar (RFC 9110 §5.6.2), written out independently of proto's.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ------------------------------------------------------------------ outcome

pub type FieldList = Vec<(String, Vec<u8>)>;

pub fn field_list(f: &Fields) -> FieldList {
    assert_eq!(f.iter().len(), f.len());
    f.iter()
        .map(|x| (x.name().to_string(), x.value().to_vec()))
        .collect()
}

/// A field list from string pairs, to compare with.
pub fn fields(pairs: &[(&str, &str)]) -> FieldList {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.as_bytes().to_vec()))
        .collect()
}

/// A head as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadOut {
    pub status: u16,
    pub version: Version,
    pub reason: Vec<u8>,
    pub fields: FieldList,
    pub body: MessageBodyLength,
}

impl HeadOut {
    fn new(h: &ResponseHead) -> HeadOut {
        HeadOut {
            status: h.status(),
            version: h.version(),
            reason: h.reason().to_vec(),
            fields: field_list(h.fields()),
            body: h.body_length(),
        }
    }
}

/// What a run made of its input, normalized so that it does not depend on
/// how the input was split: consecutive body bytes of one message merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Info(HeadOut),
    Head(HeadOut),
    Body(Vec<u8>),
    Trailers(FieldList),
    /// The close reason at `End`, without `PeerClosed` and `UnsolicitedData`
    /// (whether the end of input, or bytes past the response, had arrived
    /// when `End` was handed out depends on the split; the latter are
    /// [`Outcome::unsolicited`]).
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
    /// After the last response the run asked for ended on a connection that
    /// could otherwise be reused, bytes arrived that answer no request
    /// (`CloseReason::UnsolicitedData`): the input offset of the first.
    pub unsolicited: Option<u64>,
}

impl Outcome {
    /// All body bytes.
    pub fn body(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Out::Body(b) => Some(&b[..]),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }
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
    /// The status codes of the final heads.
    pub fn heads(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Out::Head(h) => Some(h.status),
                _ => None,
            })
            .collect()
    }
    /// The status codes of the interim (1xx) heads.
    pub fn infos(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Out::Info(h) => Some(h.status),
                _ => None,
            })
            .collect()
    }
    /// Status and fields of the first final head.
    pub fn first_head(&self) -> Option<(u16, FieldList)> {
        self.events.iter().find_map(|e| match e {
            Out::Head(h) => Some((h.status, h.fields.clone())),
            _ => None,
        })
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
                unsolicited: None,
            },
            None => self.clone(),
        }
    }
}

// ------------------------------------------------------------------ runs

/// How the input ends after its last piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Nothing: more might come.
    Open,
    /// `receive_eof`.
    Clean,
    /// `receive_unclean_eof`.
    Unclean,
}

/// One scripted response stream.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub config: Config,
    pub req: Req,
    pub input: &'a [u8],
    pub end: End,
    /// Most responses to read on the connection (reset + GET in between).
    /// After the last one the connection is reset and kept idle while the
    /// rest of the input arrives.
    pub max_responses: usize,
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

struct Drive<'r, 'a> {
    run: &'r Run<'a>,
    conn: Connection,
    out: Outcome,
    /// Bytes handed to the connection.
    fed: usize,
    /// Whether the end of input was reported.
    ended: bool,
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
    /// `End` came on a connection that cannot be reused.
    closed: bool,
    /// The last response the run asks for ended on a connection that could
    /// otherwise be reused: no more requests, the rest of the input answers
    /// none.
    last_ended: bool,
    /// Finding the holds (see [`Run::holds`]): a response that ends with
    /// bytes past it buffered is where the next hold goes.
    discovering: bool,
    /// Where such a response ended.
    early_end: Option<usize>,
    handed_over: Option<Vec<u8>>,
    /// Input offset where the hand-over happened.
    handover_at: usize,
}

impl<'a> Run<'a> {
    /// Feed the input whole, with one `receive` call (one per response when
    /// the run reads several: see [`holds`](Self::holds)).
    pub fn whole(&self) -> Outcome {
        let holds = self.holds();
        self.drive(&holds, false, false).0
    }

    /// Feed the input in pieces cut at `cuts` (and at the [`holds`](Self::holds)),
    /// alternating the two input paths (`recv_buf` + `receive_filled`, and
    /// `receive`).
    pub fn split(&self, cuts: &[usize]) -> Outcome {
        let mut all = self.holds();
        all.extend_from_slice(cuts);
        all.sort_unstable();
        all.dedup();
        self.drive(&all, true, false).0
    }

    /// Where the input pauses for the next request: the offsets at which the
    /// responses before the last one the run asks for end. A server answers
    /// a request only once it was sent, and the connection takes bytes that
    /// arrive before it for unsolicited (`CloseReason::UnsolicitedData`), so
    /// the scripted peer holds its input at the end of each response until
    /// `End` was handed out and the next request sent (a response, once its
    /// last byte arrived, ends without more input: a run asserts it). Found
    /// by running whole: a response whose `End` came with bytes past it
    /// buffered ended at `input_offset()`; run again with a hold there,
    /// until none ends early.
    pub fn holds(&self) -> Vec<usize> {
        let mut holds: Vec<usize> = Vec::new();
        while holds.len() + 1 < self.max_responses {
            match self.drive(&holds, false, true).1 {
                Some(at) => {
                    assert!(holds.last().is_none_or(|&h| h < at), "holds out of order");
                    holds.push(at);
                }
                None => break,
            }
        }
        holds
    }

    fn drive(
        &self,
        cuts: &[usize],
        alternate: bool,
        discovering: bool,
    ) -> (Outcome, Option<usize>) {
        let mut d = Drive {
            run: self,
            conn: Connection::new(self.config.clone()),
            out: Outcome {
                events: Vec::new(),
                error: None,
                consumed: None,
                unsolicited: None,
            },
            fed: 0,
            ended: false,
            events: 0,
            heads: 0,
            ends: 0,
            body_this_msg: 0,
            framing: MessageBodyLength::None,
            handed_out: 0,
            responses: 0,
            finished: false,
            closed: false,
            last_ended: false,
            discovering,
            early_end: None,
            handed_over: None,
            handover_at: 0,
        };
        assert!(!d.conn.wants_receive(), "wants_receive with no request");
        send(&mut d.conn, self.req);
        assert!(d.conn.wants_receive(), "no wants_receive after a request");
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
            if i == last {
                match self.end {
                    End::Open => {}
                    End::Clean => d.conn.receive_eof(),
                    End::Unclean => d.conn.receive_unclean_eof(),
                }
                if self.end != End::Open {
                    d.ended = true;
                    assert!(!d.conn.wants_receive(), "wants_receive after the end");
                }
            }
            d.drain();
        }
        let early_end = d.early_end;
        (d.finish(), early_end)
    }
}

impl Drive<'_, '_> {
    /// Feed through the lent receive buffer; when it is full, poll (the
    /// connection must then make room or end).
    fn feed_lent(&mut self, piece: &[u8]) {
        let mut rest = piece;
        while !rest.is_empty() {
            // A Content-Length body with nothing buffered is read straight
            // into the driver's memory (no event): the bytes must come out
            // as the same body.
            let direct = self.conn.direct_body_room(rest.len());
            if direct > 0 {
                assert!(direct <= rest.len(), "direct room past the limit");
                self.conn.receive_body_direct(direct);
                self.fed += direct;
                self.check_offsets();
                self.body_bytes(direct);
                rest = &rest[direct..];
                continue;
            }
            let buf = self.conn.recv_buf();
            assert!(buf.len() <= self.run.config.recv_buf_size.max(1));
            if buf.is_empty() && self.last_ended {
                // No response outstanding: nothing will make room (the
                // connection is done with; a driver stops reading it).
                self.conn.receive(rest);
                self.fed += rest.len();
                self.check_offsets();
                return;
            }
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

    /// The last `n` bytes proto consumed were body bytes (an
    /// [`Event::Body`], or read straight into the driver's memory): record
    /// them, checking the framing's counts.
    fn body_bytes(&mut self, n: usize) {
        assert_eq!(self.heads, self.ends + 1, "Body outside a response");
        assert_ne!(
            self.framing,
            MessageBodyLength::None,
            "Body for a response without one"
        );
        let b = self.taken(n).to_vec();
        self.body_this_msg += n as u64;
        assert_eq!(self.conn.body_received(), self.body_this_msg);
        if let Some(l) = self.run.config.body_size_limit {
            assert!(self.body_this_msg <= l, "body past body_size_limit");
        }
        self.handed_out += n;
        match self.out.events.last_mut() {
            Some(Out::Body(prev)) => prev.extend_from_slice(&b),
            _ => self.out.events.push(Out::Body(b)),
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
            check_states(&self.conn);
            let before = self.conn.input_offset();
            let bound = 2 * self.fed + 8;
            let wanted = self.conn.wants_receive();
            let r = self.conn.poll_event();
            self.check_offsets();
            // `wants_receive` is exactly "poll_event cannot progress without input".
            if wanted {
                assert_eq!(r, Ok(None), "wants_receive, yet poll_event progressed");
            }
            match r {
                Ok(None) => {
                    let outstanding = matches!(
                        self.conn.recv_state(),
                        RecvState::Head | RecvState::Body | RecvState::Trailers
                    );
                    assert!(
                        !(outstanding && self.ended),
                        "poll_event stalls after the end of input"
                    );
                    assert_eq!(
                        self.conn.wants_receive(),
                        outstanding,
                        "wants_receive after Ok(None) in {:?}",
                        self.conn.recv_state()
                    );
                    check_states(&self.conn);
                    return;
                }
                Ok(Some(ev)) => {
                    assert!(
                        !self.closed,
                        "an event after End on a closed connection: {ev:?}"
                    );
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
                assert_eq!(self.conn.recv_state(), RecvState::Head);
                self.check_head(&h);
                self.handed_out += h.raw().len();
                self.out.events.push(Out::Info(HeadOut::new(&h)));
            }
            Event::Head(h) => {
                assert_eq!(self.heads, self.ends, "two heads in one response");
                self.heads += 1;
                assert!(!(100..200).contains(&h.status()) || h.status() == 101);
                // A declared length past the limit: the head, then the error
                // (already decided: no body byte follows).
                let over = matches!(
                    (h.body_length(), cfg.body_size_limit),
                    (MessageBodyLength::ContentLength(n), Some(l)) if n > l
                );
                if over {
                    assert!(
                        matches!(self.conn.error(), Some(Error::BodyTooLarge { .. })),
                        "Content-Length past body_size_limit accepted"
                    );
                    assert_eq!(self.conn.recv_state(), RecvState::Error);
                } else {
                    assert_eq!(self.conn.recv_state(), RecvState::Body);
                }
                self.check_head(&h);
                self.handed_out += h.raw().len();
                self.body_this_msg = 0;
                self.framing = h.body_length();
                self.out.events.push(Out::Head(HeadOut::new(&h)));
            }
            Event::Body(b) => {
                assert!(!b.is_empty(), "empty Body event");
                assert!(
                    b.len() <= cfg.read_chunk_size.max(1),
                    "Body over read_chunk_size"
                );
                assert_eq!(
                    &b[..],
                    self.taken(b.len()),
                    "body bytes differ from the input"
                );
                self.body_bytes(b.len());
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
                            self.run.end == End::Clean && self.fed == self.run.input.len(),
                            "close-delimited End without a clean end of input"
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
                // Whether EOF, or bytes past the response, had arrived when
                // End was handed out depends on the split; PeerClosed and
                // UnsolicitedData say only that.
                let norm = reason.filter(|r| {
                    !matches!(r, CloseReason::PeerClosed | CloseReason::UnsolicitedData)
                });
                self.out.events.push(Out::End(norm));
                match reason {
                    Some(CloseReason::SwitchingProtocols | CloseReason::Tunnel) => {
                        assert_eq!(self.conn.recv_state(), RecvState::SwitchedProtocol);
                        let at = self.conn.input_offset() as usize;
                        let rem = self.conn.take_remaining();
                        assert_eq!(&rem[..], &self.run.input[at..self.fed]);
                        assert_eq!(self.conn.buffered(), 0);
                        assert!(self.conn.take_remaining().is_empty());
                        assert_eq!(self.conn.poll_event(), Ok(None));
                        assert!(!self.conn.wants_receive());
                        assert_eq!(
                            self.conn.send_request("GET", "/", [("Host", "h")]),
                            Err(Error::ClosedByPeer)
                        );
                        self.handed_out += rem.len();
                        self.handover_at = at;
                        self.handed_over = Some(rem.to_vec());
                    }
                    Some(CloseReason::UnsolicitedData) => {
                        // Bytes past the response, buffered before the next
                        // request: the response stands, the connection goes.
                        assert!(self.conn.buffered() > 0);
                        assert_eq!(self.conn.recv_state(), RecvState::MustClose);
                        assert_eq!(self.conn.send_state(), SendState::MustClose);
                        assert!(matches!(self.conn.reset(), Err(Error::InvalidState { .. })));
                        assert_eq!(
                            self.conn.send_request("GET", "/", [("Host", "h")]),
                            Err(Error::UnsolicitedData)
                        );
                        assert!(!self.conn.wants_transmit());
                        if self.responses < self.run.max_responses {
                            assert!(
                                self.discovering,
                                "response {} ended at {} only after bytes past it were fed",
                                self.responses,
                                self.conn.input_offset()
                            );
                            self.early_end = Some(self.conn.input_offset() as usize);
                            self.finished = true;
                        } else {
                            self.last_ended = true;
                        }
                    }
                    None => {
                        assert_eq!(self.conn.recv_state(), RecvState::Done);
                        self.conn
                            .reset()
                            .expect("reset after End on a reusable connection");
                        assert!(self.conn.is_idle());
                        assert_eq!(self.conn.buffered(), 0);
                        if self.responses < self.run.max_responses {
                            send(&mut self.conn, Req::Get);
                        } else {
                            // Kept idle: the rest of the input answers nothing.
                            self.last_ended = true;
                        }
                    }
                    Some(_) => {
                        assert_eq!(self.conn.recv_state(), RecvState::MustClose);
                        assert!(matches!(self.conn.reset(), Err(Error::InvalidState { .. })));
                        // Keep feeding: anything but empty lines from now on
                        // is DataAfterClose.
                        self.closed = true;
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
        if let Error::UncleanClose { .. } = e {
            assert_eq!(self.run.end, End::Unclean);
            assert_eq!(self.framing, MessageBodyLength::CloseDelimited);
        }
        // After End on a closed connection the only error is stray data, at
        // a byte that is not part of an empty line.
        assert_eq!(
            self.closed,
            matches!(e, Error::DataAfterClose { .. }),
            "{e:?} (closed: {})",
            self.closed
        );
        if let Error::DataAfterClose { offset } = e {
            let b = self.run.input[offset as usize];
            assert!(b != b'\r' && b != b'\n', "DataAfterClose at an empty line");
        }
        // Dead connections stay dead and say so, everywhere.
        for _ in 0..2 {
            assert_eq!(self.conn.poll_event(), Err(e.clone()));
        }
        assert_eq!(self.conn.error(), Some(&e));
        assert_eq!(self.conn.close_reason(), Some(CloseReason::Error));
        assert_eq!(self.conn.send_state(), SendState::Error);
        assert_eq!(self.conn.recv_state(), RecvState::Error);
        assert!(!self.conn.wants_receive());
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
        check_states(&self.conn);
        if let Some(rest) = self.handed_over.take() {
            assert_eq!(&rest[..], &self.run.input[self.handover_at..]);
            self.out.events.push(Out::HandedOver(rest));
        } else if self.out.error.is_none() {
            self.out.consumed = Some(self.conn.input_offset());
        }
        if self.last_ended {
            assert_eq!(self.out.error, None);
            let stray = self.conn.buffered() > 0;
            assert_eq!(
                self.conn.close_reason() == Some(CloseReason::UnsolicitedData),
                stray,
                "unsolicited bytes vs close_reason"
            );
            assert_eq!(
                self.conn.can_reuse() || self.conn.is_idle(),
                !stray && !self.ended
            );
            // Every byte after the last response is buffered, none consumed.
            assert_eq!(
                self.conn.buffered(),
                self.fed - self.conn.input_offset() as usize
            );
            self.out.unsolicited = stray.then(|| self.conn.input_offset());
        }
        // `is_idle` (and the states' `Idle`) is exactly "send_request takes
        // a request now".
        let idle = self.conn.is_idle();
        let at = self.conn.input_offset();
        let sent = self.conn.send_request("GET", "/", [("Host", "h")]);
        assert_eq!(idle, sent.is_ok(), "is_idle vs send_request: {sent:?}");
        if sent.is_err() {
            assert!(
                !self.conn.wants_transmit(),
                "a refused request queued bytes"
            );
        }
        assert_eq!(self.conn.input_offset(), at);
        self.out
    }
}

/// The public states agree with the predicates.
pub fn check_states(conn: &Connection) {
    let (send, recv) = (conn.send_state(), conn.recv_state());
    assert_eq!(
        conn.is_idle(),
        send == SendState::Idle && recv == RecvState::Idle,
        "is_idle vs {send:?}/{recv:?}"
    );
    assert_eq!(
        conn.is_sending_body(),
        matches!(
            send,
            SendState::SendingLength { .. } | SendState::SendingChunked
        ),
        "is_sending_body vs {send:?}"
    );
    if conn.error().is_none() {
        // (MustClose is also an idle connection that received bytes.)
        let idle_unsolicited = recv == RecvState::MustClose
            && conn.close_reason() == Some(CloseReason::UnsolicitedData)
            && !conn.is_response_complete();
        assert_eq!(
            conn.is_response_complete() || idle_unsolicited,
            matches!(
                recv,
                RecvState::Done | RecvState::MustClose | RecvState::SwitchedProtocol
            ),
            "is_response_complete vs {recv:?}"
        );
        assert_eq!(
            conn.can_reuse(),
            recv == RecvState::Done,
            "can_reuse vs {recv:?}"
        );
    }
    if conn.wants_receive() {
        assert!(matches!(
            recv,
            RecvState::Head | RecvState::Body | RecvState::Trailers
        ));
    }
    // Idle means nothing unanswered is buffered and nothing ended reuse.
    if conn.is_idle() {
        assert_eq!(conn.buffered(), 0, "idle with bytes buffered");
        assert_eq!(conn.close_reason(), None, "idle with a close reason");
    }
    if conn.close_reason() == Some(CloseReason::UnsolicitedData) {
        assert!(conn.buffered() > 0);
        // (Closed: idle, and the input ended too.)
        assert!(
            matches!(recv, RecvState::MustClose | RecvState::Closed),
            "{recv:?}"
        );
        assert_eq!(send, SendState::MustClose);
    }
}

/// Feed the run whole and split; both must give the same outcome (up to the
/// first `End` when the input ends: see [`Outcome::up_to_first_end`]).
pub fn check_split_independence(run: &Run<'_>, cuts: &[usize]) -> Outcome {
    let whole = run.whole();
    let split = run.split(cuts);
    let (w, s) = if run.end != End::Open {
        (whole.up_to_first_end(), split.up_to_first_end())
    } else {
        (whole.clone(), split)
    };
    if w != s {
        panic!("whole vs split at {cuts:?} differ:\n whole: {w:?}\n split: {s:?}");
    }
    whole
}

// ------------------------------------------------------------------ tests' builder

/// A [`Run`] built for a test: a GET, default config, a clean end of input,
/// one response. [`check`](Script::check) feeds it whole, byte by byte and in
/// every two-piece split and asserts that all agree.
pub struct Script<'a> {
    pub run: Run<'a>,
}

impl<'a> Script<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Script {
            run: Run {
                config: Config::default(),
                req: Req::Get,
                input,
                end: End::Clean,
                max_responses: 1,
            },
        }
    }
    pub fn config(mut self, config: Config) -> Self {
        self.run.config = config;
        self
    }
    pub fn req(mut self, req: Req) -> Self {
        self.run.req = req;
        self
    }
    /// The input does not end with the last byte: more might come.
    pub fn no_eof(mut self) -> Self {
        self.run.end = End::Open;
        self
    }
    /// End the input with `receive_unclean_eof` instead of `receive_eof`.
    pub fn unclean_eof(mut self) -> Self {
        self.run.end = End::Unclean;
        self
    }
    pub fn responses(mut self, n: usize) -> Self {
        self.run.max_responses = n;
        self
    }

    /// Feed the input split at the given cut points (offsets, ascending).
    pub fn run_split(&self, cuts: &[usize]) -> Outcome {
        self.run.split(cuts)
    }

    pub fn run(&self) -> Outcome {
        self.run.whole()
    }

    /// Run whole, byte by byte, and in every two-piece split; assert all agree.
    pub fn check(&self) -> Outcome {
        let whole = self.run();
        let cuts: Vec<usize> = (1..self.run.input.len()).collect();
        let bytewise = self.run_split(&cuts);
        assert_eq!(whole, bytewise, "whole vs byte-by-byte differ");
        for c in 0..=self.run.input.len() {
            let split = self.run_split(&[c]);
            assert_eq!(whole, split, "whole vs split at {c} differ");
        }
        whole
    }
}
