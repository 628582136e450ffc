//! Figures from samples: medians across repetitions, percentiles of
//! round-trip times, and the one result shape every ping-pong variant returns.

use std::time::Duration;

/// The median; for an even count the mean of the middle two.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The `p`-th percentile (0..=100) of nanosecond samples, in microseconds.
pub fn percentile_us(samples: &mut [u64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
}

/// One ping-pong run: `n` round trips of one message each.
#[derive(Clone, Copy, Debug, Default)]
pub struct PingPong {
    pub per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Client CPU (user + system, all threads) per round trip.
    pub cpu_us: f64,
}

impl PingPong {
    pub fn from_samples(mut lat_ns: Vec<u64>, elapsed: Duration, cpu: Duration) -> PingPong {
        let n = lat_ns.len().max(1) as f64;
        PingPong {
            per_sec: n / elapsed.as_secs_f64(),
            p50_us: percentile_us(&mut lat_ns, 50.0),
            p99_us: percentile_us(&mut lat_ns, 99.0),
            cpu_us: cpu.as_secs_f64() * 1e6 / n,
        }
    }

    /// Parses the `RESULT per_sec p50 p99 cpu` line the C programs print.
    pub fn parse(line: &str) -> Option<PingPong> {
        let mut f = line.strip_prefix("RESULT")?.split_whitespace();
        let mut next = || f.next()?.parse::<f64>().ok();
        Some(PingPong { per_sec: next()?, p50_us: next()?, p99_us: next()?, cpu_us: next()? })
    }
}

/// A bulk transfer: messages and bytes per second, and client CPU per message.
#[derive(Clone, Copy, Debug, Default)]
pub struct Transfer {
    pub per_sec: f64,
    pub mb_per_sec: f64,
    pub cpu_us: f64,
}

impl Transfer {
    pub fn new(messages: u64, size: usize, elapsed: Duration, cpu: Duration) -> Transfer {
        let secs = elapsed.as_secs_f64();
        Transfer {
            per_sec: messages as f64 / secs,
            mb_per_sec: messages as f64 * size as f64 / secs / 1e6,
            cpu_us: cpu.as_secs_f64() * 1e6 / messages.max(1) as f64,
        }
    }

    /// Parses the `RESULT per_sec mb_per_sec cpu` line the peer clients print.
    pub fn parse(line: &str) -> Option<Transfer> {
        let mut f = line.strip_prefix("RESULT")?.split_whitespace();
        let mut next = || f.next()?.parse::<f64>().ok();
        Some(Transfer { per_sec: next()?, mb_per_sec: next()?, cpu_us: next()? })
    }
}

/// Samples of the figures of one row, over repetitions.
#[derive(Default)]
pub struct Series {
    pub values: Vec<Vec<f64>>,
}

impl Series {
    pub fn push(&mut self, figures: &[f64]) {
        if self.values.len() < figures.len() {
            self.values.resize(figures.len(), Vec::new());
        }
        for (v, f) in self.values.iter_mut().zip(figures) {
            v.push(*f);
        }
    }

    /// Median of figure `i` across repetitions.
    pub fn median(&self, i: usize) -> f64 {
        self.values.get(i).map_or(f64::NAN, |v| median(v))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Median of the per-repetition ratios `b[i] / a[i]` of figure `i`: pairs
/// measured next to each other, so a slow patch of machine cancels out.
pub fn paired_ratio(a: &Series, b: &Series, i: usize) -> f64 {
    let (Some(x), Some(y)) = (a.values.get(i), b.values.get(i)) else {
        return f64::NAN;
    };
    let ratios: Vec<f64> = x.iter().zip(y).map(|(x, y)| y / x).collect();
    median(&ratios)
}
