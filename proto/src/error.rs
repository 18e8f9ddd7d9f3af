//! The one error type of the protocol core.

use core::fmt;

/// Defines [`Error`] from one list of variants, each tagged with who broke
/// the rule, and derives from that list what must agree with it: [`Error::kind`]
/// (the variant's name), [`Error::offset`] (every `peer` variant has an
/// `offset` field, first) and [`Error::is_caller_error`].
///
/// * `peer`: the peer's input broke a rule; `offset` says where. Fatal.
/// * `caller`: the caller asked for something invalid; nothing was queued and
///   the connection is still usable.
/// * `closed`: the connection can no longer carry a request. Fatal.
macro_rules! errors {
    (
        $(#[$meta:meta])*
        pub enum $Error:ident {
            $(
                $(#[$vmeta:meta])*
                $who:ident $name:ident $({
                    $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
                })?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $Error {
            $(
                $(#[$vmeta])*
                $name $({ $( $(#[$fmeta])* $field : $ty ),* })?
            ),*
        }

        impl $Error {
            /// A stable name for the error kind: the variant's name, e.g.
            /// `"InvalidChunkSize"`, for logs and tools.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( $Error::$name { .. } => stringify!($name), )*
                }
            }

            /// The offset in the connection's input where the error was found,
            /// for errors in the peer's input; `None` for the others.
            pub fn offset(&self) -> Option<u64> {
                match self {
                    $( $Error::$name { .. } => errors!(@offset $who, self, $Error::$name), )*
                }
            }

            /// Whether this is a caller error: nothing was queued and the
            /// connection can still be used.
            pub fn is_caller_error(&self) -> bool {
                match self {
                    $( $Error::$name { .. } => errors!(@caller $who), )*
                }
            }
        }
    };
    (@offset peer, $e:expr, $($path:ident)::+) => {
        match $e {
            $($path)::+ { offset, .. } => Some(*offset),
            _ => None,
        }
    };
    (@offset $other:ident, $e:expr, $($path:ident)::+) => { None };
    (@caller caller) => { true };
    (@caller peer) => { false };
    (@caller closed) => { false };
}

errors! {
/// Everything that can go wrong on an HTTP/1.1 connection, named after the rule
/// that was broken.
///
/// Errors found in the peer's input carry `offset`: the position of the
/// offending byte counted from the first byte the connection ever received
/// (so it is stable however the input was split into reads). Errors in what
/// the caller asked to send (`InvalidMethod`, `InvalidRequestTarget`, …) are
/// raised before any byte is queued and leave the connection usable; every
/// other error is fatal: the connection is dead and returns the same error from
/// every later call that needs input or output. [`is_caller_error`](Self::is_caller_error),
/// [`is_peer_error`](Self::is_peer_error) and [`offset`](Self::offset) tell
/// them apart; [`kind`](Self::kind) names the variant.
///
/// What to do after an error: a caller error leaves everything as it was
/// (fix the call and retry). Any other error ends the connection: close the
/// socket; input handed in later is ignored, and the events handed out before
/// stay valid (a response that ended with [`Event::End`](crate::Event::End)
/// before the error was complete).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ----- response head (RFC 9112 §2–§5) -----
    /// The response head (status line, field lines and the empty line) is
    /// longer than [`Config::max_head_bytes`](crate::Config::max_head_bytes).
    /// Enforced on the whole head however the bytes arrive (RFC 9112 §2.3
    /// leaves the limit to the recipient).
    peer HeadTooLarge {
        /// Offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// The response head has more field lines than
    /// [`Config::max_fields`](crate::Config::max_fields).
    peer TooManyFields {
        /// Offset of the start of the head.
        offset: u64,
        /// The limit in field lines.
        limit: usize,
    },
    /// The status line does not match `HTTP-version SP status-code SP
    /// [reason-phrase]` (RFC 9112 §4).
    peer InvalidStatusLine {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The HTTP-version is not `HTTP/1.0` or `HTTP/1.1` (RFC 9112 §2.3).
    peer InvalidVersion {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The status-code is not exactly three digits in 100..=999 (RFC 9112 §4,
    /// RFC 9110 §15).
    peer InvalidStatusCode {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// A field name is not a token (RFC 9110 §5.1).
    peer InvalidFieldName {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// Whitespace between a field name and its colon (RFC 9112 §5.1: a
    /// recipient MUST reject it).
    peer WhitespaceBeforeColon {
        /// Offset of the whitespace.
        offset: u64,
    },
    /// A field value contains a control character other than HTAB, or a NUL,
    /// CR or LF (RFC 9110 §5.5).
    peer InvalidFieldValue {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// A field line folded onto the next line (obs-fold, RFC 9112 §5.2),
    /// rejected unless [`Leniency::obs_fold`](crate::Leniency::obs_fold).
    peer ObsFold {
        /// Offset of the whitespace that starts the continuation line.
        offset: u64,
    },
    /// A line of the head or of the trailer section ends in a bare LF (RFC 9112
    /// §2.2), rejected unless [`Leniency::bare_lf`](crate::Leniency::bare_lf).
    peer BareLineFeed {
        /// Offset of the LF.
        offset: u64,
    },
    /// A CR that is not followed by LF (RFC 9112 §2.2: a bare CR MUST be
    /// treated as invalid or replaced; in framing it is always invalid).
    peer BareCarriageReturn {
        /// Offset of the byte after the CR.
        offset: u64,
    },

    // ----- message body length (RFC 9112 §6) -----
    /// A Content-Length value that is not `1*DIGIT`, or that overflows `u64`
    /// (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
    peer InvalidContentLength {
        /// Offset of the field line.
        offset: u64,
    },
    /// Several Content-Length values that differ, in one field or across
    /// several (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
    peer ConflictingContentLength {
        /// Offset of the field line with the second value.
        offset: u64,
    },
    /// Both Transfer-Encoding and Content-Length (RFC 9112 §6.3 rule 3, the
    /// request-smuggling guard of §11.2), rejected unless
    /// [`Leniency::content_length_with_transfer_encoding`](crate::Leniency::content_length_with_transfer_encoding).
    peer ContentLengthWithTransferEncoding {
        /// Offset of the start of the head.
        offset: u64,
    },
    /// A Transfer-Encoding list with an empty or non-token element, or chunked
    /// applied more than once (RFC 9112 §6.1, §7).
    peer InvalidTransferEncoding {
        /// Offset of the field line.
        offset: u64,
    },
    /// Transfer-Encoding in an HTTP/1.0 response: RFC 9112 §6.1 says the
    /// framing is faulty.
    peer TransferEncodingInHttp10 {
        /// Offset of the field line.
        offset: u64,
    },

    // ----- chunked transfer coding (RFC 9112 §7.1) -----
    /// A chunk-size that is not `1*HEXDIG` (no sign, no leading whitespace,
    /// whitespace only before a chunk extension).
    peer InvalidChunkSize {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// A chunk-size with more hex digits than fit in a `u64` (more than 16).
    peer ChunkSizeOverflow {
        /// Offset of the digit that does not fit.
        offset: u64,
    },
    /// A chunk extension that does not match `*( BWS ";" BWS chunk-ext-name [
    /// BWS "=" BWS chunk-ext-val ] )` (RFC 9112 §7.1.1).
    peer InvalidChunkExtension {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// Chunk extensions of one message total more than
    /// [`Config::max_chunk_extension_bytes`](crate::Config::max_chunk_extension_bytes).
    peer ChunkExtensionTooLarge {
        /// Offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// A chunk-size line or last-chunk not ended by exactly CRLF.
    peer InvalidChunkLineEnding {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The chunk-data is not followed by exactly CRLF (RFC 9112 §7.1).
    peer MissingChunkDataCrlf {
        /// Offset of the offending byte.
        offset: u64,
    },
    /// The trailer section is longer than
    /// [`Config::max_trailer_bytes`](crate::Config::max_trailer_bytes)
    /// (RFC 9112 §7.1.2).
    peer TrailerTooLarge {
        /// Offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// The trailer section has more field lines than
    /// [`Config::max_trailer_fields`](crate::Config::max_trailer_fields).
    peer TooManyTrailerFields {
        /// Offset of the start of the trailer section.
        offset: u64,
        /// The limit in field lines.
        limit: usize,
    },
    /// A trailer field line that is not `field-name ":" OWS field-value OWS`
    /// (RFC 9112 §7.1.2, §5).
    peer InvalidTrailerField {
        /// Offset of the offending byte.
        offset: u64,
    },

    // ----- limits -----
    /// The message body is longer than
    /// [`Config::body_size_limit`](crate::Config::body_size_limit). For a
    /// Content-Length body this is raised right after the head (the head is
    /// handed out, then this error, before any body byte; offset: the body's
    /// start); for chunked bodies at the chunk-size that
    /// would pass the limit (offset: that chunk's data start); for
    /// close-delimited bodies at the first byte past it.
    peer BodyTooLarge {
        /// Offset of the first body byte past the limit (or of the body's
        /// start when the declared Content-Length is already too large).
        offset: u64,
        /// The limit in bytes.
        limit: u64,
    },

    // ----- end of input (RFC 9112 §8) -----
    /// The connection closed before the response head was complete. `received`
    /// is 0 when the server closed without sending anything.
    peer IncompleteHead {
        /// Offset at which the input ended.
        offset: u64,
        /// Bytes of the head that had arrived.
        received: usize,
    },
    /// The connection closed before all Content-Length bytes arrived.
    peer IncompleteBody {
        /// Offset at which the input ended.
        offset: u64,
        /// The declared Content-Length.
        expected: u64,
        /// Body bytes received (all of them were handed out).
        received: u64,
    },
    /// The connection closed inside a chunked body, before the last-chunk and
    /// trailer section were complete.
    peer IncompleteChunkedBody {
        /// Offset at which the input ended.
        offset: u64,
        /// Body bytes received (all of them were handed out).
        received: u64,
    },
    /// The connection closed right after the last-chunk (`0\r\n`), before
    /// the trailer section's final CRLF (RFC 9112 §7.1); accepted with
    /// [`Leniency::last_chunk_then_eof`](crate::Leniency::last_chunk_then_eof).
    /// Every body byte arrived, but the message is not complete.
    peer LastChunkThenEof {
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
    peer UncleanClose {
        /// Offset at which the input ended.
        offset: u64,
    },
    /// Bytes arrived after the end of a response on a connection that cannot
    /// carry another one ([`Connection::close_reason`](crate::Connection::close_reason)
    /// is `ConnectionClose`, `Http10`, `RequestedClose`, …; not after a 101 or
    /// a tunnel, whose bytes are [`take_remaining`](crate::Connection::take_remaining)'s).
    /// The server was to close the connection after that response (RFC 9112
    /// §9.6, §9.3) and no other request was sent, so the bytes are a sign of a
    /// desynchronised or request-smuggling peer (llhttp's
    /// `HPE_CLOSED_CONNECTION`). Empty lines (CR, LF) are skipped first, as
    /// before a status line. The response before was complete and stays
    /// valid: it was delivered with [`Event::End`](crate::Event::End) first.
    peer DataAfterClose {
        /// Offset of the first stray byte.
        offset: u64,
    },
    /// The connection was closed by the peer; no further request can be sent.
    closed ClosedByPeer,
    /// Bytes arrived while no request was outstanding (past the end of the
    /// last response, or on an idle connection): they answer no request, and
    /// would be taken for the answer to the next one (RFC 9112 §9.3.2:
    /// responses answer requests one for one, in order), so no request can be
    /// sent on this connection. See
    /// [`CloseReason::UnsolicitedData`](crate::CloseReason::UnsolicitedData).
    closed UnsolicitedData,

    // ----- caller errors: nothing is queued, the connection stays usable -----
    /// The method is not a token (RFC 9110 §9.1).
    caller InvalidMethod,
    /// The request-target has a byte outside VCHAR, is empty, or its form does
    /// not fit the method (RFC 9112 §3.2: `*` only with OPTIONS,
    /// authority-form only and always with CONNECT).
    caller InvalidRequestTarget,
    /// The caller's field name at `index` is not a token (RFC 9110 §5.1).
    caller InvalidRequestFieldName {
        /// Index of the field in the caller's list.
        index: usize,
    },
    /// The caller's field value at `index` contains CR, LF, NUL or another
    /// control character except HTAB (RFC 9110 §5.5). Refused so that no
    /// header can be injected and no request split.
    caller InvalidRequestFieldValue {
        /// Index of the field in the caller's list.
        index: usize,
    },
    /// The request has no Host field (RFC 9112 §3.2: exactly one is
    /// required).
    caller MissingHost,
    /// The request has more than one Host field line (RFC 9112 §3.2: a
    /// server rejects such a request with 400).
    caller MultipleHost,
    /// The caller's Content-Length field at `index` is not `1*DIGIT` (or
    /// does not fit in 64 bits) (RFC 9110 §8.6).
    caller InvalidRequestContentLength {
        /// Index of the field in the caller's list.
        index: usize,
    },
    /// A second Content-Length field, at `index` (RFC 9110 §8.6: a sender
    /// sends one; RFC 9112 §6.3 makes differing ones unrecoverable).
    caller DuplicateRequestContentLength {
        /// Index of the second field in the caller's list.
        index: usize,
    },
    /// The caller's Transfer-Encoding field at `index` has a coding that is
    /// not a token, applies chunked more than once or not last, does not
    /// end in chunked, or is a second Transfer-Encoding field (RFC 9112
    /// §6.1: a request's codings MUST end in chunked, applied once).
    caller InvalidRequestTransferEncoding {
        /// Index of the field in the caller's list.
        index: usize,
    },
    /// The request has both Content-Length and Transfer-Encoding (RFC 9112
    /// §6.2: a sender MUST NOT send Content-Length with Transfer-Encoding).
    caller RequestContentLengthWithTransferEncoding,
    /// A driver that knows the body's length up front found the caller's
    /// Content-Length different from it (the pollhttp client checks this
    /// before anything is sent; RFC 9110 §8.6).
    caller RequestContentLengthMismatch {
        /// The Content-Length given.
        declared: u64,
        /// The body's length in bytes.
        length: u64,
    },
    /// `send_body` with more bytes than the request's Content-Length has left.
    caller RequestBodyTooLong {
        /// Bytes the Content-Length still allowed.
        remaining: u64,
    },
    /// `finish` before all Content-Length bytes were sent.
    caller RequestBodyTooShort {
        /// Bytes still owed.
        remaining: u64,
    },
    /// A call that does not fit the connection's state, e.g. `send_request`
    /// while a response is outstanding, or `send_body` for a request without a
    /// body. `expected` names what the connection was ready for.
    caller InvalidState {
        /// What the connection can do now.
        expected: &'static str,
    },
}
}

impl Error {
    /// Whether the peer's input broke a rule (the error has an
    /// [`offset`](Self::offset)); the connection is dead.
    pub fn is_peer_error(&self) -> bool {
        self.offset().is_some()
    }

    /// The index of the caller's field an error is about (a name, a value,
    /// a framing field), `None` for the others.
    pub fn field_index(&self) -> Option<usize> {
        use Error::*;
        match self {
            InvalidRequestFieldName { index }
            | InvalidRequestFieldValue { index }
            | InvalidRequestContentLength { index }
            | DuplicateRequestContentLength { index }
            | InvalidRequestTransferEncoding { index } => Some(*index),
            _ => None,
        }
    }

    /// The same error with its field index passed through `f` (a driver
    /// that added fields of its own maps indexes back to its caller's
    /// list); errors without one are returned as they are.
    #[must_use]
    pub fn map_field_index(self, f: impl FnOnce(usize) -> usize) -> Error {
        use Error::*;
        match self {
            InvalidRequestFieldName { index } => InvalidRequestFieldName { index: f(index) },
            InvalidRequestFieldValue { index } => InvalidRequestFieldValue { index: f(index) },
            InvalidRequestContentLength { index } => {
                InvalidRequestContentLength { index: f(index) }
            }
            DuplicateRequestContentLength { index } => {
                DuplicateRequestContentLength { index: f(index) }
            }
            InvalidRequestTransferEncoding { index } => {
                InvalidRequestTransferEncoding { index: f(index) }
            }
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            HeadTooLarge { limit, .. } => write!(f, "response head larger than {limit} bytes"),
            TooManyFields { limit, .. } => write!(f, "response head has more than {limit} field lines"),
            InvalidStatusLine { .. } => f.write_str("malformed status line (RFC 9112 §4)"),
            InvalidVersion { .. } => f.write_str("HTTP-version is not HTTP/1.0 or HTTP/1.1 (RFC 9112 §2.3)"),
            InvalidStatusCode { .. } => f.write_str("status-code is not three digits in 100..=999 (RFC 9112 §4)"),
            InvalidFieldName { .. } => f.write_str("field name is not a token (RFC 9110 §5.1)"),
            WhitespaceBeforeColon { .. } => f.write_str("whitespace between field name and colon (RFC 9112 §5.1)"),
            InvalidFieldValue { .. } => f.write_str("control character in field value (RFC 9110 §5.5)"),
            ObsFold { .. } => f.write_str("obsolete line folding in a field (RFC 9112 §5.2)"),
            BareLineFeed { .. } => f.write_str("line ended by a bare LF, not CRLF (RFC 9112 §2.2)"),
            BareCarriageReturn { .. } => f.write_str("CR not followed by LF (RFC 9112 §2.2)"),
            InvalidContentLength { .. } => f.write_str("Content-Length is not 1*DIGIT or overflows (RFC 9110 §8.6)"),
            ConflictingContentLength { .. } => f.write_str("differing Content-Length values (RFC 9112 §6.3)"),
            ContentLengthWithTransferEncoding { .. } => {
                f.write_str("both Transfer-Encoding and Content-Length (RFC 9112 §6.3 rule 3)")
            }
            InvalidTransferEncoding { .. } => f.write_str("malformed Transfer-Encoding (RFC 9112 §6.1)"),
            TransferEncodingInHttp10 { .. } => f.write_str("Transfer-Encoding in an HTTP/1.0 response (RFC 9112 §6.1)"),
            InvalidChunkSize { .. } => f.write_str("chunk-size is not 1*HEXDIG (RFC 9112 §7.1)"),
            ChunkSizeOverflow { .. } => f.write_str("chunk-size does not fit in 64 bits (RFC 9112 §7.1)"),
            InvalidChunkExtension { .. } => f.write_str("malformed chunk extension (RFC 9112 §7.1.1)"),
            ChunkExtensionTooLarge { limit, .. } => write!(f, "chunk extensions longer than {limit} bytes"),
            InvalidChunkLineEnding { .. } => f.write_str("chunk line not ended by CRLF (RFC 9112 §7.1)"),
            MissingChunkDataCrlf { .. } => f.write_str("chunk-data not followed by CRLF (RFC 9112 §7.1)"),
            TrailerTooLarge { limit, .. } => write!(f, "trailer section larger than {limit} bytes"),
            TooManyTrailerFields { limit, .. } => write!(f, "trailer section has more than {limit} field lines"),
            InvalidTrailerField { .. } => f.write_str("malformed trailer field line (RFC 9112 §7.1.2)"),
            BodyTooLarge { limit, .. } => write!(f, "message body larger than the limit of {limit} bytes"),
            IncompleteHead { received: 0, .. } => f.write_str("connection closed before any response byte"),
            IncompleteHead { received, .. } => {
                write!(f, "connection closed inside the response head after {received} bytes")
            }
            IncompleteBody { expected, received, .. } => write!(
                f,
                "connection closed after {received} of {expected} Content-Length body bytes"
            ),
            LastChunkThenEof { received, .. } => write!(
                f,
                "connection closed after the last-chunk ({received} body bytes), before the \
                 final CRLF of the chunked body (RFC 9112 §7.1)"
            ),
            IncompleteChunkedBody { received, .. } => write!(
                f,
                "connection closed inside a chunked body after {received} body bytes, before the last-chunk"
            ),
            UncleanClose { .. } => {
                f.write_str("connection ended without a clean close inside a close-delimited body, which may be truncated (RFC 9112 §9.8)")
            }
            DataAfterClose { .. } => {
                f.write_str("data after the end of a response whose connection was to close (RFC 9112 §9.6)")
            }
            ClosedByPeer => f.write_str("connection closed by the peer"),
            UnsolicitedData => f.write_str(
                "bytes arrived that answer no request, so the connection cannot carry another (RFC 9112 §9.3.2)",
            ),
            InvalidMethod => f.write_str("method is not a token (RFC 9110 §9.1)"),
            InvalidRequestTarget => f.write_str("invalid request-target for this method (RFC 9112 §3.2)"),
            InvalidRequestFieldName { index } => write!(f, "request field {index}: name is not a token"),
            InvalidRequestFieldValue { index } => {
                write!(f, "request field {index}: value contains CR, LF, NUL or another control character")
            }
            MissingHost => f.write_str("request has no Host field (RFC 9112 §3.2)"),
            MultipleHost => f.write_str("request has more than one Host field (RFC 9112 §3.2)"),
            InvalidRequestContentLength { index } => write!(
                f,
                "request field {index}: Content-Length is not a decimal number (RFC 9110 §8.6)"
            ),
            DuplicateRequestContentLength { index } => write!(
                f,
                "request field {index}: a second Content-Length (RFC 9110 §8.6)"
            ),
            InvalidRequestTransferEncoding { index } => write!(
                f,
                "request field {index}: Transfer-Encoding must end in chunked, applied once, in one field (RFC 9112 §6.1)"
            ),
            RequestContentLengthWithTransferEncoding => f.write_str(
                "request has both Content-Length and Transfer-Encoding (RFC 9112 §6.2)",
            ),
            RequestContentLengthMismatch { declared, length } => write!(
                f,
                "request Content-Length {declared} is not the body's length {length} (RFC 9110 §8.6)"
            ),
            RequestBodyTooLong { remaining } => {
                write!(f, "request body longer than its Content-Length ({remaining} bytes left)")
            }
            RequestBodyTooShort { remaining } => {
                write!(f, "request body shorter than its Content-Length ({remaining} bytes owed)")
            }
            InvalidState { expected } => write!(f, "call out of order: the connection expects {expected}"),
        }?;
        match self.offset() {
            Some(offset) => write!(f, " at byte {offset}"),
            None => Ok(()),
        }
    }
}

impl core::error::Error for Error {}
