//! `cauce demo`: the whole system on one machine, for a newcomer. It starts the embedded system
//! in this process, sends simulated traffic over HTTP, waits until the lake holds everything,
//! compacts, runs every report, writes the HTML dashboard and prints what it found.

mod send;
mod simulate;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use cauce_analytics::output::{html, json as report_json};
use cauce_analytics::reporter::{self, describe};
use cauce_analytics::{report, LakeSource, Reports, Scope, Settings};
use cauce_exporter::compact::{compact, CompactConfig};
use cauce_ingest::auth::{AppAdmin, Role};
use cauce_store::lake::local::LocalLake;
use cauce_store::Kind;

use super::serve::{self, ServeArgs};
use super::DataArgs;
use send::{Sender, Totals};
use simulate::{Plan, EXPERIMENT, EXPERIMENT_APP, SPIKE_APP};

/// Marks a folder as the demo's own, so that a rerun may clear it.
const MARKER: &str = ".cauce-demo";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The demo's data folder; a previous demo's folder is cleared first.
    #[arg(long, default_value = "./cauce-demo")]
    data: PathBuf,
    /// How many apps send traffic.
    #[arg(long, default_value_t = 8)]
    apps: usize,
    /// How many valid events to send (resends and invalid items come on top).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Days of simulated history, ending now (the API takes timestamps up to 30 days old).
    #[arg(long, default_value_t = 28)]
    days: u32,
    /// The simulation's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Concurrent HTTP connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
}

/// Creates the data folder, or clears a previous demo's; refuses any other non-empty folder.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        if entries.next().is_some() {
            if !dir.join(MARKER).exists() {
                bail!(
                    "{} exists and is not a demo folder; choose another with --data",
                    dir.display()
                );
            }
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by cauce demo; a rerun clears this folder\n",
    )?;
    Ok(())
}

fn bar(multi: &MultiProgress, len: u64, template: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(len));
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar
}

/// Parquet files and bytes under the lake.
fn lake_size(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files += 1;
                bytes += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (files, bytes)
}

/// Waits until the embedded pipeline has written every accepted item to the lake.
fn wait_until_drained(sender: &Sender, bar: &ProgressBar) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let pending = sender.pending()?;
        bar.set_message(format!("{pending} items on their way to the lake"));
        if pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pipeline still has {pending} items pending after 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rows(reports: &Reports, name: &str, table: &str) -> anyhow::Result<Vec<Value>> {
    Ok(match reports.table(name, table) {
        Some(df) => report_json::rows(df)?
            .as_array()
            .cloned()
            .unwrap_or_default(),
        None => Vec::new(),
    })
}

/// The headline findings: the strongest spike of the spike app, the experiment's treatment
/// against its control, and the most shared path.
fn findings(reports: &Reports, apps: &[String]) -> anyhow::Result<Value> {
    let spike_app = apps.get(SPIKE_APP).cloned().unwrap_or_default();
    let spike = rows(reports, "anomalies", "anomalies")?
        .into_iter()
        .filter(|r| r["app_id"] == spike_app.as_str() && r["kind"] == "spike")
        .max_by(|a, b| {
            a["score"]
                .as_f64()
                .partial_cmp(&b["score"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    let experiment = rows(reports, "experiments", "experiments")?
        .into_iter()
        .find(|r| {
            r["app_id"] == apps[EXPERIMENT_APP].as_str()
                && r["experiment"] == EXPERIMENT
                && r["variant"] == "treatment"
        });
    let top_path = rows(reports, "paths", "paths")?
        .into_iter()
        .max_by_key(|r| r["sessions"].as_i64().unwrap_or(0));
    Ok(json!({"spike": spike, "experiment": experiment, "top_path": top_path}))
}

fn print_summary(summary: &Value) {
    let t = &summary["traffic"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    println!();
    println!(
        "Cauce demo: {} apps, {} days of traffic",
        summary["apps"], summary["days"]
    );
    println!(
        "  sent       {} items ({} events, {} stories, {} tests), of which {} resent and {} invalid",
        n(&t["sent"]), n(&t["events_sent"]), n(&t["stories_sent"]), n(&t["tests_sent"]), n(&t["resent"]), n(&t["invalid"])
    );
    println!(
        "  accepted   {} items at {:.0} items/s; rejected {} (each with its reason)",
        n(&t["accepted"]),
        t["items_per_s"].as_f64().unwrap_or(0.0),
        n(&t["rejected"])
    );
    println!(
        "  duplicates {} resent events stored once: the lake holds {} unique events",
        n(&t["resent"]),
        n(&summary["lake"]["events"])
    );
    println!(
        "  lake       {} Parquet files, {:.1} MB after compaction",
        n(&summary["lake"]["files"]),
        summary["lake"]["bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    let f = &summary["findings"];
    match f["spike"].as_object() {
        Some(s) => println!(
            "  spike      {} at {}: {} events against a baseline of {:.0} (score {:.1}); injected at {}",
            s["app_id"].as_str().unwrap_or(""), s["hour"].as_str().unwrap_or(""), s["events"],
            s["baseline"].as_f64().unwrap_or(0.0), s["score"].as_f64().unwrap_or(0.0),
            summary["injected"]["spike_hour"].as_str().unwrap_or("")
        ),
        None => println!("  spike      not found"),
    }
    match f["experiment"].as_object() {
        Some(e) => println!(
            "  experiment {}: treatment converts {:.1}% vs control, lift {:+.1}% (95% CI of the difference {:+.2} to {:+.2} points), p = {:.2e}",
            EXPERIMENT,
            e["conversion_rate"].as_f64().unwrap_or(0.0) * 100.0,
            e["lift"].as_f64().unwrap_or(0.0) * 100.0,
            e["ci95_low"].as_f64().unwrap_or(0.0) * 100.0,
            e["ci95_high"].as_f64().unwrap_or(0.0) * 100.0,
            e["p_value"].as_f64().unwrap_or(1.0)
        ),
        None => println!("  experiment not found"),
    }
    if let Some(p) = f["top_path"].as_object() {
        println!(
            "  top path   {} ({} sessions, {:.1}% of the app's sessions)",
            p["path"].as_str().unwrap_or(""),
            p["sessions"],
            p["share"].as_f64().unwrap_or(0.0) * 100.0
        );
    }
    println!(
        "  dashboard  {}",
        summary["dashboard"].as_str().unwrap_or("")
    );
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.apps < 2 {
        bail!("--apps must be at least 2: one app runs the experiment, another gets the spike");
    }
    if !(3..=29).contains(&args.days) {
        bail!("--days must be between 3 (a baseline needs three of each hour) and 29 (the API takes timestamps up to 30 days old)");
    }
    prepare(&args.data)?;
    let serve_args = ServeArgs {
        data: DataArgs {
            data: args.data.clone(),
        },
        addr: "127.0.0.1:0".parse()?,
        rate_limit: 1_000_000,
        group_buckets: 1,
        report_every: 0,
    };
    let server = serve::start(&serve_args).await?;
    let mut apps = Vec::with_capacity(args.apps);
    for i in 0..args.apps {
        apps.push(
            server
                .keys
                .create_app(&format!("demo-{i}"), None, Role::Developer)
                .await?,
        );
    }
    let app_ids: Vec<String> = apps.iter().map(|c| c.app_id.clone()).collect();
    let plan = Plan {
        apps: args.apps,
        events: args.events,
        days: args.days,
        seed: args.seed,
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    let multi = if std::io::stderr().is_terminal() {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    eprintln!(
        "cauce demo: serving on http://{} with data in {}",
        server.addr,
        args.data.display()
    );
    let sender = Sender::new(format!("http://{}", server.addr), apps);
    let sending = bar(
        &multi,
        args.events,
        "sending  [{bar:40}] {pos}/{len} events {per_sec}",
    );
    let connections = args.connections.max(1);
    let (totals, sender) = tokio::task::spawn_blocking(move || {
        let totals = sender.send_all(&plan, connections, &|events| sending.inc(events));
        sending.finish();
        (totals, sender)
    })
    .await?;
    let totals: Totals = totals?;
    let waiting = bar(&multi, 0, "pipeline {spinner} {msg}");
    waiting.enable_steady_tick(Duration::from_millis(120));
    let (drained, _) = tokio::task::spawn_blocking(move || {
        let r = wait_until_drained(&sender, &waiting);
        waiting.finish_with_message("every accepted item is in the lake");
        (r, sender)
    })
    .await?;
    drained?;
    let lake = server.lake.clone();
    server.stop().await?;

    let compacting = bar(&multi, 0, "compact  [{bar:40}] {pos}/{len} hours");
    let config = CompactConfig {
        include_open: true,
        ..CompactConfig::default()
    };
    compact(lake.as_ref(), &config, &|done, total| {
        compacting.set_length(total as u64);
        compacting.set_position(done as u64);
    })
    .await?;
    compacting.finish();

    let reporting = bar(&multi, 0, "reports  {spinner} {msg}");
    reporting.enable_steady_tick(Duration::from_millis(120));
    reporting.set_message("running every report");
    let scope = Scope::default();
    let source = LakeSource::folder(lake.root());
    let reports = tokio::task::block_in_place(|| {
        report::run(&source, &scope, &report::ALL, &Settings::default())
    })?;
    let unique_events = tokio::task::block_in_place(|| source.count(Kind::Event, &scope))?;
    let dashboard = write_dashboard(&args.data.join("dashboard"), &reports, &scope, &app_ids)?;
    let (_, objects) = reporter::render_reports(&reports, &scope, chrono::Utc::now())?;
    reporter::write(lake.as_ref() as &LocalLake, objects).await?;
    reporting.finish_with_message("done");

    let (files, bytes) = lake_size(lake.root());
    let summary = json!({
        "apps": args.apps, "days": args.days, "seed": args.seed, "app_ids": app_ids,
        "traffic": totals.to_json(),
        "lake": {"files": files, "bytes": bytes, "events": unique_events},
        "injected": {
            "spike_app": app_ids[SPIKE_APP],
            "spike_hour": chrono::DateTime::from_timestamp_millis(plan.spike_hour_ms()).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "experiment_app": app_ids[EXPERIMENT_APP], "experiment": EXPERIMENT, "true_lift": 0.15,
        },
        "findings": findings(&reports, &app_ids)?,
        "dashboard": dashboard.display().to_string(),
    });
    std::fs::write(
        args.data.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    print_summary(&summary);
    Ok(())
}

/// Writes one HTML page per app and an index; returns the index's path.
fn write_dashboard(
    dir: &Path,
    reports: &Reports,
    scope: &Scope,
    apps: &[String],
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let subtitle = format!("cauce demo; {}", describe(scope));
    for app in apps {
        let page = html::page(app, &subtitle, &reports.for_app(app)?)?;
        std::fs::write(
            dir.join(format!(
                "{}.html",
                cauce_store::lake::layout::safe_name(app)
            )),
            page,
        )?;
    }
    let index = dir.join("index.html");
    std::fs::write(&index, html::index(apps, &subtitle))?;
    Ok(std::path::absolute(&index).unwrap_or(index))
}
