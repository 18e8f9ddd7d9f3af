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
//!   by field name (`bare_lf`, `obs_fold`,
//!   `content_length_with_transfer_encoding`, `last_chunk_then_eof`; `all`
//!   for every one), to check a capture under the leniencies a user enables.
//!
//! Output: `{"messages": [{"status", "reason", "version", "headers",
//! "body_b64", "trailers", "chunked", "complete"}...], "error": null | {"kind",
//! "offset", "message"}, "lenient": [NAME…]}`. Interim 1xx responses are
//! messages of their own.

use std::io::Read;

use base64::Engine;
use pollhttp_proto::{Config, Connection, Event, Fields, Leniency, MessageBodyLength};
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
fn leniencies(l: &mut Leniency) -> [(&'static str, &mut bool); 4] {
    let Leniency {
        bare_lf,
        obs_fold,
        content_length_with_transfer_encoding,
        last_chunk_then_eof,
    } = l;
    [
        ("bare_lf", bare_lf),
        ("obs_fold", obs_fold),
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

// A tool at the edge of the crate: it reads stdin, which the library itself never does.
#[allow(clippy::disallowed_methods)]
fn main() {
    let mut feed = usize::MAX;
    let mut head = false;
    let mut eof = true;
    let mut unclean = false;
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--feed" => {
                feed = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .unwrap_or_else(|| usage("--feed needs a positive number"))
            }
            "--head" => head = true,
            "--no-eof" => eof = false,
            "--unclean-eof" => unclean = true,
            "--lenient" => {
                let names = args
                    .next()
                    .unwrap_or_else(|| usage("--lenient needs NAME,…"));
                if let Err(e) = set_lenient(&mut config.lenient, &names) {
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

    let method = if head { "HEAD" } else { "GET" };
    let lenient: Vec<&str> = leniencies(&mut config.lenient.clone())
        .into_iter()
        .filter(|(_, on)| **on)
        .map(|(n, _)| n)
        .collect();
    let end_input = |conn: &mut Connection| {
        if unclean {
            conn.receive_unclean_eof();
        } else {
            conn.receive_eof();
        }
    };
    let mut conn = Connection::new(config);
    let request = |conn: &mut Connection| {
        conn.send_request(method, "/", [("Host", "capture")])
            .expect("a valid request");
        let n = conn.transmit_buf().len();
        conn.advance_transmit(n);
    };
    request(&mut conn);

    let mut messages: Vec<Message> = Vec::new();
    let mut current: Option<Message> = None;
    let mut error = Value::Null;
    let mut pieces = input.chunks(feed.min(input.len().max(1))).peekable();
    'feed: loop {
        match pieces.next() {
            Some(piece) => conn.receive(piece),
            None => {
                if eof {
                    end_input(&mut conn);
                }
            }
        }
        let last = pieces.peek().is_none();
        if last && eof {
            end_input(&mut conn);
        }
        loop {
            match conn.poll_event() {
                Ok(None) => break,
                Ok(Some(Event::Informational(h))) | Ok(Some(Event::Head(h))) => {
                    let m = Message {
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
                        let mut m = m;
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
                    if conn.can_reuse() {
                        conn.reset().expect("reusable");
                        request(&mut conn);
                    } else {
                        break 'feed;
                    }
                }
                Err(e) => {
                    error =
                        json!({"kind": e.kind(), "offset": e.offset(), "message": e.to_string()});
                    break 'feed;
                }
            }
        }
        if last {
            break;
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
    println!(
        "{}",
        json!({"messages": messages, "error": error, "lenient": lenient})
    );
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
