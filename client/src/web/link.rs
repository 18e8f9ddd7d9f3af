//! RFC 8288 `Link` fields: the link-values of a response, and the
//! `rel="next"` target that pagination follows.

use pollhttp_proto::Fields;
use url::Url;

/// Most link-values parsed from one field value (bounds the work on a
/// hostile field).
const MAX_LINKS: usize = 64;

/// One link-value of a `Link` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkValue {
    /// The target as written between `<` and `>` (a URI reference).
    pub target: String,
    /// The relation types of its first `rel` parameter (RFC 8288 §3.3),
    /// lowercased.
    pub rels: Vec<String>,
}

/// Parse one `Link` field value (RFC 8288 §3): `<URI-Reference>` then
/// `; param=value` pairs (a token or a quoted-string with backslash
/// escapes), link-values separated by commas (commas inside `<…>` or
/// quotes do not split). A malformed link-value is skipped; at most 64
/// are read. Never panics.
pub fn parse_link(value: &str) -> Vec<LinkValue> {
    let mut out = Vec::new();
    let mut rest = value;
    while out.len() < MAX_LINKS {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let parsed =
            rest.strip_prefix('<')
                .and_then(|r| r.split_once('>'))
                .map(|(target, after)| {
                    let (rels, after) = params(after);
                    (
                        LinkValue {
                            target: target.trim().to_string(),
                            rels,
                        },
                        after,
                    )
                });
        match parsed {
            Some((link, after)) => {
                out.push(link);
                rest = after;
            }
            // Not a link-value: skip to the next comma outside quotes.
            None => rest = skip_to_comma(rest),
        }
    }
    out
}

/// The parameters after a target, up to the comma that ends the
/// link-value: the first `rel`'s relation types, and what follows.
fn params(mut s: &str) -> (Vec<String>, &str) {
    let mut rels: Option<Vec<String>> = None;
    loop {
        s = s.trim_start_matches([' ', '\t']);
        let Some(after) = s.strip_prefix(';') else {
            // A comma (the next link-value), the end, or junk up to a comma.
            return (rels.unwrap_or_default(), skip_to_comma(s));
        };
        let after = after.trim_start_matches([' ', '\t']);
        let name_end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)))
            .unwrap_or(after.len());
        let name = &after[..name_end];
        let mut tail = after[name_end..].trim_start_matches([' ', '\t']);
        let mut value = String::new();
        if let Some(v) = tail.strip_prefix('=') {
            let v = v.trim_start_matches([' ', '\t']);
            if let Some(q) = v.strip_prefix('"') {
                let (text, left) = quoted(q);
                value = text;
                tail = left;
            } else {
                let end = v.find([';', ',', ' ', '\t']).unwrap_or(v.len());
                value = v[..end].to_string();
                tail = &v[end..];
            }
        }
        if name.eq_ignore_ascii_case("rel") && rels.is_none() {
            rels = Some(
                value
                    .split_ascii_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect(),
            );
        }
        s = tail;
    }
}

/// A quoted-string's text (after its opening quote) and what follows its
/// closing quote (the rest of the input when it never closes).
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

/// The input from the next comma outside quotes and `<…>` on.
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

/// The target of the first link with relation type `next` in the
/// response's `Link` fields, resolved against `base` (the page's URL; RFC
/// 3986 §5), when it is an http or https URL.
pub fn next_link(fields: &Fields, base: &Url) -> Option<Url> {
    fields
        .get_all("link")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(parse_link)
        .find(|l| l.rels.iter().any(|r| r == "next"))
        .and_then(|l| base.join(&l.target).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(v: &str) -> Vec<(String, Vec<String>)> {
        parse_link(v)
            .into_iter()
            .map(|l| (l.target, l.rels))
            .collect()
    }

    #[test]
    fn github_style() {
        let v = "<https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", \
                 <https://api.github.com/repositories/1/issues?page=5>; rel=\"last\"";
        let got = rels(v);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].0,
            "https://api.github.com/repositories/1/issues?page=2"
        );
        assert_eq!(got[0].1, ["next"]);
        assert_eq!(got[1].1, ["last"]);
    }

    #[test]
    fn lists_case_and_unquoted_values() {
        assert_eq!(rels("</a>; REL=NEXT")[0].1, ["next"]);
        assert_eq!(rels("</a>; rel=\"prev next\"")[0].1, ["prev", "next"]);
        // Only the first rel counts.
        assert_eq!(rels("</a>; rel=prev; rel=next")[0].1, ["prev"]);
        // Commas inside the target and in quotes do not split.
        let got = rels("</a,b>; title=\"x, y\"; rel=next, </c>; rel=last");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("/a,b".to_string(), vec!["next".to_string()]));
        assert_eq!(rels("</q>; title=\"a \\\" b\"; rel=next")[0].1, ["next"]);
    }

    #[test]
    fn garbage_is_skipped_without_panicking() {
        assert!(rels("").is_empty());
        assert!(rels("nonsense, ;;;, \"<\"").is_empty());
        assert_eq!(rels("junk, </ok>; rel=next").len(), 1);
        assert_eq!(rels("</unterminated; rel=next").len(), 0);
        assert_eq!(rels("</a>; rel=\"next").len(), 1);
        let many = "</x>; rel=next, ".repeat(1000);
        assert_eq!(rels(&many).len(), MAX_LINKS);
        for s in ["<", ">", ";", "<>;=", "<a>;rel=", "<a>; =x", "é<é>;é=é"] {
            let _ = rels(s);
        }
    }

    #[test]
    fn relative_targets_resolve_against_the_page() {
        let base = Url::parse("http://h/items?page=1").unwrap();
        let target = &parse_link("<items?page=2>; rel=next")[0].target;
        assert_eq!(base.join(target).unwrap().as_str(), "http://h/items?page=2");
    }
}
