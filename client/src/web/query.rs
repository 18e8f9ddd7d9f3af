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

/// A value of [`query_string_from_dict`] (the values of Godot's
/// Dictionary: a string or number, an Array, or `null`).
///
/// Made with `.into()` from `&str`, `String`, integers (decimal), `bool`
/// (`true` / `false`, as Godot renders one), `Vec<&str>` / `Vec<String>`
/// (a [`List`](QueryValue::List)) and `Option<T>` (`None` is
/// [`Null`](QueryValue::Null)).
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

impl From<i32> for QueryValue {
    /// In decimal; an unsuffixed literal (`123.into()`) lands here.
    fn from(n: i32) -> QueryValue {
        QueryValue::Text(n.to_string())
    }
}

impl From<u32> for QueryValue {
    fn from(n: u32) -> QueryValue {
        QueryValue::Text(n.to_string())
    }
}

impl From<u64> for QueryValue {
    fn from(n: u64) -> QueryValue {
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

/// Godot's `String.uri_encode`: `A–Z a–z 0–9 - _ . ~` (RFC 3986 §2.3
/// unreserved) kept, every other UTF-8 byte as `%XX` (uppercase hex, RFC
/// 3986 §2.1; a space is `%20`, never `+`).
///
/// ```
/// assert_eq!(pollhttp::web::uri_encode("a b/é"), "a%20b%2F%C3%A9");
/// ```
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, URI_ENCODE).to_string()
}

/// Godot 4's `HTTPClient.query_string_from_dict`: the pairs in order,
/// joined by `&`, keys and values [`uri_encode`]d; a [`QueryValue::List`]
/// repeats the key for each element, a [`QueryValue::Null`] gives the bare
/// key. No leading `?`; an empty slice gives `""`.
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

/// Append `key=value` pairs ([`uri_encode`]d, joined by `&`) to the URL's
/// query, after any query it already has (with one `&`, never a second
/// `?`; an empty query, `http://h/p?`, gets no leading `&`). The fragment
/// is kept. No pairs: the URL is left as it is. Parse's, r.http's and
/// axios's `params` given as an object.
///
/// ```
/// let mut url = url::Url::parse("https://h/search?q=1#top").unwrap();
/// pollhttp::web::append_query_pairs(&mut url, &[("page", "2"), ("sort", "new first")]);
/// assert_eq!(url.as_str(), "https://h/search?q=1&page=2&sort=new%20first#top");
/// ```
pub fn append_query_pairs(url: &mut Url, pairs: &[(&str, &str)]) {
    let raw: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect();
    append_raw_query(url, &raw.join("&"));
}

/// Append a query string as it is (Parse's `params` given as a string):
/// leading `?` and `&` characters are dropped, and it joins any query the
/// URL already has with `&` (as [`append_query_pairs`]). An empty string
/// leaves the URL as it is. Nothing is decoded or re-encoded, except what a
/// query cannot hold: the `url` crate (the WHATWG URL standard's query
/// state) removes tabs, CRs and LFs and percent-encodes spaces, `"`, `#`,
/// `<`, `>`, other controls, non-ASCII, and `'` for special schemes, so the
/// raw string can never start a fragment or break the request line.
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

/// An `application/x-www-form-urlencoded` body from pairs, in order (the
/// WHATWG URL standard's serializer via `form_urlencoded`, as browsers and
/// `curl --data-urlencode` encode: `A–Z a–z 0–9 * - . _` kept, a space is
/// `+`, every other UTF-8 byte `%XX`). Send it with `Content-Type:
/// application/x-www-form-urlencoded`.
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

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn godot_doc_examples() {
        let q = query_string_from_dict(&[("username", "user".into()), ("password", "pass".into())]);
        assert_eq!(q, "username=user&password=pass");
        let q = query_string_from_dict(&[
            ("single", 123.into()),
            ("not_valued", QueryValue::Null),
            ("multiple", vec!["22", "33", "44"].into()),
        ]);
        assert_eq!(
            q,
            "single=123&not_valued&multiple=22&multiple=33&multiple=44"
        );
    }

    #[test]
    fn every_value_kind() {
        let q = query_string_from_dict(&[
            ("none", Vec::<String>::new().into()),
            ("t", true.into()),
            ("f", false.into()),
            ("neg", (-5i64).into()),
            ("big", u64::MAX.into()),
            ("u", 7u32.into()),
            ("owned", String::from("x y").into()),
            ("list", vec![String::from("a&b"), String::from("")].into()),
            ("some", Some(1).into()),
            ("null", None::<&str>.into()),
        ]);
        assert_eq!(
            q,
            "t=true&f=false&neg=-5&big=18446744073709551615&u=7&owned=x%20y\
             &list=a%26b&list=&some=1&null"
        );
        assert_eq!(query_string_from_dict(&[]), "");
        assert_eq!(
            query_string_from_dict(&[("only", QueryValue::List(vec![]))]),
            ""
        );
    }

    #[test]
    fn uri_encode_keeps_only_unreserved() {
        assert_eq!(uri_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(
            uri_encode("a b&c=d/é+*!"),
            "a%20b%26c%3Dd%2F%C3%A9%2B%2A%21"
        );
        assert_eq!(uri_encode("é"), "%C3%A9");
        assert_eq!(uri_encode("日"), "%E6%97%A5");
        assert_eq!(uri_encode("\0\r\n%"), "%00%0D%0A%25");
        assert_eq!(
            query_string_from_dict(&[("k y", Some("v+w").into()), ("é", None::<&str>.into())]),
            "k%20y=v%2Bw&%C3%A9"
        );
    }

    #[test]
    fn pairs_append_to_an_existing_query_and_keep_the_fragment() {
        let mut u = url("http://h/p?x=1#frag");
        append_query_pairs(&mut u, &[("a", "b c"), ("é", "1")]);
        assert_eq!(u.as_str(), "http://h/p?x=1&a=b%20c&%C3%A9=1#frag");
        assert_eq!(u.fragment(), Some("frag"));
        let mut u = url("http://h/p?");
        append_query_pairs(&mut u, &[("a", "1")]);
        assert_eq!(u.as_str(), "http://h/p?a=1");
        let mut u = url("http://h/p");
        append_query_pairs(&mut u, &[("a", "1"), ("b", "")]);
        assert_eq!(u.as_str(), "http://h/p?a=1&b=");
        // A '#' in a value is encoded, not a fragment.
        let mut u = url("http://h/p#f");
        append_query_pairs(&mut u, &[("q", "a#b?c")]);
        assert_eq!(u.as_str(), "http://h/p?q=a%23b%3Fc#f");
    }

    #[test]
    fn no_pairs_leave_the_url_as_it_is() {
        for s in ["http://h/p", "http://h/p?", "http://h/p?x=1#f"] {
            let mut u = url(s);
            append_query_pairs(&mut u, &[]);
            assert_eq!(u.as_str(), s);
            append_raw_query(&mut u, "");
            append_raw_query(&mut u, "?&");
            assert_eq!(u.as_str(), s);
        }
    }

    #[test]
    fn raw_queries_are_taken_as_given() {
        let mut u = url("http://h/p?x=1");
        append_raw_query(&mut u, "?a=1&b");
        assert_eq!(u.as_str(), "http://h/p?x=1&a=1&b");
        append_raw_query(&mut u, "&c=%41+d");
        assert_eq!(u.as_str(), "http://h/p?x=1&a=1&b&c=%41+d");
        let mut u = url("http://h/p?#f");
        append_raw_query(&mut u, "a=b c#x");
        assert_eq!(u.as_str(), "http://h/p?a=b%20c%23x#f");
        let mut u = url("http://h/p");
        append_raw_query(&mut u, "q=é");
        assert_eq!(u.as_str(), "http://h/p?q=%C3%A9");
        let mut u = url("http://h/p");
        append_raw_query(&mut u, "a=1\r\n2\t&b=\0'<>\"");
        assert_eq!(u.as_str(), "http://h/p?a=12&b=%00%27%3C%3E%22");
    }

    #[test]
    fn form_bodies_use_plus_for_space() {
        assert_eq!(
            &form_body(&[("a b", "1&2"), ("é", "=")])[..],
            b"a+b=1%262&%C3%A9=%3D"
        );
        assert_eq!(&form_body(&[("k", "*-._~+")])[..], b"k=*-._%7E%2B");
        assert_eq!(&form_body(&[])[..], b"");
    }
}
