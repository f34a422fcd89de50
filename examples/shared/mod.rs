//! What the measuring examples share: summaries of interleaved runs.

/// The first quartile, the median and the third quartile of `xs` (not empty), each the
/// sample at its rank (no interpolation).
pub fn quartiles(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}
