//! Limits and leniencies of a [`Connection`](crate::Connection).

/// Limits of a connection. Every limit has a default chosen so that a
/// well-behaved server never meets it and a hostile one cannot grow memory.
///
/// ```
/// let mut config = pollhttp_proto::Config::default();
/// config.body_size_limit = Some(10 << 20); // 10 MiB
/// config.lenient.bare_lf = true;
/// let conn = pollhttp_proto::Connection::new(config);
/// # let _ = conn;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest response head in bytes, status line through the empty line,
    /// whatever the read sizes. Default 65 536 (64 KiB).
    pub max_head_bytes: usize,
    /// Most field lines in one response head. Default 100.
    pub max_fields: usize,
    /// Largest trailer section in bytes. Default 16 384 (16 KiB).
    pub max_trailer_bytes: usize,
    /// Most field lines in a trailer section. Default 100.
    pub max_trailer_fields: usize,
    /// Most bytes of chunk extensions (everything between a chunk-size and its
    /// CRLF) in one message. Default 16 384 (16 KiB; hyper's and Node's bound).
    pub max_chunk_extension_bytes: usize,
    /// Largest message body in bytes, or `None` for no limit. Default `None`
    /// (as Godot's HTTPRequest `body_size_limit` -1).
    pub body_size_limit: Option<u64>,
    /// Most bytes one [`Event::Body`](crate::Event::Body) carries. Default
    /// 65 536 (Godot's HTTPClient `read_chunk_size`). 0 is treated as 1.
    pub read_chunk_size: usize,
    /// Most bytes [`Connection::recv_buf`](crate::Connection::recv_buf)
    /// lends at once. Default 65 536. Each response starts with 8 KiB of
    /// room (or this, if smaller), doubled after each read that filled it up
    /// to this size and halved after two short reads in a row
    /// ([`ReadSize`](crate::ReadSize)). Larger values mean fewer reads per
    /// megabyte.
    pub recv_buf_size: usize,
    /// Response-only relaxations of RFC 9112. All off by default.
    pub lenient: Leniency,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_head_bytes: 64 * 1024,
            max_fields: 100,
            max_trailer_bytes: 16 * 1024,
            max_trailer_fields: 100,
            max_chunk_extension_bytes: 16 * 1024,
            body_size_limit: None,
            read_chunk_size: 64 * 1024,
            recv_buf_size: 64 * 1024,
            lenient: Leniency::default(),
        }
    }
}

/// Response-only leniencies, each relaxing exactly one rule of RFC 9112 that
/// some real servers break. All default to `false` (strict).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leniency {
    /// Accept a bare LF as the line terminator of the status line, field lines
    /// and trailer lines (RFC 9112 §2.2: a recipient MAY). Chunk framing lines
    /// stay strict CRLF.
    pub bare_lf: bool,
    /// Accept obs-fold in response fields and unfold it by replacing each
    /// obs-fold with SP, as RFC 9112 §5.2 says a user agent does.
    pub obs_fold: bool,
    /// Accept a response with both Transfer-Encoding and Content-Length: the
    /// body is framed by Transfer-Encoding, Content-Length is ignored, and the
    /// connection is closed afterwards (RFC 9112 §6.3 rule 3).
    pub content_length_with_transfer_encoding: bool,
    /// Accept a chunked body that ends with the last-chunk (`0\r\n`) followed by
    /// the end of the connection, without the final CRLF of the trailer section
    /// (a known server bug; ureq #325). The connection is not reused.
    pub last_chunk_then_eof: bool,
    /// Accept whitespace between a response field's name and its colon
    /// (`Name : value`; RFC 9112 §5.1 says a server MUST reject it in a
    /// request and a proxy MUST remove it from a response): the name is
    /// taken without the whitespace, as curl and browsers take it.
    pub whitespace_before_colon: bool,
}

impl Leniency {
    /// Every leniency on: what curl lets pass, and a chunked body cut after
    /// its last-chunk (which curl fails).
    pub fn all() -> Leniency {
        Leniency {
            bare_lf: true,
            obs_fold: true,
            content_length_with_transfer_encoding: true,
            last_chunk_then_eof: true,
            whitespace_before_colon: true,
        }
    }

    /// The name of each leniency, as its field is named.
    pub const NAMES: [&'static str; 5] = [
        "bare_lf",
        "obs_fold",
        "whitespace_before_colon",
        "content_length_with_transfer_encoding",
        "last_chunk_then_eof",
    ];

    /// Turn on the leniency named `name` (its field's name; `-` may stand
    /// for `_`, any case). Returns `false`, changing nothing, for a name
    /// that is not one of [`NAMES`](Self::NAMES).
    pub fn enable(&mut self, name: &str) -> bool {
        let mut key = [0u8; 40];
        if name.len() > key.len() {
            return false;
        }
        for (k, b) in key.iter_mut().zip(name.bytes()) {
            *k = if b == b'-' {
                b'_'
            } else {
                b.to_ascii_lowercase()
            };
        }
        let flag = match &key[..name.len()] {
            b"bare_lf" => &mut self.bare_lf,
            b"obs_fold" => &mut self.obs_fold,
            b"whitespace_before_colon" => &mut self.whitespace_before_colon,
            b"content_length_with_transfer_encoding" => {
                &mut self.content_length_with_transfer_encoding
            }
            b"last_chunk_then_eof" => &mut self.last_chunk_then_eof,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// The leniency that would accept the response `error` refused, by
    /// name ([`NAMES`](Self::NAMES)); `None` when no leniency covers it.
    pub fn accepting(error: &crate::Error) -> Option<&'static str> {
        use crate::Error as E;
        Some(match error {
            E::BareLineFeed { .. } => "bare_lf",
            E::ObsFold { .. } => "obs_fold",
            E::WhitespaceBeforeColon { .. } => "whitespace_before_colon",
            E::ContentLengthWithTransferEncoding { .. } => "content_length_with_transfer_encoding",
            E::LastChunkThenEof { .. } => "last_chunk_then_eof",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn every_name_turns_on_its_own_leniency_and_no_other() {
        let mut all = Leniency::default();
        for name in Leniency::NAMES {
            let mut one = Leniency::default();
            assert!(one.enable(name), "{name}");
            assert_ne!(one, Leniency::default(), "{name}");
            let mut dashed = Leniency::default();
            assert!(dashed.enable(&name.replace('_', "-").to_uppercase()));
            assert_eq!(dashed, one, "{name}");
            all.enable(name);
        }
        assert_eq!(all, Leniency::all());
        let mut none = Leniency::default();
        assert!(!none.enable("bare"));
        assert!(!none.enable(&"x".repeat(100)));
        assert_eq!(none, Leniency::default());
    }

    #[test]
    fn each_leniency_names_the_error_it_accepts() {
        use crate::Error as E;
        let errors = [
            E::BareLineFeed { offset: 0 },
            E::ObsFold { offset: 0 },
            E::WhitespaceBeforeColon { offset: 0 },
            E::ContentLengthWithTransferEncoding { offset: 0 },
            E::LastChunkThenEof {
                offset: 0,
                received: 0,
            },
        ];
        let names: Vec<_> = errors.iter().map(Leniency::accepting).collect();
        let expected: Vec<_> = Leniency::NAMES.iter().map(|n| Some(*n)).collect();
        assert_eq!(names, expected);
        assert_eq!(
            Leniency::accepting(&E::IncompleteChunkedBody {
                offset: 0,
                received: 0
            }),
            None
        );
    }
}
