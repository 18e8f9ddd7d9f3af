//! `"Name: value"` field lines. STUB: helper-A implements.

/// Why a field line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldLineErrorKind {
    /// No colon.
    NoColon,
    /// The name is not a token.
    InvalidName,
    /// The value has a character a field value cannot hold.
    InvalidValue,
}

/// A field line that was refused, with its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLineError {
    /// Its index in the list given.
    pub index: usize,
    /// What is wrong.
    pub kind: FieldLineErrorKind,
}

impl std::fmt::Display for FieldLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field line {}: {:?}", self.index, self.kind)
    }
}

impl std::error::Error for FieldLineError {}

/// Split `"Name: value"` strings into (name, value) pairs.
///
/// # Errors
/// The first line that breaks a rule.
pub fn parse_field_lines<'a>(_lines: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, FieldLineError> {
    todo!()
}
