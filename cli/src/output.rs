//! What a finished transfer writes: its file settled, the head and body on
//! stdout, the failure on stderr, the report.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use indicatif::MultiProgress;
use pollhttp::{Completed, RequestResult};
use sha2::{Digest, Sha256};

use crate::exit::{self, Error};
use crate::plan::{Plan, Transfer};
use crate::run::Tally;

/// What the report of a transfer says beside its completion: one
/// completion's figures, or the sums over `--paginate`'s pages.
#[derive(Default)]
pub(crate) struct Summary {
    pub(crate) seconds: f64,
    pub(crate) pages: u32,
    pub(crate) attempts: u32,
    pub(crate) redirects: u32,
    pub(crate) wire_bytes: u64,
    pub(crate) body_bytes: u64,
    /// Known already (`--paginate`), else taken from the body or file.
    pub(crate) body_sha256: Option<String>,
    /// The body was written already, and `-v` told each head
    /// (`--paginate`).
    pub(crate) body_written: bool,
}

impl Summary {
    pub(crate) fn of(done: &Completed, seconds: f64) -> Summary {
        Summary {
            seconds,
            pages: 1,
            attempts: done.attempts,
            redirects: done.redirects,
            wire_bytes: done.wire_bytes,
            body_bytes: done.body_bytes,
            body_sha256: None,
            body_written: false,
        }
    }

    pub(crate) fn add(&mut self, page: &Completed) {
        self.attempts += page.attempts;
        self.redirects += page.redirects;
        self.wire_bytes += page.wire_bytes;
    }
}

/// After a transfer: its exit code kept, its file settled (renamed,
/// removed, or created empty as curl leaves it), then `-D`, `-v`'s `<`
/// lines, the report line or the head and body on stdout, the failure on
/// stderr, and `-w`.
pub(crate) fn finish(
    plan: &Plan,
    t: &Transfer,
    done: &Completed,
    summary: Summary,
    multi: Option<&MultiProgress>,
    tally: &mut Tally,
) -> Result<(), Error> {
    let ok = done.result == RequestResult::Success;
    let http_error = plan.fail_status(done);
    let range_ignored = plan.range_ignored(done);
    let code = if range_ignored {
        33
    } else {
        exit::of(done, plan.fail, plan.via_proxy)
    };
    tally.record(t.index, code);
    let sha = match (&summary.body_sha256, &t.download, ok) {
        _ if !plan.report => String::new(),
        (Some(sha), _, _) => sha.clone(),
        (None, Some(path), true) if path.exists() => sha256_file(path)
            .map_err(|e| Error::read(format!("cannot hash {}: {e}", path.display())))?,
        _ => hex(&Sha256::digest(&done.body)),
    };
    let unmet = plan.time_cond_unmet(done);
    // -C OFFSET and a 416 (nothing past OFFSET): curl goes on without
    // its body, as no error.
    let unsatisfiable = plan.continue_from.is_some() && done.response_code() == 416;
    let keep_body =
        (!http_error || plan.fail_with_body) && !unmet && !range_ignored && !unsatisfiable;
    let mut file = t.file.clone();
    if !summary.body_written {
        // -C OFFSET appends what arrived, as curl, also before a failure.
        settle_file(t, (ok || t.append) && keep_body)?;
        if t.remote_header_name && ok && keep_body {
            file = remote_header_name(t, done)?.or(file);
        }
    }
    if let Some(path) = &plan.dump_header {
        dump_header(path, done, multi)?;
    }
    if let (Some(path), true) = (&plan.etag_save, done.head.is_some()) {
        // curl writes the ETag and a newline, or an empty file.
        let etag = done
            .head
            .as_ref()
            .and_then(|h| h.fields().get_str("etag"))
            .map(|e| format!("{}\n", e.trim()))
            .unwrap_or_default();
        std::fs::write(path, etag)
            .map_err(|e| Error::new(23, format!("cannot write {}: {e}", path.display())))?;
    }
    if plan.verbose && !summary.body_written {
        if done.response_code() != 0 {
            eprint!("{}", head_text(done, "< "));
        }
        eprintln!(
            "* {} tries, {} redirects, final URL {}",
            done.attempts, done.redirects, done.final_url
        );
    }
    let url = if plan.several {
        format!("{}: ", t.url)
    } else {
        String::new()
    };
    let errormsg = if http_error {
        format!("The requested URL returned error: {}", done.response_code())
    } else if range_ignored {
        "HTTP server doesn't seem to support byte ranges. Cannot resume.".to_string()
    } else {
        done.reason.clone()
    };
    if plan.report {
        let line = json_line(t, done, &sha, &summary);
        write_stdout(format!("{line}\n").as_bytes(), multi)?;
    } else {
        // (With progress lines, the transfer's line said it already.)
        if !ok && multi.is_none() && plan.errors {
            eprintln!("fetch: ({code}) {url}{}: {}", done.result, done.reason);
            if let Some(hint) = leniency_hint(done) {
                eprintln!("fetch: {hint}");
            }
        }
        if (http_error || range_ignored) && plan.errors {
            eprintln!("fetch: ({code}) {url}{errormsg}");
        }
        // With -i the heads go where the body goes, before it (curl: the
        // -o file holds them).
        let heads_to = |file: Option<&Path>| -> Result<(), Error> {
            let head = head_text(done, "");
            match file {
                Some(path) if path.exists() => prepend(path, head.as_bytes()),
                Some(_) => Ok(()),
                None => write_stdout(head.as_bytes(), multi),
            }
        };
        if ok && keep_body && !summary.body_written {
            if plan.show_head {
                heads_to(file.as_deref())?;
            }
            if t.file.is_none() && !done.body.is_empty() {
                write_stdout(&done.body, multi)?;
            }
        } else if !ok && !summary.body_written {
            // As curl: what arrived before the failure is written (the
            // heads with -i, the body bytes; a -o file keeps its own).
            if plan.show_head {
                heads_to(file.as_deref())?;
            }
            if t.file.is_none() && !done.partial_body.is_empty() {
                write_stdout(&done.partial_body, multi)?;
            }
        }
    }
    if let Some(w) = &plan.write_out {
        let vars = crate::writeout::Vars {
            done: Some(done),
            url: &t.url,
            method: &plan.method,
            file: file.map(|f| f.display().to_string()),
            exit_code: code,
            status: unmet.then_some(304),
            errormsg: if code == 0 { String::new() } else { errormsg },
            seconds: summary.seconds,
            size_download: summary.body_bytes,
            size_upload: plan.upload_size(),
            redirects: summary.redirects,
        };
        let (out, err) = w.render(&vars);
        write_stdout(out.as_bytes(), multi)?;
        if !err.is_empty() {
            eprint!("{err}");
        }
    }
    Ok(())
}

/// For a response that broke a rule a leniency relaxes: the `--lenient`
/// that would accept it, and whether curl does (it accepts all but a
/// chunked body cut after its last-chunk, which it fails with 18 too).
pub(crate) fn leniency_hint(done: &Completed) -> Option<String> {
    let e = done.connection_failure()?.protocol_error()?;
    let name = pollhttp::Leniency::accepting(e)?;
    let curl = if name == "last_chunk_then_eof" {
        "curl fails here too"
    } else {
        "curl lets it pass"
    };
    Some(format!(
        "--lenient={} accepts the response ({curl})",
        name.replace('_', "-")
    ))
}

/// `-D FILE`: the head appended (the file was emptied at the start); `-`
/// is stdout.
fn dump_header(path: &Path, done: &Completed, multi: Option<&MultiProgress>) -> Result<(), Error> {
    let text = head_text(done, "");
    if path.as_os_str() == "-" {
        return write_stdout(text.as_bytes(), multi);
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::write(format!("-D {}: {e}", path.display())))
}

/// `-J`: the saved file renamed to the Content-Disposition's `filename`
/// (its last path component only), in the same directory; an existing file
/// of that name is not overwritten (curl's rule: exit 23). The new path,
/// or `None` when the response names no file.
fn remote_header_name(t: &Transfer, done: &Completed) -> Result<Option<std::path::PathBuf>, Error> {
    let (Some(file), Some(cd)) = (&t.file, done.headers().get_str("content-disposition")) else {
        return Ok(None);
    };
    let Some(name) = content_disposition_filename(cd) else {
        return Ok(None);
    };
    let target = file.with_file_name(&name);
    if target == *file {
        return Ok(Some(target));
    }
    if target.exists() {
        let _ = std::fs::remove_file(file);
        return Err(Error::write(format!(
            "-J: refusing to overwrite {}",
            target.display()
        )));
    }
    std::fs::rename(file, &target)
        .map_err(|e| Error::write(format!("-J: cannot rename to {}: {e}", target.display())))?;
    Ok(Some(target))
}

/// The `filename` parameter of a Content-Disposition value (quoted or
/// not), reduced to its last path component; `None` when it has none.
pub(crate) fn content_disposition_filename(value: &str) -> Option<String> {
    let i = value.to_ascii_lowercase().find("filename=")?;
    let rest = value[i + "filename=".len()..].trim_start();
    let name = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next()?,
        None => rest.split(';').next()?.trim(),
    };
    let name = name.rsplit(['/', '\\']).next()?;
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

/// The body's file once the transfer ended: with `-f`'s temporary file,
/// renamed into place when `keep`, else removed; the empty file curl leaves
/// for a response whose file the library did not open (a resumed 416). The
/// library itself empties the download file when the final body is empty.
/// Put `head` before the bytes of the file at `path`: a regular file is
/// rewritten beside it and renamed into place (a copy of its bytes: only
/// for `-i -o FILE`); anything else (`/dev/null`, a pipe) is written to as
/// it is, after what it got.
fn prepend(path: &Path, head: &[u8]) -> Result<(), Error> {
    let fail = |e: io::Error| Error::write(format!("cannot write {}: {e}", path.display()));
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    if !regular {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(fail)?;
        return f.write_all(head).map_err(fail);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.fetch-heads"));
    let written = (|| {
        let mut out = File::create(&tmp)?;
        out.write_all(head)?;
        io::copy(&mut File::open(path)?, &mut out)?;
        out.flush()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(fail)
}

pub(crate) fn settle_file(t: &Transfer, keep: bool) -> Result<(), Error> {
    let (Some(file), Some(download)) = (&t.file, &t.download) else {
        return Ok(());
    };
    let create = |path: &Path| {
        File::create(path)
            .map(drop)
            .map_err(|e| Error::write(format!("cannot create {}: {e}", path.display())))
    };
    if t.append {
        return append_download(file, download, keep);
    }
    if file == download {
        if keep && !file.exists() {
            create(file)?;
        }
        return Ok(());
    }
    if !keep {
        let _ = std::fs::remove_file(download);
        return Ok(());
    }
    if download.exists() {
        std::fs::rename(download, file).map_err(|e| {
            Error::write(format!(
                "cannot rename {} to {}: {e}",
                download.display(),
                file.display()
            ))
        })
    } else {
        create(file)
    }
}

/// `-C OFFSET -o FILE`: the bytes that arrived (all of a completed body;
/// as curl, also those before a failure) appended to FILE, created when
/// missing; the temporary download removed. With `-f` and a status >= 400
/// (`keep` false and a complete body), nothing is appended.
fn append_download(file: &Path, download: &Path, keep: bool) -> Result<(), Error> {
    let result = (|| -> io::Result<()> {
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)?;
        if keep {
            if let Ok(mut got) = File::open(download) {
                io::copy(&mut got, &mut out)?;
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(download);
    result.map_err(|e| Error::write(format!("cannot append to {}: {e}", file.display())))
}

/// Output goes around the progress lines, not through them; a closed pipe
/// (`fetch ... | head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8], multi: Option<&MultiProgress>) -> Result<(), Error> {
    let write = || {
        let mut out = io::stdout().lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .or_else(|e| {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    Ok(())
                } else {
                    Err(Error::write(format!("cannot write stdout: {e}")))
                }
            })
    };
    match multi {
        Some(m) => m.suspend(write),
        None => write(),
    }
}

/// Every response head of the transfer as `-i`/`-I`/`-D` print them,
/// curl's way: the interim 1xx heads, each redirect's and each auth
/// round's, then the final one, each ended by its empty line (`prefix`
/// before each line, for `-v`): the status line and the fields as received.
pub(crate) fn head_text(done: &Completed, prefix: &str) -> String {
    let mut s = String::new();
    for head in done.earlier_heads.iter().chain(&done.head) {
        one_head(&mut s, head, prefix);
    }
    s
}

fn one_head(s: &mut String, head: &pollhttp::proto::ResponseHead, prefix: &str) {
    // The status line as received (curl prints it so: a missing reason
    // phrase with or without its space), without its line end.
    let raw = head.raw();
    let end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = raw[..end].strip_suffix(b"\r").unwrap_or(&raw[..end]);
    s.push_str(prefix);
    s.push_str(&String::from_utf8_lossy(line));
    s.push_str("\r\n");
    for f in head.fields().iter() {
        s.push_str(&format!(
            "{prefix}{}: {}\r\n",
            f.name(),
            String::from_utf8_lossy(f.value())
        ));
    }
    s.push_str(prefix);
    s.push_str("\r\n");
}

pub(crate) fn json_line(t: &Transfer, done: &Completed, sha: &str, summary: &Summary) -> String {
    let headers: Vec<[String; 2]> = done
        .headers()
        .iter()
        .map(|f| {
            [
                f.name().to_string(),
                String::from_utf8_lossy(f.value()).into_owned(),
            ]
        })
        .collect();
    let cookies: Vec<[String; 2]> = done
        .cookies()
        .into_iter()
        .map(|c| [c.name, c.value])
        .collect();
    serde_json::json!({
        "result": done.result.name(),
        "reason": done.reason,
        "response_code": done.response_code(),
        "headers": headers,
        "body_bytes": summary.body_bytes,
        "body_sha256": sha,
        "wire_bytes": summary.wire_bytes,
        "seconds": summary.seconds,
        "redirects": summary.redirects,
        "url": done.final_url,
        "request_url": t.url,
        "file": t.file.as_ref().map(|p| p.display().to_string()),
        "attempts": summary.attempts,
        "pages": summary.pages,
        "cookies": cookies,
    })
    .to_string()
}

pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
