//! Entry points for the cargo-fuzz targets in `fuzz/`, built only with
//! `--cfg fuzzing` (as cargo-fuzz builds): not part of the API.

use std::io::Write;

use crate::request::coding::chain;
use crate::request::sink::{empty_sink, SinkError};
use crate::ContentCoding;

/// How a body decoded by [`decode`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeEnd {
    /// Complete and well-formed.
    Complete,
    /// The body size limit stopped it.
    Limit,
    /// The decoders refused it (corrupt, truncated, a window too large).
    Corrupt,
}

/// What [`decode`] made of a body.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The decoded bytes the sink took.
    pub output: Vec<u8>,
    /// How it ended.
    pub end: DecodeEnd,
}

/// Decode `input`, coded by `codings` in the order they were applied (as a
/// `Content-Encoding` list), through the decoding chain a response gets,
/// fed in the pieces `cuts` (ascending offsets) make, into a memory sink
/// with the body size limit `limit`.
pub fn decode(
    codings: &[ContentCoding],
    limit: Option<u64>,
    input: &[u8],
    cuts: &[usize],
) -> Decoded {
    let mut sink = empty_sink();
    sink.limit = limit;
    let mut layer = match chain(codings, sink) {
        Ok(l) => l,
        Err(_) => {
            return Decoded {
                output: Vec::new(),
                end: DecodeEnd::Corrupt,
            }
        }
    };
    let mut failed = false;
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(at, input.len());
        if layer.write_all(&input[at..cut]).is_err() {
            failed = true;
            break;
        }
        at = cut;
    }
    let (mut sink, finished) = layer.finish();
    let end = match (sink.error.take(), failed || finished.is_err()) {
        (Some(SinkError::Limit(_)), _) => DecodeEnd::Limit,
        (Some(SinkError::Write(_)), _) | (None, true) => DecodeEnd::Corrupt,
        (None, false) => DecodeEnd::Complete,
    };
    Decoded {
        output: sink.into_body().to_vec(),
        end,
    }
}
