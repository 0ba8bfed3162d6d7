//! CloudWatch's Embedded Metric Format: a `metrics` recorder that keeps what the stages record
//! during a Lambda invocation and prints it at the end as EMF JSON lines on stdout, which
//! CloudWatch Logs turns into metrics: no API call, nothing on the request's path.
//!
//! One document per label set: the labels are its dimensions, beside the process's own
//! (`function`), with a second dimension set of the process's own alone, so that CloudWatch
//! also keeps each metric's total per function (what the alarms watch). A counter's value is its increase since the last flush; a gauge appears when
//! it was set since the last flush; a histogram's values go as an array (at most 100 a
//! document, as the format allows; more go in further documents).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use serde_json::{json, Map, Value};

/// The most values of one metric in one document.
pub const MAX_VALUES: usize = 100;

#[derive(Debug, Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// A gauge's value, and whether it was set since the last flush.
#[derive(Debug, Default)]
struct Level(Mutex<(f64, bool)>);

impl Level {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *v = (f(v.0), true);
    }
}

impl GaugeFn for Level {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

#[derive(Debug, Default)]
struct Values(Mutex<Vec<f64>>);

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }
}

#[derive(Debug, Clone)]
enum Cell {
    Counter(Arc<Count>),
    Gauge(Arc<Level>),
    Histogram(Arc<Values>),
}

impl Cell {
    /// What was recorded since the last call, and resets it; `None` when nothing was.
    fn take(&self) -> Option<Vec<f64>> {
        match self {
            Cell::Counter(c) => match c.0.swap(0, Ordering::Relaxed) {
                0 => None,
                n => Some(vec![n as f64]),
            },
            Cell::Gauge(g) => {
                let mut v = g.0.lock().unwrap_or_else(PoisonError::into_inner);
                std::mem::take(&mut v.1).then_some(vec![v.0])
            }
            Cell::Histogram(h) => {
                let values =
                    std::mem::take(&mut *h.0.lock().unwrap_or_else(PoisonError::into_inner));
                (!values.is_empty()).then_some(values)
            }
        }
    }
}

/// A label set, sorted by name.
type Labels = Vec<(String, String)>;

/// The EMF recorder.
#[derive(Debug)]
pub struct Emf {
    namespace: String,
    dimensions: Vec<(String, String)>,
    cells: Mutex<BTreeMap<Key, Cell>>,
    units: RwLock<HashMap<String, Unit>>,
}

/// CloudWatch's name of a unit.
fn unit_name(unit: Option<&Unit>) -> &'static str {
    match unit {
        Some(Unit::Count) => "Count",
        Some(Unit::Seconds) => "Seconds",
        Some(Unit::Milliseconds) => "Milliseconds",
        Some(Unit::Microseconds) => "Microseconds",
        Some(Unit::Bytes) => "Bytes",
        Some(Unit::Percent) => "Percent",
        _ => "None",
    }
}

impl Emf {
    /// A recorder for `namespace`, whose documents all carry `dimensions` (name, value).
    pub fn new(namespace: impl Into<String>, dimensions: Vec<(String, String)>) -> Self {
        Emf {
            namespace: namespace.into(),
            dimensions,
            cells: Mutex::default(),
            units: RwLock::default(),
        }
    }

    fn cell(&self, key: &Key, make: impl FnOnce() -> Cell) -> Cell {
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        cells.entry(key.clone()).or_insert_with(make).clone()
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            let mut units = self.units.write().unwrap_or_else(PoisonError::into_inner);
            units.insert(key.as_str().to_owned(), unit);
        }
    }

    /// The EMF documents of what was recorded since the last call, stamped `timestamp_ms`;
    /// counters and histograms start again from nothing.
    pub fn documents(&self, timestamp_ms: i64) -> Vec<Value> {
        let mut groups: BTreeMap<Labels, Vec<(String, Vec<f64>)>> = BTreeMap::new();
        for (key, cell) in self
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if let Some(values) = cell.take() {
                let mut labels: Labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                labels.sort();
                let name = key.name().to_owned();
                groups.entry(labels).or_default().push((name, values));
            }
        }
        let units = self.units.read().unwrap_or_else(PoisonError::into_inner);
        let mut docs = Vec::new();
        for (labels, metrics) in groups {
            // The first document takes every metric's first 100 values; further ones the rest.
            let rounds = metrics
                .iter()
                .map(|(_, v)| v.len().div_ceil(MAX_VALUES))
                .max()
                .unwrap_or(0);
            for round in 0..rounds {
                let part: Vec<(&str, &[f64])> = metrics
                    .iter()
                    .filter_map(|(name, values)| {
                        let chunk = values.chunks(MAX_VALUES).nth(round)?;
                        Some((name.as_str(), chunk))
                    })
                    .collect();
                docs.push(self.document(timestamp_ms, &labels, &part, &units));
            }
        }
        docs
    }

    fn document(
        &self,
        timestamp_ms: i64,
        labels: &[(String, String)],
        metrics: &[(&str, &[f64])],
        units: &HashMap<String, Unit>,
    ) -> Value {
        let mut doc = Map::new();
        let dims = self.dimensions.iter().chain(labels);
        let names: Vec<&str> = dims.clone().map(|(k, _)| k.as_str()).collect();
        // With labels, also the process's dimensions alone: the roll-up an alarm watches.
        let mut sets = vec![names];
        if !labels.is_empty() {
            sets.push(self.dimensions.iter().map(|(k, _)| k.as_str()).collect());
        }
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": unit_name(units.get(*name))}))
            .collect();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": sets,
                    "Metrics": definitions,
                }],
            }),
        );
        for (k, v) in dims {
            doc.insert(k.clone(), Value::from(v.as_str()));
        }
        for (name, values) in metrics {
            let value = match values {
                [one] => json!(one),
                many => json!(many),
            };
            doc.insert((*name).to_owned(), value);
        }
        Value::Object(doc)
    }

    /// Writes what was recorded since the last flush to `out`, one document a line.
    pub fn flush_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for doc in self.documents(crate::time::now_ms()) {
            writeln!(out, "{doc}")?;
        }
        out.flush()
    }

    /// Prints what was recorded since the last flush on stdout, where the Lambda runtime sends
    /// it to CloudWatch Logs. A Lambda calls it at the end of each invocation.
    pub fn flush(&self) {
        let stdout = std::io::stdout();
        if let Err(e) = self.flush_to(&mut stdout.lock()) {
            tracing::warn!(error = %e, "Metrics could not be written.");
        }
    }

    /// Awaits `work` (an invocation), then [`flush`](Self::flush)es what it recorded.
    pub async fn flushing<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let out = work.await;
        self.flush();
        out
    }

    /// Installs the process's EMF recorder, once: namespace `CAUCE_METRICS_NAMESPACE` (default
    /// `Cauce`), dimension `function` (`AWS_LAMBDA_FUNCTION_NAME`, else `function`), and counts
    /// the cold start. Later calls return the same recorder.
    pub fn install(function: &str) -> &'static Emf {
        static EMF: OnceLock<&'static Emf> = OnceLock::new();
        EMF.get_or_init(|| {
            let namespace =
                std::env::var("CAUCE_METRICS_NAMESPACE").unwrap_or_else(|_| "Cauce".into());
            let name =
                std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| function.into());
            let emf: &'static Emf = Box::leak(Box::new(Emf::new(
                namespace,
                vec![("function".into(), name)],
            )));
            if metrics::set_global_recorder(emf).is_ok() {
                super::describe();
                metrics::counter!(super::COLD_STARTS, "function" => function.to_owned())
                    .increment(1);
            }
            emf
        })
    }
}

impl Recorder for Emf {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.describe(key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.describe(key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.describe(key, unit);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.cell(key, || Cell::Counter(Arc::default())) {
            Cell::Counter(c) => Counter::from_arc(c),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match self.cell(key, || Cell::Gauge(Arc::default())) {
            Cell::Gauge(g) => Gauge::from_arc(g),
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match self.cell(key, || Cell::Histogram(Arc::default())) {
            Cell::Histogram(h) => Histogram::from_arc(h),
            _ => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Emf {
        Emf::new("Test", vec![("function".into(), "writer".into())])
    }

    #[test]
    fn one_document_per_label_set_with_its_dimensions_and_units() {
        let emf = recorder();
        metrics::with_local_recorder(&emf, || {
            crate::metrics::describe();
            let accepted = |kind: &'static str| metrics::counter!(crate::metrics::ITEMS_ACCEPTED, "kind" => kind, "app" => "shop");
            accepted("events").increment(3);
            accepted("events").increment(2);
            accepted("tests").increment(1);
            metrics::gauge!(crate::metrics::EXPORT_LAG_SECONDS).set(1.5);
            metrics::histogram!(crate::metrics::WRITER_BATCH).record(10.0);
            metrics::histogram!(crate::metrics::WRITER_BATCH).record(4.0);
        });
        let docs = emf.documents(1_700_000_000_000);
        assert_eq!(docs.len(), 3, "{docs:#?}");
        let plain = &docs[0];
        let meta = &plain["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(plain["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(meta["Namespace"], "Test");
        assert_eq!(meta["Dimensions"], json!([["function"]]));
        assert_eq!(plain["function"], "writer");
        assert_eq!(plain[crate::metrics::EXPORT_LAG_SECONDS], 1.5);
        assert_eq!(plain[crate::metrics::WRITER_BATCH], json!([10.0, 4.0]));
        let units: Vec<&Value> = meta["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["Unit"])
            .collect();
        assert_eq!(units, ["Seconds", "Count"]);
        let events = docs.iter().find(|d| d["kind"] == "events").unwrap();
        assert_eq!(
            events["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "app", "kind"], ["function"]])
        );
        assert_eq!(events[crate::metrics::ITEMS_ACCEPTED], 5.0);
        assert_eq!(events["app"], "shop");
    }

    #[test]
    fn a_flush_starts_counters_and_histograms_again_and_sends_a_gauge_once() {
        let emf = recorder();
        let record = || {
            metrics::with_local_recorder(&emf, || {
                metrics::counter!("c_total").increment(1);
                metrics::histogram!("h").record(1.0);
            })
        };
        record();
        metrics::with_local_recorder(&emf, || metrics::gauge!("g").set(7.0));
        let mut out = Vec::new();
        emf.flush_to(&mut out).unwrap();
        let first: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (&first["c_total"], &first["h"], &first["g"]),
            (&json!(1.0), &json!(1.0), &json!(7.0))
        );
        assert!(emf.documents(0).is_empty(), "nothing new was recorded");
        record();
        record();
        let again = emf.documents(0);
        assert_eq!(again[0]["c_total"], 2.0);
        assert_eq!(again[0]["h"], json!([1.0, 1.0]));
        assert!(again[0].get("g").is_none());
    }

    #[test]
    fn more_than_a_hundred_values_go_in_further_documents() {
        let emf = recorder();
        metrics::with_local_recorder(&emf, || {
            for i in 0..250 {
                metrics::histogram!("h").record(f64::from(i));
            }
            metrics::counter!("c_total").increment(1);
        });
        let docs = emf.documents(0);
        let lens: Vec<usize> = docs
            .iter()
            .map(|d| d["h"].as_array().unwrap().len())
            .collect();
        assert_eq!(lens, [100, 100, 50]);
        assert_eq!(docs[0]["c_total"], 1.0);
        assert!(docs[1].get("c_total").is_none());
        let names: Vec<usize> = docs
            .iter()
            .map(|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(names, [2, 1, 1]);
    }
}
