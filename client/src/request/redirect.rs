//! The redirect policy (RFC 9110 §15.4): whether to follow, as one pure
//! function unit-tested rule by rule without sockets, and the next hop's
//! request rewritten in the same place ([`Follow::apply`], as ureq-proto's
//! `as_new_call`).

use std::fmt;

use url::Url;

use super::auth::basic_from_url;
use super::Call;
use crate::body::RequestBody;

/// What to do with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not a redirect to follow: this response is the result.
    Final,
    /// Follow: the next hop.
    Follow(Follow),
    /// More redirects than allowed.
    LimitReached,
    /// A redirect that cannot be followed.
    Refuse(Refusal),
}

/// A redirect to follow: the next hop's URL and what changes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Follow {
    pub(crate) url: Url,
    /// The method for the next hop (GET after 303, and after 301/302 to a
    /// POST; else unchanged).
    pub(crate) method: String,
    /// Whether the body (and its framing and type fields) is dropped.
    pub(crate) drop_body: bool,
    /// Whether credentials (Authorization, Cookie, Proxy-Authorization)
    /// and the caller's Host are dropped: the next hop is another origin.
    pub(crate) drop_credentials: bool,
}

impl Follow {
    /// Rewrite `call` into the next hop's request: method and URL; no
    /// credentials, cookies or Host of the caller for another origin
    /// (RFC 9110 §15.4; curl sends a custom Host only to the first host);
    /// credentials in the Location are the next hop's (curl uses them); no
    /// body nor its framing and type fields when the method turned into GET.
    pub(crate) fn apply(self, call: &mut Call) {
        let drop = |headers: &mut Vec<(String, String)>, names: &[&str]| {
            headers.retain(|(k, _)| !names.iter().any(|n| k.eq_ignore_ascii_case(n)));
        };
        if self.drop_credentials {
            call.user_cookie = None;
            drop(
                &mut call.headers,
                &["authorization", "cookie", "proxy-authorization", "host"],
            );
        }
        if let Some(value) = basic_from_url(&self.url) {
            drop(&mut call.headers, &["authorization"]);
            call.headers.push(("Authorization".into(), value));
        }
        if self.drop_body {
            call.body = Some(RequestBody::Empty);
            drop(
                &mut call.headers,
                &["content-length", "content-type", "transfer-encoding"],
            );
        }
        call.method = self.method;
        call.url = self.url;
    }
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The Location is not a URL (relative to the request's) with an http or
    /// https scheme and a host.
    BadLocation(String),
    /// From https to http, which the settings refuse (the URL is given).
    HttpsToHttp(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadLocation(l) => write!(f, "cannot follow redirect to {l:?}"),
            Refusal::HttpsToHttp(u) => write!(f, "refused redirect from https to http ({u})"),
        }
    }
}

/// The settings the policy reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) max_redirects: u32,
    pub(crate) allow_https_to_http: bool,
}

/// Decide what a response with `status` and `location` to a request of
/// `method` for `url` leads to, after `followed` redirects.
///
/// * 301, 302, 303, 307 and 308 with a Location are followed (300, 304 and
///   305 are not: RFC 9110 §15.4.1, §15.4.5, §15.4.6); without a Location a
///   3xx is the result.
/// * 303 turns any method but HEAD into GET without a body (§15.4.4); 301
///   and 302 do so for POST only (§15.4.2, §15.4.3, as browsers and curl);
///   307 and 308 keep the method and the body (§15.4.8, §15.4.9).
/// * The Location is a URI reference resolved against the request's URL
///   (§10.2.2); its fragment is dropped (it is never sent).
/// * Credentials stay with their origin (§15.4: a user agent must not leak
///   them to another one).
pub(crate) fn decide(
    url: &Url,
    status: u16,
    method: &str,
    location: Option<&str>,
    followed: u32,
    policy: Policy,
) -> Decision {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Decision::Final;
    }
    let Some(location) = location else {
        return Decision::Final;
    };
    if followed >= policy.max_redirects {
        return Decision::LimitReached;
    }
    let location = location.trim();
    let mut next = match url.join(location) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            u
        }
        _ => return Decision::Refuse(Refusal::BadLocation(location.to_string())),
    };
    next.set_fragment(None);
    if url.scheme() == "https" && next.scheme() == "http" && !policy.allow_https_to_http {
        return Decision::Refuse(Refusal::HttpsToHttp(next.to_string()));
    }
    let to_get =
        (status == 303 && method != "HEAD") || (matches!(status, 301 | 302) && method == "POST");
    Decision::Follow(Follow {
        drop_credentials: next.origin() != url.origin(),
        method: if to_get {
            "GET".into()
        } else {
            method.to_string()
        },
        drop_body: to_get,
        url: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        max_redirects: 8,
        allow_https_to_http: false,
    };

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn follow(status: u16, method: &str, loc: &str) -> Decision {
        decide(
            &url("http://a.test/x/y?q"),
            status,
            method,
            Some(loc),
            0,
            POLICY,
        )
    }

    fn next_of(d: &Decision) -> (&str, &str, bool, bool) {
        match d {
            Decision::Follow(Follow {
                url,
                method,
                drop_body,
                drop_credentials,
            }) => (url.as_str(), method.as_str(), *drop_body, *drop_credentials),
            other => panic!("not followed: {other:?}"),
        }
    }

    #[test]
    fn only_the_five_redirect_codes_are_followed() {
        for status in [200, 204, 300, 304, 305, 306, 399, 404] {
            assert_eq!(follow(status, "GET", "/z"), Decision::Final, "{status}");
        }
        for status in [301, 302, 303, 307, 308] {
            assert!(matches!(follow(status, "GET", "/z"), Decision::Follow(_)));
        }
    }

    #[test]
    fn a_redirect_without_location_is_the_result() {
        let d = decide(&url("http://a.test/"), 302, "GET", None, 0, POLICY);
        assert_eq!(d, Decision::Final);
    }

    #[test]
    fn see_other_becomes_get_except_for_head() {
        assert_eq!(
            next_of(&follow(303, "POST", "/z")),
            ("http://a.test/z", "GET", true, false)
        );
        assert_eq!(next_of(&follow(303, "PUT", "/z")).1, "GET");
        assert_eq!(
            next_of(&follow(303, "HEAD", "/z")),
            ("http://a.test/z", "HEAD", false, false)
        );
    }

    #[test]
    fn moved_and_found_turn_post_into_get_only() {
        for status in [301, 302] {
            assert_eq!(next_of(&follow(status, "POST", "/z")).1, "GET");
            assert!(next_of(&follow(status, "POST", "/z")).2);
            assert_eq!(
                next_of(&follow(status, "PUT", "/z")),
                ("http://a.test/z", "PUT", false, false)
            );
            assert_eq!(next_of(&follow(status, "DELETE", "/z")).1, "DELETE");
        }
    }

    #[test]
    fn temporary_and_permanent_keep_method_and_body() {
        for status in [307, 308] {
            assert_eq!(
                next_of(&follow(status, "POST", "/z")),
                ("http://a.test/z", "POST", false, false)
            );
        }
    }

    #[test]
    fn location_is_resolved_and_its_fragment_dropped() {
        assert_eq!(next_of(&follow(302, "GET", "z")).0, "http://a.test/x/z");
        assert_eq!(
            next_of(&follow(302, "GET", "../z?k=v")).0,
            "http://a.test/z?k=v"
        );
        assert_eq!(
            next_of(&follow(302, "GET", "//b.test/p")).0,
            "http://b.test/p"
        );
        assert_eq!(
            next_of(&follow(302, "GET", " /z#frag ")).0,
            "http://a.test/z"
        );
        assert_eq!(
            next_of(&follow(302, "GET", "?only")).0,
            "http://a.test/x/y?only"
        );
    }

    #[test]
    fn credentials_stay_with_their_origin() {
        assert!(!next_of(&follow(302, "GET", "/z")).3);
        assert!(next_of(&follow(302, "GET", "http://b.test/")).3);
        assert!(next_of(&follow(302, "GET", "http://a.test:8080/")).3);
        assert!(next_of(&follow(302, "GET", "https://a.test/")).3);
    }

    #[test]
    fn bad_locations_are_refused() {
        for loc in [
            "ftp://a.test/",
            "mailto:x@a.test",
            "http://",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(
                    follow(302, "GET", loc),
                    Decision::Refuse(Refusal::BadLocation(_))
                ),
                "{loc}"
            );
        }
    }

    #[test]
    fn https_to_http_is_refused_unless_allowed() {
        let from = url("https://a.test/");
        let d = decide(&from, 302, "GET", Some("http://a.test/"), 0, POLICY);
        assert_eq!(
            d,
            Decision::Refuse(Refusal::HttpsToHttp("http://a.test/".into()))
        );
        let allow = Policy {
            allow_https_to_http: true,
            ..POLICY
        };
        let d = decide(&from, 302, "GET", Some("http://a.test/"), 0, allow);
        assert!(matches!(d, Decision::Follow(_)));
        let d = decide(
            &url("http://a.test/"),
            302,
            "GET",
            Some("https://a.test/"),
            0,
            POLICY,
        );
        assert!(matches!(d, Decision::Follow(_)));
    }

    #[test]
    fn the_limit_counts_followed_redirects() {
        let u = url("http://a.test/");
        assert!(matches!(
            decide(&u, 302, "GET", Some("/"), 7, POLICY),
            Decision::Follow(_)
        ));
        assert_eq!(
            decide(&u, 302, "GET", Some("/"), 8, POLICY),
            Decision::LimitReached
        );
        let none = Policy {
            max_redirects: 0,
            ..POLICY
        };
        assert_eq!(
            decide(&u, 301, "GET", Some("/"), 0, none),
            Decision::LimitReached
        );
        // A non-redirect is final whatever the count.
        assert_eq!(
            decide(&u, 200, "GET", Some("/"), 99, POLICY),
            Decision::Final
        );
    }
}
