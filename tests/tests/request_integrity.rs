//! Integrity end to end (RFC 9530 `Content-Digest` / `Repr-Digest`, and a
//! request's expected SHA-256) against scripted servers: every fault case
//! ends in `IntegrityFailed` with its typed cause, never `Success`; the body
//! is not handed out and a download file does not look complete.

use std::path::Path;
use std::time::{Duration, Instant};

use pollhttp::{
    Completed, DigestAlgorithm, DigestCheck, HttpRequest, RequestFailure, RequestPool,
    RequestResult, Settings,
};
use pollhttp_tests::coding::{chunked_response, gzip, sha256, sha256_field, sha512_field};
use pollhttp_tests::process::TempDir;
use pollhttp_tests::script::{response, ScriptServer, Step};

use RequestResult::*;

fn run(req: &mut HttpRequest) -> Completed {
    pollhttp_tests::drive::run_request(req, Duration::from_secs(60))
}

fn get_with(url: &str, f: impl FnOnce(&mut HttpRequest)) -> Completed {
    let mut req = HttpRequest::new();
    f(&mut req);
    req.request(url, &[], "GET", "").unwrap();
    run(&mut req)
}

fn serve(raw: Vec<u8>) -> ScriptServer {
    ScriptServer::start(vec![vec![Step::ReadRequest, Step::Write(raw)]])
}

fn body() -> Vec<u8> {
    pollhttp_tests::pseudo_random_bytes(300_000)
}

/// The request failed its integrity check with `check`, handing nothing out.
fn assert_mismatch(done: &Completed, check: DigestCheck, algorithm: DigestAlgorithm, what: &str) {
    assert_eq!(
        (done.result, done.body.len()),
        (IntegrityFailed, 0),
        "{what}: {}",
        done.reason
    );
    assert!(
        matches!(
            &done.failure,
            Some(RequestFailure::DigestMismatch { check: c, algorithm: a, expected, actual })
                if *c == check && *a == algorithm && expected != actual
        ),
        "{what}: {:?}",
        done.failure
    );
}

#[test]
fn good_digests_pass_in_either_algorithm_and_unknown_ones_are_ignored() {
    let data = body();
    for field in [
        sha256_field(&data),
        sha512_field(&data),
        format!("{}, {}", sha512_field(&data), sha256_field(&data)),
        // Unknown algorithms (and their values) are ignored (RFC 9530 §2).
        "unixsum=:AAAA:, adler=42".to_string(),
    ] {
        for name in ["Content-Digest", "Repr-Digest"] {
            let server = serve(chunked_response("200 OK", &[(name, &field)], &data, 4000));
            let done = get_with(&server.base_url(), |_| {});
            assert_eq!(done.result, Success, "{name}: {field}: {}", done.reason);
            assert!(done.body[..] == data[..]);
        }
    }
}

#[test]
fn ten_fault_cases_none_reported_as_success() {
    let data = body();
    let good = sha256_field(&data);
    let mut flipped = data.clone();
    flipped[1234] ^= 1;
    let coded = gzip(&data);
    let cases: Vec<(&str, Vec<u8>, DigestCheck, DigestAlgorithm)> = vec![
        (
            "a flipped byte",
            response("200 OK", &[("Content-Digest", &good)], &flipped),
            DigestCheck::ContentDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            "a truncated body with a matching Content-Length",
            response(
                "200 OK",
                &[("Content-Digest", &good)],
                &data[..data.len() - 1],
            ),
            DigestCheck::ContentDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            "a digest of other content",
            response(
                "200 OK",
                &[("Content-Digest", &sha256_field(b"other"))],
                &data,
            ),
            DigestCheck::ContentDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            "a flipped byte, sha-512",
            response("200 OK", &[("Repr-Digest", &sha512_field(&data))], &flipped),
            DigestCheck::ReprDigest,
            DigestAlgorithm::Sha512,
        ),
        (
            // Content-Digest covers the content as sent: the gzip bytes.
            "a digest for another coding (of the decoded bytes)",
            response(
                "200 OK",
                &[("Content-Encoding", "gzip"), ("Content-Digest", &good)],
                &coded,
            ),
            DigestCheck::ContentDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            "Repr-Digest of the decoded bytes on a gzip body",
            response(
                "200 OK",
                &[("Content-Encoding", "gzip"), ("Repr-Digest", &good)],
                &coded,
            ),
            DigestCheck::ReprDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            // On a 206, Content-Digest covers the part sent.
            "a 206 whose Content-Digest is the whole representation's",
            response(
                "206 Partial Content",
                &[
                    ("Content-Range", "bytes 0-99/300000"),
                    ("Content-Digest", &good),
                ],
                &data[..100],
            ),
            DigestCheck::ContentDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            "a chunked body with a flipped byte",
            chunked_response("200 OK", &[("Content-Digest", &good)], &flipped, 777),
            DigestCheck::ContentDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            "the right Content-Digest, a wrong Repr-Digest",
            response(
                "200 OK",
                &[
                    ("Content-Digest", &good),
                    ("Repr-Digest", &sha256_field(b"x")),
                ],
                &data,
            ),
            DigestCheck::ReprDigest,
            DigestAlgorithm::Sha256,
        ),
        (
            "an empty body that should have bytes",
            response("200 OK", &[("Content-Digest", &good)], b""),
            DigestCheck::ContentDigest,
            DigestAlgorithm::Sha256,
        ),
    ];
    for (what, raw, check, algorithm) in cases {
        let server = serve(raw);
        let done = get_with(&server.base_url(), |_| {});
        assert_mismatch(&done, check, algorithm, what);
        assert!(done.reason.contains("does not match"), "{}", done.reason);
    }
    // The same bodies with verification off are Success (the caller chose).
    let server = serve(response("200 OK", &[("Content-Digest", &good)], &flipped));
    let done = get_with(&server.base_url(), |r| {
        r.settings_mut().body.verify_digests = false
    });
    assert_eq!(done.result, Success);
}

#[test]
fn a_digest_of_the_coded_bytes_passes_and_the_body_is_decoded() {
    let data = body();
    let coded = gzip(&data);
    let server = serve(response(
        "200 OK",
        &[
            ("Content-Encoding", "gzip"),
            ("Content-Digest", &sha256_field(&coded)),
            ("Repr-Digest", &sha512_field(&coded)),
        ],
        &coded,
    ));
    let done = get_with(&server.base_url(), |r| {
        // The expected sum is of the body as the caller gets it.
        r.settings_mut().body.expected_sha256 = Some(sha256(&data));
    });
    assert_eq!(done.result, Success, "{}", done.reason);
    assert!(done.body[..] == data[..]);
}

#[test]
fn malformed_digest_fields_fail_at_the_head() {
    for (name, value, check) in [
        ("Content-Digest", "sha-256=abc", DigestCheck::ContentDigest),
        (
            "Content-Digest",
            "sha-256=:AAAA:",
            DigestCheck::ContentDigest,
        ),
        ("Repr-Digest", "sha-512=:!!:", DigestCheck::ReprDigest),
        ("Repr-Digest", "sha-256=:AAAA:,", DigestCheck::ReprDigest),
    ] {
        let server = serve(response("200 OK", &[(name, value)], "body"));
        let done = get_with(&server.base_url(), |_| {});
        assert_eq!(
            (done.result, done.body.len()),
            (IntegrityFailed, 0),
            "{value}"
        );
        assert!(
            matches!(
                &done.failure,
                Some(RequestFailure::MalformedDigest { check: c, value: v }) if *c == check && v == value
            ),
            "{value}: {:?}",
            done.failure
        );
    }
}

#[test]
fn expected_sha256_fails_closed_in_memory_and_in_a_file() {
    let data = body();
    // Memory: right and wrong.
    let server = serve(response("200 OK", &[], &data));
    let done = get_with(&server.base_url(), |r| {
        r.settings_mut().body.expected_sha256 = Some(sha256(&data))
    });
    assert_eq!(done.result, Success, "{}", done.reason);
    let server = serve(response("200 OK", &[], &data));
    let done = get_with(&server.base_url(), |r| {
        r.settings_mut().body.expected_sha256 = Some(sha256(b"a manifest's other sum"))
    });
    assert_mismatch(
        &done,
        DigestCheck::ExpectedSha256,
        DigestAlgorithm::Sha256,
        "memory",
    );
    // A download file: complete when right, gone when wrong.
    let dir = TempDir::new("integrity").unwrap();
    let file = dir.path().join("asset.bin");
    let server = serve(response("200 OK", &[], &data));
    let done = get_with(&server.base_url(), |r| {
        r.settings_mut().body.download_file = Some(file.clone());
        r.settings_mut().body.expected_sha256 = Some(sha256(&data));
    });
    assert_eq!(done.result, Success, "{}", done.reason);
    assert!(std::fs::read(&file).unwrap() == data);
    let mut flipped = data.clone();
    flipped[10] ^= 0x80;
    for resume in [false, true] {
        let server = serve(response("200 OK", &[("ETag", "\"v1\"")], &flipped));
        let done = get_with(&server.base_url(), |r| {
            r.settings_mut().body.download_file = Some(file.clone());
            r.settings_mut().body.resume = resume;
            r.settings_mut().body.expected_sha256 = Some(sha256(&data));
        });
        assert_mismatch(
            &done,
            DigestCheck::ExpectedSha256,
            DigestAlgorithm::Sha256,
            "file",
        );
        assert!(!file.exists(), "resume {resume}: a wrong file is removed");
        assert!(!note(&file).exists(), "and its resume note");
    }
}

fn note(file: &Path) -> std::path::PathBuf {
    let mut n = file.as_os_str().to_owned();
    n.push(".resume");
    n.into()
}

#[test]
fn a_cut_download_with_an_expected_sum_never_looks_complete() {
    let data = body();
    let dir = TempDir::new("integrity-cut").unwrap();
    let file = dir.path().join("asset.bin");
    let mut raw = response("200 OK", &[], &data);
    raw.truncate(raw.len() - 1000);
    for resume in [false, true] {
        let server = ScriptServer::start(vec![vec![
            Step::ReadRequest,
            Step::Write(raw.clone()),
            Step::Close,
        ]]);
        let done = get_with(&server.base_url(), |r| {
            r.settings_mut().body.download_file = Some(file.clone());
            r.settings_mut().body.resume = resume;
            r.settings_mut().body.expected_sha256 = Some(sha256(&data));
        });
        assert_eq!(done.result, ChunkedBodySizeMismatch, "{}", done.reason);
        // Without resume: removed. With resume: a partial, marked so by
        // its note (empty: the response had no validator).
        assert_eq!(file.exists(), resume, "resume {resume}");
        assert_eq!(note(&file).exists(), resume, "resume {resume}");
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        data.len() as u64 - 1000
    );
}

#[test]
fn resume_with_an_expected_sum_hashes_the_partial_file_first() {
    let data = body();
    let dir = TempDir::new("integrity-resume").unwrap();
    let file = dir.path().join("asset.bin");
    let half = 100_000;
    let rest = |tail: &[u8], field: Option<String>| {
        let range = format!("bytes {half}-{}/{}", data.len() - 1, data.len());
        let mut headers = vec![("Content-Range", range)];
        if let Some(f) = field {
            headers.push(("Repr-Digest", f));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        response("206 Partial Content", &headers, tail)
    };
    let resume_get = |server: &ScriptServer| {
        get_with(&server.base_url(), |r| {
            r.settings_mut().body.download_file = Some(file.clone());
            r.settings_mut().body.resume = true;
            r.settings_mut().body.expected_sha256 = Some(sha256(&data));
        })
    };
    // The right rest, with a Repr-Digest of the whole representation.
    std::fs::write(&file, &data[..half]).unwrap();
    let server = serve(rest(&data[half..], Some(sha256_field(&data))));
    let done = resume_get(&server);
    assert_eq!(done.result, Success, "{}", done.reason);
    let (head, _) = pollhttp_tests::script::split_request(&server.requests()[0]);
    assert!(head.contains(&format!("Range: bytes={half}-")), "{head}");
    assert!(std::fs::read(&file).unwrap() == data);
    // The partial file was wrong: the whole fails and the file goes.
    let mut bad = data[..half].to_vec();
    bad[5] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    let server = serve(rest(&data[half..], None));
    let done = resume_get(&server);
    assert_mismatch(
        &done,
        DigestCheck::ExpectedSha256,
        DigestAlgorithm::Sha256,
        "prefix",
    );
    assert!(!file.exists());
    // A Repr-Digest that disagrees with the file and the rest.
    std::fs::write(&file, &data[..half]).unwrap();
    let server = serve(rest(&data[half..], Some(sha256_field(b"other"))));
    let done = get_with(&server.base_url(), |r| {
        r.settings_mut().body.download_file = Some(file.clone());
        r.settings_mut().body.resume = true;
    });
    assert_mismatch(
        &done,
        DigestCheck::ReprDigest,
        DigestAlgorithm::Sha256,
        "repr on 206",
    );
    assert!(!file.exists());
    // 416 (nothing left to send): the file itself is checked.
    std::fs::write(&file, &data).unwrap();
    let server = serve(response("416 Range Not Satisfiable", &[], ""));
    let done = resume_get(&server);
    assert_eq!(
        (done.result, done.response_code()),
        (Success, 416),
        "{}",
        done.reason
    );
    std::fs::write(&file, &bad).unwrap();
    let server = serve(response("416 Range Not Satisfiable", &[], ""));
    let done = resume_get(&server);
    assert_mismatch(
        &done,
        DigestCheck::ExpectedSha256,
        DigestAlgorithm::Sha256,
        "416",
    );
    assert!(!file.exists());
}

#[test]
fn only_the_final_response_of_a_redirect_is_checked() {
    let data = body();
    let target = serve(response(
        "200 OK",
        &[("Content-Digest", &sha256_field(&data))],
        &data,
    ));
    let redirect = |to: &str| {
        serve(response(
            "302 Found",
            &[
                ("Location", to),
                ("Content-Digest", &sha256_field(b"not this body")),
            ],
            "moved",
        ))
    };
    let first = redirect(&target.base_url());
    let done = get_with(&first.base_url(), |r| {
        r.settings_mut().body.expected_sha256 = Some(sha256(&data))
    });
    assert_eq!(
        (done.result, done.redirects),
        (Success, 1),
        "{}",
        done.reason
    );
    // The final response's digest is wrong: the redirect does not save it.
    let target = serve(response(
        "200 OK",
        &[("Content-Digest", &sha256_field(b"x"))],
        &data,
    ));
    let first = redirect(&target.base_url());
    let done = get_with(&first.base_url(), |_| {});
    assert_mismatch(
        &done,
        DigestCheck::ContentDigest,
        DigestAlgorithm::Sha256,
        "after a redirect",
    );
    assert_eq!(done.redirects, 1);
}

#[test]
fn head_and_204_are_not_checked() {
    for (status, method) in [("200 OK", "HEAD"), ("204 No Content", "GET")] {
        let raw = format!(
            "HTTP/1.1 {status}\r\nContent-Digest: {}\r\n{}\r\n",
            sha256_field(b"the GET's body"),
            if method == "HEAD" {
                "Content-Length: 14\r\n"
            } else {
                ""
            }
        );
        let server = serve(raw.into_bytes());
        let mut req = HttpRequest::new();
        req.settings_mut().body.expected_sha256 = Some(sha256(b"anything"));
        req.request(&server.base_url(), &[], method, "").unwrap();
        let done = run(&mut req);
        assert_eq!(done.result, Success, "{method} {status}: {}", done.reason);
    }
}

#[test]
fn a_streamed_body_with_a_wrong_digest_completes_as_a_failure() {
    let data = body();
    let mut flipped = data.clone();
    flipped[200_000] ^= 4;
    for (payload, expected) in [(&data, Success), (&flipped, IntegrityFailed)] {
        let server = serve(chunked_response(
            "200 OK",
            &[("Content-Digest", &sha256_field(&data))],
            payload,
            20_000,
        ));
        let mut pool = RequestPool::new().unwrap();
        let mut settings = Settings::default();
        settings.body.stream = true;
        let id = pool.get(server.base_url(), &settings).unwrap();
        let start = Instant::now();
        let mut streamed = Vec::new();
        let done = loop {
            pool.poll();
            while let Some(piece) = pool.read_body(id) {
                streamed.extend_from_slice(&piece);
            }
            if let Some((_, done)) = pool.poll_completed() {
                break done;
            }
            assert!(start.elapsed() < Duration::from_secs(60));
            pool.wait(Some(Duration::from_millis(50)));
        };
        assert_eq!(done.result, expected, "{}", done.reason);
        if expected == IntegrityFailed {
            // Pieces went out as they came; the completion says they were bad.
            assert_eq!(done.body.len(), 0);
            assert!(matches!(
                done.failure,
                Some(RequestFailure::DigestMismatch { .. })
            ));
        } else {
            streamed.extend_from_slice(&done.body);
            assert!(streamed == data);
        }
    }
}
