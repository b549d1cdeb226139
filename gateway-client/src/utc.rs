//! Times in UTC from Unix seconds, without time zone data (the client
//! reads none): the civil date for comparing with `ps`'s START, and the
//! text the client prints.

/// The UTC year, month, day and seconds of the day of Unix seconds (the
/// client has no time zone data).
pub(crate) fn utc_civil(unix: u64) -> (i64, i64, i64, u64) {
    let days = (unix / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, unix % 86_400)
}

/// The START column of procps `ps aux` run with `TZ=UTC0`, for a process
/// started at `started` seen at `now` (Unix seconds): `HH:MM` when it
/// started the same day, `MonDD` the same year, else the year.
pub(crate) fn ps_start(started: u64, now: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, secs) = utc_civil(started);
    let (ny, nm, nd, _) = utc_civil(now);
    if (y, m, d) == (ny, nm, nd) {
        format!("{:02}:{:02}", secs / 3600, secs / 60 % 60)
    } else if y == ny {
        let month = MONTHS[(m - 1).clamp(0, 11) as usize];
        format!("{month}{d:02}")
    } else {
        y.to_string()
    }
}

/// `2026-11-23 21:06:46 UTC` from Unix seconds.
pub(crate) fn utc_string(unix: u64) -> String {
    let (y, m, d, secs) = utc_civil(unix);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_strings() {
        assert_eq!(utc_string(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_string(1_459_860_677), "2016-04-05 12:51:17 UTC");
        assert_eq!(utc_string(1_795_474_006), "2026-11-23 22:46:46 UTC");
        assert_eq!(utc_string(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    /// As procps prints START (checked by hand against `TZ=UTC0 ps aux`).
    #[test]
    fn ps_start_forms() {
        let now = 1_795_474_006; // 2026-11-23 22:46:46
        assert_eq!(ps_start(1_795_468_006, now), "21:06");
        assert_eq!(ps_start(1_795_392_000, now), "00:00");
        assert_eq!(ps_start(1_795_305_600, now), "Nov22");
        assert_eq!(ps_start(1_767_225_600, now), "Jan01");
        assert_eq!(ps_start(1_767_225_599, now), "2025");
        assert_eq!(ps_start(1_459_860_677, now), "2016");
    }
}
