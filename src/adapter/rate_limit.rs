//! When a usage limit resets, as the agent's screen says it: a time of day
//! ("try again at 4:03 PM", "resets 3pm", "(at 16:03:07)") or a wait
//! ("resets in 42s"), read with the profile's `[rate_limit]` patterns.

use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use regex::Captures;

use crate::adapter::profile::RateLimitSpec;

/// A reset time found on screen, and the line that said it (which names
/// the limit notice: the same line still on screen later is the same
/// notice, not a new limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reset {
    /// The earliest the limit can reset.
    pub(crate) until: Timestamp,
    /// How coarse the stated time is: "4:03 PM" may mean any second of
    /// that minute, so the limit has surely reset only `precision` later.
    pub(crate) precision: SignedDuration,
    pub(crate) line: String,
}

impl RateLimitSpec {
    /// The reset time on `rows` (searched from the bottom), relative to
    /// `now` in the local time zone.
    pub(crate) fn reset(&self, rows: &[String], now: &ZonedDateTime) -> Option<Reset> {
        for row in rows.iter().rev() {
            let at =
                self.resets_at.iter().find_map(|re| re.captures(row)).and_then(|c| at(&c, now));
            let until = at.or_else(|| {
                self.resets_in.iter().find_map(|re| re.captures(row)).and_then(|c| after(&c, now))
            });
            if let Some((until, precision)) = until {
                return Some(Reset { until, precision, line: row.clone() });
            }
        }
        None
    }
}

/// A time of day: the next time the clock shows it, and its precision.
fn at(c: &Captures<'_>, now: &ZonedDateTime) -> Option<(Timestamp, SignedDuration)> {
    let num = |name: &str| c.name(name).and_then(|m| m.as_str().parse::<i8>().ok());
    // "4:03 PM" is a time cut to the minute; "3pm" names an hour on the
    // hour (limits reset on the hour there), so a minute covers both.
    let precision = if c.name("second").is_some() {
        SignedDuration::from_secs(1)
    } else {
        SignedDuration::from_mins(1)
    };
    let mut hour = num("hour")?;
    let minute = num("minute").unwrap_or(0);
    let second = num("second").unwrap_or(0);
    if let Some(ampm) = c.name("ampm").map(|m| m.as_str().to_ascii_lowercase()) {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = match (ampm.starts_with('p'), hour) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
    }
    let time = jiff::civil::Time::new(hour, minute, second, 0).ok()?;
    let today = now.date().to_datetime(time);
    let mut then = today.to_zoned_datetime(now.time_zone().clone()).ok()?;
    if then.timestamp().checked_add(precision).ok()? <= now.timestamp() {
        then = then.checked_add(SignedDuration::from_hours(24)).ok()?;
    }
    Some((then.timestamp(), precision))
}

/// A wait from now (to the second).
fn after(c: &Captures<'_>, now: &ZonedDateTime) -> Option<(Timestamp, SignedDuration)> {
    let num = |name: &str| c.name(name).and_then(|m| m.as_str().parse::<i64>().ok()).unwrap_or(0);
    let secs = num("hours") * 3600 + num("minutes") * 60 + num("secs");
    if secs <= 0 && c.name("secs").is_none() {
        return None;
    }
    let until = now.timestamp().checked_add(SignedDuration::from_secs(secs)).ok()?;
    Some((until, SignedDuration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn spec() -> RateLimitSpec {
        RateLimitSpec {
            resets_at: vec![
                Regex::new(r"at (?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?").unwrap(),
                Regex::new(r"resets (?P<hour>\d{1,2})(?P<ampm>am|pm)").unwrap(),
            ],
            resets_in: vec![Regex::new(r"resets in (?:(?P<minutes>\d+)m )?(?P<secs>\d+)s").unwrap()],
        }
    }

    fn now() -> ZonedDateTime {
        "2026-11-23T15:00:00+00:00[UTC]".parse().unwrap()
    }

    fn rows(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn times_of_day_are_the_next_such_time() {
        let s = spec();
        let r = s.reset(&rows(&["x", "try again at 4:03 PM."]), &now()).unwrap();
        assert_eq!(r.until, ts("2026-11-23T16:03:00Z"));
        assert_eq!(r.line, "try again at 4:03 PM.");
        assert_eq!(r.precision, SignedDuration::from_mins(1));
        let r = s.reset(&rows(&["limit · resets 3pm"]), &now()).unwrap();
        assert_eq!(r.until, ts("2026-11-23T15:00:00Z"), "3pm is still this minute");
        let r = s.reset(&rows(&["limit · resets 2pm"]), &now()).unwrap();
        assert_eq!(r.until, ts("2026-11-24T14:00:00Z"), "2pm has passed: tomorrow's");
        let r = s.reset(&rows(&["resets in 5s (at 15:00:05)"]), &now()).unwrap();
        assert_eq!(r.until, ts("2026-11-23T15:00:05Z"), "the time of day wins over the wait");
        let r = s.reset(&rows(&["at 12:30 AM"]), &now()).unwrap();
        assert_eq!(r.until, ts("2026-11-24T00:30:00Z"));
    }

    #[test]
    fn waits_count_from_now_and_the_last_line_wins() {
        let s = spec();
        let r = s.reset(&rows(&["resets in 2m 5s", "resets in 7s"]), &now()).unwrap();
        assert_eq!(r.until, ts("2026-11-23T15:00:07Z"));
        assert_eq!(s.reset(&rows(&["nothing here"]), &now()), None);
        assert_eq!(s.reset(&rows(&["at 25:00"]), &now()), None, "not a time");
    }
}
