//! `idle_memory`: what an idle keep-alive connection costs in a
//! `RequestPool` (issue 8: ≤ 16 KiB per plain connection, ≤ 64 KiB per TLS
//! connection, rustls included; ureq keeps about 512 KiB per pooled TLS
//! connection).
//!
//! ```text
//! idle_memory [--connections N]     (default 500; nginx is started with
//!                                    room for 2N connections)
//! ```
//!
//! For plain HTTP and for TLS: open N connections to nginx at once (N GETs
//! of a 13-byte file with N connections allowed), let them all go idle in the
//! pool, and report the heap still allocated (a counting allocator: live
//! bytes) from before the first request to when all N are idle, divided by
//! N — what the idle connections keep, rustls included. The growth of the
//! resident set (VmRSS) is printed beside it: an upper bound that also counts
//! memory the allocator keeps after it was freed. The kernel's socket buffers
//! are in neither.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use pollhttp::{PoolSettings, RequestPool, Settings, TlsOptions};
use pollhttp_tests::nginx::{Nginx, NginxOptions};

/// Live heap bytes, counted by the allocator below.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// A GlobalAlloc impl is `unsafe` by definition (the crate denies unsafe code;
// this is its second use, as in tests/alloc.rs). Every method forwards to
// `System` and only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn rss_kib() -> u64 {
    pollhttp_benches::peer::status_kib(None, "VmRSS").unwrap_or(0)
}

fn run(nginx: &Nginx, n: usize, tls: bool) -> Result<(f64, f64), String> {
    let mut pool = RequestPool::with_settings(PoolSettings {
        max_connections: n,
        max_connections_per_origin: n,
        max_idle: n,
        max_idle_per_origin: n,
        poll_budget: pollhttp::PollBudget::new(usize::MAX, Some(Duration::from_secs(1))),
        ..PoolSettings::default()
    })
    .map_err(|e| e.to_string())?;
    let settings = Settings {
        tls: tls
            .then(|| TlsOptions::with_root_pem(nginx.ca_pem.as_bytes()))
            .transpose()
            .map_err(|e| e.to_string())?,
        ..Settings::default()
    };
    let url = if tls {
        nginx.url_tls("/hello.txt")
    } else {
        nginx.url("/hello.txt")
    };
    // Warm up the allocator and the TLS configuration with one request.
    pool.get(&url, &settings).map_err(|e| e.to_string())?;
    pollhttp_benches::drain_pool(&mut pool, 1)?;
    let before = rss_kib();
    let live_before = LIVE.load(Ordering::Relaxed);
    for _ in 0..n {
        pool.get(&url, &settings).map_err(|e| e.to_string())?;
    }
    pollhttp_benches::drain_pool(&mut pool, n)?;
    // Connections that went idle give their buffers back at the next poll
    // (one that a waiting request takes at once keeps them).
    pool.poll();
    let idle = pool.idle_connections();
    if idle < n * 9 / 10 {
        return Err(format!("only {idle} of {n} connections idle"));
    }
    let live = (LIVE.load(Ordering::Relaxed) - live_before) as f64 / 1024.0 / idle as f64;
    let after = rss_kib();
    Ok((live, (after.saturating_sub(before)) as f64 / idle as f64))
}

fn main() -> ExitCode {
    let mut n = 500;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--connections", Some(v)) => n = v.parse().unwrap_or(n),
            _ => {
                eprintln!("usage: idle_memory [--connections N]");
                return ExitCode::FAILURE;
            }
        }
    }
    // Each connection is one of nginx's, with room to spare.
    let nginx = Nginx::start_with(NginxOptions {
        worker_connections: (2 * n + 64) as u32,
        ..NginxOptions::default()
    });
    let mut json = serde_json::Map::new();
    for (name, tls, target) in [("plain", false, 16.0), ("tls", true, 64.0)] {
        match run(&nginx, n, tls) {
            Ok((heap, rss)) => {
                println!(
                    "{name}: {heap:.1} KiB of heap per idle connection over {n} (target <= {target} KiB); RSS grew {rss:.1} KiB per connection"
                );
                json.insert(format!("{name}_heap_kib_per_idle_connection"), heap.into());
                json.insert(format!("{name}_rss_kib_per_idle_connection"), rss.into());
            }
            Err(e) => {
                eprintln!("idle_memory: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    json.insert("connections".into(), n.into());
    println!("{}", serde_json::Value::Object(json));
    ExitCode::SUCCESS
}
