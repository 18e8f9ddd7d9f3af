//! The response head (RFC 9112 §2–§5): status line and field lines, parsed by
//! httparse and checked for what httparse lets through (bare LF line
//! endings, status codes under 100, obs-text reason phrases), with the
//! framing fields picked out for [`framing`](super::framing).

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::config::Config;
use crate::conn::framing::FramingFields;
use crate::error::Error;
use crate::fields::Entry;
use crate::head::Version;
use crate::locate::{head_error_at, offset_in, with_uninit_headers};
use crate::syntax::{find_lf, list_elements, parse_decimal, token_eq_lower, transfer_codings};

/// A complete, valid response head at the front of a buffer.
#[derive(Debug, Clone)]
pub(crate) struct ParsedHead {
    /// Bytes of the head, status line through the empty line.
    pub len: usize,
    pub status: u16,
    pub version: Version,
    /// The reason phrase: start and end in the head.
    pub reason: (u32, u32),
    /// Where the field lines start (after the status line).
    pub fields_at: usize,
    /// Where each field line's name and value are in the head.
    pub index: Box<[Entry]>,
    pub framing: FramingFields,
}

/// Parse the response head at the front of `buf` (at most
/// `config.max_head_bytes + 1` bytes: what lies past the limit cannot decide
/// the outcome), whose first byte is at input offset `base`. `Ok(None)`: the
/// head is incomplete.
pub(crate) fn parse_head(
    buf: &[u8],
    base: u64,
    config: &Config,
) -> Result<Option<ParsedHead>, Error> {
    let mut parser = httparse::ParserConfig::default();
    parser.allow_obsolete_multiline_headers_in_responses(config.lenient.obs_fold);
    parser.allow_spaces_after_header_name_in_responses(config.lenient.whitespace_before_colon);
    let max_fields = config.max_fields;
    with_uninit_headers(max_fields, |headers| {
        let mut resp = httparse::Response::new(&mut []);
        let len = match parser.parse_response_with_uninit_headers(&mut resp, buf, headers) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::TooManyFields {
                    offset: base,
                    limit: max_fields,
                })
            }
            Err(e) => return Err(head_error(&parser, buf, e, base, max_fields)),
        };
        let max = config.max_head_bytes;
        if len > max {
            return Err(Error::HeadTooLarge {
                offset: base + max as u64,
                limit: max,
            });
        }
        let head = &buf[..len];
        let lenient_lf = config.lenient.bare_lf;
        let status = resp.code.unwrap_or(0);
        let version = if resp.version == Some(0) {
            Version::Http10
        } else {
            Version::Http11
        };

        // Status line: its end, the code range, CRLF.
        let line_end = find_lf(head, 0).unwrap_or(len - 1);
        let reason = status_line_rules(head, line_end, status, base, lenient_lf)?;
        if !lenient_lf && len >= 2 && head[len - 2] != b'\r' {
            return Err(Error::BareLineFeed {
                offset: base + len as u64 - 1,
            });
        }

        // Field lines: line endings, framing fields.
        let mut framing = FramingFields::default();
        let mut chunked_count = 0usize;
        let mut index = Vec::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            let name_at = || offset_in(head, h.name.as_bytes()).unwrap_or(0);
            let n1 = name_at() + h.name.len();
            // An empty value may point anywhere: then it sits after the name.
            let v0 = offset_in(head, h.value).unwrap_or(n1);
            let value_end = v0 + h.value.len();
            index.push([name_at(), n1, v0, value_end].map(|x| x as u32));
            // httparse accepts a CR only as part of CRLF, so a CR right after
            // the value settles it; otherwise (trailing whitespace, bare LF)
            // look for the LF.
            if !lenient_lf && head.get(value_end) != Some(&b'\r') {
                let lf = find_lf(head, value_end).unwrap_or(len - 1);
                if head[lf - 1] != b'\r' {
                    return Err(Error::BareLineFeed {
                        offset: base + lf as u64,
                    });
                }
            }
            let name = h.name.as_bytes();
            match name.len() {
                14 if token_eq_lower(name, b"content-length") => {
                    let at = base + name_at() as u64;
                    for el in list_elements(h.value) {
                        let Some(n) = parse_decimal(el) else {
                            return Err(Error::InvalidContentLength { offset: at });
                        };
                        if framing.content_length.is_some_and(|c| c != n) {
                            return Err(Error::ConflictingContentLength { offset: at });
                        }
                        framing.content_length = Some(n);
                    }
                }
                17 if token_eq_lower(name, b"transfer-encoding") => {
                    // One list across all fields; chunked at most once (RFC 9112 §6.1).
                    let at = base + name_at() as u64;
                    match transfer_codings(h.value) {
                        Some((count, last)) if chunked_count + count <= 1 => {
                            chunked_count += count;
                            framing.transfer_encoding = Some((last, at));
                        }
                        _ => framing.invalid_transfer_encoding = Some(at),
                    }
                }
                10 if token_eq_lower(name, b"connection") => {
                    for el in list_elements(h.value) {
                        framing.close |= el.eq_ignore_ascii_case(b"close");
                        framing.keep_alive |= el.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                _ => {}
            }
        }
        Ok(Some(ParsedHead {
            len,
            status,
            version,
            reason,
            fields_at: line_end + 1,
            index: index.into_boxed_slice(),
            framing,
        }))
    })
}

/// Check a complete status line, `line`: the bytes of a head through the
/// first LF (which must be in it). Its verdict is final as soon as the line
/// is complete, whatever follows: httparse rejects a prefix of a head only at
/// the offending byte, and the other rules look at the line alone. So an
/// invalid status line is reported when its line arrives, not when the
/// head ends. The connection checks the line before it parses the head, so
/// this error comes first however the head arrives (before an error in the
/// field lines, or one decided by the head's end).
pub(crate) fn check_status_line(line: &[u8], base: u64, config: &Config) -> Result<(), Error> {
    let mut parser = httparse::ParserConfig::default();
    parser.allow_obsolete_multiline_headers_in_responses(config.lenient.obs_fold);
    // No field line is in `line`: one slot is never used.
    with_uninit_headers(1, |headers| {
        let mut resp = httparse::Response::new(&mut []);
        match parser.parse_response_with_uninit_headers(&mut resp, line, headers) {
            // Partial: the line passed, the fields are to come.
            Ok(_) | Err(httparse::Error::TooManyHeaders) => {}
            Err(e) => return Err(head_error(&parser, line, e, base, config.max_fields)),
        }
        let status = resp.code.unwrap_or(0);
        status_line_rules(line, line.len() - 1, status, base, config.lenient.bare_lf)?;
        Ok(())
    })
}

/// The rules of a status line httparse accepted (its LF at `line_end` in
/// `head`): a status code from 100 (RFC 9110 §15), CRLF unless bare LFs are
/// allowed. Returns where the reason phrase is.
fn status_line_rules(
    head: &[u8],
    line_end: usize,
    status: u16,
    base: u64,
    lenient_lf: bool,
) -> Result<(u32, u32), Error> {
    let code_at = head[..line_end]
        .iter()
        .position(|&b| b == b' ')
        .map_or(0, |p| p + 1);
    if status < 100 {
        return Err(Error::InvalidStatusCode {
            offset: base + code_at as u64,
        });
    }
    if !lenient_lf && (line_end == 0 || head[line_end - 1] != b'\r') {
        return Err(Error::BareLineFeed {
            offset: base + line_end as u64,
        });
    }
    // The reason phrase from the raw line (httparse drops one holding
    // obs-text): after "HTTP/1.x SP 3DIGIT SP", up to the line end.
    let line_stop = if line_end > 0 && head[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    let reason_start = (code_at + 4).min(line_stop);
    Ok((reason_start as u32, line_stop as u32))
}

/// With [`Leniency::obs_fold`](crate::Leniency::obs_fold): check every LF of
/// the field section (folded lines hide LFs from the per-line checks), then
/// unfold in place: the line break of every continuation line becomes SP, as
/// RFC 9112 §5.2 allows ("replace each received obs-fold with one or more SP
/// octets"), wherever in the field line it is.
pub(crate) fn unfold_obs_fold(
    head: &mut [u8],
    fields_at: usize,
    base: u64,
    lenient_lf: bool,
) -> Result<(), Error> {
    // One pass over the LFs of the field section (a few per field line,
    // found with memchr): a bare LF is an error unless allowed; a fold is an
    // LF followed by SP or HTAB.
    let len = head.len();
    let mut folded = false;
    for i in memchr::memchr_iter(b'\n', &head[fields_at..len]).map(|i| i + fields_at) {
        if !lenient_lf && (i == 0 || head[i - 1] != b'\r') {
            return Err(Error::BareLineFeed {
                offset: base + i as u64,
            });
        }
        folded |= matches!(head.get(i + 1), Some(b' ' | b'\t'));
    }
    if folded {
        for i in fields_at..len - 1 {
            if head[i] == b'\n' && matches!(head[i + 1], b' ' | b'\t') {
                head[i] = b' ';
                if head[i - 1] == b'\r' {
                    head[i - 1] = b' ';
                }
            }
        }
    }
    Ok(())
}

/// Map an httparse error to ours, located at the offending byte.
fn head_error(
    parser: &httparse::ParserConfig,
    buf: &[u8],
    err: httparse::Error,
    base: u64,
    max_fields: usize,
) -> Error {
    let at = head_error_at(parser, buf, max_fields);
    let offset = base + at as u64;
    let byte = buf.get(at).copied().unwrap_or(0);
    if at > 0 && buf[at - 1] == b'\r' && byte != b'\n' {
        return Error::BareCarriageReturn { offset };
    }
    match err {
        httparse::Error::Version => Error::InvalidVersion { offset },
        httparse::Error::Status => {
            if byte.is_ascii_digit() || at < 12 {
                Error::InvalidStatusCode { offset }
            } else {
                Error::InvalidStatusLine { offset }
            }
        }
        httparse::Error::NewLine => Error::BareCarriageReturn { offset },
        httparse::Error::HeaderValue => Error::InvalidFieldValue { offset },
        httparse::Error::HeaderName if byte == b' ' || byte == b'\t' => {
            if at > 0 && buf[at - 1] == b'\n' {
                Error::ObsFold { offset }
            } else {
                Error::WhitespaceBeforeColon { offset }
            }
        }
        httparse::Error::HeaderName => Error::InvalidFieldName { offset },
        httparse::Error::TooManyHeaders => Error::TooManyFields {
            offset: base,
            limit: max_fields,
        },
        httparse::Error::Token => Error::InvalidStatusLine { offset },
    }
}
