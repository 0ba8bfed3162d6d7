//! The store's disk fills up while clients send (black box: the real `cauce serve`, its
//! `store.db` on a small tmpfs volume that a filler file fills to the last byte). The API keeps
//! accepting into the queue (another volume), the writer backs off without dead-lettering, and
//! once space is back every accepted event is in the store and in the lake exactly once.
//!
//! Mounting needs root; elsewhere the test says it is skipped, unless `CAUCE_REQUIRE_TMPFS` is
//! set (`./test.sh` sets it where a probe mount works), when it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cauce_store::sqlite::SqliteStore;
use cauce_store::Kind;
use serde_json::json;
use support::{create_unlimited_app, lake_column, now, serve, Client};

const EVENTS: usize = 10_000;
const BATCH: usize = 100;
/// How long the disk stays full once the last event was accepted (the 60 s outage).
const FULL_FOR: Duration = Duration::from_secs(60);

/// A tmpfs mount, unmounted when dropped.
struct Volume(PathBuf);

impl Volume {
    fn mount(at: &Path, size: &str) -> Volume {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs at {}", at.display());
        Volume(at.to_path_buf())
    }

    /// Writes a filler file until the volume has no space left.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
        // Whatever bytes are left, a page at a time.
        while f
            .write_all(&[0u8; 4096])
            .and_then(|()| f.sync_all())
            .is_ok()
        {}
        path
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn health(c: &Client) -> serde_json::Value {
    let (status, h) = c.get("/healthz", None);
    assert_eq!(status, 200, "{h}");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_disk_loses_nothing_and_dead_letters_nothing() {
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CAUCE_REQUIRE_TMPFS").is_none(),
            "mounting a tmpfs needs root"
        );
        eprintln!("a_full_store_disk_loses_nothing: skipped, mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let volume = Volume::mount(&dir.path().join("store-volume"), "48m");
    // SQLite follows the link and keeps its WAL beside the real file, on the small volume.
    std::os::unix::fs::symlink(volume.0.join("store.db"), data.join("store.db")).unwrap();
    let (app_id, key) = create_unlimited_app(&data, "shop");
    let (app_id, key) = (app_id.as_str(), key.as_str());
    let server = serve(&data);
    let c = Client::new(&server.base);

    let filler = volume.fill();
    let mut sent = Vec::with_capacity(EVENTS);
    for b in 0..EVENTS / BATCH {
        let items: Vec<_> = (0..BATCH)
            .map(|i| {
                let id = format!("e{b}-{i}");
                sent.push(id.clone());
                json!({"event_id": id, "name": "tap", "timestamp": now(), "user_id": format!("u{}", i % 37),
                       "properties": {"pad": "x".repeat(200)}})
            })
            .collect();
        let (status, body) = c.post("/v1/events", key, &items);
        assert_eq!(
            status, 202,
            "accepted into the queue while the store is full: {body}"
        );
    }
    let full_since = Instant::now();
    while full_since.elapsed() < FULL_FOR {
        let h = health(&c);
        assert_eq!(
            h["dead_letters"], 0,
            "nothing dead-lettered while the disk is full: {h}"
        );
        assert!(
            h["pending"].as_u64().unwrap() > 0,
            "the backlog is reported: {h}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let store_probe = SqliteStore::open(data.join("store.db")).unwrap();
    let stored_while_full = store_probe.count(Kind::Event, app_id).await.unwrap();
    assert!(
        stored_while_full < EVENTS as u64,
        "the disk was full: {stored_while_full} stored"
    );

    // Space comes back: everything drains.
    std::fs::remove_file(&filler).unwrap();
    let healed = Instant::now();
    loop {
        let h = health(&c);
        assert_eq!(h["dead_letters"], 0, "{h}");
        if h["pending"] == 0 {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(400),
            "stuck after the disk came back: {h}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "{stored_while_full} of {EVENTS} stored while full; drained {:.1} s after space came back",
        healed.elapsed().as_secs_f64()
    );
    drop(server);
    assert_eq!(
        store_probe.count(Kind::Event, app_id).await.unwrap(),
        EVENTS as u64
    );
    let mut ids = lake_column(&data, "events", app_id, "event_id").await;
    ids.sort_unstable();
    sent.sort_unstable();
    assert_eq!(ids, sent, "every accepted event once in the lake");
}
