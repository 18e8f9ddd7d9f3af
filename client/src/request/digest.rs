//! Integrity (RFC 9530): a response's `Content-Digest` and `Repr-Digest`
//! fields and the caller's expected SHA-256 ([`BodySettings::expected_sha256`](crate::BodySettings::expected_sha256)),
//! hashed as the body arrives and compared when it ends. A mismatch, or a
//! digest field that does not parse, fails the request
//! ([`RequestResult::IntegrityFailed`](crate::RequestResult::IntegrityFailed)): never `Success`.
//!
//! What each one covers:
//! - `Content-Digest`: this message's content, the bytes as received (after
//!   the transfer coding, before the content coding is undone).
//! - `Repr-Digest`: the whole selected representation. On a 200 that is
//!   the same bytes; on a 206 it is checked only when the 206 continues a
//!   download file (`resume`) of a body without a content coding (the
//!   file's bytes, then the new ones), else ignored.
//! - The expected SHA-256: the body as the caller gets it (decoded), with
//!   the partial file's bytes first when a 206 continues it.
//!
//! sha-256 and sha-512 are checked (sha-256 when a field gives both); other
//! algorithms are ignored (RFC 9530 §2). Responses without a body (HEAD,
//! 204, 304) are not checked.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use pollhttp_proto::Fields;
use sha2::{Digest, Sha256, Sha512};

use super::outcome::RequestFailure;

/// A hash algorithm of RFC 9530's registry that pollhttp verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `sha-256`.
    Sha256,
    /// `sha-512`.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's key in a digest field.
    pub fn key(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            DigestAlgorithm::Sha512 => "sha-512",
        }
    }
    fn len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha512 => 64,
        }
    }
}

/// Which integrity check a body failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestCheck {
    /// The response's `Content-Digest` (RFC 9530 §2).
    ContentDigest,
    /// The response's `Repr-Digest` (RFC 9530 §3).
    ReprDigest,
    /// The request's [`BodySettings::expected_sha256`](crate::BodySettings::expected_sha256).
    ExpectedSha256,
}

impl fmt::Display for DigestCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestCheck::ContentDigest => "Content-Digest",
            DigestCheck::ReprDigest => "Repr-Digest",
            DigestCheck::ExpectedSha256 => "the expected SHA-256",
        })
    }
}

/// A SHA-256 written as 64 hex digits (an asset manifest's, `sha256sum`'s),
/// for [`BodySettings::expected_sha256`](crate::BodySettings::expected_sha256);
/// `None` when `hex` is not that.
pub fn sha256_from_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

enum State {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// One running hash and what it must come to.
struct Hash {
    state: State,
    algorithm: DigestAlgorithm,
    checks: Vec<(DigestCheck, Vec<u8>)>,
}

impl Hash {
    fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }
}

fn add(list: &mut Vec<Hash>, algorithm: DigestAlgorithm, check: DigestCheck, value: Vec<u8>) {
    if let Some(h) = list.iter_mut().find(|h| h.algorithm == algorithm) {
        h.checks.push((check, value));
        return;
    }
    list.push(Hash {
        state: match algorithm {
            DigestAlgorithm::Sha256 => State::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => State::Sha512(Sha512::new()),
        },
        algorithm,
        checks: vec![(check, value)],
    });
}

/// The digests a response body is checked against, hashed as it arrives.
pub(crate) struct Verifier {
    /// Over this message's content (before decoding).
    content: Vec<Hash>,
    /// Over the body as decoded (after a resumed file's bytes).
    decoded: Vec<Hash>,
}

/// What [`Verifier::for_response`] needs to know besides the head.
pub(crate) struct VerifyFor {
    /// Check the response's digest fields (`BodySettings::verify_digests`).
    pub(crate) fields: bool,
    /// `BodySettings::expected_sha256`.
    pub(crate) expected: Option<[u8; 32]>,
    /// A 206 is appended to the download file.
    pub(crate) appended: bool,
    /// The body has no content coding to undo.
    pub(crate) identity: bool,
}

impl Verifier {
    /// The checks for a response with a body (`status`, `fields`): `None`
    /// when there is nothing to check.
    ///
    /// # Errors
    /// [`RequestFailure::MalformedDigest`] for a digest field that is not
    /// a valid RFC 9530 field (a dictionary of byte sequences of the
    /// algorithm's length, for the algorithms checked).
    pub(crate) fn for_response(
        status: u16,
        fields: &Fields,
        v: &VerifyFor,
    ) -> Result<Option<Box<Verifier>>, RequestFailure> {
        let mut verifier = Verifier {
            content: Vec::new(),
            decoded: Vec::new(),
        };
        if v.fields {
            if let Some((a, value)) =
                field_digest(fields, "content-digest", DigestCheck::ContentDigest)?
            {
                add(&mut verifier.content, a, DigestCheck::ContentDigest, value);
            }
            if let Some((a, value)) = field_digest(fields, "repr-digest", DigestCheck::ReprDigest)?
            {
                if status != 206 {
                    add(&mut verifier.content, a, DigestCheck::ReprDigest, value);
                } else if v.appended && v.identity {
                    add(&mut verifier.decoded, a, DigestCheck::ReprDigest, value);
                }
            }
        }
        if let Some(sum) = v.expected {
            add(
                &mut verifier.decoded,
                DigestAlgorithm::Sha256,
                DigestCheck::ExpectedSha256,
                sum.to_vec(),
            );
        }
        Ok(
            (!verifier.content.is_empty() || !verifier.decoded.is_empty())
                .then(|| Box::new(verifier)),
        )
    }

    /// Whether the bytes already in the download file count (a 206
    /// continuing it).
    pub(crate) fn wants_prefix(&self) -> bool {
        !self.decoded.is_empty()
    }

    /// Hash the partial download file's bytes first (a 206 continues it).
    /// Cost: one read of the file, in the `poll` that got the head.
    pub(crate) fn hash_prefix(&mut self, path: &Path) -> io::Result<()> {
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.decoded(&buf[..n]);
        }
    }

    /// Bytes of the message content, as received.
    pub(crate) fn content(&mut self, data: &[u8]) {
        for h in &mut self.content {
            h.update(data);
        }
    }

    /// Bytes of the body as decoded.
    pub(crate) fn decoded(&mut self, data: &[u8]) {
        for h in &mut self.decoded {
            h.update(data);
        }
    }

    /// Compare every hash with what it must be.
    ///
    /// # Errors
    /// [`RequestFailure::DigestMismatch`] for the first that differs.
    pub(crate) fn verify(self) -> Result<(), RequestFailure> {
        for h in self.content.into_iter().chain(self.decoded) {
            let actual = match h.state {
                State::Sha256(s) => s.finalize().to_vec(),
                State::Sha512(s) => s.finalize().to_vec(),
            };
            for (check, expected) in h.checks {
                if expected != actual {
                    return Err(RequestFailure::DigestMismatch {
                        check,
                        algorithm: h.algorithm,
                        expected,
                        actual,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The digest to check from field `name` (every line): sha-256 when given,
/// else sha-512; `None` when the field is absent or names neither.
fn field_digest(
    fields: &Fields,
    name: &'static str,
    check: DigestCheck,
) -> Result<Option<(DigestAlgorithm, Vec<u8>)>, RequestFailure> {
    let mut lines = fields.get_all(name).peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let mut joined = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line);
    }
    let malformed = || RequestFailure::MalformedDigest {
        check,
        value: String::from_utf8_lossy(&joined).into_owned(),
    };
    let members = parse_dictionary(&joined).ok_or_else(malformed)?;
    for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
        // The last member of a key wins (RFC 8941 §4.2.2).
        if let Some((_, value)) = members.iter().rev().find(|(k, _)| k == algorithm.key()) {
            return match value {
                Some(bytes) if bytes.len() == algorithm.len() => {
                    Ok(Some((algorithm, bytes.clone())))
                }
                _ => Err(malformed()),
            };
        }
    }
    Ok(None)
}

/// An RFC 8941 dictionary (§4.2.2): each member's key and, when its value
/// is a byte sequence, its bytes. `None` when the text is not a dictionary.
fn parse_dictionary(input: &[u8]) -> Option<Vec<(String, Option<Vec<u8>>)>> {
    let mut p = Parser { s: input, i: 0 };
    let mut members = Vec::new();
    p.skip(b" \t");
    if p.at_end() {
        return None;
    }
    loop {
        let key = p.key()?;
        let value = if p.eat(b'=') {
            if p.peek() == Some(b'(') {
                p.inner_list()?;
                None
            } else {
                p.bare_item()?
            }
        } else {
            None
        };
        p.params()?;
        members.push((key, value));
        p.skip(b" \t");
        if p.at_end() {
            return Some(members);
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip(b" \t");
        if p.at_end() {
            return None;
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip(&mut self, set: &[u8]) {
        while self.peek().is_some_and(|c| set.contains(&c)) {
            self.i += 1;
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
    /// §4.2.3.3: lcalpha or `*`, then lcalpha, digits, `_-.*`.
    fn key(&mut self) -> Option<String> {
        let first = self.peek()?;
        if !(first.is_ascii_lowercase() || first == b'*') {
            return None;
        }
        let key = self
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c));
        Some(String::from_utf8_lossy(key).into_owned())
    }
    /// §4.2.3.4: parameters after an item.
    fn params(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip(b" ");
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }
    /// §4.2.1.2: an inner list (its items' values are not needed).
    fn inner_list(&mut self) -> Option<()> {
        self.eat(b'(');
        loop {
            self.skip(b" ");
            if self.eat(b')') {
                return Some(());
            }
            self.bare_item()?;
            self.params()?;
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }
    /// §4.2.3.1: a bare item; `Some(Some(bytes))` for a byte sequence.
    fn bare_item(&mut self) -> Option<Option<Vec<u8>>> {
        match self.peek()? {
            b':' => {
                self.i += 1;
                let b64 = self.take_while(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c));
                let b64 = b64.to_vec();
                if !self.eat(b':') {
                    return None;
                }
                const B64: GeneralPurpose = GeneralPurpose::new(
                    &base64::alphabet::STANDARD,
                    GeneralPurposeConfig::new()
                        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
                );
                B64.decode(b64).ok().map(Some)
            }
            b'"' => {
                self.i += 1;
                loop {
                    match self.peek()? {
                        b'\\' => {
                            self.i += 1;
                            if !matches!(self.peek()?, b'"' | b'\\') {
                                return None;
                            }
                            self.i += 1;
                        }
                        b'"' => {
                            self.i += 1;
                            return Some(None);
                        }
                        0x20..=0x7e => self.i += 1,
                        _ => return None,
                    }
                }
            }
            b'?' => {
                self.i += 1;
                matches!(self.peek()?, b'0' | b'1').then(|| {
                    self.i += 1;
                    None
                })
            }
            b'-' | b'0'..=b'9' | b'@' => {
                self.i += 1;
                let digits = self.take_while(|c| c.is_ascii_digit() || c == b'.');
                (digits.len() <= 20 && digits.iter().filter(|&&c| c == b'.').count() <= 1)
                    .then_some(None)
            }
            c if c.is_ascii_alphabetic() || c == b'*' => {
                self.take_while(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c));
                Some(None)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(field: &str) -> Result<Option<(DigestAlgorithm, Vec<u8>)>, String> {
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Digest: {field}\r\nContent-Length: 0\r\n\r\n");
        field_digest(
            crate::parsed_head(&head).fields(),
            "content-digest",
            DigestCheck::ContentDigest,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn digest_fields_parse_by_rfc_8941() {
        let sum = Sha256::digest(b"hello").to_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&sum);
        assert_eq!(
            digest_of(&format!("sha-256=:{b64}:")),
            Ok(Some((DigestAlgorithm::Sha256, sum.clone())))
        );
        // Unknown algorithms and parameters are skipped; sha-256 wins.
        assert_eq!(
            digest_of(&format!(
                "unixsum=:AAAA:, md5=?1;x=1, sha-512=:{}:, sha-256=:{b64}:",
                base64::engine::general_purpose::STANDARD.encode([0u8; 64])
            )),
            Ok(Some((DigestAlgorithm::Sha256, sum.clone())))
        );
        assert_eq!(digest_of("adler=:AAAA:, crc32c=(1 2);a"), Ok(None));
        for bad in [
            "sha-256=abc",
            "sha-256=:AAAA:",
            "sha-256=:not base64!:",
            "SHA-256=:AAAA:",
            "sha-256=:AAAA",
            "a=1,",
            ",",
            "a=\"unterminated",
        ] {
            assert!(
                digest_of(bad).is_err_and(|e| e.contains("Content-Digest")),
                "{bad}"
            );
        }
    }

    /// Generated field values (an alphabet of the grammar's characters,
    /// valid members mixed in): the parser never panics, and accepts what
    /// it should.
    #[test]
    fn generated_fields_never_panic() {
        let alphabet = b"sha-256=:AAAA+/=:,; ()?\"*01.-@aZ\t";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut v: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if next() % 3 == 0 {
                v.splice(0..0, b"sha-512=:AAAA:, ".iter().copied());
            }
            let _ = parse_dictionary(&v);
        }
        assert!(parse_dictionary(b"a, b=?0;x;y=\"s\\\"\", c=(1 2 \"x\");p, d=:AA==:").is_some());
    }

    #[test]
    fn hex_sums() {
        let s = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(
            sha256_from_hex(s).unwrap().to_vec(),
            Sha256::digest(b"hello").to_vec()
        );
        assert_eq!(sha256_from_hex(&s[1..]), None);
        assert_eq!(sha256_from_hex(&s.replace('2', "g")), None);
    }
}
