//! RFC 8288 `Link` fields: the link-values of a response, and the
//! `rel="next"` target that pagination follows (GitHub's, GitLab's and
//! most REST APIs' paging).

use pollhttp_proto::Fields;
use url::Url;

/// Most link-values examined in one field value, well-formed or not (bounds
/// the work on a hostile field).
const MAX_LINKS: usize = 64;

/// One link-value of a `Link` field (RFC 8288 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkValue {
    /// The target as written between `<` and `>` (a URI reference, RFC
    /// 3986 §4.1, not yet resolved; surrounding spaces removed).
    pub target: String,
    /// The relation types of its first `rel` parameter (RFC 8288 §3.3: later
    /// ones are ignored), split at whitespace and lowercased (relation
    /// types compare case-insensitively, §2.1). Empty when there is no
    /// `rel`.
    pub rels: Vec<String>,
}

/// Parse one `Link` field value (RFC 8288 §3).
///
/// The grammar: `#link-value`, where `link-value = "<" URI-Reference ">"
/// *( OWS ";" OWS link-param )` and `link-param = token BWS [ "=" BWS (
/// token / quoted-string ) ]`. Link-values are separated by commas; commas
/// inside `<…>` or a quoted-string do not split. A quoted-string's
/// backslash escapes are undone (RFC 9110 §5.6.4). Parameter names compare
/// case-insensitively; only the first `rel` counts.
///
/// Leniency: an unquoted value is read up to the next `;`, `,` or
/// whitespace, so `type=text/html` (not a token) is kept, as browsers keep
/// it, and `rel=` is an empty value.
///
/// # Malformed input
/// A link-value that does not start with `<`, has no `>`, has a parameter
/// with no name, an unterminated quoted-string, or anything but `;`, `,`
/// or the end after a target or parameter is skipped: parsing resumes
/// after the next comma outside `<…>` and quotes. At most 64 link-values
/// are examined (the skipped ones count), so the work is linear in the
/// value's length and the output at most 64 entries. Never panics.
///
/// ```
/// use pollhttp::web::parse_link;
/// let links = parse_link(r#"<https://api.example/items?page=2>; rel="next", </items?page=9>; rel=last"#);
/// assert_eq!(links[0].target, "https://api.example/items?page=2");
/// assert_eq!(links[0].rels, ["next"]);
/// assert_eq!(links[1].rels, ["last"]);
/// ```
pub fn parse_link(value: &str) -> Vec<LinkValue> {
    let mut out = Vec::new();
    let mut rest = value;
    for _ in 0..MAX_LINKS {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        match link_value(rest) {
            Some((link, after)) => {
                out.push(link);
                rest = after;
            }
            // Malformed: resume after the next comma outside quotes and <…>.
            None => rest = skip_to_comma(rest),
        }
    }
    out
}

/// One link-value at the start of `s` and what follows it (the empty
/// string or a comma), or `None` when it is malformed.
fn link_value(s: &str) -> Option<(LinkValue, &str)> {
    let (target, mut s) = s.strip_prefix('<')?.split_once('>')?;
    let mut rels: Option<Vec<String>> = None;
    loop {
        s = trim_ows(s);
        if s.is_empty() || s.starts_with(',') {
            let link = LinkValue {
                target: target.trim().to_string(),
                rels: rels.unwrap_or_default(),
            };
            return Some((link, s));
        }
        let param = trim_ows(s.strip_prefix(';')?);
        let name_end = param.find(|c: char| !is_tchar(c)).unwrap_or(param.len());
        let (name, after) = param.split_at(name_end);
        if name.is_empty() {
            return None;
        }
        let after = trim_ows(after);
        let (value, after) = match after.strip_prefix('=') {
            Some(v) => {
                let v = trim_ows(v);
                match v.strip_prefix('"') {
                    Some(q) => quoted(q)?,
                    None => {
                        let end = v.find([';', ',', ' ', '\t']).unwrap_or(v.len());
                        (v[..end].to_string(), &v[end..])
                    }
                }
            }
            None => (String::new(), after),
        };
        if rels.is_none() && name.eq_ignore_ascii_case("rel") {
            rels = Some(
                value
                    .split_ascii_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect(),
            );
        }
        s = after;
    }
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// `s` without leading OWS (SP / HTAB).
fn trim_ows(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// A quoted-string's text (`s` starts after its opening quote, escapes
/// undone) and what follows its closing quote; `None` when it never closes.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut text = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((text, &s[i + 1..])),
            '\\' => text.push(chars.next()?.1),
            c => text.push(c),
        }
    }
    None
}

/// The input from the next comma outside quotes and `<…>` on (empty when
/// there is none).
fn skip_to_comma(s: &str) -> &str {
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' if !in_angle => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => return &s[i..],
            _ => {}
        }
    }
    ""
}

/// The next page of a paginated response: the target of the first
/// link-value with relation type `next` in any of the response's `Link`
/// fields (all of them, in wire order; names case-insensitive), resolved
/// against `base` (the URL of the page, after redirects) with
/// [`Url::join`] (RFC 3986 §5), keeping only http and https results.
///
/// A `next` target that does not resolve, or resolves to another scheme
/// (`javascript:`, `file:`, …), is passed over for the next one. A field
/// value that is not UTF-8 is read lossily (U+FFFD for bad bytes). `None`
/// when no usable `next` link exists (the last page).
pub fn next_link(fields: &Fields, base: &Url) -> Option<Url> {
    fields
        .get_all("link")
        .flat_map(|v| parse_link(&String::from_utf8_lossy(v)))
        .filter(|l| l.rels.iter().any(|r| r == "next"))
        .find_map(|l| {
            base.join(&l.target)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollhttp_proto::Fields;

    fn rels(v: &str) -> Vec<(String, Vec<String>)> {
        parse_link(v)
            .into_iter()
            .map(|l| (l.target, l.rels))
            .collect()
    }

    fn link(target: &str, rels: &[&str]) -> (String, Vec<String>) {
        (
            target.to_string(),
            rels.iter().map(|r| r.to_string()).collect(),
        )
    }

    /// Fields as a parsed response head has them.
    fn fields(links: &[&str]) -> Fields {
        let pairs: Vec<(&str, &str)> = links.iter().map(|v| ("Link", *v)).collect();
        crate::web::test_fields(&pairs)
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn github_style() {
        let v = "<https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", \
                 <https://api.github.com/repositories/1/issues?page=5>; rel=\"last\"";
        assert_eq!(
            rels(v),
            [
                link(
                    "https://api.github.com/repositories/1/issues?page=2",
                    &["next"]
                ),
                link(
                    "https://api.github.com/repositories/1/issues?page=5",
                    &["last"]
                ),
            ]
        );
        let base = url("https://api.github.com/repositories/1/issues?page=1");
        assert_eq!(
            next_link(&fields(&[v]), &base).unwrap().as_str(),
            "https://api.github.com/repositories/1/issues?page=2"
        );
    }

    #[test]
    fn lists_case_and_unquoted_values() {
        assert_eq!(rels("</a>; REL=NEXT"), [link("/a", &["next"])]);
        assert_eq!(
            rels("</a> ;rel = \"prev next\""),
            [link("/a", &["prev", "next"])]
        );
        // Only the first rel counts (RFC 8288 §3.3).
        assert_eq!(rels("</a>; rel=prev; rel=next"), [link("/a", &["prev"])]);
        // A parameter with no value, and a value that is not a token.
        assert_eq!(
            rels("</a>; crossorigin; type=text/html; rel=next"),
            [link("/a", &["next"])]
        );
        // No rel at all.
        assert_eq!(rels("</a>; title=x"), [link("/a", &[])]);
        assert_eq!(rels("</a>"), [link("/a", &[])]);
    }

    #[test]
    fn commas_in_targets_and_quotes_do_not_split() {
        assert_eq!(
            rels("</a,b?x=1,2>; title=\"x, y\"; rel=next, </c>; rel=last"),
            [link("/a,b?x=1,2", &["next"]), link("/c", &["last"])]
        );
        // Escapes in a quoted-string are undone and do not end it.
        let got = parse_link(r#"</q>; title="a \" b, c"; rel="n\ext""#);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rels, ["next"]);
    }

    #[test]
    fn malformed_link_values_are_skipped_without_panicking() {
        assert!(rels("").is_empty());
        assert!(rels(" , ,, ").is_empty());
        assert!(rels("nonsense, ;;;, \"<\"").is_empty());
        assert_eq!(rels("junk, </ok>; rel=next"), [link("/ok", &["next"])]);
        // No closing '>'.
        assert!(rels("</unterminated; rel=next").is_empty());
        // An unterminated quoted-string.
        assert!(rels("</a>; rel=\"next").is_empty());
        // A parameter with no name, junk after a target or a parameter.
        assert_eq!(rels("</a>; =x, </b>; rel=next"), [link("/b", &["next"])]);
        assert_eq!(rels("</a> junk, </b>"), [link("/b", &[])]);
        assert_eq!(rels("</a>; rel=\"x\"y, </b>"), [link("/b", &[])]);
        for s in [
            "<",
            ">",
            ";",
            "<>;=",
            "<a>;rel=",
            "<a>; =x",
            "é<é>;é=é",
            "<a>;rel=\"\\",
            "\"",
            "<a>,\"<",
        ] {
            let _ = rels(s);
        }
        assert_eq!(rels("<a>;rel="), [link("a", &[])]);
    }

    #[test]
    fn the_work_is_bounded() {
        let many = "</x>; rel=next, ".repeat(1000);
        assert_eq!(rels(&many).len(), MAX_LINKS);
        // Skipped link-values count too.
        let junk = format!("{}</late>; rel=next", "junk, ".repeat(MAX_LINKS));
        assert!(rels(&junk).is_empty());
    }

    #[test]
    fn relative_targets_resolve_against_the_page() {
        let base = url("http://h/items?page=2");
        let f = fields(&["</items?page=3>; rel=\"next\""]);
        assert_eq!(
            next_link(&f, &base).unwrap().as_str(),
            "http://h/items?page=3"
        );
        let f = fields(&["<?page=3>; rel=next"]);
        assert_eq!(
            next_link(&f, &base).unwrap().as_str(),
            "http://h/items?page=3"
        );
        let f = fields(&["<page/3>; rel=next"]);
        assert_eq!(
            next_link(&f, &url("https://h/a/b")).unwrap().as_str(),
            "https://h/a/page/3"
        );
    }

    #[test]
    fn next_is_searched_in_every_link_field() {
        let base = url("http://h/");
        let f = fields(&[
            "</first>; rel=first",
            "</p2>; rel=\"prev next\", </p9>; rel=last",
        ]);
        assert_eq!(next_link(&f, &base).unwrap().as_str(), "http://h/p2");
        let f = fields(&["</a>; REL=NEXT"]);
        assert_eq!(next_link(&f, &base).unwrap().as_str(), "http://h/a");
    }

    #[test]
    fn no_usable_next_is_none() {
        let base = url("http://h/");
        assert_eq!(next_link(&fields(&[]), &base), None);
        assert_eq!(
            next_link(&fields(&["</p1>; rel=prev, </p9>; rel=last"]), &base),
            None
        );
        assert_eq!(next_link(&fields(&["garbage <<>>; ;; ,,"]), &base), None);
        // Only http and https: other schemes are passed over.
        let f = fields(&["<javascript:alert(1)>; rel=next", "<ftp://h/x>; rel=next"]);
        assert_eq!(next_link(&f, &base), None);
        let f = fields(&["<file:///etc/passwd>; rel=next, <https://h/ok>; rel=next"]);
        assert_eq!(next_link(&f, &base).unwrap().as_str(), "https://h/ok");
    }
}
