//! The web conveniences (`pollhttp::web`) against httpbin and scripted
//! servers: params, bodies, parsed responses, cookies, authentication,
//! retries, redirects as results, pagination, all / all-settled, and the
//! exact error of each bad input.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pollhttp::web::{
    Auth, Batch, CookieJar, CookieJarError, DataError, FieldLineErrorKind, Multipart,
    MultipartError, Pagination, Paginator, QueryValue, Request, RetryBudget, RetryPolicy,
    ValueKind, WebError,
};
use pollhttp::{PoolSettings, RequestError, RequestPool, RequestResult};
use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::process::TempDir;
use pollhttp_tests::script::{response, split_request, ScriptServer, Step};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

fn send(req: Request) -> pollhttp::Completed {
    match req.timeout(TIMEOUT).send() {
        Ok(done) => done,
        Err(e) => panic!("{e}"),
    }
}

fn body_json(done: &pollhttp::Completed) -> Value {
    done.json::<Value>()
        .unwrap_or_else(|e| panic!("{e}: {:?}", done.text_lossy()))
}

#[test]
fn get_with_params_as_pairs_raw_and_godot_dict() {
    let hb = Httpbin::shared();
    let done = send(
        Request::get(&hb.url("/get?x=0"))
            .query("q", "two words & more")
            .query_pairs([("a", "1"), ("b", "é")])
            .query_raw("raw=yes&flag")
            .query_dict(&[
                ("multi", QueryValue::List(vec!["1".into(), "2".into()])),
                ("bare", QueryValue::Null),
            ]),
    );
    assert_eq!(done.response_code(), 200);
    let args = &body_json(&done)["args"];
    assert_eq!(args["x"], "0");
    assert_eq!(args["q"], "two words & more");
    assert_eq!(args["a"], "1");
    assert_eq!(args["b"], "é");
    assert_eq!(args["raw"], "yes");
    assert_eq!(args["flag"], "");
    assert_eq!(args["multi"], json!(["1", "2"]));
    assert_eq!(args["bare"], "");
    assert!(
        done.final_url.contains(
            "x=0&q=two%20words%20%26%20more&a=1&b=%C3%A9&raw=yes&flag&multi=1&multi=2&bare"
        ),
        "{}",
        done.final_url
    );
}

#[test]
fn scheme_less_url_is_http_in_the_builder_only() {
    let hb = Httpbin::shared();
    let done = send(Request::get(&format!("127.0.0.1:{}/get", hb.port)));
    assert_eq!(done.response_code(), 200);
    assert!(done.final_url.starts_with("http://127.0.0.1:"));
    let mut plain = pollhttp::HttpRequest::new();
    let refused = plain.request(&format!("127.0.0.1:{}/get", hb.port), &[], "GET", "");
    assert!(
        matches!(
            refused,
            Err(RequestError::InvalidUrl(
                url::ParseError::RelativeUrlWithoutBase
            ))
        ),
        "{refused:?}"
    );
}

#[test]
fn post_form_json_and_object_bodies() {
    let hb = Httpbin::shared();
    let done = send(Request::post(&hb.url("/post")).form([("name", "a b"), ("x", "1&2")]));
    let echo = body_json(&done);
    assert_eq!(echo["form"], json!({"name": "a b", "x": "1&2"}));
    assert_eq!(
        echo["headers"]["Content-Type"],
        "application/x-www-form-urlencoded"
    );

    let done = send(Request::post(&hb.url("/post")).json(&json!({"a": [1, 2], "b": null})));
    let echo = body_json(&done);
    assert_eq!(echo["json"], json!({"a": [1, 2], "b": null}));
    assert_eq!(echo["headers"]["Content-Type"], "application/json");

    // A Content-Type given wins.
    let done = send(
        Request::post(&hb.url("/post"))
            .header("Content-Type", "application/vnd.x+json")
            .json(&json!({"k": 1})),
    );
    assert_eq!(
        body_json(&done)["headers"]["Content-Type"],
        "application/vnd.x+json"
    );

    // r.http's rule: an object is a form for POST, JSON for PUT and PATCH
    // (every rule, byte for byte: object_bodies_follow_parse_and_rhttp_on_the_wire).
    let object = json!({"s": "text", "n": 5});
    let done = send(Request::post(&hb.url("/post")).object(&object));
    assert_eq!(body_json(&done)["form"], json!({"s": "text", "n": "5"}));
    for (req, path) in [
        (Request::put(&hb.url("/put")), "/put"),
        (Request::patch(&hb.url("/patch")), "/patch"),
    ] {
        let done = send(req.object(&object));
        assert_eq!(done.response_code(), 200, "{path}");
        assert_eq!(body_json(&done)["json"], object, "{path}");
    }
}

/// The Content-Type field and the body of a recorded request.
fn content_type_and_body(raw: &[u8]) -> (Option<String>, String) {
    let (head, body) = split_request(raw);
    let content_type = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-type")
            .then(|| value.trim().to_string())
    });
    (content_type, String::from_utf8(body).unwrap())
}

#[test]
fn object_bodies_follow_parse_and_rhttp_on_the_wire() {
    const CASES: usize = 9;
    let srv = ScriptServer::start(vec![(0..CASES)
        .flat_map(|_| {
            [
                Step::ReadRequest,
                Step::write(response("200 OK", &[], "ok")),
            ]
        })
        .collect()]);
    let u = srv.base_url();
    let vote = json!({"title": "Vote for Pedro", "n": 5});
    let cases: Vec<(Request, Option<&str>, &str)> = vec![
        // Parse's JSON recipe: the Content-Type given says JSON.
        (
            Request::post(&u)
                .header("Content-Type", "application/json;charset=utf-8")
                .object(&vote),
            Some("application/json;charset=utf-8"),
            r#"{"n":5,"title":"Vote for Pedro"}"#,
        ),
        // ... given after the body too.
        (
            Request::post(&u)
                .object(&vote)
                .header_line("content-type: application/vnd.api+json"),
            Some("application/vnd.api+json"),
            r#"{"n":5,"title":"Vote for Pedro"}"#,
        ),
        // Parse's default and r.http's POST: a form; null is an empty value.
        (
            Request::post(&u).object(&json!({"title": "Vote for Pedro", "n": 5, "z": null})),
            Some("application/x-www-form-urlencoded"),
            "n=5&title=Vote+for+Pedro&z=",
        ),
        // r.http: a POST string goes as it is (JSON text with a JSON type).
        (
            Request::post(&u)
                .header("Content-Type", "application/json")
                .object(&json!(r#"{"raw": "as is"}"#)),
            Some("application/json"),
            r#"{"raw": "as is"}"#,
        ),
        (
            Request::post(&u).object(&json!("a=1&b=2")),
            Some("application/x-www-form-urlencoded"),
            "a=1&b=2",
        ),
        // r.http: PUT, PATCH and DELETE send JSON; a string as it is.
        (
            Request::delete(&u).object(&vote),
            Some("application/json"),
            r#"{"n":5,"title":"Vote for Pedro"}"#,
        ),
        (Request::put(&u).object(&json!("plain")), None, "plain"),
        (
            Request::patch(&u).object(&json!([1, "two", null])),
            Some("application/json"),
            r#"[1,"two",null]"#,
        ),
        // A form Content-Type makes a PUT object a form.
        (
            Request::put(&u)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .object(&vote),
            Some("application/x-www-form-urlencoded"),
            "n=5&title=Vote+for+Pedro",
        ),
    ];
    assert_eq!(cases.len(), CASES);
    // One HttpRequest: every request on the one kept-alive connection.
    let mut http = pollhttp::HttpRequest::new();
    let expected: Vec<(Option<&str>, &str)> = cases.iter().map(|(_, t, b)| (*t, *b)).collect();
    for (req, _, _) in cases {
        let method = req.method().to_string();
        let done = req.timeout(TIMEOUT).send_with(&mut http);
        assert_eq!(done.map(|d| d.response_code()).ok(), Some(200), "{method}");
    }
    assert_eq!(srv.connections_accepted(), 1);
    let got: Vec<(Option<String>, String)> = srv
        .requests()
        .iter()
        .map(|r| content_type_and_body(r))
        .collect();
    let got: Vec<(Option<&str>, &str)> = got
        .iter()
        .map(|(t, b)| (t.as_deref(), b.as_str()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn multipart_text_and_file_parts_are_echoed_byte_for_byte() {
    let hb = Httpbin::shared();
    let dir = TempDir::new("pollhttp-web-multipart").unwrap();
    let path = dir.path().join("notes.txt");
    let content: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    std::fs::write(&path, &content).unwrap();
    let mut form = Multipart::new();
    form.text("title", "hello \"quoted\" world")
        .unwrap()
        .file("upload", &path)
        .unwrap()
        .bytes(
            "inline",
            "in.bin",
            "application/octet-stream",
            &b"raw bytes"[..],
        )
        .unwrap();
    let done = send(Request::post(&hb.url("/post")).multipart(form));
    assert_eq!(done.response_code(), 200);
    let echo = body_json(&done);
    assert_eq!(echo["form"]["title"], "hello \"quoted\" world");
    assert_eq!(echo["files"]["upload"], content.as_str());
    assert_eq!(echo["files"]["inline"], "raw bytes");
    let ct = echo["headers"]["Content-Type"].as_str().unwrap();
    assert!(
        ct.starts_with("multipart/form-data; boundary=pollhttp-"),
        "{ct}"
    );
    // Every part's size is known: Content-Length, not chunked.
    assert!(echo["headers"]["Content-Length"].as_str().is_some());
}

#[test]
fn multipart_filename_with_cr_lf_is_refused_with_its_part_and_field() {
    let mut form = Multipart::new();
    form.text("ok", "1").unwrap();
    let err = form
        .file_with("f", "/dev/null", "evil\r\nX-Injected: 1", "text/plain")
        .unwrap_err();
    assert!(
        matches!(
            err,
            MultipartError::ControlCharacter {
                part: 1,
                field: "filename"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn text_decodes_by_charset_and_json_errors_are_typed() {
    let hb = Httpbin::shared();
    let done = send(Request::get(&hb.url("/encoding/utf8")));
    let text = done.text().unwrap();
    assert!(
        text.contains("∮ E⋅da = Q"),
        "{}",
        &text[..200.min(text.len())]
    );

    // httpbin adds the asked-for field after its own: the map keeps both,
    // in wire order.
    let done = send(Request::get(
        &hb.url("/response-headers?Content-Type=text/plain;%20charset=ISO-8859-1"),
    ));
    assert_eq!(
        done.header_map()["content-type"],
        ["application/json", "text/plain; charset=ISO-8859-1"]
    );
    // A Latin-1 body decoded by its charset.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response(
            "200 OK",
            &[("Content-Type", "text/plain; charset=ISO-8859-1")],
            b"caf\xe9",
        )),
    ]]);
    let done = send(Request::get(&srv.base_url()));
    assert_eq!(done.encoding().name(), "windows-1252");
    assert_eq!(done.text().unwrap(), "café");

    let done = send(Request::get(&hb.url("/html")));
    let err = done.json::<Value>().unwrap_err();
    assert!(matches!(err, pollhttp::web::BodyError::Json(_)), "{err:?}");
    // auto: text/html is text.
    assert!(matches!(
        done.parse(pollhttp::web::ResultFormat::Auto).unwrap(),
        pollhttp::web::Parsed::Text(_)
    ));
}

#[test]
fn status_as_error_is_configurable() {
    let hb = Httpbin::shared();
    // Godot's default: a 404 is a complete response.
    let done = send(Request::get(&hb.url("/status/404")));
    assert_eq!(
        (done.result, done.response_code()),
        (RequestResult::Success, 404)
    );
    // Parse / axios: non-2xx rejects, with the whole response.
    let err = Request::get(&hb.url("/status/404"))
        .error_for_status()
        .timeout(TIMEOUT)
        .send()
        .unwrap_err();
    match &err {
        WebError::Status(c) => assert_eq!(c.response_code(), 404),
        other => panic!("{other:?}"),
    }
    // validateStatus.
    let done = Request::get(&hb.url("/status/404"))
        .validate_status(|s| s < 500)
        .timeout(TIMEOUT)
        .send()
        .unwrap();
    assert_eq!(done.response_code(), 404);
}

#[test]
fn follow_redirects_false_gives_the_3xx_with_its_body() {
    let hb = Httpbin::shared();
    let done = send(Request::get(&hb.url("/redirect/2")).follow_redirects(false));
    assert_eq!(
        (done.result, done.response_code()),
        (RequestResult::Success, 302)
    );
    assert_eq!(
        done.headers().get_str("location"),
        Some("/relative-redirect/1")
    );
    assert_eq!(done.redirects, 0);
}

#[test]
fn cookie_jar_takes_set_cookie_from_a_302_and_sends_it_on() {
    let hb = Httpbin::shared();
    let jar = Arc::new(Mutex::new(CookieJar::new()));
    // /cookies/set answers 302 with Set-Cookie, then /cookies echoes them.
    let done = send(Request::get(&hb.url("/cookies/set?a=1&b=two")).cookie_jar(Arc::clone(&jar)));
    assert_eq!(done.redirects, 1);
    assert_eq!(body_json(&done)["cookies"], json!({"a": "1", "b": "two"}));
    // The next request with the same jar sends them too, merged with the
    // caller's own Cookie field.
    let done = send(
        Request::get(&hb.url("/cookies"))
            .header("Cookie", "mine=x")
            .cookie_jar(Arc::clone(&jar)),
    );
    assert_eq!(
        body_json(&done)["cookies"],
        json!({"a": "1", "b": "two", "mine": "x"})
    );
    // Save and load.
    let mut saved = Vec::new();
    jar.lock().unwrap().save(&mut saved).unwrap();
    let loaded = CookieJar::load(&saved[..]).unwrap();
    let url = url::Url::parse(&hb.url("/cookies")).unwrap();
    let header = loaded.cookie_header(&url).unwrap();
    assert!(
        header.contains("a=1") && header.contains("b=two"),
        "{header}"
    );
}

/// The `Cookie` field of a recorded request, if any.
fn cookie_field(raw: &[u8]) -> Option<String> {
    let (head, _) = split_request(raw);
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("cookie")
            .then(|| value.trim().to_string())
    })
}

#[test]
fn expires_in_every_cookie_date_form_decides_what_is_sent() {
    // RFC 6265 §5.1.1's forms the HTTP-date parser refuses: an expired
    // cookie is not stored, a future one is persistent, and an expired
    // one removes the cookie it names.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response(
            "200 OK",
            &[
                ("Set-Cookie", "old=1"),
                ("Set-Cookie", "late=2; Expires=Fri Feb 13 11:56:27 GMT 2132"),
                (
                    "Set-Cookie",
                    "gone=3; Expires=Monday, 13-Jun-1988 03:04:55 GMT",
                ),
            ],
            "",
        )),
        Step::ReadRequest,
        Step::write(response(
            "200 OK",
            &[("Set-Cookie", "old=x; expires=Mon, 13-Jun-1988 03:04:55 GMT")],
            "",
        )),
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "")),
    ]]);
    let jar = CookieJar::shared();
    let mut http = pollhttp::HttpRequest::new();
    for _ in 0..3 {
        let done = Request::get(&format!("{}/", srv.base_url()))
            .cookie_jar(Arc::clone(&jar))
            .timeout(TIMEOUT)
            .send_with(&mut http)
            .unwrap();
        assert_eq!(done.response_code(), 200);
    }
    let sent: Vec<Option<String>> = srv.requests().iter().map(|r| cookie_field(r)).collect();
    assert_eq!(
        sent,
        [None, Some("late=2; old=1".into()), Some("late=2".into())]
    );
    let mut saved = Vec::new();
    jar.lock().unwrap().save_netscape(&mut saved).unwrap();
    let saved = String::from_utf8(saved).unwrap();
    assert!(
        saved.ends_with("\n127.0.0.1\tFALSE\t/\tFALSE\t5115959787\tlate\t2\n"),
        "{saved}"
    );
}

#[test]
fn a_cookie_for_a_public_suffix_is_never_sent() {
    // The scripted server is an HTTP proxy: the requests name their hosts,
    // and no name is resolved.
    let answer =
        |set: &[(&str, &str)]| vec![Step::ReadRequest, Step::write(response("200 OK", set, ""))];
    let srv = ScriptServer::start(vec![
        answer(&[
            ("Set-Cookie", "all=1; Domain=com"),
            ("Set-Cookie", "site=2; Domain=example.com"),
            ("Set-Cookie", "host=3"),
        ]),
        answer(&[]),
        answer(&[]),
    ]);
    let jar = CookieJar::shared();
    for u in [
        "http://shop.example.com/",
        "http://other.com/",
        "http://www.example.com/",
    ] {
        let done = Request::get(u)
            .cookie_jar(Arc::clone(&jar))
            .configure(|s| s.proxy.http = Some(("127.0.0.1".into(), srv.port())))
            .timeout(TIMEOUT)
            .send_with(&mut pollhttp::HttpRequest::new())
            .unwrap();
        assert_eq!(done.response_code(), 200, "{u}");
    }
    let requests = srv.requests();
    let lines: Vec<&str> = requests
        .iter()
        .map(|r| std::str::from_utf8(r).unwrap().lines().next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "GET http://shop.example.com/ HTTP/1.1",
            "GET http://other.com/ HTTP/1.1",
            "GET http://www.example.com/ HTTP/1.1",
        ]
    );
    let sent: Vec<Option<String>> = requests.iter().map(|r| cookie_field(r)).collect();
    assert_eq!(sent, [None, None, Some("site=2".into())]);
}

#[test]
fn a_file_that_is_not_a_cookie_jar_is_refused_with_its_line() {
    // JSON that breaks on its second line.
    let err = CookieJar::load(&b"[\n  {\"raw_cookie\": oops}\n]"[..]).unwrap_err();
    assert!(
        matches!(err, CookieJarError::NotAJar { line: 2 }),
        "{err:?}"
    );
    // Neither JSON nor Netscape lines (curl's -b FILE reads either).
    let err = CookieJar::load_any(&b"# a comment\nthis is not\na cookie jar\n"[..]).unwrap_err();
    assert!(
        matches!(err, CookieJarError::NotAJar { line: 2 }),
        "{err:?}"
    );
    // A JSON object, not a list of cookies: refused where it starts.
    let err = CookieJar::load(&b"{\"not\": \"a jar\"\nplain words\n"[..]).unwrap_err();
    assert!(
        matches!(err, CookieJarError::NotAJar { line: 1 }),
        "{err:?}"
    );
}

#[test]
fn response_cookies_are_parsed() {
    let hb = Httpbin::shared();
    let done = send(Request::get(&hb.url("/cookies/set?k=v")).follow_redirects(false));
    let cookies = done.cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_eq!(
        (cookies[0].name.as_str(), cookies[0].value.as_str()),
        ("k", "v")
    );
    assert_eq!(cookies[0].path.as_deref(), Some("/"));
}

#[test]
fn basic_auth_from_options() {
    let hb = Httpbin::shared();
    let done = send(Request::get(&hb.url("/basic-auth/user/pa:ss")).basic_auth("user", "pa:ss"));
    assert_eq!(done.response_code(), 200);
    assert_eq!(body_json(&done)["authenticated"], true);
    let done = send(Request::get(&hb.url("/basic-auth/user/pass")).basic_auth("user", "wrong"));
    assert_eq!(done.response_code(), 401);
}

#[test]
fn digest_auth_md5_and_sha256_answer_the_challenge_on_the_same_connection() {
    let hb = Httpbin::shared();
    for algorithm in ["MD5", "SHA-256"] {
        let done = send(
            Request::get(&hb.url(&format!("/digest-auth/auth/user/passwd/{algorithm}")))
                .digest_auth("user", "passwd"),
        );
        assert_eq!(
            done.response_code(),
            200,
            "{algorithm}: {:?}",
            done.headers()
        );
        assert_eq!(body_json(&done)["authenticated"], true, "{algorithm}");
        assert_eq!(done.redirects, 0);
    }
    // A wrong password: the second 401 is the result (one answer only).
    let done = send(
        Request::get(&hb.url("/digest-auth/auth/user/passwd/MD5")).digest_auth("user", "nope"),
    );
    assert_eq!(done.response_code(), 401);
}

#[test]
fn digest_answer_goes_over_the_kept_connection() {
    // A scripted server: one connection, a challenge, then the answer.
    let challenge = response(
        "401 Unauthorized",
        &[(
            "WWW-Authenticate",
            "Digest realm=\"r\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-256",
        )],
        "no",
    );
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(challenge),
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "yes")),
    ]]);
    let done = send(
        Request::get(&format!("{}{}", srv.base_url(), "/p?q=1")).auth(Auth::digest("u", "pw")),
    );
    assert_eq!((done.response_code(), &done.body[..]), (200, &b"yes"[..]));
    assert_eq!(srv.connections_accepted(), 1);
    let requests = srv.requests();
    let (head, _) = split_request(&requests[1]);
    let auth = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .unwrap();
    for part in [
        "Digest username=\"u\"",
        "realm=\"r\"",
        "nonce=\"n1\"",
        "uri=\"/p?q=1\"",
        "algorithm=SHA-256",
        "qop=auth",
        "nc=00000001",
    ] {
        assert!(auth.contains(part), "{part} not in {auth}");
    }
}

fn page(status: &str, link: Option<&str>, body: &str) -> Vec<u8> {
    let mut fields = vec![];
    if let Some(l) = link {
        fields.push(("Link", l));
    }
    response(status, &fields, body)
}

#[test]
fn link_next_pagination_three_pages_with_a_relative_next() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(page(
            "200 OK",
            Some("</items?page=2>; rel=\"next\", </items?page=9>; rel=\"last\""),
            "p1",
        )),
        Step::ReadRequest,
        Step::write(page(
            "200 OK",
            Some("<items?page=3>; rel=\"prev next\""),
            "p2",
        )),
        Step::ReadRequest,
        Step::write(page("200 OK", Some("</items?page=2>; rel=\"prev\""), "p3")),
    ]]);
    let pages: Vec<_> = Paginator::new(
        Request::get(&format!("{}{}", srv.base_url(), "/items?page=1")).timeout(TIMEOUT),
        Pagination::LinkNext,
    )
    .collect();
    let bodies: Vec<_> = pages
        .iter()
        .map(|p| String::from_utf8_lossy(&p.as_ref().unwrap().body).into_owned())
        .collect();
    assert_eq!(bodies, ["p1", "p2", "p3"]);
    assert_eq!(srv.connections_accepted(), 1, "pages share the connection");
    let paths: Vec<_> = srv
        .requests()
        .iter()
        .map(|r| split_request(r).0.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "GET /items?page=1 HTTP/1.1",
            "GET /items?page=2 HTTP/1.1",
            "GET /items?page=3 HTTP/1.1"
        ]
    );
}

#[test]
fn a_pagination_loop_is_stopped_by_page_limit_and_zero_sends_nothing() {
    let looping = || page("200 OK", Some("</same>; rel=next"), "again");
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(looping()),
        Step::ReadRequest,
        Step::write(looping()),
        Step::ReadRequest,
        Step::write(looping()),
    ]]);
    let mut pages = Paginator::new(
        Request::get(&format!("{}{}", srv.base_url(), "/same")).timeout(TIMEOUT),
        Pagination::LinkNext,
    )
    .page_limit(3);
    let got = pages.by_ref().filter(|p| p.is_ok()).count();
    assert_eq!((got, pages.pages(), pages.is_done()), (3, 3, true));
    assert_eq!(srv.requests().len(), 3);

    let none: Vec<_> = Paginator::new(
        Request::get(&format!("{}{}", srv.base_url(), "/same")),
        Pagination::LinkNext,
    )
    .page_limit(0)
    .collect();
    assert!(none.is_empty());
    assert_eq!(srv.requests().len(), 3);
}

#[test]
fn custom_pagination_reads_the_last_page() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "{\"next\": \"/b\"}")),
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "{\"next\": null}")),
    ]]);
    let next = |page: &pollhttp::Completed| {
        let v: Value = page.json().ok()?;
        v["next"].as_str().map(str::to_string)
    };
    let pages: Vec<_> = Paginator::new(
        Request::get(&format!("{}{}", srv.base_url(), "/a")).timeout(TIMEOUT),
        Pagination::Custom(Box::new(next)),
    )
    .map(|p| p.unwrap().final_url)
    .collect();
    assert_eq!(pages.len(), 2);
    assert!(pages[1].ends_with("/b"), "{pages:?}");
}

fn quick_retries(n: u32) -> RetryPolicy {
    let mut p = RetryPolicy::new(n);
    p.base_delay = Duration::from_millis(10);
    p.max_delay = Duration::from_secs(5);
    p.budget = RetryBudget::new(100, Duration::from_secs(60));
    p
}

#[test]
fn a_503_with_retry_after_is_retried_and_attempts_are_counted() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response(
            "503 Service Unavailable",
            &[("Retry-After", "1")],
            "busy",
        )),
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "fine")),
    ]]);
    // The backoff alone (base 30 s) would be past the 10 s deadline: only
    // Retry-After's 1 s lets the retry happen.
    let mut policy = quick_retries(2);
    policy.base_delay = Duration::from_secs(30);
    policy.max_delay = Duration::from_secs(60);
    let done = Request::get(&format!("{}{}", srv.base_url(), "/r"))
        .retry(policy)
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap();
    assert_eq!((done.response_code(), &done.body[..]), (200, &b"fine"[..]));
    assert_eq!(done.attempts, 2);
    assert_eq!(
        srv.connections_accepted(),
        1,
        "the retry reused the connection"
    );
}

#[test]
fn a_retry_after_past_the_deadline_gives_the_503() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response(
            "503 Service Unavailable",
            &[("Retry-After", "3600")],
            "busy",
        )),
    ]]);
    let done = Request::get(&format!("{}{}", srv.base_url(), "/r"))
        .retry(quick_retries(3))
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap();
    assert_eq!(
        (done.response_code(), &done.body[..], done.attempts),
        (503, &b"busy"[..], 1)
    );
}

#[test]
fn the_retry_budget_stops_a_retry_storm() {
    let busy = || response("500 Internal Server Error", &[], "x");
    let srv = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write(busy()),
            Step::ReadRequest,
            Step::write(busy()),
        ],
        vec![Step::ReadRequest, Step::write(busy())],
    ]);
    let mut policy = quick_retries(5);
    policy.budget = RetryBudget::new(1, Duration::from_secs(600));
    // The first request takes the origin's one retry...
    let first = Request::get(&format!("{}{}", srv.base_url(), "/a"))
        .retry(policy.clone())
        .timeout(TIMEOUT)
        .send()
        .unwrap();
    assert_eq!((first.response_code(), first.attempts), (500, 2));
    // ...and the second, sharing the budget, gets none.
    let second = Request::get(&format!("{}{}", srv.base_url(), "/b"))
        .retry(policy)
        .timeout(TIMEOUT)
        .send()
        .unwrap();
    assert_eq!((second.response_code(), second.attempts), (500, 1));
    assert_eq!(srv.requests().len(), 3);
}

#[test]
fn connection_failures_are_retried_for_get_but_a_sent_post_is_not() {
    let srv = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Reset],
        vec![
            Step::ReadRequest,
            Step::write(response("200 OK", &[], "ok")),
        ],
    ]);
    let done = Request::get(&format!("{}{}", srv.base_url(), "/g"))
        .retry(quick_retries(2))
        .timeout(TIMEOUT)
        .send()
        .unwrap();
    assert_eq!((done.response_code(), done.attempts), (200, 2));

    let srv = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Reset],
        vec![
            Step::ReadRequest,
            Step::write(response("200 OK", &[], "ok")),
        ],
    ]);
    let err = Request::post(&format!("{}{}", srv.base_url(), "/p"))
        .text("once")
        .retry(quick_retries(2))
        .timeout(TIMEOUT)
        .send()
        .unwrap_err();
    match err {
        WebError::Failed(c) => {
            assert_eq!((c.result, c.attempts), (RequestResult::ConnectionError, 1))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.requests().len(), 1);
}

#[test]
fn all_and_all_settled_on_one_pool() {
    let hb = Httpbin::shared();
    let mut pool = RequestPool::new().unwrap();
    let requests = (0..5).map(|i| Request::get(&hb.url(&format!("/get?i={i}"))).timeout(TIMEOUT));
    let mut batch = Batch::all(&mut pool, requests).unwrap();
    let others = batch.run(&mut pool, Duration::from_millis(200));
    assert!(others.is_empty());
    let pages = batch.into_all().unwrap();
    let order: Vec<_> = pages
        .iter()
        .map(|c| body_json(c)["args"]["i"].clone())
        .collect();
    assert_eq!(order, ["0", "1", "2", "3", "4"]);

    // all: the first failure stops the rest.
    let requests = vec![
        Request::get(&hb.url("/delay/10")).timeout(TIMEOUT),
        Request::get(&hb.url("/status/500"))
            .error_for_status()
            .timeout(TIMEOUT),
    ];
    let mut batch = Batch::all(&mut pool, requests).unwrap();
    batch.run(&mut pool, Duration::from_millis(200));
    match batch.into_all() {
        Err(WebError::Status(c)) => assert_eq!(c.response_code(), 500),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.in_flight(), 0, "the slow one was cancelled");

    // all_settled: every result, a refusal in its place.
    let requests = vec![
        Request::get(&hb.url("/status/201")),
        Request::get("ftp://nope/"),
        Request::get(&hb.url("/status/503")).error_for_status(),
    ];
    let mut batch = Batch::all_settled(&mut pool, requests);
    batch.run(&mut pool, Duration::from_millis(200));
    let results = batch.into_settled();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().response_code(), 201);
    assert!(matches!(
        results[1],
        Err(WebError::Refused(RequestError::UnsupportedScheme(_)))
    ));
    assert!(matches!(&results[2], Err(WebError::Status(c)) if c.response_code() == 503));

    // The blocking shape, on its own pool.
    let got = pollhttp::web::all(
        [Request::get(&hb.url("/status/204")).timeout(TIMEOUT)],
        PoolSettings::default(),
    )
    .unwrap();
    assert_eq!(got[0].response_code(), 204);
}

#[test]
fn bad_input_gets_its_exact_error() {
    // A field line without a colon.
    let err = Request::get("http://127.0.0.1:9/")
        .header_lines(&["X-Ok: 1", "no colon here"])
        .send()
        .unwrap_err();
    match err {
        WebError::FieldLine(e) => {
            assert_eq!((e.index, e.kind), (1, FieldLineErrorKind::NoColon))
        }
        other => panic!("{other:?}"),
    }
    // A body that fails to serialize (a map with non-string keys).
    let mut bad = BTreeMap::new();
    bad.insert(vec![1u8], 1);
    let err = Request::post("http://127.0.0.1:9/")
        .json(&bad)
        .send()
        .unwrap_err();
    assert!(matches!(err, WebError::Serialize(_)), "{err:?}");
    // Data r.http refuses: each its DataError, and nothing is sent.
    let srv = ScriptServer::start(vec![]);
    let u = srv.base_url();
    for (req, expected) in [
        (
            Request::get(&u).object(&json!({"q": 1})),
            DataError::Method("GET".into()),
        ),
        (
            Request::post(&u).object(&json!(["a", "b"])),
            DataError::NotStringOrObject(ValueKind::Array),
        ),
        (
            Request::post(&u).object(&json!({"a": 1, "nested": {"b": 2}})),
            DataError::FormMember {
                key: "nested".into(),
                kind: ValueKind::Object,
            },
        ),
        (
            Request::post(&u).object(&json!({"flag": true})),
            DataError::FormMember {
                key: "flag".into(),
                kind: ValueKind::Bool,
            },
        ),
    ] {
        match req.send() {
            Err(WebError::Data(e)) => assert_eq!(e, expected),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(srv.connections_accepted(), 0);
}

#[test]
fn proxy_basic_auth_goes_on_connect_and_never_to_the_origin() {
    use pollhttp_tests::certs::TestCa;
    use pollhttp_tests::proxy::{Proxy, ProxyOptions};
    use pollhttp_tests::script::TlsScriptServer;
    let ca = TestCa::shared();
    let origin = TlsScriptServer::start(
        ca.server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::write(response("200 OK", &[], "secret")),
        ]],
    );
    // "u:p" in base64.
    let proxy = Proxy::start(ProxyOptions {
        require_auth: Some("Basic dTpw".into()),
        ..ProxyOptions::default()
    });
    let tls = pollhttp::TlsOptions::with_root_pem(ca.ca_pem.as_bytes()).unwrap();
    let done = send(
        Request::get(&format!("https://localhost:{}/x", origin.port())).configure(|s| {
            s.proxy.https = Some(("127.0.0.1".into(), proxy.port()));
            s.proxy.auth = Some(("u".into(), "p".into()));
            s.tls = Some(tls);
        }),
    );
    assert_eq!(
        (done.response_code(), &done.body[..]),
        (200, &b"secret"[..]),
        "{}",
        done.reason
    );
    let heads = proxy.request_heads();
    assert!(heads[0].starts_with("CONNECT localhost:"), "{heads:?}");
    assert!(
        heads[0].contains("Proxy-Authorization: Basic dTpw"),
        "{heads:?}"
    );
    let (head, _) = split_request(&origin.requests()[0]);
    assert!(
        !head.to_ascii_lowercase().contains("proxy-authorization"),
        "{head}"
    );

    // Without the credentials the proxy's 407 is CantConnect.
    let done = Request::get(&format!("https://localhost:{}/x", origin.port()))
        .configure(|s| {
            s.proxy.https = Some(("127.0.0.1".into(), proxy.port()));
            s.tls = Some(pollhttp::TlsOptions::with_root_pem(ca.ca_pem.as_bytes()).unwrap());
        })
        .timeout(TIMEOUT)
        .send()
        .unwrap_err();
    assert!(
        matches!(&done, WebError::Failed(c) if c.result == RequestResult::CantConnect),
        "{done:?}"
    );
}

#[test]
fn an_http_proxy_gets_proxy_authorization_with_each_request() {
    use pollhttp_tests::proxy::{Proxy, ProxyOptions};
    let origin = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "via proxy")),
    ]]);
    let proxy = Proxy::start(ProxyOptions {
        require_auth: Some("Basic dTpw".into()),
        ..ProxyOptions::default()
    });
    let done = send(
        Request::get(&format!("{}/y", origin.base_url())).configure(|s| {
            s.proxy.http = Some(("127.0.0.1".into(), proxy.port()));
            s.proxy.auth = Some(("u".into(), "p".into()));
        }),
    );
    assert_eq!(&done.body[..], b"via proxy");
    assert_eq!(
        proxy.request_lines(),
        [format!("GET {}/y HTTP/1.1", origin.base_url())]
    );
}

fn resume_server(answer: Vec<u8>) -> ScriptServer {
    ScriptServer::start(vec![vec![Step::ReadRequest, Step::Write(answer)]])
}

fn resume_get(srv: &ScriptServer, file: &std::path::Path) -> pollhttp::Completed {
    send(
        Request::get(&format!("{}/f", srv.base_url()))
            .download_file(file)
            .configure(|s| s.body.resume = true),
    )
}

#[test]
fn resume_appends_a_206_rewrites_on_200_and_keeps_the_file_on_416() {
    let dir = TempDir::new("pollhttp-web-resume").unwrap();
    let file = dir.path().join("part.bin");
    let lm = "Wed, 21 Oct 2015 07:28:00 GMT";

    // A cut download: 6 bytes there; the server sends the rest.
    std::fs::write(&file, "hello ").unwrap();
    let srv = resume_server(response(
        "206 Partial Content",
        &[("Content-Range", "bytes 6-10/11"), ("Last-Modified", lm)],
        "world",
    ));
    let done = resume_get(&srv, &file);
    assert_eq!(
        (done.result, done.response_code()),
        (RequestResult::Success, 206)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"hello world");
    let (head, _) = split_request(&srv.requests()[0]);
    assert!(head.contains("Range: bytes=6-\r\n"), "{head}");
    // No validator is known for a file this client did not start: the
    // Range goes alone, as curl's -C -.
    assert!(!head.contains("If-Range"), "{head}");
    // The file now carries the resource's Last-Modified (curl's -R).
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    assert_eq!(httpdate::fmt_http_date(modified), lm);

    // The resource changed: a 200 rewrites the file whole.
    let srv = resume_server(response("200 OK", &[], "brand new"));
    let done = resume_get(&srv, &file);
    assert_eq!(done.response_code(), 200);
    assert_eq!(std::fs::read(&file).unwrap(), b"brand new");
    let (head, _) = split_request(&srv.requests()[0]);
    assert!(head.contains("Range: bytes=11-\r\n"), "{head}");

    // Already complete: 416 is the result and the file stays.
    let srv = resume_server(response(
        "416 Range Not Satisfiable",
        &[("Content-Range", "bytes */9")],
        "nothing",
    ));
    let done = resume_get(&srv, &file);
    assert_eq!(
        (done.result, done.response_code()),
        (RequestResult::Success, 416)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"brand new");

    // A 206 from elsewhere: refused, the file untouched.
    let srv = resume_server(response(
        "206 Partial Content",
        &[("Content-Range", "bytes 0-8/9")],
        "brand new",
    ));
    let err = Request::get(&format!("{}/f", srv.base_url()))
        .download_file(&file)
        .configure(|s| s.body.resume = true)
        .timeout(TIMEOUT)
        .send()
        .unwrap_err();
    match err {
        WebError::Failed(c) => assert!(
            matches!(
                c.failure,
                Some(pollhttp::RequestFailure::RangeMismatch { expected: 9, .. })
            ),
            "{:?}",
            c.failure
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"brand new");
}

#[test]
fn http_crate_request_in_response_out() {
    let hb = Httpbin::shared();
    let req = http::Request::put(hb.url("/put?via=http"))
        .header("X-Trace", "7")
        .header("Content-Type", "text/plain")
        .body(bytes::Bytes::from_static(b"payload"))
        .unwrap();
    let done = send(Request::from_http(req));
    let resp = done.into_http().unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_11);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let echo: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(echo["data"], "payload");
    assert_eq!(echo["args"]["via"], "http");
    assert_eq!(echo["headers"]["X-Trace"], "7");
}
