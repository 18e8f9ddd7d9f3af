//! Request serialization: exact bytes, framing from the head, and every
//! caller error raised before any byte is queued.

use pollhttp_proto::{method, Config, Connection, Error};

fn conn() -> Connection {
    Connection::new(Config::default())
}

#[test]
fn origin_form_with_fields_in_caller_order() {
    let mut c = conn();
    c.send_request(
        method::GET,
        "/a?b=c",
        [("Host", "example.com"), ("X-B", "2"), ("accept", "*/*")],
    )
    .unwrap();
    assert_eq!(
        c.transmit_buf(),
        b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-B: 2\r\naccept: */*\r\n\r\n"
    );
    assert!(!c.is_sending_body());
}

#[test]
fn target_forms() {
    let mut c = conn();
    c.send_request(
        method::GET,
        "http://example.com:8080/x",
        [("Host", "example.com:8080")],
    )
    .unwrap();
    assert!(c
        .transmit_buf()
        .starts_with(b"GET http://example.com:8080/x HTTP/1.1\r\n"));
    let mut c = conn();
    c.send_request(method::OPTIONS, "*", [("Host", "h")])
        .unwrap();
    assert!(c.transmit_buf().starts_with(b"OPTIONS * HTTP/1.1\r\n"));
    let mut c = conn();
    c.send_request(method::CONNECT, "[::1]:443", [("Host", "[::1]:443")])
        .unwrap();
    assert!(c
        .transmit_buf()
        .starts_with(b"CONNECT [::1]:443 HTTP/1.1\r\n"));
    // Any token is a method.
    let mut c = conn();
    c.send_request("PROPFIND", "/", [("Host", "h")]).unwrap();
    assert!(c.transmit_buf().starts_with(b"PROPFIND / HTTP/1.1\r\n"));
}

#[test]
fn caller_errors_queue_nothing_and_leave_the_connection_usable() {
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Error);
    let cases: Vec<Case> = vec![
        ("GE T", "/", vec![("Host", "h")], Error::InvalidMethod),
        ("", "/", vec![("Host", "h")], Error::InvalidMethod),
        (
            "GET",
            "/a b",
            vec![("Host", "h")],
            Error::InvalidRequestTarget,
        ),
        (
            "GET",
            "/a\r\nX: y",
            vec![("Host", "h")],
            Error::InvalidRequestTarget,
        ),
        ("GET", "", vec![("Host", "h")], Error::InvalidRequestTarget),
        ("GET", "*", vec![("Host", "h")], Error::InvalidRequestTarget),
        (
            "CONNECT",
            "/",
            vec![("Host", "h")],
            Error::InvalidRequestTarget,
        ),
        (
            "CONNECT",
            "h:x",
            vec![("Host", "h")],
            Error::InvalidRequestTarget,
        ),
        (
            "GET",
            "example.com",
            vec![("Host", "h")],
            Error::InvalidRequestTarget,
        ),
        (
            "GET",
            "/",
            vec![("Host", "h"), ("Bad Name", "v")],
            Error::InvalidRequestFieldName { index: 1 },
        ),
        (
            "GET",
            "/",
            vec![("Host", "h"), ("", "v")],
            Error::InvalidRequestFieldName { index: 1 },
        ),
        (
            "GET",
            "/",
            vec![("X", "a\r\nInjected: 1"), ("Host", "h")],
            Error::InvalidRequestFieldValue { index: 0 },
        ),
        (
            "GET",
            "/",
            vec![("Host", "h"), ("X", "a\nb")],
            Error::InvalidRequestFieldValue { index: 1 },
        ),
        (
            "GET",
            "/",
            vec![("Host", "h"), ("X", "a\0b")],
            Error::InvalidRequestFieldValue { index: 1 },
        ),
        (
            "GET",
            "/",
            vec![("Host", "h"), ("X", "a\rb")],
            Error::InvalidRequestFieldValue { index: 1 },
        ),
        ("GET", "/", vec![], Error::MissingHost),
        (
            "GET",
            "/",
            vec![("Host", "a"), ("host", "b")],
            Error::MultipleHost,
        ),
        (
            "POST",
            "/",
            vec![("Host", "h"), ("Content-Length", "+1")],
            Error::InvalidRequestContentLength { index: 1 },
        ),
        (
            "POST",
            "/",
            vec![
                ("Host", "h"),
                ("Content-Length", "1"),
                ("Content-Length", "1"),
            ],
            Error::DuplicateRequestContentLength { index: 2 },
        ),
        (
            "POST",
            "/",
            vec![
                ("Host", "h"),
                ("Content-Length", "1"),
                ("Transfer-Encoding", "chunked"),
            ],
            Error::RequestContentLengthWithTransferEncoding,
        ),
        (
            "POST",
            "/",
            vec![("Host", "h"), ("Transfer-Encoding", "gzip")],
            Error::InvalidRequestTransferEncoding { index: 1 },
        ),
        (
            "POST",
            "/",
            vec![("Host", "h"), ("Transfer-Encoding", "chunked, gzip")],
            Error::InvalidRequestTransferEncoding { index: 1 },
        ),
    ];
    for (m, t, f, want) in cases {
        let mut c = conn();
        assert_eq!(
            c.send_request(m, t, f.iter().copied()),
            Err(want.clone()),
            "{m} {t:?} {f:?}"
        );
        assert!(want.is_caller_error());
        assert_eq!(c.transmit_buf(), b"", "nothing queued for {want:?}");
        assert!(c.is_idle());
        c.send_request("GET", "/", [("Host", "h")]).unwrap();
    }
}

#[test]
fn content_length_body() {
    let mut c = conn();
    c.send_request(method::POST, "/", [("Host", "h"), ("Content-Length", "5")])
        .unwrap();
    assert!(c.is_sending_body());
    c.send_body(b"he").unwrap();
    assert_eq!(
        c.send_body(b"llo!"),
        Err(Error::RequestBodyTooLong { remaining: 3 })
    );
    assert_eq!(c.finish(), Err(Error::RequestBodyTooShort { remaining: 3 }));
    c.send_body(b"llo").unwrap();
    assert!(!c.is_sending_body(), "complete with its last byte");
    c.finish().unwrap();
    assert!(c.transmit_buf().ends_with(b"\r\n\r\nhello"));
    assert!(matches!(c.send_body(b"x"), Err(Error::InvalidState { .. })));
}

#[test]
fn chunked_body_with_trailers() {
    let mut c = conn();
    c.send_request(
        method::PUT,
        "/up",
        [("Host", "h"), ("Transfer-Encoding", "chunked")],
    )
    .unwrap();
    let head_len = c.transmit_buf().len();
    c.send_body(b"hello").unwrap();
    c.send_body(b"").unwrap(); // an empty piece is not the last-chunk
    c.send_body(&[b'x'; 26]).unwrap();
    assert_eq!(
        c.finish_with_trailers([("X-Bad", "a\nb")]),
        Err(Error::InvalidRequestFieldValue { index: 0 })
    );
    c.finish_with_trailers([("X-Sum", "42")]).unwrap();
    let body = &c.transmit_buf()[head_len..];
    let want = [
        &b"5\r\nhello\r\n1a\r\n"[..],
        &[b'x'; 26],
        b"\r\n0\r\nX-Sum: 42\r\n\r\n",
    ]
    .concat();
    assert_eq!(body, &want[..]);
}

#[test]
fn transmit_advances_partially() {
    let mut c = conn();
    c.send_request(method::GET, "/", [("Host", "h")]).unwrap();
    let all = c.transmit_buf().to_vec();
    c.advance_transmit(3);
    assert_eq!(c.transmit_buf(), &all[3..]);
    assert!(c.wants_transmit());
    c.advance_transmit(1000);
    assert!(!c.wants_transmit());
}

#[test]
fn one_request_at_a_time() {
    let mut c = conn();
    c.send_request(method::GET, "/", [("Host", "h")]).unwrap();
    assert!(matches!(
        c.send_request(method::GET, "/", [("Host", "h")]),
        Err(Error::InvalidState { .. })
    ));
}
