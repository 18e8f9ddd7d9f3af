//! Response heads.

use crate::fields::Fields;
use bytes::Bytes;

/// The HTTP version of a response (RFC 9112 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the message body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageBodyLength {
    /// No body: a response to HEAD, a 1xx, 204 or 304, a 2xx to CONNECT or a
    /// 101 (then the connection is handed over; see
    /// [`Connection::take_remaining`](crate::Connection::take_remaining)).
    None,
    /// Exactly this many bytes (Content-Length).
    ContentLength(u64),
    /// The chunked transfer coding (RFC 9112 §7.1).
    Chunked,
    /// Everything until the connection closes (RFC 9112 §6.3 rules 4 and 8).
    CloseDelimited,
}

/// A parsed response head: status line and fields, shared zero-copy with the
/// receive buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub(crate) version: Version,
    pub(crate) status: u16,
    pub(crate) reason: (u32, u32),
    pub(crate) fields: Fields,
    pub(crate) body: MessageBodyLength,
}

impl ResponseHead {
    /// The status code, 100..=999.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The reason phrase as received (may be empty; may hold obs-text).
    pub fn reason(&self) -> &[u8] {
        &self.fields.raw()[self.reason.0 as usize..self.reason.1 as usize]
    }
    /// The reason phrase as UTF-8 (lossless when it is ASCII; `""` otherwise).
    pub fn reason_str(&self) -> &str {
        core::str::from_utf8(self.reason()).unwrap_or("")
    }
    /// The HTTP version of the status line.
    pub fn version(&self) -> Version {
        self.version
    }
    /// The header fields in wire order, duplicates kept.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }
    /// The header fields, taken out of the head (no copy).
    pub fn into_fields(self) -> Fields {
        self.fields
    }
    /// How the body that follows is delimited.
    pub fn body_length(&self) -> MessageBodyLength {
        self.body
    }
    /// Whether this is an interim (1xx) response.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }
    /// The head exactly as received, status line through the empty line
    /// (after obs-fold unfolding, when that leniency is on).
    pub fn raw(&self) -> &Bytes {
        self.fields.raw()
    }
}

impl core::fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponseHead")
            .field("version", &self.version)
            .field("status", &self.status)
            .field(
                "reason",
                &alloc::string::String::from_utf8_lossy(self.reason()),
            )
            .field("fields", &self.fields)
            .field("body", &self.body)
            .finish()
    }
}
