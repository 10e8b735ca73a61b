//! One measured figure beside its baseline, and how a run prints them.

use std::time::Duration;

use serde::Serialize;

/// A figure: recents and its baseline, measured on the same data.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Stable across runs and scales (`saves.cold.exact`,
    /// `galera.drain.one_node`): what a reader of the JSON keys on, where
    /// `figure` carries the run's sizes.
    pub id: String,
    /// What was measured.
    pub figure: String,
    /// `ms` (lower is better) or `ops/s` / `rows/s` (higher is better).
    pub unit: &'static str,
    /// The baseline's value, if there is one.
    pub baseline: Option<f64>,
    /// recents' value.
    pub recents: f64,
    /// Above 1 always means recents is better.
    pub ratio: Option<f64>,
}

impl Figure {
    /// A latency figure (lower is better).
    pub fn latency(
        id: impl Into<String>,
        figure: impl Into<String>,
        baseline: Duration,
        recents: Duration,
    ) -> Self {
        let (b, r) = (ms(baseline), ms(recents));
        Figure {
            id: id.into(),
            figure: figure.into(),
            unit: "ms",
            baseline: Some(b),
            recents: r,
            ratio: (r > 0.0).then(|| b / r),
        }
    }

    /// A throughput figure (higher is better).
    pub fn throughput(
        id: impl Into<String>,
        figure: impl Into<String>,
        unit: &'static str,
        baseline: Option<f64>,
        recents: f64,
    ) -> Self {
        Figure {
            id: id.into(),
            figure: figure.into(),
            unit,
            baseline,
            recents,
            ratio: baseline.filter(|b| *b > 0.0).map(|b| recents / b),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The p-th percentile (0..=100) of samples, nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures as a markdown table.
pub fn markdown(figures: &[Figure]) -> String {
    let mut out =
        String::from("| figure | unit | baseline | recents | ratio |\n|---|---|---:|---:|---:|\n");
    for f in figures {
        let baseline = f.baseline.map(number).unwrap_or_else(|| "–".into());
        let ratio = f
            .ratio
            .map(|r| format!("{r:.1}×"))
            .unwrap_or_else(|| "–".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            f.figure,
            f.unit,
            baseline,
            number(f.recents),
            ratio
        ));
    }
    out
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn a_ratio_above_one_means_recents_is_better() {
        let faster = Figure::latency(
            "read",
            "read",
            Duration::from_millis(10),
            Duration::from_millis(1),
        );
        assert_eq!(faster.ratio, Some(10.0));
        let more = Figure::throughput("saves", "saves", "ops/s", Some(100.0), 80.0);
        assert_eq!(more.ratio, Some(0.8));
    }
}
