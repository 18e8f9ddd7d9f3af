//! The `parse_response` example (the proto example the README shows), run
//! through its `report` function on captures fed whole and in every piece
//! size: every response in order, and the errors it must name.

#![allow(clippy::field_reassign_with_default)]

// The example's own source, so the test runs exactly what `cargo run
// --example parse_response` runs (its `main` only reads the arguments and
// stdin).
#[allow(dead_code)]
#[path = "../examples/parse_response.rs"]
mod example;

use example::{report, Options};
use serde_json::{json, Value};

/// The report, checked to be the same for every `--feed` size.
fn run(input: &[u8], opts: &Options) -> Value {
    let whole = report(input, opts);
    for feed in 1..=input.len() {
        let split = report(
            input,
            &Options {
                feed,
                ..opts.clone()
            },
        );
        assert_eq!(whole, split, "--feed {feed} differs from whole");
    }
    whole
}

fn statuses(r: &Value) -> Vec<u64> {
    r["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_u64().unwrap())
        .collect()
}

fn bodies(r: &Value) -> Vec<&str> {
    r["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body_b64"].as_str().unwrap())
        .collect()
}

fn error(r: &Value) -> (Option<&str>, Option<u64>) {
    (r["error"]["kind"].as_str(), r["error"]["offset"].as_u64())
}

const TWO_KEPT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nxyz";

#[test]
fn every_kept_alive_response_is_reported_in_order_however_it_is_fed() {
    for eof in [true, false] {
        let r = run(
            TWO_KEPT,
            &Options {
                eof,
                ..Options::default()
            },
        );
        assert_eq!(statuses(&r), [200, 404], "eof {eof}");
        assert_eq!(bodies(&r), ["b2s=", "eHl6"]); // "ok", "xyz"
        assert_eq!(r["error"], Value::Null, "eof {eof}");
        assert!(r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["complete"] == json!(true)));
    }
    // Three, with a 1xx and a chunked one between.
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb";
    let r = run(input, &Options::default());
    assert_eq!(statuses(&r), [100, 204, 200, 200]);
    assert_eq!(r["messages"][2]["trailers"], json!([["X-T", "1"]]));
    assert_eq!(r["error"], Value::Null);
    // HEAD: no bodies, whatever the Content-Length.
    let input =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n";
    let r = run(
        input,
        &Options {
            head: true,
            ..Options::default()
        },
    );
    assert_eq!(
        (statuses(&r), r["error"].clone()),
        (vec![200, 200], Value::Null)
    );
}

#[test]
fn bytes_after_a_response_that_ended_the_connection_are_reported() {
    let close = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let input = [
        &close[..],
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nxyz",
    ]
    .concat();
    for eof in [true, false] {
        let r = run(
            &input,
            &Options {
                eof,
                ..Options::default()
            },
        );
        assert_eq!(statuses(&r), [200]);
        assert_eq!(
            error(&r),
            (Some("DataAfterClose"), Some(close.len() as u64)),
            "eof {eof}"
        );
    }
    // HTTP/1.0 without keep-alive, and a close-delimited body read to EOF.
    let input = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\nX";
    assert_eq!(
        error(&run(input, &Options::default())),
        (Some("DataAfterClose"), Some(38))
    );
    // Empty lines alone are not data.
    let r = run(&[&close[..], b"\r\n"].concat(), &Options::default());
    assert_eq!((statuses(&r), r["error"].clone()), (vec![200], Value::Null));
    // A close-delimited body ends with the input (cleanly only).
    let input = b"HTTP/1.1 200 OK\r\n\r\nall of it";
    let r = run(input, &Options::default());
    assert_eq!(
        (bodies(&r), r["error"].clone()),
        (vec!["YWxsIG9mIGl0"], Value::Null)
    );
    let r = run(
        input,
        &Options {
            unclean: true,
            ..Options::default()
        },
    );
    assert_eq!(error(&r), (Some("UncleanClose"), Some(input.len() as u64)));
    assert_eq!(r["messages"][0]["complete"], json!(false));
}

#[test]
fn broken_and_cut_off_responses_are_reported_where_they_break() {
    // Garbage where the next response should be: that response's error.
    let input = [&TWO_KEPT[..40], b"garbage\r\n"].concat();
    let r = run(&input, &Options::default());
    assert_eq!(statuses(&r), [200]);
    assert_eq!(error(&r), (Some("InvalidVersion"), Some(40)));
    // An invalid status line as soon as its line is complete.
    let r = run(
        b"HTTP/1.1 099 X\r\nContent-Le",
        &Options {
            eof: false,
            ..Options::default()
        },
    );
    assert_eq!(error(&r), (Some("InvalidStatusCode"), Some(9)));
    // Cut off: an error at the end of input, an unfinished message without.
    let cut = &TWO_KEPT[..TWO_KEPT.len() - 1];
    let r = run(cut, &Options::default());
    assert_eq!(statuses(&r), [200, 404]);
    assert_eq!(error(&r), (Some("IncompleteBody"), Some(cut.len() as u64)));
    let r = run(
        cut,
        &Options {
            eof: false,
            ..Options::default()
        },
    );
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["messages"][1]["complete"], json!(false));
    // Nothing at all.
    let r = run(b"", &Options::default());
    assert_eq!(error(&r), (Some("IncompleteHead"), Some(0)));
}
