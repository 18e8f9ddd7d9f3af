//! What does the parser make of a capture? Reads one connection's worth of
//! response bytes from stdin and prints one JSON object.
//!
//! ```text
//! cargo run -p pollhttp-proto --example parse_response -- [--feed N] [--head] [--no-eof] [--unclean-eof] [--lenient NAME,…] < capture.bin
//! ```
//!
//! * `--feed N`: hand the bytes to the parser N at a time (default: all at once).
//! * `--head`: every request on this connection was HEAD (no bodies).
//! * `--no-eof`: the end of input is not the end of the connection: an
//!   unfinished message is reported with `"complete": false`, not as an error.
//! * `--unclean-eof`: the input ended without proof it was complete (a TLS
//!   capture without `close_notify`, a reset): a close-delimited body then
//!   ends in `UncleanClose`.
//! * `--lenient NAME,…`: turn on leniencies of `pollhttp_proto::Leniency`
//!   by field name (`bare_lf`, `obs_fold`, `whitespace_before_colon`,
//!   `content_length_with_transfer_encoding`, `last_chunk_then_eof`; `all`
//!   for every one), to check a capture under the leniencies a user enables.
//!
//! Output: `{"messages": [{"status", "reason", "version", "headers",
//! "body_b64", "trailers", "chunked", "complete"}...], "error": null | {"kind",
//! "offset", "message"}, "lenient": [NAME…]}`. Every response in the input is
//! a message, in order (each response on a kept-alive connection answers the
//! next request; interim 1xx responses are messages of their own), however
//! the input is fed. `error` is the first error: a broken response (an
//! invalid status line as soon as its line is complete), bytes after a
//! response that ended the connection (`DataAfterClose`; empty lines are
//! skipped), or a message cut off by the end of input.

use std::io::Read;

use base64::Engine;
use pollhttp_proto::{
    CloseReason, Config, Connection, Error, Event, Fields, Leniency, MessageBodyLength,
};
use serde_json::{json, Value};

fn fields_json(fields: &Fields) -> Value {
    fields
        .iter()
        .map(|f| json!([f.name(), String::from_utf8_lossy(f.value())]))
        .collect()
}

struct Message {
    json: Value,
    body: Vec<u8>,
}

/// Every leniency by its field name. The destructuring has no `..`: a new
/// `Leniency` field does not compile until it is named here.
fn leniencies(l: &mut Leniency) -> [(&'static str, &mut bool); 5] {
    let Leniency {
        bare_lf,
        obs_fold,
        content_length_with_transfer_encoding,
        last_chunk_then_eof,
        whitespace_before_colon,
    } = l;
    [
        ("bare_lf", bare_lf),
        ("obs_fold", obs_fold),
        ("whitespace_before_colon", whitespace_before_colon),
        (
            "content_length_with_transfer_encoding",
            content_length_with_transfer_encoding,
        ),
        ("last_chunk_then_eof", last_chunk_then_eof),
    ]
}

/// Turn on the comma-separated leniencies `names`.
fn set_lenient(lenient: &mut Leniency, names: &str) -> Result<(), String> {
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mut found = false;
        for (field, on) in leniencies(lenient) {
            if name == field || name == "all" {
                *on = true;
                found = true;
            }
        }
        if !found {
            let known: Vec<&str> = leniencies(&mut Leniency::default())
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            return Err(format!(
                "unknown leniency {name:?} (known: {}, all)",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// How to read a capture: the command line's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes handed to the parser at a time.
    pub feed: usize,
    /// Every request on the connection was HEAD.
    pub head: bool,
    /// The end of the input is the end of the connection.
    pub eof: bool,
    /// ... without proof that it was complete.
    pub unclean: bool,
    /// Limits and leniencies.
    pub config: Config,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            feed: usize::MAX,
            head: false,
            eof: true,
            unclean: false,
            config: Config::default(),
        }
    }
}

/// Send the next request (its bytes are not part of the capture).
fn request(conn: &mut Connection, method: &str) {
    conn.send_request(method, "/", [("Host", "capture")])
        .expect("a valid request");
    let n = conn.transmit_buf().len();
    conn.advance_transmit(n);
}

/// Where the responses of a capture end, but the last: the offsets after
/// which the client had sent its next request. A capture holds the answers
/// to requests sent one after another, but handed to one connection at once
/// the bytes past a response would arrive before the request they answer,
/// and the connection rightly refuses them (`CloseReason::UnsolicitedData`).
/// So one quick pass finds the ends (a fresh connection per response), and
/// the real pass holds its input at each until the next request is sent.
fn response_ends(input: &[u8], config: &Config, method: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut base = 0;
    'response: loop {
        let mut conn = Connection::new(config.clone());
        request(&mut conn, method);
        conn.receive(&input[base..]);
        loop {
            match conn.poll_event() {
                Ok(Some(Event::End)) => {
                    if conn.close_reason() != Some(CloseReason::UnsolicitedData) {
                        return ends;
                    }
                    base += conn.input_offset() as usize;
                    ends.push(base);
                    continue 'response;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return ends,
            }
        }
    }
}

/// An error as JSON.
fn error_json(e: &Error) -> Value {
    json!({"kind": e.kind(), "offset": e.offset(), "message": e.to_string()})
}

/// What the parser makes of one connection's worth of response bytes: every
/// response in order (interim 1xx ones as messages of their own), then the
/// first error: a broken response, bytes after a response that ended the
/// connection (`DataAfterClose`), or a cut-off one at the end of input.
pub fn report(input: &[u8], opts: &Options) -> Value {
    let mut config = opts.config.clone();
    let method = if opts.head { "HEAD" } else { "GET" };
    let lenient: Vec<&str> = leniencies(&mut config.lenient)
        .into_iter()
        .filter(|(_, on)| **on)
        .map(|(n, _)| n)
        .collect();
    // Pieces of `feed` bytes, cut at the end of every response but the last
    // too (see `response_ends`).
    let mut cuts: Vec<usize> = (1..input.len().div_ceil(opts.feed.max(1)))
        .map(|i| i * opts.feed)
        .collect();
    cuts.extend(response_ends(input, &opts.config, method));
    cuts.push(input.len());
    cuts.sort_unstable();
    cuts.dedup();

    let mut conn = Connection::new(opts.config.clone());
    request(&mut conn, method);
    let mut messages: Vec<Message> = Vec::new();
    let mut current: Option<Message> = None;
    let mut error = Value::Null;
    let mut from = 0;
    // Each piece, then the end of input; after each, every event.
    'feed: for piece in cuts.iter().map(Some).chain([None]) {
        match piece {
            Some(&to) => {
                conn.receive(&input[from..to]);
                from = to;
            }
            None if opts.eof && opts.unclean => conn.receive_unclean_eof(),
            None if opts.eof => conn.receive_eof(),
            None => {}
        }
        loop {
            match conn.poll_event() {
                Ok(None) => break,
                Ok(Some(Event::Informational(h))) | Ok(Some(Event::Head(h))) => {
                    let mut m = Message {
                        json: json!({
                            "status": h.status(),
                            "reason": String::from_utf8_lossy(h.reason()),
                            "version": h.version().as_str(),
                            "headers": fields_json(h.fields()),
                            "trailers": [],
                            "chunked": h.body_length() == MessageBodyLength::Chunked,
                            "complete": false,
                        }),
                        body: Vec::new(),
                    };
                    if h.is_informational() && h.status() != 101 {
                        m.json["complete"] = json!(true);
                        messages.push(m);
                    } else {
                        current = Some(m);
                    }
                }
                Ok(Some(Event::Body(b))) => {
                    if let Some(m) = current.as_mut() {
                        m.body.extend_from_slice(&b);
                    }
                }
                Ok(Some(Event::Trailers(t))) => {
                    if let Some(m) = current.as_mut() {
                        m.json["trailers"] = fields_json(&t);
                    }
                }
                Ok(Some(Event::End)) => {
                    if let Some(mut m) = current.take() {
                        m.json["complete"] = json!(true);
                        messages.push(m);
                    }
                    match conn.close_reason() {
                        // The next request, if the capture holds its answer.
                        None if (conn.input_offset() as usize) < input.len() => {
                            conn.reset().expect("reusable");
                            request(&mut conn, method);
                        }
                        None => {}
                        // Input held at each response's end: bytes past
                        // this one came before its End (not expected).
                        Some(CloseReason::UnsolicitedData) => {
                            let mut e = error_json(&Error::UnsolicitedData);
                            e["offset"] = json!(conn.input_offset());
                            error = e;
                            break 'feed;
                        }
                        // Another protocol: the rest is not HTTP.
                        Some(CloseReason::SwitchingProtocols | CloseReason::Tunnel) => {
                            break 'feed;
                        }
                        // The connection ends with this response: polling on
                        // reports any byte after it (`DataAfterClose`).
                        Some(_) => {}
                    }
                }
                Err(e) => {
                    error = error_json(&e);
                    break 'feed;
                }
            }
        }
    }
    if let Some(m) = current.take() {
        messages.push(m);
    }
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|mut m| {
            m.json["body_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(&m.body));
            m.json
        })
        .collect();
    json!({"messages": messages, "error": error, "lenient": lenient})
}

// A tool at the edge of the crate: it reads stdin, which the library itself never does.
#[allow(clippy::disallowed_methods)]
fn main() {
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--feed" => {
                opts.feed = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .unwrap_or_else(|| usage("--feed needs a positive number"))
            }
            "--head" => opts.head = true,
            "--no-eof" => opts.eof = false,
            "--unclean-eof" => opts.unclean = true,
            "--lenient" => {
                let names = args
                    .next()
                    .unwrap_or_else(|| usage("--lenient needs NAME,…"));
                if let Err(e) = set_lenient(&mut opts.config.lenient, &names) {
                    usage(&e);
                }
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        usage(&format!("cannot read stdin: {e}"));
    }
    println!("{}", report(&input, &opts));
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("parse_response: {msg}");
    }
    eprintln!(
        "usage: parse_response [--feed N] [--head] [--no-eof] [--unclean-eof] [--lenient NAME,…] < capture"
    );
    std::process::exit(2)
}
