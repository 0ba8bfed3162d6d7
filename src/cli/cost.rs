//! `cauce cost`: what a serverless deployment costs a month, service by service, and how close
//! the load comes to each quota, from a model whose every price and constant is an input.
//!
//! The model follows one event through the pipeline: a request of `items_per_request` events
//! through API Gateway to the `api` Lambda (and the authorizer, cached per key), one SQS FIFO
//! message per request (an SDK's batch comes from one device, so one message group), the
//! `writer` Lambda writing each item to DynamoDB (the table and its timeline index: two writes),
//! the stream read by the `exporter` (free to Lambda) into Parquet on S3, the raw body to
//! Firehose, and the logs. A month is 30 days. Prices are the list prices of us-east-1 (see
//! [`Prices`]); `--prices FILE` replaces any of them.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Seconds in the model's month (30 days).
const MONTH_S: f64 = 30.0 * 86_400.0;
/// Hours in a billing month, as AWS counts provisioned capacity.
const MONTH_H: f64 = 730.0;
const MILLION: f64 = 1e6;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;

#[derive(Debug, Clone, clap::Args)]
pub struct CostArgs {
    /// Events a second, sustained.
    #[arg(long)]
    pub events_per_sec: f64,
    /// Apps sending them.
    #[arg(long)]
    pub apps: u64,
    /// Bytes of one event as sent (JSON).
    #[arg(long, default_value_t = 300)]
    pub event_bytes: u64,
    /// Events per HTTP request (SDKs batch: 20 to 100 is usual).
    #[arg(long, default_value_t = 20)]
    pub items_per_request: u64,
    /// The region: its prices must come from `--prices` unless it is us-east-1.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// `rest` (the Terraform's, with usage plans) or `http` (API Gateway's cheaper HTTP API).
    #[arg(long, value_enum, default_value_t = ApiKind::Rest)]
    pub api: ApiKind,
    /// How DynamoDB is billed.
    #[arg(long, value_enum, default_value_t = Capacity::OnDemand)]
    pub capacity: Capacity,
    /// Days a record stays in DynamoDB (TTL).
    #[arg(long, default_value_t = 30)]
    pub ttl_days: u32,
    /// The timeline index projects keys only (its items are small; a timeline read then fetches
    /// the records), rather than whole records.
    #[arg(long)]
    pub index_keys_only: bool,
    /// A JSON file of prices that replace the built-in ones (any subset of `Prices`' fields).
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Print the estimate as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The API Gateway flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// REST API (usage plans, request validation, WAF).
    Rest,
    /// HTTP API (no usage plans; about a third of the price).
    Http,
}

/// DynamoDB's billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capacity {
    /// Pay per request.
    OnDemand,
    /// Provisioned write capacity at the target utilization (autoscaling).
    Provisioned,
    /// Provisioned, bought as one-year reserved capacity.
    Reserved,
}

/// List prices (USD) and the model's constants. Defaults: us-east-1 list prices, from the AWS
/// pricing pages (DynamoDB after its November 2024 on-demand cut).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prices {
    /// REST API requests per million, by tier: (requests up to, price); the last tier is open.
    pub rest_api_tiers: Vec<(f64, f64)>,
    /// HTTP API requests per million, by tier.
    pub http_api_tiers: Vec<(f64, f64)>,
    /// Lambda, per million invocations.
    pub lambda_request: f64,
    /// Lambda, per GB-second (arm64).
    pub lambda_gb_s: f64,
    /// SQS FIFO, per million requests (each 64 KiB of a message is a request).
    pub sqs_fifo_request: f64,
    /// DynamoDB on-demand, per million write request units.
    pub dynamo_wru: f64,
    /// DynamoDB provisioned, per WCU-hour.
    pub dynamo_wcu_hour: f64,
    /// DynamoDB reserved (one year), per WCU-month, upfront spread over the year included.
    pub dynamo_reserved_wcu_month: f64,
    /// DynamoDB storage, per GB-month.
    pub dynamo_storage_gb: f64,
    /// DynamoDB point-in-time recovery, per GB-month.
    pub dynamo_pitr_gb: f64,
    /// S3 PUT, per thousand.
    pub s3_put_k: f64,
    /// S3 Standard storage, per GB-month.
    pub s3_gb: f64,
    /// Firehose direct PUT, per GB ingested (each record rounded up to 5 KB).
    pub firehose_gb: f64,
    /// CloudWatch Logs ingestion, per GB.
    pub logs_gb: f64,
    /// The `api` Lambda's billed time per request, ms, at `api_memory_gb`.
    pub api_ms: f64,
    /// The `api` Lambda's memory, GB.
    pub api_memory_gb: f64,
    /// The `writer`'s billed time per item written (conditional puts, in turn), ms.
    pub writer_ms_per_item: f64,
    /// The `writer`'s memory, GB.
    pub writer_memory_gb: f64,
    /// The `exporter`'s billed time per record, ms.
    pub exporter_ms_per_record: f64,
    /// The `exporter`'s memory, GB.
    pub exporter_memory_gb: f64,
    /// Stream records per `exporter` invocation (the mapping's batch).
    pub exporter_batch: f64,
    /// Bytes a stored item takes in DynamoDB per event byte sent (the document plus keys).
    pub item_bytes_per_event_byte: f64,
    /// Bytes of Parquet in the lake per event (zstd, after compaction).
    pub lake_bytes_per_event: f64,
    /// Bytes of logs per request (the access log line and the Lambdas' JSON lines).
    pub log_bytes_per_request: f64,
    /// Target utilization of provisioned capacity under autoscaling.
    pub provisioned_utilization: f64,
    /// How long the authorizer's answer is cached per key, seconds.
    pub authorizer_cache_s: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            rest_api_tiers: vec![
                (333e6, 3.50),
                (1e9, 2.80),
                (20e9, 2.38),
                (f64::INFINITY, 1.51),
            ],
            http_api_tiers: vec![(300e6, 1.00), (f64::INFINITY, 0.90)],
            lambda_request: 0.20,
            lambda_gb_s: 0.000_013_333_4,
            sqs_fifo_request: 0.50,
            dynamo_wru: 0.625,
            dynamo_wcu_hour: 0.000_65,
            dynamo_reserved_wcu_month: (150.0 / 12.0 + 0.0128 * MONTH_H) / 100.0,
            dynamo_storage_gb: 0.25,
            dynamo_pitr_gb: 0.20,
            s3_put_k: 0.005,
            s3_gb: 0.023,
            firehose_gb: 0.029,
            logs_gb: 0.50,
            api_ms: 8.0,
            api_memory_gb: 0.5,
            writer_ms_per_item: 1.0,
            writer_memory_gb: 0.5,
            exporter_ms_per_record: 0.05,
            exporter_memory_gb: 1.0,
            exporter_batch: 1_000.0,
            item_bytes_per_event_byte: 1.6,
            lake_bytes_per_event: 60.0,
            log_bytes_per_request: 500.0,
            provisioned_utilization: 0.7,
            authorizer_cache_s: 300.0,
        }
    }
}

/// The load and the choices the estimate is for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    /// Events a second.
    pub events_per_sec: f64,
    /// Apps.
    pub apps: u64,
    /// Bytes of one event.
    pub event_bytes: f64,
    /// Events per request.
    pub items_per_request: f64,
    /// The API flavour.
    pub api: ApiKind,
    /// DynamoDB's billing.
    pub capacity: Capacity,
    /// Days in DynamoDB.
    pub ttl_days: f64,
    /// Whether the timeline index projects keys only.
    pub index_keys_only: bool,
}

/// One service's monthly cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The service and what is counted.
    pub service: &'static str,
    /// How much of it a month.
    pub quantity: f64,
    /// Its unit.
    pub unit: &'static str,
    /// USD a month.
    pub usd: f64,
}

/// One quota and how much of it the load uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quota {
    /// The quota.
    pub name: &'static str,
    /// What the load needs, in the quota's unit.
    pub used: f64,
    /// The quota (the default; most can be raised).
    pub limit: f64,
    /// The quota's unit.
    pub unit: &'static str,
}

/// The estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// The load.
    pub load: Load,
    /// Events a month.
    pub events: f64,
    /// Cost by service.
    pub lines: Vec<Line>,
    /// USD a month.
    pub total_usd: f64,
    /// USD per million events.
    pub usd_per_million: f64,
    /// Quotas, used and default.
    pub quotas: Vec<Quota>,
}

/// Requests priced by tiers of (cumulative requests up to, USD per million).
fn tiered(requests: f64, tiers: &[(f64, f64)]) -> f64 {
    let (mut usd, mut from) = (0.0, 0.0);
    for &(upto, per_million) in tiers {
        if requests <= from {
            break;
        }
        usd += (requests.min(upto) - from) / MILLION * per_million;
        from = upto;
    }
    usd
}

/// The monthly estimate of `load` at `prices`.
pub fn estimate(load: &Load, prices: &Prices) -> Estimate {
    let p = prices;
    let events = load.events_per_sec * MONTH_S;
    let requests = events / load.items_per_request;
    let body_bytes = load.event_bytes * load.items_per_request;
    let lambda = |invocations: f64, seconds: f64, memory_gb: f64| {
        invocations / MILLION * p.lambda_request + seconds * memory_gb * p.lambda_gb_s
    };
    let mut lines = Vec::new();
    let mut line = |service, quantity, unit, usd| {
        lines.push(Line {
            service,
            quantity,
            unit,
            usd,
        })
    };

    let api_usd = match load.api {
        ApiKind::Rest => tiered(requests, &p.rest_api_tiers),
        // The HTTP API counts each 512 KB of a request as one.
        ApiKind::Http => tiered(
            requests * (body_bytes / 524_288.0).ceil().max(1.0),
            &p.http_api_tiers,
        ),
    };
    line("API Gateway requests", requests, "requests", api_usd);
    let api_s = requests * p.api_ms / 1000.0;
    line(
        "Lambda api",
        requests,
        "invocations",
        lambda(requests, api_s, p.api_memory_gb),
    );
    let authorizations = load.apps as f64 * MONTH_S / p.authorizer_cache_s;
    line(
        "Lambda authorizer (cached per key)",
        authorizations,
        "invocations",
        lambda(authorizations, authorizations * 0.005, 0.25),
    );

    // One message per request; sent, received and deleted (receives and deletes by tens).
    let chunks = (body_bytes / 65_536.0).ceil().max(1.0);
    let sqs_requests = requests * chunks + 2.0 * requests / 10.0;
    line(
        "SQS FIFO requests",
        sqs_requests,
        "requests",
        sqs_requests / MILLION * p.sqs_fifo_request,
    );
    let writer_s = events * p.writer_ms_per_item / 1000.0;
    line(
        "Lambda writer",
        requests / 10.0,
        "invocations",
        lambda(requests / 10.0, writer_s, p.writer_memory_gb),
    );

    // Each item is written to its table and to the timeline index: whole KB units each (a
    // keys-only index item is one unit, and about a tenth of the record's bytes).
    let item_kb = (load.event_bytes * p.item_bytes_per_event_byte / 1024.0).ceil();
    let (index_kb, index_share) = if load.index_keys_only {
        (1.0, 0.1)
    } else {
        (item_kb, 1.0)
    };
    let wru_per_event = item_kb + index_kb;
    let wru = events * wru_per_event;
    let wcu_needed = load.events_per_sec * wru_per_event / p.provisioned_utilization;
    let dynamo_usd = match load.capacity {
        Capacity::OnDemand => wru / MILLION * p.dynamo_wru,
        Capacity::Provisioned => wcu_needed * p.dynamo_wcu_hour * MONTH_H,
        Capacity::Reserved => wcu_needed * p.dynamo_reserved_wcu_month,
    };
    line(
        "DynamoDB writes (table + index)",
        wru,
        "write units",
        dynamo_usd,
    );
    let stored_gb = load.events_per_sec
        * load.ttl_days
        * 86_400.0
        * (1.0 + index_share)
        * load.event_bytes
        * p.item_bytes_per_event_byte
        / GB;
    line(
        "DynamoDB storage and PITR (TTL window)",
        stored_gb,
        "GB",
        stored_gb * (p.dynamo_storage_gb + p.dynamo_pitr_gb),
    );

    let export_invocations = events / p.exporter_batch;
    let exporter_s = events * p.exporter_ms_per_record / 1000.0;
    line(
        "Lambda exporter (stream reads are free)",
        export_invocations,
        "invocations",
        lambda(export_invocations, exporter_s, p.exporter_memory_gb),
    );
    // A file per invocation and kind written, and compaction's reads and writes (small).
    let puts = export_invocations * 1.1;
    line("S3 PUTs", puts, "requests", puts / 1000.0 * p.s3_put_k);
    let lake_gb = events * p.lake_bytes_per_event / GB;
    line(
        "S3 lake storage (one month's data)",
        lake_gb,
        "GB",
        lake_gb * p.s3_gb,
    );
    let firehose_gb = requests * body_bytes.max(5_120.0) / GB;
    line(
        "Firehose raw archive",
        firehose_gb,
        "GB billed",
        firehose_gb * p.firehose_gb,
    );
    let logs_gb = requests * p.log_bytes_per_request / GB;
    line("CloudWatch Logs", logs_gb, "GB", logs_gb * p.logs_gb);

    let total_usd: f64 = lines.iter().map(|l| l.usd).sum();
    let rps = load.events_per_sec / load.items_per_request;
    let concurrency = rps * p.api_ms / 1000.0
        + load.events_per_sec * p.writer_ms_per_item / 1000.0
        + load.events_per_sec * p.exporter_ms_per_record / 1000.0;
    let quotas = vec![
        Quota {
            name: "API Gateway requests per second (account, region)",
            used: rps,
            limit: 10_000.0,
            unit: "requests/s",
        },
        Quota {
            name: "SQS FIFO messages per second (high-throughput queue)",
            used: rps,
            limit: 70_000.0,
            unit: "messages/s",
        },
        Quota {
            name: "SQS FIFO messages per second per message group",
            used: rps / (load.apps.max(1) as f64 * 16.0),
            limit: 300.0,
            unit: "messages/s",
        },
        Quota {
            name: "DynamoDB write units per second per table",
            used: load.events_per_sec * wru_per_event,
            limit: 40_000.0,
            unit: "WRU/s",
        },
        Quota {
            name: "Lambda concurrent executions (account, region)",
            used: concurrency,
            limit: 1_000.0,
            unit: "executions",
        },
        Quota {
            name: "Firehose records per second (us-east-1)",
            used: rps,
            limit: 500_000.0,
            unit: "records/s",
        },
        Quota {
            name: "Firehose bytes per second (us-east-1)",
            used: rps * body_bytes / 1_048_576.0,
            limit: 5.0,
            unit: "MiB/s",
        },
    ];
    Estimate {
        load: load.clone(),
        events,
        usd_per_million: total_usd / (events / MILLION),
        total_usd,
        lines,
        quotas,
    }
}

pub async fn run(args: CostArgs) -> anyhow::Result<()> {
    let prices = match &args.prices {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a prices file", path.display()))?
        }
        None if args.region != "us-east-1" => anyhow::bail!(
            "the built-in prices are us-east-1's: give {}'s with --prices FILE",
            args.region
        ),
        None => Prices::default(),
    };
    anyhow::ensure!(
        args.events_per_sec > 0.0,
        "--events-per-sec must be positive"
    );
    anyhow::ensure!(
        args.items_per_request > 0,
        "--items-per-request must be at least 1"
    );
    let load = Load {
        events_per_sec: args.events_per_sec,
        apps: args.apps,
        event_bytes: args.event_bytes as f64,
        items_per_request: args.items_per_request as f64,
        api: args.api,
        capacity: args.capacity,
        ttl_days: f64::from(args.ttl_days),
        index_keys_only: args.index_keys_only,
    };
    let e = estimate(&load, &prices);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    println!(
        "{:.0} events/s from {} apps, {} events a request ({:.2} billion events a month), {:?} API, DynamoDB {:?}",
        load.events_per_sec, load.apps, load.items_per_request, e.events / 1e9, load.api, load.capacity
    );
    for l in &e.lines {
        println!(
            "  {:<42} {:>14.0} {:<12} ${:>11.2}",
            l.service, l.quantity, l.unit, l.usd
        );
    }
    println!(
        "  {:<42} {:>27} ${:>11.2}  (${:.3} per million events)",
        "total a month", "", e.total_usd, e.usd_per_million
    );
    println!("quotas (defaults; most can be raised):");
    for q in &e.quotas {
        println!(
            "  {:<55} {:>10.1} of {:>9.0} {:<11} ({:.0}%)",
            q.name,
            q.used,
            q.limit,
            q.unit,
            100.0 * q.used / q.limit
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(eps: f64, apps: u64, capacity: Capacity, api: ApiKind) -> Load {
        Load {
            events_per_sec: eps,
            apps,
            event_bytes: 300.0,
            items_per_request: 20.0,
            api,
            capacity,
            ttl_days: 30.0,
            index_keys_only: false,
        }
    }

    fn usd(e: &Estimate, service: &str) -> f64 {
        e.lines
            .iter()
            .find(|l| l.service.starts_with(service))
            .unwrap()
            .usd
    }

    /// 100 events/s: 259.2 million events, 12.96 million requests a month, worked by hand.
    #[test]
    fn a_hand_worked_case() {
        let e = estimate(
            &load(100.0, 10, Capacity::OnDemand, ApiKind::Rest),
            &Prices::default(),
        );
        assert_eq!(e.events, 259_200_000.0);
        // 12.96 M requests, all in the first REST tier: 12.96 × $3.50.
        assert!((usd(&e, "API Gateway") - 45.36).abs() < 1e-9);
        // 300 B × 1.6 = 480 B: one KB unit, twice (table and index): 518.4 M WRU × $0.625/M.
        assert!((usd(&e, "DynamoDB writes") - 324.0).abs() < 1e-9);
        // api: 12.96 M × $0.20/M + 12.96 M × 8 ms × 0.5 GB × $0.0000133334.
        let api = 12.96 * 0.20 + 12.96e6 * 0.008 * 0.5 * 0.000_013_333_4;
        assert!((usd(&e, "Lambda api") - api).abs() < 1e-9);
        // SQS: one send per request (6 KB bodies) and a receive and a delete per ten.
        assert!((usd(&e, "SQS") - 12.96 * 1.2 * 0.50).abs() < 1e-9);
        // Firehose: a 6,000 B body is over the 5 KB minimum a record is billed at.
        assert!((usd(&e, "Firehose") - 12.96e6 * 6_000.0 / GB * 0.029).abs() < 1e-9);
        let sum: f64 = e.lines.iter().map(|l| l.usd).sum();
        assert!((e.total_usd - sum).abs() < 1e-9);
        assert!((e.usd_per_million - sum / 259.2).abs() < 1e-9);
    }

    #[test]
    fn tiers_price_each_slice_at_its_rate() {
        let tiers = Prices::default().rest_api_tiers;
        assert!((tiered(1e9, &tiers) - (333.0 * 3.5 + 667.0 * 2.8)).abs() < 1e-6);
        assert_eq!(tiered(0.0, &tiers), 0.0);
    }

    /// The levers: at 2,000 apps × 5 events/s, provisioned and reserved capacity and the HTTP
    /// API each cut the bill, in that order of size.
    #[test]
    fn levers_cut_the_bill() {
        let p = Prices::default();
        let at = |c, a| estimate(&load(10_000.0, 2_000, c, a), &p).usd_per_million;
        let on_demand = at(Capacity::OnDemand, ApiKind::Rest);
        let provisioned = at(Capacity::Provisioned, ApiKind::Rest);
        let reserved = at(Capacity::Reserved, ApiKind::Rest);
        let http = at(Capacity::Reserved, ApiKind::Http);
        assert!(
            on_demand > provisioned && provisioned > reserved && reserved > http,
            "{on_demand} {provisioned} {reserved} {http}"
        );
        // And the levers past them: bigger batches, a short hot store, a keys-only index.
        let lean = Load {
            items_per_request: 100.0,
            ttl_days: 1.0,
            index_keys_only: true,
            ..load(10_000.0, 2_000, Capacity::Reserved, ApiKind::Http)
        };
        let lean = estimate(&lean, &p).usd_per_million;
        assert!(lean < 0.30, "the goal is reachable: ${lean:.3} per million");
        assert!(http > 0.30, "and not without them: ${http:.3} per million");
    }
}
