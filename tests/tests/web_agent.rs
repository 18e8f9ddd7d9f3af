//! `web::Agent`: connections and defaults kept across calls, against a real
//! nginx and a scripted server.

use std::collections::HashSet;
use std::time::Duration;

use pollhttp::web::{Agent, Request};
use pollhttp::RequestResult;
use pollhttp_tests::nginx::{Nginx, HELLO_BODY};
use pollhttp_tests::script::{ok_response, split_request, ScriptServer, Step};

/// Connections (nginx's `$connection`, the first field of its log line) that
/// carried our requests (not the harness's readiness probes).
fn connections_in(log: &str) -> HashSet<String> {
    log.lines()
        .filter(|l| !l.contains("/.pollhttp-instance"))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn fifty_sends_through_an_agent_share_one_connection() {
    let nginx = Nginx::start();
    let mut agent = Agent::new().unwrap();
    agent.settings_mut().timeouts.total = Some(Duration::from_secs(20));
    agent.set_base_url(&nginx.url("/")).unwrap();
    for _ in 0..50 {
        let done = agent.send(agent.get("hello.txt")).unwrap();
        assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
        assert_eq!(done.body, HELLO_BODY.as_bytes());
    }
    let log = nginx.wait_access_log(2 + 50, Duration::from_secs(5));
    assert_eq!(connections_in(&log).len(), 1, "{log}");

    // Request::send makes a new HttpRequest, so a new connection, per call.
    for _ in 0..3 {
        let done = Request::get(&nginx.url("/hello.txt"))
            .timeout(Duration::from_secs(20))
            .send()
            .unwrap();
        assert_eq!(done.result, RequestResult::Success);
    }
    let log = nginx.wait_access_log(2 + 53, Duration::from_secs(5));
    assert_eq!(connections_in(&log).len(), 4, "{log}");
}

#[test]
fn an_agents_fields_go_with_every_request_unless_it_gives_its_own() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("one")),
        Step::ReadRequest,
        Step::Write(ok_response("two")),
    ]]);
    let mut agent = Agent::new().unwrap();
    agent.settings_mut().timeouts.total = Some(Duration::from_secs(20));
    agent.set_header("X-Client", "agent");
    agent.set_header("X-Trace", "default");
    let url = server.base_url();
    let one = agent.send(agent.get(&url)).unwrap();
    let two = agent
        .send(agent.get(&url).header("x-trace", "mine"))
        .unwrap();
    assert_eq!((&one.body[..], &two.body[..]), (&b"one"[..], &b"two"[..]));
    let heads: Vec<String> = server
        .requests()
        .iter()
        .map(|r| split_request(r).0)
        .collect();
    assert!(heads[0].contains("\r\nX-Client: agent\r\n"), "{}", heads[0]);
    assert!(
        heads[0].contains("\r\nX-Trace: default\r\n"),
        "{}",
        heads[0]
    );
    assert!(heads[1].contains("\r\nX-Client: agent\r\n"), "{}", heads[1]);
    assert!(heads[1].contains("\r\nx-trace: mine\r\n"), "{}", heads[1]);
    assert!(!heads[1].contains("X-Trace: default"), "{}", heads[1]);
    assert_eq!(server.connections_accepted(), 1);
}
