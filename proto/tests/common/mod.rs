//! A scripted peer for proto: feeds one response stream in arbitrary splits
//! and records what the connection makes of it.
#![allow(dead_code)]

use pollhttp_proto::{CloseReason, Config, Connection, Error, Event, RecvState, SendState};

/// What the connection made of an input, with consecutive body events merged
/// (their split depends on how the input arrived; their bytes must not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Info(u16),
    Head {
        status: u16,
        fields: Vec<(String, String)>,
    },
    Body(Vec<u8>),
    Trailers(Vec<(String, String)>),
    End(Option<CloseReason>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Out>,
    pub error: Option<Error>,
}

impl Outcome {
    pub fn body(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Out::Body(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
    pub fn heads(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Out::Head { status, .. } => Some(*status),
                _ => None,
            })
            .collect()
    }
}

pub struct Script<'a> {
    pub config: Config,
    pub method: &'a str,
    pub input: &'a [u8],
    pub eof: bool,
    /// Report the end of input as unclean (`receive_unclean_eof`).
    pub unclean: bool,
    /// How many request/response cycles to run on the connection.
    pub responses: usize,
}

impl<'a> Script<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Script {
            config: Config::default(),
            method: "GET",
            input,
            eof: true,
            unclean: false,
            responses: 1,
        }
    }
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    pub fn method(mut self, m: &'a str) -> Self {
        self.method = m;
        self
    }
    pub fn no_eof(mut self) -> Self {
        self.eof = false;
        self
    }
    /// End the input with `receive_unclean_eof` instead of `receive_eof`.
    pub fn unclean_eof(mut self) -> Self {
        self.eof = true;
        self.unclean = true;
        self
    }
    pub fn responses(mut self, n: usize) -> Self {
        self.responses = n;
        self
    }

    /// Feed the input split at the given cut points (offsets, ascending).
    pub fn run_split(&self, cuts: &[usize]) -> Outcome {
        let mut conn = Connection::new(self.config.clone());
        let target = if self.method == "CONNECT" {
            "example.com:443"
        } else {
            "/"
        };
        conn.send_request(self.method, target, [("Host", "example.com")])
            .unwrap();
        let n = conn.transmit_buf().len();
        conn.advance_transmit(n);
        let mut out = Outcome {
            events: Vec::new(),
            error: None,
        };
        let mut done = 0;
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for &c in cuts {
            pieces.push(&self.input[prev..c]);
            prev = c;
        }
        pieces.push(&self.input[prev..]);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            // Alternate the two input paths: lent buffer and copied slice.
            if i % 2 == 0 {
                let mut rest = piece;
                while !rest.is_empty() {
                    let buf = conn.recv_buf();
                    if buf.is_empty() {
                        if drain(&mut conn, &mut out, &mut done, self.responses) {
                            return out;
                        }
                        continue;
                    }
                    let n = buf.len().min(rest.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    conn.receive_filled(n);
                    rest = &rest[n..];
                }
            } else {
                conn.receive(piece);
            }
            if i == last && self.eof {
                if self.unclean {
                    conn.receive_unclean_eof();
                } else {
                    conn.receive_eof();
                }
                assert!(
                    !conn.wants_receive(),
                    "wants_receive after the end of input"
                );
            }
            if drain(&mut conn, &mut out, &mut done, self.responses) {
                return out;
            }
        }
        out
    }

    pub fn run(&self) -> Outcome {
        self.run_split(&[])
    }

    /// Run whole, byte by byte, and in every two-piece split; assert all agree.
    pub fn check(&self) -> Outcome {
        let whole = self.run();
        let cuts: Vec<usize> = (1..self.input.len()).collect();
        let bytewise = self.run_split(&cuts);
        assert_eq!(whole, bytewise, "whole vs byte-by-byte differ");
        for c in 1..self.input.len() {
            let split = self.run_split(&[c]);
            assert_eq!(whole, split, "whole vs split at {c} differ");
        }
        whole
    }
}

/// Poll until the connection needs input; true when finished (error or all
/// responses done).
fn drain(conn: &mut Connection, out: &mut Outcome, done: &mut usize, responses: usize) -> bool {
    loop {
        check_states(conn);
        let wanted = conn.wants_receive();
        let polled = conn.poll_event();
        // `wants_receive` is exactly "poll_event cannot progress without input".
        if wanted {
            assert_eq!(polled, Ok(None), "wants_receive but poll_event progressed");
        }
        match polled {
            Ok(None) => {
                let outstanding = matches!(
                    conn.recv_state(),
                    RecvState::Head | RecvState::Body | RecvState::Trailers
                );
                assert_eq!(
                    conn.wants_receive(),
                    outstanding,
                    "wants_receive after Ok(None) in {:?}",
                    conn.recv_state()
                );
                check_states(conn);
                return false;
            }
            Ok(Some(ev)) => match ev {
                Event::Informational(h) => out.events.push(Out::Info(h.status())),
                Event::Head(h) => out.events.push(Out::Head {
                    status: h.status(),
                    fields: h
                        .fields()
                        .iter()
                        .map(|f| {
                            (
                                f.name().to_string(),
                                String::from_utf8_lossy(f.value()).into_owned(),
                            )
                        })
                        .collect(),
                }),
                Event::Body(b) => {
                    assert!(!b.is_empty(), "empty body event");
                    assert!(b.len() <= conn.config().read_chunk_size.max(1));
                    if let Some(Out::Body(prev)) = out.events.last_mut() {
                        prev.extend_from_slice(&b);
                    } else {
                        out.events.push(Out::Body(b.to_vec()));
                    }
                }
                Event::Trailers(t) => out.events.push(Out::Trailers(
                    t.iter()
                        .map(|f| {
                            (
                                f.name().to_string(),
                                String::from_utf8_lossy(f.value()).into_owned(),
                            )
                        })
                        .collect(),
                )),
                Event::End => {
                    out.events.push(Out::End(conn.close_reason()));
                    *done += 1;
                    if *done >= responses || !conn.can_reuse() {
                        return true;
                    }
                    conn.reset().unwrap();
                    conn.send_request("GET", "/", [("Host", "example.com")])
                        .unwrap();
                    let n = conn.transmit_buf().len();
                    conn.advance_transmit(n);
                }
            },
            Err(e) => {
                // Dead connections stay dead and say so.
                assert_eq!(conn.poll_event(), Err(e.clone()));
                assert_eq!(conn.send_state(), SendState::Error);
                assert_eq!(conn.recv_state(), RecvState::Error);
                assert!(!conn.wants_receive());
                out.error = Some(e);
                return true;
            }
        }
    }
}

pub fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
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
        assert_eq!(
            conn.is_response_complete(),
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
}
