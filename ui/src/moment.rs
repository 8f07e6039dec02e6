//! Moments picked in the browser: a `datetime-local` field holds a date and a time
//! without an offset (`2026-12-07T09:00`), meant in the user's own time zone; the API
//! takes RFC 3339 in UTC. The offset comes from the browser (the page asks it for that
//! very moment, so summer time is right); the arithmetic is here, tested without one.

/// `value` of a `datetime-local` field, read in a zone `offset_minutes` behind UTC (what
/// JavaScript's `Date.getTimezoneOffset` gives: `-60` for UTC+1), as RFC 3339 UTC:
/// `2026-12-07T08:00:00Z`. Seconds and their fraction are kept when given. `Ok(None)`
/// while the field is empty; an error sentence when it does not hold a date and time.
pub fn utc_from_local(value: &str, offset_minutes: i64) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let wrong = || format!("“{value}” is not a date and time (YYYY-MM-DDTHH:MM).");
    let (date, time) = value.split_once(['T', ' ']).ok_or_else(wrong)?;
    let number = |s: &str, digits: usize| -> Result<i64, String> {
        if s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| wrong())
        } else {
            Err(wrong())
        }
    };
    let mut d = date.split('-');
    let (year, month, day) = match (d.next(), d.next(), d.next(), d.next()) {
        (Some(y), Some(m), Some(day), None) => (number(y, 4)?, number(m, 2)?, number(day, 2)?),
        _ => return Err(wrong()),
    };
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (clock, Some(f)),
        Some(_) => return Err(wrong()),
        None => (time, None),
    };
    let mut t = clock.split(':');
    let (hour, minute, second) = match (t.next(), t.next(), t.next(), t.next()) {
        (Some(h), Some(m), None, None) if fraction.is_none() => (number(h, 2)?, number(m, 2)?, 0),
        (Some(h), Some(m), Some(s), None) => (number(h, 2)?, number(m, 2)?, number(s, 2)?),
        _ => return Err(wrong()),
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(wrong());
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let utc = local + offset_minutes * 60;
    let (days, secs) = (utc.div_euclid(86_400), utc.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
    Ok(Some(format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z", secs / 3600, secs % 3600 / 60, secs % 60)))
}

/// [`utc_from_local`] with the browser's own time zone at that moment.
#[cfg(target_arch = "wasm32")]
pub fn utc_from_browser(value: &str) -> Result<Option<String>, String> {
    // A date and time without an offset is local time to JavaScript's Date.
    let offset = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(value.trim())).get_timezone_offset();
    utc_from_local(value, if offset.is_finite() { offset as i64 } else { 0 })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::utc_from_local;

    fn utc(value: &str, offset: i64) -> String {
        utc_from_local(value, offset).unwrap().unwrap()
    }

    #[test]
    fn an_empty_field_is_no_moment() {
        assert_eq!(utc_from_local("", 0), Ok(None));
        assert_eq!(utc_from_local("  ", -60), Ok(None));
    }

    #[test]
    fn a_local_time_moves_by_the_zone_offset() {
        assert_eq!(utc("2026-12-07T09:00", 0), "2026-12-07T09:00:00Z");
        // UTC+1 (Paris in winter): JavaScript says -60.
        assert_eq!(utc("2026-12-07T09:00", -60), "2026-12-07T08:00:00Z");
        // UTC-5 (New York in winter): 300.
        assert_eq!(utc("2026-12-07T09:00", 300), "2026-12-07T14:00:00Z");
        // UTC+5:45 (Kathmandu).
        assert_eq!(utc("2026-12-07T09:00", -345), "2026-12-07T03:15:00Z");
    }

    #[test]
    fn seconds_and_fractions_are_kept() {
        assert_eq!(utc("2026-12-07T09:00:30", -60), "2026-12-07T08:00:30Z");
        assert_eq!(utc("2026-12-07T09:00:30.125", 0), "2026-12-07T09:00:30.125Z");
    }

    #[test]
    fn the_offset_may_change_the_day_the_month_and_the_year() {
        assert_eq!(utc("2027-01-01T00:30", -60), "2026-12-31T23:30:00Z");
        assert_eq!(utc("2026-12-31T22:00", 180), "2027-01-01T01:00:00Z");
        assert_eq!(utc("2028-03-01T00:10", -20), "2028-02-29T23:50:00Z");
        assert_eq!(utc("2026-03-01T00:10", -20), "2026-02-28T23:50:00Z");
    }

    #[test]
    fn what_is_not_a_date_and_time_is_explained() {
        for bad in
            ["tomorrow", "2026-12-07", "2026-13-01T00:00", "2026-02-29T10:00", "2026-12-07T24:00", "2026-12-07T9:00"]
        {
            let e = utc_from_local(bad, 0).unwrap_err();
            assert!(e.contains("is not a date and time"), "{bad}: {e}");
        }
    }
}
