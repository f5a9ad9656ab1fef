//! Times given on the command line (`restore --at`): the forms a person types, always sent as RFC 3339 UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// The forms [`parse_point_in_time`] accepts, as told to someone who typed another.
pub const ACCEPTED_TIME_FORMS: &str = "RFC 3339 (2026-11-20T13:45:00Z, 2026-11-20T13:45:00+02:00), \
     or 2026-11-20 13:45 / 2026-11-20 13:45:30 (UTC unless an offset follows, as in 2026-11-20 13:45 +02:00)";

/// Date and time with a UTC offset after a space: `2026-11-20 13:45 +02:00`, with or without seconds.
const SPACED_FORMS_WITH_OFFSET: [&str; 2] = ["%Y-%m-%d %H:%M %:z", "%Y-%m-%d %H:%M:%S %:z"];
/// Date and time without an offset, read as UTC: `2026-11-20 13:45`, with or without seconds.
const SPACED_FORMS_IN_UTC: [&str; 2] = ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"];

/// A time given in none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {given:?} as a time; accepted forms: {ACCEPTED_TIME_FORMS}")]
pub struct UnreadableTime {
    /// What was given.
    pub given: String,
}

/// Reads a time in one of the [`ACCEPTED_TIME_FORMS`]; a time without an offset is UTC.
pub fn parse_point_in_time(text: &str) -> Result<DateTime<Utc>, UnreadableTime> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Some(time) = SPACED_FORMS_WITH_OFFSET
        .iter()
        .find_map(|format| DateTime::parse_from_str(text, format).ok())
    {
        return Ok(time.with_timezone(&Utc));
    }
    SPACED_FORMS_IN_UTC
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|time| time.and_utc())
        .ok_or_else(|| UnreadableTime {
            given: text.to_string(),
        })
}

/// The form every time is sent in: RFC 3339 in UTC (`2026-11-20T13:45:00Z`), fractions of a second kept.
pub fn rfc3339_utc(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};
    use proptest::prelude::*;

    /// Any UTC time between the years 1900 and 2200, whole seconds.
    fn any_utc_second() -> impl Strategy<Value = DateTime<Utc>> {
        (-2_208_988_800i64..7_258_118_400)
            .prop_map(|seconds| Utc.timestamp_opt(seconds, 0).unwrap())
    }

    /// Any UTC offset in use (-14:00 to +14:00, to the minute).
    fn any_offset() -> impl Strategy<Value = FixedOffset> {
        (-14 * 60..=14 * 60i32).prop_map(|minutes| FixedOffset::east_opt(minutes * 60).unwrap())
    }

    proptest! {
        #[test]
        fn rfc3339_in_utc_reads_back_to_the_same_time(time in any_utc_second(), nanos in 0u32..1_000_000_000) {
            let time = time + chrono::Duration::nanoseconds(i64::from(nanos));
            prop_assert_eq!(parse_point_in_time(&rfc3339_utc(&time)), Ok(time));
            prop_assert_eq!(parse_point_in_time(&time.to_rfc3339()), Ok(time));
        }

        #[test]
        fn rfc3339_with_an_offset_reads_back_to_the_same_time(time in any_utc_second(), offset in any_offset()) {
            let local = time.with_timezone(&offset).to_rfc3339_opts(SecondsFormat::Secs, false);
            prop_assert_eq!(parse_point_in_time(&local), Ok(time));
        }

        #[test]
        fn spaced_forms_in_utc_read_back_to_the_same_time(time in any_utc_second()) {
            prop_assert_eq!(parse_point_in_time(&time.format("%Y-%m-%d %H:%M:%S").to_string()), Ok(time));
            let minute = time - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&time)));
            prop_assert_eq!(parse_point_in_time(&minute.format("%Y-%m-%d %H:%M").to_string()), Ok(minute));
        }

        #[test]
        fn spaced_forms_with_an_offset_read_back_to_the_same_time(time in any_utc_second(), offset in any_offset()) {
            let local = time.with_timezone(&offset);
            prop_assert_eq!(parse_point_in_time(&local.format("%Y-%m-%d %H:%M:%S %:z").to_string()), Ok(time));
            let minute = time - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&time)));
            let local_minute = minute.with_timezone(&offset).format("%Y-%m-%d %H:%M %:z").to_string();
            prop_assert_eq!(parse_point_in_time(&local_minute), Ok(minute));
        }

        #[test]
        fn sent_times_are_rfc3339_utc(time in any_utc_second()) {
            let sent = rfc3339_utc(&time);
            prop_assert!(sent.ends_with('Z'), "{}", sent);
            prop_assert_eq!(DateTime::parse_from_rfc3339(&sent).unwrap(), time);
        }
    }

    #[test]
    fn the_documented_examples_are_read_as_documented() {
        let expected = Utc.with_ymd_and_hms(2026, 11, 20, 13, 45, 0).unwrap();
        for text in [
            "2026-11-20T13:45:00Z",
            "2026-11-20T15:45:00+02:00",
            "2026-11-20 13:45",
            "2026-11-20 13:45:00",
            "2026-11-20 15:45 +02:00",
            "2026-11-20 15:45:00 +02:00",
        ] {
            assert_eq!(parse_point_in_time(text), Ok(expected), "{text}");
        }
        assert_eq!(rfc3339_utc(&expected), "2026-11-20T13:45:00Z");
    }

    #[test]
    fn other_forms_are_refused_with_the_accepted_ones_listed() {
        for text in [
            "",
            "yesterday",
            "2026-11-20",
            "2026-11-20T13:45",
            "20/11/2026 13:45",
            "2026-11-20 13",
            "2026-13-01 00:00",
            "2026-11-20 25:00",
            "2026-11-20 13:45 CET",
            "1795182300",
        ] {
            let refused = parse_point_in_time(text).unwrap_err().to_string();
            assert!(
                refused.contains(ACCEPTED_TIME_FORMS),
                "{text:?} gave {refused}"
            );
        }
    }
}
