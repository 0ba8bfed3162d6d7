//! `cauce serve` against slow and idle clients: a half-sent request is closed within the header
//! timeout, 2,000 idle connections do not stop ingestion, a body that never arrives is answered
//! 408, and a stop takes no longer than its grace with a half-sent request open. A client that
//! guesses keys is held back after a few failures, while a good key from the same address goes
//! on.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use support::{cli, now, serve_with, Client};

fn key(data: &std::path::Path) -> String {
    let created = cli(data, &["apps", "create", "--name", "shop"]);
    created["api_key"].as_str().unwrap().to_owned()
}

fn one_event() -> serde_json::Value {
    json!({"event_id": format!("e-{}", now()), "name": "open", "timestamp": now()})
}

/// Reads until the server closes the connection (or 20 s pass); what it sent, and when it closed.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_half_sent_request_is_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--header-timeout", "1"]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: cauce\r\nContent-Type: application/json\r\n")
        .unwrap();
    let (_, took) = read_until_closed(&mut stream);
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    // The server still serves everyone else.
    let c = Client::new(&server.base);
    assert_eq!(c.get("/healthz", None).0, 200);
}

#[test]
fn a_body_that_never_arrives_is_answered_408() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let server = serve_with(dir.path(), &["--body-timeout", "1"]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: cauce\r\nx-api-key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"batch\":["
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (answer, took) = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[test]
fn two_thousand_idle_connections_do_not_stop_ingestion() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let server = serve_with(dir.path(), &[]);
    let idle: Vec<TcpStream> = (0..2_000)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    let c = Client::new(&server.base);
    let (status, body) = c.post("/v1/events", &key, &[one_event()]);
    assert_eq!(status, 202, "{body}");
    drop(idle);
}

#[test]
fn a_stop_waits_no_longer_than_its_grace_with_a_request_half_sent() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let mut server = serve_with(
        dir.path(),
        &["--shutdown-grace", "2", "--body-timeout", "60"],
    );
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: cauce\r\nx-api-key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"batch\":["
    );
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let took = server.interrupt();
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
}

#[test]
fn an_address_guessing_keys_is_held_back_and_a_good_key_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let good = key(data);
    let server = serve_with(data, &["--auth-failures-per-minute", "5"]);
    let c = Client::new(&server.base);
    assert_eq!(c.post("/v1/events", &good, &[one_event()]).0, 202);
    // Five failures a minute are allowed; the sixth guess is refused before any lookup. (A
    // reset refusal resent by the client counts too, so the 429 may come a guess earlier.)
    let mut refused = None;
    for i in 0..6 {
        let (status, body, retry_after) =
            c.post_retry_after("/v1/events", &format!("guess-{i}"), &[one_event()]);
        match (status, body["error"].as_str()) {
            (401, Some("invalid_api_key")) => {}
            (429, Some("too_many_auth_failures")) => {
                refused = Some((i, retry_after));
                break;
            }
            other => panic!("guess {i}: {other:?} {body}"),
        }
    }
    let (guesses, retry_after) = refused.expect("the address is held back");
    assert!(guesses >= 4, "held back after {guesses} failures");
    let wait = retry_after.expect("a Retry-After header");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // The good key, past the key cache's two seconds, still works from the same address.
    std::thread::sleep(Duration::from_millis(2_100));
    assert_eq!(c.post("/v1/events", &good, &[one_event()]).0, 202);
    // And nothing accepted was lost: both events are stored.
    let started = Instant::now();
    while c.get("/healthz", None).1["pending"] != 0 {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, timeline) = c.get("/v1/users/nobody/timeline", Some(&good));
    assert_eq!(status, 200, "{timeline}");
}

/// A refusal answered before the body is read (a bad key) still reaches a client that sends
/// its whole body first, as SDKs do: the server reads the rest before it answers, so that it
/// never closes with unread bytes, which makes the kernel reset the connection and can drop
/// the answer on its way.
#[test]
fn an_early_refusal_reaches_a_client_that_sends_its_whole_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &[]);
    let items: Vec<_> = (0..2_000).map(|_| one_event()).collect();
    let body = json!({ "batch": items }).to_string();
    assert!(body.len() > 100_000 && body.len() < 1024 * 1024);
    for attempt in 0..20 {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: cauce\r\nx-api-key: ck_wrong_{attempt}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        // In pieces, as a slow uplink sends it: the answer is ready long before the end.
        for piece in body.as_bytes().chunks(16 * 1024) {
            stream
                .write_all(piece)
                .expect("the server reads what the client sends");
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut answer = String::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while !answer.contains("}") {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) => panic!("attempt {attempt}: {e} instead of the answer"),
            }
        }
        assert!(
            answer.starts_with("HTTP/1.1 401"),
            "attempt {attempt}: {answer}"
        );
        assert!(
            answer.contains("unauthorized") || answer.contains("key"),
            "{answer}"
        );
    }
}
