//! Request serialization: arbitrary method, target, fields, body chunks and
//! trailers go in; what comes out must be exactly the request asked for, with
//! no way for a field to inject a line or a new field.
//!
//! Input layout:
//!   [0] flags: bits0-2 method (0, 6, 7: from the input; 1 GET, 2 POST, 3 CONNECT,
//!       4 OPTIONS, 5 HEAD), bit3 prepend `Host: example.com`, bit4 append
//!       `Transfer-Encoding: chunked`, bit5 append `Content-Length: <byte [2]>`,
//!       bits6-7 how much of the transmit queue to write after each call
//!       (nothing, all, half, one byte)
//!   [1] counts: low nibble = fields, high nibble = body chunks
//!   [2] Content-Length for bit5
//!   rest, split on 0xFF: [method,] target, name/value per field, one segment per
//!   body chunk, then name/value pairs of trailers
//!
//! Invariants: on Ok, the bytes are exactly `METHOD SP target SP HTTP/1.1 CRLF
//! *(name ": " value CRLF) CRLF`, httparse parses them back to the same method,
//! path and field list, every CR/LF is a line terminator, and the result
//! (accepted or which error) matches an independent reading of RFC 9110/9112 as
//! proto documents it; on Err nothing is queued and the connection stays usable.
//! Bodies: each chunk is `hex CRLF data CRLF`, the last-chunk and trailers are
//! encoded as asked (re-decoded by the reference chunked decoder), Content-Length
//! bodies are passed through and their length enforced.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollhttp_fuzz::{is_token, reference_chunked, trim_ows, RefLimits, RefResult};
use pollhttp_proto::{CloseReason, Config, Connection, Error};

fn valid_value(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
}

#[derive(Debug, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// What proto should make of the fields (after method and target passed):
/// checked in order, each field's name, then value, then its framing meaning.
fn expect_fields(fields: &[(String, Vec<u8>)]) -> Result<(Framing, bool), Error> {
    let mut hosts = 0;
    let mut length: Option<u64> = None;
    let mut te: Option<bool> = None;
    let mut te_index = 0;
    let mut close = false;
    for (index, (n, v)) in fields.iter().enumerate() {
        if !is_token(n.as_bytes()) {
            return Err(Error::InvalidRequestFieldName { index });
        }
        if !valid_value(v) {
            return Err(Error::InvalidRequestFieldValue { index });
        }
        let lower = n.to_ascii_lowercase();
        match lower.as_str() {
            "host" => hosts += 1,
            "content-length" => {
                let t = trim_ows(v);
                if length.is_some() {
                    return Err(Error::DuplicateRequestContentLength { index });
                }
                if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
                    return Err(Error::InvalidRequestContentLength { index });
                }
                let s = std::str::from_utf8(t).unwrap();
                length = Some(
                    s.parse::<u64>()
                        .map_err(|_| Error::InvalidRequestContentLength { index })?,
                );
            }
            "transfer-encoding" => {
                // One field; codings are tokens (parameters after ';' ignored);
                // chunked at most once, and last.
                if te.is_some() {
                    return Err(Error::InvalidRequestTransferEncoding { index });
                }
                te_index = index;
                let codings: Vec<&[u8]> = v
                    .split(|&b| b == b',')
                    .map(|el| trim_ows(trim_ows(el).split(|&b| b == b';').next().unwrap()))
                    .collect();
                if !codings.iter().all(|c| is_token(c)) {
                    return Err(Error::InvalidRequestTransferEncoding { index });
                }
                let chunked: Vec<bool> = codings
                    .iter()
                    .map(|c| c.eq_ignore_ascii_case(b"chunked"))
                    .collect();
                match chunked.iter().filter(|&&c| c).count() {
                    0 => te = Some(false),
                    1 if *chunked.last().unwrap() => te = Some(true),
                    _ => return Err(Error::InvalidRequestTransferEncoding { index }),
                }
            }
            "connection" => {
                close |= v
                    .split(|&b| b == b',')
                    .any(|el| trim_ows(el).eq_ignore_ascii_case(b"close"));
            }
            _ => {}
        }
    }
    match hosts {
        0 => return Err(Error::MissingHost),
        1 => {}
        _ => return Err(Error::MultipleHost),
    }
    let framing = match (length, te) {
        (Some(_), Some(_)) => return Err(Error::RequestContentLengthWithTransferEncoding),
        (None, Some(false)) => {
            return Err(Error::InvalidRequestTransferEncoding { index: te_index })
        }
        (None, Some(true)) => Framing::Chunked,
        (Some(0), None) | (None, None) => Framing::None,
        (Some(n), None) => Framing::Length(n),
    };
    Ok((framing, close))
}

fuzz_target!(|data: &[u8]| {
    let (flags, counts, cl) = match data {
        [a, b, c, ..] => (*a, *b, *c),
        _ => return,
    };
    let mut segs = data[3..].split(|&b| b == 0xff);
    let mut seg = || segs.next().unwrap_or(b"");
    let method: String = match flags & 7 {
        1 => "GET".into(),
        2 => "POST".into(),
        3 => "CONNECT".into(),
        4 => "OPTIONS".into(),
        5 => "HEAD".into(),
        _ => String::from_utf8_lossy(seg()).into_owned(),
    };
    let target = String::from_utf8_lossy(seg()).into_owned();
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    if flags & 8 != 0 {
        fields.push(("Host".into(), b"example.com".to_vec()));
    }
    for _ in 0..(counts & 15) {
        let n = String::from_utf8_lossy(seg()).into_owned();
        fields.push((n, seg().to_vec()));
    }
    if flags & 16 != 0 {
        fields.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
    }
    if flags & 32 != 0 {
        fields.push(("Content-Length".into(), cl.to_string().into_bytes()));
    }
    let chunks: Vec<&[u8]> = (0..(counts >> 4)).map(|_| seg()).collect();
    let mut trailers: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(n) = segs.next() {
        let v = segs.next();
        trailers.push((
            String::from_utf8_lossy(n).into_owned(),
            v.unwrap_or(b"").to_vec(),
        ));
    }

    let mut conn = Connection::new(Config::default());
    let r = conn.send_request(
        &method,
        &target,
        fields.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
    );

    // Independent expectations for method, target bytes and fields.
    let method_ok = is_token(method.as_bytes());
    let target_bytes_ok = !target.is_empty() && target.bytes().all(|b| (0x21..=0x7e).contains(&b));
    let expected = if !method_ok {
        Err(Error::InvalidMethod)
    } else if !target_bytes_ok {
        Err(Error::InvalidRequestTarget)
    } else {
        expect_fields(&fields)
    };
    let (framing, close) = match (r, expected) {
        (Err(Error::InvalidRequestTarget), _) if method_ok => {
            // The target's form does not fit the method (RFC 9112 §3.2).
            // Origin-form is always fine except for CONNECT.
            assert!(
                !(target.starts_with('/') && method != "CONNECT" && target_bytes_ok),
                "origin-form target {target:?} rejected for {method:?}"
            );
            assert!(conn.transmit_buf().is_empty());
            return check_usable(conn);
        }
        (Err(e), Err(want)) => {
            assert_eq!(e, want, "wrong error for {method:?} {target:?} {fields:?}");
            assert!(e.is_caller_error());
            assert!(
                conn.transmit_buf().is_empty(),
                "bytes queued by a failed send_request"
            );
            assert_eq!(conn.close_reason(), None);
            return check_usable(conn);
        }
        (Ok(()), Ok(x)) => x,
        (r, want) => panic!(
            "send_request gave {r:?}, expected {want:?} for {method:?} {target:?} {fields:?}"
        ),
    };
    assert_eq!(
        conn.close_reason(),
        close.then_some(CloseReason::RequestedClose)
    );

    // The exact bytes.
    let tx = conn.transmit_buf().to_vec();
    let mut want = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (n, v) in &fields {
        want.extend_from_slice(n.as_bytes());
        want.extend_from_slice(b": ");
        want.extend_from_slice(v);
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"\r\n");
    assert_eq!(tx, want);
    // Line structure: CR only before LF, LF only after CR, one line per field.
    for (i, &b) in tx.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(tx.get(i + 1), Some(&b'\n'), "bare CR in request head");
        }
        if b == b'\n' {
            assert!(i > 0 && tx[i - 1] == b'\r', "bare LF in request head");
        }
    }
    assert_eq!(tx.iter().filter(|&&b| b == b'\n').count(), fields.len() + 2);
    // httparse reads back exactly what was asked for.
    let mut headers = vec![httparse::EMPTY_HEADER; fields.len() + 1];
    let mut req = httparse::Request::new(&mut headers);
    assert_eq!(req.parse(&tx), Ok(httparse::Status::Complete(tx.len())));
    assert_eq!(req.method, Some(method.as_str()));
    assert_eq!(req.path, Some(target.as_str()));
    assert_eq!(req.version, Some(1));
    assert_eq!(req.headers.len(), fields.len());
    for (h, (n, v)) in req.headers.iter().zip(&fields) {
        assert_eq!(h.name, n);
        assert_eq!(h.value, trim_ows(v));
    }
    // A second request is refused while this one is outstanding, queuing nothing.
    assert!(matches!(
        conn.send_request("GET", "/", [("Host", "h")]),
        Err(Error::InvalidState { .. })
    ));
    assert_eq!(conn.transmit_buf(), &tx[..]);
    let head_len = tx.len();
    let mut wire = Wire {
        all: tx,
        written: 0,
        policy: flags >> 6,
    };
    wire.step(&mut conn, b"");

    let tr = || trailers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
    match framing {
        Framing::None => {
            // No body: the request is complete; finish is a no-op, trailers
            // and body bytes are refused.
            assert!(!conn.is_sending_body());
            assert!(matches!(
                conn.send_body(b"x"),
                Err(Error::InvalidState { .. })
            ));
            if !trailers.is_empty() {
                assert!(matches!(
                    conn.finish_with_trailers(tr()),
                    Err(Error::InvalidState { .. })
                ));
            }
            assert_eq!(conn.finish(), Ok(()));
            wire.step(&mut conn, b"");
        }
        Framing::Length(n) => {
            let mut left = n;
            for c in &chunks {
                let r = conn.send_body(c);
                if left == 0 {
                    // Complete with its last byte: nothing more to send.
                    assert!(matches!(r, Err(Error::InvalidState { .. })), "{r:?}");
                    assert!(!conn.is_sending_body());
                } else if c.len() as u64 > left {
                    assert_eq!(r, Err(Error::RequestBodyTooLong { remaining: left }));
                } else {
                    assert_eq!(r, Ok(()));
                    left -= c.len() as u64;
                    wire.step(&mut conn, c);
                    continue;
                }
                wire.step(&mut conn, b"");
            }
            let r = conn.finish_with_trailers(tr());
            if left > 0 {
                assert_eq!(r, Err(Error::RequestBodyTooShort { remaining: left }));
                assert!(conn.is_sending_body());
                wire.step(&mut conn, b"");
                return;
            } else if !trailers.is_empty() {
                assert!(matches!(r, Err(Error::InvalidState { .. })));
                assert_eq!(conn.finish(), Ok(()));
            } else {
                assert_eq!(r, Ok(()));
            }
            wire.step(&mut conn, b"");
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            for c in &chunks {
                assert_eq!(conn.send_body(c), Ok(()));
                let mut out = Vec::new();
                if !c.is_empty() {
                    out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    out.extend_from_slice(c);
                    out.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(c);
                wire.step(&mut conn, &out);
            }
            let bad = trailers.iter().enumerate().find_map(|(index, (n, v))| {
                if !is_token(n.as_bytes()) {
                    Some(Error::InvalidRequestFieldName { index })
                } else if !valid_value(v) {
                    Some(Error::InvalidRequestFieldValue { index })
                } else {
                    None
                }
            });
            let r = conn.finish_with_trailers(tr());
            let sent_trailers: &[(String, Vec<u8>)] = match bad {
                Some(e) => {
                    assert_eq!(r, Err(e));
                    wire.step(&mut conn, b""); // nothing queued by a failed finish
                    assert!(conn.is_sending_body());
                    assert_eq!(conn.finish(), Ok(()));
                    &[]
                }
                None => {
                    assert_eq!(r, Ok(()));
                    &trailers
                }
            };
            let mut out = b"0\r\n".to_vec();
            for (n, v) in sent_trailers {
                out.extend_from_slice(n.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            wire.step(&mut conn, &out);
            let out = &wire.all[head_len..];
            // A strict decoder reads back the same body and trailers.
            let lim = RefLimits {
                max_ext: 0,
                max_trailer_bytes: usize::MAX,
                max_trailer_fields: usize::MAX,
                body_limit: None,
            };
            match reference_chunked(out, lim) {
                RefResult::Ok {
                    body: b,
                    trailers: t,
                    consumed,
                    ..
                } => {
                    assert_eq!(b, body);
                    assert_eq!(consumed, out.len());
                    let want: Vec<(Vec<u8>, Vec<u8>)> = sent_trailers
                        .iter()
                        .map(|(n, v)| (n.clone().into_bytes(), trim_ows(v).to_vec()))
                        .collect();
                    assert_eq!(t, want);
                }
                e => panic!("request body not valid chunked: {e:?}"),
            }
        }
    }
    assert!(!conn.is_sending_body());
    let before = conn.transmit_buf().to_vec();
    assert!(matches!(
        conn.send_body(b"x"),
        Err(Error::InvalidState { .. })
    ));
    assert_eq!(
        conn.finish(),
        Ok(()),
        "finish after the body ended is a no-op"
    );
    assert_eq!(conn.transmit_buf(), &before[..]);
});

/// The bytes queued so far and how many were written; after each call the
/// transmit queue must be exactly the unwritten rest. `policy` picks how much
/// to write after each step: nothing, all, half, one byte.
struct Wire {
    all: Vec<u8>,
    written: usize,
    policy: u8,
}

impl Wire {
    fn step(&mut self, conn: &mut Connection, appended: &[u8]) {
        self.all.extend_from_slice(appended);
        assert_eq!(
            conn.transmit_buf(),
            &self.all[self.written..],
            "transmit queue"
        );
        let pending = self.all.len() - self.written;
        let n = match self.policy {
            0 => 0,
            1 => pending,
            2 => pending / 2,
            _ => pending.min(1),
        };
        conn.advance_transmit(n);
        self.written += n;
        assert_eq!(
            conn.transmit_buf(),
            &self.all[self.written..],
            "after advance_transmit"
        );
        assert_eq!(conn.wants_transmit(), self.written < self.all.len());
    }
}

/// After a caller error the connection takes a valid request.
fn check_usable(mut conn: Connection) {
    assert_eq!(conn.send_request("GET", "/", [("Host", "h")]), Ok(()));
    assert_eq!(conn.transmit_buf(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
}
