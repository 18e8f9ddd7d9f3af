//! Response parsing and framing, one test per rule (RFC 9112 / RFC 9110),
//! each input fed whole, byte by byte and in every two-piece split.

#![allow(clippy::field_reassign_with_default)]

mod common;
use common::{fields, HeadOut, Out, Req, Script};
use pollhttp_proto::{CloseReason, Config, Error, Leniency, MessageBodyLength, Version};

fn lenient(f: impl FnOnce(&mut Leniency)) -> Config {
    let mut c = Config::default();
    f(&mut c.lenient);
    c
}

#[test]
fn content_length_body_and_keep_alive() {
    let o = Script::new(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello")
        .no_eof()
        .check();
    assert_eq!(
        o.events,
        vec![
            Out::Head(HeadOut {
                status: 200,
                version: Version::Http11,
                reason: b"OK".to_vec(),
                fields: fields(&[("Content-Length", "5"), ("X-A", "1")]),
                body: MessageBodyLength::ContentLength(5),
            }),
            Out::Body(b"hello".to_vec()),
            Out::End(None),
        ]
    );
    assert_eq!(o.error, None);
}

#[test]
fn duplicate_fields_kept_in_wire_order() {
    let o = Script::new(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 0\r\nset-cookie: b=2\r\n\r\n",
    )
    .no_eof()
    .check();
    assert_eq!(
        o.first_head(),
        Some((
            200,
            fields(&[
                ("Set-Cookie", "a=1"),
                ("Content-Length", "0"),
                ("set-cookie", "b=2")
            ])
        ))
    );
    assert_eq!(o.events[1], Out::End(None));
}

/// Two responses, each arriving after its request (the harness holds the
/// input at the end of the first until it sent the second request; bytes
/// that come before it answer none: see states.rs, d14_*).
#[test]
fn two_responses_on_one_connection_each_after_its_request() {
    let o = Script::new(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nxyz",
    )
    .no_eof()
    .responses(2)
    .check();
    assert_eq!(o.heads(), vec![200, 404]);
    assert_eq!(o.body(), b"abxyz");
    assert_eq!(o.events.last(), Some(&Out::End(None)));
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
5;name=value;q=\"quoted \\\" str\"\r\nhello\r\n6 ; a\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Two: 2\r\n\r\n";
    let o = Script::new(input).no_eof().check();
    assert_eq!(o.body(), b"hello world");
    assert_eq!(
        o.events[o.events.len() - 2],
        Out::Trailers(fields(&[("X-Checksum", "abc"), ("X-Two", "2")]))
    );
    assert_eq!(o.events.last(), Some(&Out::End(None)));
}

#[test]
fn chunked_events_never_span_chunks_and_respect_read_chunk_size() {
    let mut c = Config::default();
    c.read_chunk_size = 4;
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\na\r\n0123456789\r\n0\r\n\r\n";
    let mut conn = pollhttp_proto::Connection::new(c);
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    conn.receive(input);
    let mut bodies = Vec::new();
    while let Some(ev) = conn.poll_event().unwrap() {
        if let pollhttp_proto::Event::Body(b) = ev {
            bodies.push(b);
        }
    }
    let lens: Vec<usize> = bodies.iter().map(|b| b.len()).collect();
    assert_eq!(lens, vec![3, 4, 4, 2]);
}

#[test]
fn close_delimited_body_ends_at_eof_and_forbids_reuse() {
    let o = Script::new(b"HTTP/1.1 200 OK\r\n\r\nuntil the end").check();
    assert_eq!(o.body(), b"until the end");
    assert_eq!(
        o.events.last(),
        Some(&Out::End(Some(CloseReason::CloseDelimited)))
    );
}

#[test]
fn transfer_encoding_without_final_chunked_is_close_delimited() {
    let o = Script::new(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw").check();
    assert_eq!(o.body(), b"raw");
    assert_eq!(
        o.events.last(),
        Some(&Out::End(Some(CloseReason::CloseDelimited)))
    );
}

#[test]
fn gzip_then_chunked_is_chunked() {
    let o = Script::new(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n")
        .no_eof()
        .check();
    assert_eq!(o.body(), b"z");
    assert_eq!(o.events.last(), Some(&Out::End(None)));
}

#[test]
fn no_body_for_head_204_304() {
    let o = Script::new(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        .req(Req::Head)
        .no_eof()
        .check();
    assert_eq!(o.events.len(), 2);
    assert_eq!(o.events[1], Out::End(None));
    for status in [204, 304] {
        let input = format!("HTTP/1.1 {status} X\r\nContent-Length: 7\r\n\r\n");
        let o = Script::new(input.as_bytes()).no_eof().check();
        assert_eq!(o.heads(), vec![status]);
        assert_eq!(o.events[1], Out::End(None));
    }
}

#[test]
fn interim_responses_are_separate_events() {
    let o = Script::new(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    )
    .no_eof()
    .check();
    assert_eq!(o.infos(), vec![100, 103]);
    assert!(matches!(o.events[..2], [Out::Info(_), Out::Info(_)]));
    assert_eq!(o.heads(), vec![200]);
    assert_eq!(o.body(), b"x");
}

#[test]
fn connect_2xx_hands_over_the_connection() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("CONNECT", "example.com:443", [("Host", "example.com:443")])
        .unwrap();
    assert!(conn
        .transmit_buf()
        .starts_with(b"CONNECT example.com:443 HTTP/1.1\r\n"));
    conn.receive(
        b"HTTP/1.1 200 Connection Established\r\nContent-Length: 99\r\n\r\n\x16\x03\x01tls",
    );
    assert!(matches!(
        conn.poll_event(),
        Ok(Some(pollhttp_proto::Event::Head(_)))
    ));
    assert_eq!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::End)));
    assert_eq!(conn.close_reason(), Some(CloseReason::Tunnel));
    assert_eq!(&conn.take_remaining()[..], b"\x16\x03\x01tls");
    assert_eq!(
        conn.send_request("GET", "/", [("Host", "h")]),
        Err(Error::ClosedByPeer)
    );
}

#[test]
fn connect_non_2xx_has_a_body() {
    let o = Script::new(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
        .req(Req::Connect)
        .no_eof()
        .check();
    assert_eq!(o.body(), b"no");
    assert_eq!(o.events.last(), Some(&Out::End(None)));
}

#[test]
fn switching_protocols_ends_http() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request(
        "GET",
        "/ws",
        [
            ("Host", "h"),
            ("Upgrade", "websocket"),
            ("Connection", "upgrade"),
        ],
    )
    .unwrap();
    conn.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00");
    assert!(
        matches!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::Head(h))) if h.status() == 101)
    );
    assert_eq!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::End)));
    assert_eq!(conn.close_reason(), Some(CloseReason::SwitchingProtocols));
    assert_eq!(&conn.take_remaining()[..], b"\x81\x00");
}

#[test]
fn keep_alive_verdicts() {
    let cases: &[(&[u8], Option<CloseReason>)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Some(CloseReason::Http10)),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", None),
        (b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", Some(CloseReason::ConnectionClose)),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 0\r\n\r\n", Some(CloseReason::ConnectionClose)),
        (b"HTTP/1.1 200 OK\r\nConnection: upgrade\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", Some(CloseReason::ConnectionClose)),
        (b"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", None),
    ];
    for (input, want) in cases {
        let o = Script::new(input).no_eof().check();
        assert_eq!(
            o.events.last(),
            Some(&Out::End(*want)),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn request_connection_close_forbids_reuse() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("GET", "/", [("Host", "h"), ("Connection", "close")])
        .unwrap();
    conn.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    conn.poll_event().unwrap();
    assert_eq!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::End)));
    assert_eq!(conn.close_reason(), Some(CloseReason::RequestedClose));
    assert!(!conn.can_reuse());
    assert!(matches!(conn.reset(), Err(Error::InvalidState { .. })));
}

#[test]
fn early_final_response_is_delivered_and_forbids_reuse() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request(
        "POST",
        "/upload",
        [("Host", "h"), ("Content-Length", "1000")],
    )
    .unwrap();
    conn.send_body(&[0; 10]).unwrap();
    conn.receive(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!");
    assert!(
        matches!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::Head(h))) if h.status() == 413)
    );
    assert_eq!(
        conn.poll_event(),
        Ok(Some(pollhttp_proto::Event::Body("big!".into())))
    );
    assert_eq!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::End)));
    assert_eq!(conn.close_reason(), Some(CloseReason::EarlyResponse));
}

// ----- errors, with their exact offsets -----

fn err(input: &[u8]) -> Error {
    Script::new(input).check().error.expect("an error")
}

#[test]
fn content_length_rules() {
    let head = b"HTTP/1.1 200 OK\r\n".len() as u64;
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc"),
        Error::InvalidContentLength { offset: head }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 3a\r\n\r\nabc"),
        Error::InvalidContentLength { offset: head }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        Error::InvalidContentLength { offset: head }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        Error::ConflictingContentLength { offset: head + 19 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd"),
        Error::ConflictingContentLength { offset: head }
    );
    // Identical values are one length (RFC 9110 §8.6).
    let o = Script::new(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc")
        .no_eof()
        .check();
    assert_eq!(o.body(), b"abc");
}

#[test]
fn transfer_encoding_with_content_length_rejected_by_default() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(
        err(input),
        Error::ContentLengthWithTransferEncoding { offset: 0 }
    );
    let o = Script::new(input)
        .config(lenient(|l| l.content_length_with_transfer_encoding = true))
        .no_eof()
        .check();
    assert_eq!(o.body(), b"abc");
    assert_eq!(
        o.events.last(),
        Some(&Out::End(Some(
            CloseReason::ContentLengthWithTransferEncoding
        )))
    );
}

#[test]
fn transfer_encoding_errors() {
    assert_eq!(
        err(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Error::TransferEncodingInHttp10 { offset: 17 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        Error::InvalidTransferEncoding { offset: 17 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n"),
        Error::InvalidTransferEncoding { offset: 17 }
    );
}

const CH: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

fn chunked(body: &[u8]) -> Vec<u8> {
    [CH, body].concat()
}

#[test]
fn chunk_size_rules() {
    let h = CH.len() as u64;
    assert_eq!(
        err(&chunked(b"+3\r\nabc\r\n0\r\n\r\n")),
        Error::InvalidChunkSize { offset: h }
    );
    assert_eq!(
        err(&chunked(b" 3\r\nabc\r\n0\r\n\r\n")),
        Error::InvalidChunkSize { offset: h }
    );
    assert_eq!(
        err(&chunked(b"3 \r\nabc\r\n0\r\n\r\n")),
        Error::InvalidChunkSize { offset: h + 2 }
    );
    assert_eq!(
        err(&chunked(b"0x3\r\nabc\r\n0\r\n\r\n")),
        Error::InvalidChunkSize { offset: h + 1 }
    );
    assert_eq!(
        err(&chunked(b"10000000000000000\r\n")),
        Error::ChunkSizeOverflow { offset: h + 16 }
    );
    // 16 digits fit; the body limit is what stops it then.
    let mut c = Config::default();
    c.body_size_limit = Some(1000);
    let o = Script::new(&chunked(b"ffffffffffffffff\r\n"))
        .config(c)
        .check();
    assert!(matches!(
        o.error,
        Some(Error::BodyTooLarge { limit: 1000, .. })
    ));
}

#[test]
fn chunk_line_endings_are_exact() {
    let h = CH.len() as u64;
    assert_eq!(
        err(&chunked(b"3\nabc\r\n0\r\n\r\n")),
        Error::InvalidChunkLineEnding { offset: h + 1 }
    );
    assert_eq!(
        err(&chunked(b"3\rabc\r\n0\r\n\r\n")),
        Error::InvalidChunkLineEnding { offset: h + 2 }
    );
    assert_eq!(
        err(&chunked(b"3\r\nabcXY0\r\n\r\n")),
        Error::MissingChunkDataCrlf { offset: h + 6 }
    );
    assert_eq!(
        err(&chunked(b"3\r\nabc\rX0\r\n\r\n")),
        Error::MissingChunkDataCrlf { offset: h + 7 }
    );
    assert_eq!(
        err(&chunked(b"3\r\nabc\n0\r\n\r\n")),
        Error::MissingChunkDataCrlf { offset: h + 6 }
    );
    assert_eq!(
        err(&chunked(b"3\r\nabc\r\n0\r\n\rX")),
        Error::InvalidChunkLineEnding { offset: h + 12 }
    );
}

#[test]
fn chunk_extensions_parsed_and_bounded() {
    let h = CH.len() as u64;
    assert_eq!(
        err(&chunked(b"3;\r\nabc\r\n")),
        Error::InvalidChunkExtension { offset: h + 2 }
    );
    assert_eq!(
        err(&chunked(b"3;a=\r\nabc\r\n")),
        Error::InvalidChunkExtension { offset: h + 4 }
    );
    assert_eq!(
        err(&chunked(b"3;a=\"x\nabc\r\n")),
        Error::InvalidChunkExtension { offset: h + 6 }
    );
    assert_eq!(
        err(&chunked(b"3;a b\r\nabc\r\n")),
        Error::InvalidChunkExtension { offset: h + 4 }
    );
    let mut c = Config::default();
    c.max_chunk_extension_bytes = 8;
    let o = Script::new(&chunked(b"3;abcdefghijkl\r\nabc\r\n0\r\n\r\n"))
        .config(c.clone())
        .check();
    assert_eq!(
        o.error,
        Some(Error::ChunkExtensionTooLarge {
            offset: h + 9,
            limit: 8
        })
    );
    // The bound is per message: many small extensions add up.
    let o = Script::new(&chunked(b"1;abcd\r\na\r\n1;abcd\r\nb\r\n0\r\n\r\n"))
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::ChunkExtensionTooLarge {
            offset: h + 15,
            limit: 8
        })
    );
    assert_eq!(o.body(), b"a", "bytes already handed out stay handed out");
}

#[test]
fn trailer_rules() {
    let h = CH.len() as u64;
    let mut c = Config::default();
    c.max_trailer_bytes = 20;
    let o = Script::new(&chunked(b"0\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"))
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::TrailerTooLarge {
            offset: h + 3 + 20,
            limit: 20
        })
    );
    let mut c = Config::default();
    c.max_trailer_fields = 1;
    let o = Script::new(&chunked(b"0\r\nA: 1\r\nB: 2\r\n\r\n"))
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::TooManyTrailerFields {
            offset: h + 3,
            limit: 1
        })
    );
    assert_eq!(
        err(&chunked(b"0\r\nBad Name: 1\r\n\r\n")),
        Error::InvalidTrailerField { offset: h + 6 }
    );
    assert_eq!(
        err(&chunked(b"0\r\nA: 1\n\r\n")),
        Error::BareLineFeed { offset: h + 7 }
    );
}

#[test]
fn eof_errors_say_what_was_missing() {
    assert_eq!(
        err(b""),
        Error::IncompleteHead {
            offset: 0,
            received: 0
        }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nConte"),
        Error::IncompleteHead {
            offset: 22,
            received: 22
        }
    );
    let o = Script::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello").check();
    assert_eq!(
        o.body(),
        b"hello",
        "bytes received before the cut stay handed out"
    );
    assert_eq!(
        o.error,
        Some(Error::IncompleteBody {
            offset: 44,
            expected: 10,
            received: 5
        })
    );
    let o = Script::new(&chunked(b"5\r\nhello\r\n3\r\nab")).check();
    assert_eq!(o.body(), b"helloab");
    assert_eq!(
        o.error,
        Some(Error::IncompleteChunkedBody {
            offset: CH.len() as u64 + 15,
            received: 7
        })
    );
    // A chunked body ended by "0\r\n" and EOF: an error unless lenient.
    let input = chunked(b"1\r\na\r\n0\r\n");
    assert_eq!(
        err(&input),
        Error::LastChunkThenEof {
            offset: input.len() as u64,
            received: 1
        }
    );
    let o = Script::new(&input)
        .config(lenient(|l| l.last_chunk_then_eof = true))
        .check();
    assert_eq!(o.error, None);
    // (The harness records `End` without `PeerClosed`; see f7 for it.)
    assert_eq!(o.events.last(), Some(&Out::End(None)));
}

#[test]
fn head_rules() {
    assert_eq!(
        err(b"HTTP/2.0 200 OK\r\n\r\n"),
        Error::InvalidVersion { offset: 5 }
    );
    assert_eq!(
        err(b"HTTP/1.2 200 OK\r\n\r\n"),
        Error::InvalidVersion { offset: 7 }
    );
    assert_eq!(
        err(b"HTTP/1.1 20 OK\r\n\r\n"),
        Error::InvalidStatusCode { offset: 11 }
    );
    assert_eq!(
        err(b"HTTP/1.1 2000 OK\r\n\r\n"),
        Error::InvalidStatusCode { offset: 12 }
    );
    assert_eq!(
        err(b"HTTP/1.1 099 OK\r\n\r\n"),
        Error::InvalidStatusCode { offset: 9 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n"),
        Error::WhitespaceBeforeColon { offset: 21 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nNa(me: v\r\n\r\n"),
        Error::InvalidFieldName { offset: 19 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nName: a\x01b\r\n\r\n"),
        Error::InvalidFieldValue { offset: 24 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nName: a\r\n b\r\n\r\n"),
        Error::ObsFold { offset: 26 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
        Error::BareLineFeed { offset: 15 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"),
        Error::BareLineFeed { offset: 34 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"),
        Error::BareLineFeed { offset: 36 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"),
        Error::BareCarriageReturn { offset: 22 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n"),
        Error::BareCarriageReturn { offset: 22 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\rX\r\n\r\n"),
        Error::BareCarriageReturn { offset: 16 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\n\rX"),
        Error::BareCarriageReturn { offset: 18 }
    );
    // No reason phrase is fine (RFC 9112 §4).
    let o = Script::new(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
        .no_eof()
        .check();
    assert_eq!(o.heads(), vec![200]);
}

#[test]
fn bare_lf_leniency() {
    let input = b"HTTP/1.1 200 OK\nContent-Length: 2\nX: y\n\nok";
    let o = Script::new(input)
        .config(lenient(|l| l.bare_lf = true))
        .no_eof()
        .check();
    assert_eq!(o.body(), b"ok");
    assert_eq!(
        o.first_head(),
        Some((200, fields(&[("Content-Length", "2"), ("X", "y")])))
    );
}

#[test]
fn whitespace_before_colon_leniency_takes_the_name_without_it() {
    let input = b"HTTP/1.1 200 OK\r\nX-Pad \t: y\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(err(input), Error::WhitespaceBeforeColon { offset: 22 });
    let o = Script::new(input)
        .config(lenient(|l| l.whitespace_before_colon = true))
        .no_eof()
        .check();
    assert_eq!(o.body(), b"ok");
    assert_eq!(
        o.first_head(),
        Some((200, fields(&[("X-Pad", "y"), ("Content-Length", "2")])))
    );
}

#[test]
fn obs_fold_leniency_unfolds() {
    let input = b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 0\r\n\r\n";
    let o = Script::new(input)
        .config(lenient(|l| l.obs_fold = true))
        .no_eof()
        .check();
    assert_eq!(
        o.first_head(),
        Some((
            200,
            fields(&[("X-Folded", "a    b"), ("Content-Length", "0")])
        ))
    );
}

#[test]
fn head_limit_holds_however_bytes_arrive() {
    let mut c = Config::default();
    c.max_head_bytes = 64;
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(60));
    let o = Script::new(big.as_bytes()).config(c.clone()).check();
    assert_eq!(
        o.error,
        Some(Error::HeadTooLarge {
            offset: 64,
            limit: 64
        })
    );
    // Exactly at the limit is fine.
    let fit = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(64 - 24));
    assert_eq!(fit.len(), 64);
    let o = Script::new(fit.as_bytes()).config(c).no_eof().check();
    assert_eq!(o.error, None);
    // Field count too.
    let mut c = Config::default();
    c.max_fields = 2;
    let o = Script::new(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::TooManyFields {
            offset: 0,
            limit: 2
        })
    );
}

#[test]
fn body_limit_for_each_framing() {
    let mut c = Config::default();
    c.body_size_limit = Some(4);
    // Content-Length: the head (it says what is refused), then the error
    // before any body byte.
    let o = Script::new(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        .config(c.clone())
        .check();
    assert_eq!(
        o.error,
        Some(Error::BodyTooLarge {
            offset: 38,
            limit: 4
        })
    );
    assert_eq!(o.events.len(), 1);
    assert!(
        matches!(&o.events[0], Out::Head(h) if h.status == 200),
        "{:?}",
        o.events
    );
    assert_eq!(o.body(), b"");
    // At the limit: fine.
    let o = Script::new(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell")
        .config(c.clone())
        .no_eof()
        .check();
    assert_eq!(o.body(), b"hell");
    // Chunked: at the chunk-size that passes it; nothing of that chunk handed out.
    let o = Script::new(&chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))
        .config(c.clone())
        .check();
    assert_eq!(o.body(), b"abc");
    assert_eq!(
        o.error,
        Some(Error::BodyTooLarge {
            offset: CH.len() as u64 + 11,
            limit: 4
        })
    );
    // Close-delimited: up to the limit, then the error.
    let o = Script::new(b"HTTP/1.1 200 OK\r\n\r\nhello")
        .config(c)
        .check();
    assert_eq!(o.body(), b"hell");
    assert_eq!(
        o.error,
        Some(Error::BodyTooLarge {
            offset: 23,
            limit: 4
        })
    );
}

#[test]
fn request_smuggling_cases_of_rfc9112_section_11_2() {
    // A second response hidden in a body must never be parsed as a response.
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    assert!(matches!(
        err(input),
        Error::ContentLengthWithTransferEncoding { .. }
    ));
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello";
    assert!(matches!(err(input), Error::ConflictingContentLength { .. }));
    // Bare LF in a chunk-size line (Go CVE-2025-22871).
    assert!(matches!(
        err(&chunked(b"3;x\nabc\r\n0\r\n\r\n")),
        Error::InvalidChunkExtension { .. }
    ));
}

#[test]
fn dead_connection_stays_dead() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    conn.receive(b"HTTP/9.9 200 OK\r\n\r\n");
    let e = conn.poll_event().unwrap_err();
    assert_eq!(conn.poll_event(), Err(e.clone()));
    assert_eq!(conn.send_body(b"x"), Err(e.clone()));
    assert_eq!(conn.reset(), Err(e.clone()));
    assert_eq!(conn.close_reason(), Some(CloseReason::Error));
    assert_eq!(conn.error(), Some(&e));
}

#[test]
fn idle_close_is_detected() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.receive_eof();
    assert_eq!(
        conn.send_request("GET", "/", [("Host", "h")]),
        Err(Error::ClosedByPeer)
    );
}

// ----- regressions found by the fuzz targets (fuzz/FINDINGS.md) -----

#[test]
fn f1_limits_hold_before_later_errors_whatever_the_split() {
    let mut c = Config::default();
    c.max_head_bytes = 20;
    let o = Script::new(b"HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n")
        .config(c.clone())
        .check();
    assert_eq!(
        o.error,
        Some(Error::HeadTooLarge {
            offset: 20,
            limit: 20
        })
    );
    c.max_fields = 0;
    let o = Script::new(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n")
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::HeadTooLarge {
            offset: 20,
            limit: 20
        })
    );
    let mut c = Config::default();
    c.max_trailer_bytes = 5;
    let o = Script::new(&chunked(b"0\r\nAAAAAAA: b\x01\r\n\r\n"))
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::TrailerTooLarge {
            offset: CH.len() as u64 + 3 + 5,
            limit: 5
        })
    );
}

#[test]
fn f2_f9_empty_lines_before_the_status_line() {
    // CRLF pairs are skipped (a stray CRLF after the previous body); the head
    // and its checks start at the status line.
    let o = Script::new(b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
        .no_eof()
        .check();
    assert_eq!(
        o.first_head(),
        Some((200, fields(&[("Content-Length", "1")])))
    );
    assert_eq!(o.body(), b"x");
    assert_eq!(
        err(b"\r\nHTTP/1.1 200 OK\n\r\n"),
        Error::BareLineFeed { offset: 17 }
    );
    assert_eq!(
        err(b"\r\n\nHTTP/1.1 103\r\n\r\n"),
        Error::BareLineFeed { offset: 2 }
    );
    assert_eq!(
        err(b"\r\nHTTP/1.1 099 X\r\n\r\n"),
        Error::InvalidStatusCode { offset: 11 }
    );
    let o = Script::new(b"\nHTTP/1.1 204 X\n\n")
        .config(lenient(|l| l.bare_lf = true))
        .no_eof()
        .check();
    assert_eq!(o.heads(), vec![204]);
}

#[test]
fn f4_f5_chunk_extension_whitespace() {
    let h = CH.len() as u64;
    let mut c = Config::default();
    c.max_chunk_extension_bytes = 0;
    let o = Script::new(&chunked(b"5\t;a\r\nhello\r\n0\r\n\r\n"))
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::ChunkExtensionTooLarge {
            offset: h + 1,
            limit: 0
        })
    );
    // BWS only before ";" or "=" (RFC 9112 §7.1.1), never before the CRLF.
    assert_eq!(
        err(&chunked(b"5;a \r\nhello\r\n0\r\n\r\n")),
        Error::InvalidChunkExtension { offset: h + 4 }
    );
    assert_eq!(
        err(&chunked(b"5;a=b\t\r\nhello\r\n0\r\n\r\n")),
        Error::InvalidChunkExtension { offset: h + 6 }
    );
    let o = Script::new(&chunked(b"5 ; a = \"q\" ; b\r\nhello\r\n0;z=\"\"\r\n\r\n"))
        .no_eof()
        .check();
    assert_eq!((o.body(), o.error), (b"hello".to_vec(), None));
}

#[test]
fn f6_reason_phrase_with_obs_text_is_kept() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    conn.receive(b"HTTP/1.1 200 \xc3\xa9t\xc3\xa9 ok\r\nContent-Length: 0\r\n\r\n");
    let Ok(Some(pollhttp_proto::Event::Head(h))) = conn.poll_event() else {
        panic!()
    };
    assert_eq!(h.reason(), b"\xc3\xa9t\xc3\xa9 ok");
    assert_eq!(h.reason_str(), "\u{e9}t\u{e9} ok");
}

#[test]
fn f7_no_reset_after_the_peer_closed() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    conn.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    conn.receive_eof();
    conn.poll_event().unwrap();
    assert_eq!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::End)));
    assert_eq!(conn.close_reason(), Some(CloseReason::PeerClosed));
    assert!(matches!(conn.reset(), Err(Error::InvalidState { .. })));
}

#[test]
fn f8_every_obs_fold_is_unfolded() {
    let o = Script::new(b"HTTP/1.1 200 OK\r\nA: a\r\n \r\nB:\r\n\tb\r\nContent-Length: 0\r\n\r\n")
        .config(lenient(|l| l.obs_fold = true))
        .no_eof()
        .check();
    assert_eq!(
        o.first_head(),
        Some((
            200,
            fields(&[("A", "a"), ("B", "b"), ("Content-Length", "0")])
        ))
    );
    // A fold with a bare LF is still a bare LF in strict line-ending mode.
    let o = Script::new(b"HTTP/1.1 200 OK\r\nA: a\n b\r\n\r\n")
        .config(lenient(|l| l.obs_fold = true))
        .check();
    assert_eq!(o.error, Some(Error::BareLineFeed { offset: 21 }));
}

#[test]
fn f10_a_lone_cr_never_stalls_a_tiny_buffer() {
    let mut c = Config::default();
    c.max_head_bytes = 0;
    c.max_trailer_bytes = 0;
    c.recv_buf_size = 1;
    let mut conn = pollhttp_proto::Connection::new(c);
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    for (i, &b) in b"\r\nH".iter().enumerate() {
        let buf = conn.recv_buf();
        assert!(!buf.is_empty(), "no room for byte {i}");
        buf[0] = b;
        conn.receive_filled(1);
        if let Err(e) = conn.poll_event() {
            assert_eq!(
                e,
                Error::HeadTooLarge {
                    offset: 2,
                    limit: 0
                }
            );
            return;
        }
    }
    panic!("expected HeadTooLarge");
}

#[test]
fn f11_bare_lf_ending_a_folded_line_is_still_bare() {
    let folding = lenient(|l| l.obs_fold = true);
    let o = Script::new(b"HTTP/1.1 200 OK\r\nA: b\r\n \n\r\n")
        .config(folding.clone())
        .check();
    assert_eq!(o.error, Some(Error::BareLineFeed { offset: 24 }));
    let o = Script::new(b"HTTP/1.1 200 OK\r\nA: b\r\n c\nContent-Length: 0\r\n\r\n")
        .config(folding)
        .check();
    assert_eq!(o.error, Some(Error::BareLineFeed { offset: 25 }));
}

#[test]
fn an_empty_trailer_section_is_never_over_the_limit() {
    // No limit counts the empty line that ends a chunked body, however the
    // CR and LF arrive.
    let mut c = Config::default();
    c.max_trailer_bytes = 0;
    c.recv_buf_size = 1;
    let o = Script::new(&chunked(b"1\r\na\r\n0\r\n\r\n"))
        .config(c.clone())
        .no_eof()
        .check();
    assert_eq!((o.body(), o.error), (b"a".to_vec(), None));
    let o = Script::new(&chunked(b"0\r\nX: y\r\n\r\n"))
        .config(c)
        .check();
    assert_eq!(
        o.error,
        Some(Error::TrailerTooLarge {
            offset: CH.len() as u64 + 3,
            limit: 0
        })
    );
}

#[test]
fn data_after_a_close_response_is_an_error_after_its_end() {
    // The response is delivered whole, End included; then the stray bytes
    // (a desynchronised or smuggling peer) are an error, however they arrive.
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let stray = [&close[..], b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"].concat();
    for o in [
        Script::new(&stray).no_eof().check(),
        Script::new(&stray).check(),
    ] {
        assert_eq!(o.body(), b"ok");
        assert_eq!(
            o.events.last(),
            Some(&Out::End(Some(CloseReason::ConnectionClose)))
        );
        assert_eq!(
            o.error,
            Some(Error::DataAfterClose {
                offset: close.len() as u64 + 4
            })
        );
    }
    // Empty lines alone are skipped, as before a status line.
    let o = Script::new(&[&close[..], b"\r\n\n\r"].concat())
        .no_eof()
        .check();
    assert_eq!((o.body(), o.error), (b"ok".to_vec(), None));
    // HTTP/1.0 without keep-alive, and a request that asked to close, too.
    let o = Script::new(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\nX")
        .no_eof()
        .check();
    assert_eq!(o.error, Some(Error::DataAfterClose { offset: 38 }));
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("GET", "/", [("Host", "h"), ("Connection", "close")])
        .unwrap();
    conn.receive(b"HTTP/1.1 204 No Content\r\n\r\n");
    assert!(matches!(
        conn.poll_event(),
        Ok(Some(pollhttp_proto::Event::Head(_)))
    ));
    assert_eq!(conn.poll_event(), Ok(Some(pollhttp_proto::Event::End)));
    assert_eq!(conn.poll_event(), Ok(None));
    conn.receive(b"\r\nX");
    assert_eq!(conn.poll_event(), Err(Error::DataAfterClose { offset: 29 }));
    // On a reusable connection a response that arrives after the next
    // request answers it (bytes before it answer none: see states.rs,
    // d14_*), and after a 101 the bytes are the new protocol's.
    let o = Script::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 204 X\r\n\r\n")
        .no_eof()
        .responses(2)
        .check();
    assert_eq!((o.heads(), o.error), (vec![200, 204], None));
    let o = Script::new(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nX")
        .no_eof()
        .check();
    assert_eq!(o.events.last(), Some(&Out::HandedOver(b"X".to_vec())));
    assert_eq!(o.error, None);
}

#[test]
fn f13_a_head_is_judged_when_it_is_decided_whatever_the_splits() {
    // A broken field line without the head's empty line: nothing yet,
    // however it arrived (a parse of whatever had arrived made the outcome
    // depend on the splits).
    let broken = b"HTTP/1.1 200 OK\r\nX-A: b\0c\r\n\x0c\n";
    let o = Script::new(broken).no_eof().check();
    assert_eq!((o.events.len(), o.error), (0, None));
    // Decided by its end, ...
    let o = Script::new(&[&broken[..], b"\r\n"].concat())
        .no_eof()
        .check();
    assert_eq!(o.error, Some(Error::InvalidFieldValue { offset: 23 }));
    // ... by the end of input, ...
    assert_eq!(err(broken), Error::InvalidFieldValue { offset: 23 });
    // ... or by the limit.
    let mut c = Config::default();
    c.max_head_bytes = 26;
    let o = Script::new(broken).config(c).no_eof().check();
    assert_eq!(o.error, Some(Error::InvalidFieldValue { offset: 23 }));

    // The fuzz finding's own input broke its status line, which is decided
    // by the line's end (see d13_*): before it, nothing yet.
    let broken = b"HTTP/1.1 500 Oo.\x8asHTTP\0\0\r\n\x0c\n";
    let o = Script::new(&broken[..24]).no_eof().check();
    assert_eq!((o.events.len(), o.error), (0, None));
    let o = Script::new(broken).no_eof().check();
    assert_eq!(o.error, Some(Error::InvalidStatusLine { offset: 22 }));
    assert_eq!(err(&broken[..24]), Error::InvalidStatusLine { offset: 22 });
}

#[test]
fn the_receive_room_starts_small_grows_on_full_reads_and_starts_over_per_response() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    let n = conn.transmit_buf().len();
    conn.advance_transmit(n);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n";
    let buf = conn.recv_buf();
    assert_eq!(buf.len(), 8 * 1024);
    buf[..head.len()].copy_from_slice(head);
    // A short read: the room stays.
    conn.receive_filled(head.len());
    let mut rooms = Vec::new();
    let (mut body, mut ended) = (0usize, false);
    while body < 200_000 {
        while let Some(ev) = conn.poll_event().unwrap() {
            match ev {
                pollhttp_proto::Event::Body(b) => body += b.len(),
                pollhttp_proto::Event::End => ended = true,
                _ => {}
            }
        }
        if body >= 200_000 {
            break;
        }
        let buf = conn.recv_buf();
        let n = buf.len().min(200_000 - body);
        rooms.push(buf.len());
        buf[..n].fill(b'x');
        conn.receive_filled(n);
    }
    // Full reads double it up to recv_buf_size (64 KiB), where it stays.
    assert_eq!(
        &rooms[..5],
        &[
            8 * 1024 - head.len(),
            16 * 1024,
            32 * 1024,
            64 * 1024,
            64 * 1024
        ]
    );
    assert!(rooms.iter().all(|&r| r <= 64 * 1024));
    if !ended {
        assert_eq!(conn.poll_event().unwrap(), Some(pollhttp_proto::Event::End));
    }
    // The next response starts over.
    conn.reset().unwrap();
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    assert_eq!(conn.recv_buf().len(), 8 * 1024);
    // A receive buffer smaller than the first room is the room.
    let mut c = Config::default();
    c.recv_buf_size = 1000;
    let mut small = pollhttp_proto::Connection::new(c);
    small.send_request("GET", "/", [("Host", "h")]).unwrap();
    assert_eq!(small.recv_buf().len(), 1000);
}

// ----- D13: an invalid status line is reported when its line is complete -----

#[test]
fn d13_an_invalid_status_line_is_reported_at_its_line_end_whatever_the_splits() {
    // (input without the end of input, error) — the head never ends, so each
    // error comes from the status line alone, under every split.
    let cases: &[(&[u8], Error)] = &[
        (
            b"HTTP/1.1 2x0 OK\r\n",
            Error::InvalidStatusCode { offset: 10 },
        ),
        (
            b"HTTP/1.1 099 X\r\n",
            Error::InvalidStatusCode { offset: 9 },
        ),
        (b"HTTP/1.1 200 OK\n", Error::BareLineFeed { offset: 15 }),
        (b"HTTP/1.2 200 OK\r\n", Error::InvalidVersion { offset: 7 }),
        (b"XTTP/1.1 200 OK\r\n", Error::InvalidVersion { offset: 0 }),
        (
            b"HTTP/1.1 200 O\rK\r\n",
            Error::BareCarriageReturn { offset: 15 },
        ),
        (
            b"HTTP/1.1 200 OK\x7f\r\n",
            Error::InvalidStatusLine { offset: 15 },
        ),
        // After empty lines, and with a field line on its way.
        (
            b"\r\n\r\nHTTP/1.1 099 X\r\n",
            Error::InvalidStatusCode { offset: 13 },
        ),
        (
            b"HTTP/1.1 099 X\r\nContent-Le",
            Error::InvalidStatusCode { offset: 9 },
        ),
        // Before an error in a field line, and before the head's end.
        (
            b"HTTP/1.1 099 X\r\nA\0: b\r\n\r\n",
            Error::InvalidStatusCode { offset: 9 },
        ),
        (
            b"HTTP/1.1 2x0 OK\r\nA\0: b\r\n\r\n",
            Error::InvalidStatusCode { offset: 10 },
        ),
    ];
    for (input, error) in cases {
        let what = String::from_utf8_lossy(input);
        let o = Script::new(input).no_eof().check();
        assert_eq!(
            (o.events.len(), o.error.as_ref()),
            (0, Some(error)),
            "{what}"
        );
        // The end of input changes nothing.
        let o = Script::new(input).check();
        assert_eq!(
            (o.events.len(), o.error.as_ref()),
            (0, Some(error)),
            "{what}"
        );
    }

    // The second head of a response (after a 1xx) too.
    let o = Script::new(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2x0 OK\r\n")
        .no_eof()
        .check();
    assert_eq!(o.infos(), vec![100]);
    assert_eq!(o.error, Some(Error::InvalidStatusCode { offset: 35 }));

    // Before its LF, nothing yet; a valid line waits for the head.
    for input in [
        &b"HTTP/1.1 099 X\r"[..],
        b"HTTP/1.1 2x",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n",
    ] {
        let o = Script::new(input).no_eof().check();
        assert_eq!((o.events.len(), o.error), (0, None), "{input:?}");
    }
    // A bare LF only with the leniency.
    let o = Script::new(b"HTTP/1.1 200 OK\n")
        .config(lenient(|l| l.bare_lf = true))
        .no_eof()
        .check();
    assert_eq!((o.events.len(), o.error), (0, None));
    // A status line longer than the head limit is the head's: HeadTooLarge.
    let mut c = Config::default();
    c.max_head_bytes = 10;
    let o = Script::new(b"HTTP/1.1 099 X\r\n")
        .config(c)
        .no_eof()
        .check();
    assert_eq!(
        o.error,
        Some(Error::HeadTooLarge {
            offset: 10,
            limit: 10
        })
    );
}

#[test]
fn d13_poll_event_reports_the_status_line_as_its_lf_arrives() {
    let mut conn = pollhttp_proto::Connection::new(Config::default());
    conn.send_request("GET", "/", [("Host", "h")]).unwrap();
    conn.receive(b"HTTP/1.1 099 X\r");
    assert_eq!(conn.poll_event(), Ok(None));
    assert!(conn.wants_receive());
    conn.receive(b"\n");
    assert_eq!(
        conn.poll_event(),
        Err(Error::InvalidStatusCode { offset: 9 })
    );
    assert!(!conn.wants_receive());
    assert_eq!(conn.close_reason(), Some(CloseReason::Error));
}
