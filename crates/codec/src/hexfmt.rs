//! Hex helpers for serial numbers, thumbprints and key identifiers.

/// Normalises an operator-typed hex token (`"1b 4a b7"`, `"1B:4A:B7"`, `"1b4ab7"`)
/// to lowercase hex without separators. Returns `None` if anything but hex
/// digits and separators is present or the digit count is odd.
pub fn normalize_hex(token: &str) -> Option<String> {
    let digits: String = token
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-' | '\t'))
        .collect();
    if digits.is_empty()
        || !digits.len().is_multiple_of(2)
        || !digits.chars().all(|c| c.is_ascii_hexdigit())
    {
        return None;
    }
    Some(digits.to_ascii_lowercase())
}

/// Formats bytes as lowercase hex with no separators.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_separators_and_case() {
        assert_eq!(
            normalize_hex("1b 4a b7 1e 00 00 00 00 00 1d").as_deref(),
            Some("1b4ab71e00000000001d")
        );
        assert_eq!(normalize_hex("1B:4A").as_deref(), Some("1b4a"));
        assert_eq!(normalize_hex("xyz"), None);
        assert_eq!(normalize_hex("abc"), None);
        assert_eq!(normalize_hex(""), None);
    }
}
