//! The C API from C, C++ and C#: `tests/c/ph_tests.c` (one process runs
//! every case) compiled with gcc and run against nginx, httpbin and
//! scripted servers on 127.0.0.1, three ways: plain, under
//! `-fsanitize=address,undefined` (leaks included), and under valgrind
//! (memory errors, definite and indirect leaks). The header compiles as
//! C99 and as C++11 with every warning an error; the README's C example
//! compiles and runs; `tests/cs/Smoke.cs` downloads and posts through
//! P/Invoke under Mono.
//!
//! A missing tool (gcc, g++, valgrind, mcs/mono, nginx, httpbin) fails the
//! test, unless `POLLHTTP_SKIP_REAL_SERVERS=1` is set: the test is then
//! recorded as skipped (and `scripts/test.sh` fails on any skip unless told
//! otherwise).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::nginx::Nginx;
use pollhttp_tests::process::TempDir;
use pollhttp_tests::script::{ok_response, ScriptServer, Step};

/// How many cases `ph_tests.c` must run (the issue asks for at least 30).
const MIN_CASES: usize = 30;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of `libpollhttp_ffi.so`: `cargo test` builds the cdylib
/// next to this test binary (`<target>/<profile>/deps/`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("deps dir").to_path_buf();
    assert!(
        dir.join("libpollhttp_ffi.so").is_file(),
        "no libpollhttp_ffi.so in {} (built by `cargo test -p pollhttp-ffi`)",
        dir.display()
    );
    dir
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `tools` are installed; when not, panics, or records a skip
/// under `POLLHTTP_SKIP_REAL_SERVERS=1` and returns false.
fn require(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("{} not installed (.ci/install-deps.sh)", missing.join(", "));
    if pollhttp_tests::skip_real_servers() {
        pollhttp_tests::record_skip(&why);
        false
    } else {
        panic!("{why}");
    }
}

fn nginx() -> Option<&'static Nginx> {
    static NGINX: OnceLock<Option<Nginx>> = OnceLock::new();
    NGINX.get_or_init(Nginx::try_start).as_ref()
}

/// Run `cmd` to its end. The library it loads is the one next to this test
/// binary: cargo puts `<target>/<profile>` (where `cargo build` leaves its
/// own, maybe stale, `libpollhttp_ffi.so`) on `LD_LIBRARY_PATH`, which
/// would win over the executable's rpath.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .env("LD_LIBRARY_PATH", lib_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compile C sources into `out` with gcc, against the cdylib.
fn gcc(sources: &[&Path], out: &Path, extra: &[&str]) {
    let lib = lib_dir();
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .args(extra)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .args(sources)
        .arg("-o")
        .arg(out)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lpollhttp_ffi", "-lpthread"]);
    check("gcc", &run(&mut cmd));
}

/// A port nothing listens on (bound, then closed).
fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Scripted servers for one run of the cases (each serves one connection
/// per case that uses it), and the environment that names every server.
struct Servers {
    _scripts: Vec<ScriptServer>,
    proxy: ScriptServer,
    env: Vec<(String, String)>,
    _tmp: TempDir,
}

fn servers(nginx: &Nginx, httpbin: &Httpbin) -> Servers {
    let silent = || {
        ScriptServer::start(vec![vec![
            Step::ReadRequest,
            Step::Sleep(Duration::from_secs(120)),
        ]])
    };
    let silent1 = silent();
    let silent2 = silent();
    let closer = ScriptServer::start(vec![vec![Step::ReadRequest, Step::Close]]);
    let truncated = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"),
        Step::Close,
    ]]);
    let proxy = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(ok_response("proxied")),
    ]]);
    let tmp = TempDir::new("ffi-c").expect("temp dir");
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &nginx.ca_pem).expect("write CA");
    let env = vec![
        ("PH_NGINX", nginx.base_url()),
        ("PH_NGINX_PORT", nginx.http_port.to_string()),
        ("PH_NGINX_TLS", nginx.base_url_tls()),
        ("PH_CA_PEM_FILE", ca.display().to_string()),
        ("PH_HTTPBIN", httpbin.base_url()),
        ("PH_SILENT", silent1.base_url()),
        ("PH_SILENT2", silent2.base_url()),
        ("PH_CLOSER", closer.base_url()),
        ("PH_TRUNCATED", truncated.base_url()),
        ("PH_REFUSED", format!("http://127.0.0.1:{}", refused_port())),
        ("PH_PROXY_PORT", proxy.port().to_string()),
        ("PH_TMPDIR", tmp.path().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for s in [&silent1, &silent2, &truncated, &closer] {
        // The client may close first (a timeout, a cancel): not a failure.
        s.tolerate_step_errors();
    }
    Servers {
        _scripts: vec![silent1, silent2, closer, truncated],
        proxy,
        env,
        _tmp: tmp,
    }
}

/// Run the cases binary `bin` (through `wrapper`, e.g. valgrind) with the
/// servers of a fresh [`Servers`], and check that every case passed.
fn run_cases(bin: &Path, wrapper: &[&str], extra_env: &[(&str, &str)]) {
    let (Some(nginx), Some(httpbin)) = (nginx(), Httpbin::try_shared()) else {
        return;
    };
    let servers = servers(nginx, httpbin);
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.envs(servers.env.iter().map(|(k, v)| (k, v)))
        .envs(extra_env.iter().copied());
    let out = run(&mut cmd);
    check(&format!("{} {wrapper:?}", bin.display()), &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ok = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(
        ok >= MIN_CASES && !stdout.contains("FAIL"),
        "{ok} cases passed:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("cases: {ok} ran, 0 failed")),
        "{stdout}"
    );
    // The proxy got the request in absolute form.
    let requests = servers.proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let head = String::from_utf8_lossy(&requests[0]);
    assert!(
        head.starts_with("GET http://game-assets.invalid/level1.pak HTTP/1.1\r\n"),
        "{head}"
    );
}

fn out_dir(name: &str) -> PathBuf {
    let dir = lib_dir().join("ffi-c-tests").join(name);
    std::fs::create_dir_all(&dir).expect("out dir");
    dir
}

#[test]
fn c_cases_plain() {
    if !require(&["gcc"]) {
        return;
    }
    let bin = out_dir("plain").join("ph_tests");
    gcc(&[&crate_dir().join("tests/c/ph_tests.c")], &bin, &[]);
    run_cases(&bin, &[], &[]);
}

#[test]
fn c_cases_under_address_and_undefined_sanitizers() {
    if !require(&["gcc"]) {
        return;
    }
    let bin = out_dir("asan").join("ph_tests");
    gcc(
        &[&crate_dir().join("tests/c/ph_tests.c")],
        &bin,
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
    let env = [
        ("ASAN_OPTIONS", "detect_leaks=1:exitcode=86"),
        ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
    ];
    run_cases(&bin, &[], &env);
    // The control: a leaked handle is reported.
    let control = out_dir("asan").join("leak_control");
    gcc(
        &[&crate_dir().join("tests/c/leak_control.c")],
        &control,
        &["-fsanitize=address,undefined", "-fno-omit-frame-pointer"],
    );
    let out = run(Command::new(&control).envs(env));
    assert_eq!(out.status.code(), Some(86), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ph_request_new"),
        "{out:?}"
    );
}

#[test]
fn c_cases_under_valgrind() {
    if !require(&["gcc", "valgrind"]) {
        return;
    }
    let bin = out_dir("valgrind").join("ph_tests");
    gcc(&[&crate_dir().join("tests/c/ph_tests.c")], &bin, &[]);
    let suppressions = format!(
        "--suppressions={}",
        crate_dir().join("tests/valgrind.supp").display()
    );
    run_cases(
        &bin,
        &[
            "valgrind",
            "-q",
            &suppressions,
            "--error-exitcode=87",
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect",
        ],
        &[],
    );
    // The control: a leaked handle is reported.
    let control = out_dir("valgrind").join("leak_control");
    gcc(
        &[&crate_dir().join("tests/c/leak_control.c")],
        &control,
        &[],
    );
    let out = run(Command::new("valgrind")
        .args([
            "-q",
            "--error-exitcode=87",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ])
        .arg(&suppressions)
        .arg(&control));
    assert_eq!(out.status.code(), Some(87), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ph_request_new"),
        "{out:?}"
    );
}

#[test]
fn header_compiles_as_c99_and_cpp11_with_warnings_as_errors() {
    if !require(&["gcc", "g++"]) {
        return;
    }
    let dir = out_dir("header");
    let c = dir.join("header.c");
    let cpp = dir.join("header.cpp");
    let text = "#include \"pollhttp.h\"\n\
                int main(void) { PhPool *p = 0; (void)p; return ph_version() == PH_VERSION ? 0 : 1; }\n";
    std::fs::write(&c, text).expect("write");
    std::fs::write(&cpp, text.replace("(void) {", "() {")).expect("write");
    let include = crate_dir().join("include");
    for (compiler, std, src) in [
        ("gcc", "-std=c99", &c),
        ("g++", "-std=c++11", &cpp),
        ("g++", "-std=c++17", &cpp),
    ] {
        let mut cmd = Command::new(compiler);
        cmd.args([
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ])
        .arg("-I")
        .arg(&include)
        .arg(src);
        check(&format!("{compiler} {std}"), &run(&mut cmd));
    }
}

/// The README's "From C, C++ and C#" example, between its markers.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(crate_dir().join("../README.md")).expect("README.md");
    let start = readme
        .find("<!-- ffi-example-start -->")
        .expect("README: ffi-example-start marker");
    let end = readme
        .find("<!-- ffi-example-end -->")
        .expect("README: ffi-example-end marker");
    let block = &readme[start..end];
    let code_start = block.find("```c\n").expect("a ```c block") + 5;
    let code_end = block[code_start..].find("```").expect("end of block") + code_start;
    block[code_start..code_end].to_string()
}

#[test]
fn readme_c_example_compiles_and_runs() {
    if !require(&["gcc"]) {
        return;
    }
    let Some(nginx) = nginx() else {
        return;
    };
    let code = readme_example();
    let lines = code.lines().count();
    assert!(lines <= 40, "the README's example has {lines} lines");
    let dir = out_dir("readme");
    let src = dir.join("example.c");
    std::fs::write(&src, &code).expect("write");
    let bin = dir.join("example");
    gcc(&[&src], &bin, &[]);
    let out = run(Command::new(&bin).arg(nginx.url("/hello.txt")));
    check("README example", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Success 200, 13 bytes"), "{stdout}");
    // The staticlib, linked as ffi/README.md says.
    let static_bin = dir.join("example-static");
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(&src)
        .arg(lib_dir().join("libpollhttp_ffi.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&static_bin);
    check("gcc (static)", &run(&mut cmd));
    let out = run(Command::new(&static_bin).arg(nginx.url("/hello.txt")));
    check("README example (static)", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Success 200, 13 bytes"),
        "{out:?}"
    );
}

#[test]
fn csharp_smoke_through_pinvoke_under_mono() {
    if !require(&["mcs", "mono"]) {
        return;
    }
    let (Some(nginx), Some(httpbin)) = (nginx(), Httpbin::try_shared()) else {
        return;
    };
    let dir = out_dir("csharp");
    let exe = dir.join("Smoke.exe");
    let mut cmd = Command::new("mcs");
    cmd.arg("-nologo")
        .arg("-warnaserror")
        .arg(format!("-out:{}", exe.display()))
        .arg(crate_dir().join("tests/cs/Smoke.cs"));
    check("mcs", &run(&mut cmd));
    let out = run(Command::new("mono")
        .arg(&exe)
        .arg(nginx.url("/1m.bin"))
        .arg(httpbin.url("/post")));
    check("mono Smoke.exe", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("download 200 1048576"), "{stdout}");
    assert!(stdout.contains("post 200"), "{stdout}");
}
