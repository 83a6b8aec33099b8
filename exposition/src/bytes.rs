//! Byte sizes as Prometheus writes them (`body_size_limit: 10MB`): a whole number with a base-2 unit,
//! as Go's `units.Base2Bytes` parses them (`KB` and `KiB` are both 1024).

/// Parses `512KB`, `10MB`, `1GiB`, `4096` (bytes).
pub fn parse_base2(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 10MB"))?;
    let shift = match unit {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base2_units() {
        assert_eq!(parse_base2("4096"), Ok(4096));
        assert_eq!(parse_base2("512KB"), Ok(512 << 10));
        assert_eq!(parse_base2("10MiB"), Ok(10 << 20));
        assert_eq!(parse_base2("1GB"), Ok(1 << 30));
        assert!(parse_base2("1.5MB").is_err());
        assert!(parse_base2("99999999999999999999TB").is_err());
        assert!(parse_base2("100000000000TB")
            .unwrap_err()
            .contains("too large"));
    }
}
