//! Two-sample tests and clusters over embeddings: are two sets of texts from one distribution, and
//! which groups does one have that the other lacks.
//!
//! The test is the energy distance of Székely and Rizzo (2004, "Testing for equal distributions in
//! high dimension"), `E = 2 E|X - Y| - E|X - X'| - E|Y - Y'|`, on Euclidean distances between
//! (unit-length) embeddings, with a permutation p-value: the share of random relabellings of the
//! pooled sample whose statistic is at least the observed one, counted as `(1 + k) / (1 + B)` so that
//! it is never 0 and the test keeps its level exactly. Every random choice comes from a fixed seed.

use rayon::prelude::*;

use crate::stats::Rng;

/// The most points of each sample the test reads; a larger sample is thinned to this many, evenly
/// spaced, so that the pooled distance matrix stays within memory (2,000 points: 32 MB).
pub const MAX_PER_SAMPLE: usize = 1000;

/// The result of a two-sample test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TwoSample {
    /// The energy distance between the samples.
    pub statistic: f64,
    /// The permutation p-value.
    pub p_value: f64,
    /// Random relabellings drawn.
    pub permutations: usize,
    /// Points of the first sample read.
    pub n_a: usize,
    /// Points of the second sample read.
    pub n_b: usize,
}

/// `v` scaled to unit length (a zero vector stays zero).
pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

fn thinned<'a>(xs: &'a [Vec<f32>]) -> Vec<&'a [f32]> {
    if xs.len() <= MAX_PER_SAMPLE {
        return xs.iter().map(Vec::as_slice).collect();
    }
    (0..MAX_PER_SAMPLE).map(|i| xs[i * xs.len() / MAX_PER_SAMPLE].as_slice()).collect()
}

fn euclidean(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt()
}

/// The energy distance of the split where `in_a[i]` says which sample point `i` is in, from the
/// pooled distance matrix `d` (row-major, `n` x `n`) and the sum of all its entries.
fn energy(d: &[f64], n: usize, in_a: &[bool], total: f64) -> f64 {
    let na = in_a.iter().filter(|&&x| x).count() as f64;
    let nb = n as f64 - na;
    let (mut aa, mut bb) = (0.0, 0.0);
    for i in 0..n {
        let row = &d[i * n..(i + 1) * n];
        let mut s = 0.0;
        for j in 0..n {
            if in_a[j] == in_a[i] {
                s += row[j];
            }
        }
        if in_a[i] {
            aa += s;
        } else {
            bb += s;
        }
    }
    let ab = (total - aa - bb) / 2.0;
    2.0 * ab / (na * nb) - aa / (na * na) - bb / (nb * nb)
}

/// Energy-distance permutation test of samples `a` and `b` (each at least two points, all of one
/// dimension; `None` otherwise).
pub fn energy_test(a: &[Vec<f32>], b: &[Vec<f32>], permutations: usize, seed: u64) -> Option<TwoSample> {
    let (a, b) = (thinned(a), thinned(b));
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let dim = a[0].len();
    if a.iter().chain(&b).any(|x| x.len() != dim) {
        return None;
    }
    let pooled: Vec<&[f32]> = a.iter().chain(&b).copied().collect();
    let n = pooled.len();
    let mut d = vec![0.0f64; n * n];
    d.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for (j, v) in row.iter_mut().enumerate() {
            if j != i {
                *v = euclidean(pooled[i], pooled[j]);
            }
        }
    });
    let total: f64 = d.iter().sum();
    let labels: Vec<bool> = (0..n).map(|i| i < a.len()).collect();
    let observed = energy(&d, n, &labels, total);
    // Each permutation draws from a generator of its own (the seed and its number), so that they run
    // in parallel and the p-value is the same on any number of threads.
    let at_least = (0..permutations)
        .into_par_iter()
        .filter(|&k| {
            let mut rng = Rng::new(seed ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut labels = labels.clone();
            // Fisher-Yates over the labels: a uniformly random split of the same sizes.
            for i in (1..n).rev() {
                let j = rng.below(i + 1);
                labels.swap(i, j);
            }
            energy(&d, n, &labels, total) >= observed - 1e-12
        })
        .count();
    Some(TwoSample { statistic: observed, p_value: (1 + at_least) as f64 / (1 + permutations) as f64, permutations, n_a: a.len(), n_b: b.len() })
}

/// Holm's step-down adjustment of p-values (Holm 1979): each adjusted p-value, in the input's
/// order; rejecting where it is below the level keeps the family-wise error rate at that level.
pub fn holm(ps: &[f64]) -> Vec<f64> {
    let m = ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| ps[i].total_cmp(&ps[j]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * ps[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Pearson's chi-square test of whether two samples share one distribution over categories:
/// `counts_a[k]` and `counts_b[k]` the two samples' counts of category `k`. Returns the p-value
/// (`None` with fewer than two categories seen or an empty sample).
pub fn chi_square_homogeneity(counts_a: &[usize], counts_b: &[usize]) -> Option<f64> {
    let (na, nb) = (counts_a.iter().sum::<usize>() as f64, counts_b.iter().sum::<usize>() as f64);
    let cats: Vec<usize> = (0..counts_a.len()).filter(|&k| counts_a[k] + counts_b[k] > 0).collect();
    if na == 0.0 || nb == 0.0 || cats.len() < 2 {
        return None;
    }
    let n = na + nb;
    let mut chi = 0.0;
    for &k in &cats {
        let col = (counts_a[k] + counts_b[k]) as f64;
        for (obs, rows) in [(counts_a[k] as f64, na), (counts_b[k] as f64, nb)] {
            let e = rows * col / n;
            chi += (obs - e).powi(2) / e;
        }
    }
    Some(chi_square_sf(chi, (cats.len() - 1) as f64))
}

/// Upper tail of the chi-square distribution with `k` degrees of freedom at `x`.
pub fn chi_square_sf(x: f64, k: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    1.0 - lower_gamma_regularized(k / 2.0, x / 2.0)
}

/// The regularised lower incomplete gamma function P(s, x) (series, or a continued fraction for
/// large x: Numerical Recipes' gammp).
fn lower_gamma_regularized(s: f64, x: f64) -> f64 {
    let ln_gamma_s = ln_gamma(s);
    if x < s + 1.0 {
        let (mut sum, mut term, mut a) = (1.0 / s, 1.0 / s, s);
        for _ in 0..500 {
            a += 1.0;
            term *= x / a;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum.ln() - x + s * x.ln() - ln_gamma_s).exp()
    } else {
        // Lentz's continued fraction for Q(s, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - s;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - s);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        1.0 - (-x + s * x.ln() - ln_gamma_s).exp() * h
    }
}

/// ln Γ(x) by Lanczos' approximation (g = 7, nine terms).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// k-means clusters of unit-length vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    /// Each cluster's centre.
    pub centroids: Vec<Vec<f32>>,
    /// Each point's cluster.
    pub assignment: Vec<usize>,
}

/// The index of the centre nearest `x`, and its squared distance.
pub fn nearest(centroids: &[Vec<f32>], x: &[f32]) -> (usize, f64) {
    centroids
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.iter().zip(x).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>()))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f64::INFINITY))
}

/// Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii 2007), deterministic for a
/// seed: at most `k` clusters (fewer where there are fewer distinct points), 50 rounds at most.
pub fn kmeans(points: &[Vec<f32>], k: usize, seed: u64) -> Clusters {
    let n = points.len();
    if n == 0 || k == 0 {
        return Clusters { centroids: vec![], assignment: vec![0; n] };
    }
    let mut rng = Rng::new(seed);
    let mut centroids: Vec<Vec<f32>> = vec![points[rng.below(n)].clone()];
    let mut d2: Vec<f64> = points.iter().map(|p| nearest(&centroids, p).1).collect();
    while centroids.len() < k.min(n) {
        let total: f64 = d2.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut r = rng.next_f32() as f64 * total;
        let mut pick = n - 1;
        for (i, &w) in d2.iter().enumerate() {
            if r < w {
                pick = i;
                break;
            }
            r -= w;
        }
        centroids.push(points[pick].clone());
        for (i, p) in points.iter().enumerate() {
            d2[i] = d2[i].min(nearest(&centroids[centroids.len() - 1..], p).1);
        }
    }
    let mut assignment: Vec<usize> = points.iter().map(|p| nearest(&centroids, p).0).collect();
    for _ in 0..50 {
        let dim = points[0].len();
        let mut sums = vec![vec![0.0f64; dim]; centroids.len()];
        let mut counts = vec![0usize; centroids.len()];
        for (p, &c) in points.iter().zip(&assignment) {
            counts[c] += 1;
            for (s, v) in sums[c].iter_mut().zip(p) {
                *s += *v as f64;
            }
        }
        for (c, (s, &m)) in sums.iter().zip(&counts).enumerate() {
            if m > 0 {
                centroids[c] = s.iter().map(|v| (v / m as f64) as f32).collect();
            }
        }
        let next: Vec<usize> = points.iter().map(|p| nearest(&centroids, p).0).collect();
        if next == assignment {
            break;
        }
        assignment = next;
    }
    Clusters { centroids, assignment }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points of a standard normal in `dim` dimensions, shifted by `shift` on the first axis
    /// (Box-Muller over candor's generator).
    fn normal(n: usize, dim: usize, shift: f32, rng: &mut Rng) -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|d| {
                        let (u1, u2) = (rng.next_f32().max(1e-7), rng.next_f32());
                        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos();
                        z + if d == 0 { shift } else { 0.0 }
                    })
                    .collect()
            })
            .collect()
    }

    /// Two samples of one distribution: over 200 seeds the test rejects at 5% no more often than 5%
    /// allows (the Wilson interval of the rejection rate reaches down to 0.05 or below), and its
    /// p-values are spread over (0, 1], not piled up near 0.
    #[test]
    fn the_test_keeps_its_level_on_one_distribution() {
        let mut rng = Rng::new(11);
        let mut rejections = 0;
        let mut p_sum = 0.0;
        let runs = 200;
        for seed in 0..runs {
            let x = normal(30, 8, 0.0, &mut rng);
            let y = normal(30, 8, 0.0, &mut rng);
            let t = energy_test(&x, &y, 99, seed).unwrap();
            p_sum += t.p_value;
            if t.p_value <= 0.05 {
                rejections += 1;
            }
        }
        let (lo, _) = crate::stats::wilson(rejections, runs as usize, 1.96);
        assert!(lo <= 0.05, "rejected {rejections} of {runs} at 5%");
        let mean_p = p_sum / runs as f64;
        assert!((0.4..0.6).contains(&mean_p), "mean p-value {mean_p} (uniform: 0.5)");
    }

    /// A shift of half a standard deviation on one axis of eight, 60 points a side: found nearly
    /// every time (power above 0.9 over 50 seeds).
    #[test]
    fn the_test_finds_a_known_shift() {
        let mut rng = Rng::new(5);
        let runs = 50;
        let found = (0..runs)
            .filter(|&seed| {
                let x = normal(60, 8, 0.0, &mut rng);
                let y = normal(60, 8, 1.0, &mut rng);
                energy_test(&x, &y, 99, seed).unwrap().p_value <= 0.05
            })
            .count();
        assert!(found as f64 / runs as f64 >= 0.9, "found {found} of {runs}");
    }

    #[test]
    fn the_test_is_deterministic_and_refuses_what_it_cannot_test() {
        let mut rng = Rng::new(3);
        let x = normal(20, 4, 0.0, &mut rng);
        let y = normal(20, 4, 0.5, &mut rng);
        assert_eq!(energy_test(&x, &y, 50, 9), energy_test(&x, &y, 50, 9));
        assert!(energy_test(&x[..1], &y, 50, 9).is_none(), "one point");
        assert!(energy_test(&x, &[vec![0.0; 3], vec![1.0; 3]], 50, 9).is_none(), "dimensions differ");
        // The statistic is 0 for identical samples, and grows with the shift.
        let same = energy_test(&x, &x, 10, 1).unwrap();
        assert!(same.statistic.abs() < 1e-9, "{}", same.statistic);
    }

    /// Holm on the example of Holm's method as statsmodels' multipletests computes it.
    #[test]
    fn holm_adjusts_as_statsmodels_does() {
        // multipletests([0.01, 0.04, 0.03, 0.005], method="holm")[1] == [0.03, 0.06, 0.06, 0.02]
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (a, e) in adj.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!((a - e).abs() < 1e-12, "{adj:?}");
        }
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
        assert_eq!(holm(&[0.02, 0.9]), vec![0.04, 0.9]);
    }

    /// chi-square tails against scipy.stats.chi2.sf, and a homogeneity test by hand.
    #[test]
    fn chi_square_matches_known_values() {
        // scipy.stats.chi2.sf(3.84, 1) = 0.05004352124870519, chi2.sf(10, 4) = 0.04042768199451279,
        // chi2.sf(50, 20) = 0.0002214766382487835.
        assert!((chi_square_sf(3.84, 1.0) - 0.05004352124870519).abs() < 1e-9);
        assert!((chi_square_sf(10.0, 4.0) - 0.04042768199451279).abs() < 1e-9);
        assert!((chi_square_sf(50.0, 20.0) - 0.0002214766382487835).abs() < 1e-10);
        // [[10, 20], [20, 10]]: chi2 = 6.667 (no continuity correction), p = 0.009823.
        let p = chi_square_homogeneity(&[10, 20], &[20, 10]).unwrap();
        assert!((p - 0.009823).abs() < 1e-5, "{p}");
        assert!(chi_square_homogeneity(&[5, 0], &[7, 0]).is_none(), "one category");
    }

    #[test]
    fn kmeans_finds_separated_groups() {
        let mut rng = Rng::new(2);
        let mut pts = normal(40, 3, 0.0, &mut rng);
        pts.extend(normal(40, 3, 20.0, &mut rng));
        let c = kmeans(&pts, 2, 7);
        assert_eq!(c.centroids.len(), 2);
        let first = c.assignment[0];
        assert!(c.assignment[..40].iter().all(|&a| a == first) && c.assignment[40..].iter().all(|&a| a != first));
        assert_eq!(c, kmeans(&pts, 2, 7), "deterministic");
        // Fewer distinct points than k: as many clusters as points.
        assert_eq!(kmeans(&[vec![1.0], vec![1.0]], 5, 1).centroids.len(), 1);
    }
}
