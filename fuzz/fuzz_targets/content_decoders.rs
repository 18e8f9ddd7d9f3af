//! The content decoders a response body goes through (gzip, deflate, br,
//! zstd; up to three stacked, the last applied undone first): arbitrary
//! bytes, or arbitrary data coded by the real encoders, fed in arbitrary
//! pieces into a memory sink with a body size limit.
//!
//! Input layout:
//!   [0] the codings, as applied: bits 0-1 = count - 1 (3 means 1), then
//!       2 bits each (bits 2-3, 4-5, 6-7): gzip, deflate, br, zstd
//!   [1] the body size limit: high bit = none, else `(b & 0x7f) * 64` bytes
//!   [2] mode: bit 0 = round trip (the data is coded by the encoders first,
//!       br with quality `(b >> 1) & 7` and window `10 + (b >> 4)` bits);
//!       else the data is the coded body as received
//!   [3] cuts (`Reader::cuts`), then the data
//!
//! Invariants: no panic; the output never passes the limit; split
//! independence (a complete body decodes the same whatever the pieces; a
//! stopped one stops whatever the pieces, its output a prefix of the
//! other's); a round trip comes back whole when within the limit, and stops
//! at the limit with a prefix of the data when not.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use pollhttp::fuzzing::{decode, DecodeEnd};
use pollhttp::ContentCoding;
use pollhttp_fuzz::Reader;

const CODINGS: [ContentCoding; 4] = [
    ContentCoding::Gzip,
    ContentCoding::Deflate,
    ContentCoding::Br,
    ContentCoding::Zstd,
];

fn encode(coding: ContentCoding, data: &[u8], br_quality: u32, br_lgwin: u32) -> Vec<u8> {
    match coding {
        ContentCoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentCoding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentCoding::Br => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, br_quality, br_lgwin);
                w.write_all(data).unwrap();
            }
            out
        }
        _ => zstd::encode_all(data, 1).unwrap(),
    }
}

fn is_prefix(a: &[u8], b: &[u8]) -> bool {
    a.len() <= b.len() && b[..a.len()] == *a
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let spec = r.byte();
    let count = match spec & 3 {
        3 => 1,
        n => usize::from(n) + 1,
    };
    let codings: Vec<ContentCoding> = (0..count)
        .map(|i| CODINGS[usize::from((spec >> (2 + 2 * i)) & 3)])
        .collect();
    let b = r.byte();
    let limit = (b & 0x80 == 0).then(|| u64::from(b & 0x7f) * 64);
    let mode = r.byte();
    let round_trip = mode & 1 == 1;
    let (br_quality, br_lgwin) = (u32::from((mode >> 1) & 7), 10 + u32::from(mode >> 4));
    let cuts = r.cuts(|n| n);
    let rest = r.rest();
    let body = if round_trip {
        codings.iter().fold(rest.to_vec(), |d, c| {
            encode(*c, &d, br_quality, br_lgwin.min(24))
        })
    } else {
        rest.to_vec()
    };
    let cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < body.len()).collect();

    let whole = decode(&codings, limit, &body, &[]);
    let split = decode(&codings, limit, &body, &cuts);
    for d in [&whole, &split] {
        if let Some(limit) = limit {
            assert!(d.output.len() as u64 <= limit, "over the limit");
        }
    }
    if whole.end == DecodeEnd::Complete || split.end == DecodeEnd::Complete {
        assert_eq!(whole.end, split.end, "complete only in one");
        assert!(whole.output == split.output, "split changed the output");
    } else {
        assert!(
            is_prefix(&whole.output, &split.output) || is_prefix(&split.output, &whole.output),
            "stopped outputs diverge"
        );
    }
    if round_trip {
        let fits = limit.is_none_or(|l| rest.len() as u64 <= l);
        for d in [&whole, &split] {
            if fits {
                assert_eq!(d.end, DecodeEnd::Complete);
                assert!(d.output == rest, "round trip changed the data");
            } else {
                assert_eq!(d.end, DecodeEnd::Limit);
                assert!(is_prefix(&d.output, rest));
            }
        }
    }
});
