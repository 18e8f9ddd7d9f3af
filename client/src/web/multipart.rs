//! `multipart/form-data` bodies (RFC 7578): text parts and file parts
//! streamed from disk, names and filenames escaped so nothing breaks out
//! of their quotes, the boundary from a CSPRNG, and a Content-Length the
//! library computes when the request starts (the sum of the pieces).

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{BodyPart, RequestBody};

/// A `multipart/form-data` body being built (RFC 7578); send it with
/// [`crate::web::Request::multipart`], or take [`content_type`] and
/// [`into_body`] to any request.
///
/// Each part is framed as RFC 7578 §4 and RFC 2046 §5.1.1 say:
///
/// ```text
/// --<boundary>\r\n
/// Content-Disposition: form-data; name="<name>"[; filename="<filename>"]\r\n
/// [Content-Type: <type>\r\n]
/// \r\n
/// <data>\r\n
/// ```
///
/// and the body ends with `--<boundary>--\r\n`. Parts are sent in the
/// order they were added. Names and filenames are sent as UTF-8 (RFC 7578
/// §5.1) with `"` written `%22` (the HTML standard's rule, RFC 7578 §4.2);
/// a control character in a name, filename or content type is refused when
/// the part is added, so a part can never inject header lines.
///
/// The data of a part is not scanned for the boundary: the boundary of
/// [`Multipart::new`] holds 128 random bits, which no content can guess.
/// With [`Multipart::with_boundary`] choosing one that the data does not
/// hold is the caller's job.
///
/// ```
/// use pollhttp::web::Multipart;
/// let mut form = Multipart::new();
/// form.text("title", "hello")?
///     .bytes("data", "a.bin", "application/octet-stream", &b"\x00\x01"[..])?;
/// assert!(form.content_type().starts_with("multipart/form-data; boundary=pollhttp-"));
/// # Ok::<(), pollhttp::web::MultipartError>(())
/// ```
///
/// [`content_type`]: Multipart::content_type
/// [`into_body`]: Multipart::into_body
#[derive(Debug)]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Part {
    /// The part's header section, from its delimiter through its blank
    /// line.
    head: String,
    data: PartData,
}

#[derive(Debug)]
enum PartData {
    Bytes(Bytes),
    File(PathBuf),
}

/// A part or boundary that cannot be sent, refused when it is given
/// (nothing is added to the form).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    /// A CR, LF or other control character (0x00–0x1F, 0x7F) in a part's
    /// name, filename or content type: it could end the header line and
    /// inject fields, so it is refused rather than escaped (RFC 7578 §4.2
    /// leaves the escaping of such characters undefined).
    ControlCharacter {
        /// The part's index (0 for the first added).
        part: usize,
        /// `"name"`, `"filename"` or `"content type"`.
        field: &'static str,
    },
    /// A content type that is not `type/subtype` (two tokens, RFC 9110
    /// §8.3.1; parameters after a `;` allowed).
    InvalidContentType {
        /// The part's index (0 for the first added).
        part: usize,
    },
    /// A boundary that is not 1–70 characters of RFC 2046 §5.1.1's
    /// `bchars` (letters, digits, `'()+_,-./:=?` and space), or ends in a
    /// space.
    InvalidBoundary,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::ControlCharacter { part, field } => write!(
                f,
                "multipart part {part}: the {field} holds a control character \
                 (CR, LF or another 0x00-0x1F, 0x7F), which could inject header lines"
            ),
            MultipartError::InvalidContentType { part } => write!(
                f,
                "multipart part {part}: the content type is not \"type/subtype\""
            ),
            MultipartError::InvalidBoundary => f.write_str(
                "a multipart boundary must be 1 to 70 letters, digits or '()+_,-./:=? \
                 and spaces, not ending in a space (RFC 2046)",
            ),
        }
    }
}

impl std::error::Error for MultipartError {}

impl Default for Multipart {
    /// [`Multipart::new`]: an empty form with a random boundary.
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    /// An empty form whose boundary is `pollhttp-` and 32 lowercase hex
    /// digits of 16 bytes from the OS's CSPRNG (getrandom), so no part's
    /// content can guess it. Should the OS refuse, the bytes come from the
    /// clock and a counter mixed (as the retry jitter's do): unique, not
    /// secret. Never panics.
    pub fn new() -> Multipart {
        let mut raw = [0u8; 16];
        if getrandom::fill(&mut raw).is_err() {
            raw[..8].copy_from_slice(&crate::request::retry::random_u64().to_le_bytes());
            raw[8..].copy_from_slice(&crate::request::retry::random_u64().to_le_bytes());
        }
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        Multipart {
            boundary: format!("pollhttp-{hex}"),
            parts: Vec::new(),
        }
    }

    /// An empty form with this boundary (for tests and reproducible
    /// bodies).
    ///
    /// # Errors
    /// [`MultipartError::InvalidBoundary`] unless it is 1–70 characters of
    /// RFC 2046 §5.1.1's `bchars` and does not end in a space.
    pub fn with_boundary(boundary: &str) -> Result<Multipart, MultipartError> {
        let ok = (1..=70).contains(&boundary.len())
            && !boundary.ends_with(' ')
            && boundary.bytes().all(is_bchar);
        if !ok {
            return Err(MultipartError::InvalidBoundary);
        }
        Ok(Multipart {
            boundary: boundary.to_string(),
            parts: Vec::new(),
        })
    }

    /// The boundary (without the leading `--`).
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The request's `Content-Type` field value: `multipart/form-data;
    /// boundary=<boundary>`, the boundary in quotes when it is not a token
    /// (it holds a space or one of `(),/:=?`: RFC 2046 §5.1.1, RFC 9110
    /// §5.6.6).
    pub fn content_type(&self) -> String {
        if pollhttp_proto::is_token(self.boundary.as_bytes()) {
            format!("multipart/form-data; boundary={}", self.boundary)
        } else {
            // bchars hold no '"' or '\\': nothing to escape.
            format!("multipart/form-data; boundary=\"{}\"", self.boundary)
        }
    }

    /// The number of parts added.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether no part was added (the body is then only the closing
    /// delimiter).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The body's size in bytes when every part is in memory; `None` when
    /// a part is a file (the library sums the file sizes when the request
    /// starts).
    pub fn len_if_known(&self) -> Option<u64> {
        let mut total = close_delimiter(&self.boundary).len() as u64;
        for part in &self.parts {
            let PartData::Bytes(b) = &part.data else {
                return None;
            };
            total += (part.head.len() + b.len() + 2) as u64;
        }
        Some(total)
    }

    /// A text field: its value as UTF-8, with no Content-Type line (the
    /// default is `text/plain`, RFC 7578 §4.4). The value is data: any
    /// character is allowed in it.
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

    /// A file streamed from disk: its filename the path's last component
    /// (lossy UTF-8; empty when the path has none, as `/` or `..`), its
    /// content type guessed from the extension, case-insensitively (txt
    /// `text/plain`, html/htm `text/html`, json `application/json`, png
    /// `image/png`, jpg/jpeg `image/jpeg`, gif `image/gif`, pdf
    /// `application/pdf`, zip `application/zip`, gz `application/gzip`;
    /// anything else `application/octet-stream`).
    ///
    /// The file is not opened here: the library opens it when the request
    /// starts (a relative path counts from the working directory then), its
    /// size goes into the Content-Length, and a missing or unreadable file
    /// fails the request then, before anything is sent. It is read again
    /// when the body is sent again (a retry, a 307 redirect).
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

    /// A file streamed from disk with the filename and content type given;
    /// opened when the request starts, as [`file`](Self::file).
    ///
    /// # Errors
    /// [`MultipartError::ControlCharacter`] for the name, filename or
    /// content type; [`MultipartError::InvalidContentType`].
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

    /// A file part whose content is in memory (sent without a copy).
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

    /// The next part's header section: its delimiter, Content-Disposition
    /// (name and filename in quotes, `"` as `%22`), then Content-Type when
    /// given, and the blank line.
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
            head.push_str("; filename=\"");
            head.push_str(&check(f, "filename")?);
            head.push('"');
        }
        head.push_str("\r\n");
        if let Some(t) = content_type {
            check(t, "content type")?;
            let media = t.split_once(';').map_or(t, |(m, _)| m);
            let valid = media.trim().split_once('/').is_some_and(|(a, b)| {
                pollhttp_proto::is_token(a.as_bytes()) && pollhttp_proto::is_token(b.as_bytes())
            });
            if !valid {
                return Err(MultipartError::InvalidContentType { part });
            }
            head.push_str("Content-Type: ");
            head.push_str(t.trim());
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        Ok(head)
    }

    /// The body: every part's head, data and CRLF, then the closing
    /// delimiter, as pieces in memory (not copied) and files
    /// ([`RequestBody::Parts`]: the Content-Length is their sum, computed
    /// when the request starts, and the body can be sent again). Send it
    /// with [`content_type`](Self::content_type) as the `Content-Type`.
    pub fn into_body(self) -> RequestBody {
        let mut pieces = Vec::with_capacity(self.parts.len() * 3 + 1);
        for part in self.parts {
            pieces.push(BodyPart::Bytes(Bytes::from(part.head)));
            pieces.push(match part.data {
                PartData::Bytes(b) => BodyPart::Bytes(b),
                PartData::File(p) => BodyPart::File(p),
            });
            pieces.push(BodyPart::Bytes(Bytes::from_static(b"\r\n")));
        }
        pieces.push(BodyPart::Bytes(Bytes::from(close_delimiter(
            &self.boundary,
        ))));
        RequestBody::Parts(pieces)
    }
}

/// `bchars` (RFC 2046 §5.1.1).
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// The end of the body: `--boundary--` and CRLF.
fn close_delimiter(boundary: &str) -> String {
    format!("--{boundary}--\r\n")
}

/// The content type of a file by its extension (case-insensitive).
fn guess_type(path: &Path) -> &'static str {
    guess_media_type(
        &path
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
    )
}

/// The media type a file part gets from its file name's extension
/// (case-insensitive): txt, html/htm, json, png, jpg/jpeg, gif, pdf, zip,
/// gz; anything else `application/octet-stream` (what browsers and curl
/// send for an unknown file).
pub fn guess_media_type(filename: &str) -> &'static str {
    // A leading dot alone (`.txt`, a hidden file) is no extension.
    let ext = filename
        .rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .map(|(_, e)| e.to_ascii_lowercase())
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

    /// The body's bytes: the pieces in memory and the files read.
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

    /// A path under the temp directory no other test or process uses.
    fn temp_path(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!("pollhttp-mp-{}-{nanos}-{name}", std::process::id()))
    }

    #[test]
    fn exact_bytes_of_text_and_bytes_parts() {
        let mut form = Multipart::with_boundary("XyZ").unwrap();
        form.text("a", "1\r\n--XyZ is data")
            .unwrap()
            .bytes("f", "x.bin", "application/octet-stream", &b"\x00\xff"[..])
            .unwrap();
        assert_eq!(form.len(), 2);
        let expected: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\
              1\r\n--XyZ is data\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n\
              Content-Type: application/octet-stream\r\n\r\n\x00\xff\r\n--XyZ--\r\n";
        assert_eq!(form.len_if_known(), Some(expected.len() as u64));
        assert_eq!(form.content_type(), "multipart/form-data; boundary=XyZ");
        assert_eq!(flatten(form.into_body()), expected);
    }

    #[test]
    fn an_empty_form_is_the_closing_delimiter() {
        let form = Multipart::with_boundary("b").unwrap();
        assert!(form.is_empty());
        assert_eq!(form.len_if_known(), Some(7));
        assert_eq!(flatten(form.into_body()), b"--b--\r\n");
    }

    #[test]
    fn file_parts_are_read_when_sent() {
        let path = temp_path("upload.TXT");
        std::fs::write(&path, "file body\n").unwrap();
        let mut form = Multipart::with_boundary("b").unwrap();
        form.file("up", &path).unwrap();
        form.file_with("raw", &path, "r.dat", "application/x-thing; v=1")
            .unwrap();
        // A file's size is only known when the request starts.
        assert_eq!(form.len_if_known(), None);
        let body = flatten(form.into_body());
        let _ = std::fs::remove_file(&path);
        let filename = path.file_name().unwrap().to_str().unwrap();
        let expected = format!(
            "--b\r\nContent-Disposition: form-data; name=\"up\"; filename=\"{filename}\"\r\n\
             Content-Type: text/plain\r\n\r\nfile body\n\r\n\
             --b\r\nContent-Disposition: form-data; name=\"raw\"; filename=\"r.dat\"\r\n\
             Content-Type: application/x-thing; v=1\r\n\r\nfile body\n\r\n--b--\r\n"
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[test]
    fn the_file_is_not_opened_when_added() {
        let missing = temp_path("never-written.bin");
        let mut form = Multipart::with_boundary("b").unwrap();
        form.file("f", &missing).unwrap();
        let RequestBody::Parts(pieces) = form.into_body() else {
            panic!("parts expected");
        };
        assert!(matches!(&pieces[1], BodyPart::File(p) if *p == missing));
        // No file name at all: an empty filename.
        let mut form = Multipart::with_boundary("b").unwrap();
        form.file("f", "/").unwrap();
        let RequestBody::Parts(pieces) = form.into_body() else {
            panic!("parts expected");
        };
        let BodyPart::Bytes(head) = &pieces[0] else {
            panic!("head expected");
        };
        assert!(head.ends_with(
            b"name=\"f\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ));
    }

    #[test]
    fn content_types_are_guessed_from_the_extension() {
        for (file, t) in [
            ("a.txt", "text/plain"),
            ("a.HTML", "text/html"),
            ("a.htm", "text/html"),
            ("a.json", "application/json"),
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.JPEG", "image/jpeg"),
            ("a.gif", "image/gif"),
            ("a.pdf", "application/pdf"),
            ("a.zip", "application/zip"),
            ("a.tar.gz", "application/gzip"),
            ("a.exe", "application/octet-stream"),
            ("noext", "application/octet-stream"),
            (".txt", "application/octet-stream"),
        ] {
            assert_eq!(guess_type(Path::new(file)), t, "{file}");
        }
    }

    #[test]
    fn quotes_are_escaped_and_utf8_kept() {
        let mut form = Multipart::with_boundary("b").unwrap();
        form.text("say \"hi\"", "v").unwrap();
        form.bytes("ünï", "a\"b\".txt", "text/plain", "x").unwrap();
        let text = String::from_utf8(flatten(form.into_body())).unwrap();
        assert!(text.contains("name=\"say %22hi%22\"\r\n"), "{text}");
        assert!(
            text.contains("name=\"ünï\"; filename=\"a%22b%22.txt\"\r\n"),
            "{text}"
        );
    }

    #[test]
    fn controls_are_refused_with_the_part_and_field() {
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
            form.file_with("n", "x", "f\r", "text/plain").unwrap_err(),
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
        for c in ['\0', '\t', '\x1f', '\x7f'] {
            assert_eq!(
                form.text(&format!("a{c}"), "v").unwrap_err(),
                MultipartError::ControlCharacter {
                    part: 1,
                    field: "name"
                }
            );
        }
        for bad in [
            "plain",
            "",
            "text/",
            "/plain",
            "text/pl ain",
            "te xt/plain",
            "a/b/c",
        ] {
            assert_eq!(
                form.bytes("n", "f", bad, Bytes::new()).unwrap_err(),
                MultipartError::InvalidContentType { part: 1 },
                "{bad:?}"
            );
        }
        // A refused part is not added.
        assert_eq!(form.len(), 1);
        form.bytes("n", "f", "text/plain; charset=utf-8", Bytes::new())
            .unwrap();
        assert_eq!(
            form.text("\n", "").unwrap_err(),
            MultipartError::ControlCharacter {
                part: 2,
                field: "name"
            }
        );
    }

    #[test]
    fn errors_read_as_words() {
        let e = MultipartError::ControlCharacter {
            part: 2,
            field: "filename",
        };
        assert_eq!(
            e.to_string(),
            "multipart part 2: the filename holds a control character \
             (CR, LF or another 0x00-0x1F, 0x7F), which could inject header lines"
        );
        assert_eq!(
            MultipartError::InvalidContentType { part: 0 }.to_string(),
            "multipart part 0: the content type is not \"type/subtype\""
        );
        assert!(MultipartError::InvalidBoundary
            .to_string()
            .starts_with("a multipart boundary must be 1 to 70"));
    }

    #[test]
    fn boundaries_are_random_and_checked() {
        let a = Multipart::new();
        let b = Multipart::new();
        assert_ne!(a.boundary(), b.boundary());
        for m in [&a, &b] {
            let hex = m.boundary().strip_prefix("pollhttp-").unwrap();
            assert_eq!(hex.len(), 32);
            assert!(hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
            assert_eq!(
                m.content_type(),
                format!("multipart/form-data; boundary={}", m.boundary())
            );
        }
        for bad in ["", "a\r\n", "a ", "a\"b", "a;b", "é"] {
            assert_eq!(
                Multipart::with_boundary(bad).unwrap_err(),
                MultipartError::InvalidBoundary,
                "{bad:?}"
            );
        }
        assert_eq!(
            Multipart::with_boundary(&"x".repeat(71)).unwrap_err(),
            MultipartError::InvalidBoundary
        );
        assert!(Multipart::with_boundary(&"x".repeat(70)).is_ok());
        // Not a token: quoted in the Content-Type.
        let spaced = Multipart::with_boundary("a b:c=d?(e)").unwrap();
        assert_eq!(
            spaced.content_type(),
            "multipart/form-data; boundary=\"a b:c=d?(e)\""
        );
    }
}
