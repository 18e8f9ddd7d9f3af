//! A response stream fed to a `Connection` in pieces, under a Config with
//! small limits and leniencies chosen by the input.
//!
//! Input layout:
//!   [0] flags: bit0 bare_lf, bit1 obs_fold, bit2 content_length_with_transfer_encoding,
//!       bit3 last_chunk_then_eof, bit4 EOF after the input, bits5-7 request (mod 5:
//!       GET, HEAD, CONNECT, POST with an unfinished Content-Length body, POST with an
//!       unfinished chunked body)
//!   [1] max_head_bytes   [2] max_fields        [3] read_chunk_size
//!   [4] body_size_limit  [5] max_trailer_bytes [6] max_chunk_extension_bytes
//!   [7] max_trailer_fields [8] recv_buf_size
//!       (each: high bit = default, else a small value, 0 included)
//!   [9] cuts: low nibble = count, bit4 = cut before every byte; then one gap byte per cut
//!   rest: the response stream
//!
//! Invariants (see `pollhttp_fuzz::Run`): body events non-empty, at most
//! read_chunk_size, the very bytes of the input; body per message within
//! body_size_limit; heads within max_head_bytes and max_fields, strict CRLF
//! unless bare_lf; every event but End consumes input (bounded event count);
//! input_offset + buffered == bytes fed; bytes out <= bytes in; errors are sticky
//! (poll_event, reset, send_request) and their offset within the input; a full
//! recv_buf always lets poll_event progress; wants_receive is exactly "poll_event
//! cannot progress without input"; the public states agree with the predicates;
//! the outcome of the split run equals that of the whole run; and with EOF, an
//! unclean end of input gives the same outcome as a clean one except that a
//! close-delimited body ends in UncleanClose instead of End.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollhttp_fuzz::{check_split_independence, limit, End, Out, Reader, Req, Run};
use pollhttp_proto::{Config, Error, MessageBodyLength};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let flags = r.byte();
    let mut config = Config::default();
    config.lenient.bare_lf = flags & 1 != 0;
    config.lenient.obs_fold = flags & 2 != 0;
    config.lenient.content_length_with_transfer_encoding = flags & 4 != 0;
    config.lenient.last_chunk_then_eof = flags & 8 != 0;
    let eof = flags & 16 != 0;
    let req = Req::from_byte(flags >> 5);
    config.max_head_bytes = limit(r.byte(), 2, config.max_head_bytes);
    config.max_fields = limit(r.byte(), 1, config.max_fields);
    config.read_chunk_size = limit(r.byte(), 1, config.read_chunk_size);
    let b = r.byte();
    config.body_size_limit = (b & 0x80 == 0).then(|| 3 * u64::from(b));
    config.max_trailer_bytes = limit(r.byte(), 2, config.max_trailer_bytes);
    config.max_chunk_extension_bytes = limit(r.byte(), 1, config.max_chunk_extension_bytes);
    config.max_trailer_fields = limit(r.byte(), 1, config.max_trailer_fields);
    config.recv_buf_size = limit(r.byte(), 1, config.recv_buf_size);
    let cuts = r.cuts(|n| n);
    let input = r.rest();
    let run = Run {
        config,
        req,
        input,
        end: if eof { End::Clean } else { End::Open },
        // With EOF the whole run never reuses the connection; a split run that
        // saw End before the EOF may (compared up to the first End).
        max_responses: 3,
    };
    let clean = check_split_independence(&run, &cuts);
    if !eof {
        return;
    }
    // The same stream ended without proof that it was complete: the same
    // outcome, except that a close-delimited body ends in UncleanClose at the
    // end of the input instead of End.
    let unclean = check_split_independence(
        &Run {
            end: End::Unclean,
            ..run.clone()
        },
        &cuts,
    );
    let mut expected = clean.clone();
    let last_framing = clean.events.iter().rev().find_map(|e| match e {
        Out::Head(h) => Some(h.body),
        _ => None,
    });
    if last_framing == Some(MessageBodyLength::CloseDelimited)
        && matches!(clean.events.last(), Some(Out::End(_)))
    {
        expected.events.pop();
        expected.error = Some(Error::UncleanClose {
            offset: input.len() as u64,
        });
        expected.consumed = None;
    }
    assert_eq!(unclean, expected, "unclean end of input");
});
