//! `-w/--write-out FORMAT`: curl's variables after each transfer.
//!
//! A format is text with `%{variable}`, `%header{name}` (the final
//! response's field), `%%` (a `%`) and the escapes `\n`, `\r`, `\t`, `\\`;
//! `%{stdout}` and `%{stderr}` switch where the rest goes (stdout first).
//! `@FILE` reads the format from FILE (`@-`: stdin). An unknown variable is
//! a usage error (curl warns and prints nothing for it).

use pollhttp::proto::Version;
use pollhttp::Completed;
use serde_json::{json, Map, Value};

use crate::exit::Error;

/// The variables fetch knows, in the order `%{json}` lists them.
pub(crate) const VARIABLES: &[&str] = &[
    "content_type",
    "errormsg",
    "exitcode",
    "filename_effective",
    "http_code",
    "http_version",
    "method",
    "num_headers",
    "num_redirects",
    "redirect_url",
    "response_code",
    "size_download",
    "size_header",
    "size_upload",
    "time_total",
    "url",
    "url_effective",
];

/// A parsed format.
#[derive(Debug, Clone)]
pub(crate) struct WriteOut(Vec<Piece>);

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
    Header(String),
    Json,
    HeaderJson,
    Stdout,
    Stderr,
}

/// Parses `-w`'s argument (`@FILE` read first).
pub(crate) fn parse(arg: &str) -> Result<WriteOut, Error> {
    let text = match arg.strip_prefix('@') {
        Some(path) => String::from_utf8_lossy(&crate::plan::read_source(path)?).into_owned(),
        None => arg.to_string(),
    };
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            let (out, n) = match rest[1..].chars().next() {
                Some('n') => ('\n', 2),
                Some('r') => ('\r', 2),
                Some('t') => ('\t', 2),
                Some('\\') => ('\\', 2),
                _ => ('\\', 1),
            };
            lit.push(out);
            rest = &rest[n..];
            continue;
        }
        if c == '%' {
            if let Some(r) = rest.strip_prefix("%%") {
                lit.push('%');
                rest = r;
                continue;
            }
            let (header, after) = match rest.strip_prefix("%header{") {
                Some(r) => (true, r),
                None => match rest.strip_prefix("%{") {
                    Some(r) => (false, r),
                    None => {
                        lit.push('%');
                        rest = &rest[1..];
                        continue;
                    }
                },
            };
            let Some(end) = after.find('}') else {
                lit.push_str(rest);
                break;
            };
            let name = &after[..end];
            rest = &after[end + 1..];
            if !lit.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut lit)));
            }
            pieces.push(if header {
                Piece::Header(name.to_string())
            } else {
                match name {
                    "json" => Piece::Json,
                    "header_json" => Piece::HeaderJson,
                    "stdout" => Piece::Stdout,
                    "stderr" => Piece::Stderr,
                    n if VARIABLES.contains(&n) => Piece::Var(n.to_string()),
                    n => {
                        return Err(Error::usage(format!(
                            "-w: unknown variable %{{{n}}} (known: {}, json, header_json, stdout, stderr, %header{{name}})",
                            VARIABLES.join(", ")
                        )))
                    }
                }
            });
            continue;
        }
        lit.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !lit.is_empty() {
        pieces.push(Piece::Text(lit));
    }
    Ok(WriteOut(pieces))
}

/// What one transfer's variables are made of.
pub(crate) struct Vars<'a> {
    pub(crate) done: Option<&'a Completed>,
    pub(crate) url: &'a str,
    pub(crate) method: &'a str,
    pub(crate) file: Option<String>,
    pub(crate) exit_code: u8,
    /// The status to say instead of the response's (`-z`'s 304).
    pub(crate) status: Option<u16>,
    pub(crate) errormsg: String,
    pub(crate) seconds: f64,
    pub(crate) size_download: u64,
    pub(crate) size_upload: u64,
    pub(crate) redirects: u32,
}

impl Vars<'_> {
    fn value(&self, name: &str) -> Value {
        let done = self.done;
        let head = done.and_then(|d| d.head.as_ref());
        let field = |n: &str| {
            head.and_then(|h| h.fields().get(n))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        match name {
            "content_type" => field("content-type").map_or(Value::Null, Value::from),
            "errormsg" => Value::from(self.errormsg.clone()),
            "exitcode" => Value::from(self.exit_code),
            "filename_effective" => self.file.clone().map_or(Value::Null, Value::from),
            "http_code" | "response_code" => {
                Value::from(self.status.unwrap_or(head.map_or(0, |h| h.status())))
            }
            "http_version" => Value::from(match head.map(|h| h.version()) {
                Some(Version::Http10) => "1.0",
                Some(Version::Http11) => "1.1",
                None => "0",
            }),
            "method" => Value::from(self.method),
            "num_headers" => Value::from(head.map_or(0, |h| h.fields().iter().count())),
            "num_redirects" => Value::from(self.redirects),
            "redirect_url" => match head {
                Some(h) if (300..400).contains(&h.status()) => {
                    let base = done.map_or(self.url, |d| {
                        if d.final_url.is_empty() {
                            self.url
                        } else {
                            &d.final_url
                        }
                    });
                    field("location")
                        .and_then(|l| url::Url::parse(base).ok()?.join(&l).ok())
                        .map_or(Value::Null, |u| Value::from(u.to_string()))
                }
                _ => Value::Null,
            },
            "size_download" => Value::from(self.size_download),
            "size_header" => Value::from(done.map_or(0, |d| crate::output::head_text(d, "").len())),
            "size_upload" => Value::from(self.size_upload),
            "time_total" => Value::from(self.seconds),
            "url" => Value::from(self.url),
            "url_effective" => Value::from(match done {
                Some(d) if !d.final_url.is_empty() => d.final_url.clone(),
                _ => self.url.to_string(),
            }),
            _ => Value::Null,
        }
    }

    /// A variable as `-w` prints it (curl's formats: `http_code` in three
    /// digits, times in seconds with six decimals, nothing for no value).
    fn text(&self, name: &str) -> String {
        match (name, self.value(name)) {
            ("http_code" | "response_code", v) => format!("{:03}", v.as_u64().unwrap_or(0)),
            ("time_total", v) => format!("{:.6}", v.as_f64().unwrap_or(0.0)),
            (_, Value::Null) => String::new(),
            (_, Value::String(s)) => s,
            (_, v) => v.to_string(),
        }
    }

    fn json(&self) -> String {
        let mut m = Map::new();
        for name in VARIABLES {
            m.insert((*name).to_string(), self.value(name));
        }
        Value::Object(m).to_string()
    }

    fn header_json(&self) -> String {
        let mut m = Map::new();
        if let Some(d) = self.done {
            for f in d.headers().iter() {
                let entry = m
                    .entry(f.name().to_ascii_lowercase())
                    .or_insert_with(|| json!([]));
                if let Value::Array(a) = entry {
                    a.push(Value::from(String::from_utf8_lossy(f.value()).into_owned()));
                }
            }
        }
        Value::Object(m).to_string()
    }
}

impl WriteOut {
    /// The text for stdout and for stderr.
    pub(crate) fn render(&self, vars: &Vars<'_>) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        let mut to_err = false;
        for p in &self.0 {
            let s = match p {
                Piece::Stdout => {
                    to_err = false;
                    continue;
                }
                Piece::Stderr => {
                    to_err = true;
                    continue;
                }
                Piece::Text(t) => t.clone(),
                Piece::Var(v) => vars.text(v),
                Piece::Json => vars.json(),
                Piece::HeaderJson => vars.header_json(),
                Piece::Header(name) => vars
                    .done
                    .and_then(|d| d.headers().get(name))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default(),
            };
            if to_err {
                err.push_str(&s);
            } else {
                out.push_str(&s);
            }
        }
        (out, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            done: None,
            url: "http://h/x",
            method: "GET",
            file: None,
            exit_code: 7,
            status: None,
            errormsg: "refused".into(),
            seconds: 0.25,
            size_download: 0,
            size_upload: 0,
            redirects: 0,
        }
    }

    #[test]
    fn formats_like_curl() {
        let w = parse(r"%{http_code} %{exitcode} %{time_total} %{url_effective}\n100%%").unwrap();
        let (out, err) = w.render(&vars());
        assert_eq!(out, "000 7 0.250000 http://h/x\n100%");
        assert_eq!(err, "");
    }

    #[test]
    fn stderr_switch_and_unknown_variable() {
        let w = parse("a%{stderr}b%{stdout}c").unwrap();
        assert_eq!(w.render(&vars()), ("ac".to_string(), "b".to_string()));
        assert!(parse("%{nope}").is_err());
        // A lone % and an unclosed %{ are text.
        let w = parse("5% %{x").unwrap();
        assert_eq!(w.render(&vars()).0, "5% %{x");
    }

    #[test]
    fn json_has_every_variable() {
        let w = parse("%{json}").unwrap();
        let v: Value = serde_json::from_str(&w.render(&vars()).0).unwrap();
        for name in VARIABLES {
            assert!(v.get(name).is_some(), "{name}");
        }
        assert_eq!(v["exitcode"], 7);
        assert_eq!(v["http_code"], 0);
    }
}
