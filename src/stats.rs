//! Small timing helpers: per-stage durations kept in fixed-size rings, summarised as medians.

use std::time::Duration;

/// The last `CAP` durations of one stage.
#[derive(Debug, Clone)]
pub struct Ring {
    samples: Vec<f32>,
    count: u64,
    total_ms: f64,
}

const CAP: usize = 4096;

impl Default for Ring {
    fn default() -> Self {
        Self { samples: Vec::with_capacity(CAP), count: 0, total_ms: 0.0 }
    }
}

impl Ring {
    pub fn push(&mut self, d: Duration) {
        let ms = d.as_secs_f32() * 1000.0;
        if self.samples.len() < CAP {
            self.samples.push(ms);
        } else {
            self.samples[(self.count % CAP as u64) as usize] = ms;
        }
        self.count += 1;
        self.total_ms += ms as f64;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn total_ms(&self) -> f64 {
        self.total_ms
    }

    /// Median of the kept samples, in milliseconds (0 when empty).
    pub fn median_ms(&self) -> f64 {
        median(&self.samples)
    }
}

pub fn median(values: &[f32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] as f64 } else { (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn the_ring_keeps_the_newest_samples() {
        let mut r = Ring::default();
        for i in 0..(CAP + 10) {
            r.push(Duration::from_millis(if i < 10 { 1000 } else { 1 }));
        }
        assert_eq!(r.count(), (CAP + 10) as u64);
        assert!((r.median_ms() - 1.0).abs() < 0.01);
    }
}
