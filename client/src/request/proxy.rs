//! Proxies from the environment, by curl's rules (`http_proxy`,
//! `https_proxy`, `all_proxy`, `no_proxy`), for
//! [`ProxySettings::from_env`](crate::ProxySettings::from_env).

use url::{Host, Url};

/// A proxy: host, port, and the credentials of its URL's userinfo
/// (percent-decoded), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The proxy's host (an IPv6 literal without brackets).
    pub host: String,
    /// Its port (1080 when the proxy URL gives none, as curl).
    pub port: u16,
    /// User and password for Proxy-Authorization: Basic.
    pub credentials: Option<(String, String)>,
}

/// The proxy for `url` from the process environment; see [`proxy_for`].
pub fn env_proxy(url: &Url) -> Option<ProxyConfig> {
    proxy_for(url, |name| std::env::var(name).ok())
}

/// The proxy for `url` by curl's rules, reading variables through `var`:
///
/// * `http_proxy` for http URLs (lowercase only: curl ignores
///   `HTTP_PROXY`, which a CGI server could set from a request's `Proxy:`
///   field), `https_proxy` or `HTTPS_PROXY` for https, else `all_proxy` or
///   `ALL_PROXY`; lowercase first.
/// * `no_proxy` or `NO_PROXY`: a comma-separated list; `*` matches every
///   host; a name matches itself and its subdomains (a leading dot is
///   ignored: `example.com` and `.example.com` both match
///   `www.example.com` and `example.com`); an IP literal matches itself;
///   names compare case-insensitively.
/// * The proxy is a URL (`http://host:port`, a missing scheme taken as
///   `http://`, a missing port as 1080); only HTTP proxies are supported:
///   another scheme (socks5://) gives no proxy.
pub fn proxy_for(url: &Url, var: impl Fn(&str) -> Option<String>) -> Option<ProxyConfig> {
    let host = url.host()?;
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
    };
    if let Some(no) = get(&["no_proxy", "NO_PROXY"]) {
        if no_proxy_matches(&no, &host) {
            return None;
        }
    }
    let value = match url.scheme() {
        "http" => get(&["http_proxy"]),
        "https" => get(&["https_proxy", "HTTPS_PROXY"]),
        _ => None,
    }
    .or_else(|| get(&["all_proxy", "ALL_PROXY"]))?;
    parse_proxy(value.trim())
}

fn no_proxy_matches(list: &str, host: &Host<&str>) -> bool {
    let name = match host {
        Host::Domain(d) => d.to_ascii_lowercase(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a) => a.to_string(),
    };
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry
            .trim_start_matches('.')
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if entry.is_empty() {
            return false;
        }
        match host {
            Host::Domain(_) => {
                name == entry
                    || (name.len() > entry.len()
                        && name.ends_with(&entry)
                        && name.as_bytes()[name.len() - entry.len() - 1] == b'.')
            }
            _ => name == entry,
        }
    })
}

fn parse_proxy(value: &str) -> Option<ProxyConfig> {
    let raw = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&raw).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = match url.host()? {
        Host::Domain(d) => d.to_string(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a) => a.to_string(),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let credentials = (!url.username().is_empty())
        .then(|| (decode(url.username()), decode(url.password().unwrap_or(""))));
    Some(ProxyConfig {
        host,
        port: url.port().unwrap_or(1080),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn scheme_variables_and_all_proxy() {
        let vars = [
            ("http_proxy", "proxy:3128"),
            ("ALL_PROXY", "http://all:8080"),
        ];
        let p = proxy_for(&url("http://example.com/"), env(&vars)).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        let p = proxy_for(&url("https://example.com/"), env(&vars)).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("all", 8080));
        let vars = [("HTTPS_PROXY", "http://u%40x:p%3Aw@secure")];
        let p = proxy_for(&url("https://example.com/"), env(&vars)).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("secure", 1080));
        assert_eq!(p.credentials, Some(("u@x".into(), "p:w".into())));
    }

    #[test]
    fn uppercase_http_proxy_is_ignored_as_curl_does() {
        let vars = [("HTTP_PROXY", "evil:1")];
        assert_eq!(proxy_for(&url("http://example.com/"), env(&vars)), None);
    }

    #[test]
    fn no_proxy_rules() {
        let with = |no: &'static str| [("all_proxy", "p:1"), ("no_proxy", no)];
        let direct = |no: &'static str, u: &str| proxy_for(&url(u), env(&with(no))).is_none();
        assert!(direct("*", "http://any.where/"));
        assert!(direct("example.com", "http://example.com/"));
        assert!(direct("example.com", "http://www.EXAMPLE.com/"));
        assert!(direct(".example.com", "http://example.com/"));
        assert!(!direct("example.com", "http://notexample.com/"));
        assert!(direct("a.test, 127.0.0.1", "http://127.0.0.1:8080/"));
        assert!(direct("::1", "http://[::1]/"));
        assert!(!direct("10.0.0.1", "http://10.0.0.2/"));
        assert!(!direct("", "http://x/"));
    }

    #[test]
    fn unsupported_proxy_schemes_give_no_proxy() {
        let vars = [("all_proxy", "socks5://s:1080")];
        assert_eq!(proxy_for(&url("http://example.com/"), env(&vars)), None);
    }
}
