//! Response bodies as text (decoded by the charset of Content-Type,
//! encoding_rs) and JSON (serde_json), r.http's `result_format`, and a
//! case-insensitive map of the header fields.

use std::collections::BTreeMap;
use std::fmt;

use encoding_rs::Encoding;

use crate::Completed;

/// r.http's `result_format`: how [`Completed::parse`] reads a body
/// (RethinkDB's `r.http(url, {result_format: 'auto'})`: `text`, `json`,
/// `jsonp`, `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResultFormat {
    /// Text ([`Completed::text`]).
    Text,
    /// JSON.
    Json,
    /// JSONP: the JSON inside a callback call, `cb({...});`: optional
    /// whitespace and a `/**/` comment, a callback name (identifiers
    /// joined by dots: `cb`, `a.b_c$1`, `jQuery123_456`), `(`, the JSON,
    /// `)`, an optional `;`. Only that plain form: guarded forms such as
    /// `/**/ typeof cb === 'function' && cb({...})` are
    /// [`BodyError::NotJsonp`].
    Jsonp,
    /// By the Content-Type: `application/json` (and `+json` types) → JSON;
    /// `application/json-p`, `text/json-p`, `text/javascript` → JSONP;
    /// anything else → text. The default.
    #[default]
    Auto,
}

/// A parsed body ([`Completed::parse`]).
#[cfg(feature = "json")]
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Text.
    Text(String),
    /// JSON.
    Json(serde_json::Value),
}

/// Why a body could not be read as text or parsed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not valid in its encoding (strict decoding).
    InvalidText {
        /// The encoding's name (e.g. `"UTF-8"`, `"Shift_JIS"`).
        encoding: &'static str,
    },
    /// The body is not the JSON asked for.
    #[cfg(feature = "json")]
    Json(serde_json::Error),
    /// The body is not a JSONP callback call around JSON.
    NotJsonp,
    /// The body is empty (JSON needs a value).
    EmptyBody,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::InvalidText { encoding } => {
                write!(f, "the body is not valid {encoding} text")
            }
            #[cfg(feature = "json")]
            BodyError::Json(e) => write!(f, "the body is not the JSON expected: {e}"),
            BodyError::NotJsonp => f.write_str("the body is not a JSONP callback call"),
            BodyError::EmptyBody => f.write_str("the body is empty"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "json")]
            BodyError::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// The media type of a Content-Type value, lowercased, without parameters.
#[cfg(feature = "json")]
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `charset` parameter of a Content-Type value (RFC 9110 §8.3.1:
/// parameter names case-insensitive, values a token or a quoted-string).
fn charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

impl Completed {
    fn content_type(&self) -> &str {
        self.headers().get_str("content-type").unwrap_or("")
    }

    /// The body's encoding: the `charset` parameter of Content-Type (RFC
    /// 9110 §8.3: the parameter name case-insensitive, the value a token or
    /// a quoted-string), looked up by the WHATWG Encoding Standard's labels
    /// (`Encoding::for_label`: `ISO-8859-1` and `latin1` are windows-1252,
    /// as browsers read them). UTF-8 when there is no charset or its label
    /// is unknown (as fetch and axios do). A UTF-8 or UTF-16 byte order
    /// mark at the start of the body wins over both (the WHATWG "decode"
    /// algorithm); [`text`](Self::text) follows it and drops the mark.
    pub fn encoding(&self) -> &'static Encoding {
        if let Some((enc, _)) = Encoding::for_bom(&self.body) {
            return enc;
        }
        charset(self.content_type())
            .and_then(|c| Encoding::for_label(c.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8)
    }

    /// The body as text in its [`encoding`](Self::encoding), strictly
    /// (a byte order mark is dropped). Copies the body once.
    ///
    /// # Errors
    /// [`BodyError::InvalidText`], naming the encoding, when a byte
    /// sequence is not valid in it.
    pub fn text(&self) -> Result<String, BodyError> {
        let enc = self.encoding();
        let (text, _, malformed) = enc.decode(&self.body);
        if malformed {
            return Err(BodyError::InvalidText {
                encoding: enc.name(),
            });
        }
        Ok(text.into_owned())
    }

    /// The body as text in its [`encoding`](Self::encoding), malformed
    /// sequences replaced by U+FFFD.
    pub fn text_lossy(&self) -> String {
        self.encoding().decode(&self.body).0.into_owned()
    }

    /// The header fields as a map: lowercase names → every value of that
    /// name in wire order, not joined (field names are case-insensitive,
    /// RFC 9110 §5.1; axios lowercases them too). Values that are not UTF-8
    /// are read lossily (U+FFFD). [`Completed::headers`] keeps the wire
    /// order of all fields.
    pub fn header_map(&self) -> BTreeMap<String, Vec<String>> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for field in self.headers().iter() {
            map.entry(field.name().to_ascii_lowercase())
                .or_default()
                .push(String::from_utf8_lossy(field.value()).into_owned());
        }
        map
    }

    /// Whether the status is 2xx (RFC 9110 §15.3): axios's default
    /// `validateStatus`.
    pub fn is_success_status(&self) -> bool {
        (200..300).contains(&self.response_code())
    }

    /// The body as JSON, into any `Deserialize` type (a
    /// `serde_json::Value` for any JSON), from its [`text`](Self::text):
    /// axios's `responseType: 'json'`. An empty body is an error, not
    /// `null`.
    ///
    /// # Errors
    /// [`BodyError::EmptyBody`], [`BodyError::InvalidText`],
    /// [`BodyError::Json`].
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, BodyError> {
        if self.body.is_empty() {
            return Err(BodyError::EmptyBody);
        }
        let text = self.text()?;
        serde_json::from_str(&text).map_err(BodyError::Json)
    }

    /// The body read as r.http's `result_format` says ([`ResultFormat`]):
    /// [`Parsed::Text`] for text, [`Parsed::Json`] for JSON and JSONP.
    /// `Auto` looks at the media type of Content-Type (case-insensitive,
    /// parameters ignored).
    ///
    /// # Errors
    /// As [`text`](Self::text) and [`json`](Self::json);
    /// [`BodyError::NotJsonp`] for JSONP that is not `name(...)`.
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(done: &pollhttp::Completed) -> Result<(), pollhttp::web::BodyError> {
    /// use pollhttp::web::{Parsed, ResultFormat};
    /// match done.parse(ResultFormat::Auto)? {
    ///     Parsed::Json(v) => println!("{}", v["name"]),
    ///     Parsed::Text(t) => println!("{t}"),
    /// }
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub fn parse(&self, format: ResultFormat) -> Result<Parsed, BodyError> {
        let format = match format {
            ResultFormat::Auto => {
                let media = media_type(self.content_type());
                if media == "application/json" || media.ends_with("+json") {
                    ResultFormat::Json
                } else if matches!(
                    media.as_str(),
                    "application/json-p" | "text/json-p" | "text/javascript"
                ) {
                    ResultFormat::Jsonp
                } else {
                    ResultFormat::Text
                }
            }
            f => f,
        };
        match format {
            ResultFormat::Json => self.json().map(Parsed::Json),
            ResultFormat::Jsonp => {
                let text = self.text()?;
                let inner = jsonp_inner(&text).ok_or(BodyError::NotJsonp)?;
                serde_json::from_str(inner)
                    .map(Parsed::Json)
                    .map_err(BodyError::Json)
            }
            _ => self.text().map(Parsed::Text),
        }
    }
}

/// The JSON inside a JSONP body: optional whitespace and `/**/`, a callback
/// name (a dotted path of identifiers: `cb`, `a.b_c$1`, `jQuery123_456`),
/// `(`, the JSON, `)`, an optional `;`. Only that plain form.
#[cfg(feature = "json")]
fn jsonp_inner(text: &str) -> Option<&str> {
    let mut s = text.trim_start();
    if let Some(rest) = s.strip_prefix("/**/") {
        s = rest.trim_start();
    }
    let name_end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$' || c == '.'))
        .unwrap_or(s.len());
    let name = &s[..name_end];
    let first = name.chars().next()?;
    if first.is_ascii_digit() || first == '.' || name.ends_with('.') || name.contains("..") {
        return None;
    }
    let rest = s[name_end..].trim_start().strip_prefix('(')?;
    let rest = rest.trim_end();
    let rest = rest.strip_suffix(';').unwrap_or(rest).trim_end();
    rest.strip_suffix(')')
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// Fields as a parsed response head has them.
    fn completed(content_type: Option<&str>, body: &[u8]) -> Completed {
        let mut c = Completed::failed(
            crate::RequestResult::Success,
            crate::RequestFailure::WorkerGone,
        );
        c.failure = None;
        c.head = Some(match content_type {
            Some(t) => crate::web::test_head(&[("Content-Type", t)]),
            None => crate::web::test_head(&[]),
        });
        c.body = Bytes::copy_from_slice(body);
        c
    }

    #[test]
    fn text_by_charset() {
        let c = completed(Some("text/html; charset=ISO-8859-1"), b"caf\xe9");
        assert_eq!(c.encoding().name(), "windows-1252");
        assert_eq!(c.text().unwrap(), "café");
        let c = completed(Some("text/plain; Charset=\"utf-8\""), "é".as_bytes());
        assert_eq!(c.text().unwrap(), "é");
        let c = completed(Some("text/plain;charset=Shift_JIS"), b"\x82\xa0");
        assert_eq!(c.text().unwrap(), "あ");
        let c = completed(Some("text/plain; charset=bogus"), b"ok");
        assert_eq!(c.encoding().name(), "UTF-8");
    }

    #[test]
    fn strict_and_lossy_and_bom() {
        let c = completed(None, b"a\xffb");
        assert!(matches!(
            c.text(),
            Err(BodyError::InvalidText { encoding: "UTF-8" })
        ));
        assert_eq!(c.text_lossy(), "a\u{fffd}b");
        let c = completed(Some("text/plain; charset=latin1"), b"\xef\xbb\xbf\xc3\xa9");
        assert_eq!(c.encoding().name(), "UTF-8");
        assert_eq!(c.text().unwrap(), "é");
        let c = completed(Some("text/plain; charset=utf-8"), b"\xff\xfeh\x00i\x00");
        assert_eq!(c.encoding().name(), "UTF-16LE");
        assert_eq!(c.text().unwrap(), "hi");
        let c = completed(Some("text/plain; charset=shift_jis"), b"\x82");
        let e = c.text().unwrap_err();
        assert!(matches!(
            e,
            BodyError::InvalidText {
                encoding: "Shift_JIS"
            }
        ));
        assert_eq!(e.to_string(), "the body is not valid Shift_JIS text");
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn json_into_values_and_types() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct T {
            a: u32,
        }
        let c = completed(Some("application/json"), br#"{"a": 7}"#);
        assert_eq!(c.json::<T>().unwrap(), T { a: 7 });
        assert_eq!(c.json::<serde_json::Value>().unwrap()["a"], 7);
        assert!(matches!(
            completed(None, b"{").json::<T>(),
            Err(BodyError::Json(_))
        ));
        assert!(matches!(
            completed(None, b"").json::<T>(),
            Err(BodyError::EmptyBody)
        ));
        let e = completed(None, br#"{"a": "x"}"#).json::<T>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the body is not the JSON expected"),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn result_formats() {
        let json = serde_json::json!({"a": 1});
        let c = completed(Some("application/problem+json"), br#"{"a":1}"#);
        assert_eq!(
            c.parse(ResultFormat::Auto).unwrap(),
            Parsed::Json(json.clone())
        );
        for t in [
            "application/json-p",
            "text/json-p",
            "text/javascript; charset=utf-8",
        ] {
            let c = completed(Some(t), b" /**/ jQuery_1.cb$2({\"a\":1}) ; ");
            assert_eq!(
                c.parse(ResultFormat::Auto).unwrap(),
                Parsed::Json(json.clone()),
                "{t}"
            );
        }
        let c = completed(Some("text/html"), br#"{"a":1}"#);
        assert_eq!(
            c.parse(ResultFormat::Auto).unwrap(),
            Parsed::Text("{\"a\":1}".into())
        );
        assert_eq!(
            c.parse(ResultFormat::Json).unwrap(),
            Parsed::Json(json.clone())
        );
        let c = completed(Some("text/plain"), b"cb({\"a\":1});");
        assert_eq!(
            c.parse(ResultFormat::Jsonp).unwrap(),
            Parsed::Json(json.clone())
        );
        assert_eq!(
            c.parse(ResultFormat::Text).unwrap(),
            Parsed::Text("cb({\"a\":1});".into())
        );
        let c = completed(Some("Application/JSON; charset=utf-8"), b"[1]");
        assert_eq!(
            c.parse(ResultFormat::Auto).unwrap(),
            Parsed::Json(serde_json::json!([1]))
        );
        let c = completed(Some("text/javascript"), b"cb({)");
        assert!(matches!(
            c.parse(ResultFormat::Auto),
            Err(BodyError::Json(_))
        ));
        let c = completed(None, b"");
        assert_eq!(
            c.parse(ResultFormat::Auto).unwrap(),
            Parsed::Text(String::new())
        );
        for bad in [
            "{\"a\":1}",
            "1cb({})",
            "cb({}",
            "cb.({})",
            "x = cb({})",
            "/**/ typeof cb === 'function' && cb({\"a\":1});",
            "",
            "cb",
        ] {
            let c = completed(None, bad.as_bytes());
            assert!(
                matches!(c.parse(ResultFormat::Jsonp), Err(BodyError::NotJsonp)),
                "{bad}"
            );
        }
    }

    #[test]
    fn header_map_is_case_insensitive_in_wire_order() {
        let mut c = completed(None, b"");
        c.head = Some(crate::web::test_head(&[
            ("Set-Cookie", "a=1"),
            ("X-A", "1"),
            ("set-cookie", "b=2"),
        ]));
        let m = c.header_map();
        assert_eq!(m["set-cookie"], ["a=1", "b=2"]);
        assert_eq!(m["x-a"], ["1"]);
        assert!(c.is_success_status());
    }
}
