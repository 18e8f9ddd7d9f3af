//! The download file's rules (`Settings::download_file`, `resume`): a file
//! is replaced only when a new body starts, appended to by a 206 that
//! continues it (RFC 9110 §14.4), and resumed with an `If-Range` validator
//! the server gave for the bytes it holds (RFC 9110 §13.1.5), kept beside it
//! in a note that survives a killed process.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use pollhttp_proto::ResponseHead;

use super::Settings;

/// A download file about to be replaced, and what a later resume needs to
/// know about the bytes that will go into it.
#[derive(Debug)]
pub(crate) struct Replace {
    /// `resume`: where the validator of the file's bytes is kept
    /// ([`resume_note`]), and the validator (`None`: the response had none,
    /// so the note is removed).
    pub(crate) note: Option<(PathBuf, Option<String>)>,
}

/// `resume`: the file beside a download that keeps the `If-Range` validator
/// (a strong ETag or a Last-Modified date, RFC 9110 §13.1.5) of the response
/// its bytes came from, so a download cut by a killed process is resumed
/// only from the same representation. Removed when the download completes.
pub(crate) fn resume_note(download: &Path) -> PathBuf {
    let mut name = download.as_os_str().to_owned();
    name.push(".resume");
    PathBuf::from(name)
}

impl Replace {
    /// Empty `file` and record the new bytes' validator.
    pub(crate) fn apply(self, file: &mut File) -> io::Result<()> {
        // Only a regular file has a length to cut: a device (`/dev/null`,
        // `/dev/full`) or a pipe takes the bytes as they come.
        if file.metadata()?.is_file() {
            file.set_len(0)?;
        }
        match self.note {
            Some((path, Some(validator))) => std::fs::write(path, validator),
            Some((path, None)) => match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

/// Remove a download file whose bytes failed their integrity check, with
/// its resume note (nothing may resume from bytes known to be wrong).
/// Best effort: a file already gone is fine.
pub(crate) fn remove_download(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(resume_note(path));
}

/// A request with an expected SHA-256 ended without `Success` after its
/// body started going into the download file (`touched`): the file must not
/// look complete. An integrity failure removes it; another failure keeps it
/// only as a resumable partial when `resume` is on, marked by its note
/// (written empty when the response had no validator), else removes it.
pub(crate) fn settle_failed(path: &Path, resume: bool, integrity_failed: bool) {
    if integrity_failed || !resume {
        remove_download(path);
        return;
    }
    let note = resume_note(path);
    if !note.exists() {
        let _ = std::fs::write(note, "");
    }
}

/// `resume`: the size of a partial download file (> 0), with `Range` and
/// `If-Range` added to `headers` (unless the caller gave a `Range`).
pub(crate) fn resume_offset(
    settings: &Settings,
    headers: &mut Vec<(String, String)>,
) -> Option<u64> {
    if !settings.body.resume || headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("range")) {
        return None;
    }
    let meta = std::fs::metadata(settings.body.download_file.as_ref()?).ok()?;
    let size = meta.len();
    if size == 0 || !meta.is_file() {
        return None;
    }
    headers.push(("Range".into(), format!("bytes={size}-")));
    // Only a validator the server gave for these bytes (RFC 9110 §13.1.5):
    // without one, the Range goes alone (as curl's `-C -`).
    let note = std::fs::read_to_string(resume_note(settings.body.download_file.as_ref()?));
    if let Some(v) = note
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && pollhttp_proto::is_field_value(v.as_bytes()))
    {
        headers.push(("If-Range".into(), v));
    }
    Some(size)
}
/// `resume`: give the download file at `path` the response's
/// `Last-Modified` as its modification time (curl's `-R`) when the request
/// ends, complete or cut (a 2xx only). Informational: a resume's `If-Range`
/// comes from the note beside the file ([`resume_note`]), which a killed
/// process leaves right, where it leaves the modification time at the cut.
pub(crate) fn stamp(path: &Path, head: &ResponseHead) {
    if head.status() / 100 != 2 {
        return;
    }
    let Some(time) = head
        .fields()
        .get_str("last-modified")
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return;
    };
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = file.set_modified(time);
    }
}

/// The `If-Range` validator of a response (RFC 9110 §13.1.5): its ETag when
/// strong, else its Last-Modified date; `None` when it has neither.
pub(crate) fn validator_of(head: &ResponseHead) -> Option<String> {
    let fields = head.fields();
    fields
        .get_str("etag")
        .map(str::trim)
        .filter(|e| e.starts_with('"'))
        .or_else(|| fields.get_str("last-modified").map(str::trim))
        .map(str::to_string)
}

/// The first byte of a `Content-Range: bytes first-last/complete` value
/// (RFC 9110 §14.4).
pub(crate) fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::content_range_start;

    #[test]
    fn content_range_first_byte() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
