//! Response heads, pollhttp-proto against raw httparse. The whole input is the
//! response to a GET, read twice: strict (default Config vs httparse's default
//! ParserConfig) and lenient (bare_lf, obs_fold and
//! content_length_with_transfer_encoding on vs httparse with obs-fold allowed).
//!
//! Invariants:
//! * proto yields Head/Informational ⇒ httparse returned Complete with the same
//!   length, status, version, reason and field names/values in order; the head
//!   is the input's first bytes; in strict mode it has no bare LF; the reason is
//!   the status line's bytes after the code; body length and close reason follow
//!   RFC 9112 §6.3 / §9 as modelled below from httparse's fields.
//! * httparse errs ⇒ proto errs, with a head-syntax error kind located at the
//!   offending byte (the shortest prefix httparse rejects ends at it).
//! * httparse Complete but proto errs ⇒ the error is one proto is documented to
//!   be stricter on, and exactly the one the model predicts: InvalidStatusCode
//!   (code < 100), BareLineFeed (strict), InvalidContentLength,
//!   ConflictingContentLength, InvalidTransferEncoding, TransferEncodingInHttp10,
//!   ContentLengthWithTransferEncoding (strict).
//! * httparse Partial ⇒ proto wants more input, then IncompleteHead at EOF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollhttp_fuzz::{is_tchar, is_token, trim_ows};
use pollhttp_proto::{
    CloseReason, Config, Connection, Error, Event, MessageBodyLength, ResponseHead, Version,
};

const MAX_FIELDS: usize = 100;

fuzz_target!(|data: &[u8]| {
    check(data, false);
    check(data, true);
});

fn check(data: &[u8], lenient: bool) {
    let mut config = Config::default();
    assert_eq!(config.max_fields, MAX_FIELDS);
    if lenient {
        config.lenient.bare_lf = true;
        config.lenient.obs_fold = true;
        config.lenient.content_length_with_transfer_encoding = true;
    }
    let max_head = config.max_head_bytes;
    let mut conn = Connection::new(config);
    conn.send_request("GET", "/", [("Host", "example.com")])
        .unwrap();
    conn.advance_transmit(usize::MAX);
    conn.receive(data);
    let mut proto = conn.poll_event();
    let mut eof = false;
    if proto == Ok(None) {
        eof = true;
        conn.receive_eof();
        proto = conn.poll_event();
    }

    let mut parser = httparse::ParserConfig::default();
    parser.allow_obsolete_multiline_headers_in_responses(lenient);
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut resp = httparse::Response::new(&mut headers);
    let hp = parser.parse_response(&mut resp, data);

    // Empty lines before the status line are skipped (CRLF; a bare LF only
    // with bare_lf), as hyper and llhttp do; they are not part of the head.
    // httparse skips CRLF and LF alike.
    let mut skip = 0;
    loop {
        match &data[skip..] {
            [b'\r', b'\n', ..] => skip += 2,
            [b'\n', ..] if lenient => skip += 1,
            [b'\n', ..] => {
                assert_eq!(
                    proto,
                    Err(Error::BareLineFeed {
                        offset: skip as u64
                    }),
                    "bare LF empty line"
                );
                return;
            }
            _ => break,
        }
    }
    let rest = data.len() - skip;

    // A complete status line (within the head limit) is judged first, as
    // soon as it arrives: httparse's verdict on the line alone, then a code
    // from 100 and (strict) CRLF.
    if let Some(lf) = data[skip..].iter().take(max_head).position(|&b| b == b'\n') {
        let mut h = [httparse::EMPTY_HEADER; 1];
        let mut r = httparse::Response::new(&mut h);
        match parser.parse_response(&mut r, &data[..skip + lf + 1]) {
            Err(he) => {
                let Err(e) = &proto else {
                    panic!("httparse {he:?} on the status line, proto {proto:?}");
                };
                located(data, skip, &parser, he, e, max_head);
                return;
            }
            Ok(_) if r.code.unwrap() < 100 => {
                assert!(
                    matches!(proto, Err(Error::InvalidStatusCode { .. })),
                    "status code < 100: {proto:?}"
                );
                return;
            }
            Ok(_) if !lenient && (lf == 0 || data[skip + lf - 1] != b'\r') => {
                assert_eq!(
                    proto,
                    Err(Error::BareLineFeed {
                        offset: (skip + lf) as u64
                    }),
                    "bare LF ending the status line"
                );
                return;
            }
            Ok(_) => {}
        }
    }

    match (hp, proto) {
        (Ok(httparse::Status::Complete(n)), proto) => {
            assert!(skip < n && n <= data.len());
            let model = model(data, skip, n, &resp, lenient);
            match (proto, model) {
                (Ok(Some(Event::Head(h) | Event::Informational(h))), Ok((body, close))) => {
                    same_head(&h, &resp, data, skip, n, lenient);
                    assert_eq!(h.body_length(), body, "body length");
                    if !h.is_informational() || h.status() == 101 {
                        let close = close.or(if eof {
                            Some(CloseReason::PeerClosed)
                        } else {
                            None
                        });
                        assert_eq!(conn.close_reason(), close, "close reason");
                    }
                }
                (Err(e), Err(want)) if n - skip > max_head => {
                    assert!(
                        matches!(e, Error::HeadTooLarge { .. }),
                        "{e:?} (model: {want:?})"
                    );
                }
                (Err(e), Err(want)) => {
                    assert_eq!(e.kind(), want.kind(), "proto {e:?}, model {want:?}");
                    let off = e.offset().unwrap() as usize;
                    assert!(off < n, "error past the head: {e:?}");
                    assert!(off >= skip, "error in the skipped empty lines: {e:?}");
                    if let Error::InvalidStatusCode { .. } = e {
                        // Located at the code: three digits after "HTTP/1.x ".
                        assert!(off >= 9 && &data[off - 9..off - 4] == b"HTTP/", "{e:?}");
                        assert!(data[off..off + 3].iter().all(u8::is_ascii_digit), "{e:?}");
                    }
                    if let Error::BareLineFeed { .. } = e {
                        assert!(data[off] == b'\n' && (off == 0 || data[off - 1] != b'\r'));
                    }
                }
                (p, m) => panic!("httparse Complete({n}); proto {p:?}, model {m:?}"),
            }
        }
        (Ok(httparse::Status::Partial), proto) => {
            if rest > max_head {
                assert!(
                    matches!(proto, Err(Error::HeadTooLarge { .. })),
                    "{proto:?}"
                );
            } else {
                let len = data.len();
                assert!(eof);
                assert_eq!(
                    proto,
                    Err(Error::IncompleteHead {
                        offset: len as u64,
                        received: rest
                    }),
                    "httparse Partial"
                );
            }
        }
        (Err(httparse::Error::TooManyHeaders), proto) => {
            assert_eq!(
                proto,
                Err(Error::TooManyFields {
                    offset: skip as u64,
                    limit: MAX_FIELDS
                })
            );
        }
        (Err(he), Err(e)) => located(data, skip, &parser, he, &e, max_head),
        (Err(he), proto) => panic!("httparse {he:?}, proto {proto:?}"),
    }
}

/// proto's head equals httparse's, and the input's first bytes.
fn same_head(
    h: &ResponseHead,
    resp: &httparse::Response<'_, '_>,
    data: &[u8],
    skip: usize,
    n: usize,
    lenient: bool,
) {
    let raw = h.raw();
    assert_eq!(raw.len(), n - skip);
    for (&a, &b) in raw.iter().zip(&data[skip..]) {
        assert!(
            a == b || (lenient && a == b' ' && (b == b'\r' || b == b'\n')),
            "raw head differs"
        );
    }
    assert_eq!(Some(h.status()), resp.code);
    let v = match h.version() {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    assert_eq!(Some(v), resp.version);
    // httparse gives "" for a reason with obs-text; proto keeps it.
    let hr = resp.reason.unwrap_or("").as_bytes();
    assert!(
        hr == h.reason() || (hr.is_empty() && h.reason().iter().any(|&b| b >= 0x80)),
        "reason vs httparse"
    );
    // The reason as received: the status line's bytes after "HTTP/1.x NNN ".
    let line_end = skip + data[skip..].iter().position(|&b| b == b'\n').unwrap();
    let line = &data[skip..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    assert_eq!(
        h.reason(),
        line.get(13..).unwrap_or(b""),
        "reason is not the status line's"
    );
    if !lenient {
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' {
                assert!(
                    i > 0 && raw[i - 1] == b'\r',
                    "bare LF at {i} accepted in strict mode"
                );
            }
        }
    }
    assert_eq!(h.fields().len(), resp.headers.len());
    for (f, hh) in h.fields().iter().zip(resp.headers.iter()) {
        assert_eq!(f.name(), hh.name);
        if lenient {
            // obs-fold unfolded: each CR and LF of a fold becomes SP.
            let unfolded: Vec<u8> = hh
                .value
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect();
            assert_eq!(f.value(), &unfolded[..]);
        } else {
            assert_eq!(f.value(), hh.value);
        }
    }
}

fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',')
        .any(|el| trim_ows(el).eq_ignore_ascii_case(token))
}

/// RFC 9112 §6.3 (and proto's documented strictness) from httparse's view of a
/// complete head: the body length and close reason, or the error proto must
/// give. The request was a GET.
fn model(
    data: &[u8],
    skip: usize,
    n: usize,
    resp: &httparse::Response<'_, '_>,
    lenient: bool,
) -> Result<(MessageBodyLength, Option<CloseReason>), Error> {
    let head = &data[..n];
    let err_off = 0; // offsets are not modelled (only kinds are compared)
    let status = resp.code.unwrap();
    let http10 = resp.version == Some(0);
    if status < 100 {
        return Err(Error::InvalidStatusCode { offset: err_off });
    }
    // Line endings in order: status line, final empty line, then each field
    // line interleaved with the Content-Length checks.
    let bare = |lf: usize| lf == 0 || head[lf - 1] != b'\r';
    let status_lf = skip + head[skip..].iter().position(|&b| b == b'\n').unwrap();
    if !lenient && (bare(status_lf) || bare(n - 1)) {
        return Err(Error::BareLineFeed { offset: err_off });
    }
    let mut cl: Option<u64> = None;
    let mut te_codings: Vec<Vec<u8>> = Vec::new();
    let mut te_bad = false;
    let mut te_seen = false;
    let (mut close, mut keep_alive) = (false, false);
    for h in resp.headers.iter() {
        let v0 = h.value.as_ptr() as usize - head.as_ptr() as usize;
        let v1 = v0 + h.value.len();
        let lf = v1 + head[v1..].iter().position(|&b| b == b'\n').unwrap();
        if !lenient && bare(lf) {
            return Err(Error::BareLineFeed { offset: err_off });
        }
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                for el in h.value.split(|&b| b == b',') {
                    let el = trim_ows(el);
                    if el.is_empty() || !el.iter().all(u8::is_ascii_digit) {
                        return Err(Error::InvalidContentLength { offset: err_off });
                    }
                    let Ok(v) = std::str::from_utf8(el).unwrap().parse::<u64>() else {
                        return Err(Error::InvalidContentLength { offset: err_off });
                    };
                    if cl.is_some_and(|c| c != v) {
                        return Err(Error::ConflictingContentLength { offset: err_off });
                    }
                    cl = Some(v);
                }
            }
            "transfer-encoding" => {
                te_seen = true;
                for el in h.value.split(|&b| b == b',') {
                    let coding = trim_ows(trim_ows(el).split(|&b| b == b';').next().unwrap());
                    te_bad |= !is_token(coding);
                    te_codings.push(coding.to_ascii_lowercase());
                }
            }
            "connection" => {
                close |= has_token(h.value, b"close");
                keep_alive |= has_token(h.value, b"keep-alive");
            }
            _ => {}
        }
    }
    // chunked at most once across all Transfer-Encoding fields.
    te_bad |= te_codings
        .iter()
        .filter(|c| c.as_slice() == b"chunked")
        .count()
        > 1;
    let mut reason: Option<CloseReason> = None;
    let body = if (100..200).contains(&status) && status != 101 {
        return Ok((MessageBodyLength::None, None));
    } else if status == 101 {
        reason = Some(CloseReason::SwitchingProtocols);
        MessageBodyLength::None
    } else if status == 204 || status == 304 {
        MessageBodyLength::None
    } else if te_bad {
        return Err(Error::InvalidTransferEncoding { offset: err_off });
    } else if te_seen {
        if http10 {
            return Err(Error::TransferEncodingInHttp10 { offset: err_off });
        }
        if cl.is_some() {
            if !lenient {
                return Err(Error::ContentLengthWithTransferEncoding { offset: err_off });
            }
            reason = Some(CloseReason::ContentLengthWithTransferEncoding);
        }
        if te_codings
            .last()
            .is_some_and(|c| c.as_slice() == b"chunked")
        {
            MessageBodyLength::Chunked
        } else {
            MessageBodyLength::CloseDelimited
        }
    } else if let Some(n) = cl {
        MessageBodyLength::ContentLength(n)
    } else {
        MessageBodyLength::CloseDelimited
    };
    if reason.is_none() && http10 && !keep_alive {
        reason = Some(CloseReason::Http10);
    }
    if reason.is_none() && close {
        reason = Some(CloseReason::ConnectionClose);
    }
    if reason.is_none() && body == MessageBodyLength::CloseDelimited {
        reason = Some(CloseReason::CloseDelimited);
    }
    Ok((body, reason))
}

/// httparse rejected the head: proto's error is a head-syntax error located at
/// the offending byte, where the shortest rejected prefix ends.
fn located(
    data: &[u8],
    skip: usize,
    parser: &httparse::ParserConfig,
    he: httparse::Error,
    e: &Error,
    max_head: usize,
) {
    let off = e.offset().unwrap_or(u64::MAX) as usize;
    assert!(
        off < data.len() && off >= skip,
        "httparse {he:?}: proto {e:?} outside the head"
    );
    if data.len() - skip > max_head + 1 {
        return; // proto looks at the first max_head + 1 bytes only
    }
    let fails = |len: usize| {
        let mut h = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut r = httparse::Response::new(&mut h);
        parser.parse_response(&mut r, &data[..len]).is_err()
    };
    assert!(
        !fails(off) && fails(off + 1),
        "httparse {he:?}: proto {e:?} not at the offending byte"
    );
    let b = data[off];
    let prev = off.checked_sub(1).map(|i| data[i]);
    let ok = match e {
        Error::BareCarriageReturn { .. } => prev == Some(b'\r') && b != b'\n',
        Error::ObsFold { .. } => (b == b' ' || b == b'\t') && prev == Some(b'\n'),
        Error::WhitespaceBeforeColon { .. } => (b == b' ' || b == b'\t') && prev != Some(b'\n'),
        Error::InvalidFieldName { .. } => !is_tchar(b),
        Error::InvalidFieldValue { .. } => b != b'\t' && (b < 0x20 || b == 0x7f),
        Error::InvalidStatusLine { .. }
        | Error::InvalidVersion { .. }
        | Error::InvalidStatusCode { .. } => true,
        _ => false,
    };
    assert!(
        ok,
        "httparse {he:?}: proto {e:?} (byte {b:#04x}, before it {prev:?})"
    );
}
