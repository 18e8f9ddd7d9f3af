//! `"Name: value"` field lines (Godot's `custom_headers`, r.http's array
//! form), split into pairs and checked by proto's rules before anything is
//! sent.

use std::fmt;

/// Why a field line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldLineErrorKind {
    /// No colon: not `"Name: value"`.
    NoColon,
    /// The name is empty, not a token, or has whitespace before the colon
    /// (RFC 9112 §5.1).
    InvalidName,
    /// The value holds a character a field value cannot (CR, LF, NUL or
    /// another control: RFC 9110 §5.5).
    InvalidValue,
}

/// A field line that was refused, with its index in the list given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLineError {
    /// Its index in the list given (0 for the first line).
    pub index: usize,
    /// What is wrong.
    pub kind: FieldLineErrorKind,
}

impl fmt::Display for FieldLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.index;
        match self.kind {
            FieldLineErrorKind::NoColon => {
                write!(f, "field line {i} has no colon (\"Name: value\" expected)")
            }
            FieldLineErrorKind::InvalidName => write!(
                f,
                "field line {i} has an invalid name (a token, with no space before the colon)"
            ),
            FieldLineErrorKind::InvalidValue => write!(
                f,
                "field line {i} has a character a field value cannot hold (CR, LF, NUL, a control)"
            ),
        }
    }
}

impl std::error::Error for FieldLineError {}

/// Split `"Name: value"` strings (Godot's `custom_headers`, r.http's
/// header array) into `(name, value)` pairs borrowed from the input, in
/// order.
///
/// Each line is split at its first colon (later colons belong to the
/// value). The name must be a token (RFC 9110 §5.6.2): not empty, no
/// whitespace before the colon (RFC 9112 §5.1) or before the name. The
/// value loses its leading and trailing spaces and tabs (OWS, RFC 9110
/// §5.5) and must be a valid field value: no CR, LF, NUL or other control
/// but HTAB ([`pollhttp_proto::is_field_value`]), so a line cannot inject
/// another. An empty value is allowed. Names keep their case.
///
/// ```
/// use pollhttp::web::parse_field_lines;
/// let pairs = parse_field_lines(&["Accept: application/json", "X-Url: http://a:8/"])?;
/// assert_eq!(pairs, [("Accept", "application/json"), ("X-Url", "http://a:8/")]);
/// # Ok::<(), pollhttp::web::FieldLineError>(())
/// ```
///
/// # Errors
/// [`FieldLineError`] for the first line that breaks a rule, with its
/// index in `lines` and which rule ([`FieldLineErrorKind`]).
pub fn parse_field_lines<'a>(lines: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, FieldLineError> {
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let err = |kind| FieldLineError { index, kind };
            let (name, value) = line
                .split_once(':')
                .ok_or(err(FieldLineErrorKind::NoColon))?;
            if !pollhttp_proto::is_token(name.as_bytes()) {
                return Err(err(FieldLineErrorKind::InvalidName));
            }
            let value = value.trim_matches([' ', '\t']);
            if !pollhttp_proto::is_field_value(value.as_bytes()) {
                return Err(err(FieldLineErrorKind::InvalidValue));
            }
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_at(lines: &[&str]) -> (usize, FieldLineErrorKind) {
        let e = parse_field_lines(lines).unwrap_err();
        (e.index, e.kind)
    }

    #[test]
    fn lines_split_at_the_first_colon() {
        let got = parse_field_lines(&[
            "Accept: text/html",
            "X-Url:  http://a:1/ \t",
            "X-Empty:",
            "X-Blank: \t ",
            "x-tight:v",
            "X-Inner: a  \t b",
            "X-Latin: café",
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                ("Accept", "text/html"),
                ("X-Url", "http://a:1/"),
                ("X-Empty", ""),
                ("X-Blank", ""),
                ("x-tight", "v"),
                ("X-Inner", "a  \t b"),
                ("X-Latin", "café"),
            ]
        );
        assert_eq!(parse_field_lines(&[]).unwrap(), []);
    }

    #[test]
    fn each_rule_has_its_error_and_index() {
        assert_eq!(
            kind_at(&["A: 1", "no colon"]),
            (1, FieldLineErrorKind::NoColon)
        );
        assert_eq!(kind_at(&[""]), (0, FieldLineErrorKind::NoColon));
        // Whitespace before the colon (RFC 9112 §5.1) or before the name
        // (obs-fold's look).
        assert_eq!(kind_at(&["A : 1"]), (0, FieldLineErrorKind::InvalidName));
        assert_eq!(kind_at(&["A\t: 1"]), (0, FieldLineErrorKind::InvalidName));
        assert_eq!(
            kind_at(&["A: 1", " B: 2"]),
            (1, FieldLineErrorKind::InvalidName)
        );
        assert_eq!(kind_at(&[": 1"]), (0, FieldLineErrorKind::InvalidName));
        assert_eq!(
            kind_at(&["Na(me): 1"]),
            (0, FieldLineErrorKind::InvalidName)
        );
        assert_eq!(kind_at(&["Nämé: 1"]), (0, FieldLineErrorKind::InvalidName));
        assert_eq!(
            kind_at(&["A: 1", "B: 2", "C: a\r\nD: b"]),
            (2, FieldLineErrorKind::InvalidValue)
        );
        assert_eq!(
            kind_at(&["A: nul\0"]),
            (0, FieldLineErrorKind::InvalidValue)
        );
        assert_eq!(
            kind_at(&["A: del\x7f"]),
            (0, FieldLineErrorKind::InvalidValue)
        );
        assert_eq!(kind_at(&["A: lf\n"]), (0, FieldLineErrorKind::InvalidValue));
        // The first bad line wins.
        assert_eq!(
            kind_at(&["ok: 1", "bad", ": 1"]),
            (1, FieldLineErrorKind::NoColon)
        );
    }

    #[test]
    fn errors_read_as_words() {
        let e = |index, kind| FieldLineError { index, kind }.to_string();
        assert_eq!(
            e(2, FieldLineErrorKind::NoColon),
            "field line 2 has no colon (\"Name: value\" expected)"
        );
        assert_eq!(
            e(0, FieldLineErrorKind::InvalidName),
            "field line 0 has an invalid name (a token, with no space before the colon)"
        );
        assert_eq!(
            e(1, FieldLineErrorKind::InvalidValue),
            "field line 1 has a character a field value cannot hold (CR, LF, NUL, a control)"
        );
        assert_eq!(
            parse_field_lines(&["x"]).unwrap_err().to_string(),
            "field line 0 has no colon (\"Name: value\" expected)"
        );
    }
}
