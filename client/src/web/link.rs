//! RFC 8288 `Link` fields. STUB: helper-A implements.

use pollhttp_proto::Fields;
use url::Url;

/// One link-value of a `Link` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkValue {
    /// The target as written between `<` and `>`.
    pub target: String,
    /// The relation types of `rel`, lowercased.
    pub rels: Vec<String>,
}

/// Parse one `Link` field value.
pub fn parse_link(_value: &str) -> Vec<LinkValue> {
    todo!()
}

/// The `rel="next"` target of a response, resolved against `base`.
pub fn next_link(_fields: &Fields, _base: &Url) -> Option<Url> {
    todo!()
}
