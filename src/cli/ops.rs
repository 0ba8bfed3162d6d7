//! `GET /dashboard/ops` of `cauce serve`: the page an on-call engineer opens first. It reads the
//! same metrics as `/metrics` (the Prometheus page, parsed back) and keeps the last hour of them,
//! sampled every [`EVERY`], for its charts: items in and out per second, the queue, the lake's
//! lag and the requests' p99. On top, what needs a person now (dead letters, an old queue, a
//! lake behind, rejections, server errors), each with the command that helps; below, the totals
//! since start. No script: it refreshes itself every 10 s.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use cauce_analytics::output::html::escape;
use cauce_ingest::api::{MetricsPage, OpsPage};
use cauce_store::metrics::{
    COMPACTION_INPUTS, COMPACTION_OUTPUTS, COMPACTION_RUNS, DEAD_LETTERED, DEAD_LETTERS,
    EXPORT_BAD_ROWS, EXPORT_BYTES, EXPORT_FILES, EXPORT_LAG_RECORDS, EXPORT_LAG_SECONDS,
    EXPORT_ROWS, ITEMS_ACCEPTED, ITEMS_DEDUPLICATED, ITEMS_REJECTED, ITEMS_STORED, QUEUE_DEPTH,
    QUEUE_OLDEST_AGE, REPORT_RUNS, REQUEST_DURATION, WRITER_BATCH, WRITER_FAILURES,
};

/// How often the history takes a sample.
pub const EVERY: Duration = Duration::from_secs(10);
/// Samples kept: an hour.
const KEEP: usize = 360;

/// One series of the Prometheus page.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The Prometheus page, parsed.
#[derive(Debug, Clone, Default)]
struct Snapshot(Vec<Series>);

impl Snapshot {
    /// Parses the text format that the exporter writes (`name{k="v",…} value` lines).
    fn parse(page: &str) -> Snapshot {
        let series = page
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)),
                    None => (series, BTreeMap::new()),
                };
                Some(Series {
                    name: name.to_owned(),
                    labels,
                    value: value.parse().ok()?,
                })
            })
            .collect();
        Snapshot(series)
    }

    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Series> {
        self.0.iter().filter(move |s| s.name == name)
    }

    /// The sum of every series of `name`.
    fn total(&self, name: &str) -> f64 {
        self.named(name).map(|s| s.value).sum()
    }

    /// The sums of `name` by the values of `label`.
    fn by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.named(name) {
            let key = s.labels.get(label).cloned().unwrap_or_default();
            *out.entry(key).or_insert(0.0) += s.value;
        }
        out
    }

    /// A histogram's cumulative bucket counts (upper bound, count), summed over the series that
    /// `keep` lets through.
    fn buckets(&self, histogram: &str, keep: impl Fn(&Series) -> bool) -> Vec<(f64, f64)> {
        let mut out: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in self
            .named(&format!("{histogram}_bucket"))
            .filter(|s| keep(s))
        {
            let le = match s.labels.get("le").map(String::as_str) {
                Some("+Inf") => f64::INFINITY,
                Some(v) => v.parse().unwrap_or(f64::INFINITY),
                None => continue,
            };
            out.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
        }
        let mut buckets: Vec<(f64, f64)> = out.into_values().collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

fn labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| if c == 'n' { '\n' } else { c })),
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    out
}

/// The upper bound of the bucket that holds quantile `q` of the counts between two cumulative
/// bucket lists (`before` empty: since start); `None` without observations.
fn quantile(now: &[(f64, f64)], before: &[(f64, f64)], q: f64) -> Option<f64> {
    let count = |b: &[(f64, f64)], le: f64| {
        b.iter()
            .find(|(l, _)| l.to_bits() == le.to_bits())
            .map_or(0.0, |(_, c)| *c)
    };
    let deltas: Vec<(f64, f64)> = now
        .iter()
        .map(|(le, c)| (*le, c - count(before, *le)))
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    deltas
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| *le)
}

/// What the charts need of one sample.
#[derive(Debug, Clone)]
struct Point {
    at_ms: i64,
    accepted: f64,
    stored: f64,
    rows: f64,
    depth: f64,
    lag_s: f64,
    latency: Vec<(f64, f64)>,
}

impl Point {
    fn of(snap: &Snapshot, at_ms: i64) -> Point {
        Point {
            at_ms,
            accepted: snap.total(ITEMS_ACCEPTED),
            stored: snap.total(ITEMS_STORED) + snap.total(ITEMS_DEDUPLICATED),
            rows: snap.total(EXPORT_ROWS),
            depth: snap.total(QUEUE_DEPTH),
            lag_s: snap.total(EXPORT_LAG_SECONDS),
            latency: snap.buckets(REQUEST_DURATION, |_| true),
        }
    }
}

/// The operations page over a metrics page, with its last hour.
pub struct Ops {
    metrics: Arc<dyn MetricsPage>,
    history: Mutex<VecDeque<Point>>,
}

impl Ops {
    /// The page over `metrics`.
    pub fn new(metrics: Arc<dyn MetricsPage>) -> Arc<Ops> {
        Arc::new(Ops {
            metrics,
            history: Mutex::new(VecDeque::with_capacity(KEEP + 1)),
        })
    }

    /// Reads the metrics now and keeps the sample.
    async fn sample(&self) -> cauce_ingest::Result<Snapshot> {
        let snap = Snapshot::parse(&self.metrics.render().await?);
        let point = Point::of(&snap, cauce_store::time::now_ms());
        let mut history = self.history.lock().expect("no panic holds the history");
        history.push_back(point);
        while history.len() > KEEP {
            history.pop_front();
        }
        Ok(snap)
    }

    /// Samples every [`EVERY`], for as long as the server runs.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = self.sample().await {
                tracing::warn!(error = %e, "The operations page could not sample the metrics.");
            }
        }
    }
}

#[async_trait]
impl OpsPage for Ops {
    async fn render(&self) -> cauce_ingest::Result<String> {
        let snap = self.sample().await?;
        let history: Vec<Point> = self
            .history
            .lock()
            .expect("no panic holds the history")
            .iter()
            .cloned()
            .collect();
        Ok(html(&snap, &history))
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem auto;padding:0 1rem;max-width:1000px;color:#111827}\
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #e5e7eb}\
.note{color:#6b7280}ul.status{list-style:none;padding:0}ul.status li{padding:.4rem .7rem;margin:.3rem 0;border-radius:4px}\
.ok{background:#ecfdf5}.warn{background:#fffbeb}.bad{background:#fef2f2;font-weight:600}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}figcaption{font-weight:600;margin-bottom:.2rem}\
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}td,th{border:1px solid #e5e7eb;padding:.2rem .5rem;text-align:right}\
th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}code{background:#f3f4f6;padding:0 .2rem}";

/// A count for people: 1234567 → "1,234,567"; fractions keep two decimals.
fn num(v: f64) -> String {
    if v.fract() != 0.0 && v.abs() < 1000.0 {
        return format!("{v:.2}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

fn seconds(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.is_infinite() => "> 10 s".into(),
        Some(v) if v < 1.0 => format!("≤ {:.0} ms", v * 1e3),
        Some(v) => format!("≤ {v} s"),
    }
}

/// The page.
fn html(snap: &Snapshot, history: &[Point]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"10\"><title>Cauce · operations</title>\
         <style>{STYLE}</style></head><body><h1>Cauce operations</h1>\
         <p class=\"note\">This server, {}; refreshes every 10 s. The same metrics are at <code>/metrics</code>.</p>",
        escape(&cauce_store::time::format_rfc3339(cauce_store::time::now_ms()))
    );
    status(snap, history, &mut out);
    out.push_str("<h2>Last hour</h2><div class=\"charts\">");
    let rate = |f: fn(&Point) -> f64| -> Points {
        history
            .windows(2)
            .filter(|w| w[1].at_ms > w[0].at_ms)
            .map(|w| {
                let secs = (w[1].at_ms - w[0].at_ms) as f64 / 1e3;
                (w[1].at_ms, ((f(&w[1]) - f(&w[0])) / secs).max(0.0))
            })
            .collect()
    };
    let level =
        |f: fn(&Point) -> f64| -> Points { history.iter().map(|p| (p.at_ms, f(p))).collect() };
    let p99: Points = history
        .windows(2)
        .filter_map(|w| Some((w[1].at_ms, quantile(&w[1].latency, &w[0].latency, 0.99)?)))
        .map(|(at, s)| (at, if s.is_finite() { s * 1e3 } else { 10_000.0 }))
        .collect();
    chart(
        "Items per second",
        &[
            ("accepted", "#2563eb", rate(|p| p.accepted)),
            ("written", "#16a34a", rate(|p| p.stored)),
            ("in the lake", "#9333ea", rate(|p| p.rows)),
        ],
        &mut out,
    );
    chart(
        "Queue depth (items)",
        &[("waiting", "#ea580c", level(|p| p.depth))],
        &mut out,
    );
    chart(
        "Lake lag (seconds)",
        &[("behind", "#dc2626", level(|p| p.lag_s))],
        &mut out,
    );
    chart(
        "Request p99 (ms, bucket bound)",
        &[("p99", "#0891b2", p99)],
        &mut out,
    );
    out.push_str("</div>");
    totals(snap, &mut out);
    out.push_str("</body></html>\n");
    out
}

/// What needs a person now, worst first, each with what to do.
fn status(snap: &Snapshot, history: &[Point], out: &mut String) {
    let mut items: Vec<(&str, String)> = Vec::new();
    let dead = snap.total(DEAD_LETTERS);
    if dead > 0.0 {
        items.push(("bad", format!(
            "{} messages in the dead letters: see why with <code>cauce dlq list --data DIR</code>, then <code>cauce dlq replay</code>",
            num(dead)
        )));
    }
    let oldest = snap.total(QUEUE_OLDEST_AGE);
    if oldest > 60.0 {
        let class = if oldest > 300.0 { "bad" } else { "warn" };
        items.push((class, format!(
            "the oldest queued message is {} s old: the writer is behind or failing (see the log for store errors)",
            num(oldest.round())
        )));
    }
    let lag = snap.total(EXPORT_LAG_SECONDS);
    if lag > 10.0 {
        let class = if lag > 120.0 { "bad" } else { "warn" };
        items.push((
            class,
            format!(
                "the lake is {} s ({} changes) behind the store: the exporter is behind or failing",
                num(lag.round()),
                num(snap.total(EXPORT_LAG_RECORDS))
            ),
        ));
    }
    if let [.., before, now] = history {
        if now.accepted < before.accepted {
            items.push((
                "warn",
                "the counters went back: the server restarted".into(),
            ));
        }
    }
    let rejected = snap.total(ITEMS_REJECTED);
    let accepted = snap.total(ITEMS_ACCEPTED);
    if rejected > 0.0 && rejected / (rejected + accepted) > 0.05 {
        items.push(("warn", format!(
            "{:.1}% of the items since start were rejected (by code below): a client sends bad data; the bad rows are in the lake under <code>bad_rows/</code>",
            100.0 * rejected / (rejected + accepted)
        )));
    }
    let errors: f64 = snap
        .named(&format!("{REQUEST_DURATION}_count"))
        .filter(|s| s.labels.get("status").is_some_and(|c| c.starts_with('5')))
        .map(|s| s.value)
        .sum();
    if errors > 0.0 {
        items.push((
            "warn",
            format!(
                "{} requests answered 5xx since start: a backend was unavailable (see the log)",
                num(errors)
            ),
        ));
    }
    if items.is_empty() {
        items.push((
            "ok",
            format!(
                "all clear: {} items waiting, the lake {} s behind, no dead letters",
                num(snap.total(QUEUE_DEPTH)),
                num(lag.round())
            ),
        ));
    }
    out.push_str("<ul class=\"status\">");
    for (class, text) in items {
        let _ = write!(out, "<li class=\"{class}\">{text}</li>");
    }
    out.push_str("</ul>");
}

/// A chart's points: (time ms, value).
type Points = Vec<(i64, f64)>;

/// A line chart of `lines` (label, colour, points) over the last hour.
fn chart(title: &str, lines: &[(&str, &str, Points)], out: &mut String) {
    const W: f64 = 460.0;
    const H: f64 = 170.0;
    const LEFT: f64 = 52.0;
    const BOTTOM: f64 = 22.0;
    let end = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.0))
        .max()
        .unwrap_or_else(cauce_store::time::now_ms);
    let start = end - 3_600_000;
    let top = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let x = |at: i64| LEFT + (at - start) as f64 / 3_600_000.0 * (W - LEFT - 8.0);
    let y = |v: f64| (H - BOTTOM) - v / top * (H - BOTTOM - 18.0);
    let _ = write!(
        out,
        "<figure class=\"chart\"><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-size=\"10\" font-family=\"system-ui,sans-serif\">",
        escape(title)
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>",
            W - 8.0,
            LEFT - 4.0,
            y(v) + 3.0,
            num(if top > 10.0 {
                v.round()
            } else {
                (v * 100.0).round() / 100.0
            }),
            y = y(v),
        );
    }
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{}\" fill=\"#6b7280\">−60 min</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#6b7280\">now</text>",
        H - 6.0,
        W - 8.0,
        H - 6.0
    );
    for (i, (label, colour, points)) in lines.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .filter(|p| p.0 >= start)
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\" points=\"{}\"/>\
             <rect x=\"{}\" y=\"4\" width=\"10\" height=\"6\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"10\">{}</text>",
            path.join(" "),
            LEFT + 6.0 + 110.0 * i as f64,
            LEFT + 20.0 + 110.0 * i as f64,
            escape(label)
        );
        if let [.., last] = points.as_slice() {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>",
                x(last.0),
                y(last.1)
            );
        }
    }
    out.push_str("</svg></figure>");
}

/// The totals since start: per kind, rejections by code, requests by route, the jobs.
fn totals(snap: &Snapshot, out: &mut String) {
    out.push_str("<h2>Since start</h2><table><tr><th>kind</th><th>accepted</th><th>rejected</th>\
                  <th>stored</th><th>deduplicated</th><th>lake rows</th><th>lake files</th><th>lake bytes</th></tr>");
    let columns = [
        snap.by(ITEMS_ACCEPTED, "kind"),
        snap.by(ITEMS_REJECTED, "kind"),
        snap.by(ITEMS_STORED, "kind"),
        snap.by(ITEMS_DEDUPLICATED, "kind"),
        snap.by(EXPORT_ROWS, "kind"),
        snap.by(EXPORT_FILES, "kind"),
        snap.by(EXPORT_BYTES, "kind"),
    ];
    for kind in ["events", "stories", "tests"] {
        let _ = write!(out, "<tr><td>{kind}</td>");
        for c in &columns {
            let _ = write!(out, "<td>{}</td>", num(c.get(kind).copied().unwrap_or(0.0)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");

    let codes = snap.by(ITEMS_REJECTED, "code");
    if !codes.is_empty() {
        out.push_str("<table><tr><th>rejected by code</th><th>items</th></tr>");
        for (code, n) in &codes {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(code),
                num(*n)
            );
        }
        out.push_str("</table>");
    }

    let mut routes: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in snap.named(&format!("{REQUEST_DURATION}_count")) {
        let key = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        *routes.entry((key("route"), key("status"))).or_insert(0.0) += s.value;
    }
    out.push_str(
        "<table><tr><th>route</th><th>status</th><th>requests</th><th>p50</th><th>p99</th></tr>",
    );
    for ((route, code), n) in &routes {
        let mine = |s: &Series| {
            s.labels.get("route") == Some(route) && s.labels.get("status") == Some(code)
        };
        let b = snap.buckets(REQUEST_DURATION, mine);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(route),
            escape(code),
            num(*n),
            seconds(quantile(&b, &[], 0.5)),
            seconds(quantile(&b, &[], 0.99))
        );
    }
    out.push_str("</table>");

    out.push_str("<table><tr><th>work</th><th>count</th></tr>");
    let mut work: Vec<(String, f64)> = vec![
        (
            "writer batches".into(),
            snap.total(&format!("{WRITER_BATCH}_count")),
        ),
        ("messages dead-lettered".into(), snap.total(DEAD_LETTERED)),
        (
            "changes not exportable (bad rows)".into(),
            snap.total(EXPORT_BAD_ROWS),
        ),
        (
            "compaction input files".into(),
            snap.total(COMPACTION_INPUTS),
        ),
        (
            "compaction output files".into(),
            snap.total(COMPACTION_OUTPUTS),
        ),
    ];
    for (name, label, what) in [
        (WRITER_FAILURES, "reason", "writer failures"),
        (COMPACTION_RUNS, "outcome", "compaction runs"),
        (REPORT_RUNS, "outcome", "report runs"),
    ] {
        work.extend(
            snap.by(name, label)
                .into_iter()
                .map(|(k, v)| (format!("{what}, {k}"), v)),
        );
    }
    for (name, n) in work {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&name),
            num(n)
        );
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE cauce_items_accepted_total counter\n\
        cauce_items_accepted_total{kind=\"events\",app=\"app_1\"} 30\n\
        cauce_items_accepted_total{kind=\"stories\",app=\"app_1\"} 5\n\
        cauce_items_rejected_total{kind=\"events\",code=\"missing_field\",app=\"a\\\"b\"} 2\n\
        cauce_dead_letters 3\n\
        cauce_request_duration_seconds_bucket{route=\"/v1/events\",status=\"202\",le=\"0.005\"} 90\n\
        cauce_request_duration_seconds_bucket{route=\"/v1/events\",status=\"202\",le=\"0.05\"} 99\n\
        cauce_request_duration_seconds_bucket{route=\"/v1/events\",status=\"202\",le=\"+Inf\"} 100\n\
        cauce_request_duration_seconds_count{route=\"/v1/events\",status=\"202\"} 100\n\
        cauce_request_duration_seconds_count{route=\"/v1/events\",status=\"503\"} 4\n";

    #[test]
    fn the_page_is_read_back_with_its_labels() {
        let snap = Snapshot::parse(PAGE);
        assert_eq!(snap.total(ITEMS_ACCEPTED), 35.0);
        assert_eq!(snap.by(ITEMS_ACCEPTED, "kind")["stories"], 5.0);
        let rejected = snap.named(ITEMS_REJECTED).next().unwrap();
        assert_eq!(rejected.labels["app"], "a\"b");
        assert_eq!(rejected.labels["code"], "missing_field");
        let b = snap.buckets(REQUEST_DURATION, |_| true);
        assert_eq!(b, vec![(0.005, 90.0), (0.05, 99.0), (f64::INFINITY, 100.0)]);
        assert_eq!(quantile(&b, &[], 0.5), Some(0.005));
        assert_eq!(quantile(&b, &[], 0.99), Some(0.05));
        assert_eq!(quantile(&b, &b, 0.99), None, "no requests in between");
    }

    #[test]
    fn the_status_names_what_needs_a_person() {
        let page = html(&Snapshot::parse(PAGE), &[]);
        assert!(page.contains("3 messages in the dead letters"), "{page}");
        assert!(page.contains("4 requests answered 5xx"), "{page}");
        assert!(
            page.contains("5.4% of the items since start were rejected"),
            "{page}"
        );
        assert!(!page.contains("all clear"));
        let calm = html(&Snapshot::parse("cauce_queue_depth 2\n"), &[]);
        assert!(calm.contains("all clear: 2 items waiting"), "{calm}");
        assert_eq!(num(1_234_567.0), "1,234,567");
    }
}
