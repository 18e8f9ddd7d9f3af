//! Benchmark support for pollhttp.

pub mod proto_fixtures {
    //! Wire inputs shared by the `proto` criterion bench and the allocation
    //! test: realistic response heads and ~1 MiB bodies in each framing.

    /// A ~300-byte, 9-field nginx-like response head (Content-Length: 0, so a
    /// reused connection goes Head → End with nothing else to decode).
    pub const HEAD_9: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 May 2024 09:12:31 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 0\r\n\
Last-Modified: Mon, 13 May 2024 17:45:02 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6642524e-267a3f\"\r\n\
Accept-Ranges: bytes\r\n\
Cache-Control: public, max-age=86400, immutable\r\n\
\r\n";

    /// A ~780-byte, 20-field response head (the 9 of [`HEAD_9`] plus cookies,
    /// CSP, Vary and the usual security fields), Content-Length: 0.
    pub const HEAD_20: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 May 2024 09:12:31 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 0\r\n\
Last-Modified: Mon, 13 May 2024 17:45:02 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6642524e-267a3f\"\r\n\
Accept-Ranges: bytes\r\n\
Cache-Control: public, max-age=86400, immutable\r\n\
Set-Cookie: sessionid=8f3a1c9e2b7d4f60; Path=/; HttpOnly; Secure\r\n\
Set-Cookie: csrftoken=Zx81kLq0Pw; Path=/; Secure; SameSite=Strict\r\n\
Content-Security-Policy: default-src 'self'; img-src 'self' data:\r\n\
Vary: Accept-Encoding, Cookie\r\n\
Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n\
X-Content-Type-Options: nosniff\r\n\
X-Frame-Options: SAMEORIGIN\r\n\
Referrer-Policy: strict-origin-when-cross-origin\r\n\
X-Request-Id: 4b1f0c2e-9d3a-4e7b-a6c5-0f8e2d1b3a97\r\n\
Age: 127\r\n\
Via: 1.1 varnish\r\n\
\r\n";

    /// Body size of the body fixtures: 1 MiB.
    pub const BODY_LEN: usize = 1 << 20;

    /// The body bytes (a repeating pattern, so corruption would show).
    pub fn body() -> Vec<u8> {
        (0..BODY_LEN).map(|i| (i % 251) as u8).collect()
    }

    /// A 200 response with a Content-Length body of [`BODY_LEN`] bytes.
    pub fn content_length_response() -> Vec<u8> {
        let mut out =
            format!("HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Length: {BODY_LEN}\r\n\r\n")
                .into_bytes();
        out.extend_from_slice(&body());
        out
    }

    /// A 200 response with a chunked body of [`BODY_LEN`] bytes cut into
    /// chunks of `chunk` bytes, no extensions, no trailers.
    pub fn chunked_response(chunk: usize) -> Vec<u8> {
        let mut out =
            b"HTTP/1.1 200 OK\r\nServer: bench\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body().chunks(chunk) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    /// The request every fixture answers: a tiny GET.
    pub const REQUEST_FIELDS: [(&str, &str); 1] = [("Host", "example.com")];
}
pub mod peer;

/// Poll `pool` (waiting up to 100 ms between polls) until `n` requests
/// completed, each with `Success`; fails after 120 s or at the first other
/// result.
///
/// # Errors
/// The first failed completion, or the time limit.
pub fn drain_pool(pool: &mut pollhttp::RequestPool, n: usize) -> Result<(), String> {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("{done} of {n} done in 120 s"));
        }
        pool.wait(Some(Duration::from_millis(100)));
        pool.poll();
        for (_, c) in pool.drain_completed() {
            if c.result != pollhttp::RequestResult::Success {
                return Err(format!("{}: {}", c.result, c.reason));
            }
            done += 1;
        }
    }
    Ok(())
}
