//! The lexical rules of HTTP (RFC 9110 §5.5, §5.6; RFC 9112 §2.2, §7.1), in
//! one place: the request encoder and the response parser apply the same
//! definitions.

/// tchar (RFC 9110 §5.6.2).
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a token (RFC 9110 §5.6.2): a valid method or field name.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether `v` holds only octets a sender may put in a field value: HTAB, SP,
/// VCHAR, obs-text; never CR, LF, NUL or another control (RFC 9110 §5.5).
/// The rule [`Connection::send_request`](crate::Connection::send_request)
/// applies to every field.
pub fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// `s` without leading and trailing OWS.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The elements of a comma-separated list value (RFC 9110 §5.6.1), OWS
/// trimmed, empty elements included (each caller decides whether an empty
/// element is allowed).
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// Whether a comma-separated list value contains `token` (ASCII
/// case-insensitive).
pub(crate) fn list_has_token(value: &[u8], token: &str) -> bool {
    list_elements(value).any(|el| el.eq_ignore_ascii_case(token.as_bytes()))
}

/// `1*DIGIT` as a u64; `None` when empty, not all digits, or on overflow.
pub(crate) fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// The codings of a Transfer-Encoding value (RFC 9112 §6.1): how many times
/// chunked appears and whether it is the final coding; `None` when malformed
/// (an empty element or a coding that is not a token). A coding may carry
/// parameters: `token *( OWS ";" OWS transfer-parameter )`.
pub(crate) fn transfer_codings(value: &[u8]) -> Option<(usize, bool)> {
    let mut chunked = 0;
    let mut last_chunked = false;
    for el in list_elements(value) {
        let coding = trim_ows(el.split(|&b| b == b';').next().unwrap_or(el));
        if !is_token(coding) {
            return None;
        }
        last_chunked = coding.eq_ignore_ascii_case(b"chunked");
        chunked += usize::from(last_chunked);
    }
    Some((chunked, last_chunked))
}

/// ASCII case-insensitive comparison of a token (a field name the parser
/// accepted) with a lowercase name. `b | 0x20` lowercases letters and leaves
/// every other tchar unchanged; the only non-tchar it could confuse (CR with
/// `-`) never occurs in a token.
#[inline]
pub(crate) fn token_eq_lower(token: &[u8], lower: &[u8]) -> bool {
    token.len() == lower.len() && token.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b)
}

/// HEXDIG (RFC 5234 appendix B.1, case-insensitive as RFC 9110 §1.2 says).
#[inline]
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// qdtext (RFC 9110 §5.6.4).
#[inline]
pub(crate) fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// The octet after a backslash in a quoted-pair (RFC 9110 §5.6.4).
#[inline]
pub(crate) fn is_quoted_pair_octet(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// Index of the first LF at or after `from`.
pub(crate) fn find_lf(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', buf.get(from..)?).map(|p| p + from)
}

/// Index of the first LF not preceded by CR (RFC 9112 §2.2).
pub(crate) fn bare_lf_in(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = find_lf(buf, from) {
        if i == 0 || buf[i - 1] != b'\r' {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_numbers() {
        let els: alloc::vec::Vec<&[u8]> = list_elements(b" a ,, b\t,c").collect();
        assert_eq!(els, [&b"a"[..], b"", b"b", b"c"]);
        assert!(list_has_token(b"keep-alive, Close", "close"));
        assert!(!list_has_token(b"closed", "close"));
        assert_eq!(parse_decimal(b"0042"), Some(42));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(transfer_codings(b"gzip, chunked"), Some((1, true)));
        assert_eq!(transfer_codings(b"chunked;q=1, gzip"), Some((1, false)));
        assert_eq!(transfer_codings(b"gzip,,chunked"), None);
        assert_eq!(bare_lf_in(b"a\r\nb\nc"), Some(4));
        assert_eq!(bare_lf_in(b"\r\n"), None);
        assert!(token_eq_lower(b"Content-Length", b"content-length"));
        assert!(!token_eq_lower(b"Content-Lengtx", b"content-length"));
    }
}
