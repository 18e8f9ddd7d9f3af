//! Request heads out: validation and serialization (RFC 9112 §3, §6, §7).

use crate::error::Error;
use alloc::vec::Vec;

use crate::syntax::{
    is_field_value, is_token, list_has_token, parse_decimal, transfer_codings, trim_ows,
};

/// Standard method tokens (RFC 9110 §9.3, RFC 5789). Any other token is
/// accepted as well.
pub mod method {
    /// `GET`
    pub const GET: &str = "GET";
    /// `HEAD`: the response has no body.
    pub const HEAD: &str = "HEAD";
    /// `POST`
    pub const POST: &str = "POST";
    /// `PUT`
    pub const PUT: &str = "PUT";
    /// `DELETE`
    pub const DELETE: &str = "DELETE";
    /// `CONNECT`: authority-form target; a 2xx hands the connection over.
    pub const CONNECT: &str = "CONNECT";
    /// `OPTIONS`: may use the asterisk-form target `*`.
    pub const OPTIONS: &str = "OPTIONS";
    /// `TRACE`
    pub const TRACE: &str = "TRACE";
    /// `PATCH`
    pub const PATCH: &str = "PATCH";
}

/// The form of a request-target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://host/path` (to a proxy)
    Absolute,
    /// `host:port` (CONNECT only)
    Authority,
    /// `*` (OPTIONS only)
    Asterisk,
}

/// Classify and validate a request-target for a method.
pub(crate) fn check_target(method: &str, target: &str) -> Result<TargetForm, Error> {
    let t = target.as_bytes();
    if t.is_empty() || !t.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(Error::InvalidRequestTarget);
    }
    let connect = method == method::CONNECT;
    let form = if t == b"*" {
        if method != method::OPTIONS {
            return Err(Error::InvalidRequestTarget);
        }
        TargetForm::Asterisk
    } else if t[0] == b'/' {
        TargetForm::Origin
    } else if connect {
        // authority-form = uri-host ":" port; reject anything path-like.
        let colon = target.rfind(':').ok_or(Error::InvalidRequestTarget)?;
        let port = &target[colon + 1..];
        if colon == 0
            || port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || target.contains(['/', '?', '#', '@'])
        {
            return Err(Error::InvalidRequestTarget);
        }
        TargetForm::Authority
    } else {
        // absolute-form: scheme ":" hier-part with a scheme of ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        let colon = target.find(':').ok_or(Error::InvalidRequestTarget)?;
        let scheme = &t[..colon];
        if scheme.is_empty()
            || !scheme[0].is_ascii_alphabetic()
            || !scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(Error::InvalidRequestTarget);
        }
        TargetForm::Absolute
    };
    if connect && form != TargetForm::Authority {
        return Err(Error::InvalidRequestTarget);
    }
    Ok(form)
}

/// Body framing of an outgoing request, chosen from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFraming {
    None,
    Length(u64),
    Chunked,
}

pub(crate) struct EncodedHead {
    pub framing: SendFraming,
    pub close: bool,
}

/// Write `METHOD SP target SP HTTP/1.1 CRLF *(field CRLF) CRLF` into `out`,
/// validating as it goes. On error `out` is restored to its previous length.
pub(crate) fn encode_head<I, N, V>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    fields: I,
) -> Result<EncodedHead, Error>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let start = out.len();
    let r = encode_inner(out, method, target, fields);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_inner<I, N, V>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    fields: I,
) -> Result<EncodedHead, Error>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    if !is_token(method.as_bytes()) {
        return Err(Error::InvalidMethod);
    }
    check_target(method, target)?;
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut hosts = 0usize;
    let mut length: Option<u64> = None;
    let mut te: Option<bool> = None; // Some(final coding is chunked)
    let mut te_index = 0;
    let mut close = false;
    for (index, (name, value)) in fields.into_iter().enumerate() {
        let (name, value) = (name.as_ref(), value.as_ref());
        if !is_token(name.as_bytes()) {
            return Err(Error::InvalidRequestFieldName { index });
        }
        if !is_field_value(value) {
            return Err(Error::InvalidRequestFieldValue { index });
        }
        let n = name.as_bytes();
        if n.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if n.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return Err(Error::DuplicateRequestContentLength { index });
            }
            length = Some(
                parse_decimal(trim_ows(value))
                    .ok_or(Error::InvalidRequestContentLength { index })?,
            );
        } else if n.eq_ignore_ascii_case(b"transfer-encoding") {
            // chunked MUST be applied once and last (RFC 9112 §6.1).
            te = match (te, transfer_codings(value)) {
                (None, Some((0, _))) => Some(false),
                (None, Some((1, true))) => Some(true),
                _ => return Err(Error::InvalidRequestTransferEncoding { index }),
            };
            te_index = index;
        } else if n.eq_ignore_ascii_case(b"connection") && list_has_token(value, "close") {
            close = true;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    match hosts {
        0 => return Err(Error::MissingHost),
        1 => {}
        _ => return Err(Error::MultipleHost),
    }
    out.extend_from_slice(b"\r\n");
    let framing = match (length, te) {
        (Some(_), Some(_)) => return Err(Error::RequestContentLengthWithTransferEncoding),
        (None, Some(false)) => {
            return Err(Error::InvalidRequestTransferEncoding { index: te_index })
        }
        (None, Some(true)) => SendFraming::Chunked,
        (Some(0), None) | (None, None) => SendFraming::None,
        (Some(n), None) => SendFraming::Length(n),
    };
    Ok(EncodedHead { framing, close })
}

/// Write one chunk of a chunked body.
pub(crate) fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    loop {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Write the last-chunk and a trailer section, validating the trailer fields.
/// On error `out` is restored.
pub(crate) fn encode_last_chunk<I, N, V>(out: &mut Vec<u8>, trailers: I) -> Result<(), Error>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let start = out.len();
    out.extend_from_slice(b"0\r\n");
    for (index, (name, value)) in trailers.into_iter().enumerate() {
        let (name, value) = (name.as_ref().as_bytes(), value.as_ref());
        if !is_token(name) {
            out.truncate(start);
            return Err(Error::InvalidRequestFieldName { index });
        }
        if !is_field_value(value) {
            out.truncate(start);
            return Err(Error::InvalidRequestFieldValue { index });
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}
