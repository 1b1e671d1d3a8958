//! Durations as the CLI's flags take them: `500ms`, `3s`, `10m` or `2min`, `1h`, `1d`, or a bare `0`.

/// Milliseconds of `v`, None when it is not a duration (or overflows).
pub fn duration_ms(v: &str) -> Option<u64> {
    if v == "0" {
        return Some(0);
    }
    let split = v.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::duration_ms;

    #[test]
    fn units() {
        assert_eq!(duration_ms("2min"), Some(120_000));
        assert_eq!(duration_ms("10m"), Some(600_000));
        assert_eq!(duration_ms("1d"), Some(86_400_000));
        assert_eq!(duration_ms("0"), Some(0));
        for bad in ["3", "", "s", "-1s", "3 s", "99999999999999999999d"] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
    }
}
