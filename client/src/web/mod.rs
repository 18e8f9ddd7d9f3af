//! The web-API conveniences users of Parse.Cloud.httpRequest, RethinkDB's
//! `r.http` and axios/got expect, built on [`crate::HttpRequest`] and
//! [`crate::RequestPool`] (not beside them): query strings, field lines,
//! form, JSON and multipart bodies, decoded and parsed responses, cookies,
//! authentication, retries and pagination.

mod agent;
mod batch;
mod builder;
mod fields;
mod link;
mod paginate;
mod query;
mod response;

#[cfg(feature = "cookies")]
mod cookies;
#[cfg(feature = "http")]
mod interop;
#[cfg(feature = "multipart")]
mod multipart;

pub use crate::request::auth::Auth;
pub use crate::request::proxy::{env_proxy, proxy_for, ProxyConfig};
pub use crate::request::retry::{RetryBudget, RetryPolicy};
pub use agent::Agent;
pub use batch::{all, all_settled, Batch};
#[cfg(feature = "json")]
pub use builder::{DataError, ValueKind};
pub use builder::{Request, StatusPolicy, WebError};
pub use fields::{parse_field_lines, FieldLineError, FieldLineErrorKind};
pub use link::{next_link, parse_link, LinkValue};
pub use paginate::{NextPageFn, Pagination, Paginator};
pub use query::{
    append_query_pairs, append_raw_query, form_body, query_string_from_dict, uri_encode, QueryValue,
};
#[cfg(feature = "json")]
pub use response::Parsed;
pub use response::{BodyError, ResultFormat};

#[cfg(feature = "cookies")]
pub use cookies::{
    parse_set_cookie, CookieJar, CookieJarError, SameSite, SetCookie, SharedCookieJar, MAX_COOKIES,
    MAX_COOKIES_PER_RESPONSE, MAX_COOKIE_HEADER, MAX_COOKIE_SIZE,
};
#[cfg(feature = "multipart")]
pub use multipart::{guess_media_type, Multipart, MultipartError};

/// Fields as a parsed response head has them (proto builds `Fields` only
/// from a parsed head): for the unit tests of this module.
#[cfg(test)]
pub(crate) fn test_fields(pairs: &[(&str, &str)]) -> pollhttp_proto::Fields {
    test_head(pairs).fields().clone()
}

/// A parsed `200 OK` head with these fields, for the unit tests.
#[cfg(test)]
pub(crate) fn test_head(pairs: &[(&str, &str)]) -> pollhttp_proto::ResponseHead {
    let mut raw = String::from("HTTP/1.1 200 OK\r\n");
    for (k, v) in pairs {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("Content-Length: 0\r\n\r\n");
    crate::parsed_head(&raw)
}
