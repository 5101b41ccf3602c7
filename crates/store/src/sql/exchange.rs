//! The CA exchange keys, sealed to the home's exchange wrapping key.

/// Used by `exchange_key`.
pub(crate) const SEALED_KEY: &str = "SELECT sealed_key FROM exchange_keys WHERE serial = $1";

/// Used by `exchange_key_serials`.
pub(crate) const SERIALS: &str = "SELECT serial FROM exchange_keys ORDER BY serial";

/// Used by `insert_exchange_certificate` and `Change::PutExchangeKey`.
pub(crate) const PUT: &str =
    "INSERT INTO exchange_keys (serial, sealed_key, created_at) VALUES ($1, $2, $3) \
    ON CONFLICT (serial) DO UPDATE SET sealed_key = excluded.sealed_key";

/// Used by `insert_exchange_certificate`: serials of the exchange
/// certificates in force at `$2` until after `$1` whose key is in the table.
pub(crate) const FRESH_WITH_KEY: &str = "SELECT r.serial FROM requests r \
    JOIN exchange_keys k ON k.serial = r.serial \
    WHERE r.template = 'CAExchange' AND r.disposition = 'issued' \
    AND r.not_after > $1 AND r.not_before <= $2";

/// Used by `Change::ClearExchangeKeys`.
pub(crate) const CLEAR: &str = "DELETE FROM exchange_keys";
