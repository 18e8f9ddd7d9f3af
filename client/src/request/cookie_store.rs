//! The seam between the request logic and a cookie jar (reqwest's
//! `CookieStore` is the model): the request loop stores what each response
//! sets and asks what each hop sends, without knowing the jar.
//! [`crate::web::CookieJar`] (behind the `cookies` feature) implements it
//! behind a mutex; a program may bring its own.

use std::fmt;

use pollhttp_proto::Fields;
use url::Url;

/// Cookies as the request logic sees them (RFC 6265 §5.3 storage, §5.4 the
/// `Cookie` field). Called on the thread that steps the request, at every
/// hop (a `Set-Cookie` on a 3xx applies to the next hop); shared by the
/// requests (and threads) holding the same `Arc`.
pub trait CookieStore: Send + Sync + fmt::Debug {
    /// Take the `Set-Cookie` fields of a response from `url`.
    fn store_response(&self, url: &Url, fields: &Fields);
    /// The `Cookie` field value for a request to `url`, if any cookie
    /// matches.
    fn cookie_header(&self, url: &Url) -> Option<String>;
}
