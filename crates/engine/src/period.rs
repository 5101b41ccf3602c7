//! Validity periods (`10y`, `2y`, `6m`, `7d`, `12h`) and time conversions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime};
use x509_cert::time::Time;

use crate::error::{codes, EngineError, EngineResult};

/// A validity period as operators write it. In `lockbox.toml` it reads
/// either as text (`period = "1w"`) or as a table (`[x.period] Weeks = 1`,
/// the form Lockbox writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PeriodRepr")]
pub enum Period {
    /// Calendar years.
    Years(u32),
    /// Calendar months.
    Months(u32),
    /// Weeks.
    Weeks(u32),
    /// Days.
    Days(u32),
    /// Hours.
    Hours(u32),
}

/// The table form of [`Period`], as serialised.
#[derive(serde::Deserialize)]
enum PeriodTable {
    Years(u32),
    Months(u32),
    Weeks(u32),
    Days(u32),
    Hours(u32),
}

/// What a configuration file may hold for a [`Period`].
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PeriodRepr {
    Text(String),
    Table(PeriodTable),
}

impl TryFrom<PeriodRepr> for Period {
    type Error = String;
    fn try_from(r: PeriodRepr) -> Result<Self, String> {
        let p = match r {
            PeriodRepr::Text(t) => return Period::parse(&t).map_err(|e| e.to_string()),
            PeriodRepr::Table(PeriodTable::Years(n)) => Period::Years(n),
            PeriodRepr::Table(PeriodTable::Months(n)) => Period::Months(n),
            PeriodRepr::Table(PeriodTable::Weeks(n)) => Period::Weeks(n),
            PeriodRepr::Table(PeriodTable::Days(n)) => Period::Days(n),
            PeriodRepr::Table(PeriodTable::Hours(n)) => Period::Hours(n),
        };
        // The same bounds as text.
        Period::parse(&p.to_string()).map_err(|e| e.to_string())
    }
}

impl Period {
    /// Parses `10y`, `6m`, `2w`, `7d`, `12h` (a bare number means days).
    pub fn parse(s: &str) -> EngineResult<Period> {
        let s = s.trim().to_ascii_lowercase();
        let bad = || {
            EngineError::bad_input(
                codes::E_INVALIDARG,
                format!("invalid period '{s}' (use e.g. 10y, 6m, 2w, 7d, 12h)"),
            )
        };
        let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => (&s[..i], s[i..].trim()),
            None => (s.as_str(), "d"),
        };
        let n: u32 = num.parse().map_err(|_| bad())?;
        if n == 0 || n > 100_000 {
            return Err(bad());
        }
        Ok(match unit {
            "y" | "year" | "years" => Period::Years(n),
            "m" | "mo" | "month" | "months" => Period::Months(n),
            "w" | "week" | "weeks" => Period::Weeks(n),
            "d" | "day" | "days" => Period::Days(n),
            "h" | "hour" | "hours" => Period::Hours(n),
            _ => return Err(bad()),
        })
    }

    /// `start + self`, in unix seconds, following the calendar for years and months.
    pub fn add_to(&self, start: i64) -> EngineResult<i64> {
        let t = OffsetDateTime::from_unix_timestamp(start)
            .map_err(|e| EngineError::Config(format!("time out of range: {e}")))?;
        let months = match self {
            Period::Years(y) => *y as i64 * 12,
            Period::Months(m) => *m as i64,
            Period::Weeks(w) => return Ok(start + *w as i64 * 7 * 86_400),
            Period::Days(d) => return Ok(start + *d as i64 * 86_400),
            Period::Hours(h) => return Ok(start + *h as i64 * 3_600),
        };
        let total = t.year() as i64 * 12 + (t.month() as i64 - 1) + months;
        let year = (total / 12) as i32;
        let month = Month::try_from((total % 12 + 1) as u8)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let mut day = t.day();
        let date = loop {
            match Date::from_calendar_date(year, month, day) {
                Ok(d) => break d,
                Err(_) if day > 28 => day -= 1,
                Err(e) => return Err(EngineError::Config(format!("time out of range: {e}"))),
            }
        };
        Ok(t.replace_date(date).unix_timestamp())
    }

    /// Approximate length in seconds (for comparisons only).
    pub fn approx_seconds(&self) -> i64 {
        match self {
            Period::Years(y) => *y as i64 * 365 * 86_400,
            Period::Months(m) => *m as i64 * 30 * 86_400,
            Period::Weeks(w) => *w as i64 * 7 * 86_400,
            Period::Days(d) => *d as i64 * 86_400,
            Period::Hours(h) => *h as i64 * 3_600,
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Period::Years(n) => write!(f, "{n}y"),
            Period::Months(n) => write!(f, "{n}m"),
            Period::Weeks(n) => write!(f, "{n}w"),
            Period::Days(n) => write!(f, "{n}d"),
            Period::Hours(n) => write!(f, "{n}h"),
        }
    }
}

/// Current unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Converts unix seconds to an X.509 `Time` (UTCTime before 2050, GeneralizedTime after).
pub fn x509_time(unix: i64) -> EngineResult<Time> {
    let secs = u64::try_from(unix).map_err(|_| EngineError::Config("time before 1970".into()))?;
    let dt = der::DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| EngineError::Config(format!("time out of range: {e}")))?;
    Ok(Time::from(dt))
}

/// Converts an X.509 `Time` to unix seconds.
pub fn unix_of(t: &Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

/// Formats unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Parses a date or date-time (`2026-01-01`, `2026-01-01T10:00:00Z`, `2026-01-01 10:00`) to unix seconds (UTC).
pub fn parse_datetime(s: &str) -> EngineResult<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt_dt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &fmt_dt) {
        return Ok(t.assume_utc().unix_timestamp());
    }
    let fmt_d = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(s, &fmt_d) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    Err(EngineError::bad_input(
        codes::E_INVALIDARG,
        format!("invalid date '{s}' (use YYYY-MM-DD or RFC 3339)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(Period::parse("10y").unwrap(), Period::Years(10));
        assert_eq!(Period::parse("7").unwrap(), Period::Days(7));
        assert!(Period::parse("0d").is_err());
        assert!(Period::parse("ten").is_err());
        // 2024-02-29 + 1y clamps to 2025-02-28
        let leap = parse_datetime("2024-02-29").unwrap();
        assert_eq!(
            rfc3339(Period::Years(1).add_to(leap).unwrap()),
            "2025-02-28T00:00:00Z"
        );
        let t = parse_datetime("2026-01-31").unwrap();
        assert_eq!(
            rfc3339(Period::Months(1).add_to(t).unwrap()),
            "2026-02-28T00:00:00Z"
        );
    }

    #[test]
    fn x509_times() {
        let t = x509_time(parse_datetime("2049-12-31").unwrap()).unwrap();
        assert!(matches!(t, Time::UtcTime(_)));
        let t = x509_time(parse_datetime("2050-01-01").unwrap()).unwrap();
        assert!(matches!(t, Time::GeneralTime(_)));
        assert_eq!(unix_of(&t), parse_datetime("2050-01-01").unwrap());
    }
}
