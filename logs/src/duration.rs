//! Durations as the operators write them, in both binaries' flags alike:
//! `150`, `150s`, `10m`, `24h`, `7d`.

use std::fmt;

/// Why a duration was refused: the text, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    pub text: String,
    pub why: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}': {}", self.text, self.why)
    }
}

impl std::error::Error for DurationError {}

/// The longest duration taken: ten years is plenty and keeps every sum of
/// times far from overflow.
const MAX: u64 = 10 * 366 * 86_400;

/// `150`, `150s`, `10m`, `24h`, `7d` to seconds.
pub fn parse(s: &str) -> Result<u64, DurationError> {
    let bad = |why| DurationError {
        text: s.to_string(),
        why,
    };
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| {
        bad("expected a number with an optional unit s, m, h or d, e.g. 150s or 10m")
    })?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad("unit must be s, m, h or d, e.g. 150s or 10m")),
    };
    let secs = n.checked_mul(mult).ok_or_else(|| bad("too long"))?;
    if secs > MAX {
        return Err(bad("longer than ten years"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("150"), Ok(150));
        assert_eq!(parse("150s"), Ok(150));
        assert_eq!(parse("10m"), Ok(600));
        assert_eq!(parse("24h"), Ok(86_400));
        assert_eq!(parse("90d"), Ok(90 * 86_400));
        for bad in [
            "",
            "m",
            "-5",
            "1.5h",
            "10 m",
            "5w",
            "99999999999999999999d",
            "4000d",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.text, bad);
        }
    }
}
