//! The end of input (clean or not), `wants_receive`, and the public send and
//! receive states. Every input is fed whole, byte by byte and in every
//! two-piece split; the harness checks at every step that `wants_receive` is
//! exactly "poll_event cannot progress without input" and that the states
//! agree with the predicates.

#![allow(clippy::field_reassign_with_default)]

mod common;
use common::{Out, Req, Script};
use pollhttp_proto::{method, CloseReason, Config, Connection, Error, Event, RecvState, SendState};

/// Inputs ending in every receive state, framed so that the end of input
/// (clean or not) decides nothing but close-delimited bodies.
const NOT_CLOSE_DELIMITED: &[&[u8]] = &[
    b"",
    b"HTTP/1.1 200 OK\r\nContent-Le",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nnew protocol",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
];

#[test]
fn unclean_eof_is_eof_outside_close_delimited_bodies() {
    for input in NOT_CLOSE_DELIMITED {
        let clean = Script::new(input).check();
        let unclean = Script::new(input).unclean_eof().check();
        assert_eq!(clean, unclean, "{:?}", String::from_utf8_lossy(input));
    }
    // Also with the leniency that accepts the last-chunk then EOF.
    let mut config = Config::default();
    config.lenient.last_chunk_then_eof = true;
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n";
    let clean = Script::new(input).config(config.clone()).check();
    assert_eq!(clean.body(), b"abc");
    assert_eq!(clean.error, None);
    assert_eq!(
        Script::new(input).config(config).unclean_eof().check(),
        clean
    );
}

#[test]
fn unclean_eof_fails_a_close_delimited_body() {
    let input = b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nhello";
    let clean = Script::new(input).check();
    assert_eq!(clean.body(), b"hello");
    assert_eq!(clean.error, None);
    assert_eq!(
        clean.events.last(),
        Some(&Out::End(Some(CloseReason::CloseDelimited)))
    );

    let o = Script::new(input).unclean_eof().check();
    // The body bytes that arrived are handed out, then the error; no End.
    assert_eq!(o.body(), b"hello");
    assert!(!o.events.iter().any(|e| matches!(e, Out::End(_))));
    assert_eq!(
        o.error,
        Some(Error::UncleanClose {
            offset: input.len() as u64
        })
    );
    let e = o.error.unwrap();
    assert_eq!(e.kind(), "UncleanClose");
    assert_eq!(e.offset(), Some(input.len() as u64));
    assert!(!e.is_caller_error());

    // An empty close-delimited body, and one framed by a Transfer-Encoding
    // that does not end in chunked (RFC 9112 §6.3 rule 4), likewise.
    let input = b"HTTP/1.1 200 OK\r\n\r\n";
    assert_eq!(
        Script::new(input).unclean_eof().check().error,
        Some(Error::UncleanClose { offset: 19 })
    );
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz";
    let o = Script::new(input).unclean_eof().check();
    assert_eq!(o.body(), b"zz");
    assert_eq!(
        o.error,
        Some(Error::UncleanClose {
            offset: input.len() as u64
        })
    );
}

#[test]
fn the_first_end_of_input_reported_counts() {
    let input = b"HTTP/1.1 200 OK\r\n\r\nab";
    let run = |first_clean: bool| {
        let mut conn = get();
        conn.receive(input);
        if first_clean {
            conn.receive_eof();
            conn.receive_unclean_eof();
        } else {
            conn.receive_unclean_eof();
            conn.receive_eof();
        }
        let mut last = None;
        loop {
            match conn.poll_event() {
                Ok(Some(ev)) => last = Some(ev),
                Ok(None) => return Ok(last),
                Err(e) => return Err(e),
            }
        }
    };
    assert_eq!(run(true), Ok(Some(Event::End)));
    assert_eq!(run(false), Err(Error::UncleanClose { offset: 21 }));
}

fn get() -> Connection {
    let mut conn = Connection::new(Config::default());
    conn.send_request(method::GET, "/", [("Host", "example.com")])
        .unwrap();
    let n = conn.transmit_buf().len();
    conn.advance_transmit(n);
    conn
}

fn next(conn: &mut Connection) -> Option<Event> {
    conn.poll_event().unwrap()
}

#[test]
fn wants_receive_follows_the_input() {
    let mut conn = Connection::new(Config::default());
    assert!(!conn.wants_receive(), "idle");
    conn.send_request(method::GET, "/", [("Host", "a")])
        .unwrap();
    assert!(conn.wants_receive(), "request sent, nothing received");
    conn.receive(b"HTTP/1.1 200 OK\r\nContent-");
    assert!(!conn.wants_receive(), "unexamined input");
    assert_eq!(next(&mut conn), None);
    assert!(conn.wants_receive(), "partial head examined");
    conn.receive(b"Length: 4\r\n\r\nab");
    assert!(!conn.wants_receive());
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert!(!conn.wants_receive(), "body bytes buffered");
    assert_eq!(next(&mut conn), Some(Event::Body("ab".into())));
    assert!(conn.wants_receive(), "body needs more");
    conn.receive(b"cd");
    assert_eq!(next(&mut conn), Some(Event::Body("cd".into())));
    assert!(!conn.wants_receive(), "End is due");
    assert_eq!(next(&mut conn), Some(Event::End));
    assert!(!conn.wants_receive(), "response complete");
    conn.reset().unwrap();
    assert!(!conn.wants_receive(), "idle again");

    // After the end of input: false (poll_event reports what it means).
    conn.send_request(method::GET, "/", [("Host", "a")])
        .unwrap();
    conn.receive(b"HTTP/1.1 200 OK\r\n");
    assert_eq!(next(&mut conn), None);
    assert!(conn.wants_receive());
    conn.receive_eof();
    assert!(!conn.wants_receive());
    assert!(matches!(
        conn.poll_event(),
        Err(Error::IncompleteHead { .. })
    ));
    assert!(!conn.wants_receive(), "dead");

    // A lone CR before the status line, a lone CR of an empty trailer section:
    // examined, more needed.
    let mut conn = get();
    conn.receive(b"\r");
    assert_eq!(next(&mut conn), None);
    assert!(conn.wants_receive());
    conn.receive(b"\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r");
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), None);
    assert_eq!(conn.recv_state(), RecvState::Trailers);
    assert!(conn.wants_receive());
    conn.receive(b"\n");
    assert!(!conn.wants_receive());
    assert_eq!(next(&mut conn), Some(Event::End));

    // Handed over after a 101.
    let mut conn = get();
    conn.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert!(!conn.wants_receive());
    let _ = conn.take_remaining();
    assert!(!conn.wants_receive());
}

#[test]
fn states_through_a_chunked_upload_and_reuse() {
    let mut conn = Connection::new(Config::default());
    assert_eq!(conn.send_state(), SendState::Idle);
    assert_eq!(conn.recv_state(), RecvState::Idle);
    conn.send_request(
        method::POST,
        "/up",
        [("Host", "a"), ("Transfer-Encoding", "chunked")],
    )
    .unwrap();
    assert_eq!(conn.send_state(), SendState::SendingChunked);
    assert_eq!(conn.recv_state(), RecvState::Head);
    conn.send_body(b"abc").unwrap();
    conn.finish().unwrap();
    assert_eq!(conn.send_state(), SendState::Done);
    conn.receive(b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(matches!(next(&mut conn), Some(Event::Informational(_))));
    assert_eq!(conn.recv_state(), RecvState::Head);
    conn.receive(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n");
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(conn.recv_state(), RecvState::Body);
    assert_eq!(next(&mut conn), Some(Event::Body("x".into())));
    assert_eq!(next(&mut conn), None);
    assert_eq!(conn.recv_state(), RecvState::Trailers);
    conn.receive(b"\r\n");
    assert_eq!(next(&mut conn), Some(Event::End));
    assert_eq!(conn.recv_state(), RecvState::Done);
    assert_eq!(conn.send_state(), SendState::Done);
    conn.reset().unwrap();
    assert_eq!(
        (conn.send_state(), conn.recv_state()),
        (SendState::Idle, RecvState::Idle)
    );

    // A Content-Length upload, answered early with Connection: close.
    conn.send_request(method::PUT, "/", [("Host", "a"), ("Content-Length", "10")])
        .unwrap();
    assert_eq!(
        conn.send_state(),
        SendState::SendingLength { remaining: 10 }
    );
    conn.send_body(b"1234").unwrap();
    assert_eq!(conn.send_state(), SendState::SendingLength { remaining: 6 });
    conn.receive(b"HTTP/1.1 413 Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert_eq!(conn.recv_state(), RecvState::MustClose);
    assert_eq!(conn.close_reason(), Some(CloseReason::ConnectionClose));
    assert_eq!(conn.send_state(), SendState::SendingLength { remaining: 6 });
    conn.send_body(b"567890").unwrap();
    assert_eq!(conn.send_state(), SendState::MustClose);
    assert!(conn.reset().is_err());

    // The peer closes an idle connection (see also
    // d8_an_idle_connection_the_peer_closed_is_not_idle).
    let mut conn = Connection::new(Config::default());
    conn.receive_eof();
    assert_eq!(conn.send_state(), SendState::MustClose);
    assert_eq!(conn.recv_state(), RecvState::Closed);
    assert!(!conn.is_idle());
    assert_eq!(
        conn.send_request(method::GET, "/", [("Host", "a")]),
        Err(Error::ClosedByPeer)
    );

    // A tunnel.
    let mut conn = Connection::new(Config::default());
    conn.send_request(method::CONNECT, "a:443", [("Host", "a:443")])
        .unwrap();
    conn.receive(b"HTTP/1.1 200 OK\r\n\r\n\x16\x03");
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(conn.send_state(), SendState::SwitchedProtocol);
    assert_eq!(conn.recv_state(), RecvState::Body);
    assert_eq!(next(&mut conn), Some(Event::End));
    assert_eq!(conn.recv_state(), RecvState::SwitchedProtocol);
    assert_eq!(conn.take_remaining(), &b"\x16\x03"[..]);
    assert_eq!(conn.recv_state(), RecvState::SwitchedProtocol);

    // An error.
    let mut conn = get();
    conn.receive(b"HTTP/1.1 2x0 OK\r\n\r\n");
    assert!(conn.poll_event().is_err());
    assert_eq!(conn.send_state(), SendState::Error);
    assert_eq!(conn.recv_state(), RecvState::Error);
}

#[test]
fn f12_the_request_body_is_finished_before_the_switch() {
    let mut conn = Connection::new(Config::default());
    conn.send_request(
        method::POST,
        "/",
        [("Host", "h"), ("Content-Length", "10"), ("Upgrade", "x")],
    )
    .unwrap();
    conn.send_body(b"abc").unwrap();
    conn.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert_eq!(conn.recv_state(), RecvState::SwitchedProtocol);
    assert_eq!(conn.send_state(), SendState::SendingLength { remaining: 7 });
    conn.send_body(b"defghij").unwrap();
    assert_eq!(conn.send_state(), SendState::SwitchedProtocol);
}

/// Every getter of a connection the peer closed while it was idle, and
/// `send_request`'s answer: one truth.
fn assert_closed_while_idle(conn: &mut Connection, what: &str) {
    assert!(!conn.is_idle(), "{what}: is_idle");
    assert_eq!(conn.send_state(), SendState::MustClose, "{what}");
    assert_eq!(conn.recv_state(), RecvState::Closed, "{what}");
    assert_eq!(conn.close_reason(), Some(CloseReason::PeerClosed), "{what}");
    assert!(!conn.can_reuse(), "{what}: can_reuse");
    assert!(!conn.wants_receive(), "{what}: wants_receive");
    assert!(!conn.is_response_complete(), "{what}");
    assert_eq!(conn.error(), None, "{what}");
    assert_eq!(conn.poll_event(), Ok(None), "{what}: poll_event");
    assert!(
        matches!(conn.reset(), Err(Error::InvalidState { .. })),
        "{what}: reset"
    );
    assert_eq!(
        conn.send_request(method::GET, "/", [("Host", "a")]),
        Err(Error::ClosedByPeer),
        "{what}: send_request"
    );
    // Refused, nothing queued, nothing changed.
    assert!(!conn.wants_transmit(), "{what}");
    assert!(!conn.is_idle(), "{what}: is_idle after the refusal");
    assert_eq!(conn.send_state(), SendState::MustClose, "{what}");
}

#[test]
fn d8_an_idle_connection_the_peer_closed_is_not_idle() {
    for unclean in [false, true] {
        let end = |conn: &mut Connection| {
            if unclean {
                conn.receive_unclean_eof();
            } else {
                conn.receive_eof();
            }
        };
        // A fresh connection.
        let mut conn = Connection::new(Config::default());
        assert!(conn.is_idle());
        end(&mut conn);
        assert_closed_while_idle(&mut conn, &format!("fresh, unclean {unclean}"));

        // A kept connection after its response and reset.
        let mut conn = get();
        conn.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(matches!(next(&mut conn), Some(Event::Head(_))));
        assert_eq!(next(&mut conn), Some(Event::Body("ok".into())));
        assert_eq!(next(&mut conn), Some(Event::End));
        assert!(conn.can_reuse());
        conn.reset().unwrap();
        assert!(conn.is_idle());
        assert_eq!(
            (conn.send_state(), conn.recv_state()),
            (SendState::Idle, RecvState::Idle)
        );
        end(&mut conn);
        assert_closed_while_idle(&mut conn, &format!("kept, unclean {unclean}"));

        // The end of input between End and reset: reset is refused, the
        // connection never becomes idle.
        let mut conn = get();
        conn.receive(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert!(matches!(next(&mut conn), Some(Event::Head(_))));
        assert_eq!(next(&mut conn), Some(Event::End));
        end(&mut conn);
        assert_eq!(conn.close_reason(), Some(CloseReason::PeerClosed));
        assert!(!conn.can_reuse());
        assert_eq!(conn.recv_state(), RecvState::MustClose);
        assert!(matches!(conn.reset(), Err(Error::InvalidState { .. })));
        assert!(!conn.is_idle());
        assert_eq!(
            conn.send_request(method::GET, "/", [("Host", "a")]),
            Err(Error::ClosedByPeer)
        );
    }
}

// ----- D14: bytes past the end of a response answer no request -----

/// A kept-alive response followed, in the same read, by a forged one.
const KEPT_THEN_FORGED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged";
/// Where the forged response starts.
const FORGED_AT: u64 = 40;

/// Every getter of a connection holding bytes that answer no request, and
/// what `reset` and `send_request` do: one truth.
fn assert_unsolicited(conn: &mut Connection, recv: RecvState, what: &str) {
    assert_eq!(
        conn.close_reason(),
        Some(CloseReason::UnsolicitedData),
        "{what}"
    );
    assert!(!conn.can_reuse(), "{what}: can_reuse");
    assert!(!conn.is_idle(), "{what}: is_idle");
    assert_eq!(conn.recv_state(), recv, "{what}");
    assert_eq!(conn.send_state(), SendState::MustClose, "{what}");
    assert!(!conn.wants_receive(), "{what}: wants_receive");
    assert_eq!(conn.error(), None, "{what}: not an error");
    let (at, buffered) = (conn.input_offset(), conn.buffered());
    assert!(buffered > 0, "{what}");
    for _ in 0..2 {
        assert_eq!(conn.poll_event(), Ok(None), "{what}: poll_event");
    }
    assert!(
        matches!(conn.reset(), Err(Error::InvalidState { .. })),
        "{what}: reset"
    );
    assert_eq!(
        conn.send_request(method::GET, "/", [("Host", "a")]),
        Err(Error::UnsolicitedData),
        "{what}: send_request"
    );
    assert!(
        !conn.wants_transmit(),
        "{what}: a refused request queued bytes"
    );
    // Nothing consumed, nothing changed: the verdict stays.
    assert_eq!(
        (conn.input_offset(), conn.buffered()),
        (at, buffered),
        "{what}"
    );
    assert_eq!(
        conn.close_reason(),
        Some(CloseReason::UnsolicitedData),
        "{what}"
    );
}

#[test]
fn d14_bytes_buffered_at_the_end_of_a_kept_response_forbid_reuse() {
    // The client's check after End: `can_reuse() && reset().is_ok()`.
    let mut conn = get();
    conn.receive(KEPT_THEN_FORGED);
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::Body("ok".into())));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert!(conn.is_response_complete());
    assert_eq!(conn.input_offset(), FORGED_AT);
    assert!(!(conn.can_reuse() && conn.reset().is_ok()));
    assert_unsolicited(&mut conn, RecvState::MustClose, "buffered at End");
    // The end of input does not hide it.
    conn.receive_eof();
    assert_unsolicited(&mut conn, RecvState::MustClose, "then the end of input");
    let e = Error::UnsolicitedData;
    assert_eq!(e.kind(), "UnsolicitedData");
    assert_eq!(e.offset(), None);
    assert!(!e.is_caller_error() && !e.is_peer_error());

    // Every byte counts, an empty line too; and bytes past a response
    // without a body (a HEAD answered with one, a 204, a 304).
    for (req, input, len) in [
        (
            Req::Get,
            &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\n"[..],
            38,
        ),
        (
            Req::Head,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            38,
        ),
        (Req::Get, b"HTTP/1.1 204 No Content\r\n\r\nX", 27),
        (Req::Get, b"HTTP/1.1 304 Not Modified\r\n\r\nX", 29),
        (
            Req::Get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\nX",
            58,
        ),
    ] {
        for script in [
            Script::new(input).req(req).no_eof(),
            Script::new(input).req(req),
        ] {
            let o = script.check();
            assert_eq!(o.error, None, "{input:?}");
            assert_eq!(o.events.last(), Some(&Out::End(None)), "{input:?}");
            assert_eq!(o.unsolicited, Some(len), "{input:?}");
            assert_eq!(o.consumed, Some(len), "{input:?}");
        }
    }
}

#[test]
fn d14_the_harness_sees_the_forged_response_as_unsolicited_however_it_arrives() {
    // Whole, byte by byte, every two-piece split; with and without the end
    // of input: the first response is delivered, the forged one never is.
    for script in [
        Script::new(KEPT_THEN_FORGED).no_eof(),
        Script::new(KEPT_THEN_FORGED),
        Script::new(KEPT_THEN_FORGED).unclean_eof(),
    ] {
        let o = script.check();
        assert_eq!(o.heads(), vec![200]);
        assert_eq!(o.body(), b"ok");
        assert_eq!(o.events.last(), Some(&Out::End(None)));
        assert_eq!((o.unsolicited, o.error), (Some(FORGED_AT), None));
    }
    // Nothing after the response: nothing unsolicited.
    let o = Script::new(&KEPT_THEN_FORGED[..FORGED_AT as usize]).check();
    assert_eq!((o.unsolicited, o.error), (None, None));
    // A second response the client asked for is its answer.
    let o = Script::new(KEPT_THEN_FORGED).responses(2).no_eof().check();
    assert_eq!(
        (o.heads(), o.body()),
        (vec![200, 200], b"okforged".to_vec())
    );
    assert_eq!((o.unsolicited, o.error), (None, None));
}

#[test]
fn d14_bytes_after_end_and_before_reset_forbid_reuse() {
    let mut conn = get();
    conn.receive(&KEPT_THEN_FORGED[..FORGED_AT as usize]);
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::Body("ok".into())));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert!(conn.can_reuse());
    assert_eq!(conn.recv_state(), RecvState::Done);
    assert_eq!(conn.send_state(), SendState::Done);
    // Arrives before the client resets: no poll_event needed to see it.
    conn.receive(&KEPT_THEN_FORGED[FORGED_AT as usize..]);
    assert_unsolicited(&mut conn, RecvState::MustClose, "before reset");
}

#[test]
fn d14_bytes_while_idle_forbid_reuse() {
    // A kept connection after reset, and a fresh one.
    let kept = || {
        let mut conn = get();
        conn.receive(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert!(matches!(next(&mut conn), Some(Event::Head(_))));
        assert_eq!(next(&mut conn), Some(Event::End));
        conn.reset().unwrap();
        conn
    };
    for (mut conn, what) in [
        (kept(), "kept"),
        (Connection::new(Config::default()), "fresh"),
    ] {
        assert!(conn.is_idle(), "{what}");
        // A server's 408 on an idle connection, say.
        conn.receive(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n");
        assert_unsolicited(&mut conn, RecvState::MustClose, what);
        // Then the end of input: the input ended (Closed), and the reason
        // stays the more telling one.
        conn.receive_eof();
        assert_unsolicited(&mut conn, RecvState::Closed, what);
    }
    // A lone CRLF too.
    let mut conn = kept();
    conn.receive(b"\r\n");
    assert_unsolicited(&mut conn, RecvState::MustClose, "CRLF");
}

#[test]
fn d14_interim_responses_and_close_verdicts_are_unchanged() {
    // 1xx heads precede the final response: they are its, not unsolicited.
    let mut conn = get();
    conn.receive(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    );
    assert!(matches!(next(&mut conn), Some(Event::Informational(_))));
    assert!(matches!(next(&mut conn), Some(Event::Informational(_))));
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::Body("x".into())));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert!(conn.can_reuse());
    assert_eq!(conn.close_reason(), None);
    conn.reset().unwrap();
    assert!(conn.is_idle());

    // A response that closes the connection keeps its reason; bytes after
    // it are DataAfterClose, as before.
    let mut conn = get();
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    conn.receive(&[&close[..], b"X"].concat());
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert_eq!(conn.close_reason(), Some(CloseReason::ConnectionClose));
    assert_eq!(
        conn.poll_event(),
        Err(Error::DataAfterClose {
            offset: close.len() as u64
        })
    );
    // And a 101's bytes are the new protocol's.
    let mut conn = get();
    conn.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nnew");
    assert!(matches!(next(&mut conn), Some(Event::Head(_))));
    assert_eq!(next(&mut conn), Some(Event::End));
    assert_eq!(conn.close_reason(), Some(CloseReason::SwitchingProtocols));
    assert_eq!(conn.take_remaining(), &b"new"[..]);
}

#[test]
fn a_dead_connection_is_not_sending_a_body() {
    // Found by the response_stream fuzz target once the harness checked the
    // states at the end of every run: is_sending_body stayed true.
    let mut conn = Connection::new(Config::default());
    conn.send_request(
        method::POST,
        "/",
        [("Host", "a"), ("Transfer-Encoding", "chunked")],
    )
    .unwrap();
    conn.send_body(b"abc").unwrap();
    assert!(conn.is_sending_body());
    conn.receive(b"\x97\n");
    let e = conn.poll_event().unwrap_err();
    assert_eq!(conn.send_state(), SendState::Error);
    assert!(!conn.is_sending_body());
    assert_eq!(conn.send_body(b"d"), Err(e.clone()));
    assert_eq!(conn.finish(), Err(e));
}
