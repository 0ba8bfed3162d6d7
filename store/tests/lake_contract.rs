//! The `Lake` contract, run against both adapters: a local folder and S3 (the moto server that
//! `./test.sh` starts).

use bytes::Bytes;
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::s3::S3Lake;
use cauce_store::lake::Lake;

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
}

#[tokio::test]
async fn local_folder_lake_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&LocalLake::new(dir.path().join("lake"))).await;
}

#[tokio::test]
async fn s3_lake_passes_the_contract() {
    if !cauce_store::aws::emulator("s3_lake_passes_the_contract") {
        return;
    }
    let aws = cauce_store::aws::sdk_config().await;
    let client = cauce_store::lake::s3::client(&aws);
    let bucket = format!("lake-{}", std::process::id());
    let lake = S3Lake::new(client, &bucket, "prod/lake");
    lake.create_bucket().await.unwrap();
    contract(&lake).await;
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
