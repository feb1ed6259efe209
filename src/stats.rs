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
