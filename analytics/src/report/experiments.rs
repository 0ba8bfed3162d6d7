//! `experiments`: per-variant conversion, lift against the control, and the checks an analyst
//! needs before trusting it.
//!
//! Counts the latest version per (experiment, user) in scope: `exposures` are users, and
//! `conversions` those whose `converted` is true. The control is the variant named `control`,
//! otherwise the first variant by name. Against it, each other variant gets:
//!
//! * fixed-horizon: its relative `lift`, the 95% Wald interval of the absolute difference of
//!   rates (`ci95_low`, `ci95_high`) and the p-value of a pooled two-proportion z-test, with
//!   Holm's (`p_value_holm`) and Benjamini–Hochberg's (`q_value_bh`) adjustments across the
//!   experiment's variants;
//! * sequential: an always-valid p-value and 95% confidence sequence (`sequential_*`; the
//!   method is named in `sequential_method`), which a scheduled report may be read against
//!   every day;
//! * Bayesian: the chance that the variant beats the control, and the expected loss of
//!   choosing it;
//! * CUPED: the difference with each user's events in the [`Settings::cuped_days`] before
//!   their exposure as the covariate, its interval and p-value, and the variance it removed.
//!
//! Every row of an experiment also carries `srm_p_value` (chi-square against equal allocation,
//! or the configured weights), `multiple_exposures` (users whose versions name more than one
//! variant) and `warnings`: too few exposures or conversions in an arm, a sample-ratio
//! mismatch, users in several variants. The control's own comparison columns are null.

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order, Settings};
use crate::error::Result;
use crate::exprs::{count, ms, DAY_MS};
use crate::reader::{scan_rows, Days};
use crate::source::{LakeSource, Scope};
use crate::stats::{bayes, benjamini_hochberg, compare, cuped, holm, sequential, srm_p_value, Arm};

/// The p-value under which the allocation is flagged as a sample-ratio mismatch.
const SRM_ALERT: f64 = 0.001;

/// One variant: its counts, and each user's (converted, pre-exposure events).
struct Variant {
    app_id: String,
    experiment: String,
    variant: String,
    arm: Arm,
    users: Vec<(f64, f64)>,
}

/// Every exposed user of the scope, with their conversion and their events in the
/// `cuped_days` before their exposure, sorted by app, experiment, variant.
fn variants(source: &LakeSource, scope: &Scope, settings: &Settings) -> Result<Vec<Variant>> {
    let exposed = source.frame(Kind::Exposure, scope)?.select([
        col("app_id"),
        col("experiment"),
        col("variant"),
        col("user_id"),
        col("converted")
            .fill_null(lit(false))
            .cast(DataType::Float64)
            .alias("y"),
        ms("exposed_at").alias("exposed_at"),
    ]);
    // The covariate reads events before the exposure, whatever the scope's days.
    let app_only = Scope {
        app: scope.app.clone(),
        ..Scope::default()
    };
    let events = source
        .frame(Kind::Event, &app_only)?
        .filter(col("user_id").is_not_null())
        .select([col("app_id"), col("user_id"), ms("ts").alias("ts")]);
    let user = [col("app_id"), col("user_id")];
    let window = settings.cuped_days * DAY_MS;
    let pre = exposed
        .clone()
        .select([
            col("app_id"),
            col("experiment"),
            col("user_id"),
            col("exposed_at"),
        ])
        .join(events, user.clone(), user, JoinArgs::new(JoinType::Inner))
        .filter(
            col("ts")
                .lt(col("exposed_at"))
                .and(col("ts").gt_eq(col("exposed_at") - lit(window))),
        )
        .group_by([col("app_id"), col("experiment"), col("user_id")])
        .agg([count("x")]);
    let key = [col("app_id"), col("experiment"), col("user_id")];
    let df = collect(
        exposed
            .join(pre, key.clone(), key, JoinArgs::new(JoinType::Left))
            .with_column(col("x").fill_null(lit(0i64)).cast(DataType::Float64))
            .sort(
                ["app_id", "experiment", "variant", "user_id"],
                order(&[false, false, false, false]),
            ),
    )?;
    let text = |c: &str| -> Result<Vec<String>> {
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_owned())
            .collect())
    };
    let number = |c: &str| -> Result<Vec<f64>> {
        Ok(df
            .column(c)?
            .f64()?
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect())
    };
    let (apps, experiments, names) = (text("app_id")?, text("experiment")?, text("variant")?);
    let (y, x) = (number("y")?, number("x")?);
    let mut out: Vec<Variant> = Vec::new();
    for i in 0..df.height() {
        let same = out.last().is_some_and(|v| {
            v.app_id == apps[i] && v.experiment == experiments[i] && v.variant == names[i]
        });
        if !same {
            out.push(Variant {
                app_id: apps[i].clone(),
                experiment: experiments[i].clone(),
                variant: names[i].clone(),
                arm: Arm {
                    conversions: 0,
                    exposures: 0,
                },
                users: Vec::new(),
            });
        }
        let v = out.last_mut().expect("pushed above");
        v.arm.exposures += 1;
        v.arm.conversions += u64::from(y[i] > 0.0);
        v.users.push((y[i], x[i]));
    }
    Ok(out)
}

/// Users per (app, experiment) whose versions name more than one variant.
fn multiple_exposures(source: &LakeSource, scope: &Scope) -> Result<Vec<(String, String, i64)>> {
    let Some(rows) = scan_rows(source.root(), Kind::Exposure, Days::default())? else {
        return Ok(Vec::new());
    };
    let rows = match &scope.app {
        Some(app) => rows.filter(col("app_id").eq(lit(app.as_str()))),
        None => rows,
    };
    let df = collect(
        rows.group_by([col("app_id"), col("experiment"), col("user_id")])
            .agg([col("variant").n_unique().alias("variants")])
            .filter(col("variants").gt(lit(1)))
            .group_by([col("app_id"), col("experiment")])
            .agg([count("users")]),
    )?;
    let (apps, exps, users) = (
        df.column("app_id")?.str()?.clone(),
        df.column("experiment")?.str()?.clone(),
        df.column("users")?.i64()?.clone(),
    );
    Ok((0..df.height())
        .map(|i| {
            (
                apps.get(i).unwrap_or_default().to_owned(),
                exps.get(i).unwrap_or_default().to_owned(),
                users.get(i).unwrap_or(0),
            )
        })
        .collect())
}

/// The columns of the report, filled row by row.
#[derive(Default)]
struct Columns {
    lift: Vec<Option<f64>>,
    ci95_low: Vec<Option<f64>>,
    ci95_high: Vec<Option<f64>>,
    p_value: Vec<Option<f64>>,
    p_value_holm: Vec<Option<f64>>,
    q_value_bh: Vec<Option<f64>>,
    sequential_p_value: Vec<Option<f64>>,
    sequential_cs95_low: Vec<Option<f64>>,
    sequential_cs95_high: Vec<Option<f64>>,
    chance_to_beat: Vec<Option<f64>>,
    expected_loss: Vec<Option<f64>>,
    cuped_diff: Vec<Option<f64>>,
    cuped_ci95_low: Vec<Option<f64>>,
    cuped_ci95_high: Vec<Option<f64>>,
    cuped_p_value: Vec<Option<f64>>,
    cuped_variance_reduction: Vec<Option<f64>>,
    srm: Vec<Option<f64>>,
    multiple: Vec<i64>,
    warnings: Vec<Option<String>>,
}

impl Columns {
    /// The control's row: no comparison.
    fn control(&mut self) {
        for c in [
            &mut self.lift,
            &mut self.ci95_low,
            &mut self.ci95_high,
            &mut self.p_value,
            &mut self.p_value_holm,
            &mut self.q_value_bh,
            &mut self.sequential_p_value,
            &mut self.sequential_cs95_low,
            &mut self.sequential_cs95_high,
            &mut self.chance_to_beat,
            &mut self.expected_loss,
            &mut self.cuped_diff,
            &mut self.cuped_ci95_low,
            &mut self.cuped_ci95_high,
            &mut self.cuped_p_value,
            &mut self.cuped_variance_reduction,
        ] {
            c.push(None);
        }
    }

    /// A variant's row against `control`; its adjusted p-values come later.
    fn variant(&mut self, v: &Variant, control: &Variant, settings: &Settings) {
        let c = compare(v.arm, control.arm);
        self.lift.push(c.lift);
        self.ci95_low.push(Some(c.ci95.0));
        self.ci95_high.push(Some(c.ci95.1));
        self.p_value.push(Some(c.p_value));
        self.p_value_holm.push(None);
        self.q_value_bh.push(None);
        let s = sequential(v.arm, control.arm, settings.planned_users);
        self.sequential_p_value.push(Some(s.p_value));
        self.sequential_cs95_low.push(Some(s.cs95.0));
        self.sequential_cs95_high.push(Some(s.cs95.1));
        let b = bayes(v.arm, control.arm);
        self.chance_to_beat.push(Some(b.chance_to_beat));
        self.expected_loss.push(Some(b.expected_loss));
        let cu = cuped(&v.users, &control.users);
        self.cuped_diff.push(cu.map(|c| c.diff));
        self.cuped_ci95_low.push(cu.map(|c| c.ci95.0));
        self.cuped_ci95_high.push(cu.map(|c| c.ci95.1));
        self.cuped_p_value.push(cu.map(|c| c.p_value));
        self.cuped_variance_reduction
            .push(cu.map(|c| c.variance_reduction));
    }
}

/// What an experiment's rows warn of.
fn warnings(
    group: &[Variant],
    srm: Option<f64>,
    multiple: i64,
    settings: &Settings,
) -> Option<String> {
    let mut out = Vec::new();
    for v in group {
        if v.arm.exposures < settings.min_exposures || v.arm.conversions < settings.min_conversions
        {
            out.push(format!(
                "min_sample: {} has {} exposures and {} conversions (at least {} and {} are needed)",
                v.variant,
                v.arm.exposures,
                v.arm.conversions,
                settings.min_exposures,
                settings.min_conversions
            ));
        }
    }
    if let Some(p) = srm.filter(|p| *p < SRM_ALERT) {
        out.push(format!(
            "srm: the allocation is not the planned one (p = {p:.2e}); do not trust the comparison"
        ));
    }
    if multiple > 0 {
        out.push(format!(
            "multiple_exposures: {multiple} users were seen in more than one variant"
        ));
    }
    (!out.is_empty()).then(|| out.join("; "))
}

/// Rows `{app_id, experiment, variant, exposures, conversions, conversion_rate, lift,
/// ci95_low, ci95_high, p_value, p_value_holm, q_value_bh, sequential_p_value,
/// sequential_cs95_low, sequential_cs95_high, sequential_method, chance_to_beat,
/// expected_loss, cuped_diff, cuped_ci95_low, cuped_ci95_high, cuped_p_value,
/// cuped_variance_reduction, srm_p_value, multiple_exposures, warnings}`, by app, experiment
/// and variant.
pub fn experiments(source: &LakeSource, scope: &Scope, settings: &Settings) -> Result<DataFrame> {
    let variants = variants(source, scope, settings)?;
    let multiple = multiple_exposures(source, scope)?;
    let mut cols = Columns::default();
    let mut row = 0;
    for group in variants.chunk_by(|a, b| a.app_id == b.app_id && a.experiment == b.experiment) {
        // Sorted by name, so the first variant is the fallback control.
        let control = group
            .iter()
            .find(|v| v.variant == "control")
            .unwrap_or(&group[0]);
        let weights = settings.weights.get(&group[0].experiment).map(|w| {
            group
                .iter()
                .map(|v| w.get(&v.variant).copied().unwrap_or(0.0))
                .collect::<Vec<f64>>()
        });
        let observed: Vec<u64> = group.iter().map(|v| v.arm.exposures).collect();
        let srm_p = srm_p_value(&observed, weights.as_deref());
        let users_in_several = multiple
            .iter()
            .find(|(a, e, _)| *a == group[0].app_id && *e == group[0].experiment)
            .map_or(0, |m| m.2);
        let warned = warnings(group, srm_p, users_in_several, settings);
        for v in group {
            cols.srm.push(srm_p);
            cols.multiple.push(users_in_several);
            cols.warnings.push(warned.clone());
            if std::ptr::eq(v, control) {
                cols.control();
            } else {
                cols.variant(v, control, settings);
            }
        }
        // The adjustments: one family per experiment, its variants against the control.
        let family: Vec<usize> = (row..row + group.len())
            .filter(|&i| cols.p_value[i].is_some())
            .collect();
        let p: Vec<f64> = family.iter().filter_map(|&i| cols.p_value[i]).collect();
        for ((&i, h), q) in family.iter().zip(holm(&p)).zip(benjamini_hochberg(&p)) {
            cols.p_value_holm[i] = Some(h);
            cols.q_value_bh[i] = Some(q);
        }
        row += group.len();
    }
    let text = |f: fn(&Variant) -> &str| variants.iter().map(f).collect::<Vec<&str>>();
    let int = |f: fn(&Variant) -> u64| variants.iter().map(|v| f(v) as i64).collect::<Vec<_>>();
    let method = format!(
        "Gaussian-mixture confidence sequence (Howard et al. 2021), tuned for {} users",
        settings.planned_users
    );
    let df = DataFrame::new_infer_height(vec![
        Column::new("app_id".into(), text(|v| &v.app_id)),
        Column::new("experiment".into(), text(|v| &v.experiment)),
        Column::new("variant".into(), text(|v| &v.variant)),
        Column::new("exposures".into(), int(|v| v.arm.exposures)),
        Column::new("conversions".into(), int(|v| v.arm.conversions)),
        Column::new(
            "conversion_rate".into(),
            variants.iter().map(|v| v.arm.rate()).collect::<Vec<_>>(),
        ),
        Column::new("lift".into(), cols.lift),
        Column::new("ci95_low".into(), cols.ci95_low),
        Column::new("ci95_high".into(), cols.ci95_high),
        Column::new("p_value".into(), cols.p_value),
        Column::new("p_value_holm".into(), cols.p_value_holm),
        Column::new("q_value_bh".into(), cols.q_value_bh),
        Column::new("sequential_p_value".into(), cols.sequential_p_value),
        Column::new("sequential_cs95_low".into(), cols.sequential_cs95_low),
        Column::new("sequential_cs95_high".into(), cols.sequential_cs95_high),
        Column::new(
            "sequential_method".into(),
            vec![method.as_str(); variants.len()],
        ),
        Column::new("chance_to_beat".into(), cols.chance_to_beat),
        Column::new("expected_loss".into(), cols.expected_loss),
        Column::new("cuped_diff".into(), cols.cuped_diff),
        Column::new("cuped_ci95_low".into(), cols.cuped_ci95_low),
        Column::new("cuped_ci95_high".into(), cols.cuped_ci95_high),
        Column::new("cuped_p_value".into(), cols.cuped_p_value),
        Column::new(
            "cuped_variance_reduction".into(),
            cols.cuped_variance_reduction,
        ),
        Column::new("srm_p_value".into(), cols.srm),
        Column::new("multiple_exposures".into(), cols.multiple),
        Column::new("warnings".into(), cols.warnings),
    ])?;
    Ok(df)
}
