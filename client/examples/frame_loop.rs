//! `frame_loop`: the loop to copy. A 60 fps frame loop downloads the URLs
//! it is given through one [`pollhttp::RequestPool`], polled once per frame
//! on the game's own thread: no worker thread, at most 2 ms of each frame.
//!
//! ```text
//! cargo run --release -p pollhttp --example frame_loop -- URL...
//! ```
//!
//! (`game_loop` is the measured version: an asset server, the frame-time
//! and throughput figures, the verdicts.)

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pollhttp::{PollBudget, PoolSettings, RequestBody, RequestPool, RequestResult, Settings};

const FRAME: Duration = Duration::from_nanos(16_666_667); // 60 fps

fn main() -> ExitCode {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        eprintln!("usage: frame_loop URL...");
        return ExitCode::from(2);
    }
    // One pool for the whole game: each poll() reads at most 4 MiB and
    // returns within about 2 ms.
    let settings = PoolSettings {
        poll_budget: PollBudget::new(4 << 20, Some(Duration::from_millis(2))),
        ..PoolSettings::default()
    };
    let Ok(mut pool) = RequestPool::with_settings(settings) else {
        eprintln!("frame_loop: cannot start a pool");
        return ExitCode::FAILURE;
    };
    let mut pending = 0;
    for url in &urls {
        let body = RequestBody::Empty;
        match pool.request(url.as_str(), &[], "GET", body, &Settings::default()) {
            Ok(_) => pending += 1,
            Err(e) => eprintln!("{url}: {e}"),
        }
    }

    let mut failed = 0;
    let mut next = Instant::now();
    // The game's loop (bounded here: at most ten minutes of frames).
    for _frame in 0..60 * 600 {
        if pending == 0 {
            break;
        }
        // 1. Network: one poll per frame, never blocking.
        pool.poll();
        while let Some((_id, done)) = pool.poll_completed() {
            pending -= 1;
            if done.result == RequestResult::Success {
                println!("{} {} bytes", done.response_code(), done.body.len());
            } else {
                failed += 1;
                println!("{}: {}", done.result, done.reason);
            }
        }
        // 2. The game's own update and render go here.

        // 3. Sleep out the rest of the frame.
        next += FRAME;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // a late frame: do not try to catch up
        }
    }
    if failed == 0 && pending == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
