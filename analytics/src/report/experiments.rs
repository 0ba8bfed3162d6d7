//! `experiments`: per-variant conversion, lift against the control, and sample-ratio mismatch.
//!
//! Counts the latest version per (experiment, user) in scope: `exposures` are users, and
//! `conversions` those whose `converted` is true. The control is the variant named `control`,
//! otherwise the first variant by name. Against it, each other variant gets its relative
//! `lift`, the 95% Wald interval of the absolute difference of rates (`ci95_low`, `ci95_high`)
//! and the p-value of a pooled two-proportion z-test; the control's own row leaves them null.
//! `srm_p_value` is the chi-square test of the exposures against equal allocation (or the
//! configured weights), the same on every row of an experiment.

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order, Settings};
use crate::error::Result;
use crate::exprs::{count, count_if};
use crate::source::{LakeSource, Scope};
use crate::stats::{compare, srm_p_value, Arm};

/// One variant's counts.
struct Variant {
    app_id: String,
    experiment: String,
    variant: String,
    arm: Arm,
}

fn counts(source: &LakeSource, scope: &Scope) -> Result<Vec<Variant>> {
    let df = collect(
        source
            .frame(Kind::Exposure, scope)?
            .group_by([col("app_id"), col("experiment"), col("variant")])
            .agg([
                count("exposures"),
                count_if(col("converted").fill_null(lit(false))).alias("conversions"),
            ])
            .sort(
                ["app_id", "experiment", "variant"],
                order(&[false, false, false]),
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
    let number = |c: &str| -> Result<Vec<u64>> {
        Ok(df
            .column(c)?
            .cast(&DataType::UInt64)?
            .u64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let (apps, experiments, variants) = (text("app_id")?, text("experiment")?, text("variant")?);
    let (exposures, conversions) = (number("exposures")?, number("conversions")?);
    Ok((0..df.height())
        .map(|i| Variant {
            app_id: apps[i].clone(),
            experiment: experiments[i].clone(),
            variant: variants[i].clone(),
            arm: Arm {
                conversions: conversions[i],
                exposures: exposures[i],
            },
        })
        .collect())
}

/// Rows `{app_id, experiment, variant, exposures, conversions, conversion_rate, lift, ci95_low,
/// ci95_high, p_value, srm_p_value}`, by app, experiment and variant.
pub fn experiments(source: &LakeSource, scope: &Scope, settings: &Settings) -> Result<DataFrame> {
    let variants = counts(source, scope)?;
    let mut lift = Vec::with_capacity(variants.len());
    let mut ci_low = Vec::with_capacity(variants.len());
    let mut ci_high = Vec::with_capacity(variants.len());
    let mut p_value = Vec::with_capacity(variants.len());
    let mut srm = Vec::with_capacity(variants.len());
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
        for v in group {
            srm.push(srm_p);
            if std::ptr::eq(v, control) {
                lift.push(None);
                ci_low.push(None);
                ci_high.push(None);
                p_value.push(None);
            } else {
                let c = compare(v.arm, control.arm);
                lift.push(c.lift);
                ci_low.push(Some(c.ci95.0));
                ci_high.push(Some(c.ci95.1));
                p_value.push(Some(c.p_value));
            }
        }
    }
    let text = |f: fn(&Variant) -> &str| variants.iter().map(f).collect::<Vec<&str>>();
    let df = DataFrame::new_infer_height(vec![
        Column::new("app_id".into(), text(|v| &v.app_id)),
        Column::new("experiment".into(), text(|v| &v.experiment)),
        Column::new("variant".into(), text(|v| &v.variant)),
        Column::new(
            "exposures".into(),
            variants
                .iter()
                .map(|v| v.arm.exposures as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "conversions".into(),
            variants
                .iter()
                .map(|v| v.arm.conversions as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "conversion_rate".into(),
            variants.iter().map(|v| v.arm.rate()).collect::<Vec<_>>(),
        ),
        Column::new("lift".into(), lift),
        Column::new("ci95_low".into(), ci_low),
        Column::new("ci95_high".into(), ci_high),
        Column::new("p_value".into(), p_value),
        Column::new("srm_p_value".into(), srm),
    ])?;
    Ok(df)
}
