//! Query strings and form bodies: Godot's `query_string_from_dict` and
//! `uri_encode`, parameters appended to a URL (Parse's, r.http's and
//! axios's `params`), and `application/x-www-form-urlencoded` bodies.

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

/// What Godot's `String.uri_encode` keeps: `A–Z a–z 0–9 - _ . ~` (RFC 3986
/// §2.3 unreserved); every other byte is percent-encoded.
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A value of [`query_string_from_dict`] (Godot's Dictionary values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryValue {
    /// `key=value`.
    Text(String),
    /// The key repeated for each element: `key=a&key=b` (nothing for an
    /// empty list).
    List(Vec<String>),
    /// The bare key: `key` (Godot's `null`).
    Null,
}

impl From<&str> for QueryValue {
    fn from(s: &str) -> QueryValue {
        QueryValue::Text(s.to_string())
    }
}

impl From<String> for QueryValue {
    fn from(s: String) -> QueryValue {
        QueryValue::Text(s)
    }
}

impl From<i64> for QueryValue {
    fn from(n: i64) -> QueryValue {
        QueryValue::Text(n.to_string())
    }
}

impl From<bool> for QueryValue {
    /// `true` / `false`, as Godot renders a bool.
    fn from(b: bool) -> QueryValue {
        QueryValue::Text(b.to_string())
    }
}

impl From<Vec<String>> for QueryValue {
    fn from(v: Vec<String>) -> QueryValue {
        QueryValue::List(v)
    }
}

impl From<Vec<&str>> for QueryValue {
    fn from(v: Vec<&str>) -> QueryValue {
        QueryValue::List(v.into_iter().map(str::to_string).collect())
    }
}

impl<T: Into<QueryValue>> From<Option<T>> for QueryValue {
    /// `None` is [`QueryValue::Null`].
    fn from(v: Option<T>) -> QueryValue {
        v.map_or(QueryValue::Null, Into::into)
    }
}

/// Godot's `String.uri_encode`: `A–Z a–z 0–9 - _ . ~` kept, every other
/// UTF-8 byte as `%XX` (uppercase hex; a space is `%20`).
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, URI_ENCODE).to_string()
}

/// Godot 4's `HTTPClient.query_string_from_dict`: the pairs in order,
/// joined by `&`, keys and values [`uri_encode`]d; a [`QueryValue::List`]
/// repeats the key for each element, a [`QueryValue::Null`] gives the bare
/// key. No leading `?`.
///
/// ```
/// use pollhttp::web::{query_string_from_dict, QueryValue};
/// let q = query_string_from_dict(&[
///     ("single", 123.into()),
///     ("not_valued", QueryValue::Null),
///     ("multiple", vec!["22", "33", "44"].into()),
/// ]);
/// assert_eq!(q, "single=123&not_valued&multiple=22&multiple=33&multiple=44");
/// ```
pub fn query_string_from_dict(pairs: &[(&str, QueryValue)]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let key = uri_encode(key);
        match value {
            QueryValue::Text(v) => out.push(format!("{key}={}", uri_encode(v))),
            QueryValue::List(vs) => {
                out.extend(vs.iter().map(|v| format!("{key}={}", uri_encode(v))));
            }
            QueryValue::Null => out.push(key),
        }
    }
    out.join("&")
}

/// Append `key=value` pairs ([`uri_encode`]d) to the URL's query, after
/// any query it already has (joined by `&`). No pairs: the URL is left as
/// it is.
pub fn append_query_pairs(url: &mut Url, pairs: &[(&str, &str)]) {
    let raw: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect();
    append_raw_query(url, &raw.join("&"));
}

/// Append a query string as it is (Parse's `params` given as a string): a
/// leading `?` or `&` is dropped, and it joins any query the URL already
/// has with `&`. An empty string leaves the URL as it is. The `url` crate
/// percent-encodes what a query cannot hold (spaces, controls).
pub fn append_raw_query(url: &mut Url, raw: &str) {
    let raw = raw.trim_start_matches(['?', '&']);
    if raw.is_empty() {
        return;
    }
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{raw}"),
        _ => raw.to_string(),
    };
    url.set_query(Some(&query));
}

/// An `application/x-www-form-urlencoded` body from pairs (the WHATWG URL
/// standard's serializer, as browsers and `curl --data-urlencode`: a space
/// is `+`).
pub fn form_body(pairs: &[(&str, &str)]) -> Bytes {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    Bytes::from(s.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn godot_examples() {
        let q = query_string_from_dict(&[("username", "user".into()), ("password", "pass".into())]);
        assert_eq!(q, "username=user&password=pass");
        let q = query_string_from_dict(&[
            ("single", 123.into()),
            ("not_valued", QueryValue::Null),
            ("multiple", vec!["22", "33", "44"].into()),
            ("none", Vec::<String>::new().into()),
            ("flag", true.into()),
        ]);
        assert_eq!(
            q,
            "single=123&not_valued&multiple=22&multiple=33&multiple=44&flag=true"
        );
    }

    #[test]
    fn uri_encode_keeps_only_unreserved() {
        assert_eq!(uri_encode("a b&c=d/é~-_."), "a%20b%26c%3Dd%2F%C3%A9~-_.");
        assert_eq!(
            query_string_from_dict(&[("k y", Some("v+w").into()), ("n", None::<&str>.into())]),
            "k%20y=v%2Bw&n"
        );
    }

    #[test]
    fn pairs_append_to_an_existing_query_and_keep_the_fragment() {
        let mut u = Url::parse("http://h/p?x=1#frag").unwrap();
        append_query_pairs(&mut u, &[("a", "b c"), ("é", "1")]);
        assert_eq!(u.as_str(), "http://h/p?x=1&a=b%20c&%C3%A9=1#frag");
        let mut u = Url::parse("http://h/p?").unwrap();
        append_query_pairs(&mut u, &[("a", "1")]);
        assert_eq!(u.as_str(), "http://h/p?a=1");
        let mut u = Url::parse("http://h/p").unwrap();
        append_query_pairs(&mut u, &[]);
        assert_eq!(u.as_str(), "http://h/p");
    }

    #[test]
    fn raw_queries_are_taken_as_given() {
        let mut u = Url::parse("http://h/p?x=1").unwrap();
        append_raw_query(&mut u, "?a=1&b");
        assert_eq!(u.as_str(), "http://h/p?x=1&a=1&b");
        append_raw_query(&mut u, "&");
        assert_eq!(u.as_str(), "http://h/p?x=1&a=1&b");
    }

    #[test]
    fn form_bodies_use_plus_for_space() {
        assert_eq!(
            &form_body(&[("a b", "1&2"), ("é", "=")])[..],
            b"a+b=1%262&%C3%A9=%3D"
        );
    }
}
