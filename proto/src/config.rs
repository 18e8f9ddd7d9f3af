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
}
