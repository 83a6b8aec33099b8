//! Byte sizes as Prometheus writes them (`body_size_limit: 10MB`): a whole number with a base-2 unit,
//! as Go's `units.Base2Bytes` parses them (`KB` and `KiB` are both 1024).

/// A byte size that cannot be read; the text as written is in the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    #[error("{0:?} is not a size such as 10MB")]
    NotASize(String),
    #[error("{text:?}: unknown unit {unit:?}")]
    UnknownUnit { text: String, unit: String },
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses `512KB`, `10MB`, `1GiB`, `4096` (bytes).
pub fn parse_base2(text: &str) -> Result<usize, ByteSizeError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| ByteSizeError::NotASize(text.to_string()))?;
    let shift = match unit {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        _ => {
            return Err(ByteSizeError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    n.checked_mul(1usize << shift)
        .ok_or_else(|| ByteSizeError::TooLarge(text.to_string()))
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
        assert_eq!(
            parse_base2("100000000000TB").unwrap_err().to_string(),
            "\"100000000000TB\" is too large"
        );
        assert_eq!(
            parse_base2("10XB").unwrap_err().to_string(),
            "\"10XB\": unknown unit \"XB\""
        );
    }
}
