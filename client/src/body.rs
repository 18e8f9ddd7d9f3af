//! Request bodies: taken as they are (no copy), streamed from a file or any
//! reader, and fed to the connection with back-pressure.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A request body.
///
/// In memory ([`Bytes`], `Vec<u8>`, `String`, `&'static` data) it is sent as
/// it is, never copied whole; a file is streamed from disk; a reader is read
/// as the socket takes bytes. The connection holds at most about 256 KiB of a
/// body queued at a time whatever its size. Bodies in memory and files can be
/// sent again (a redirect that keeps the body, a retry); a reader only once.
#[non_exhaustive]
pub enum RequestBody {
    /// No body (`Content-Length: 0` for POST, PUT and PATCH, nothing otherwise).
    Empty,
    /// Bytes in memory, sent without copying them whole.
    Bytes(Bytes),
    /// A file, opened when the request starts (its size is the
    /// Content-Length) and streamed from disk.
    File(PathBuf),
    /// Any reader, read as the socket takes bytes. With `length` it is sent
    /// with `Content-Length` (and must yield exactly that many bytes), without
    /// it with chunked framing.
    Reader {
        /// Where the bytes come from.
        reader: Box<dyn Read + Send>,
        /// The body's size in bytes, when known.
        length: Option<u64>,
    },
    /// Pieces in memory and files, sent one after the other (a
    /// `multipart/form-data` body): every file is opened when the request
    /// starts, the sum of the sizes is the Content-Length, and the body can
    /// be sent again.
    Parts(Vec<BodyPart>),
    /// The body of another request in flight in the same pool, as it
    /// arrives ([`crate::RequestPool::pipe`]; sent chunked). Sent once.
    Piped(Piped),
}

/// The receiving end of a pipe from a download to an upload
/// ([`crate::RequestPool::pipe`]); made by the pool only.
pub struct Piped {
    pub(crate) shared: Arc<Mutex<PipeState>>,
}

impl fmt::Debug for Piped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared);
        f.debug_struct("Piped")
            .field("queued", &state.len)
            .field("end", &state.end)
            .finish()
    }
}

/// What a pipe holds: pieces of the download not yet sent by the upload.
#[derive(Debug, Default)]
pub(crate) struct PipeState {
    pub(crate) pieces: VecDeque<Bytes>,
    /// Bytes in `pieces`.
    pub(crate) len: usize,
    pub(crate) end: PipeEnd,
}

/// How a pipe's download ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PipeEnd {
    /// Still running: more may come.
    #[default]
    Open,
    /// Complete: the upload's body ends after the pieces.
    Done,
    /// Failed or cancelled: the upload fails.
    Failed,
}

pub(crate) fn lock(m: &Mutex<PipeState>) -> std::sync::MutexGuard<'_, PipeState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One piece of a [`RequestBody::Parts`] body.
#[derive(Debug, Clone)]
pub enum BodyPart {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A file streamed from disk, whole.
    File(PathBuf),
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            RequestBody::File(p) => f.debug_tuple("File").field(p).finish(),
            RequestBody::Reader { length, .. } => {
                f.debug_struct("Reader").field("length", length).finish()
            }
            RequestBody::Parts(parts) => f.debug_tuple("Parts").field(parts).finish(),
            RequestBody::Piped(p) => p.fmt(f),
        }
    }
}

impl RequestBody {
    /// A body read from `reader`; see [`RequestBody::Reader`].
    pub fn reader(reader: impl Read + Send + 'static, length: Option<u64>) -> RequestBody {
        RequestBody::Reader {
            reader: Box::new(reader),
            length,
        }
    }

    /// Whether the body can be sent again (not a reader, nor piped).
    pub fn is_replayable(&self) -> bool {
        !matches!(self, RequestBody::Reader { .. } | RequestBody::Piped(_))
    }

    /// A copy to send again (`None` for a reader). Cheap: bytes are shared.
    pub(crate) fn replay(&self) -> Option<RequestBody> {
        match self {
            RequestBody::Empty => Some(RequestBody::Empty),
            RequestBody::Bytes(b) => Some(RequestBody::Bytes(b.clone())),
            RequestBody::File(p) => Some(RequestBody::File(p.clone())),
            RequestBody::Parts(parts) => Some(RequestBody::Parts(parts.clone())),
            RequestBody::Reader { .. } | RequestBody::Piped(_) => None,
        }
    }

    /// Open the body for sending: the source and its length (`None`: chunked).
    ///
    /// # Errors
    /// When a file cannot be opened or sized.
    pub(crate) fn open(self) -> io::Result<BodySource> {
        Ok(match self {
            RequestBody::Empty => BodySource::Memory(Bytes::new()),
            RequestBody::Bytes(b) => BodySource::Memory(b),
            RequestBody::File(path) => {
                let file = File::open(&path)?;
                let len = file.metadata()?.len();
                BodySource::Read {
                    reader: Box::new(file),
                    length: Some(len),
                    buf: Vec::new(),
                }
            }
            RequestBody::Reader { reader, length } => BodySource::Read {
                reader,
                length,
                buf: Vec::new(),
            },
            RequestBody::Parts(parts) => {
                let mut length = 0u64;
                let mut sources = VecDeque::with_capacity(parts.len());
                for part in parts {
                    let source = match part {
                        BodyPart::Bytes(b) => RequestBody::Bytes(b),
                        BodyPart::File(path) => RequestBody::File(path),
                    }
                    .open()?;
                    length += source.length().unwrap_or(0);
                    sources.push_back(source);
                }
                BodySource::Parts { sources, length }
            }
            RequestBody::Piped(p) => BodySource::Piped(p.shared),
        })
    }

    /// Check that every file of the body can be opened (done before a
    /// request starts, so a missing file is refused at once).
    ///
    /// # Errors
    /// The first file that cannot be opened.
    pub(crate) fn check_files(&self) -> io::Result<()> {
        match self {
            RequestBody::File(path) => File::open(path).map(drop),
            RequestBody::Parts(parts) => parts.iter().try_for_each(|p| match p {
                BodyPart::File(path) => File::open(path).map(drop),
                BodyPart::Bytes(_) => Ok(()),
            }),
            _ => Ok(()),
        }
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> RequestBody {
        RequestBody::Bytes(b)
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(b: Vec<u8>) -> RequestBody {
        RequestBody::Bytes(Bytes::from(b))
    }
}

impl From<String> for RequestBody {
    fn from(s: String) -> RequestBody {
        RequestBody::Bytes(Bytes::from(s))
    }
}

impl From<&'static [u8]> for RequestBody {
    fn from(b: &'static [u8]) -> RequestBody {
        RequestBody::Bytes(Bytes::from_static(b))
    }
}

impl From<&'static str> for RequestBody {
    fn from(s: &'static str) -> RequestBody {
        RequestBody::Bytes(Bytes::from_static(s.as_bytes()))
    }
}

/// An opened body, handed out piece by piece.
pub(crate) enum BodySource {
    /// The bytes still to send.
    Memory(Bytes),
    /// A file or reader, read through a reused buffer.
    Read {
        reader: Box<dyn Read + Send>,
        length: Option<u64>,
        buf: Vec<u8>,
    },
    /// Pieces sent one after the other (memory shared, files read).
    Parts {
        sources: VecDeque<BodySource>,
        length: u64,
    },
    /// A pipe from a download in the same pool.
    Piped(Arc<Mutex<PipeState>>),
}

impl fmt::Debug for BodySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodySource::Memory(b) => write!(f, "Memory({} bytes left)", b.len()),
            BodySource::Read { length, .. } => {
                f.debug_struct("Read").field("length", length).finish()
            }
            BodySource::Parts { sources, length } => f
                .debug_struct("Parts")
                .field("left", &sources.len())
                .field("length", length)
                .finish(),
            BodySource::Piped(_) => f.write_str("Piped"),
        }
    }
}

impl BodySource {
    /// The whole body's length, `None` when unknown (sent chunked).
    pub(crate) fn length(&self) -> Option<u64> {
        match self {
            BodySource::Memory(b) => Some(b.len() as u64),
            BodySource::Read { length, .. } => *length,
            BodySource::Parts { length, .. } => Some(*length),
            BodySource::Piped(_) => None,
        }
    }

    /// Whether [`next_piece`](Self::next_piece) has something now: always,
    /// but for a pipe whose download has nothing new yet.
    pub(crate) fn is_ready(&self) -> bool {
        match self {
            BodySource::Piped(shared) => {
                let state = lock(shared);
                state.len > 0 || state.end != PipeEnd::Open
            }
            _ => true,
        }
    }

    /// The next piece, at most `max` bytes; an empty piece at the end.
    /// Bytes in memory (and a pipe's pieces) are not copied (a shared
    /// slice).
    ///
    /// # Errors
    /// The reader's error; for a pipe, `WouldBlock` when nothing is there
    /// yet ([`is_ready`](Self::is_ready) says so first) and `BrokenPipe`
    /// when its download failed.
    pub(crate) fn next_piece(&mut self, max: usize) -> io::Result<Bytes> {
        match self {
            BodySource::Memory(b) => {
                let n = b.len().min(max);
                Ok(b.split_to(n))
            }
            BodySource::Read { reader, buf, .. } => {
                buf.resize(max, 0);
                loop {
                    match reader.read(buf) {
                        Ok(n) => return Ok(Bytes::copy_from_slice(&buf[..n])),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            BodySource::Parts { sources, .. } => {
                while let Some(front) = sources.front_mut() {
                    let piece = front.next_piece(max)?;
                    if !piece.is_empty() {
                        return Ok(piece);
                    }
                    sources.pop_front();
                }
                Ok(Bytes::new())
            }
            BodySource::Piped(shared) => {
                let mut state = lock(shared);
                if let Some(front) = state.pieces.front_mut() {
                    let piece = if front.len() <= max {
                        state.pieces.pop_front().unwrap_or_default()
                    } else {
                        front.split_to(max)
                    };
                    state.len -= piece.len();
                    return Ok(piece);
                }
                match state.end {
                    PipeEnd::Open => Err(io::ErrorKind::WouldBlock.into()),
                    PipeEnd::Done => Ok(Bytes::new()),
                    PipeEnd::Failed => Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the piped download failed",
                    )),
                }
            }
        }
    }
}
