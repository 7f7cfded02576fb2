//! Five-field cron expressions (`minute hour day-of-month month day-of-week`, UTC): `*`,
//! numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and lists `a,b`. Day of week is 0-7
//! (0 and 7 are Sunday). When both day fields are restricted, either may match (as in cron).

use chrono::{DateTime, Datelike, Timelike, Utc};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    any_day: bool,
    any_weekday: bool,
}

impl Cron {
    /// Parses `expression`; the error says which field is wrong and why.
    pub fn parse(expression: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("must have 5 fields (minute hour day month weekday), got {expression:?}"));
        };
        let mut weekdays = field(weekday, "weekday", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            source: fields.join(" "),
            minutes: field(minute, "minute", 0, 59)?,
            hours: field(hour, "hour", 0, 23)?,
            days: field(day, "day", 1, 31)?,
            months: field(month, "month", 1, 12)?,
            weekdays,
            any_day: day == "*",
            any_weekday: weekday == "*",
        })
    }

    /// Whether the schedule fires in the minute that contains `at`.
    pub fn matches(&self, at: DateTime<Utc>) -> bool {
        let day = bit(self.days, at.day());
        let weekday = bit(self.weekdays, at.weekday().num_days_from_sunday());
        let day_matches = match (self.any_day, self.any_weekday) {
            (false, false) => day || weekday,
            _ => day && weekday,
        };
        bit(self.minutes, at.minute()) && bit(self.hours, at.hour()) && bit(self.months, at.month()) && day_matches
    }

    /// The ticks in `(after, until]`, at whole minutes, oldest first.
    pub fn ticks_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let minute = |t: DateTime<Utc>| t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t);
        let mut at = minute(after) + chrono::Duration::minutes(1);
        let mut ticks = Vec::new();
        while at <= until {
            if self.matches(at) {
                ticks.push(at);
            }
            at += chrono::Duration::minutes(1);
        }
        ticks
    }
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

fn bit(set: u64, value: u32) -> bool {
    set & (1 << value) != 0
}

/// One field as a bit set of the values it allows.
fn field(text: &str, name: &str, min: u32, max: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let invalid = || format!("{name} field {part:?} is not valid (allowed {min}-{max}, *, a-b, */n, lists)");
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok().filter(|s| *s >= 1).ok_or_else(invalid)?),
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            (low.parse().map_err(|_| invalid())?, high.parse().map_err(|_| invalid())?)
        } else {
            let value: u32 = range.parse().map_err(|_| invalid())?;
            (value, if part.contains('/') { max } else { value })
        };
        if low < min || high > max || low > high {
            return Err(invalid());
        }
        set |= (low..=high).step_by(step as usize).fold(0u64, |acc, value| acc | 1u64 << value);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn daily_at_nine_fires_once_a_day() {
        let cron = Cron::parse("0 9 * * *").unwrap();
        assert!(cron.matches(at(2026, 12, 1, 9, 0)));
        assert!(!cron.matches(at(2026, 12, 1, 9, 1)));
        let ticks = cron.ticks_between(at(2026, 12, 1, 0, 0), at(2026, 12, 3, 23, 59));
        assert_eq!(ticks, vec![at(2026, 12, 1, 9, 0), at(2026, 12, 2, 9, 0), at(2026, 12, 3, 9, 0)]);
    }

    #[test]
    fn steps_ranges_and_lists() {
        let cron = Cron::parse("*/15 8-10,20 * * 1-5").unwrap();
        assert!(cron.matches(at(2026, 12, 1, 8, 45)), "a Tuesday");
        assert!(cron.matches(at(2026, 12, 1, 20, 0)));
        assert!(!cron.matches(at(2026, 12, 1, 11, 0)));
        assert!(!cron.matches(at(2026, 12, 6, 8, 0)), "a Sunday");
        assert!(Cron::parse("5/20 * * * *").unwrap().matches(at(2026, 1, 1, 0, 45)));
        assert!(Cron::parse("0 0 * * 7").unwrap().matches(at(2026, 12, 6, 0, 0)), "7 is Sunday");
    }

    #[test]
    fn restricted_day_and_weekday_either_match() {
        let cron = Cron::parse("0 0 1 * 1").unwrap();
        assert!(cron.matches(at(2026, 12, 1, 0, 0)), "the 1st");
        assert!(cron.matches(at(2026, 12, 7, 0, 0)), "a Monday");
        assert!(!cron.matches(at(2026, 12, 8, 0, 0)));
    }

    #[test]
    fn bad_expressions_name_their_field() {
        for (expression, problem) in [
            ("0 9 * *", "5 fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "weekday"),
            ("*/0 * * * *", "minute"),
            ("5-1 * * * *", "minute"),
            ("a * * * *", "minute"),
        ] {
            let err = Cron::parse(expression).unwrap_err();
            assert!(err.contains(problem), "{expression}: {err}");
        }
    }
}
