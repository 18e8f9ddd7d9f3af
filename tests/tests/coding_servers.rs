//! Content codings against real servers on 127.0.0.1, each started by the
//! test from its Debian package: nginx with its brotli filter module (br,
//! gzip), Apache (mod_brotli, mod_deflate: br, gzip), Caddy (`encode zstd
//! gzip`), and httpbin's `/brotli`, `/gzip` and `/deflate`.
//!
//! Every asset ([`assets`]: text from 700 bytes to 3 MiB, and
//! incompressible bytes) decodes byte-identical to the file on disk, read
//! whole and in small reads (a 4 KiB receive buffer and a 997-byte poll
//! budget: the decoders get the body at most 997 socket bytes at a time),
//! and the server really coded it (its `Content-Encoding` is the one asked
//! for), so an uncoded answer cannot pass for a decoded one.

use std::time::Duration;

use pollhttp::{Completed, ContentCoding, HttpRequest, PollBudget, RequestResult};
use pollhttp_tests::apache::Apache;
use pollhttp_tests::caddy::Caddy;
use pollhttp_tests::coding::assets;
use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::nginx::{Nginx, NginxOptions};

/// Most socket bytes one poll reads in the small-reads runs.
const SMALL_READ: usize = 997;

fn fetch(url: &str, coding: ContentCoding, small_reads: bool) -> Completed {
    let mut req = HttpRequest::new();
    req.settings_mut().body.codings = vec![coding];
    if small_reads {
        req.settings_mut().recv_buffer_size = Some(4096);
        req.set_poll_budget(PollBudget::new(SMALL_READ, None));
    }
    req.request(url, &[], "GET", "").unwrap();
    pollhttp_tests::drive::run_request(&mut req, Duration::from_secs(120))
}

/// Each asset, in each of `codings`, whole and in small reads: decoded to
/// the file's bytes, coded by the server as asked (`may_be_uncoded`: the
/// assets the server may send as they are).
fn check_assets(
    server: &str,
    url_of: impl Fn(&str) -> String,
    codings: &[ContentCoding],
    may_be_uncoded: &[&str],
) {
    for (name, data) in assets() {
        for &coding in codings {
            for small_reads in [false, true] {
                let what = format!(
                    "{server} {name} {} small_reads={small_reads}",
                    coding.token()
                );
                let done = fetch(&url_of(name), coding, small_reads);
                assert_eq!(
                    done.result,
                    RequestResult::Success,
                    "{what}: {}",
                    done.reason
                );
                assert_eq!(done.response_code(), 200, "{what}");
                let encoding = done.headers().get_str("content-encoding");
                if !(may_be_uncoded.contains(&name) && encoding.is_none()) {
                    assert_eq!(encoding, Some(coding.token()), "{what}");
                }
                assert!(
                    done.body[..] == data[..],
                    "{what}: {} bytes decoded, the file has {}",
                    done.body.len(),
                    data.len()
                );
            }
        }
    }
}

#[test]
fn nginx_brotli_and_gzip_decode_byte_identical_whole_and_in_small_reads() {
    let Some(nginx) = Nginx::try_start_with(NginxOptions {
        brotli: true,
        big_file_len: 0,
        ..NginxOptions::default()
    }) else {
        return;
    };
    for (name, data) in assets() {
        std::fs::write(nginx.docroot.join(name), data).unwrap();
    }
    check_assets(
        "nginx",
        |name| nginx.url(&format!("/coded/{name}")),
        &[ContentCoding::Br, ContentCoding::Gzip],
        &[],
    );
}

#[test]
fn apache_brotli_and_deflate_modules_decode_byte_identical_whole_and_in_small_reads() {
    let Some(apache) = Apache::try_start() else {
        return;
    };
    for (name, data) in assets() {
        apache.write_file(name, &data);
    }
    check_assets(
        "apache",
        |name| apache.url(&format!("/{name}")),
        &[ContentCoding::Br, ContentCoding::Gzip],
        &[],
    );
    assert!(
        !apache.error_log().contains("[error]"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn caddy_zstd_and_gzip_decode_byte_identical_whole_and_in_small_reads() {
    let Some(caddy) = Caddy::try_start() else {
        return;
    };
    for (name, data) in assets() {
        caddy.write_file(name, &data);
    }
    // Caddy compresses text types only: the random bytes go as they are.
    check_assets(
        "caddy",
        |name| caddy.url(&format!("/{name}")),
        &[ContentCoding::Zstd, ContentCoding::Gzip],
        &["noise.bin"],
    );
}

#[test]
fn httpbin_brotli_gzip_and_deflate_decode_whole_and_in_small_reads() {
    let Some(hb) = Httpbin::try_shared() else {
        return;
    };
    for (path, coding, key) in [
        ("/brotli", ContentCoding::Br, "brotli"),
        ("/gzip", ContentCoding::Gzip, "gzipped"),
        ("/deflate", ContentCoding::Deflate, "deflated"),
    ] {
        for small_reads in [false, true] {
            let done = fetch(&hb.url(path), coding, small_reads);
            assert_eq!(
                done.result,
                RequestResult::Success,
                "{path}: {}",
                done.reason
            );
            assert_eq!(
                done.headers().get_str("content-encoding"),
                Some(coding.token()),
                "{path}"
            );
            let json: serde_json::Value = serde_json::from_slice(&done.body)
                .unwrap_or_else(|e| panic!("{path} small_reads={small_reads}: {e}"));
            assert_eq!(json[key], true, "{path}: {json}");
        }
    }
}
