//! The statistics of the experiments report: a pooled two-proportion z-test, a Wald interval
//! for the difference of two rates, a chi-square test for sample-ratio mismatch, Holm's and
//! Benjamini–Hochberg's adjustments across variants, an always-valid (sequential) p-value and
//! confidence sequence, a Bayesian view (chance to beat the control, expected loss), and CUPED.

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

/// The indices of `p`, smallest value first.
fn ascending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    order
}

/// Holm's step-down adjustment of `p` (one family): controls the family-wise error rate.
/// The adjusted values keep the order of `p`.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let (m, order) = (p.len(), ascending(p));
    let mut out = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Benjamini–Hochberg's step-up adjustment of `p` (q-values): controls the false discovery
/// rate. The adjusted values keep the order of `p`.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let (m, order) = (p.len(), ascending(p));
    let mut out = vec![0.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        out[i] = running;
    }
    out
}

/// The α a sequential design is tuned for.
pub const SEQUENTIAL_ALPHA: f64 = 0.05;

/// A sequential (always-valid) comparison: it may be read after every new exposure, every day,
/// without raising the false-positive rate above its level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sequential {
    /// The always-valid p-value: the smallest α whose confidence sequence excludes 0.
    pub p_value: f64,
    /// The 95% confidence sequence of `rate − control rate`.
    pub cs95: (f64, f64),
}

/// The Gaussian-mixture confidence sequence of Howard, Ramdas, McAuliffe and Sekhon
/// ("Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021, eq. 14; the
/// GAVI sequences GrowthBook uses), for the difference of two rates: with `N` users in both
/// arms and `σ²/N` the estimator's variance, the half-width at level α is
/// `σ · sqrt(2 (Nρ² + 1) / (N²ρ²) · ln(sqrt(Nρ² + 1) / α))`, where the mixture `ρ` is tuned
/// so that the sequence is tightest at `planned_users` (both arms).
pub fn sequential(variant: Arm, control: Arm, planned_users: f64) -> Sequential {
    let (p, pc) = (variant.rate(), control.rate());
    let n_total = (variant.exposures + control.exposures) as f64;
    let diff = p - pc;
    let var = p * (1.0 - p) / variant.exposures as f64 + pc * (1.0 - pc) / control.exposures as f64;
    let sigma2 = var * n_total;
    let l = -2.0 * SEQUENTIAL_ALPHA.ln();
    let rho2 = (l + (l + 1.0).ln()) / planned_users.max(1.0);
    let spread = n_total * rho2 + 1.0;
    let half = |alpha: f64| {
        (sigma2 * 2.0 * spread / (n_total * n_total * rho2) * (spread.sqrt() / alpha).ln()).sqrt()
    };
    let p_value = if sigma2 > 0.0 {
        (spread.sqrt() * (-diff * diff * n_total * n_total * rho2 / (2.0 * sigma2 * spread)).exp())
            .min(1.0)
    } else if diff == 0.0 {
        1.0
    } else {
        0.0
    };
    let h = half(0.05);
    Sequential {
        p_value,
        cs95: (diff - h, diff + h),
    }
}

/// The Bayesian view of a variant against the control: Beta(1, 1) priors on both rates,
/// their posteriors approximated by normals (as GrowthBook does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bayes {
    /// The posterior probability that the variant's rate is above the control's.
    pub chance_to_beat: f64,
    /// The expected loss of choosing the variant: `E[max(control rate − rate, 0)]`, in rate.
    pub expected_loss: f64,
}

/// The standard normal CDF.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// The Bayesian view of `variant` against `control`.
pub fn bayes(variant: Arm, control: Arm) -> Bayes {
    let posterior = |a: Arm| {
        let (alpha, beta) = (
            1.0 + a.conversions as f64,
            1.0 + (a.exposures - a.conversions) as f64,
        );
        let total = alpha + beta;
        (
            alpha / total,
            alpha * beta / (total * total * (total + 1.0)),
        )
    };
    let ((mv, vv), (mc, vc)) = (posterior(variant), posterior(control));
    let (mu, sd) = (mv - mc, (vv + vc).sqrt());
    let z = mu / sd;
    let density = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    Bayes {
        chance_to_beat: normal_cdf(z),
        expected_loss: sd * density - mu * normal_cdf(-z),
    }
}

/// A CUPED comparison: the metric less `θ` times each user's pre-exposure covariate, `θ`
/// pooled over both arms (Deng, Xu, Kohavi and Walker, 2013).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cuped {
    /// The adjusted difference of the means (`rate − control rate` for a conversion).
    pub diff: f64,
    /// Its 95% interval.
    pub ci95: (f64, f64),
    /// Its two-sided p-value.
    pub p_value: f64,
    /// `1 − Var(adjusted) / Var(metric)`, pooled: how much of the variance the covariate
    /// removed.
    pub variance_reduction: f64,
}

/// Mean and (sample) variance.
fn mean_var(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count() as f64;
    let mean = v.clone().sum::<f64>() / n;
    let var = v.map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// CUPED of `variant` against `control`, each a list of `(metric, covariate)` per user.
/// `None` with fewer than two users in an arm, or a covariate without variance.
pub fn cuped(variant: &[(f64, f64)], control: &[(f64, f64)]) -> Option<Cuped> {
    if variant.len() < 2 || control.len() < 2 {
        return None;
    }
    let all = || variant.iter().chain(control);
    let (my, vy) = mean_var(all().map(|r| r.0));
    let (mx, vx) = mean_var(all().map(|r| r.1));
    if vx <= 0.0 {
        return None;
    }
    let n = (variant.len() + control.len()) as f64;
    let cov = all().map(|r| (r.0 - my) * (r.1 - mx)).sum::<f64>() / (n - 1.0);
    let theta = cov / vx;
    let adjusted = |arm: &[(f64, f64)]| mean_var(arm.iter().map(|r| r.0 - theta * (r.1 - mx)));
    let ((mv, vv), (mc, vc)) = (adjusted(variant), adjusted(control));
    let diff = mv - mc;
    let se = (vv / variant.len() as f64 + vc / control.len() as f64).sqrt();
    let (_, v_adj) = mean_var(all().map(|r| r.0 - theta * (r.1 - mx)));
    Some(Cuped {
        diff,
        ci95: (diff - Z95 * se, diff + Z95 * se),
        p_value: if se > 0.0 {
            two_sided_p(diff / se)
        } else {
            1.0
        },
        variance_reduction: if vy > 0.0 { 1.0 - v_adj / vy } else { 0.0 },
    })
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
    fn holm_and_benjamini_hochberg_match_their_definitions() {
        let p = [0.01, 0.04, 0.03, 0.005];
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(
            close(&holm(&p), &[0.03, 0.06, 0.06, 0.02]),
            "{:?}",
            holm(&p)
        );
        assert!(
            close(&benjamini_hochberg(&p), &[0.02, 0.04, 0.04, 0.02]),
            "{:?}",
            benjamini_hochberg(&p)
        );
        assert_eq!(holm(&[0.9, 0.6]), vec![1.0, 1.0]);
        assert_eq!(holm(&[0.02]), vec![0.02]);
    }

    #[test]
    fn the_bayesian_view_matches_beta_posteriors_drawn_by_scipy() {
        // Monte Carlo with 4,000,000 Beta draws per arm (NumPy), for two cases.
        let cases = [
            ((230, 1000), (200, 1000), 0.948_564, 0.000_396_8),
            ((12, 100), (15, 100), 0.271_292, 0.037_452),
        ];
        for ((xv, nv), (xc, nc), chance, loss) in cases {
            let arm = |conversions, exposures| Arm {
                conversions,
                exposures,
            };
            let b = bayes(arm(xv, nv), arm(xc, nc));
            assert!((b.chance_to_beat - chance).abs() < 0.005, "{b:?}");
            assert!((b.expected_loss - loss).abs() < loss * 0.05, "{b:?}");
        }
    }

    #[test]
    fn cuped_matches_numpy() {
        let v = [
            (1., 5.),
            (0., 1.),
            (1., 4.),
            (1., 6.),
            (0., 2.),
            (1., 5.),
            (0., 1.),
            (1., 3.),
        ];
        let c = [
            (0., 1.),
            (0., 2.),
            (1., 5.),
            (0., 1.),
            (1., 4.),
            (0., 2.),
            (0., 0.),
            (1., 3.),
        ];
        let r = cuped(&v, &c).unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(near(r.diff, -0.028_810_408_921_933_095), "{r:?}");
        assert!(near(r.ci95.0, -0.277_113_614_209_181_1), "{r:?}");
        assert!(near(r.ci95.1, 0.219_492_796_365_314_96), "{r:?}");
        assert!(near(r.p_value, 0.820_102_653_123_196_9), "{r:?}");
        assert!(near(r.variance_reduction, 0.774_473_358_116_480_8), "{r:?}");
        assert_eq!(cuped(&v[..1], &c), None);
        assert_eq!(cuped(&[(1., 2.), (0., 2.)], &[(1., 2.), (0., 2.)]), None);
    }

    #[test]
    fn the_sequential_view_is_wider_than_the_fixed_one_and_consistent() {
        let (v, c) = (
            Arm {
                conversions: 230,
                exposures: 1000,
            },
            Arm {
                conversions: 200,
                exposures: 1000,
            },
        );
        let (fixed, seq) = (compare(v, c), sequential(v, c, 10_000.0));
        assert!(seq.p_value >= fixed.p_value, "{seq:?} {fixed:?}");
        assert!(seq.cs95.0 <= fixed.ci95.0 && seq.cs95.1 >= fixed.ci95.1);
        // A p-value under 0.05 exactly when the 95% sequence excludes 0.
        let strong = sequential(
            Arm {
                conversions: 2600,
                exposures: 10_000,
            },
            Arm {
                conversions: 2000,
                exposures: 10_000,
            },
            10_000.0,
        );
        assert!(strong.p_value < 0.05 && strong.cs95.0 > 0.0, "{strong:?}");
        assert!(seq.p_value > 0.05 && seq.cs95.0 < 0.0, "{seq:?}");
    }

    /// A deterministic uniform generator for the simulations (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn read_daily_the_sequential_p_value_keeps_a_and_a_false_positives_under_five_percent() {
        // 1,000 A/A experiments, both arms converting at 20%, 100 new users per arm a day for
        // 28 days, read every day: one "significant" day counts as a false positive.
        let (mut rng, sims, days, daily) = (Rng(0x9e37_79b9_7f4a_7c15), 1_000, 28, 100);
        let (mut sequential_fp, mut naive_fp) = (0, 0);
        for _ in 0..sims {
            let (mut a, mut b) = (
                Arm {
                    conversions: 0,
                    exposures: 0,
                },
                Arm {
                    conversions: 0,
                    exposures: 0,
                },
            );
            let (mut seq_hit, mut naive_hit) = (false, false);
            for _ in 0..days {
                for arm in [&mut a, &mut b] {
                    for _ in 0..daily {
                        arm.exposures += 1;
                        arm.conversions += u64::from(rng.uniform() < 0.2);
                    }
                }
                seq_hit |= sequential(a, b, 10_000.0).p_value <= 0.05;
                naive_hit |= compare(a, b).p_value <= 0.05;
            }
            sequential_fp += u32::from(seq_hit);
            naive_fp += u32::from(naive_hit);
        }
        let rate = |n: u32| f64::from(n) / f64::from(sims);
        eprintln!(
            "A/A read daily: sequential {:.3}, fixed-horizon {:.3} false positives",
            rate(sequential_fp),
            rate(naive_fp)
        );
        assert!(
            rate(sequential_fp) <= 0.05,
            "sequential: {}",
            rate(sequential_fp)
        );
        // The fixed-horizon p-value, read the same way, is fooled far more often: the test can
        // tell the two apart.
        assert!(rate(naive_fp) > 0.10, "fixed-horizon: {}", rate(naive_fp));
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
