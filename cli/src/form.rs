//! `-F`: a `multipart/form-data` body (RFC 7578) laid out as curl lays it
//! out, files streamed from disk: each part's `Content-Disposition` with
//! its name (and `filename` for a file or `;filename=`), a `Content-Type`
//! for a file (guessed from its name) or any part given `;type=`. A
//! caller's `-H 'Content-Type: multipart/…'` keeps its parameters and gets
//! the boundary.

use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use pollhttp::{BodyPart, RequestBody};

use crate::args::{FormContent, FormPart};
use crate::exit::Error;

/// A built form: its boundary and its pieces.
pub(crate) struct Form {
    boundary: String,
    pieces: Vec<BodyPart>,
}

impl Form {
    /// The `-F` parts as a form; a file that cannot be read is curl's 26.
    pub(crate) fn build(parts: &[FormPart]) -> Result<Form, Error> {
        let boundary = format!("------------------------{:016x}", random());
        let mut pieces = Vec::new();
        for p in parts {
            let (data, filename, media_type) = match &p.content {
                FormContent::File(path) => {
                    if !path.is_file() {
                        return Err(Error::read(format!(
                            "-F {}: cannot read {}",
                            p.name,
                            path.display()
                        )));
                    }
                    let filename = p.filename.clone().unwrap_or_else(|| {
                        path.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    });
                    let media_type = p
                        .content_type
                        .clone()
                        .unwrap_or_else(|| pollhttp::web::guess_media_type(&filename).to_string());
                    (
                        BodyPart::File(path.clone()),
                        Some(filename),
                        Some(media_type),
                    )
                }
                FormContent::FileText(path) => {
                    let text = std::fs::read(path).map_err(|e| {
                        Error::read(format!(
                            "-F {}: cannot read {}: {e}",
                            p.name,
                            path.display()
                        ))
                    })?;
                    (
                        BodyPart::Bytes(Bytes::from(text)),
                        p.filename.clone(),
                        p.content_type.clone(),
                    )
                }
                FormContent::Text(text) => (
                    BodyPart::Bytes(Bytes::from(text.clone())),
                    p.filename.clone(),
                    p.content_type.clone(),
                ),
            };
            let mut head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                quoted(&p.name, "name")?
            );
            if let Some(f) = &filename {
                head.push_str(&format!("; filename=\"{}\"", quoted(f, "filename")?));
            }
            head.push_str("\r\n");
            if let Some(t) = &media_type {
                if t.chars().any(|c| c.is_ascii_control()) {
                    return Err(Error::usage(format!(
                        "-F {}: a control character in the type",
                        p.name
                    )));
                }
                head.push_str(&format!("Content-Type: {t}\r\n"));
            }
            head.push_str("\r\n");
            pieces.push(BodyPart::Bytes(Bytes::from(head)));
            pieces.push(data);
            pieces.push(BodyPart::Bytes(Bytes::from_static(b"\r\n")));
        }
        pieces.push(BodyPart::Bytes(Bytes::from(format!("--{boundary}--\r\n"))));
        Ok(Form { boundary, pieces })
    }

    /// The Content-Type: the caller's `multipart/…` value with its
    /// parameters and the boundary added (kept when it names one: the
    /// caller then owns it... and fetch uses it), else
    /// `multipart/form-data; boundary=…`.
    pub(crate) fn content_type(&mut self, given: Option<&str>) -> String {
        match given {
            Some(v) => match boundary_of(v) {
                Some(b) => {
                    self.rebound(&b);
                    v.to_string()
                }
                None => format!("{v}; boundary={}", self.boundary),
            },
            None => format!("multipart/form-data; boundary={}", self.boundary),
        }
    }

    /// The body.
    pub(crate) fn into_body(self) -> RequestBody {
        RequestBody::Parts(self.pieces)
    }

    /// Uses `boundary` (the caller's) in place of the one made up.
    fn rebound(&mut self, boundary: &str) {
        let old = self.boundary.clone();
        for p in &mut self.pieces {
            if let BodyPart::Bytes(b) = p {
                if let Ok(s) = std::str::from_utf8(b) {
                    if s.starts_with("--") && s.contains(&old) {
                        *b = Bytes::from(s.replacen(&old, boundary, 1));
                    }
                }
            }
        }
        self.boundary = boundary.to_string();
    }
}

/// A `boundary=` parameter, unquoted.
fn boundary_of(v: &str) -> Option<String> {
    v.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| val.trim().trim_matches('"').to_string())
    })
}

/// A name or filename inside quotes: `"` as `%22` (as browsers and the
/// library do); a control character is refused.
fn quoted(s: &str, what: &str) -> Result<String, Error> {
    if s.chars().any(|c| c.is_ascii_control()) {
        return Err(Error::usage(format!(
            "-F: a control character in the {what} {s:?}"
        )));
    }
    Ok(s.replace('"', "%22"))
}

/// 64 bits that differ per call and per process (std's random hasher keys).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, value: &str, ty: Option<&str>) -> FormPart {
        FormPart {
            name: name.into(),
            content: FormContent::Text(value.into()),
            content_type: ty.map(str::to_string),
            filename: None,
        }
    }

    fn bytes_of(form: Form) -> String {
        let RequestBody::Parts(parts) = form.into_body() else {
            panic!("not parts")
        };
        parts
            .iter()
            .map(|p| match p {
                BodyPart::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                BodyPart::File(_) => "<file>".into(),
            })
            .collect()
    }

    #[test]
    fn a_text_part_may_have_a_type() {
        let mut f = Form::build(&[text("a", "b", Some("text/x"))]).unwrap();
        let ct = f.content_type(None);
        let b = ct.split_once("boundary=").unwrap().1.to_string();
        assert_eq!(
            bytes_of(f),
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Type: text/x\r\n\r\nb\r\n--{b}--\r\n"
            )
        );
    }

    #[test]
    fn the_callers_type_keeps_its_parameters() {
        let mut f = Form::build(&[text("a", "b", None)]).unwrap();
        let ct = f.content_type(Some("multipart/mixed; charset=utf-8"));
        assert!(
            ct.starts_with("multipart/mixed; charset=utf-8; boundary=-"),
            "{ct}"
        );
        let mut f = Form::build(&[text("a", "b", None)]).unwrap();
        let ct = f.content_type(Some("multipart/form-data; boundary=XyZ"));
        assert_eq!(ct, "multipart/form-data; boundary=XyZ");
        assert!(bytes_of(f).starts_with("--XyZ\r\n"));
    }
}
