//! The raw archive in a local folder (`DATA/raw`), for `cauce serve`.
//!
//! Requests hand their lines to a writer thread through a bounded channel, so that a request
//! never waits on compression or the disk unless the archive falls far behind. The thread
//! gathers what has arrived (up to 1 MiB) into one zstd frame and appends it to this process's
//! file of the hour, `dt=YYYY-MM-DD/hour=HH/{start ms}-{pid}.ndjson.zst`: a file is a series of
//! whole frames, which any zstd reader reads as one stream. A process that dies mid-frame leaves
//! a truncated last frame in its own file; the next process writes a file of its own, and
//! replay reads every whole frame before the cut.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{hour_dir, RawArchive};
use crate::error::{IngestError, Result};

/// Requests whose lines may wait for the writer thread before a request waits too.
const CAPACITY: usize = 4096;
/// The most bytes of lines in one frame.
const FRAME_BYTES: usize = 1 << 20;
/// zstd's level: its fastest, which still shrinks NDJSON about fivefold.
const LEVEL: i32 = 1;

enum Msg {
    Lines(i64, Vec<Vec<u8>>),
    Close(oneshot::Sender<()>),
}

/// The archive under a folder.
#[derive(Debug, Clone)]
pub struct LocalArchive {
    tx: mpsc::Sender<Msg>,
    root: PathBuf,
}

impl LocalArchive {
    /// Opens the archive under `root` (created if missing) and starts its writer thread.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
        let (tx, rx) = mpsc::channel(CAPACITY);
        let name = format!(
            "{}-{}.ndjson.zst",
            cauce_store::time::now_ms(),
            std::process::id()
        );
        let writer = Writer {
            root: root.clone(),
            name,
            files: HashMap::new(),
            zstd: zstd::bulk::Compressor::new(LEVEL).map_err(|e| io_error(&root, e))?,
        };
        std::thread::Builder::new()
            .name("raw-archive".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_error(&root, e))?;
        Ok(LocalArchive { tx, root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes out every line handed over so far and stops the writer thread; later puts fail.
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

#[async_trait]
impl RawArchive for LocalArchive {
    async fn put(&self, received_at: i64, lines: Vec<Vec<u8>>) -> Result<()> {
        self.tx
            .send(Msg::Lines(received_at, lines))
            .await
            .map_err(|_| IngestError::Archive("the raw archive is closed".into()))
    }
}

fn io_error(path: &Path, e: std::io::Error) -> IngestError {
    IngestError::Archive(format!("{}: {e}", path.display()))
}

struct Writer {
    root: PathBuf,
    name: String,
    files: HashMap<String, File>,
    /// One compression context for every frame (making one per frame costs more than the
    /// compression of a small frame).
    zstd: zstd::bulk::Compressor<'static>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut pending: Vec<u8> = Vec::new();
        let mut hour = String::new();
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Lines(at, lines) => {
                        let this = hour_dir(at);
                        if this != hour {
                            self.write(&hour, &mut pending);
                            hour = this;
                        }
                        lines.iter().for_each(|l| pending.extend_from_slice(l));
                    }
                    Msg::Close(ack) => {
                        self.write(&hour, &mut pending);
                        // Refuse later puts before saying so: none may slip in unwritten.
                        rx.close();
                        let _ = ack.send(());
                        return;
                    }
                }
                if pending.len() < FRAME_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            self.write(&hour, &mut pending);
        }
        self.write(&hour, &mut pending);
    }

    /// Appends `pending` as one frame to the hour's file, and empties it. A failure is logged:
    /// the lines are in the queue, and only their second copy is lost.
    fn write(&mut self, hour: &str, pending: &mut Vec<u8>) {
        if pending.is_empty() {
            return;
        }
        let lines = bytecount(pending);
        if let Err(e) = self.append(hour, pending) {
            tracing::error!(error = %e, hour, lines, "Raw archive lines not written.");
            self.files.remove(hour);
        }
        pending.clear();
    }

    fn append(&mut self, hour: &str, data: &[u8]) -> std::io::Result<()> {
        let frame = self.zstd.compress(data)?;
        if !self.files.contains_key(hour) {
            // Earlier hours' files are closed (a straggler reopens its hour's file to append).
            self.files.retain(|h, _| h.as_str() >= hour);
            let dir = self.root.join(hour);
            std::fs::create_dir_all(&dir)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(&self.name))?;
            self.files.insert(hour.to_owned(), file);
        }
        let file = self.files.get_mut(hour).expect("opened above");
        file.write_all(&frame)
    }
}

fn bytecount(data: &[u8]) -> usize {
    data.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::lines;
    use cauce_store::Kind;

    #[tokio::test]
    async fn lines_land_in_hour_files_as_whole_zstd_frames() {
        let dir = tempfile::tempdir().unwrap();
        let archive = LocalArchive::open(dir.path().join("raw")).unwrap();
        let hour = 3_600_000;
        let base = 1_764_500_000_000 / hour * hour;
        for i in 0..500_i64 {
            let at = base + (i / 250) * hour + i;
            let body = format!(r#"{{"batch":[{{"event_id":"e{i}"}}]}}"#);
            let out = lines(
                "app",
                Kind::Event,
                None,
                &format!("r{i}"),
                at,
                body.as_bytes(),
            )
            .unwrap();
            archive.put(at, out).await.unwrap();
        }
        archive.close().await;
        assert!(archive.put(base, vec![b"x\n".to_vec()]).await.is_err());

        let mut seen = Vec::new();
        for h in 0..2 {
            let folder = dir.path().join("raw").join(hour_dir(base + h * hour));
            let files: Vec<_> = std::fs::read_dir(&folder).unwrap().collect();
            assert_eq!(files.len(), 1, "{folder:?}");
            let path = files[0].as_ref().unwrap().path();
            assert!(path.to_str().unwrap().ends_with(".ndjson.zst"));
            let text = zstd::stream::decode_all(File::open(&path).unwrap()).unwrap();
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                assert_eq!(
                    hour_dir(v["received_at"].as_i64().unwrap()),
                    hour_dir(base + h * hour)
                );
                seen.push(v["request_id"].as_str().unwrap().to_owned());
            }
        }
        let want: Vec<String> = (0..500).map(|i| format!("r{i}")).collect();
        assert_eq!(seen, want, "every line, once, in order");
    }
}
