//! Content codings and digests made in the tests, by the same crates'
//! encoders (nginx here has no brotli filter): bodies for scripted servers.

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
