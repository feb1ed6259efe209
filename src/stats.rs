//! Statistics shared by the reports and the quality measurements.

/// Ranks of `xs` (1-based), ties given their average rank.
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation; `None` when either side is constant or the lengths differ or are below 2.
pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() || xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt())
}

/// Spearman rank correlation (Pearson on average ranks).
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    pearson(&ranks(xs), &ranks(ys))
}

/// Wilson score interval for `k` successes in `n` trials at normal quantile `z` (1.96 for 95%).
/// Returns (low, high); (0, 1) when `n` is 0.
pub fn wilson(k: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// ROC-AUC of `scores` against binary `labels` (true = positive), ties counted half
/// (the Mann-Whitney statistic). `None` without both classes.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 || scores.len() != labels.len() {
        return None;
    }
    let r = ranks(scores);
    let rank_sum: f64 = r.iter().zip(labels).filter(|(_, &l)| l).map(|(r, _)| *r).sum();
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// Balanced accuracy of predictions against labels: the mean of the true-positive and true-negative
/// rates. `None` without both classes.
pub fn balanced_accuracy(predicted: &[bool], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 || predicted.len() != labels.len() {
        return None;
    }
    let tp = predicted.iter().zip(labels).filter(|(&p, &l)| p && l).count();
    let tn = predicted.iter().zip(labels).filter(|(&p, &l)| !p && !l).count();
    Some((tp as f64 / pos as f64 + tn as f64 / neg as f64) / 2.0)
}

/// The seedable generator used for resampling (SplitMix64): the same seed gives the same intervals
/// on every machine.
pub use crate::models::arch::layers::SplitMix64 as Rng;

/// Percentile bootstrap interval of the mean of `xs`: `resamples` resamples with replacement,
/// the (alpha/2, 1-alpha/2) quantiles. `None` for an empty sample.
pub fn bootstrap_mean_ci(xs: &[f64], resamples: usize, alpha: f64, seed: u64) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let mut rng = Rng::new(seed);
    let n = xs.len();
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| xs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some((quantile_sorted(&means, alpha / 2.0), quantile_sorted(&means, 1.0 - alpha / 2.0)))
}

/// Paired bootstrap interval of mean(b - a) over paired observations.
pub fn paired_bootstrap_diff_ci(a: &[f64], b: &[f64], resamples: usize, alpha: f64, seed: u64) -> Option<(f64, f64)> {
    if a.len() != b.len() {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    bootstrap_mean_ci(&d, resamples, alpha, seed)
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// McNemar's test on paired pass/fail: `b` cases went pass -> fail, `c` fail -> pass. Two-sided
/// p-value, exact (binomial) up to 50 discordant pairs, else chi-square with continuity correction.
pub fn mcnemar(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    if n <= 50 {
        let k = b.min(c);
        let mut tail = 0.0;
        let mut coef = 1.0f64; // C(n, 0)
        for i in 0..=k {
            if i > 0 {
                coef *= (n - i + 1) as f64 / i as f64;
            }
            tail += coef;
        }
        (2.0 * tail * 0.5f64.powi(n as i32)).min(1.0)
    } else {
        let x = ((b as f64 - c as f64).abs() - 1.0).max(0.0).powi(2) / n as f64;
        erfc((x / 2.0).sqrt())
    }
}

/// The complementary error function (Numerical Recipes' erfcc, relative error below 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * (-z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
        .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 8 of 10 at 95%: (0.4902, 0.9433) (Wilson 1927; e.g. statsmodels proportion_confint).
        let (lo, hi) = wilson(8, 10, 1.959964);
        assert!((lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4, "{lo} {hi}");
        let (lo, hi) = wilson(0, 20, 1.959964);
        assert!(lo == 0.0 && (hi - 0.1611).abs() < 1e-4, "{hi}");
        assert_eq!(wilson(0, 0, 1.96), (0.0, 1.0));
    }

    #[test]
    fn auc_by_hand() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1: pairs won 1 + 1 + 0 + 1 = 3 of 4.
        let auc = roc_auc(&[0.9, 0.4, 0.5, 0.1], &[true, true, false, false]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
        // A tie counts half.
        let auc = roc_auc(&[0.5, 0.5], &[true, false]).unwrap();
        assert!((auc - 0.5).abs() < 1e-12);
        assert!(roc_auc(&[0.1], &[true]).is_none());
    }

    #[test]
    fn mcnemar_known_values() {
        // b = 10, c = 2: exact two-sided p = 2 * (1 + 12 + 66) / 4096 = 0.038574.
        assert!((mcnemar(10, 2) - 158.0 / 4096.0).abs() < 1e-12);
        assert_eq!(mcnemar(0, 0), 1.0);
        assert_eq!(mcnemar(3, 3), 1.0);
        // Large counts: chi2 = (|60 - 30| - 1)^2 / 90 = 9.344, p = 0.002237.
        assert!((mcnemar(60, 30) - 0.002237).abs() < 2e-5, "{}", mcnemar(60, 30));
    }

    #[test]
    fn bootstrap_is_reproducible_and_sane() {
        let xs: Vec<f64> = (0..200).map(|i| (i % 10) as f64).collect();
        let a = bootstrap_mean_ci(&xs, 1000, 0.05, 42).unwrap();
        assert_eq!(a, bootstrap_mean_ci(&xs, 1000, 0.05, 42).unwrap());
        assert_ne!(a, bootstrap_mean_ci(&xs, 1000, 0.05, 43).unwrap());
        // The mean is 4.5 with standard error about 2.87 / sqrt(200) = 0.203.
        assert!(a.0 < 4.5 && 4.5 < a.1 && a.1 - a.0 > 0.6 && a.1 - a.0 < 1.0, "{a:?}");
        let d = paired_bootstrap_diff_ci(&[0.0; 50], &[1.0; 50], 200, 0.05, 1).unwrap();
        assert_eq!(d, (1.0, 1.0));
    }

    #[test]
    fn balanced_accuracy_by_hand() {
        // TPR 2/3, TNR 1/1.
        let b = balanced_accuracy(&[true, true, false, false], &[true, true, true, false]).unwrap();
        assert!((b - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
    }

    #[test]
    fn spearman_known_values() {
        // Monotone but not linear: Spearman 1, Pearson below 1.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [1.0, 4.0, 9.0, 16.0, 100.0];
        assert!((spearman(&x, &y).unwrap() - 1.0).abs() < 1e-12);
        assert!(pearson(&x, &y).unwrap() < 0.95);
        // Hand-computed: d = (0, 1, -1, 0, 0) -> 1 - 6*2/(5*24) = 0.9.
        let y2 = [1.0, 3.0, 2.0, 4.0, 5.0];
        assert!((spearman(&x, &y2).unwrap() - 0.9).abs() < 1e-12);
        assert!((spearman(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(spearman(&x, &[1.0; 5]).is_none());
    }
}
