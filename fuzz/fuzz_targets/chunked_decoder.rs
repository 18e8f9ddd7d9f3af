//! The chunked transfer coding (RFC 9112 §7.1): the input is the body of
//! `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n`, fed in pieces, EOF
//! after it.
//!
//! Input layout:
//!   [0] read_chunk_size [1] body_size_limit [2] max_chunk_extension_bytes
//!   [3] max_trailer_bytes [4] max_trailer_fields
//!       (each: high bit = default, else a small value, 0 included)
//!   [5] cuts: low nibble = count, bit4 = cut before every byte; then one gap byte per cut
//!   rest: the chunked body (and whatever follows it)
//!
//! Invariants: those of `pollhttp_fuzz::Run` (including whole vs split), plus
//! agreement with `pollhttp_fuzz::reference_chunked`, a strict RFC 9112 §7.1
//! decoder: success vs error, the decoded body, the trailers and the bytes
//! consumed; for errors in chunk lines and chunk data also the error kind and
//! offset. A decoded body re-encoded as one chunk decodes to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollhttp_fuzz::{
    check_split_independence, encode_chunked, limit, reference_chunked, End, HeadOut, Out, Reader,
    RefErr, RefLimits, RefResult, Req, Run,
};
use pollhttp_proto::{Config, Error, MessageBodyLength};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mut config = Config::default();
    config.read_chunk_size = limit(r.byte(), 1, config.read_chunk_size);
    let b = r.byte();
    config.body_size_limit = (b & 0x80 == 0).then(|| 3 * u64::from(b));
    config.max_chunk_extension_bytes = limit(r.byte(), 1, config.max_chunk_extension_bytes);
    config.max_trailer_bytes = limit(r.byte(), 2, config.max_trailer_bytes);
    config.max_trailer_fields = limit(r.byte(), 1, config.max_trailer_fields);
    let cuts = r.cuts(|n| n + HEAD.len());
    let body = r.rest();
    let input = [HEAD, body].concat();
    let run = Run {
        config: config.clone(),
        req: Req::Get,
        input: &input,
        end: End::Clean,
        max_responses: 1,
    };
    let out = check_split_independence(&run, &cuts);
    let lim = RefLimits {
        max_ext: config.max_chunk_extension_bytes,
        max_trailer_bytes: config.max_trailer_bytes,
        max_trailer_fields: config.max_trailer_fields,
        body_limit: config.body_size_limit,
    };
    let reference = reference_chunked(body, lim);
    assert!(
        matches!(
            out.events.first(),
            Some(Out::Head(HeadOut {
                body: MessageBodyLength::Chunked,
                ..
            }))
        ),
        "{out:?}"
    );
    let h = HEAD.len();
    match (&out.error, &reference) {
        (
            None,
            RefResult::Ok {
                body: want,
                trailers,
                consumed,
                ..
            },
        ) => {
            assert_eq!(
                out.first_body(),
                *want,
                "decoded body differs from the reference"
            );
            let want_trailers: Vec<(String, Vec<u8>)> = trailers
                .iter()
                .map(|(n, v)| (String::from_utf8(n.clone()).unwrap(), v.clone()))
                .collect();
            let got_trailers = out.events.iter().find_map(|e| match e {
                Out::Trailers(t) => Some(t.clone()),
                _ => None,
            });
            assert_eq!(
                got_trailers.unwrap_or_default(),
                want_trailers,
                "trailers differ"
            );
            assert!(matches!(out.events.last(), Some(Out::End(_))));
            assert_eq!(
                out.consumed,
                Some((h + consumed) as u64),
                "consumed differs"
            );

            // The same body and trailers as one chunk decode the same.
            let again = [HEAD, &encode_chunked(want, trailers)].concat();
            let rerun = Run {
                input: &again,
                ..run.clone()
            };
            let cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c < again.len()).collect();
            let o2 = check_split_independence(&rerun, &cuts);
            assert_eq!(o2.error, None, "re-encoded body rejected");
            assert_eq!(o2.first_body(), *want);
            assert_eq!(o2.consumed, Some(again.len() as u64));
        }
        (
            Some(e),
            RefResult::Err {
                kind,
                offset,
                trailer_start,
            },
        ) => {
            let off = e.offset().expect("input errors have an offset") as usize;
            if let Some(t) = trailer_start {
                // Inside the trailer section: proto locates errors with httparse.
                assert!(
                    off >= h + t,
                    "trailer error before the trailers: {e:?} vs {reference:?}"
                );
                assert!(
                    matches!(
                        e,
                        Error::InvalidTrailerField { .. }
                            | Error::TrailerTooLarge { .. }
                            | Error::TooManyTrailerFields { .. }
                            | Error::BareLineFeed { .. }
                            | Error::InvalidChunkLineEnding { .. }
                            | Error::IncompleteChunkedBody { .. }
                            | Error::LastChunkThenEof { .. }
                    ),
                    "{e:?} vs {reference:?}"
                );
            } else {
                let kind_ok = match kind {
                    RefErr::Incomplete => matches!(
                        e,
                        Error::IncompleteChunkedBody { .. } | Error::LastChunkThenEof { .. }
                    ),
                    RefErr::Syntax => matches!(
                        e,
                        Error::InvalidChunkSize { .. }
                            | Error::InvalidChunkExtension { .. }
                            | Error::InvalidChunkLineEnding { .. }
                            | Error::MissingChunkDataCrlf { .. }
                    ),
                    RefErr::SizeOverflow => matches!(e, Error::ChunkSizeOverflow { .. }),
                    RefErr::ExtTooLarge => matches!(e, Error::ChunkExtensionTooLarge { .. }),
                    RefErr::BodyTooLarge => matches!(e, Error::BodyTooLarge { .. }),
                    RefErr::Trailer => false,
                };
                assert!(kind_ok, "error kind: proto {e:?}, reference {reference:?}");
                assert_eq!(
                    off,
                    h + offset,
                    "error offset: proto {e:?}, reference {reference:?}"
                );
            }
        }
        _ => panic!("proto and the reference disagree: proto {out:?}, reference {reference:?}"),
    }
});
