//! Content codings (RFC 9110 §8.4): which ones a request asks for
//! ([`ContentCoding`], `Accept-Encoding`), how a response's
//! `Content-Encoding` list is read, and the chain of streaming decoders that
//! undoes it, outermost coding first, into the body sink.
//!
//! Decoders: gzip and deflate (flate2 on zlib-rs), br (`brotli-decompressor`,
//! pure Rust), zstd (the `zstd` crate, zstd's C library, with its window
//! held to 8 MiB as RFC 9659 §3 asks of HTTP decoders). Every decoder writes
//! into the sink, which counts decoded bytes against the body size limit: a
//! decompression bomb of any coding, stacked or not, stops there.

use std::io::{self, Write};

use pollhttp_proto::Fields;

use super::sink::{empty_sink, Sink};

/// A content coding pollhttp decodes (RFC 9110 §8.4.1, RFC 7932, RFC 8878).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentCoding {
    /// `gzip` (and `x-gzip`), RFC 1952.
    Gzip,
    /// `deflate`: zlib-wrapped deflate, RFC 1950.
    Deflate,
    /// `br`: Brotli, RFC 7932.
    Br,
    /// `zstd`: Zstandard, RFC 8878 (window at most 8 MiB, RFC 9659).
    Zstd,
}

impl ContentCoding {
    /// Every coding pollhttp decodes, in the order `Accept-Encoding` lists
    /// them for curl's `--compressed`: zstd (decodes fastest), br (smallest
    /// for text), then gzip and deflate, which every server has.
    pub const ALL: [ContentCoding; 4] = [
        ContentCoding::Zstd,
        ContentCoding::Br,
        ContentCoding::Gzip,
        ContentCoding::Deflate,
    ];

    /// Godot's `accept_gzip` codings, the default of
    /// [`BodySettings::codings`](crate::BodySettings::codings).
    pub const GZIP_DEFLATE: [ContentCoding; 2] = [ContentCoding::Gzip, ContentCoding::Deflate];

    /// The coding's token as `Accept-Encoding` and `Content-Encoding` write it.
    pub fn token(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Deflate => "deflate",
            ContentCoding::Br => "br",
            ContentCoding::Zstd => "zstd",
        }
    }

    /// The coding named by `token` (ASCII case-insensitive; `x-gzip` is
    /// gzip, RFC 9110 §8.4.1.3), `None` for one pollhttp does not decode.
    pub fn from_token(token: &str) -> Option<ContentCoding> {
        let t = token.trim();
        [
            ("gzip", ContentCoding::Gzip),
            ("x-gzip", ContentCoding::Gzip),
            ("deflate", ContentCoding::Deflate),
            ("br", ContentCoding::Br),
            ("zstd", ContentCoding::Zstd),
        ]
        .into_iter()
        .find(|(name, _)| t.eq_ignore_ascii_case(name))
        .map(|(_, c)| c)
    }
}

/// Most codings one response may stack (curl allows five): each layer
/// holds a decoder's window (up to 16 MiB for br), so the count bounds the
/// memory a response can make a request hold.
pub(crate) const MAX_STACKED: usize = 3;

/// The `Accept-Encoding` value for `codings`, in their order, each once;
/// `None` when there are none.
pub(crate) fn accept_encoding(codings: &[ContentCoding]) -> Option<String> {
    let mut value = String::new();
    for (i, c) in codings.iter().enumerate() {
        if codings[..i].contains(c) {
            continue;
        }
        if !value.is_empty() {
            value.push_str(", ");
        }
        value.push_str(c.token());
    }
    (!value.is_empty()).then_some(value)
}

/// The codings of a response's `Content-Encoding` (every field line), in the
/// order they were applied; `identity` and empty elements skipped.
///
/// # Errors
/// The field's value as received when it names a coding pollhttp does not
/// decode, or stacks more than [`MAX_STACKED`].
pub(crate) fn content_codings(fields: &Fields) -> Result<Vec<ContentCoding>, String> {
    let mut codings = Vec::new();
    let mut refused = false;
    for line in fields.get_all("content-encoding") {
        for token in line.split(|&b| b == b',') {
            let Ok(token) = std::str::from_utf8(token) else {
                refused = true;
                continue;
            };
            let token = token.trim_matches([' ', '\t']);
            if token.is_empty() || token.eq_ignore_ascii_case("identity") {
                continue;
            }
            match ContentCoding::from_token(token) {
                Some(c) => codings.push(c),
                None => refused = true,
            }
        }
    }
    if refused || codings.len() > MAX_STACKED {
        let value: Vec<String> = fields
            .get_all("content-encoding")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        return Err(value.join(", "));
    }
    Ok(codings)
}

/// One stage of the decoding chain: a decoder writing into the next stage,
/// or the sink itself at the end.
pub(crate) trait Layer: Write + Send {
    /// The sink at the end of the chain.
    fn sink(&mut self) -> &mut Sink;
    /// End the stream: the decoder checks that it is complete and writes
    /// what it holds; the sink comes back whatever it says, with the first
    /// error of the chain.
    fn finish(self: Box<Self>) -> (Sink, io::Result<()>);
}

impl Layer for Sink {
    fn sink(&mut self) -> &mut Sink {
        self
    }
    fn finish(self: Box<Self>) -> (Sink, io::Result<()>) {
        (*self, Ok(()))
    }
}

/// The error of a stage that failed before: every later call gets it.
fn failed_before() -> io::Error {
    io::Error::other("the body's decoding stopped")
}

macro_rules! layer {
    ($name:ident, $inner:ty, |$d:ident| $finish:expr) => {
        /// A decoder, and whether it failed: a failure is sticky. (A
        /// writer whose output failed keeps its input for another try,
        /// which a stage after a failure must not take: it may have
        /// decoded part of it already.)
        struct $name($inner, bool);

        impl Write for $name {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.1 {
                    return Err(failed_before());
                }
                let r = self.0.write(buf);
                self.1 = r.is_err();
                r
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }

        impl Layer for $name {
            fn sink(&mut self) -> &mut Sink {
                self.0.get_mut().sink()
            }
            fn finish(mut self: Box<Self>) -> (Sink, io::Result<()>) {
                let $d = &mut self.0;
                let r: io::Result<()> = match self.1 {
                    true => Err(failed_before()),
                    false => $finish,
                };
                // The decoder is dropped holding a closed sink: flate2's
                // decoders finish again on drop, and must not decode what
                // they still hold into a sink without a limit.
                let inner = std::mem::replace(self.0.get_mut(), Box::new(closed_sink()));
                let (sink, inner_r) = inner.finish();
                (sink, r.and(inner_r))
            }
        }
    };
}

layer!(GzipLayer, flate2::write::GzDecoder<Box<dyn Layer>>, |d| d
    .try_finish());
layer!(
    DeflateLayer,
    flate2::write::ZlibDecoder<Box<dyn Layer>>,
    |d| d.try_finish()
);
layer!(
    ZstdLayer,
    zstd::stream::write::Decoder<'static, Box<dyn Layer>>,
    |d| d.do_finish()
);

/// A sink that takes no byte (a limit of 0): what a decoder holds once its
/// real sink was taken back.
fn closed_sink() -> Sink {
    let mut sink = empty_sink();
    sink.limit = Some(0);
    sink
}

/// zstd's window limit for HTTP (RFC 9659 §3: 8 MiB): a frame asking for
/// more is refused rather than allocated.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Output buffer of the brotli decoder (what it writes to the next stage at
/// once).
const BR_BUFFER: usize = 16 * 1024;

type BrState = brotli_decompressor::BrotliState<
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
>;

/// The br stage: `brotli-decompressor`'s stream decoder driven directly,
/// in its strict mode. (Its `DecompressorWriter` also accepts "Large
/// Window Brotli", an extension outside RFC 7932 whose window, up to
/// 1 GiB, the decoder allocates as the stream says: refused here, so a
/// br body holds at most RFC 7932's 16 MiB window, and the window the
/// stream declares at most.)
struct BrLayer {
    state: Box<BrState>,
    out: Box<[u8]>,
    total_out: usize,
    /// The stream ended (its last meta-block was decoded).
    done: bool,
    /// A call failed: every later one fails (sticky).
    failed: bool,
    next: Box<dyn Layer>,
}

impl BrLayer {
    fn new(next: Box<dyn Layer>) -> BrLayer {
        use brotli_decompressor::StandardAlloc;
        BrLayer {
            state: Box::new(BrState::new_strict(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            )),
            out: vec![0u8; BR_BUFFER].into_boxed_slice(),
            total_out: 0,
            done: false,
            failed: false,
            next,
        }
    }

    /// Decode `input` (empty: the end of the body), writing every output
    /// to the next stage; whether the stream is complete.
    fn decode(&mut self, input: &[u8]) -> io::Result<bool> {
        use brotli_decompressor::{BrotliDecompressStream, BrotliResult};
        let mut avail_in = input.len();
        let mut in_offset = 0;
        loop {
            let mut avail_out = self.out.len();
            let mut out_offset = 0;
            let result = BrotliDecompressStream(
                &mut avail_in,
                &mut in_offset,
                input,
                &mut avail_out,
                &mut out_offset,
                &mut self.out,
                &mut self.total_out,
                &mut self.state,
            );
            self.next.write_all(&self.out[..out_offset])?;
            match result {
                BrotliResult::NeedsMoreOutput => continue,
                BrotliResult::NeedsMoreInput if avail_in == 0 => return Ok(false),
                // (The decoder takes all input before asking for more: not
                // looped on, should it ever not.)
                BrotliResult::NeedsMoreInput => {
                    return Err(io::Error::other("the br decoder left input unread"))
                }
                BrotliResult::ResultSuccess => {
                    self.done = true;
                    if avail_in > 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "bytes after the end of the br stream",
                        ));
                    }
                    return Ok(true);
                }
                BrotliResult::ResultFailure => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("corrupt br stream ({:?})", self.state.error_code),
                    ))
                }
            }
        }
    }
}

impl Write for BrLayer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(failed_before());
        }
        if self.done && !buf.is_empty() {
            self.failed = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes after the end of the br stream",
            ));
        }
        let r = self.decode(buf);
        self.failed = r.is_err();
        r.map(|_| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.next.flush()
    }
}

impl Layer for BrLayer {
    fn sink(&mut self) -> &mut Sink {
        self.next.sink()
    }
    fn finish(mut self: Box<Self>) -> (Sink, io::Result<()>) {
        let r = match (self.failed, self.done) {
            (true, _) => Err(failed_before()),
            (false, true) => Ok(()),
            (false, false) => self.decode(&[]).and_then(|complete| match complete {
                true => Ok(()),
                false => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the br stream is truncated",
                )),
            }),
        };
        let (sink, inner_r) = self.next.finish();
        (sink, r.and(inner_r))
    }
}

/// The decoding chain for `codings` (in the order they were applied) over
/// `sink`: the last coding applied is decoded first.
pub(crate) fn chain(codings: &[ContentCoding], sink: Sink) -> io::Result<Box<dyn Layer>> {
    let mut layer: Box<dyn Layer> = Box::new(sink);
    for c in codings {
        layer = match c {
            ContentCoding::Gzip => Box::new(GzipLayer(flate2::write::GzDecoder::new(layer), false)),
            ContentCoding::Deflate => {
                Box::new(DeflateLayer(flate2::write::ZlibDecoder::new(layer), false))
            }
            ContentCoding::Br => Box::new(BrLayer::new(layer)),
            ContentCoding::Zstd => {
                let mut d = zstd::stream::write::Decoder::new(layer)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(ZstdLayer(d, false))
            }
        };
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codings(lines: &[&str]) -> Result<Vec<ContentCoding>, String> {
        let mut head = String::from("HTTP/1.1 200 OK\r\n");
        for l in lines {
            head.push_str(&format!("Content-Encoding: {l}\r\n"));
        }
        head.push_str("Content-Length: 0\r\n\r\n");
        content_codings(crate::parsed_head(&head).fields())
    }

    #[test]
    fn content_encoding_lists_read_in_applied_order() {
        use ContentCoding::*;
        assert_eq!(codings(&[]), Ok(vec![]));
        assert_eq!(codings(&["identity"]), Ok(vec![]));
        assert_eq!(codings(&["X-Gzip"]), Ok(vec![Gzip]));
        assert_eq!(codings(&["deflate, gzip"]), Ok(vec![Deflate, Gzip]));
        assert_eq!(codings(&["br", " zstd ,"]), Ok(vec![Br, Zstd]));
        assert_eq!(codings(&["gzip, compress"]), Err("gzip, compress".into()));
        assert_eq!(
            codings(&["gzip, gzip, gzip, gzip"]),
            Err("gzip, gzip, gzip, gzip".into())
        );
    }

    /// Generated bytes through every decoder and stack, in generated
    /// pieces, with a small limit: each ends in an error or in output
    /// within the limit, never a panic.
    #[test]
    fn generated_input_through_every_chain_never_panics() {
        use ContentCoding::*;
        let stacks: &[&[ContentCoding]] = &[&[Gzip], &[Deflate], &[Br], &[Zstd], &[Br, Zstd, Gzip]];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Real frames' first bytes, so the decoders get past their headers.
        let heads: [&[u8]; 4] = [
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3],
            &[0x78, 0x9c],
            &[0x0b],
            &[0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x00],
        ];
        for round in 0..2_000 {
            let stack = stacks[round % stacks.len()];
            let mut input = heads[(next() % 4) as usize].to_vec();
            input.extend((0..(next() % 300)).map(|_| next() as u8));
            let mut sink = empty_sink();
            sink.limit = Some(1 << 16);
            let mut chain = chain(stack, sink).unwrap();
            let mut rest = &input[..];
            let mut failed = false;
            while !rest.is_empty() && !failed {
                let n = (1 + next() % 64).min(rest.len() as u64) as usize;
                failed = chain.write_all(&rest[..n]).is_err();
                rest = &rest[n..];
            }
            let (sink, _) = chain.finish();
            assert!(sink.total <= 1 << 16);
        }
    }

    /// `data` as a br stream of stored (uncompressed) meta-blocks (RFC 7932
    /// §9.2) of the sizes `sizes` cycles through, with a 1 KiB window (so
    /// the decoder's output comes in pieces of at most 1 KiB, some small).
    fn br_stored(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        // LSB first: WBITS 10 (1, 000, 010).
        let (mut bits, mut n) = (0x21u64, 7usize);
        let mut out = Vec::new();
        let mut rest = data;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (block, after) = rest.split_at((*size).clamp(1, 1 << 16).min(rest.len()));
            rest = after;
            // ISLAST 0, MNIBBLES 00 (4), MLEN-1 (16 bits), ISUNCOMPRESSED 1,
            // then zeros to the byte.
            n += 3;
            bits |= ((block.len() as u64) - 1) << n;
            n += 16;
            bits |= 1 << n;
            n += 1;
            out.extend_from_slice(&bits.to_le_bytes()[..n.div_ceil(8)]);
            out.extend_from_slice(block);
            (bits, n) = (0, 0);
        }
        // ISLAST 1, ISLASTEMPTY 1.
        bits |= 0b11 << n;
        n += 2;
        out.extend_from_slice(&bits.to_le_bytes()[..n.div_ceil(8)]);
        out
    }

    /// Found by the content_decoders fuzz target: the br stage, whose
    /// output failed at the limit after it had taken its input, reported
    /// nothing taken; zstd before it gave the same input again when
    /// finished, and a smaller later piece got past the limit: bytes that
    /// are not the body's. A failure is now sticky, in every stage and in
    /// the sink.
    #[test]
    fn after_the_limit_nothing_more_reaches_the_sink() {
        use ContentCoding::*;
        let data: Vec<u8> = (0..12_000u32)
            .flat_map(|i| format!("line {i}: {}\n", i * 7919 % 10007).into_bytes())
            .collect();
        assert!(data.len() > 150_000);
        let br = br_stored(&data, &[1000, 37, 300, 5, 4000]);
        let mut whole = empty_sink();
        let mut whole_chain = chain(&[Br], std::mem::replace(&mut whole, empty_sink())).unwrap();
        whole_chain.write_all(&br).unwrap();
        let (whole, r) = whole_chain.finish();
        assert!(
            r.is_ok() && whole.memory.as_slice() == data,
            "the stored stream decodes"
        );
        let coded = zstd::encode_all(&br[..], 1).unwrap();
        for limit in [0, 1, 50, 100, 128, 1500, 70_000] {
            for piece in [1, 7, 100, 4096, coded.len()] {
                let mut sink = empty_sink();
                sink.limit = Some(limit);
                let mut chain = chain(&[Br, Zstd], sink).unwrap();
                for c in coded.chunks(piece) {
                    if chain.write_all(c).is_err() {
                        break;
                    }
                }
                let (sink, r) = chain.finish();
                assert!(r.is_err(), "{limit}/{piece}: over the limit");
                assert!(sink.total <= limit, "{limit}/{piece}: {}", sink.total);
                assert!(
                    data.starts_with(sink.memory.as_slice()),
                    "{limit}/{piece}: {} bytes that are not the body's start",
                    sink.memory.len()
                );
            }
        }
    }

    #[test]
    fn accept_encoding_keeps_order_and_drops_repeats() {
        use ContentCoding::*;
        assert_eq!(accept_encoding(&[]), None);
        assert_eq!(
            accept_encoding(&ContentCoding::ALL).as_deref(),
            Some("zstd, br, gzip, deflate")
        );
        assert_eq!(
            accept_encoding(&[Gzip, Br, Gzip]).as_deref(),
            Some("gzip, br")
        );
    }
}
