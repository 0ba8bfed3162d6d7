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
use serde::Serialize;

use cauce_analytics::output::columns::Columns;
use cauce_analytics::output::html;
use cauce_analytics::reporter::{self, describe};
use cauce_analytics::{report, LakeSource, Reports, Scope, Settings};
use cauce_exporter::compact::{compact, CompactConfig};
use cauce_ingest::api::ApiConfig;
use cauce_ingest::auth::{AppAdmin, Role};
use cauce_store::lake::local::LocalLake;
use cauce_store::Kind;

use super::serve::{self, ServeArgs};
use super::DataArgs;
use send::{Sender, Totals, Traffic};
use simulate::{Plan, EXPERIMENT, EXPERIMENT_APP, SPIKE_APP, TRUE_LIFT};

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

/// The demo's summary: what was sent, what the lake holds, what was injected and what the
/// reports found. Printed, and written as `DATA/summary.json`.
#[derive(Debug, Serialize)]
struct Summary {
    apps: usize,
    days: u32,
    seed: u64,
    app_ids: Vec<String>,
    traffic: Traffic,
    end_to_end: EndToEnd,
    lake: LakeSummary,
    injected: Injected,
    findings: Findings,
    dashboard: String,
}

/// From the first request until every accepted item was in the lake.
#[derive(Debug, Serialize)]
struct EndToEnd {
    seconds: f64,
    items_per_s: f64,
    /// `items_per_s` over the accept rate.
    of_accept_rate: f64,
}

#[derive(Debug, Serialize)]
struct LakeSummary {
    files: u64,
    bytes: u64,
    events: u64,
}

/// What the simulation put in, to compare with what the reports found.
#[derive(Debug, Serialize)]
struct Injected {
    spike_app: String,
    spike_hour: String,
    experiment_app: String,
    experiment: &'static str,
    true_lift: f64,
}

/// The headline findings: the strongest spike of the spike app, the experiment's treatment
/// against its control, and the most shared path.
#[derive(Debug, Serialize)]
struct Findings {
    spike: Option<Spike>,
    experiment: Option<Treatment>,
    top_path: Option<TopPath>,
}

#[derive(Debug, Serialize)]
struct Spike {
    app_id: String,
    hour: String,
    events: u64,
    baseline: f64,
    score: f64,
    kind: String,
}

#[derive(Debug, Serialize)]
struct Treatment {
    app_id: String,
    experiment: String,
    variant: String,
    conversion_rate: f64,
    lift: f64,
    ci95_low: f64,
    ci95_high: f64,
    p_value: f64,
}

#[derive(Debug, Serialize)]
struct TopPath {
    app_id: String,
    path: String,
    sessions: u64,
    share: f64,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn strongest_spike(reports: &Reports, app: &str) -> anyhow::Result<Option<Spike>> {
    let t = Columns::of(reports, "anomalies", "anomalies");
    let (apps, hours, events) = (
        t.texts("app_id")?,
        t.times_ms("hour")?,
        t.numbers("events")?,
    );
    let (baselines, scores, kinds) = (
        t.numbers("baseline")?,
        t.numbers("score")?,
        t.texts("kind")?,
    );
    let best = (0..apps.len())
        .filter(|&i| apps[i] == app && kinds[i] == "spike")
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    Ok(best.map(|i| Spike {
        app_id: apps[i].clone(),
        hour: rfc3339(hours[i]),
        events: events[i] as u64,
        baseline: baselines[i],
        score: scores[i],
        kind: kinds[i].clone(),
    }))
}

fn treatment(reports: &Reports, app: &str) -> anyhow::Result<Option<Treatment>> {
    let t = Columns::of(reports, "experiments", "experiments");
    let (apps, experiments, variants) = (
        t.texts("app_id")?,
        t.texts("experiment")?,
        t.texts("variant")?,
    );
    let rates = t.numbers("conversion_rate")?;
    let (lifts, lows, highs) = (
        t.optional_numbers("lift")?,
        t.optional_numbers("ci95_low")?,
        t.optional_numbers("ci95_high")?,
    );
    let p_values = t.optional_numbers("p_value")?;
    let Some(i) = (0..apps.len())
        .find(|&i| apps[i] == app && experiments[i] == EXPERIMENT && variants[i] == "treatment")
    else {
        return Ok(None);
    };
    let (Some(lift), Some(ci95_low), Some(ci95_high), Some(p_value)) =
        (lifts[i], lows[i], highs[i], p_values[i])
    else {
        bail!("the experiments report compares no control with {EXPERIMENT}'s treatment");
    };
    Ok(Some(Treatment {
        app_id: apps[i].clone(),
        experiment: experiments[i].clone(),
        variant: variants[i].clone(),
        conversion_rate: rates[i],
        lift,
        ci95_low,
        ci95_high,
        p_value,
    }))
}

fn top_path(reports: &Reports) -> anyhow::Result<Option<TopPath>> {
    let t = Columns::of(reports, "paths", "paths");
    let (apps, paths) = (t.texts("app_id")?, t.texts("path")?);
    let (sessions, shares) = (t.numbers("sessions")?, t.numbers("share")?);
    let best = (0..apps.len()).max_by(|&a, &b| sessions[a].total_cmp(&sessions[b]));
    Ok(best.map(|i| TopPath {
        app_id: apps[i].clone(),
        path: paths[i].clone(),
        sessions: sessions[i] as u64,
        share: shares[i],
    }))
}

fn print_summary(s: &Summary) {
    let t = &s.traffic;
    println!();
    println!("Cauce demo: {} apps, {} days of traffic", s.apps, s.days);
    println!(
        "  sent       {} items ({} events, {} stories, {} tests), of which {} resent and {} invalid",
        t.sent, t.events_sent, t.stories_sent, t.tests_sent, t.resent, t.invalid
    );
    println!(
        "  accepted   {} items at {:.0} items/s; rejected {} (each with its reason)",
        t.accepted, t.items_per_s, t.rejected
    );
    println!(
        "  end to end {:.0} items/s, {:.2}x the accept rate: from the first request until every accepted item was in the lake ({:.1} s); a burst then drained, not a rate to plan on (`cargo bench --bench sustained` finds that)",
        s.end_to_end.items_per_s, s.end_to_end.of_accept_rate, s.end_to_end.seconds
    );
    println!(
        "  duplicates {} resent events stored once: the lake holds {} unique events",
        t.resent, s.lake.events
    );
    println!(
        "  lake       {} Parquet files, {:.1} MB after compaction",
        s.lake.files,
        s.lake.bytes as f64 / 1e6
    );
    match &s.findings.spike {
        Some(p) => println!(
            "  spike      {} at {}: {} events against a baseline of {:.0} (score {:.1}); injected at {}",
            p.app_id, p.hour, p.events, p.baseline, p.score, s.injected.spike_hour
        ),
        None => println!("  spike      not found"),
    }
    match &s.findings.experiment {
        Some(e) => println!(
            "  experiment {}: treatment converts {:.1}% vs control, lift {:+.1}% (true {:+.1}%; 95% CI of the difference {:+.2} to {:+.2} points), p = {:.2e}",
            e.experiment,
            e.conversion_rate * 100.0,
            e.lift * 100.0,
            s.injected.true_lift * 100.0,
            e.ci95_low * 100.0,
            e.ci95_high * 100.0,
            e.p_value
        ),
        None => println!("  experiment not found"),
    }
    if let Some(p) = &s.findings.top_path {
        println!(
            "  top path   {} ({} sessions, {:.1}% of the app's sessions)",
            p.path,
            p.sessions,
            p.share * 100.0
        );
    }
    println!("  dashboard  {}", s.dashboard);
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
        report_days: 0,
        header_timeout: serve::GUARDS.0,
        body_timeout: serve::GUARDS.1,
        max_connections: serve::GUARDS.2,
        shutdown_grace: serve::GUARDS.3,
        auth_failures_per_minute: ApiConfig::default().auth_failures_per_minute,
        ttl_days: 30,
        raw_archive: true,
        writer_linger_ms: serve::WRITER_LINGER_MS,
        max_backlog: serve::MAX_BACKLOG,
        tls_cert: None,
        tls_key: None,
        metrics: super::metrics::Access::Off,
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
    let started = std::time::Instant::now();
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
    let end_to_end_secs = started.elapsed().as_secs_f64();
    let lake = server.lake.clone();
    server.stop().await?;

    let compacting = bar(&multi, 0, "compact  [{bar:40}] {pos}/{len} hours");
    let config = CompactConfig {
        include_open: true,
        ..CompactConfig::default()
    };
    let compacted = compact(lake.as_ref(), &config, &|done, total| {
        compacting.set_length(total as u64);
        compacting.set_position(done as u64);
    })
    .await?;
    if let Some(failed) = compacted.failed.first() {
        anyhow::bail!(
            "compaction failed for {}: {}",
            failed.partition,
            failed.error
        );
    }
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
    let watermark = cauce_store::lake::watermark::read(lake.as_ref()).await?;
    let (_, objects) =
        reporter::render_reports(&reports, &scope, watermark.as_ref(), chrono::Utc::now())?;
    reporter::write(lake.as_ref() as &LocalLake, objects).await?;
    reporting.finish_with_message("done");

    let (files, bytes) = lake_size(lake.root());
    let traffic = totals.traffic();
    let end_to_end_per_s = traffic.accepted as f64 / end_to_end_secs.max(1e-9);
    let summary = Summary {
        apps: args.apps,
        days: args.days,
        seed: args.seed,
        end_to_end: EndToEnd {
            seconds: end_to_end_secs,
            items_per_s: end_to_end_per_s,
            of_accept_rate: end_to_end_per_s / traffic.items_per_s.max(1e-9),
        },
        traffic,
        lake: LakeSummary {
            files,
            bytes,
            events: unique_events,
        },
        injected: Injected {
            spike_app: app_ids[SPIKE_APP].clone(),
            spike_hour: rfc3339(plan.spike_hour_ms()),
            experiment_app: app_ids[EXPERIMENT_APP].clone(),
            experiment: EXPERIMENT,
            true_lift: TRUE_LIFT,
        },
        findings: Findings {
            spike: strongest_spike(&reports, &app_ids[SPIKE_APP])?,
            experiment: treatment(&reports, &app_ids[EXPERIMENT_APP])?,
            top_path: top_path(&reports)?,
        },
        dashboard: dashboard.display().to_string(),
        app_ids,
    };
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
