//! Where a response body goes: the content decoders ([`super::coding`]:
//! gzip, deflate, br, zstd, stacked) and the sink (memory or the download
//! file), with the body size limit counted after decoding (a decompression
//! bomb stops at it) and the body's digests ([`super::digest`]) hashed as it
//! arrives.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;
use pollhttp_proto::{MessageBodyLength, ResponseHead};

use super::coding::{chain, content_codings, Layer};
use super::digest::{Verifier, VerifyFor};
use super::download::{content_range_start, remove_download, resume_note, validator_of, Replace};
use super::outcome::{RequestFailure, RequestResult};

#[derive(Debug)]
pub(crate) enum SinkError {
    Limit(u64),
    Write(io::Error),
}

impl SinkError {
    /// The result and reason a request ends with when its sink stopped
    /// with `error` (`None`: the decoder did, with `finish_error` when it
    /// said why). `path`: the download file.
    pub(crate) fn outcome(
        error: Option<SinkError>,
        path: Option<&Path>,
        finish_error: Option<io::Error>,
    ) -> (RequestResult, RequestFailure) {
        match error {
            Some(SinkError::Limit(limit)) => (
                RequestResult::BodySizeLimitExceeded,
                RequestFailure::BodySizeLimit { limit },
            ),
            Some(SinkError::Write(error)) => (
                RequestResult::DownloadFileWriteError,
                RequestFailure::DownloadFileWrite {
                    path: path.map(Path::to_path_buf).unwrap_or_default(),
                    error,
                },
            ),
            None => {
                let e = finish_error.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "corrupt compressed body")
                });
                (
                    RequestResult::BodyDecompressFailed,
                    RequestFailure::Decompress(e),
                )
            }
        }
    }
}

/// A body held in memory: its bytes, then initialised room past them that
/// reads may go into directly (without zeroing it again: under
/// `forbid(unsafe_code)` a read needs initialised memory). The room is the
/// caller's buffer given with `collect_into`, zeroed there (outside
/// `poll()`), or zeroes added as reads need them.
#[derive(Default)]
pub(crate) struct BodyMemory {
    /// `buf[..len]` is the body; `buf[len..]` initialised room.
    buf: Vec<u8>,
    len: usize,
}

impl BodyMemory {
    /// An empty body whose room is `buf` as it is (its bytes are
    /// overwritten, never handed out).
    pub(crate) fn with_room(buf: Vec<u8>) -> BodyMemory {
        BodyMemory { buf, len: 0 }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Room for `n` more bytes without moving the body (address space:
    /// pages are touched as bytes are written).
    pub(crate) fn reserve(&mut self, n: usize) {
        let more = (self.len + n).saturating_sub(self.buf.len());
        self.buf.reserve(more);
    }

    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        let end = self.len + data.len();
        if end <= self.buf.len() {
            self.buf[self.len..end].copy_from_slice(data);
        } else {
            self.buf.truncate(self.len);
            self.buf.extend_from_slice(data);
        }
        self.len = end;
    }

    /// `want` bytes of room right after the body, zeroed first only where
    /// there was none. Cost: at most a `want`-byte memset (none in a
    /// `collect_into` buffer), and a move of the body when it outgrows its
    /// allocation.
    pub(crate) fn room(&mut self, want: usize) -> &mut [u8] {
        let end = self.len + want;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        &mut self.buf[self.len..end]
    }

    /// `n` bytes were written at the start of [`room`](Self::room): they are
    /// body now.
    pub(crate) fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    /// Keep the first `n` bytes of the body (the rest becomes room).
    pub(crate) fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Append through `f` on the body as a `Vec` (for `read_to_end`, which
    /// reads into uninitialised capacity): the room is given up first.
    pub(crate) fn append_with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.buf.truncate(self.len);
        let r = f(&mut self.buf);
        self.len = self.buf.len();
        r
    }

    /// The body, as a `Vec` (its room given up).
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.buf.truncate(self.len);
        self.buf
    }

    /// The whole buffer, body and room, as room for another try (a retry
    /// starts over in it).
    pub(crate) fn into_room(self) -> Vec<u8> {
        self.buf
    }
}

/// Where decoded body bytes go: memory or the download file, with the body
/// size limit counted here (after decoding: a decompression bomb stops at it).
pub(crate) struct Sink {
    pub(crate) memory: BodyMemory,
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
    /// The digests the body is checked against (RFC 9530 fields, the
    /// expected SHA-256), hashed as bytes arrive.
    pub(crate) verify: Option<Box<Verifier>>,
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

    /// The body held: the memory's bytes, and streamed pieces not taken
    /// (one piece as it is, several copied together after the memory's).
    pub(crate) fn into_body(mut self) -> Bytes {
        match self.stream.take() {
            Some((mut pieces, _)) if pieces.len() == 1 && self.memory.is_empty() => {
                pieces.pop_front().unwrap_or_default()
            }
            Some((pieces, pending)) => {
                self.memory.reserve(pending);
                for p in pieces {
                    self.memory.extend_from_slice(&p);
                }
                Bytes::from(self.memory.into_vec())
            }
            None => Bytes::from(self.memory.into_vec()),
        }
    }

    /// Whether the download file's old content was replaced or appended
    /// to: its bytes are now this response's.
    pub(crate) fn file_touched(&self) -> bool {
        self.file.is_some() && self.replace.is_none()
    }

    /// The body is complete: check its digests.
    ///
    /// # Errors
    /// The first digest that does not match.
    pub(crate) fn verify_body(&mut self) -> Result<(), RequestFailure> {
        match self.verify.take() {
            Some(v) => v.verify(),
            None => Ok(()),
        }
    }

    /// The sink for bytes read straight into its memory (no content
    /// coding, not streamed, not a file): see
    /// [`accept_appended`](Self::accept_appended).
    pub(crate) fn in_place(&mut self) -> Option<&mut BodyMemory> {
        self.takes_in_place().then_some(&mut self.memory)
    }

    fn takes_in_place(&self) -> bool {
        self.stream.is_none() && self.file.is_none()
    }

    /// Bytes from `start` on were appended to the memory by the caller
    /// (through [`in_place`](Self::in_place)): count them against the
    /// limit (past it they are dropped and the sink stops, as a write
    /// would) and hash them for the digests.
    pub(crate) fn accept_appended(&mut self, start: usize) -> io::Result<()> {
        let n = self.memory.len() - start;
        if let Err(e) = self.check_limit(n) {
            self.memory.truncate(start);
            return Err(e);
        }
        if let Some(v) = &mut self.verify {
            v.content(&self.memory.as_slice()[start..]);
            v.decoded(&self.memory.as_slice()[start..]);
        }
        self.total += n as u64;
        Ok(())
    }

    /// Whether `n` more bytes may come; a refusal (the limit, a write
    /// error) is sticky: a decoder that retries its output later never gets
    /// a smaller piece past a limit already reached.
    fn check_limit(&mut self, n: usize) -> io::Result<()> {
        if self.error.is_some() {
            return Err(io::Error::other("the body was stopped"));
        }
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
        if let Some(v) = &mut self.verify {
            v.decoded(data);
        }
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
        if let Some(v) = &mut self.verify {
            v.decoded(buf);
        }
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

/// What decides where a final response's body goes (from the request's
/// settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SinkOptions<'a> {
    /// Decode content codings (`BodySettings::accept_gzip`).
    pub(crate) accept_gzip: bool,
    /// Check `Content-Digest` / `Repr-Digest` (`BodySettings::verify_digests`).
    pub(crate) verify_digests: bool,
    /// `BodySettings::expected_sha256`.
    pub(crate) expected_sha256: Option<[u8; 32]>,
    /// Most decoded body bytes (`BodySettings::size_limit`).
    pub(crate) body_size_limit: Option<u64>,
    /// The body goes to this file (`Settings::download_file`).
    pub(crate) download_file: Option<&'a Path>,
    /// Keep a resume note beside the file (`Settings::resume`).
    pub(crate) resume: bool,
    /// The size of the partial file a `Range` asked the rest of.
    pub(crate) resume_from: Option<u64>,
    /// Hand the body out in pieces (`BodySettings::stream`).
    pub(crate) stream_body: bool,
}

/// Most bytes reserved up front for a body of known length held in memory
/// (a larger Content-Length grows the buffer as bytes really arrive). The
/// reservation is address space: pages are backed as bytes are written.
/// Reserving the whole body spares the copies of a growing buffer (a
/// 16 MiB copy into fresh pages is several milliseconds in one `poll`).
const MAX_RESERVE: u64 = 64 << 20;

/// The coded variant is boxed: a decoder's state is a few hundred bytes (a
/// window more once it runs) that a body without a content coding (and a
/// queued request) need not carry.
pub(crate) enum Decoder {
    Identity(Sink),
    /// The decoding chain, outermost coding first, ending in the sink.
    Coded(Box<dyn Layer>),
}

impl Decoder {
    /// The decoder and sink for the body of the final response `head`: the
    /// content coding to decode (only when there is a body: HEAD, 204, 304
    /// and a Content-Length of 0 carry the coding of a representation they
    /// do not send, RFC 9110 §6.4.1, RFC 9112 §6.3), a resumed range checked (RFC 9110 §14.4),
    /// the download file opened (appended to, or replaced when the body
    /// starts), memory reserved for a known length; `collect` is the
    /// caller's buffer for a body in memory (taken; its length is
    /// initialised room, [`BodyMemory`]). (A declared length over
    /// the limit never gets here: proto refused it at the head, wire bytes
    /// being its limit.)
    ///
    /// # Errors
    /// The result and the reason the request ends with.
    pub(crate) fn for_response(
        head: &ResponseHead,
        options: &SinkOptions<'_>,
        collect: &mut Vec<u8>,
    ) -> Result<Decoder, (RequestResult, RequestFailure)> {
        let length = match head.body_length() {
            MessageBodyLength::ContentLength(n) => Some(n),
            MessageBodyLength::None => Some(0),
            _ => None,
        };
        let has_body = length != Some(0);
        let codings = if has_body && options.accept_gzip {
            content_codings(head.fields()).map_err(|content_encoding| {
                (
                    RequestResult::BodyDecompressFailed,
                    RequestFailure::UnsupportedCoding { content_encoding },
                )
            })?
        } else {
            Vec::new()
        };
        let decoding = !codings.is_empty();
        let mut append = false;
        let mut to_file = true;
        if let Some(from) = options.resume_from {
            match head.status() {
                206 => {
                    let range = head.fields().get_str("content-range").unwrap_or("");
                    if content_range_start(range) != Some(from) {
                        return Err((
                            RequestResult::RequestFailed,
                            RequestFailure::RangeMismatch {
                                expected: from,
                                content_range: range.to_string(),
                            },
                        ));
                    }
                    append = true;
                }
                // Nothing to resume: the file stays as it is, the 416 and
                // its body are the result. With an expected SHA-256, the
                // file is checked as it is (it should be complete).
                416 => {
                    to_file = false;
                    if let (Some(sum), Some(path)) =
                        (options.expected_sha256, options.download_file)
                    {
                        check_whole_file(path, sum)?;
                    }
                }
                _ => {}
            }
        }
        let mut file = None;
        let mut replace = None;
        if let (Some(path), true) = (options.download_file, to_file) {
            let opened = if append {
                std::fs::OpenOptions::new().append(true).open(path)
            } else {
                // Emptied when the body starts (or an empty body ends),
                // not now: a response that fails first changes nothing.
                replace = Some(Replace {
                    note: options
                        .resume
                        .then(|| (resume_note(path), validator_of(head))),
                });
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
            };
            match opened {
                Ok(f) => file = Some(f),
                Err(error) => {
                    return Err((
                        RequestResult::DownloadFileCantOpen,
                        RequestFailure::DownloadFileOpen {
                            path: path.to_path_buf(),
                            error,
                        },
                    ));
                }
            }
        }
        let mut verify = None;
        // HEAD, 204, 304 have no content to check; an empty one (a
        // Content-Length of 0) has, and its digest is the empty string's.
        if !matches!(head.body_length(), MessageBodyLength::None) {
            let wanted = VerifyFor {
                fields: options.verify_digests,
                expected: options
                    .expected_sha256
                    .filter(|_| to_file || options.download_file.is_none()),
                appended: append,
                identity: !decoding,
            };
            verify = Verifier::for_response(head.status(), head.fields(), &wanted)
                .map_err(|f| (RequestResult::IntegrityFailed, f))?;
            if let (Some(v), true, Some(path)) = (verify.as_mut(), append, options.download_file) {
                if v.wants_prefix() {
                    v.hash_prefix(path).map_err(|error| {
                        (
                            RequestResult::DownloadFileCantOpen,
                            RequestFailure::DownloadFileOpen {
                                path: path.to_path_buf(),
                                error,
                            },
                        )
                    })?;
                }
            }
        }
        let mut memory = match file {
            None => BodyMemory::with_room(std::mem::take(collect)),
            Some(_) => BodyMemory::default(),
        };
        if let (None, false, Some(n)) = (&file, decoding, length) {
            memory.reserve(n.min(MAX_RESERVE) as usize);
        }
        let sink = Sink {
            memory,
            file,
            limit: options.body_size_limit,
            total: 0,
            error: None,
            stream: options.stream_body.then(|| (VecDeque::new(), 0)),
            replace,
            verify,
        };
        if !decoding {
            return Ok(Decoder::Identity(sink));
        }
        chain(&codings, sink).map(Decoder::Coded).map_err(|e| {
            (
                RequestResult::BodyDecompressFailed,
                RequestFailure::Decompress(e),
            )
        })
    }

    pub(crate) fn sink(&mut self) -> &mut Sink {
        match self {
            Decoder::Identity(s) => s,
            Decoder::Coded(d) => d.sink(),
        }
    }
    /// The memory to read body bytes straight into, when they go there as
    /// they are ([`Sink::in_place`]).
    pub(crate) fn in_place(&mut self) -> Option<&mut Sink> {
        match self {
            Decoder::Identity(s) if s.takes_in_place() => Some(s),
            _ => None,
        }
    }
    /// Whether bytes go to the sink as they are (no content coding).
    pub(crate) fn is_identity(&self) -> bool {
        matches!(self, Decoder::Identity(_))
    }
    /// Take `data`, body bytes as received: hashed for the digest fields,
    /// then decoded into the sink.
    pub(crate) fn write(&mut self, data: &Bytes) -> io::Result<()> {
        if let Some(v) = &mut self.sink().verify {
            v.content(data);
        }
        match self {
            Decoder::Identity(s) => s.write_bytes(data),
            Decoder::Coded(d) => d.write_all(data),
        }
    }
    /// The sink comes back whatever the decoders say, with what it holds
    /// (and its own error: a limit reached by the last output).
    pub(crate) fn finish(self) -> (Sink, io::Result<()>) {
        match self {
            Decoder::Identity(s) => (s, Ok(())),
            Decoder::Coded(d) => d.finish(),
        }
    }
}

/// `resume` with an expected SHA-256 and a 416 (the partial file is
/// already whole): the file as it is must have the sum; else it is removed.
fn check_whole_file(path: &Path, sum: [u8; 32]) -> Result<(), (RequestResult, RequestFailure)> {
    let wanted = VerifyFor {
        fields: false,
        expected: Some(sum),
        appended: true,
        identity: true,
    };
    let Ok(Some(mut v)) = Verifier::for_response(416, &Default::default(), &wanted) else {
        return Ok(());
    };
    let open_error = |error| {
        (
            RequestResult::DownloadFileCantOpen,
            RequestFailure::DownloadFileOpen {
                path: path.to_path_buf(),
                error,
            },
        )
    };
    v.hash_prefix(path).map_err(open_error)?;
    v.verify().map_err(|f| {
        remove_download(path);
        (RequestResult::IntegrityFailed, f)
    })
}

pub(crate) fn empty_sink() -> Sink {
    Sink {
        memory: BodyMemory::default(),
        file: None,
        limit: None,
        total: 0,
        error: None,
        stream: None,
        replace: None,
        verify: None,
    }
}
