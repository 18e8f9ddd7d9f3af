//! Where a response body goes: the content decoders (gzip, deflate) and the
//! sink (memory or the download file), with the body size limit counted
//! after decoding (a decompression bomb stops at it).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

#[derive(Debug)]
pub(crate) enum SinkError {
    Limit(u64),
    Write(io::Error),
}

/// Where decoded body bytes go: memory or the download file, with the body
/// size limit counted here (after decoding: a decompression bomb stops at it).
pub(crate) struct Sink {
    pub(crate) memory: Vec<u8>,
    pub(crate) file: Option<File>,
    pub(crate) limit: Option<u64>,
    pub(crate) total: u64,
    pub(crate) error: Option<SinkError>,
    /// Hand the body out in pieces instead (`stream_body`): the pieces not
    /// taken yet, and their bytes.
    pub(crate) stream: Option<(VecDeque<Bytes>, usize)>,
    /// The download file is replaced, not appended to: it is emptied when
    /// the body's first byte arrives (or when an empty body completes), so
    /// a response that fails before its body leaves the old content as it
    /// was (a partial download stays resumable).
    pub(crate) replace: Option<Replace>,
}

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
    fn apply(self, file: &mut File) -> io::Result<()> {
        file.set_len(0)?;
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

/// Pieces at least this long are handed out as they came from the receive
/// buffer (shared, not copied). A shared piece keeps its receive buffer
/// (at most 64 KiB, refilled only after half of it was consumed) alive, so
/// the floor bounds what the streamed backlog can hold: at most about four
/// times its bytes. Shorter pieces are copied.
const SHARED_PIECE: usize = 16 * 1024;

impl Sink {
    /// The body is complete: a file still to be replaced is emptied (an
    /// empty body), and a resume note is no longer needed.
    pub(crate) fn finish_download(&mut self, download: &Path) -> io::Result<()> {
        if let (Some(r), Some(f)) = (self.replace.take(), self.file.as_mut()) {
            r.apply(f)?;
        }
        match std::fs::remove_file(resume_note(download)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn check_limit(&mut self, n: usize) -> io::Result<()> {
        if let Some(limit) = self.limit {
            if self.total + n as u64 > limit {
                self.error = Some(SinkError::Limit(limit));
                return Err(io::Error::other("body size limit"));
            }
        }
        Ok(())
    }

    /// Take `data` (undecoded body bytes): a streamed body keeps a long
    /// piece as it is, without a copy.
    fn write_bytes(&mut self, data: &Bytes) -> io::Result<()> {
        if data.len() < SHARED_PIECE || self.stream.is_none() {
            return self.write_all(data);
        }
        self.check_limit(data.len())?;
        if let Some((pieces, pending)) = &mut self.stream {
            pieces.push_back(data.clone());
            *pending += data.len();
        }
        self.total += data.len() as u64;
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_limit(buf.len())?;
        if let Some((pieces, pending)) = &mut self.stream {
            pieces.push_back(Bytes::copy_from_slice(buf));
            *pending += buf.len();
            self.total += buf.len() as u64;
            return Ok(buf.len());
        }
        match &mut self.file {
            Some(f) => {
                let replaced = self.replace.take().map_or(Ok(()), |r| r.apply(f));
                if let Err(e) = replaced.and_then(|()| f.write_all(buf)) {
                    let msg = e.to_string();
                    self.error = Some(SinkError::Write(e));
                    return Err(io::Error::other(msg));
                }
            }
            None => self.memory.extend_from_slice(buf),
        }
        self.total += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The coded variants are boxed: a decoder's state is a few hundred bytes
/// that a body without a content coding (and a queued request) need not
/// carry.
pub(crate) enum Decoder {
    Identity(Sink),
    Gzip(Box<flate2::write::GzDecoder<Sink>>),
    Deflate(Box<flate2::write::ZlibDecoder<Sink>>),
}

impl Decoder {
    pub(crate) fn sink(&mut self) -> &mut Sink {
        match self {
            Decoder::Identity(s) => s,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
        }
    }
    /// Whether bytes go to the sink as they are (no content coding).
    pub(crate) fn is_identity(&self) -> bool {
        matches!(self, Decoder::Identity(_))
    }
    pub(crate) fn write(&mut self, data: &Bytes) -> io::Result<()> {
        match self {
            Decoder::Identity(s) => s.write_bytes(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Deflate(d) => d.write_all(data),
        }
    }
    pub(crate) fn finish(self) -> (Sink, io::Result<()>) {
        match self {
            Decoder::Identity(s) => (s, Ok(())),
            Decoder::Gzip(mut d) => {
                let r = d.try_finish();
                // finish() after try_finish() only returns the writer.
                match d.finish() {
                    Ok(s) => (s, r),
                    Err(e) => (empty_sink(), Err(e)),
                }
            }
            Decoder::Deflate(mut d) => {
                let r = d.try_finish();
                match d.finish() {
                    Ok(s) => (s, r),
                    Err(e) => (empty_sink(), Err(e)),
                }
            }
        }
    }
}

pub(crate) fn empty_sink() -> Sink {
    Sink {
        memory: Vec::new(),
        file: None,
        limit: None,
        total: 0,
        error: None,
        stream: None,
        replace: None,
    }
}
