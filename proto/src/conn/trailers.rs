//! The trailer section of a chunked body (RFC 9112 §7.1.2): field lines
//! after the last-chunk, up to an empty line, parsed like the fields of a
//! head and bounded by their own limits.

use crate::config::Config;
use crate::error::Error;
use crate::locate::{fields_error_at, with_headers};
use crate::syntax::bare_lf_in;

/// A complete trailer section at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedTrailers {
    /// Bytes of the section, the empty line included.
    pub len: usize,
    /// Field lines (0: the section is just the empty line).
    pub field_count: usize,
}

/// Parse the trailer section at the front of `buf` (everything buffered),
/// whose first byte is at input offset `base`. Only the first
/// `config.max_trailer_bytes + 1` bytes are parsed: what lies past the limit
/// cannot decide the outcome. `Ok(None)`: incomplete.
pub(crate) fn parse_trailers(
    buf: &[u8],
    base: u64,
    config: &Config,
) -> Result<Option<ParsedTrailers>, Error> {
    let lenient_lf = config.lenient.bare_lf;
    // An empty section: just the line ending.
    match buf {
        [] | [b'\r'] => return Ok(None),
        [b'\r', b'\n', ..] => {
            return Ok(Some(ParsedTrailers {
                len: 2,
                field_count: 0,
            }))
        }
        [b'\r', ..] => return Err(Error::InvalidChunkLineEnding { offset: base + 1 }),
        [b'\n', ..] if lenient_lf => {
            return Ok(Some(ParsedTrailers {
                len: 1,
                field_count: 0,
            }))
        }
        [b'\n', ..] => return Err(Error::BareLineFeed { offset: base }),
        _ => {}
    }
    let buf = &buf[..buf.len().min(config.max_trailer_bytes.saturating_add(1))];
    let max_fields = config.max_trailer_fields;
    let parsed = with_headers(max_fields, |headers| {
        match httparse::parse_headers(buf, headers) {
            Ok(httparse::Status::Complete((len, parsed))) => Ok(Some((len, parsed.len()))),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(httparse::Error::TooManyHeaders) => Err(Error::TooManyTrailerFields {
                offset: base,
                limit: max_fields,
            }),
            Err(_) => Err(Error::InvalidTrailerField {
                offset: base + fields_error_at(buf, max_fields) as u64,
            }),
        }
    })?;
    let Some((len, field_count)) = parsed else {
        return Ok(None);
    };
    let max = config.max_trailer_bytes;
    if len > max {
        return Err(Error::TrailerTooLarge {
            offset: base + max as u64,
            limit: max,
        });
    }
    if !lenient_lf {
        if let Some(i) = bare_lf_in(&buf[..len]) {
            return Err(Error::BareLineFeed {
                offset: base + i as u64,
            });
        }
    }
    Ok(Some(ParsedTrailers { len, field_count }))
}
