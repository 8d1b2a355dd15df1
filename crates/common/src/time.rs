//! Timestamps as OpenStack prints them.
//!
//! Stored times are Unix microseconds (an `i64`, portable between SQLite and
//! PostgreSQL); the APIs render them in ISO 8601 with the formats each
//! service uses.

use chrono::{DateTime, TimeZone, Utc};

/// Now, in Unix microseconds.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn to_datetime(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

/// Keystone token style: `2026-11-25T19:51:11.000000Z`.
pub fn iso_micros(micros: i64) -> String {
    to_datetime(micros)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Nova/Neutron style: `2026-11-25T19:51:11Z`.
pub fn iso_seconds(micros: i64) -> String {
    to_datetime(micros).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an ISO 8601 timestamp as clients send it (`expires_at` of an
/// application credential, for example). Returns Unix microseconds.
pub fn parse_iso(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    // Keystone also accepts a timestamp without a zone, taken as UTC.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive.and_utc().timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let t = 1_790_000_000_123_456;
        assert_eq!(iso_micros(t), "2026-09-21T14:13:20.123456Z");
        assert_eq!(iso_seconds(t), "2026-09-21T14:13:20Z");
        assert_eq!(parse_iso("2026-09-21T14:13:20.123456Z"), Some(t));
        assert_eq!(parse_iso("2026-09-21T14:13:20.123456"), Some(t));
        assert_eq!(parse_iso("yesterday"), None);
    }
}
