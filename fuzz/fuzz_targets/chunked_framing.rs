//! `ChunkedDecoder` on its own (RFC 9112 §7.1 framing, without a
//! `Connection`): the input is a chunked body, fed in pieces to a caller that
//! buffers what the decoder has not consumed and takes chunk data in
//! fuzz-chosen amounts.
//!
//! Input layout:
//!   [0] max_extension_bytes (high bit = 16 KiB, else the value, 0 included)
//!   [1] how much chunk data to take per step: 0 = all available, else at
//!       most that many bytes
//!   [2] cuts: low nibble = count, bit4 = cut before every byte; then one gap
//!       byte per cut
//!   rest: the chunked body (and whatever follows it)
//!
//! Invariants: `decode` consumes at most what it is given, all of it when it
//! asks for more input, nothing inside chunk data; `Data(n)` never grows; an
//! error is sticky; the outcome (body, where the trailer section starts, or
//! the error) does not depend on the splits or the data step; and it agrees
//! with `pollhttp_fuzz::reference_chunked`: the body and the trailer
//! section's start when the framing is complete, the error kind and offset
//! for errors in chunk lines and chunk data, and "more input needed" when the
//! body is cut short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollhttp_fuzz::{limit, pieces, reference_chunked, Reader, RefErr, RefLimits, RefResult};
use pollhttp_proto::{ChunkedDecoder, ChunkedNext, Error};

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The last-chunk line ended at this offset.
    Trailers {
        body: Vec<u8>,
        at: usize,
    },
    /// Input ran out first.
    NeedInput {
        body: Vec<u8>,
    },
    Error(Error),
}

fn run(input: &[u8], cuts: &[usize], max_ext: usize, step: usize) -> Outcome {
    let mut dec = ChunkedDecoder::new(max_ext);
    let mut body = Vec::new();
    // input[pos..fed] is buffered, not yet consumed.
    let mut pos = 0;
    let mut fed = 0;
    for piece in pieces(input, cuts) {
        fed += piece.len();
        loop {
            let avail = &input[pos..fed];
            let before = dec.clone();
            let (used, next) = match dec.decode(avail, pos as u64) {
                Ok(r) => r,
                Err(e) => {
                    // Sticky, and located inside what was given.
                    assert_eq!(dec.decode(b"0\r\n", 0), Err(e.clone()));
                    let off = e.offset().expect("an offset") as usize;
                    assert!((pos..fed).contains(&off), "{e:?} outside {pos}..{fed}");
                    return Outcome::Error(e);
                }
            };
            assert!(used <= avail.len());
            pos += used;
            match next {
                ChunkedNext::NeedInput => {
                    assert_eq!(pos, fed, "NeedInput with input left");
                    break;
                }
                ChunkedNext::Trailers => {
                    assert!(dec.is_done());
                    // Done is final: nothing more is consumed.
                    assert_eq!(dec.decode(&input[pos..fed], pos as u64), Ok((0, next)));
                    return Outcome::Trailers { body, at: pos };
                }
                ChunkedNext::Data(left) => {
                    assert!(left > 0);
                    if let Some(ChunkedNext::Data(prev)) = data_of(&before) {
                        assert!(left <= prev, "chunk data grew");
                    }
                    let have = (fed - pos) as u64;
                    let mut n = left.min(have);
                    if step > 0 {
                        n = n.min(step as u64);
                    }
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&input[pos..pos + n as usize]);
                    dec.consume_data(n);
                    pos += n as usize;
                }
            }
        }
    }
    Outcome::NeedInput { body }
}

/// What a decoder reports without input, when it is inside chunk data.
fn data_of(dec: &ChunkedDecoder) -> Option<ChunkedNext> {
    match dec.clone().decode(&[], 0) {
        Ok((0, next @ ChunkedNext::Data(_))) => Some(next),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let max_ext = limit(r.byte(), 1, 16 * 1024);
    let step = r.byte() as usize;
    let cuts = r.cuts(|n| n);
    let input = r.rest();

    let whole = run(input, &[], max_ext, 0);
    assert_eq!(
        run(input, &cuts, max_ext, step),
        whole,
        "split or step changed the outcome"
    );

    let reference = reference_chunked(
        input,
        RefLimits {
            max_ext,
            max_trailer_bytes: usize::MAX,
            max_trailer_fields: usize::MAX,
            body_limit: None,
        },
    );
    match (&whole, &reference) {
        (
            Outcome::Trailers { body, at },
            RefResult::Ok {
                body: want,
                trailer_start,
                ..
            },
        ) => {
            assert_eq!(body, want, "body");
            assert_eq!(at, trailer_start, "trailer section start");
        }
        (
            Outcome::Trailers { at, .. },
            RefResult::Err {
                trailer_start: Some(t),
                ..
            },
        ) => assert_eq!(at, t, "trailer section start"),
        (
            Outcome::NeedInput { .. },
            RefResult::Err {
                kind: RefErr::Incomplete,
                trailer_start: None,
                ..
            },
        ) => {}
        (
            Outcome::Error(e),
            RefResult::Err {
                kind,
                offset,
                trailer_start: None,
            },
        ) => {
            let kind_ok = match kind {
                RefErr::Syntax => matches!(
                    e,
                    Error::InvalidChunkSize { .. }
                        | Error::InvalidChunkExtension { .. }
                        | Error::InvalidChunkLineEnding { .. }
                        | Error::MissingChunkDataCrlf { .. }
                ),
                RefErr::SizeOverflow => matches!(e, Error::ChunkSizeOverflow { .. }),
                RefErr::ExtTooLarge => matches!(e, Error::ChunkExtensionTooLarge { .. }),
                _ => false,
            };
            assert!(kind_ok, "error kind: {e:?}, reference {reference:?}");
            assert_eq!(
                e.offset(),
                Some(*offset as u64),
                "error offset vs {reference:?}"
            );
        }
        _ => panic!("decoder and reference disagree: {whole:?} vs {reference:?}"),
    }
});
