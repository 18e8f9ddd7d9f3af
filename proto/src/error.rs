//! The one error type of the protocol core.

use std::fmt;

/// Everything that can go wrong on an HTTP/1.1 connection, named after the rule
/// that was broken.
///
/// Errors found in the peer's input carry `offset`: the position of the
/// offending byte counted from the first byte the connection ever received
/// (so it is stable however the input was split into reads). Errors in what
/// the caller asked to send (`InvalidMethod`, `InvalidRequestTarget`, …) are
/// raised before any byte is queued and leave the connection usable; every
/// other error is fatal: the connection is dead and returns the same error from
/// every later call that needs input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ----- response head (RFC 9112 §2–§5) -----
    /// The response head (status line, field lines and the empty line) is
    /// longer than [`Config::max_head_bytes`](crate::Config::max_head_bytes).
    /// Enforced on the whole head however the bytes arrive (RFC 9112 §2.3
    /// leaves the limit to the recipient).
    HeadTooLarge {
        /// Offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// The response head has more field lines than
    /// [`Config::max_fields`](crate::Config::max_fields).
    TooManyFields {
        /// Offset of the start of the head.
        offset: u64,
        /// The limit in field lines.
        limit: usize,
    },
    /// The status line does not match `HTTP-version SP status-code SP
    /// [reason-phrase]` (RFC 9112 §4).
    InvalidStatusLine {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The HTTP-version is not `HTTP/1.0` or `HTTP/1.1` (RFC 9112 §2.3).
    InvalidVersion {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The status-code is not exactly three digits in 100..=999 (RFC 9112 §4,
    /// RFC 9110 §15).
    InvalidStatusCode {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// A field name is not a token (RFC 9110 §5.1).
    InvalidFieldName {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// Whitespace between a field name and its colon (RFC 9112 §5.1: a
    /// recipient MUST reject it).
    WhitespaceBeforeColon {
        /// Offset of the whitespace.
        offset: u64,
    },
    /// A field value contains a control character other than HTAB, or a NUL,
    /// CR or LF (RFC 9110 §5.5).
    InvalidFieldValue {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// A field line folded onto the next line (obs-fold, RFC 9112 §5.2),
    /// rejected unless [`Leniency::obs_fold`](crate::Leniency::obs_fold).
    ObsFold {
        /// Offset of the whitespace that starts the continuation line.
        offset: u64,
    },
    /// A line of the head or of the trailer section ends in a bare LF (RFC 9112
    /// §2.2), rejected unless [`Leniency::bare_lf`](crate::Leniency::bare_lf).
    BareLineFeed {
        /// Offset of the LF.
        offset: u64,
    },
    /// A CR that is not followed by LF (RFC 9112 §2.2: a bare CR MUST be
    /// treated as invalid or replaced; in framing it is always invalid).
    BareCarriageReturn {
        /// Offset of the byte after the CR.
        offset: u64,
    },

    // ----- message body length (RFC 9112 §6) -----
    /// A Content-Length value that is not `1*DIGIT`, or that overflows `u64`
    /// (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
    InvalidContentLength {
        /// Offset of the field line.
        offset: u64,
    },
    /// Several Content-Length values that differ, in one field or across
    /// several (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
    ConflictingContentLength {
        /// Offset of the field line with the second value.
        offset: u64,
    },
    /// Both Transfer-Encoding and Content-Length (RFC 9112 §6.3 rule 3, the
    /// request-smuggling guard of §11.2), rejected unless
    /// [`Leniency::content_length_with_transfer_encoding`](crate::Leniency::content_length_with_transfer_encoding).
    ContentLengthWithTransferEncoding {
        /// Offset of the start of the head.
        offset: u64,
    },
    /// A Transfer-Encoding list with an empty or non-token element, or chunked
    /// applied more than once (RFC 9112 §6.1, §7).
    InvalidTransferEncoding {
        /// Offset of the field line.
        offset: u64,
    },
    /// Transfer-Encoding in an HTTP/1.0 response: RFC 9112 §6.1 says the
    /// framing is faulty.
    TransferEncodingInHttp10 {
        /// Offset of the field line.
        offset: u64,
    },

    // ----- chunked transfer coding (RFC 9112 §7.1) -----
    /// A chunk-size that is not `1*HEXDIG` (no sign, no leading whitespace,
    /// whitespace only before a chunk extension).
    InvalidChunkSize {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// A chunk-size with more hex digits than fit in a `u64` (more than 16).
    ChunkSizeOverflow {
        /// Offset of the digit that does not fit.
        offset: u64,
    },
    /// A chunk extension that does not match `*( BWS ";" BWS chunk-ext-name [
    /// BWS "=" BWS chunk-ext-val ] )` (RFC 9112 §7.1.1).
    InvalidChunkExtension {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// Chunk extensions of one message total more than
    /// [`Config::max_chunk_extension_bytes`](crate::Config::max_chunk_extension_bytes).
    ChunkExtensionTooLarge {
        /// Offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// A chunk-size line or last-chunk not ended by exactly CRLF.
    InvalidChunkLineEnding {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The chunk-data is not followed by exactly CRLF (RFC 9112 §7.1).
    MissingChunkDataCrlf {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The trailer section is longer than
    /// [`Config::max_trailer_bytes`](crate::Config::max_trailer_bytes)
    /// (RFC 9112 §7.1.2).
    TrailerTooLarge {
        /// Offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// The trailer section has more field lines than
    /// [`Config::max_trailer_fields`](crate::Config::max_trailer_fields).
    TooManyTrailerFields {
        /// Offset of the start of the trailer section.
        offset: u64,
        /// The limit in field lines.
        limit: usize,
    },
    /// A trailer field line that is not `field-name ":" OWS field-value OWS`
    /// (RFC 9112 §7.1.2, §5).
    InvalidTrailerField {
        /// Offset of the offending byte.
        offset: u64,
    },

    // ----- limits -----
    /// The message body is longer than
    /// [`Config::body_size_limit`](crate::Config::body_size_limit). For a
    /// Content-Length body this is raised at the head, before any body byte
    /// (offset: the body's start); for chunked bodies at the chunk-size that
    /// would pass the limit (offset: that chunk's data start); for
    /// close-delimited bodies at the first byte past it.
    BodyTooLarge {
        /// Offset of the first body byte past the limit (or of the body's
        /// start when the declared Content-Length is already too large).
        offset: u64,
        /// The limit in bytes.
        limit: u64,
    },

    // ----- end of input (RFC 9112 §8) -----
    /// The connection closed before the response head was complete. `received`
    /// is 0 when the server closed without sending anything.
    IncompleteHead {
        /// Offset at which the input ended.
        offset: u64,
        /// Bytes of the head that had arrived.
        received: usize,
    },
    /// The connection closed before all Content-Length bytes arrived.
    IncompleteBody {
        /// Offset at which the input ended.
        offset: u64,
        /// The declared Content-Length.
        expected: u64,
        /// Body bytes received (all of them were handed out).
        received: u64,
    },
    /// The connection closed inside a chunked body, before the last-chunk and
    /// trailer section were complete.
    IncompleteChunkedBody {
        /// Offset at which the input ended.
        offset: u64,
        /// Body bytes received (all of them were handed out).
        received: u64,
    },
    /// The input ended without proof that it was complete
    /// ([`Connection::receive_unclean_eof`](crate::Connection::receive_unclean_eof):
    /// a TLS connection closed without `close_notify`, a connection reset)
    /// inside a close-delimited body. Such a body is complete only if the
    /// connection closed cleanly (RFC 9112 §8; §9.8: "a response that has
    /// neither chunked transfer coding nor Content-Length is complete only if
    /// a valid closure alert has been received"), so it may be truncated.
    /// The body bytes handed out before stay handed out; no [`Event::End`](crate::Event::End)
    /// follows.
    UncleanClose {
        /// Offset at which the input ended.
        offset: u64,
    },
    /// The connection was closed by the peer; no further request can be sent.
    ClosedByPeer,

    // ----- caller errors: nothing is queued, the connection stays usable -----
    /// The method is not a token (RFC 9110 §9.1).
    InvalidMethod,
    /// The request-target has a byte outside VCHAR, is empty, or its form does
    /// not fit the method (RFC 9112 §3.2: `*` only with OPTIONS,
    /// authority-form only and always with CONNECT).
    InvalidRequestTarget,
    /// The caller's field name at `index` is not a token (RFC 9110 §5.1).
    InvalidRequestFieldName {
        /// Index of the field in the caller's list.
        index: usize,
    },
    /// The caller's field value at `index` contains CR, LF, NUL or another
    /// control character except HTAB (RFC 9110 §5.5). Refused so that no
    /// header can be injected and no request split.
    InvalidRequestFieldValue {
        /// Index of the field in the caller's list.
        index: usize,
    },
    /// The request has no Host field, or more than one (RFC 9112 §3.2).
    MissingHost,
    /// The request's Content-Length is not `1*DIGIT`, is given twice, or comes
    /// with Transfer-Encoding; or its Transfer-Encoding does not end in
    /// chunked (RFC 9112 §6.1, §6.2).
    InvalidRequestFraming,
    /// `send_body` with more bytes than the request's Content-Length has left.
    RequestBodyTooLong {
        /// Bytes the Content-Length still allowed.
        remaining: u64,
    },
    /// `finish` before all Content-Length bytes were sent.
    RequestBodyTooShort {
        /// Bytes still owed.
        remaining: u64,
    },
    /// A call that does not fit the connection's state, e.g. `send_request`
    /// while a response is outstanding, or `send_body` for a request without a
    /// body. `expected` names what the connection was ready for.
    InvalidState {
        /// What the connection can do now.
        expected: &'static str,
    },
}

impl Error {
    /// The offset in the connection's input where the error was found, for
    /// errors in the peer's input; `None` for caller errors.
    pub fn offset(&self) -> Option<u64> {
        use Error::*;
        match *self {
            HeadTooLarge { offset, .. }
            | TooManyFields { offset, .. }
            | InvalidStatusLine { offset }
            | InvalidVersion { offset }
            | InvalidStatusCode { offset }
            | InvalidFieldName { offset }
            | WhitespaceBeforeColon { offset }
            | InvalidFieldValue { offset }
            | ObsFold { offset }
            | BareLineFeed { offset }
            | BareCarriageReturn { offset }
            | InvalidContentLength { offset }
            | ConflictingContentLength { offset }
            | ContentLengthWithTransferEncoding { offset }
            | InvalidTransferEncoding { offset }
            | TransferEncodingInHttp10 { offset }
            | InvalidChunkSize { offset }
            | ChunkSizeOverflow { offset }
            | InvalidChunkExtension { offset }
            | ChunkExtensionTooLarge { offset, .. }
            | InvalidChunkLineEnding { offset }
            | MissingChunkDataCrlf { offset }
            | TrailerTooLarge { offset, .. }
            | TooManyTrailerFields { offset, .. }
            | InvalidTrailerField { offset }
            | BodyTooLarge { offset, .. }
            | IncompleteHead { offset, .. }
            | IncompleteBody { offset, .. }
            | IncompleteChunkedBody { offset, .. }
            | UncleanClose { offset } => Some(offset),
            ClosedByPeer
            | InvalidMethod
            | InvalidRequestTarget
            | InvalidRequestFieldName { .. }
            | InvalidRequestFieldValue { .. }
            | MissingHost
            | InvalidRequestFraming
            | RequestBodyTooLong { .. }
            | RequestBodyTooShort { .. }
            | InvalidState { .. } => None,
        }
    }

    /// Whether this is a caller error: nothing was queued and the connection
    /// can still be used.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidMethod
                | Error::InvalidRequestTarget
                | Error::InvalidRequestFieldName { .. }
                | Error::InvalidRequestFieldValue { .. }
                | Error::MissingHost
                | Error::InvalidRequestFraming
                | Error::RequestBodyTooLong { .. }
                | Error::RequestBodyTooShort { .. }
                | Error::InvalidState { .. }
        )
    }

    /// A stable name for the error kind, e.g. `"InvalidChunkSize"` (the variant
    /// name), for logs and tools.
    pub fn kind(&self) -> &'static str {
        use Error::*;
        match self {
            HeadTooLarge { .. } => "HeadTooLarge",
            TooManyFields { .. } => "TooManyFields",
            InvalidStatusLine { .. } => "InvalidStatusLine",
            InvalidVersion { .. } => "InvalidVersion",
            InvalidStatusCode { .. } => "InvalidStatusCode",
            InvalidFieldName { .. } => "InvalidFieldName",
            WhitespaceBeforeColon { .. } => "WhitespaceBeforeColon",
            InvalidFieldValue { .. } => "InvalidFieldValue",
            ObsFold { .. } => "ObsFold",
            BareLineFeed { .. } => "BareLineFeed",
            BareCarriageReturn { .. } => "BareCarriageReturn",
            InvalidContentLength { .. } => "InvalidContentLength",
            ConflictingContentLength { .. } => "ConflictingContentLength",
            ContentLengthWithTransferEncoding { .. } => "ContentLengthWithTransferEncoding",
            InvalidTransferEncoding { .. } => "InvalidTransferEncoding",
            TransferEncodingInHttp10 { .. } => "TransferEncodingInHttp10",
            InvalidChunkSize { .. } => "InvalidChunkSize",
            ChunkSizeOverflow { .. } => "ChunkSizeOverflow",
            InvalidChunkExtension { .. } => "InvalidChunkExtension",
            ChunkExtensionTooLarge { .. } => "ChunkExtensionTooLarge",
            InvalidChunkLineEnding { .. } => "InvalidChunkLineEnding",
            MissingChunkDataCrlf { .. } => "MissingChunkDataCrlf",
            TrailerTooLarge { .. } => "TrailerTooLarge",
            TooManyTrailerFields { .. } => "TooManyTrailerFields",
            InvalidTrailerField { .. } => "InvalidTrailerField",
            BodyTooLarge { .. } => "BodyTooLarge",
            IncompleteHead { .. } => "IncompleteHead",
            IncompleteBody { .. } => "IncompleteBody",
            IncompleteChunkedBody { .. } => "IncompleteChunkedBody",
            UncleanClose { .. } => "UncleanClose",
            ClosedByPeer => "ClosedByPeer",
            InvalidMethod => "InvalidMethod",
            InvalidRequestTarget => "InvalidRequestTarget",
            InvalidRequestFieldName { .. } => "InvalidRequestFieldName",
            InvalidRequestFieldValue { .. } => "InvalidRequestFieldValue",
            MissingHost => "MissingHost",
            InvalidRequestFraming => "InvalidRequestFraming",
            RequestBodyTooLong { .. } => "RequestBodyTooLong",
            RequestBodyTooShort { .. } => "RequestBodyTooShort",
            InvalidState { .. } => "InvalidState",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        let what = match self {
            HeadTooLarge { limit, .. } => format!("response head larger than {limit} bytes"),
            TooManyFields { limit, .. } => format!("response head has more than {limit} field lines"),
            InvalidStatusLine { .. } => "malformed status line (RFC 9112 §4)".into(),
            InvalidVersion { .. } => "HTTP-version is not HTTP/1.0 or HTTP/1.1 (RFC 9112 §2.3)".into(),
            InvalidStatusCode { .. } => "status-code is not three digits in 100..=999 (RFC 9112 §4)".into(),
            InvalidFieldName { .. } => "field name is not a token (RFC 9110 §5.1)".into(),
            WhitespaceBeforeColon { .. } => "whitespace between field name and colon (RFC 9112 §5.1)".into(),
            InvalidFieldValue { .. } => "control character in field value (RFC 9110 §5.5)".into(),
            ObsFold { .. } => "obsolete line folding in a field (RFC 9112 §5.2)".into(),
            BareLineFeed { .. } => "line ended by a bare LF, not CRLF (RFC 9112 §2.2)".into(),
            BareCarriageReturn { .. } => "CR not followed by LF (RFC 9112 §2.2)".into(),
            InvalidContentLength { .. } => "Content-Length is not 1*DIGIT or overflows (RFC 9110 §8.6)".into(),
            ConflictingContentLength { .. } => "differing Content-Length values (RFC 9112 §6.3)".into(),
            ContentLengthWithTransferEncoding { .. } => {
                "both Transfer-Encoding and Content-Length (RFC 9112 §6.3 rule 3)".into()
            }
            InvalidTransferEncoding { .. } => "malformed Transfer-Encoding (RFC 9112 §6.1)".into(),
            TransferEncodingInHttp10 { .. } => "Transfer-Encoding in an HTTP/1.0 response (RFC 9112 §6.1)".into(),
            InvalidChunkSize { .. } => "chunk-size is not 1*HEXDIG (RFC 9112 §7.1)".into(),
            ChunkSizeOverflow { .. } => "chunk-size does not fit in 64 bits (RFC 9112 §7.1)".into(),
            InvalidChunkExtension { .. } => "malformed chunk extension (RFC 9112 §7.1.1)".into(),
            ChunkExtensionTooLarge { limit, .. } => format!("chunk extensions longer than {limit} bytes"),
            InvalidChunkLineEnding { .. } => "chunk line not ended by CRLF (RFC 9112 §7.1)".into(),
            MissingChunkDataCrlf { .. } => "chunk-data not followed by CRLF (RFC 9112 §7.1)".into(),
            TrailerTooLarge { limit, .. } => format!("trailer section larger than {limit} bytes"),
            TooManyTrailerFields { limit, .. } => format!("trailer section has more than {limit} field lines"),
            InvalidTrailerField { .. } => "malformed trailer field line (RFC 9112 §7.1.2)".into(),
            BodyTooLarge { limit, .. } => format!("message body larger than the limit of {limit} bytes"),
            IncompleteHead { received: 0, .. } => "connection closed before any response byte".into(),
            IncompleteHead { received, .. } => {
                format!("connection closed inside the response head after {received} bytes")
            }
            IncompleteBody { expected, received, .. } => format!(
                "connection closed after {received} of {expected} Content-Length body bytes"
            ),
            IncompleteChunkedBody { received, .. } => format!(
                "connection closed inside a chunked body after {received} body bytes, before the last-chunk"
            ),
            UncleanClose { .. } => {
                "connection ended without a clean close inside a close-delimited body, which may be truncated (RFC 9112 §9.8)".into()
            }
            ClosedByPeer => "connection closed by the peer".into(),
            InvalidMethod => "method is not a token (RFC 9110 §9.1)".into(),
            InvalidRequestTarget => "invalid request-target for this method (RFC 9112 §3.2)".into(),
            InvalidRequestFieldName { index } => format!("request field {index}: name is not a token"),
            InvalidRequestFieldValue { index } => {
                format!("request field {index}: value contains CR, LF, NUL or another control character")
            }
            MissingHost => "request needs exactly one Host field (RFC 9112 §3.2)".into(),
            InvalidRequestFraming => "invalid request Content-Length or Transfer-Encoding".into(),
            RequestBodyTooLong { remaining } => {
                format!("request body longer than its Content-Length ({remaining} bytes left)")
            }
            RequestBodyTooShort { remaining } => {
                format!("request body shorter than its Content-Length ({remaining} bytes owed)")
            }
            InvalidState { expected } => format!("call out of order: the connection expects {expected}"),
        };
        match self.offset() {
            Some(offset) => write!(f, "{what} at byte {offset}"),
            None => f.write_str(&what),
        }
    }
}

impl std::error::Error for Error {}
