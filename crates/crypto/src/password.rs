//! Salted slow hashes for passwords and API-token secrets (Argon2id).

use argon2::{Algorithm, Argon2, Params, Version};

use crate::random::random_bytes;
use crate::CryptoError;

const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon(m: u32, t: u32, p: u32) -> Result<Argon2<'static>, CryptoError> {
    let params =
        Params::new(m, t, p, Some(32)).map_err(|_| CryptoError::Operation("argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a secret as `argon2id$m$t$p$salt_hex$hash_hex`.
pub fn hash_secret(secret: &[u8]) -> Result<String, CryptoError> {
    let salt = random_bytes(16)?;
    let mut out = [0u8; 32];
    argon(M_COST, T_COST, P_COST)?
        .hash_password_into(secret, &salt, &mut out)
        .map_err(|_| CryptoError::Operation("argon2"))?;
    Ok(format!(
        "argon2id${M_COST}${T_COST}${P_COST}${}${}",
        hex::encode(salt),
        hex::encode(out)
    ))
}

/// Checks a secret against a stored hash (constant-time comparison).
pub fn verify_secret(secret: &[u8], stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    if parts.len() != 6 || parts[0] != "argon2id" {
        return false;
    }
    let (Ok(m), Ok(t), Ok(p)) = (
        parts[1].parse::<u32>(),
        parts[2].parse::<u32>(),
        parts[3].parse::<u32>(),
    ) else {
        return false;
    };
    // Refuse absurd costs from a tampered database.
    if m > 1 << 20 || t > 16 || p > 8 {
        return false;
    }
    let (Ok(salt), Ok(expected)) = (hex::decode(parts[4]), hex::decode(parts[5])) else {
        return false;
    };
    if !(16..=64).contains(&expected.len()) {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    let a = match Params::new(m, t, p, Some(out.len())) {
        Ok(params) => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        Err(_) => return false,
    };
    if a.hash_password_into(secret, &salt, &mut out).is_err() {
        return false;
    }
    aws_lc_rs::constant_time::verify_slices_are_equal(&out, &expected).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_differ() {
        let a = super::hash_secret(b"correct horse").unwrap();
        let b = super::hash_secret(b"correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(super::verify_secret(b"correct horse", &a));
        assert!(!super::verify_secret(b"wrong", &a));
        assert!(!super::verify_secret(b"x", "garbage"));
    }
}
