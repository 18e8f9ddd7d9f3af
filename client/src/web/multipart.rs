//! `multipart/form-data` bodies (RFC 7578): text parts and file parts
//! streamed from disk, names and filenames escaped so nothing breaks out
//! of their quotes, the boundary from a CSPRNG, and a Content-Length the
//! library computes when the request starts (the sum of the pieces).

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{BodyPart, RequestBody};

/// A `multipart/form-data` body being built; see
/// [`crate::web::Request::multipart`].
///
/// ```
/// use pollhttp::web::Multipart;
/// let mut form = Multipart::new();
/// form.text("title", "hello")?.bytes("data", "a.bin", "application/octet-stream", &b"\x00\x01"[..])?;
/// assert!(form.content_type().starts_with("multipart/form-data; boundary=pollhttp-"));
/// # Ok::<(), pollhttp::web::MultipartError>(())
/// ```
#[derive(Debug)]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Part {
    /// The part's header section, through its blank line.
    head: String,
    data: PartData,
}

#[derive(Debug)]
enum PartData {
    Bytes(Bytes),
    File(PathBuf),
}

/// A part that cannot be sent, refused when it is added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    /// A CR, LF or other control character (0x00–0x1F, 0x7F) in a part's
    /// name, filename or content type: it could end the header line and
    /// inject fields.
    ControlCharacter {
        /// The part's index (0 for the first added).
        part: usize,
        /// `"name"`, `"filename"` or `"content type"`.
        field: &'static str,
    },
    /// A content type that is not `type/subtype` (tokens, parameters
    /// allowed).
    InvalidContentType {
        /// The part's index.
        part: usize,
    },
    /// A boundary that is not 1–70 of RFC 2046's characters (no trailing
    /// space).
    InvalidBoundary,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::ControlCharacter { part, field } => {
                write!(
                    f,
                    "part {part}: the {field} holds a control character (CR, LF...)"
                )
            }
            MultipartError::InvalidContentType { part } => {
                write!(f, "part {part}: the content type is not type/subtype")
            }
            MultipartError::InvalidBoundary => {
                f.write_str("the boundary is not 1-70 characters of RFC 2046's set")
            }
        }
    }
}

impl std::error::Error for MultipartError {}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    /// An empty form whose boundary is `pollhttp-` and 32 hex digits of 16
    /// bytes from the OS's CSPRNG (getrandom), so no part's content can
    /// guess it (should the OS refuse, the bytes come from the clock and a
    /// counter mixed).
    pub fn new() -> Multipart {
        let mut raw = [0u8; 16];
        if getrandom::fill(&mut raw).is_err() {
            raw[..8].copy_from_slice(&super::random_u64().to_le_bytes());
            raw[8..].copy_from_slice(&super::random_u64().to_le_bytes());
        }
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        Multipart {
            boundary: format!("pollhttp-{hex}"),
            parts: Vec::new(),
        }
    }

    /// An empty form with this boundary (for tests and reproducible bodies).
    ///
    /// # Errors
    /// [`MultipartError::InvalidBoundary`] unless 1–70 characters of RFC
    /// 2046 §5.1.1's `bchars`, not ending in a space.
    pub fn with_boundary(boundary: &str) -> Result<Multipart, MultipartError> {
        let ok = (1..=70).contains(&boundary.len())
            && !boundary.ends_with(' ')
            && boundary
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b));
        if !ok {
            return Err(MultipartError::InvalidBoundary);
        }
        Ok(Multipart {
            boundary: boundary.to_string(),
            parts: Vec::new(),
        })
    }

    /// The boundary.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The `Content-Type` field value: `multipart/form-data;
    /// boundary=<boundary>`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// A text field (no Content-Type line: text/plain, RFC 7578 §4.4).
    ///
    /// # Errors
    /// [`MultipartError::ControlCharacter`] for the name.
    pub fn text(
        &mut self,
        name: &str,
        value: impl Into<String>,
    ) -> Result<&mut Self, MultipartError> {
        let head = self.head(name, None, None)?;
        self.parts.push(Part {
            head,
            data: PartData::Bytes(Bytes::from(value.into())),
        });
        Ok(self)
    }

    /// A file streamed from disk, its filename the path's last component
    /// and its content type guessed from the extension (txt, html, json,
    /// png, jpg/jpeg, gif, pdf, zip, gz; else application/octet-stream).
    /// The file is opened when the request starts (a missing one is
    /// refused then, with nothing sent).
    ///
    /// # Errors
    /// [`MultipartError::ControlCharacter`] for the name or filename.
    pub fn file(
        &mut self,
        name: &str,
        path: impl AsRef<Path>,
    ) -> Result<&mut Self, MultipartError> {
        let path = path.as_ref();
        let filename = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content_type = guess_type(path);
        self.file_with(name, path, &filename, content_type)
    }

    /// A file streamed from disk, with the filename and content type given.
    ///
    /// # Errors
    /// [`MultipartError::ControlCharacter`],
    /// [`MultipartError::InvalidContentType`].
    pub fn file_with(
        &mut self,
        name: &str,
        path: impl AsRef<Path>,
        filename: &str,
        content_type: &str,
    ) -> Result<&mut Self, MultipartError> {
        let head = self.head(name, Some(filename), Some(content_type))?;
        self.parts.push(Part {
            head,
            data: PartData::File(path.as_ref().to_path_buf()),
        });
        Ok(self)
    }

    /// A file part from bytes in memory.
    ///
    /// # Errors
    /// As [`file_with`](Self::file_with).
    pub fn bytes(
        &mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        data: impl Into<Bytes>,
    ) -> Result<&mut Self, MultipartError> {
        let head = self.head(name, Some(filename), Some(content_type))?;
        self.parts.push(Part {
            head,
            data: PartData::Bytes(data.into()),
        });
        Ok(self)
    }

    /// A part's header section: Content-Disposition (name and filename in
    /// quotes, `"` as `%22` as the HTML standard does; UTF-8 as it is, RFC
    /// 7578 §5.1), then Content-Type when given.
    fn head(
        &self,
        name: &str,
        filename: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<String, MultipartError> {
        let part = self.parts.len();
        let check = |s: &str, field| {
            if s.chars().any(|c| c.is_ascii_control()) {
                Err(MultipartError::ControlCharacter { part, field })
            } else {
                Ok(s.replace('"', "%22"))
            }
        };
        let mut head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"",
            self.boundary,
            check(name, "name")?
        );
        if let Some(f) = filename {
            head.push_str(&format!("; filename=\"{}\"", check(f, "filename")?));
        }
        head.push_str("\r\n");
        if let Some(t) = content_type {
            check(t, "content type")?;
            let (media, _) = t.split_once(';').unwrap_or((t, ""));
            let valid = media.trim().split_once('/').is_some_and(|(a, b)| {
                pollhttp_proto::is_token(a.as_bytes()) && pollhttp_proto::is_token(b.as_bytes())
            });
            if !valid {
                return Err(MultipartError::InvalidContentType { part });
            }
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        head.push_str("\r\n");
        Ok(head)
    }

    /// The body: every part's head, data and CRLF, then the closing
    /// delimiter, as pieces in memory and files ([`RequestBody::Parts`]:
    /// the Content-Length is their sum, the body can be sent again).
    pub fn into_body(self) -> RequestBody {
        let mut pieces = Vec::with_capacity(self.parts.len() * 3 + 1);
        for part in self.parts {
            pieces.push(BodyPart::Bytes(Bytes::from(part.head)));
            match part.data {
                PartData::Bytes(b) => {
                    pieces.push(BodyPart::Bytes(b));
                }
                PartData::File(p) => pieces.push(BodyPart::File(p)),
            }
            pieces.push(BodyPart::Bytes(Bytes::from_static(b"\r\n")));
        }
        pieces.push(BodyPart::Bytes(Bytes::from(format!(
            "--{}--\r\n",
            self.boundary
        ))));
        RequestBody::Parts(pieces)
    }
}

fn guess_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flatten(body: RequestBody) -> Vec<u8> {
        let RequestBody::Parts(pieces) = body else {
            panic!("parts expected");
        };
        let mut out = Vec::new();
        for p in pieces {
            match p {
                BodyPart::Bytes(b) => out.extend_from_slice(&b),
                BodyPart::File(path) => out.extend(std::fs::read(path).unwrap()),
            }
        }
        out
    }

    #[test]
    fn exact_bytes_of_text_and_file_parts() {
        let mut form = Multipart::with_boundary("XyZ").unwrap();
        form.text("a", "1")
            .unwrap()
            .bytes("f", "x.bin", "application/octet-stream", &b"\x00\xff"[..])
            .unwrap();
        let body = flatten(form.into_body());
        assert_eq!(
            body,
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n\
              Content-Type: application/octet-stream\r\n\r\n\x00\xff\r\n--XyZ--\r\n"
        );
    }

    #[test]
    fn files_are_read_when_sent() {
        let path = std::env::temp_dir().join(format!("pollhttp-mp-{}.txt", std::process::id()));
        std::fs::write(&path, "file body").unwrap();
        let mut form = Multipart::with_boundary("b").unwrap();
        form.file("up", &path).unwrap();
        let body = flatten(form.into_body());
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("; filename=\"pollhttp-mp-"), "{text}");
        assert!(
            text.contains("Content-Type: text/plain\r\n\r\nfile body\r\n--b--\r\n"),
            "{text}"
        );
    }

    #[test]
    fn quotes_are_escaped_and_controls_refused() {
        let mut form = Multipart::with_boundary("b").unwrap();
        form.text("say \"hi\"", "v").unwrap();
        let text = String::from_utf8(flatten(form.into_body())).unwrap();
        assert!(text.contains("name=\"say %22hi%22\""), "{text}");

        let mut form = Multipart::new();
        form.text("ok", "1").unwrap();
        assert_eq!(
            form.text("a\r\nb", "v").unwrap_err(),
            MultipartError::ControlCharacter {
                part: 1,
                field: "name"
            }
        );
        assert_eq!(
            form.bytes("n", "f\n.txt", "text/plain", Bytes::new())
                .unwrap_err(),
            MultipartError::ControlCharacter {
                part: 1,
                field: "filename"
            }
        );
        assert_eq!(
            form.bytes("n", "f", "text/plain\r\nX: y", Bytes::new())
                .unwrap_err(),
            MultipartError::ControlCharacter {
                part: 1,
                field: "content type"
            }
        );
        assert_eq!(
            form.bytes("n", "f", "plain", Bytes::new()).unwrap_err(),
            MultipartError::InvalidContentType { part: 1 }
        );
        // A refused part is not added.
        assert_eq!(form.parts.len(), 1);
    }

    #[test]
    fn boundaries_are_random_and_checked() {
        let a = Multipart::new();
        let b = Multipart::new();
        assert_ne!(a.boundary(), b.boundary());
        assert_eq!(a.boundary().len(), "pollhttp-".len() + 32);
        assert!(a.boundary()["pollhttp-".len()..]
            .bytes()
            .all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            Multipart::with_boundary("").unwrap_err(),
            MultipartError::InvalidBoundary
        );
        assert_eq!(
            Multipart::with_boundary("a\r\n").unwrap_err(),
            MultipartError::InvalidBoundary
        );
        assert_eq!(
            Multipart::with_boundary(&"x".repeat(71)).unwrap_err(),
            MultipartError::InvalidBoundary
        );
    }
}
