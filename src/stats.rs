//! Small-sample statistics for replications: the mean and the 95% confidence-interval
//! half-width of a sample, by Student's t (a table of quantiles, no special functions, so
//! the numbers are the same bits on every platform).

use serde::Serialize;

/// Two-sided 95% quantiles of Student's t, `t(0.975, df)` for df = 1..=30.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// `t(0.975, df)`. Between table rows the quantile of the next smaller tabulated df is used:
/// it is the larger one, so the interval errs on the wide (honest) side.
pub fn t975(df: u64) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T975[df as usize - 1],
        31..=39 => T975[29],
        40..=59 => 2.021,
        60..=119 => 2.000,
        120..=999 => 1.980,
        _ => 1.960,
    }
}

/// The mean of a metric over replications and its 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Arithmetic mean over the replications where the metric is defined.
    pub mean: f64,
    /// Half-width of the 95% confidence interval of the mean (`null` with fewer than two
    /// values): the interval is `mean ± half_width`.
    pub half_width: Option<f64>,
    /// Replications the metric was defined in (a fraction of nothing is left out).
    pub n: u64,
}

impl Estimate {
    /// The estimate from the defined values, summed in the order given (replication order,
    /// so the result does not depend on which thread finished first).
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Estimate {
        let xs: Vec<f64> = values.into_iter().flatten().collect();
        let n = xs.len() as u64;
        if n == 0 {
            return Estimate {
                mean: 0.0,
                half_width: None,
                n,
            };
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        let half_width = (n >= 2).then(|| {
            let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
            let sd = (ss / (n - 1) as f64).sqrt();
            t975(n - 1) * sd / (n as f64).sqrt()
        });
        Estimate {
            mean,
            half_width,
            n,
        }
    }

    /// True when the half-width is within `rel` of the mean. An interval of zero width (every
    /// replication agreed, e.g. no loss at all) is precise whatever the mean.
    pub fn precise(&self, rel: f64) -> bool {
        match self.half_width {
            Some(0.0) => true,
            Some(h) => h <= rel * self.mean.abs(),
            None => self.n == 0,
        }
    }

    /// True when the interval excludes zero: a paired difference that is significant at 5%.
    pub fn excludes_zero(&self) -> bool {
        self.half_width.is_some_and(|h| self.mean.abs() > h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_half_width_of_a_known_sample() {
        let e = Estimate::of([1.0, 2.0, 3.0, 4.0].map(Some));
        assert_eq!(e.mean, 2.5);
        // sd = 1.29099, t(3) = 3.182: 3.182 * 1.29099 / 2
        assert!((e.half_width.unwrap() - 2.054).abs() < 1e-3);
        assert!(!Estimate::of([Some(1.0)]).excludes_zero());
        assert!(Estimate::of([Some(0.0), Some(0.0)]).precise(0.05));
        assert_eq!(Estimate::of([None, Some(2.0)]).n, 1);
    }

    #[test]
    fn t_quantiles_fall_with_df() {
        assert!((1..2000).all(|df| t975(df + 1) <= t975(df)));
    }
}
