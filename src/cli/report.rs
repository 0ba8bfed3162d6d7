//! `cauce report`: the pattern reports over the lake, for people (Markdown, HTML) or machines
//! (JSON).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cauce_analytics::output::{html, json, markdown};
use cauce_analytics::reporter::describe_complete;
use cauce_analytics::{report, LakeSource, Reports, Scope, Settings};
use cauce_store::lake::watermark::Watermark;
use chrono::NaiveDate;

use super::LakeArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Md,
    Html,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// Only this app (default: every app).
    #[arg(long)]
    app: Option<String>,
    /// The first event day, YYYY-MM-DD (default: the lake's first).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// The last event day, YYYY-MM-DD (default: the lake's last).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Only these reports, comma-separated (volume, anomalies, funnels, paths, retention,
    /// stories, experiments).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write files into this folder (one per app, plus an index) instead of printing.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The length of the event paths counted by the `paths` report.
    #[arg(long, default_value_t = 3)]
    path_length: usize,
    /// Rows per app kept by `paths` and `top_events`.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Report a `--to` day that the lake does not hold whole yet (the exporter's watermark is
    /// before its end), or a lake without a watermark, instead of refusing.
    #[arg(long)]
    allow_incomplete: bool,
}

/// Refuses a `--to` day that the lake does not hold whole yet, unless allowed: what a job that
/// runs on a schedule gates on.
fn check_complete(
    to: Option<NaiveDate>,
    watermark: Option<&Watermark>,
    allow: bool,
) -> anyhow::Result<()> {
    let Some(to) = to else { return Ok(()) };
    let end = to
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .context("--to is the last day chrono knows")?;
    match watermark {
        Some(w) if w.covers(end) => Ok(()),
        _ if allow => Ok(()),
        Some(w) => bail!(
            "the lake is complete only before {}: --to {to} needs everything received before {}T00:00:00Z; run again later, or pass --allow-incomplete",
            w.complete_before,
            to.succ_opt().unwrap_or(to)
        ),
        None => bail!(
            "the lake has no watermark ({}), so its completeness is unknown: --to {to} cannot be checked; pass --allow-incomplete to report anyway",
            cauce_store::lake::watermark::KEY
        ),
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Writes the reports in `format` into `out`: one file per app, and an index.
pub fn write_files(
    reports: &Reports,
    scope: &Scope,
    watermark: Option<&Watermark>,
    format: Format,
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let subtitle = describe_complete(scope, watermark);
    let apps = reports.apps()?;
    if format == Format::Json {
        write(
            &out.join("reports.json"),
            &json::reports(reports)?.to_string(),
        )?;
    }
    for app in &apps {
        let mine = reports.for_app(app)?;
        let stem = cauce_store::lake::layout::safe_name(app);
        match format {
            Format::Json => write(
                &out.join(format!("{stem}.json")),
                &json::reports(&mine)?.to_string(),
            )?,
            Format::Md => write(
                &out.join(format!("{stem}.md")),
                &markdown::document(&mine, &format!("Cauce report · {app}"), &["app_id"])?,
            )?,
            Format::Html => write(
                &out.join(format!("{stem}.html")),
                &html::page(app, &subtitle, &mine)?,
            )?,
        }
    }
    if format == Format::Html {
        write(&out.join("index.html"), &html::index(&apps, &subtitle))?;
    }
    Ok(())
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if from > to {
            bail!("--from {from} is after --to {to}");
        }
    }
    let names = report::select(&args.only)?;
    let scope = Scope {
        app: args.app.clone(),
        from: args.from,
        to: args.to,
    };
    let settings = Settings {
        path_length: args.path_length,
        top: args.top,
        ..Settings::default()
    };
    let lake = cauce_store::lake::open(&args.lake.location()).await?;
    let watermark = cauce_store::lake::watermark::read(lake.as_ref()).await?;
    check_complete(args.to, watermark.as_ref(), args.allow_incomplete)?;
    let source = LakeSource::open(&args.lake.location(), &scope).await?;
    let reports = tokio::task::block_in_place(|| report::run(&source, &scope, &names, &settings))?;
    let subtitle = describe_complete(&scope, watermark.as_ref());
    // The JSON on stdout is the reports alone; the completeness goes to people on stderr.
    eprintln!("{subtitle}");
    match (&args.out, args.format) {
        (Some(out), format) => write_files(&reports, &scope, watermark.as_ref(), format, out)?,
        (None, Format::Json) => println!("{}", json::reports(&reports)?),
        (None, Format::Md) => print!("{}", markdown::document(&reports, "Cauce reports", &[])?),
        (None, Format::Html) => match (args.app.as_deref(), reports.apps()?.as_slice()) {
            (Some(app), _) => print!("{}", html::page(app, &subtitle, &reports)?),
            (None, [app]) => print!("{}", html::page(app, &subtitle, &reports)?),
            (None, _) => {
                bail!("--format html makes one page per app: give --out DIR, or --app APP")
            }
        },
    }
    Ok(())
}
