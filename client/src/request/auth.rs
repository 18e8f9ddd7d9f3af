//! Basic (RFC 7617) and Digest (RFC 7616) authentication: the header
//! values, and the parsing of a server's Digest challenge.

use std::fmt;

use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha256;

/// Most auth-params read from one `WWW-Authenticate` value.
const MAX_PARAMS: usize = 64;

/// Credentials for a request's origin ([`crate::Settings::auth`]).
///
/// Sent only to the origin of the request they were set for (a redirect
/// elsewhere drops them, as curl does without `--location-trusted`).
/// `Debug` shows the scheme and the user, never the password.
///
/// # Examples
/// ```
/// use pollhttp::web::Auth;
/// let auth = Auth::digest("Mufasa", "Circle of Life");
/// assert_eq!(format!("{auth:?}"), r#"Digest("Mufasa")"#);
/// ```
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
    /// RFC 7616 Digest (MD5, SHA-256 and their -sess variants, `qop=auth`),
    /// sent in answer to the server's `401` challenge.
    Digest {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl Auth {
    /// Basic credentials (RFC 7617): sent with the first request as
    /// `Authorization: Basic base64(user ":" password)`, UTF-8. The user
    /// must not hold a `:` (§2: the server splits at the first one).
    pub fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Digest credentials (RFC 7616): the first request goes without them;
    /// a `401` with a `WWW-Authenticate: Digest` challenge is answered
    /// once (again once if the server says `stale=true`). MD5, SHA-256
    /// and their `-sess` forms, `qop=auth` or none (RFC 2069); user and
    /// password are hashed as UTF-8 (what `charset=UTF-8`, §4, asks for).
    pub fn digest(user: &str, password: &str) -> Auth {
        Auth::Digest {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Auth {
    /// The scheme and user; never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { user, .. } => write!(f, "Basic({user:?})"),
            Auth::Digest { user, .. } => write!(f, "Digest({user:?})"),
        }
    }
}

/// A Digest algorithm (RFC 7616 §3.3 `algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
        }
    }

    fn sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    fn hash(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A parsed Digest challenge (RFC 7616 §3.3). `charset=UTF-8` (§4) is
/// not kept: credentials are always hashed as UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigestChallenge {
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) opaque: Option<String>,
    pub(crate) algorithm: Algorithm,
    /// `qop` offers `auth` (else the RFC 2069 form is answered).
    pub(crate) qop_auth: bool,
    /// The server says the last nonce was stale: answer again.
    pub(crate) stale: bool,
    /// `userhash=true`: the username is sent hashed.
    pub(crate) userhash: bool,
}

/// `Basic <base64(user ":" password)>` (RFC 7617 §2, UTF-8, the standard
/// base64 alphabet with padding).
pub(crate) fn basic_value(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The `Authorization: Basic` value of a URL's userinfo (percent-decoded,
/// RFC 3986 §3.2.1), when it has any: a user name, or a password with an
/// empty user name (`http://:secret@host/`).
pub(crate) fn basic_from_url(url: &url::Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some(basic_value(
        &decode(url.username()),
        &decode(url.password().unwrap_or("")),
    ))
}

/// One challenge: a scheme and its auth-params.
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

/// Parse `WWW-Authenticate` values into challenges (RFC 9110 §11.6.1: one
/// value may hold several, `Basic realm="a", Digest realm="b", nonce=…`).
/// Bounded and never panics on garbage.
fn challenges(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut s = value;
    let mut params = 0;
    while params < MAX_PARAMS {
        s = s.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() {
            break;
        }
        let end = s.find(|c: char| !is_tchar(c)).unwrap_or(s.len());
        if end == 0 {
            // Not a token: skip a character.
            let mut chars = s.chars();
            chars.next();
            s = chars.as_str();
            continue;
        }
        let word = &s[..end];
        let rest = s[end..].trim_start_matches([' ', '\t']);
        if let Some(v) = rest.strip_prefix('=') {
            // An auth-param of the current challenge.
            params += 1;
            let v = v.trim_start_matches([' ', '\t']);
            let (value, after) = if let Some(q) = v.strip_prefix('"') {
                quoted(q)
            } else {
                let e = v.find([',', ' ', '\t']).unwrap_or(v.len());
                (v[..e].to_string(), &v[e..])
            };
            if let Some(c) = out.last_mut() {
                c.params.push((word.to_ascii_lowercase(), value));
            }
            s = after;
        } else {
            // A new challenge's scheme.
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: Vec::new(),
            });
            s = rest;
        }
    }
    out
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn quoted(s: &str) -> (String, &str) {
    let mut text = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (text, &s[i + 1..]),
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    text.push(e);
                }
            }
            c => text.push(c),
        }
    }
    (text, "")
}

/// The strongest Digest challenge we support among `WWW-Authenticate`
/// values (SHA-256 over MD5, RFC 7616 §3.7); challenges with another
/// algorithm (SHA-512-256), without a realm or nonce, or offering only
/// `qop=auth-int` are skipped.
pub(crate) fn parse_digest_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Option<DigestChallenge> {
    let mut best: Option<DigestChallenge> = None;
    for value in values {
        for c in challenges(value) {
            if c.scheme != "digest" {
                continue;
            }
            let get = |k: &str| {
                c.params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            let (Some(realm), Some(nonce)) = (get("realm"), get("nonce")) else {
                continue;
            };
            let Some(algorithm) = Algorithm::parse(&get("algorithm").unwrap_or("MD5".into()))
            else {
                continue;
            };
            let qop = get("qop");
            let qop_auth = qop
                .as_deref()
                .is_some_and(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")));
            if qop.is_some() && !qop_auth {
                continue; // auth-int only
            }
            let flag = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let ch = DigestChallenge {
                realm,
                nonce,
                opaque: get("opaque"),
                algorithm,
                qop_auth,
                stale: flag("stale"),
                userhash: flag("userhash"),
            };
            if best
                .as_ref()
                .is_none_or(|b| ch.algorithm.strength() > b.algorithm.strength())
            {
                best = Some(ch);
            }
        }
    }
    best
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The `Authorization` value answering `challenge` for a request of
/// `method` to `uri` (its request-target), RFC 7616 §3.4: A1 =
/// user:realm:password (for -sess, H(that):nonce:cnonce), A2 =
/// method:uri; with `qop=auth` the response is
/// H(H(A1):nonce:nc:cnonce:auth:H(A2)), else (RFC 2069)
/// H(H(A1):nonce:H(A2)). `nc` is written as 8 hex digits.
pub(crate) fn digest_value(
    challenge: &DigestChallenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let alg = challenge.algorithm;
    let realm = &challenge.realm;
    let nonce = &challenge.nonce;
    let mut ha1 = alg.hash(&format!("{user}:{realm}:{password}"));
    if alg.sess() {
        ha1 = alg.hash(&format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = if challenge.qop_auth {
        alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
    } else {
        alg.hash(&format!("{ha1}:{nonce}:{ha2}"))
    };
    let username = if challenge.userhash {
        alg.hash(&format!("{user}:{realm}"))
    } else {
        user.to_string()
    };
    let mut v = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}, response=\"{response}\"",
        escape(&username),
        escape(realm),
        escape(nonce),
        escape(uri),
        alg.name(),
    );
    if challenge.qop_auth {
        v.push_str(&format!(
            ", qop=auth, nc={nc}, cnonce=\"{}\"",
            escape(cnonce)
        ));
    }
    if let Some(o) = &challenge.opaque {
        v.push_str(&format!(", opaque=\"{}\"", escape(o)));
    }
    if challenge.userhash {
        v.push_str(", userhash=true");
    }
    v
}

/// A fresh client nonce (RFC 7616 §3.4 `cnonce`): 16 bytes from the OS's
/// CSPRNG (`getrandom`) as 32 lowercase hex digits. Should the OS refuse,
/// the bytes come from the clock and a process-wide counter mixed by
/// SplitMix64 (`random_u64`'s fallback): unpredictable enough for a
/// cnonce, whose job is against chosen-plaintext replay, and never a
/// panic.
pub(crate) fn new_cnonce() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        raw[..8].copy_from_slice(&super::retry::random_u64().to_le_bytes());
        raw[8..].copy_from_slice(&super::retry::random_u64().to_le_bytes());
    }
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1.
    fn rfc_challenge(algorithm: &str) -> DigestChallenge {
        let v = format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
        parse_digest_challenge([v.as_str()]).unwrap()
    }

    fn response_of(v: &str) -> &str {
        let start = v.find("response=\"").unwrap() + 10;
        &v[start..start + v[start..].find('"').unwrap()]
    }

    #[test]
    fn rfc_7616_examples() {
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (alg, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let ch = rfc_challenge(alg);
            let v = digest_value(
                &ch,
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                1,
                cnonce,
            );
            assert_eq!(response_of(&v), expected, "{alg}: {v}");
            assert!(v.contains("nc=00000001"), "{v}");
            assert!(v.contains("qop=auth,"), "{v}");
            assert!(
                v.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""),
                "{v}"
            );
        }
    }

    #[test]
    fn httpbin_style_challenge_and_strongest_pick() {
        let ch = parse_digest_challenge([
            "Digest realm=\"me@kennethreitz.com\", nonce=\"abc\", qop=\"auth\", opaque=\"xyz\", algorithm=MD5, stale=FALSE",
        ])
        .unwrap();
        assert_eq!(
            (ch.realm.as_str(), ch.nonce.as_str()),
            ("me@kennethreitz.com", "abc")
        );
        assert_eq!(
            (ch.algorithm, ch.qop_auth, ch.stale),
            (Algorithm::Md5, true, false)
        );
        assert_eq!(ch.opaque.as_deref(), Some("xyz"));
        // Several challenges in one value and across values.
        let ch = parse_digest_challenge([
            "Basic realm=\"b\", Digest realm=\"r\", nonce=\"n1\", algorithm=MD5",
            "Digest realm=\"r\", nonce=\"n2\", algorithm=SHA-256, stale=true",
            "Digest realm=\"r\", nonce=\"n3\", algorithm=SHA-512-256",
        ])
        .unwrap();
        assert_eq!(
            (ch.nonce.as_str(), ch.algorithm, ch.stale),
            ("n2", Algorithm::Sha256, true)
        );
    }

    #[test]
    fn quoted_escapes_and_rfc_2069_form() {
        let ch = parse_digest_challenge(["digest REALM=\"a \\\"q\\\" b\", NONCE=n"]).unwrap();
        assert_eq!(ch.realm, "a \"q\" b");
        assert!(!ch.qop_auth);
        let v = digest_value(&ch, "u", "p", "GET", "/", 1, "c");
        assert!(v.contains("realm=\"a \\\"q\\\" b\""), "{v}");
        assert!(!v.contains("qop="), "{v}");
        let expected = Algorithm::Md5.hash(&format!(
            "{}:n:{}",
            Algorithm::Md5.hash("u:a \"q\" b:p"),
            Algorithm::Md5.hash("GET:/")
        ));
        assert_eq!(response_of(&v), expected);
    }

    #[test]
    fn unusable_challenges_and_garbage() {
        assert_eq!(parse_digest_challenge(["Basic realm=x"]), None);
        assert_eq!(parse_digest_challenge(["Digest realm=x"]), None);
        assert_eq!(
            parse_digest_challenge(["Digest realm=x, nonce=y, qop=auth-int"]),
            None
        );
        for g in [
            "",
            "=",
            "\"",
            "Digest ,,,=",
            "Digest realm=\"unterminated",
            "é=é",
            &"a=b, ".repeat(500),
        ] {
            let _ = parse_digest_challenge([g]);
        }
    }

    #[test]
    fn sess_and_userhash() {
        let ch = parse_digest_challenge([
            "Digest realm=\"r\", nonce=\"n\", qop=auth, algorithm=SHA-256-sess, userhash=true",
        ])
        .unwrap();
        assert_eq!((ch.algorithm, ch.userhash), (Algorithm::Sha256Sess, true));
        let v = digest_value(&ch, "u", "p", "POST", "/x?y=1", 0x1a, "c");
        let a = Algorithm::Sha256;
        let ha1 = a.hash(&format!("{}:n:c", a.hash("u:r:p")));
        let expected = a.hash(&format!(
            "{ha1}:n:0000001a:c:auth:{}",
            a.hash("POST:/x?y=1")
        ));
        assert_eq!(response_of(&v), expected, "{v}");
        assert!(
            v.starts_with(&format!("Digest username=\"{}\", ", a.hash("u:r"))),
            "{v}"
        );
        assert!(v.contains("algorithm=SHA-256-sess,"), "{v}");
        assert!(v.ends_with(", userhash=true"), "{v}");
        assert!(!v.contains("opaque"), "{v}");
        let ch = parse_digest_challenge(["Digest realm=r, nonce=n, algorithm=md5-sess"]).unwrap();
        assert_eq!(ch.algorithm, Algorithm::Md5Sess);
    }

    #[test]
    fn the_first_of_the_strongest_wins() {
        let ch = parse_digest_challenge([
            "Digest realm=r, nonce=md5",
            "Digest realm=r, nonce=first, algorithm=SHA-256, Digest realm=r, nonce=second, algorithm=SHA-256",
        ])
        .unwrap();
        assert_eq!(ch.nonce, "first");
        let ch = parse_digest_challenge([
            "Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", Basic realm=\"simple\", \
             DIGEST REALM=\"d\", Nonce=\"n, with comma\"",
        ])
        .unwrap();
        assert_eq!(
            (ch.realm.as_str(), ch.nonce.as_str()),
            ("d", "n, with comma")
        );
    }

    #[test]
    fn params_are_bounded() {
        let filler = (0..MAX_PARAMS)
            .map(|i| format!("p{i}=v"))
            .collect::<Vec<_>>()
            .join(", ");
        let late = format!("Digest {filler}, realm=r, nonce=n");
        assert_eq!(parse_digest_challenge([late.as_str()]), None);
        let early = format!("Digest realm=r, nonce=n, {filler}");
        assert!(parse_digest_challenge([early.as_str()]).is_some());
    }

    #[test]
    fn basic_and_debug() {
        assert_eq!(
            basic_value("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(format!("{:?}", Auth::basic("u", "secret")), "Basic(\"u\")");
        assert!(!format!("{:?}", Auth::digest("u", "secret")).contains("secret"));
        assert_eq!(basic_value("ü", ""), "Basic w7w6");
        let c = new_cnonce();
        assert_eq!(c.len(), 32);
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(c, new_cnonce());
    }
}
