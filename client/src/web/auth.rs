//! Basic and Digest authentication. STUB: helper-B implements.

/// Credentials for a request's origin.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// RFC 7617 Basic, sent with the first request.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// RFC 7616 Digest, sent in answer to a challenge.
    Digest {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth")
    }
}

/// A parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigestChallenge {}

/// `Basic <base64(user:password)>`.
pub(crate) fn basic_value(_user: &str, _password: &str) -> String {
    todo!()
}

/// The strongest Digest challenge we support among `WWW-Authenticate` values.
pub(crate) fn parse_digest_challenge<'a>(
    _values: impl IntoIterator<Item = &'a str>,
) -> Option<DigestChallenge> {
    todo!()
}

/// The `Authorization` value answering `challenge`.
pub(crate) fn digest_value(
    _challenge: &DigestChallenge,
    _user: &str,
    _password: &str,
    _method: &str,
    _uri: &str,
    _nc: u32,
    _cnonce: &str,
) -> String {
    todo!()
}

/// A fresh client nonce.
pub(crate) fn new_cnonce() -> String {
    todo!()
}
