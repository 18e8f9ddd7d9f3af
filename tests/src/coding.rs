//! Content codings and digests made in the tests, by the same crates'
//! encoders: bodies for scripted servers; and the assets real servers code
//! for `coding_servers.rs` ([`assets`]).

use std::io::Write;

use base64::Engine;
use sha2::Digest;

/// `data` gzip-coded.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` deflate-coded (zlib-wrapped, RFC 9110 §8.4.1.2).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` br-coded (quality 9, a 4 MiB window).
pub fn br(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(data).unwrap();
    }
    out
}

/// `data` zstd-coded (level 3).
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// `data` coded by `token` (`gzip`, `deflate`, `br`, `zstd`).
pub fn encode(token: &str, data: &[u8]) -> Vec<u8> {
    match token {
        "gzip" => gzip(data),
        "deflate" => deflate(data),
        "br" => br(data),
        "zstd" => zstd(data),
        other => panic!("no encoder for {other}"),
    }
}

/// `data` coded by each of `tokens` in turn (a `Content-Encoding` list's
/// order: the first applied first).
pub fn encode_all(tokens: &[&str], data: &[u8]) -> Vec<u8> {
    tokens.iter().fold(data.to_vec(), |d, t| encode(t, &d))
}

/// An RFC 9530 `sha-256=:…:` member for `data`.
pub fn sha256_field(data: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data))
    )
}

/// An RFC 9530 `sha-512=:…:` member for `data`.
pub fn sha512_field(data: &[u8]) -> String {
    format!(
        "sha-512=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(data))
    )
}

/// The SHA-256 of `data`, as `BodySettings::expected_sha256` takes it.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// A chunked response whose body `body` goes in chunks of `piece` bytes
/// (so the client's body events, and the decoders' input, come small).
pub fn chunked_response(
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    piece: usize,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("Transfer-Encoding: chunked\r\n\r\n");
    let mut out = out.into_bytes();
    for c in body.chunks(piece.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Text lines like a game's JSON manifests (compressible, not trivially).
pub fn manifest_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        let line = format!(
            "{{\"asset\": \"tex/{i:06}.png\", \"size\": {}, \"lod\": {}, \"tag\": \"{}\"}}\n",
            (i * 7919) % 1_000_003,
            i % 5,
            ["rock", "tree", "water", "npc", "ui"][(i % 5) as usize]
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// The assets served by the real servers in the content-coding checks:
/// (file name, bytes). Text of several sizes (a few hundred bytes to
/// 3 MiB: several of the servers' output buffers and windows), and
/// incompressible bytes (a server may send them uncoded).
pub fn assets() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("small.txt", manifest_text(700)),
        ("page.txt", manifest_text(40_000)),
        ("manifest.json", manifest_text(300_000)),
        ("big.txt", manifest_text(3 << 20)),
        ("noise.bin", crate::pseudo_random_bytes(200_000)),
    ]
}

/// A decompression bomb: 1 GiB of zeros coded as `coding` (`br`: quality 5,
/// a `lgwin`-bit window; `zstd`: level 3; `gzip`: level 6), made 16 MiB at a
/// time (`request_bombs`, `decode_bench`).
pub fn bomb(coding: &str, lgwin: u32) -> Vec<u8> {
    let zeros = vec![0u8; 16 << 20];
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            for _ in 0..(1 << 30) / zeros.len() {
                e.write_all(&zeros).unwrap();
            }
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, lgwin);
                for _ in 0..(1 << 30) / zeros.len() {
                    w.write_all(&zeros).unwrap();
                }
            }
            out
        }
        _ => {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            for _ in 0..(1 << 30) / zeros.len() {
                e.write_all(&zeros).unwrap();
            }
            e.finish().unwrap()
        }
    }
}
