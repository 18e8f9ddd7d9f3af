//! Error codes (`PH_OK`, `PH_AGAIN`, `PH_ERR_*`), request results
//! (`PH_RESULT_*`, [`pollhttp::RequestResult`]'s values) and stages
//! (`PH_STAGE_*`, [`pollhttp::Status`]'s), as plain integer constants: the
//! same in C, C++, C# and any language with a C FFI.

use std::ffi::{c_char, CStr};

/// What every `ph_*` function returns: `PH_OK` (0), `PH_AGAIN` (nothing
/// ready yet, not a failure) or a `PH_ERR_*` code; `ph_strerror` names it.
pub type PhCode = i32;

pub(crate) type Code = PhCode;

/// Success.
pub const PH_OK: PhCode = 0;
/// Nothing is ready yet (no completion waiting, no body piece waiting, a
/// completion asked for while its request is still in flight): not a
/// failure; call `ph_pool_poll` (or wait) and ask again.
pub const PH_AGAIN: PhCode = 1;
/// A required pointer argument was NULL (nothing was done).
pub const PH_ERR_NULL: PhCode = 2;
/// A string argument is not valid UTF-8 (nothing was done).
pub const PH_ERR_UTF8: PhCode = 3;
/// An argument is out of its range (a zero limit, a zero-sized buffer, an
/// index past the end).
pub const PH_ERR_INVALID_ARGUMENT: PhCode = 4;
/// The URL does not parse, its scheme is neither `http` nor `https`, or its
/// host is invalid.
pub const PH_ERR_INVALID_URL: PhCode = 5;
/// The method or a header line is invalid (not a token, a CR, LF or NUL in
/// a value, no `:` in a header line, a Content-Length that does not match
/// the body).
pub const PH_ERR_INVALID_REQUEST: PhCode = 6;
/// No request with this id is in flight (never made, cancelled, completed),
/// or no completion with this id is waiting (never made, already freed).
pub const PH_ERR_UNKNOWN_ID: PhCode = 7;
/// The TLS settings cannot be used (a PEM without a certificate, a
/// malformed one, a server name that is not a name).
pub const PH_ERR_TLS: PhCode = 8;
/// The request body's file cannot be opened or sized.
pub const PH_ERR_BODY_FILE: PhCode = 9;
/// Two settings of the request cannot be used together (a streamed body
/// and a download file).
pub const PH_ERR_CONFLICTING_SETTINGS: PhCode = 10;
/// The operating system refused a resource (file descriptors, an epoll
/// instance, a thread).
pub const PH_ERR_SYSTEM: PhCode = 11;
/// A bug inside the library was caught at the boundary (a Rust panic never
/// crosses into C). The handle it happened on answers `PH_ERR_PANIC` from
/// then on; free it.
pub const PH_ERR_PANIC: PhCode = 12;
/// The header asked for is not in the completion.
pub const PH_ERR_NOT_FOUND: PhCode = 13;

/// Every code `ph_strerror` knows, with its text (kept in order: the index
/// is the code).
const MESSAGES: [&CStr; 14] = [
    c"success",
    c"nothing is ready yet (poll and ask again)",
    c"a required pointer argument was NULL",
    c"a string argument is not valid UTF-8",
    c"an argument is out of range",
    c"invalid URL (does not parse, not http or https, or an invalid host)",
    c"invalid method or header line",
    c"no request or completion with this id",
    c"invalid TLS settings",
    c"the request body's file cannot be opened or sized",
    c"settings that cannot be used together",
    c"the operating system refused a resource",
    c"internal error caught at the boundary (the handle is unusable: free it)",
    c"no such header in the response",
];

/// The text of `code`, a static string (never freed, never NULL).
pub(crate) fn message(code: PhCode) -> *const c_char {
    text(code).as_ptr()
}

/// The text of `code`.
pub(crate) fn text(code: PhCode) -> &'static CStr {
    usize::try_from(code)
        .ok()
        .and_then(|i| MESSAGES.get(i))
        .copied()
        .unwrap_or(c"unknown error code")
}

/// The code of a refused request.
pub(crate) fn code_of(error: &pollhttp::RequestError) -> PhCode {
    use pollhttp::RequestError as E;
    match error {
        E::InvalidUrl(_) | E::UnsupportedScheme(_) | E::InvalidHost => PH_ERR_INVALID_URL,
        E::Invalid(_) => PH_ERR_INVALID_REQUEST,
        E::Tls(_) => PH_ERR_TLS,
        E::Body(_) => PH_ERR_BODY_FILE,
        E::ConflictingSettings(..) => PH_ERR_CONFLICTING_SETTINGS,
        E::System(_) => PH_ERR_SYSTEM,
        _ => PH_ERR_INVALID_ARGUMENT,
    }
}

/// The request completed: see its status code (a 404 is a success here).
pub const PH_RESULT_SUCCESS: i32 = 0;
/// The body ended before its Content-Length or last chunk.
pub const PH_RESULT_CHUNKED_BODY_SIZE_MISMATCH: i32 = 1;
/// No connection could be made (refused, connect timeout, proxy refused).
pub const PH_RESULT_CANT_CONNECT: i32 = 2;
/// The host name could not be resolved.
pub const PH_RESULT_CANT_RESOLVE: i32 = 3;
/// The connection failed (I/O error, malformed response).
pub const PH_RESULT_CONNECTION_ERROR: i32 = 4;
/// The TLS handshake or the certificate verification failed.
pub const PH_RESULT_TLS_HANDSHAKE_ERROR: i32 = 5;
/// The server closed the connection without a response.
pub const PH_RESULT_NO_RESPONSE: i32 = 6;
/// The body is over `ph_request_set_body_size_limit`.
pub const PH_RESULT_BODY_SIZE_LIMIT_EXCEEDED: i32 = 7;
/// The body could not be decoded (gzip, deflate).
pub const PH_RESULT_BODY_DECOMPRESS_FAILED: i32 = 8;
/// The request failed for another reason (see `ph_completion_reason`).
pub const PH_RESULT_REQUEST_FAILED: i32 = 9;
/// The download file could not be created.
pub const PH_RESULT_DOWNLOAD_FILE_CANT_OPEN: i32 = 10;
/// The download file could not be written.
pub const PH_RESULT_DOWNLOAD_FILE_WRITE_ERROR: i32 = 11;
/// More redirects than `ph_request_set_redirects` allows.
pub const PH_RESULT_REDIRECT_LIMIT_REACHED: i32 = 12;
/// The total or idle timeout passed.
pub const PH_RESULT_TIMEOUT: i32 = 13;
/// The body does not match its digest (`Content-Digest` / `Repr-Digest`,
/// RFC 9530) or the expected SHA-256: nothing of it is handed out as good.
pub const PH_RESULT_INTEGRITY_FAILED: i32 = 14;

/// No connection (queued, or finished).
pub const PH_STAGE_DISCONNECTED: i32 = 0;
/// Resolving the host name.
pub const PH_STAGE_RESOLVING: i32 = 1;
/// The name could not be resolved.
pub const PH_STAGE_CANT_RESOLVE: i32 = 2;
/// Connecting (TCP, proxy tunnel, TLS handshake).
pub const PH_STAGE_CONNECTING: i32 = 3;
/// No address could be connected to.
pub const PH_STAGE_CANT_CONNECT: i32 = 4;
/// Connected, about to send.
pub const PH_STAGE_CONNECTED: i32 = 5;
/// Sending the request or waiting for the response head.
pub const PH_STAGE_REQUESTING: i32 = 6;
/// Receiving the response body.
pub const PH_STAGE_BODY: i32 = 7;
/// The connection failed.
pub const PH_STAGE_CONNECTION_ERROR: i32 = 8;
/// The TLS handshake failed.
pub const PH_STAGE_TLS_HANDSHAKE_ERROR: i32 = 9;

/// The `PH_STAGE_*` value of a status.
pub(crate) fn stage_of(status: pollhttp::Status) -> i32 {
    use pollhttp::Status as S;
    match status {
        S::Disconnected => PH_STAGE_DISCONNECTED,
        S::Resolving => PH_STAGE_RESOLVING,
        S::CantResolve => PH_STAGE_CANT_RESOLVE,
        S::Connecting => PH_STAGE_CONNECTING,
        S::CantConnect => PH_STAGE_CANT_CONNECT,
        S::Connected => PH_STAGE_CONNECTED,
        S::Requesting => PH_STAGE_REQUESTING,
        S::Body => PH_STAGE_BODY,
        S::ConnectionError => PH_STAGE_CONNECTION_ERROR,
        S::TlsHandshakeError => PH_STAGE_TLS_HANDSHAKE_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollhttp::RequestResult as R;

    #[test]
    fn result_constants_are_request_result_values() {
        let pairs = [
            (R::Success, PH_RESULT_SUCCESS),
            (
                R::ChunkedBodySizeMismatch,
                PH_RESULT_CHUNKED_BODY_SIZE_MISMATCH,
            ),
            (R::CantConnect, PH_RESULT_CANT_CONNECT),
            (R::CantResolve, PH_RESULT_CANT_RESOLVE),
            (R::ConnectionError, PH_RESULT_CONNECTION_ERROR),
            (R::TlsHandshakeError, PH_RESULT_TLS_HANDSHAKE_ERROR),
            (R::NoResponse, PH_RESULT_NO_RESPONSE),
            (R::BodySizeLimitExceeded, PH_RESULT_BODY_SIZE_LIMIT_EXCEEDED),
            (R::BodyDecompressFailed, PH_RESULT_BODY_DECOMPRESS_FAILED),
            (R::RequestFailed, PH_RESULT_REQUEST_FAILED),
            (R::DownloadFileCantOpen, PH_RESULT_DOWNLOAD_FILE_CANT_OPEN),
            (
                R::DownloadFileWriteError,
                PH_RESULT_DOWNLOAD_FILE_WRITE_ERROR,
            ),
            (R::RedirectLimitReached, PH_RESULT_REDIRECT_LIMIT_REACHED),
            (R::Timeout, PH_RESULT_TIMEOUT),
            (R::IntegrityFailed, PH_RESULT_INTEGRITY_FAILED),
        ];
        for (r, c) in pairs {
            assert_eq!(r as u8 as i32, c, "{r}");
        }
    }

    #[test]
    fn every_code_has_its_own_message() {
        let texts: Vec<&CStr> = (PH_OK..=PH_ERR_NOT_FOUND)
            .map(|c| MESSAGES[c as usize])
            .collect();
        let mut unique = texts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), texts.len());
        assert_eq!(message(-1), c"unknown error code".as_ptr());
        assert_eq!(
            message(PH_ERR_NOT_FOUND + 1),
            c"unknown error code".as_ptr()
        );
        assert_eq!(message(PH_AGAIN), MESSAGES[1].as_ptr());
    }
}
