//! `cauce catalog` against a real lake that `cauce demo` makes: the Glue columns are the files'
//! own (pyarrow), the DuckDB views read every row with the declared types and keep the latest
//! version of each key (DuckDB against a plain-Python reference), Athena's tables declare the
//! same columns and project the lake's partitions, and Redshift is told every partition the
//! lake has.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use support::cli_text;

/// The partition folders of the lake (`events/dt=…/hour=…`).
fn partitions(lake: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for kind in ["events", "stories", "tests"] {
        for day in std::fs::read_dir(lake.join(kind)).unwrap() {
            let day = day.unwrap().path();
            for hour in std::fs::read_dir(&day).unwrap() {
                let hour = hour.unwrap().path();
                let rel = hour.strip_prefix(lake).unwrap();
                out.insert(rel.to_str().unwrap().to_owned());
            }
        }
    }
    out
}

#[test]
fn the_catalog_describes_the_lake_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    cli_text(&data, &["demo", "--events", "6000", "--seed", "5"]);
    let catalog = |args: &[&str]| cli_text(&data, &[&["catalog"], args].concat());
    let lake = data.join("lake");

    let glue = catalog(&["--format", "glue-json"]);
    let duck = catalog(&["--format", "duckdb"]);
    let (glue_path, duck_path) = (dir.path().join("glue.json"), dir.path().join("lake.sql"));
    std::fs::write(&glue_path, &glue).unwrap();
    std::fs::write(&duck_path, &duck).unwrap();
    let checked = support::python(
        "catalog_check.py",
        &[
            lake.to_str().unwrap(),
            glue_path.to_str().unwrap(),
            duck_path.to_str().unwrap(),
        ],
    );
    for table in ["events", "stories", "tests"] {
        let t = &checked[table];
        assert!(t["rows"].as_u64().unwrap() > 0, "{table}: {t}");
        assert!(t["latest"].as_u64().unwrap() <= t["rows"].as_u64().unwrap());
    }
    assert_eq!(
        checked["stories"]["columns"]["steps"],
        "STRUCT(\"name\" VARCHAR, \"at\" TIMESTAMP WITH TIME ZONE, properties VARCHAR)[]"
    );

    // Athena: the same columns as Glue's, in the same order and types, and the projection over
    // the S3 lake's own layout.
    let athena = catalog(&["--format", "athena", "--lake", "s3://acme-lake/cauce"]);
    let glue: Value = serde_json::from_str(&glue).unwrap();
    for table in glue["TableInputs"].as_array().unwrap() {
        let name = table["Name"].as_str().unwrap();
        let ddl = athena
            .split(&format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS `cauce_lake`.`{name}` ("
            ))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} table:\n{athena}"));
        let declared: Vec<String> = ddl
            .split("\n)")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().trim_end_matches(',').to_owned())
            .collect();
        let glue_cols: Vec<String> = table["StorageDescriptor"]["Columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "`{}` {}",
                    c["Name"].as_str().unwrap(),
                    c["Type"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(declared, glue_cols, "{name}");
        assert!(ddl.contains(&format!(
            "'storage.location.template' = 's3://acme-lake/cauce/{name}/dt=${{dt}}/hour=${{hour}}/'"
        )));
        assert!(athena.contains(&format!(
            "CREATE OR REPLACE VIEW \"cauce_lake\".\"{name}_latest\""
        )));
    }

    // Redshift Spectrum: one ALTER TABLE … ADD PARTITION per partition of the lake, no more.
    let redshift = catalog(&["--format", "redshift", "--database", "acme_lake"]);
    let registered: BTreeSet<String> = redshift
        .lines()
        .filter(|l| l.starts_with("ALTER TABLE acme_lake."))
        .map(|l| {
            let loc = l
                .split("LOCATION '")
                .nth(1)
                .unwrap()
                .trim_end_matches("/';");
            loc.strip_prefix(&format!("{}/", lake.display()))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(registered, partitions(&lake));
    assert!(redshift.contains(
        "CREATE EXTERNAL SCHEMA IF NOT EXISTS acme_lake\nFROM DATA CATALOG DATABASE 'acme_lake'"
    ));
    assert!(redshift.contains("FORMAT AS PARQUET SERIALIZETOJSON"));
}
