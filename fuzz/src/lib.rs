//! Shared helpers of the pollhttp-proto fuzz targets: a byte reader for
//! hand-decoding fuzz input, the scripted peer that drives a `Connection`
//! and checks its invariants after every event (the same source file as
//! proto's test harness, `proto/tests/common/mod.rs`), and an independent
//! reference decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! Every `assert!` here is an invariant of pollhttp-proto: a failure is either
//! a bug in proto or in this file, never "expected".

/// The scripted peer, shared with proto's integration tests.
#[path = "../../proto/tests/common/mod.rs"]
mod harness;

pub use harness::*;

// ------------------------------------------------------------------ input

/// Hand-decodes fuzz input: fixed-size parameters from the front, the rest is
/// data. Past the end it reads zeros, so every input is usable.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    /// Split points for `len` bytes of data: a count byte (low nibble: number
    /// of cuts; bit 4: cut before every byte), then one gap byte per cut.
    /// Returns ascending cut offsets in `1..len`.
    pub fn cuts(&mut self, len_of_rest: impl FnOnce(usize) -> usize) -> Vec<usize> {
        let spec = self.byte();
        let n = (spec & 0x0f) as usize;
        let gaps: Vec<u8> = (0..n).map(|_| self.byte()).collect();
        let len = len_of_rest(self.data.len());
        if spec & 0x10 != 0 {
            return (1..len).collect();
        }
        let mut cuts = Vec::new();
        let mut pos = 0usize;
        for g in gaps {
            pos += g as usize + 1;
            if pos >= len {
                break;
            }
            cuts.push(pos);
        }
        cuts
    }
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// A small limit from one byte: high bit set means `default`, else `scale *
/// (b & 0x7f)` (zero included: proto must cope with a limit of 0).
pub fn limit(b: u8, scale: usize, default: usize) -> usize {
    if b & 0x80 != 0 {
        default
    } else {
        scale * (b & 0x7f) as usize
    }
}

// ------------------------------------------------------------------ grammar

pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

// ------------------------------------------------------------------ reference chunked decoder

/// Limits the reference decoder applies, as pollhttp-proto documents them.
#[derive(Debug, Clone, Copy)]
pub struct RefLimits {
    pub max_ext: usize,
    pub max_trailer_bytes: usize,
    pub max_trailer_fields: usize,
    pub body_limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefErr {
    /// Input ended before the message did.
    Incomplete,
    /// A grammar violation in a chunk-size line or after chunk-data.
    Syntax,
    /// More than 16 hex digits.
    SizeOverflow,
    ExtTooLarge,
    BodyTooLarge,
    /// Anything wrong in the trailer section (syntax or limits).
    Trailer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefResult {
    Ok {
        body: Vec<u8>,
        trailers: Vec<(Vec<u8>, Vec<u8>)>,
        /// Where the trailer section starts (after the last-chunk line).
        trailer_start: usize,
        /// Bytes of the chunked message (through the final CRLF).
        consumed: usize,
    },
    Err {
        kind: RefErr,
        /// The offset the error is reported at.
        offset: usize,
        /// The start of the trailer section when the error is inside it
        /// (after the last-chunk line).
        trailer_start: Option<usize>,
    },
}

/// A strict RFC 9112 §7.1 decoder for a complete input (EOF after it):
///
/// ```text
/// chunked-body   = *chunk last-chunk trailer-section CRLF
/// chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-size     = 1*HEXDIG            ; at most 16 digits here
/// last-chunk     = 1*("0") [ chunk-ext ] CRLF
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token
/// chunk-ext-val  = token / quoted-string
/// trailer-section = *( field-line CRLF )
/// field-line     = field-name ":" OWS field-value OWS
/// ```
///
/// Errors are reported at the first byte that no valid message can continue
/// with, except the limits, reported as proto documents them.
pub fn reference_chunked(input: &[u8], lim: RefLimits) -> RefResult {
    let mut p = RefChunked {
        b: input,
        pos: 0,
        ext_total: 0,
        lim,
        trailer_start: None,
    };
    match p.message() {
        Ok(r) => r,
        Err((kind, offset)) => RefResult::Err {
            kind,
            offset,
            trailer_start: p.trailer_start,
        },
    }
}

type RefRes<T> = Result<T, (RefErr, usize)>;

struct RefChunked<'a> {
    b: &'a [u8],
    pos: usize,
    ext_total: usize,
    lim: RefLimits,
    trailer_start: Option<usize>,
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_qdtext(b: u8) -> bool {
    b == b'\t'
        || b == b' '
        || b == 0x21
        || (0x23..=0x5b).contains(&b)
        || (0x5d..=0x7e).contains(&b)
        || b >= 0x80
}

impl RefChunked<'_> {
    fn peek(&self) -> RefRes<u8> {
        self.b
            .get(self.pos)
            .copied()
            .ok_or((RefErr::Incomplete, self.b.len()))
    }

    fn syntax(&self) -> (RefErr, usize) {
        (RefErr::Syntax, self.pos)
    }

    fn message(&mut self) -> RefRes<RefResult> {
        let mut body = Vec::new();
        loop {
            let size = self.chunk_line()?;
            if size == 0 {
                break;
            }
            let data_start = self.pos;
            if let Some(limit) = self.lim.body_limit {
                // Reported at the start of the chunk-data that would pass it.
                if (body.len() as u64).saturating_add(size) > limit {
                    return Err((RefErr::BodyTooLarge, data_start));
                }
            }
            let avail = (self.b.len() - data_start) as u64;
            if avail < size {
                return Err((RefErr::Incomplete, self.b.len()));
            }
            let end = data_start + size as usize;
            body.extend_from_slice(&self.b[data_start..end]);
            self.pos = end;
            for want in [b'\r', b'\n'] {
                if self.peek()? != want {
                    return Err(self.syntax());
                }
                self.pos += 1;
            }
        }
        let trailer_start = self.pos;
        let trailers = self.trailers()?;
        Ok(RefResult::Ok {
            body,
            trailers,
            trailer_start,
            consumed: self.pos,
        })
    }

    /// chunk-size [ chunk-ext ] CRLF; returns the size.
    fn chunk_line(&mut self) -> RefRes<u64> {
        let start = self.pos;
        let mut size: u64 = 0;
        while let Some(&c) = self.b.get(self.pos) {
            let Some(v) = (c as char).to_digit(16) else {
                break;
            };
            if self.pos - start == 16 {
                return Err((RefErr::SizeOverflow, self.pos));
            }
            size = size << 4 | u64::from(v);
            self.pos += 1;
        }
        if self.pos == start {
            self.peek()?;
            return Err(self.syntax());
        }
        // Extensions: parse the grammar, then check the byte budget. Proto
        // counts every byte between the size and the CR, each before looking at
        // its syntax (so an offending byte counts, unless it is a CR or the
        // first byte after the digits, which the size parser rejects), and
        // reports the first byte past the budget.
        let ext_start = self.pos;
        let r = self.chunk_ext();
        let counted_end = match &r {
            Ok(()) => self.pos, // at the CR
            Err((RefErr::Incomplete, _)) => self.b.len(),
            Err((_, at)) if *at > ext_start && self.b[*at] != b'\r' => *at + 1,
            Err((_, at)) => *at,
        };
        let room = self.lim.max_ext - self.ext_total;
        if counted_end - ext_start > room {
            return Err((RefErr::ExtTooLarge, ext_start + room));
        }
        let ext_end = self.pos;
        r?;
        self.ext_total += ext_end - ext_start;
        // CRLF
        self.pos += 1; // the CR chunk_ext stopped at
        if self.peek()? != b'\n' {
            return Err(self.syntax());
        }
        self.pos += 1;
        Ok(size)
    }

    /// `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`
    /// followed by CR; leaves `pos` at the CR.
    fn chunk_ext(&mut self) -> RefRes<()> {
        loop {
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            match self.peek()? {
                // No BWS before the CRLF.
                b'\r' if !is_ws(self.b[self.pos - 1]) => return Ok(()),
                b';' => self.pos += 1,
                _ => return Err(self.syntax()),
            }
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            if !is_tchar(self.peek()?) {
                return Err(self.syntax());
            }
            while is_tchar(self.peek()?) {
                self.pos += 1;
            }
            // [ BWS "=" BWS value ]: look past whitespace for "=".
            let save = self.pos;
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            if self.peek()? != b'=' {
                self.pos = save;
                continue;
            }
            self.pos += 1;
            while is_ws(self.peek()?) {
                self.pos += 1;
            }
            let c = self.peek()?;
            if c == b'"' {
                self.pos += 1;
                loop {
                    let c = self.peek()?;
                    if c == b'"' {
                        self.pos += 1;
                        break;
                    } else if c == b'\\' {
                        self.pos += 1;
                        let e = self.peek()?;
                        if !(e == b'\t' || e == b' ' || (0x21..=0x7e).contains(&e) || e >= 0x80) {
                            return Err(self.syntax());
                        }
                        self.pos += 1;
                    } else if is_qdtext(c) {
                        self.pos += 1;
                    } else {
                        return Err(self.syntax());
                    }
                }
            } else if is_tchar(c) {
                while is_tchar(self.peek()?) {
                    self.pos += 1;
                }
            } else {
                return Err(self.syntax());
            }
        }
    }

    /// `*( field-line CRLF ) CRLF` with proto's limits. Trailer errors are not
    /// located precisely (proto locates them with httparse); the reported
    /// offset is the start of the section.
    fn trailers(&mut self) -> RefRes<Vec<(Vec<u8>, Vec<u8>)>> {
        let start = self.pos;
        self.trailer_start = Some(start);
        let terr = (RefErr::Trailer, start);
        let mut fields = Vec::new();
        loop {
            // Too large: proto gives up once more than the budget is buffered.
            if self.pos - start > self.lim.max_trailer_bytes && !fields.is_empty() {
                return Err(terr);
            }
            match self.peek()? {
                b'\r' => {
                    self.pos += 1;
                    if self.peek()? != b'\n' {
                        return Err(terr);
                    }
                    self.pos += 1;
                    if !fields.is_empty() && self.pos - start > self.lim.max_trailer_bytes {
                        return Err(terr);
                    }
                    return Ok(fields);
                }
                _ if fields.len() == self.lim.max_trailer_fields => return Err(terr),
                _ => {}
            }
            let n0 = self.pos;
            while is_tchar(self.peek()?) {
                self.pos += 1;
            }
            if self.pos == n0 || self.peek()? != b':' {
                return Err(terr);
            }
            let name = self.b[n0..self.pos].to_vec();
            self.pos += 1;
            let v0 = self.pos;
            loop {
                let c = self.peek()?;
                if c == b'\r' {
                    break;
                }
                if !(c == b'\t' || (c >= 0x20 && c != 0x7f)) {
                    return Err(terr);
                }
                self.pos += 1;
            }
            let value = trim_ows(&self.b[v0..self.pos]).to_vec();
            self.pos += 1;
            if self.peek()? != b'\n' {
                return Err(terr);
            }
            self.pos += 1;
            fields.push((name, value));
        }
    }
}

/// Encode `body` as one chunk (none when empty), the last-chunk and `trailers`.
pub fn encode_chunked(body: &[u8], trailers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    if !body.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        out.extend_from_slice(n);
        out.push(b':');
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
