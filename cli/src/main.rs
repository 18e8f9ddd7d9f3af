//! `fetch`: a curl-compatible HTTP/1.1 command on pollhttp.
//!
//! `fetch --help` is the manual (every option, by group); `docs/fetch.md`
//! says where fetch differs from curl and why. The modules, by concern:
//!
//! - [`args`]: the command line (clap), each option spelled as curl's;
//! - [`plan`]: the command line checked and worked out once into what every
//!   transfer shares (method, fields, body, settings, outputs);
//! - [`run`]: the runners: one transfer after another on one `HttpRequest`,
//!   all at once on one `RequestPool` (`-Z`), the pages of `--paginate`;
//! - [`output`]: what a finished transfer writes (head, body, files,
//!   `-D`, `-w`);
//! - [`progress`]: the progress meters on stderr;
//! - [`exit`]: curl's exit codes, from a transfer's outcome.
#![forbid(unsafe_code)]
// The argument fields' docs are clap's help lines, where brackets are the
// usage notation (`[;type=T]`), not links.
#![allow(rustdoc::broken_intra_doc_links)]

mod args;
mod exit;
mod form;
mod output;
mod plan;
mod progress;
mod run;
mod writeout;

use std::process::ExitCode;

use args::{parse, usage_error};
use plan::Plan;

fn main() -> ExitCode {
    let (cli, matches) = match parse(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let plan = match Plan::new(&cli, &matches) {
        Ok(plan) => plan,
        Err(e) => {
            usage_error(&e.message);
            return ExitCode::from(e.code);
        }
    };
    ExitCode::from(run::run(&plan))
}
