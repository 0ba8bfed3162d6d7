//! Running the real `cauce` binary, for the end-to-end test and the load benchmark.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// The `cauce` binary that cargo built for this test or benchmark.
pub const BIN: &str = env!("CARGO_BIN_EXE_cauce");

/// The binary the black-box tests run: [`BIN`], or `CAUCE_BIN` when set (a release build, to
/// measure a debug test's figures at release speed).
pub fn bin() -> String {
    std::env::var("CAUCE_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// A running `cauce serve`, stopped when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Asks the server to stop, as Ctrl-C does, and waits until it has: how long it took.
    pub fn interrupt(&mut self) -> std::time::Duration {
        let started = std::time::Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "kill -INT {pid}");
        self.child.wait().unwrap();
        started.elapsed()
    }

    /// Asks the server to stop, as Ctrl-C does, and returns its peak resident memory, bytes.
    pub fn interrupt_peak_rss(&mut self) -> u64 {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "kill -INT {pid}");
        let (status, peak) = wait_peak_rss(&self.child);
        assert_eq!(status, 0, "cauce serve stopped cleanly");
        peak
    }

    /// Asks the server to stop with SIGTERM, as systemd, Docker and Kubernetes do, and waits
    /// until it has: its exit code (128 + the signal when a signal ended it).
    pub fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        wait_peak_rss(&self.child).0
    }

    /// Kills the server with SIGKILL, as a crash or the OOM killer does, and waits for it.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> &str {
        self.base.strip_prefix("http://").unwrap_or(&self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child process to end and returns its exit code (or 128 + the signal that
/// ended it) and its peak resident memory in bytes, as the kernel counted it (`wait4`).
pub fn wait_peak_rss(child: &Child) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: `rusage` is plain data, and `wait4` writes both out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    // Linux counts `ru_maxrss` in KiB.
    (code, usage.ru_maxrss as u64 * 1024)
}

/// Starts `cauce serve` on a free loopback port and waits until it listens.
pub fn serve(data: &Path) -> Server {
    serve_with(data, &[])
}

/// Starts `cauce serve` with extra arguments.
pub fn serve_with(data: &Path, extra: &[&str]) -> Server {
    serve_logging(data, extra, "warn", Stdio::inherit())
}

/// Starts `cauce serve` with extra arguments, the log filter `log` and its stderr to `logs`.
pub fn serve_logging(data: &Path, extra: &[&str], log: &str, logs: Stdio) -> Server {
    let mut child = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .arg("--data")
        .arg(data)
        .env("CAUCE_LOG", log)
        .stdout(Stdio::piped())
        .stderr(logs)
        .spawn()
        .expect("cauce serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("cauce listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, base }
}

/// Runs a `cauce` command on a data folder, which must succeed, and returns what it printed.
pub fn cli_text(data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Runs a `cauce` command on a data folder and reads its one JSON line.
pub fn cli(data: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&cli_text(data, args)).expect("one JSON line")
}

/// Creates an app named `name` whose key has `role`: (app id, key).
pub fn create_app(data: &Path, name: &str, role: &str) -> (String, String) {
    let app = cli(data, &["apps", "create", "--name", name, "--role", role]);
    let field = |f: &str| app[f].as_str().expect("apps create prints it").to_owned();
    (field("app_id"), field("api_key"))
}

/// Creates an app named `name` whose key has no practical rate limit (a million requests a
/// second), for the load and fault tests: (app id, key).
pub fn create_unlimited_app(data: &Path, name: &str) -> (String, String) {
    let app = cli(
        data,
        &["apps", "create", "--name", name, "--rate-limit", "1000000"],
    );
    let field = |f: &str| app[f].as_str().expect("apps create prints it").to_owned();
    (field("app_id"), field("api_key"))
}

/// An HTTP client of a running server; answers of any status come back as (status, JSON).
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client of `base`.
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            agent,
            base: base.to_owned(),
        }
    }

    /// POSTs `items` as a batch with `key`.
    pub fn post(&self, path: &str, key: &str, items: &[Value]) -> (u16, Value) {
        let (status, json, _) = self.post_retry_after(path, key, items);
        (status, json)
    }

    /// POSTs `items` as a batch with `key`; also returns the `Retry-After` seconds, if any.
    pub fn post_retry_after(
        &self,
        path: &str,
        key: &str,
        items: &[Value],
    ) -> (u16, Value, Option<u64>) {
        let body = json!({ "sent_at": now(), "batch": items }).to_string();
        let res = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .send(body);
        let mut res = res.unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let json = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        (status, json, retry_after)
    }

    /// POSTs `body` as it is, with `headers`: (status, body as JSON, or null).
    pub fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut res = req
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Waits until `/healthz` says nothing is pending (queue, store, exporter), polling every
    /// `every`; fails past `within`. Returns the last health.
    pub fn drain(&self, within: std::time::Duration, every: std::time::Duration) -> Value {
        let start = std::time::Instant::now();
        loop {
            let (status, health) = self.get("/healthz", None);
            assert_eq!(status, 200, "{health}");
            if health["pending"] == 0 {
                return health;
            }
            assert!(
                start.elapsed() < within,
                "the backlog did not drain: {health}"
            );
            std::thread::sleep(every);
        }
    }

    /// GETs `path`, with `key` if any.
    pub fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let (status, text) = self.get_text(path, key);
        (status, serde_json::from_str(&text).unwrap())
    }

    /// GETs `path`, with `key` if any: (status, body as text).
    pub fn get_text(&self, path: &str, key: Option<&str>) -> (u16, String) {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        let (status, _, body) = self.get_raw(path, &headers);
        (status, body)
    }

    /// GETs `path` with `headers`: (status, response headers, body as text).
    pub fn get_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, ureq::http::HeaderMap, String) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut res = req.call().unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.body_mut().read_to_string().unwrap())
    }
}

/// Runs `tests/{script}` with the test virtualenv's Python and `envs`; it must succeed and print
/// one JSON value.
pub fn python(script: &str, args: &[&str]) -> Value {
    python_with(script, args, &[])
}

/// [`python`] with extra environment variables.
pub fn python_with(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let python = std::env::var("CAUCE_PYTHON").expect("CAUCE_PYTHON: run ./test.sh");
    let out = Command::new(python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The chart titles in `dashboard_check.py`'s summary.
pub fn chart_titles(checked: &Value) -> Vec<String> {
    checked["charts"]
        .as_array()
        .expect("a list of charts")
        .iter()
        .map(|c| c["title"].as_str().expect("a title").to_owned())
        .collect()
}

/// HTTP Basic credentials that carry `key` as the user name, as a browser or an analytics SDK
/// sends it.
pub fn basic(key: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    format!("Basic {b64}")
}

/// The wall clock, epoch ms.
pub fn now() -> i64 {
    cauce_store::time::now_ms()
}

/// Reads one string column of every row of a kind in the lake, for one app.
pub async fn lake_column(
    data: &std::path::Path,
    kind: &str,
    app_id: &str,
    column: &str,
) -> Vec<String> {
    use arrow_array::{Array, StringArray};
    let lake = cauce_store::lake::local::LocalLake::new(data.join("lake"));
    let batches = cauce_exporter::file::decode_prefix(&lake, &format!("{kind}/"))
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let (apps, values) = (col("app_id"), col(column));
        for i in 0..b.num_rows() {
            if apps.value(i) == app_id && !values.is_null(i) {
                out.push(values.value(i).to_owned());
            }
        }
    }
    out
}
