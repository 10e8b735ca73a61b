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
}
