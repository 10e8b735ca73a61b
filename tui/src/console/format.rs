//! How the console writes numbers, times and durations.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A time in UTC to the second: `2026-11-23 09:00:00`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time in UTC to the second, and to the microsecond when it has a
/// fraction, for drift, where two times may differ by one microsecond:
/// `2026-11-23 09:00:00`, `2026-11-23 09:00:00.000001`.
pub fn precise_time(at: DateTime<Utc>) -> String {
    if at.timestamp_subsec_micros() == 0 {
        time(at)
    } else {
        at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// A time in UTC to the minute, without the year: `11-23 09:00`.
pub fn short_time(at: DateTime<Utc>) -> String {
    at.format("%m-%d %H:%M").to_string()
}

/// A count with thin groups of three: `1 780 000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A duration as a person reads a query's time: `0.42 ms`, `12.3 ms`, `2.41 s`.
pub fn duration(took: Duration) -> String {
    let ms = took.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// How long ago something happened, as `at` sees it, in its largest whole
/// unit: `0 s`, `45 s`, `12 min`, `3 h`, `9 d`. A time after `at` (another
/// machine's clock running ahead) is `0 s`.
pub fn age(since: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (at - since).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 120 * 60 => format!("{} min", s / 60),
        s if s < 48 * 3600 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A rate per second with about three significant digits: `0`, `0.033`,
/// `4.50`, `12.3`, `1 250`.
pub fn rate(per_second: f64) -> String {
    if per_second <= 0.0 || !per_second.is_finite() {
        "0".to_owned()
    } else if per_second < 1.0 {
        format!("{per_second:.3}")
    } else if per_second < 10.0 {
        format!("{per_second:.2}")
    } else if per_second < 100.0 {
        format!("{per_second:.1}")
    } else {
        count(per_second.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precise_times_show_the_year_and_a_fraction_only_when_there_is_one() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 9, 0, 0).unwrap();
        assert_eq!(precise_time(at), "2026-11-23 09:00:00");
        let later = at + chrono::Duration::microseconds(1);
        assert_eq!(precise_time(later), "2026-11-23 09:00:00.000001");
    }

    #[test]
    fn counts_group_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1 000");
        assert_eq!(count(1_780_000), "1 780 000");
    }

    #[test]
    fn durations_keep_three_significant_digits_or_so() {
        assert_eq!(duration(Duration::from_micros(420)), "0.42 ms");
        assert_eq!(duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(2_410)), "2.41 s");
    }

    #[test]
    fn ages_use_their_largest_whole_unit_and_never_go_negative() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 9, 0, 0).unwrap();
        let ago = |s: i64| age(at - chrono::Duration::seconds(s), at);
        assert_eq!(ago(0), "0 s");
        assert_eq!(ago(119), "119 s");
        assert_eq!(ago(1_020), "17 min");
        assert_eq!(ago(3 * 3600 + 59), "3 h");
        assert_eq!(ago(9 * 86_400), "9 d");
        assert_eq!(ago(-30), "0 s");
    }

    #[test]
    fn rates_keep_about_three_significant_digits() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(2.0 / 60.0), "0.033");
        assert_eq!(rate(4.5), "4.50");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(rate(1_249.6), "1 250");
        assert_eq!(rate(f64::NAN), "0");
    }
}
