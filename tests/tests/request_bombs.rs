//! Decompression bombs of 1 GiB (br, zstd, gzip) stopped at the body size
//! limit, with the memory the request takes for them bounded: the RSS
//! growth stays under 8 MiB (the decoder's window included) for the
//! encoders' usual windows, and under the window plus 2 MiB for br's
//! largest (16 MiB, RFC 7932).
//!
//! The memory is measured in a child process that runs only the client:
//! this test binary run again on one ignored test
//! (`child_fetches_one_bomb`), which resets its peak RSS
//! (`/proc/self/clear_refs`), fetches the bomb from the parent's server
//! into `/dev/null` with a 256 MiB limit (as `decode_bench` does), and
//! prints its RSS before and its peak after. The bombs' coded bytes stay in
//! the parent, so the figure is the request's own.

use std::process::Command;
use std::time::Duration;

use pollhttp::{HttpRequest, RequestResult};
use pollhttp_tests::script::{response, ScriptServer, Step};

const LIMIT: u64 = 256 << 20;

/// The child: fetch `POLLHTTP_BOMB_URL` into `/dev/null` with the limit,
/// print `BOMB <result> <decoded bytes> <RSS before KiB> <peak KiB>`
/// (runs only when the parent sets the variable).
#[test]
#[ignore = "run by the bomb tests as their child"]
fn child_fetches_one_bomb() {
    let Ok(url) = std::env::var("POLLHTTP_BOMB_URL") else {
        return;
    };
    let mut req = HttpRequest::new();
    req.settings_mut().body.size_limit = Some(LIMIT);
    req.settings_mut().body.download_file = Some("/dev/null".into());
    req.settings_mut().body.codings = pollhttp::ContentCoding::ALL.to_vec();
    // The peak from here on: what the request takes.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before = pollhttp_tests::process::status_kib("VmRSS");
    req.request(&url, &[], "GET", "").unwrap();
    let done = pollhttp_tests::drive::run_request(&mut req, Duration::from_secs(300));
    println!(
        "BOMB {:?} {} {before} {}",
        done.result,
        done.body_bytes,
        pollhttp_tests::process::status_kib("VmHWM")
    );
}

/// Serve `bomb` as a `coding` body to the child; its (result, decoded
/// bytes, RSS growth in KiB).
fn fetch_in_child(coding: &str, bomb: Vec<u8>) -> (String, u64, u64) {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response("200 OK", &[("Content-Encoding", coding)], &bomb)),
    ]]);
    drop(bomb);
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_fetches_one_bomb",
        "--ignored",
        "--nocapture",
    ])
    .args(["--test-threads", "1"])
    .env("POLLHTTP_BOMB_URL", server.base_url());
    let out = pollhttp_tests::process::run_bounded(cmd, Duration::from_secs(300));
    let text = out.stdout_text();
    let line = text
        .lines()
        .find_map(|l| l.split_once("BOMB ").map(|(_, report)| report))
        .unwrap_or_else(|| panic!("no report from the child:\n{text}\n{}", out.stderr));
    let f: Vec<&str> = line.split_whitespace().collect();
    let (before, peak): (u64, u64) = (f[2].parse().unwrap(), f[3].parse().unwrap());
    println!(
        "{coding}: {line} (growth {} KiB)",
        peak.saturating_sub(before)
    );
    (
        f[0].to_string(),
        f[1].parse().unwrap(),
        peak.saturating_sub(before),
    )
}

/// The `coding` bomb (br with a `lgwin`-bit window) stops at the limit,
/// the request growing the RSS by less than `max_mib`.
fn assert_stopped_small(coding: &str, lgwin: u32, max_mib: u64) {
    let coded = pollhttp_tests::coding::bomb(coding, lgwin);
    assert!(
        coded.len() < 2 << 20,
        "{coding}: a bomb ({} bytes)",
        coded.len()
    );
    let (result, decoded, growth_kib) = fetch_in_child(coding, coded);
    assert_eq!(
        result,
        format!("{:?}", RequestResult::BodySizeLimitExceeded)
    );
    // Stopped at the limit: at most one decoder output short of it.
    assert!(
        decoded <= LIMIT && decoded > LIMIT - (1 << 20),
        "{coding}: {decoded}"
    );
    assert!(
        growth_kib < max_mib << 10,
        "{coding}: the request took {growth_kib} KiB of RSS"
    );
}

/// br's encoder default window (22 bits, 4 MiB), as `decode_bench`'s bomb:
/// the window and a few buffers. (Before, the dropped decoder finished
/// decoding its last input into a sink without a limit: 13 MiB.)
#[test]
fn a_1_gib_br_bomb_stops_at_the_limit_in_under_8_mib() {
    assert_stopped_small("br", 22, 8);
}

/// The largest window RFC 7932 allows (24 bits, 16 MiB): the decoder holds
/// it (the stream declares it), and little more. (A "Large Window Brotli"
/// stream, up to 1 GiB, is refused: `request_codings.rs`.)
#[test]
fn a_1_gib_br_bomb_with_the_largest_window_holds_it_and_under_2_mib_more() {
    assert_stopped_small("br", 24, 18);
}

/// zstd's window is held to 8 MiB (RFC 9659); level 3's is smaller.
#[test]
fn a_1_gib_zstd_bomb_stops_at_the_limit_in_under_8_mib() {
    assert_stopped_small("zstd", 0, 8);
}

#[test]
fn a_1_gib_gzip_bomb_stops_at_the_limit_in_under_8_mib() {
    assert_stopped_small("gzip", 0, 8);
}
