//! Query strings and form bodies. STUB: helper-A implements.

use bytes::Bytes;
use url::Url;

/// A value of [`query_string_from_dict`] (Godot's Dictionary values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryValue {
    /// `key=value`.
    Text(String),
    /// The key repeated for each element: `key=a&key=b`.
    List(Vec<String>),
    /// The bare key: `key`.
    Null,
}

/// Godot's `HTTPClient.query_string_from_dict`.
pub fn query_string_from_dict(_pairs: &[(&str, QueryValue)]) -> String {
    todo!()
}

/// Godot's `String.uri_encode`.
pub fn uri_encode(_s: &str) -> String {
    todo!()
}

/// Append encoded pairs to the URL's query.
pub fn append_query_pairs(_url: &mut Url, _pairs: &[(&str, &str)]) {
    todo!()
}

/// Append a raw query string to the URL's query.
pub fn append_raw_query(_url: &mut Url, _raw: &str) {
    todo!()
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_body(_pairs: &[(&str, &str)]) -> Bytes {
    todo!()
}
