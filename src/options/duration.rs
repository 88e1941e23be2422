//! Go-style duration strings (`1h`, `1h30m`, `1.5h`, `300ms`), as upstream's pflag flags take them.

use std::time::Duration;

/// Units Go's `time.ParseDuration` accepts, longest first so `ms` wins over `m`.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("μs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// Parses a non-negative Go duration. `"0"` alone is allowed without a unit, as in Go.
pub fn parse_go_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(format!("{input:?} is not a positive duration"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{input:?} is missing a unit (ns, us, ms, s, m, h)"))?;
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{input:?} is not a duration like 30s, 5m or 1h30m"))?;
        let (unit, factor) = UNITS
            .iter()
            .filter(|(unit, _)| tail.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())
            .ok_or_else(|| format!("{input:?} has an unknown unit (use ns, us, ms, s, m or h)"))?;
        total += value * factor;
        rest = &tail[unit.len()..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{input:?} is too long"))
}

/// Formats a duration the way Go prints `time.Duration` (`1h0m0s`, `5m0s`, `1.5s`, `300ms`).
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    if d < Duration::from_secs(1) {
        let nanos = d.as_nanos();
        return match nanos {
            n if n < 1_000 => format!("{n}ns"),
            n if n < 1_000_000 => format!("{}µs", trim_fraction(n as f64 / 1e3)),
            n => format!("{}ms", trim_fraction(n as f64 / 1e6)),
        };
    }
    let total = d.as_secs();
    let (hours, minutes) = (total / 3600, (total % 3600) / 60);
    let seconds = (total % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let seconds = trim_fraction(seconds);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

fn trim_fraction(value: f64) -> String {
    let text = format!("{value:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_go_parses() {
        let cases = [
            ("0", 0.0),
            ("1h", 3600.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("90s", 90.0),
            ("300ms", 0.3),
            ("2us", 2e-6),
            ("5µs", 5e-6),
            ("10ns", 1e-8),
            ("1m0.5s", 60.5),
            ("+5m", 300.0),
        ];
        for (input, secs) in cases {
            let parsed = parse_go_duration(input).unwrap();
            assert!(
                (parsed.as_secs_f64() - secs).abs() < 1e-12,
                "{input}: {parsed:?}"
            );
        }
    }

    #[test]
    fn rejects_what_go_rejects_and_negatives() {
        for bad in ["", "1", "h", "1x", "1.2.3s", "-1h", "1h-5m", "abc", "1hh"] {
            assert!(
                parse_go_duration(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_secs(5400 + 7), "1h30m7s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_go_duration(d), want);
        }
    }
}
