//! `cauce serve --tls-cert --tls-key`: HTTPS with a self-signed certificate (made by openssl),
//! spoken to by curl; a renewed certificate served after SIGHUP, and a broken one refused
//! without stopping the service; bad files refused at start with an error that names them.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{bin, cli, now, serve_with};

/// A self-signed certificate for 127.0.0.1 and its key, as `NAME.crt` and `NAME.key` in `dir`.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl runs (./test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (crt, key)
}

/// curl trusting only `ca`: the HTTP status, or curl's error when the request failed.
fn curl(ca: &Path, url: &str, args: &[&str]) -> Result<(u16, Value), String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs (./test.sh installs it)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, status) = text.rsplit_once('\n').unwrap();
    Ok((
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    ))
}

fn install(from: &(PathBuf, PathBuf), to: &(PathBuf, PathBuf)) {
    std::fs::copy(&from.0, &to.0).unwrap();
    std::fs::copy(&from.1, &to.1).unwrap();
}

fn hangup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn https_with_a_self_signed_certificate_renewed_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, second) = (
        self_signed(dir.path(), "first"),
        self_signed(dir.path(), "second"),
    );
    let live = (dir.path().join("live.crt"), dir.path().join("live.key"));
    install(&first, &live);
    let app = cli(&data, &["apps", "create", "--name", "shop"]);
    let key = app["api_key"].as_str().unwrap();
    let server = serve_with(
        &data,
        &[
            "--tls-cert",
            live.0.to_str().unwrap(),
            "--tls-key",
            live.1.to_str().unwrap(),
        ],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let health = format!("{}/healthz", server.base);

    // Ingestion and reads over HTTPS, trusting the first certificate.
    let batch = json!({ "sent_at": now(), "batch": [
        { "event_id": "e1", "name": "open", "timestamp": now(), "user_id": "u1" },
        { "event_id": "e2", "name": "buy", "timestamp": now(), "user_id": "u1" },
    ]});
    let header = format!("x-api-key: {key}");
    let posted = curl(
        &first.0,
        &format!("{}/v1/events", server.base),
        &[
            "-H",
            &header,
            "-H",
            "content-type: application/json",
            "--data-binary",
            &batch.to_string(),
        ],
    );
    assert_eq!(posted.as_ref().map(|r| r.0), Ok(202), "{posted:?}");
    let timeline = format!("{}/v1/users/u1/timeline", server.base);
    let start = Instant::now();
    loop {
        let (status, body) = curl(&first.0, &timeline, &["-H", &header]).unwrap();
        assert_eq!(status, 200, "{body}");
        if body["records"].as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not stored: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A client that trusts another certificate refuses the server; plain HTTP gets nowhere.
    let refused = curl(&second.0, &health, &[]).unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
    let plain = health.replacen("https://", "http://", 1);
    assert!(
        curl(&first.0, &plain, &[]).is_err(),
        "plain HTTP on the HTTPS port"
    );

    // The renewed certificate is served after SIGHUP, without a restart.
    install(&second, &live);
    hangup(server.pid());
    let start = Instant::now();
    while curl(&second.0, &health, &[]).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "not reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        curl(&first.0, &health, &[]).is_err(),
        "the old certificate is gone"
    );

    // A broken renewal is refused, and the server goes on with the certificate it has.
    std::fs::write(&live.0, "not a certificate").unwrap();
    hangup(server.pid());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(curl(&second.0, &health, &[]).map(|r| r.0), Ok(200));
}

/// Runs `cauce serve` with `args`, which must fail at start: what it said.
fn refused_at_start(data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn files_that_are_not_a_certificate_and_its_key_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (crt, key) = self_signed(dir.path(), "good");
    let (other_crt, _) = self_signed(dir.path(), "other");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let missing = dir.path().join("missing.pem");
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    let said = refused_at_start(&data, &["--tls-cert", &s(&junk), "--tls-key", &s(&key)]);
    assert!(
        said.contains("--tls-cert") && said.contains("junk.pem") && said.contains("no certificate"),
        "{said}"
    );
    let said = refused_at_start(&data, &["--tls-cert", &s(&crt), "--tls-key", &s(&missing)]);
    assert!(
        said.contains("--tls-key") && said.contains("missing.pem"),
        "{said}"
    );
    let said = refused_at_start(&data, &["--tls-cert", &s(&crt), "--tls-key", &s(&crt)]);
    assert!(
        said.contains("--tls-key") && said.contains("good.crt"),
        "a certificate as the key: {said}"
    );
    let said = refused_at_start(
        &data,
        &["--tls-cert", &s(&other_crt), "--tls-key", &s(&key)],
    );
    assert!(said.contains("do not make a usable pair"), "{said}");
    let said = refused_at_start(&data, &["--tls-cert", &s(&crt)]);
    assert!(said.contains("--tls-key"), "{said}");
}
