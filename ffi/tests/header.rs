//! The committed header is what cbindgen generates from the crate now, and
//! `unsafe` stays in the two modules the crate docs name.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn committed_header_is_fresh() {
    let path = crate_dir().join("include/pollhttp.h");
    let fresh = generate();
    if std::env::var_os("POLLHTTP_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} differs from a fresh cbindgen generation: run \
         `POLLHTTP_BLESS=1 cargo test -p pollhttp-ffi --test header` and commit it",
        path.display()
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn unsafe_blocks_live_in_raw_rs_only() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let blocks = code.matches("unsafe {").count()
            + code.matches("unsafe fn").count()
            + code.matches("unsafe impl").count();
        if name == "raw.rs" {
            assert!(blocks > 0);
        } else {
            assert_eq!(blocks, 0, "{name} has unsafe code outside raw.rs");
        }
        let allows = code.matches("allow(unsafe_code)").count();
        let allowed = name == "raw.rs" || name == "api.rs";
        assert_eq!(allows > 0, allowed, "{name}: allow(unsafe_code)");
    }
}

#[test]
fn every_export_runs_under_the_panic_guard() {
    let api = std::fs::read_to_string(crate_dir().join("src/api.rs")).expect("api.rs");
    // Exports that cannot fail nor panic: they index static tables.
    let infallible = [
        "ph_version",
        "ph_version_string",
        "ph_strerror",
        "ph_result_name",
    ];
    let mut exports = 0;
    for part in api.split("\n#[unsafe(no_mangle)]\n").skip(1) {
        let name = part
            .split("pub extern \"C\" fn ")
            .nth(1)
            .and_then(|rest| rest.split('(').next())
            .expect("an export after #[unsafe(no_mangle)]");
        exports += 1;
        // The body: up to the next item at column 0.
        let body = part.split("\n}\n").next().unwrap_or_default();
        let guarded = ["guard(", "with_pool(", "with_request(", "with_completion("]
            .iter()
            .any(|g| body.contains(g));
        assert!(
            guarded || infallible.contains(&name),
            "{name} does not run under guard/with_*"
        );
    }
    assert!(exports >= 50, "{exports} exports");
}
