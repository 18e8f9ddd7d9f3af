//! The chunked transfer coding's framing (RFC 9112 §7.1): chunk-size lines
//! with their extensions, and the CRLF after each chunk's data.

use crate::error::Error;
use crate::syntax::{hex_val, is_qdtext, is_quoted_pair_octet, is_tchar};

/// A decoder for the framing of a chunked body (RFC 9112 §7.1), from the
/// first chunk-size through the last-chunk line. The trailer section that
/// follows is a field section, parsed by [`Connection`](crate::Connection)
/// like a head; the decoder stops in front of it.
///
/// It never buffers: [`decode`](Self::decode) reads framing bytes from the
/// front of whatever input it is given and says what comes next, and the
/// caller takes chunk data itself and reports it with
/// [`consume_data`](Self::consume_data). Each call costs at most the bytes it
/// is given, so any split of the input costs the same in total.
///
/// Strict: `chunk-size` is `1*HEXDIG` of at most 16 digits (no sign, no
/// leading whitespace); extensions follow `*( BWS ";" BWS chunk-ext-name [ BWS
/// "=" BWS chunk-ext-val ] )` with no BWS before the CRLF, and are bounded
/// in total; every line ends in exactly CRLF.
///
/// ```
/// use pollhttp_proto::{ChunkedDecoder, ChunkedNext};
///
/// let input = b"5;ext=1\r\nhello\r\n0\r\n";
/// let mut dec = ChunkedDecoder::new(1024);
/// let mut pos = 0;
/// let mut body = Vec::new();
/// loop {
///     let (used, next) = dec.decode(&input[pos..], pos as u64).unwrap();
///     pos += used;
///     match next {
///         ChunkedNext::Data(remaining) => {
///             let n = (input.len() - pos).min(remaining as usize);
///             body.extend_from_slice(&input[pos..pos + n]);
///             dec.consume_data(n as u64);
///             pos += n;
///         }
///         ChunkedNext::Trailers => break,
///         ChunkedNext::NeedInput => unreachable!("the whole body is here"),
///     }
/// }
/// assert_eq!(body, b"hello");
/// assert_eq!(pos, input.len()); // the trailer section starts here
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk-size being read.
    size: u64,
    /// Its hex digits so far.
    digits: u8,
    /// Bytes of chunk extensions so far, in the whole body.
    ext_bytes: usize,
    max_ext: usize,
    /// An error is final: every later call returns it again.
    failed: Option<Error>,
}

/// What follows the framing bytes [`ChunkedDecoder::decode`] consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedNext {
    /// Every byte given was framing: more input is needed.
    NeedInput,
    /// Chunk data: this many bytes of the current chunk are still to come,
    /// starting right after the consumed framing bytes. Take what has arrived
    /// and report it with [`ChunkedDecoder::consume_data`].
    Data(u64),
    /// The last-chunk line ended: the trailer section (RFC 9112 §7.1.2)
    /// starts at the next byte. The decoder is done.
    Trailers,
}

/// Decoder states (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first HEXDIG of a chunk-size.
    Start,
    /// Inside the chunk-size digits.
    Size,
    /// Whitespace after the chunk-size (only `;` may follow).
    SizeBws,
    /// After `;`, before the extension name.
    ExtBws,
    ExtName,
    ExtNameBws,
    ExtValBws,
    ExtValToken,
    Quoted,
    QuotedEscape,
    /// Right after a quoted chunk-ext-val.
    ExtAfterValue,
    /// Whitespace after a value: only `;` may follow.
    ExtValueBws,
    /// Saw CR of the chunk line, expecting LF.
    LineLf,
    /// Inside chunk-data: bytes left.
    Data(u64),
    DataCr,
    DataLf,
    /// After the last-chunk line.
    Done,
}

impl State {
    /// Whether a byte in this state belongs to the chunk extensions (every
    /// byte between the chunk-size and its CR, whitespace included).
    fn in_extension(self) -> bool {
        !matches!(
            self,
            State::Start
                | State::Size
                | State::LineLf
                | State::Data(_)
                | State::DataCr
                | State::DataLf
                | State::Done
        )
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body, allowing at most
    /// `max_extension_bytes` bytes of chunk extensions in the whole body
    /// ([`Config::max_chunk_extension_bytes`](crate::Config::max_chunk_extension_bytes)).
    pub fn new(max_extension_bytes: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Start,
            size: 0,
            digits: 0,
            ext_bytes: 0,
            max_ext: max_extension_bytes,
            failed: None,
        }
    }

    /// Consume framing bytes from the front of `input`, whose first byte is
    /// at `offset` in the whole input (errors report offsets from it).
    /// Returns how many bytes were framing and what comes after them. Inside
    /// chunk data it consumes nothing and returns [`ChunkedNext::Data`].
    ///
    /// # Errors
    /// [`Error::InvalidChunkSize`], [`Error::ChunkSizeOverflow`],
    /// [`Error::InvalidChunkExtension`], [`Error::ChunkExtensionTooLarge`],
    /// [`Error::InvalidChunkLineEnding`], [`Error::MissingChunkDataCrlf`],
    /// each at the offending byte. An error is final: later calls return it
    /// again.
    #[inline]
    pub fn decode(&mut self, input: &[u8], offset: u64) -> Result<(usize, ChunkedNext), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.decode_inner(input, offset);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Report that `n` bytes of chunk data were taken (at most the
    /// [`ChunkedNext::Data`] count; more is clamped to it).
    #[inline]
    pub fn consume_data(&mut self, n: u64) {
        if let State::Data(left) = self.state {
            let left = left.saturating_sub(n);
            self.state = if left == 0 {
                State::DataCr
            } else {
                State::Data(left)
            };
        }
    }

    /// Whether the last-chunk line has been read: the trailer section is next.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes of chunk extensions read so far in this body.
    pub fn extension_bytes(&self) -> usize {
        self.ext_bytes
    }

    fn count_ext(&mut self, at: u64) -> Result<(), Error> {
        self.ext_bytes += 1;
        if self.ext_bytes > self.max_ext {
            return Err(Error::ChunkExtensionTooLarge {
                offset: at,
                limit: self.max_ext,
            });
        }
        Ok(())
    }

    #[inline]
    fn decode_inner(&mut self, input: &[u8], offset: u64) -> Result<(usize, ChunkedNext), Error> {
        match self.state {
            State::Data(left) => return Ok((0, ChunkedNext::Data(left))),
            State::Done => return Ok((0, ChunkedNext::Trailers)),
            _ => {}
        }
        let mut state = self.state;
        for (i, &b) in input.iter().enumerate() {
            let at = offset + i as u64;
            if state.in_extension() && b != b'\r' {
                self.count_ext(at)?;
            }
            state = match state {
                State::Start => match hex_val(b) {
                    Some(v) => {
                        self.size = u64::from(v);
                        self.digits = 1;
                        State::Size
                    }
                    None => return Err(Error::InvalidChunkSize { offset: at }),
                },
                State::Size => match hex_val(b) {
                    Some(v) => {
                        if self.digits >= 16 {
                            return Err(Error::ChunkSizeOverflow { offset: at });
                        }
                        self.digits += 1;
                        self.size = self.size << 4 | u64::from(v);
                        State::Size
                    }
                    None => match b {
                        b'\r' => State::LineLf,
                        b';' => {
                            self.count_ext(at)?;
                            State::ExtBws
                        }
                        b' ' | b'\t' => {
                            self.count_ext(at)?;
                            State::SizeBws
                        }
                        b'\n' => return Err(Error::InvalidChunkLineEnding { offset: at }),
                        _ => return Err(Error::InvalidChunkSize { offset: at }),
                    },
                },
                State::SizeBws => match b {
                    b' ' | b'\t' => State::SizeBws,
                    b';' => State::ExtBws,
                    _ => return Err(Error::InvalidChunkSize { offset: at }),
                },
                State::ExtBws => match b {
                    b' ' | b'\t' => State::ExtBws,
                    b if is_tchar(b) => State::ExtName,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::ExtName => match b {
                    b if is_tchar(b) => State::ExtName,
                    b' ' | b'\t' => State::ExtNameBws,
                    b'=' => State::ExtValBws,
                    b';' => State::ExtBws,
                    b'\r' => State::LineLf,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                // BWS only before ";" or "=", never before the CRLF.
                State::ExtNameBws => match b {
                    b' ' | b'\t' => State::ExtNameBws,
                    b'=' => State::ExtValBws,
                    b';' => State::ExtBws,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::ExtValBws => match b {
                    b' ' | b'\t' => State::ExtValBws,
                    b'"' => State::Quoted,
                    b if is_tchar(b) => State::ExtValToken,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::ExtValToken => match b {
                    b if is_tchar(b) => State::ExtValToken,
                    b' ' | b'\t' => State::ExtValueBws,
                    b';' => State::ExtBws,
                    b'\r' => State::LineLf,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::Quoted => match b {
                    b'"' => State::ExtAfterValue,
                    b'\\' => State::QuotedEscape,
                    b if is_qdtext(b) => State::Quoted,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::QuotedEscape => match b {
                    b if is_quoted_pair_octet(b) => State::Quoted,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::ExtAfterValue => match b {
                    b' ' | b'\t' => State::ExtValueBws,
                    b';' => State::ExtBws,
                    b'\r' => State::LineLf,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::ExtValueBws => match b {
                    b' ' | b'\t' => State::ExtValueBws,
                    b';' => State::ExtBws,
                    _ => return Err(Error::InvalidChunkExtension { offset: at }),
                },
                State::LineLf => {
                    if b != b'\n' {
                        return Err(Error::InvalidChunkLineEnding { offset: at });
                    }
                    let (next, out) = if self.size == 0 {
                        (State::Done, ChunkedNext::Trailers)
                    } else {
                        (State::Data(self.size), ChunkedNext::Data(self.size))
                    };
                    self.state = next;
                    return Ok((i + 1, out));
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(Error::MissingChunkDataCrlf { offset: at });
                    }
                    State::DataLf
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(Error::MissingChunkDataCrlf { offset: at });
                    }
                    State::Start
                }
                State::Data(_) | State::Done => unreachable!("returned above"),
            };
        }
        self.state = state;
        Ok((input.len(), ChunkedNext::NeedInput))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], max_ext: usize) -> Result<(alloc::vec::Vec<u8>, usize), Error> {
        let mut dec = ChunkedDecoder::new(max_ext);
        let mut pos = 0;
        let mut body = alloc::vec::Vec::new();
        loop {
            let (used, next) = dec.decode(&input[pos..], pos as u64)?;
            pos += used;
            match next {
                ChunkedNext::Data(left) => {
                    let n = (input.len() - pos).min(left as usize);
                    if n == 0 {
                        return Ok((body, pos));
                    }
                    body.extend_from_slice(&input[pos..pos + n]);
                    dec.consume_data(n as u64);
                    pos += n;
                }
                ChunkedNext::Trailers => return Ok((body, pos)),
                ChunkedNext::NeedInput => return Ok((body, pos)),
            }
        }
    }

    #[test]
    fn decodes_and_stops_at_the_trailer_section() {
        let input = b"3\r\nabc\r\nA;x=\"y\\\"\"\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        let (body, pos) = decode_all(input, 64).unwrap();
        assert_eq!(body, b"abc0123456789");
        assert_eq!(&input[pos..], b"Trailer: x\r\n\r\n");
    }

    #[test]
    fn errors_are_located_and_final() {
        let mut dec = ChunkedDecoder::new(64);
        assert_eq!(dec.decode(b"3\r\nabc", 10), Ok((3, ChunkedNext::Data(3))));
        dec.consume_data(3);
        assert_eq!(
            dec.decode(b"\rX", 16),
            Err(Error::MissingChunkDataCrlf { offset: 17 })
        );
        assert_eq!(
            dec.decode(b"\r\n", 16),
            Err(Error::MissingChunkDataCrlf { offset: 17 })
        );
        assert_eq!(
            decode_all(b"11111111111111111\r\n", 0),
            Err(Error::ChunkSizeOverflow { offset: 16 })
        );
        assert_eq!(
            decode_all(b"1;a\r\n", 1),
            Err(Error::ChunkExtensionTooLarge {
                offset: 2,
                limit: 1
            })
        );
        assert_eq!(
            decode_all(b"1\n", 1),
            Err(Error::InvalidChunkLineEnding { offset: 1 })
        );
    }

    #[test]
    fn any_split_gives_the_same_result() {
        let input = b"5 ; a = \"q\" ; b\r\nhello\r\n2\r\nxy\r\n0;z\r\n";
        let whole = decode_all(input, 1024).unwrap();
        for cut in 0..input.len() {
            let mut dec = ChunkedDecoder::new(1024);
            let mut body = alloc::vec::Vec::new();
            let mut pos = 0;
            for piece in [&input[..cut], &input[..]] {
                loop {
                    let (used, next) = dec.decode(&piece[pos..], pos as u64).unwrap();
                    pos += used;
                    match next {
                        ChunkedNext::Data(left) => {
                            let n = (piece.len() - pos).min(left as usize);
                            if n == 0 {
                                break;
                            }
                            body.extend_from_slice(&piece[pos..pos + n]);
                            dec.consume_data(n as u64);
                            pos += n;
                        }
                        _ => break,
                    }
                }
            }
            assert!(dec.is_done(), "split at {cut}");
            assert_eq!((body, pos), whole, "split at {cut}");
        }
    }
}
