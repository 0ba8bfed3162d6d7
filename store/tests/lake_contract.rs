//! The `Lake` contract, run against both adapters: a local folder and S3 (the moto server that
//! `./test.sh` starts).

use bytes::Bytes;
use cauce_store::faults::{Fault, FaultyLake, Schedule};
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::s3::S3Lake;
use cauce_store::lake::Lake;

/// Calls `f` until it succeeds; every failure on the way must be one a retry may mend.
async fn until_ok<T, Fut>(what: &str, f: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, cauce_store::StoreError>>,
{
    cauce_store::faults::until_ok(what, cauce_store::StoreError::is_unavailable, f).await
}

/// The contract under faults of every kind: a caller that retries each failed call ends with
/// the objects a clean run leaves, whole, though some calls took effect and lost their answer.
async fn retries_through_faults_converge<L: Lake>(inner: L) {
    let schedule = Schedule::new()
        .every(2, Fault::LoseAnswer)
        .every(3, Fault::Throttle)
        .every(5, Fault::Fail)
        .every(7, Fault::Delay(std::time::Duration::from_millis(20)));
    let lake = FaultyLake::new(inner, schedule);
    let lake = &lake;
    let keys: Vec<String> = (0..6)
        .map(|i| format!("events/dt=2026-11-27/hour=0{i}/f-{i}.parquet"))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let body = Bytes::from(format!("object {i}"));
        until_ok("put", || lake.put(k, body.clone())).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("up.bin");
    std::fs::write(&src, vec![7u8; 100_000]).unwrap();
    let up = "stories/dt=2026-11-27/hour=00/f-up.parquet";
    until_ok("upload", || lake.upload(up, &src)).await;
    for k in &keys[..3] {
        until_ok("delete", || lake.delete(k)).await;
    }
    assert!(lake.faults().injected() > 0, "faults struck");
    let listed = until_ok("list", || lake.list("")).await;
    let mut want: Vec<&str> = keys[3..].iter().map(String::as_str).collect();
    want.push(up);
    assert_eq!(
        listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        want
    );
    for (i, k) in keys.iter().enumerate().skip(3) {
        let got = until_ok("get", || lake.get(k)).await;
        assert_eq!(got, Bytes::from(format!("object {i}")));
    }
    let dest = dir.path().join("down.bin");
    assert_eq!(
        until_ok("download", || lake.download(up, &dest)).await,
        100_000
    );
    assert_eq!(std::fs::read(&dest).unwrap(), vec![7u8; 100_000]);
}

async fn contract(lake: &dyn Lake) {
    let a = "events/dt=2026-11-27/hour=09/sqlite-1.parquet";
    let b = "events/dt=2026-11-27/hour=10/sqlite-9.parquet";
    let c = "stories/dt=2026-11-27/hour=09/sqlite-2.parquet";
    for (k, v) in [(a, "first"), (b, "second"), (c, "third")] {
        lake.put(k, Bytes::from(v)).await.unwrap();
    }
    assert_eq!(lake.get(a).await.unwrap(), Bytes::from("first"));

    // Replacing an object is whole: the new content, never a mix.
    lake.put(a, Bytes::from("first, again")).await.unwrap();
    assert_eq!(lake.get(a).await.unwrap(), Bytes::from("first, again"));

    let keys = |objs: Vec<cauce_store::lake::Object>| {
        objs.into_iter()
            .map(|o| (o.key, o.size))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(lake.list("events/").await.unwrap()),
        [(a.to_owned(), 12), (b.to_owned(), 6)],
        "listing is by prefix, sorted, with sizes, and shows no temporary files"
    );
    assert_eq!(
        keys(lake.list("events/dt=2026-11-27/hour=1").await.unwrap()),
        [(b.to_owned(), 6)]
    );
    assert_eq!(lake.list("").await.unwrap().len(), 3);
    assert!(lake.list("tests/").await.unwrap().is_empty());
    assert_eq!(
        cauce_store::lake::get_if_present(lake, b).await.unwrap(),
        Some(Bytes::from("second"))
    );

    lake.delete(b).await.unwrap();
    lake.delete(b).await.unwrap();
    assert_eq!(
        cauce_store::lake::get_if_present(lake, b).await.unwrap(),
        None
    );
    lake.delete(b).await.unwrap(); // deleting twice is fine: compaction re-runs rely on it
    assert!(matches!(
        lake.get(b).await,
        Err(cauce_store::StoreError::NotFound(_))
    ));
    assert_eq!(lake.list("events/").await.unwrap().len(), 1);

    // A rewrite at the same size is still told apart by its version (compaction relies on it
    // before it deletes an input).
    let before = lake.list(c).await.unwrap().remove(0);
    lake.put(c, Bytes::from("THIRD")).await.unwrap();
    let after = lake.list(c).await.unwrap().remove(0);
    assert_eq!((before.size, after.size), (5, 5));
    assert_ne!(
        before.version, after.version,
        "a rewrite changes the version"
    );

    // Objects go to and from local files whole (adapters stream them).
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let src = dir.path().join("up.bin");
    std::fs::write(&src, &big).unwrap();
    let d = "events/dt=2026-11-27/hour=11/compacted-1-0000.parquet";
    lake.upload(d, &src).await.unwrap();
    let dest = dir.path().join("down.bin");
    assert_eq!(lake.download(d, &dest).await.unwrap(), big.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), big);
    assert!(matches!(
        lake.download(b, &dir.path().join("missing")).await,
        Err(cauce_store::StoreError::NotFound(_))
    ));
    lake.delete(d).await.unwrap();

    // Writes of one key at once (the watermark's timer and the last write at a stop) each
    // succeed, and the object is one of them, whole.
    let w = "state/watermark.json";
    let writes = (0..16).map(|i| lake.put(w, Bytes::from(format!("writer {i:02}"))));
    for done in futures::future::join_all(writes).await {
        done.unwrap();
    }
    let last = String::from_utf8(lake.get(w).await.unwrap().to_vec()).unwrap();
    assert!(last.len() == 9 && last.starts_with("writer "), "{last:?}");
    assert_eq!(
        keys(lake.list("state/").await.unwrap()),
        [(w.to_owned(), 9)],
        "no temporary file is left"
    );
    lake.delete(w).await.unwrap();
}

#[tokio::test]
async fn local_folder_lake_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&LocalLake::new(dir.path().join("lake"))).await;
}

/// A fresh bucket on the emulator, named after `name` and this process.
async fn s3_lake(name: &str, prefix: &str) -> S3Lake {
    let aws = cauce_store::aws::sdk_config().await;
    let client = cauce_store::lake::s3::client(&aws);
    let lake = S3Lake::new(client, format!("{name}-{}", std::process::id()), prefix);
    lake.create_bucket().await.unwrap();
    lake
}

#[tokio::test]
async fn local_folder_lake_converges_through_faults() {
    let dir = tempfile::tempdir().unwrap();
    retries_through_faults_converge(LocalLake::new(dir.path().join("lake"))).await;
}

#[tokio::test]
async fn s3_lake_converges_through_faults() {
    if !cauce_store::aws::emulator("s3_lake_converges_through_faults") {
        return;
    }
    retries_through_faults_converge(s3_lake("faults", "lake").await).await;
}

#[tokio::test]
async fn s3_lake_passes_the_contract() {
    if !cauce_store::aws::emulator("s3_lake_passes_the_contract") {
        return;
    }
    let lake = s3_lake("lake", "prod/lake").await;
    contract(&lake).await;
    let bucket = format!("lake-{}", std::process::id());
    assert_eq!(lake.location(), format!("s3://{bucket}/prod/lake"));
}

#[test]
fn s3_urls_parse() {
    let aws = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build(),
    );
    assert!(S3Lake::from_url(aws.clone(), "s3://b/p/q").is_ok());
    assert!(S3Lake::from_url(aws.clone(), "s3:///p").is_err());
    assert!(S3Lake::from_url(aws, "/tmp/lake").is_err());
}
