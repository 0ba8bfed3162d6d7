//! The statistics of the experiments report: a pooled two-proportion z-test, a Wald interval
//! for the difference of two rates, and a chi-square test for sample-ratio mismatch.

/// The z of a 95% two-sided interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The two-sided p-value of a standard normal statistic `z`: `P(|Z| ≥ |z|)`.
pub fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Conversions and exposures of one arm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    /// Users who converted.
    pub conversions: u64,
    /// Users exposed.
    pub exposures: u64,
}

impl Arm {
    /// The conversion rate; 0 for an arm without exposures.
    pub fn rate(self) -> f64 {
        if self.exposures == 0 {
            0.0
        } else {
            self.conversions as f64 / self.exposures as f64
        }
    }
}

/// A variant compared with the control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// `(rate − control rate) / control rate`; `None` when the control's rate is 0.
    pub lift: Option<f64>,
    /// The 95% Wald interval of `rate − control rate`.
    pub ci95: (f64, f64),
    /// The pooled two-proportion z-test's two-sided p-value (1 when both arms are all-or-nothing
    /// alike, so that the statistic is 0/0).
    pub p_value: f64,
}

/// Compares `variant` with `control`. Both arms need exposures.
pub fn compare(variant: Arm, control: Arm) -> Comparison {
    let (p, pc) = (variant.rate(), control.rate());
    let (n, nc) = (variant.exposures as f64, control.exposures as f64);
    let diff = p - pc;
    let se = (p * (1.0 - p) / n + pc * (1.0 - pc) / nc).sqrt();
    let pooled = (variant.conversions + control.conversions) as f64 / (n + nc);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n + 1.0 / nc)).sqrt();
    let p_value = if se_pooled > 0.0 {
        two_sided_p(diff / se_pooled)
    } else {
        1.0
    };
    Comparison {
        lift: (pc > 0.0).then(|| diff / pc),
        ci95: (diff - Z95 * se, diff + Z95 * se),
        p_value,
    }
}

/// The p-value of a chi-square goodness-of-fit test of `observed` counts against `weights`
/// (equal allocation when `None`). `None` with fewer than two arms or no observations.
pub fn srm_p_value(observed: &[u64], weights: Option<&[f64]>) -> Option<f64> {
    let total: u64 = observed.iter().sum();
    if observed.len() < 2 || total == 0 {
        return None;
    }
    let equal = vec![1.0; observed.len()];
    let weights = weights.unwrap_or(&equal);
    let weight_sum: f64 = weights.iter().sum();
    let chi2: f64 = observed
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let expected = total as f64 * w / weight_sum;
            (o as f64 - expected).powi(2) / expected
        })
        .sum();
    Some(chi2_sf(chi2, (observed.len() - 1) as f64))
}

/// The survival function of the chi-square distribution with `df` degrees of freedom.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    upper_gamma_q(df / 2.0, x / 2.0)
}

/// The regularized upper incomplete gamma function Q(a, x): a series below `a + 1`, a
/// continued fraction (modified Lentz) above.
fn upper_gamma_q(a: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-16;
    const TINY: f64 = 1e-300;
    let log_prefix = a * x.ln() - x - libm::lgamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * EPS {
                break;
            }
        }
        1.0 - sum * log_prefix.exp()
    } else {
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < EPS {
                break;
            }
        }
        log_prefix.exp() * h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tails_match_known_values() {
        assert!((two_sided_p(1.959_963_984_540_054) - 0.05).abs() < 1e-12);
        assert!((two_sided_p(0.0) - 1.0).abs() < 1e-15);
        assert!((two_sided_p(-2.575_829_303_548_901) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn chi_square_tails_match_closed_forms() {
        // df = 2: exp(−x/2); df = 1: erfc(sqrt(x/2)).
        for x in [0.1, 1.0, 3.5, 12.0, 40.0] {
            assert!(
                (chi2_sf(x, 2.0) - (-x / 2.0_f64).exp()).abs() < 1e-13,
                "{x}"
            );
            let df1 = libm::erfc((x / 2.0_f64).sqrt());
            assert!((chi2_sf(x, 1.0) - df1).abs() < 1e-13, "{x}");
        }
        // df = 3 at its 95th percentile.
        assert!((chi2_sf(7.814_727_903_251_178, 3.0) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn equal_counts_have_no_mismatch() {
        assert_eq!(srm_p_value(&[500, 500], None), Some(1.0));
        assert_eq!(srm_p_value(&[10], None), None);
        let skewed = srm_p_value(&[600, 400], None).unwrap();
        assert!(skewed < 1e-9, "{skewed}");
        let weighted = srm_p_value(&[600, 400], Some(&[0.6, 0.4])).unwrap();
        assert!((weighted - 1.0).abs() < 1e-12);
    }
}
