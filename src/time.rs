//! Wall-clock timestamps for records, and human durations for flags.
//!
//! Records carry RFC 3339 UTC timestamps with millisecond precision
//! (DESIGN §5). Deadlines and stall timers use monotonic `Instant`s instead;
//! wall-clock time is only ever written down, never waited on.

use std::time::Duration;

use jiff::Timestamp;

/// Now, as an RFC 3339 UTC string with milliseconds: `2026-11-23T13:04:45.123Z`.
pub(crate) fn now_rfc3339() -> String {
    format_rfc3339(Timestamp::now())
}

/// Formats a timestamp the way every reins record does.
pub(crate) fn format_rfc3339(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an RFC 3339 timestamp (any offset, any precision).
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Seconds elapsed since `ts` (never negative).
pub(crate) fn seconds_since(ts: &str) -> Option<f64> {
    let then = parse_rfc3339(ts)?;
    let secs = Timestamp::now().duration_since(then).as_secs_f64();
    Some(secs.max(0.0))
}

/// The longest duration any flag, config or chain file may give: 30 days.
/// Every deadline is `now + duration`, which must not overflow, and
/// nothing reins waits for is meant to take longer.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a duration flag: `30`, `1.5`, `250ms`, `30s`, `5m`, `2h`, at
/// most [`MAX_DURATION`]. A bare number means seconds. Every duration
/// reins reads from a person goes through here.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    // A bare number, exponents too (`1e3`); else a number and a unit.
    let (number, unit) = match s.parse::<f64>() {
        Ok(_) => (s, "s"),
        Err(_) => match s.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, "s"),
        },
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 30, 30s, 250ms, 5m or 2h"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!("unknown duration unit {unit:?} in {s:?}; use ms, s, m or h"));
        }
    };
    let secs = value * scale;
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("{s:?} is not a duration of zero or more"));
    }
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "{s:?} is longer than the longest duration reins takes, 720h (30 days)"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration"))
}

/// Seconds read back from a record (a chain's state file) as a duration,
/// held to 0..=[`MAX_DURATION`]: an edited or damaged file must not make a
/// deadline overflow.
pub(crate) fn bounded_secs(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(MAX_DURATION, |d| d.min(MAX_DURATION))
}

/// A compact age for tables: `42s`, `7m`, `3h`, `2d`.
pub(crate) fn compact(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A duration as a person would say it: `500ms`, `1.5s`, `8m`, `1m 30s`,
/// `2h 5m`.
pub(crate) fn human(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0).round() as u64);
    }
    if secs < 60.0 {
        let tenths = (secs * 10.0).round() / 10.0;
        return if tenths.fract() == 0.0 {
            format!("{tenths:.0}s")
        } else {
            format!("{tenths:.1}s")
        };
    }
    let s = secs.round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let cases = [
            (0.5, "500ms"),
            (1.0, "1s"),
            (1.5, "1.5s"),
            (59.96, "60s"),
            (480.0, "8m"),
            (90.0, "1m 30s"),
            (7500.0, "2h 5m"),
            (7200.0, "2h"),
        ];
        for (secs, want) in cases {
            assert_eq!(human(secs), want, "{secs}");
        }
    }

    #[test]
    fn timestamps_have_milliseconds_and_round_trip() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-11-23T13:04:45.123Z".len(), "{now}");
        assert!(parse_rfc3339(&now).is_some());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("nan").is_err());
    }

    #[test]
    fn seconds_from_records_are_held_in_bounds() {
        assert_eq!(bounded_secs(1.5), Duration::from_millis(1500));
        assert_eq!(bounded_secs(-3.0), Duration::ZERO);
        assert_eq!(bounded_secs(f64::NAN), Duration::ZERO);
        assert_eq!(bounded_secs(1e300), MAX_DURATION);
        assert_eq!(bounded_secs(f64::INFINITY), MAX_DURATION);
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_duration("720h").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("1e3").unwrap(), Duration::from_secs(1000));
        for long in ["720.001h", "3000000000000000h", "1e300", "inf", "2592001"] {
            let err = parse_duration(long).unwrap_err();
            assert!(err.contains("longest duration reins takes, 720h (30 days)"), "{long}: {err}");
        }
    }

    #[test]
    fn compact_ages() {
        assert_eq!(compact(5.0), "5s");
        assert_eq!(compact(125.0), "2m");
        assert_eq!(compact(7200.0), "2h");
        assert_eq!(compact(200_000.0), "2d");
    }
}
