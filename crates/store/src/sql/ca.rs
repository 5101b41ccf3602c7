//! CA-wide tables: CRLs and their counter, templates, KRAs, settings, events.

/// Used by `next_crl_number`.
pub(crate) const NEXT_CRL_NUMBER: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value";

/// Used by `insert_crl`.
pub(crate) const INSERT_CRL: &str =
    "INSERT INTO crls (crl_number, this_update, next_update, der, delta_base, key_index) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Used by `latest_crl`.
pub(crate) const LATEST_CRL: &str =
    "SELECT crl_number, this_update, next_update, der, delta_base, key_index FROM crls \
     WHERE delta_base IS NULL AND key_index = $1 ORDER BY crl_number DESC LIMIT 1";

/// Used by `latest_delta_crl`.
pub(crate) const LATEST_DELTA_CRL: &str =
    "SELECT crl_number, this_update, next_update, der, delta_base, key_index FROM crls \
     WHERE delta_base IS NOT NULL AND key_index = $1 ORDER BY crl_number DESC LIMIT 1";

/// Used by `templates`.
pub(crate) const TEMPLATES: &str = "SELECT name, definition FROM templates ORDER BY name";

/// Used by `ca_templates`.
pub(crate) const CA_TEMPLATES: &str = "SELECT name FROM ca_templates ORDER BY name";

/// Used by `kra_certificates`.
pub(crate) const KRA_CERTIFICATES: &str = "SELECT thumbprint, cert_der, added_at, chain_der, crl_source FROM kra_certificates ORDER BY added_at, thumbprint";

/// Used by `setting`.
pub(crate) const SETTING: &str = "SELECT value FROM settings WHERE name = $1";

/// Used by `add_event`.
pub(crate) const ADD_EVENT: &str =
    "INSERT INTO events (at, event_id, level, message) VALUES ($1, $2, $3, $4)";

/// Used by `events`.
pub(crate) const EVENTS: &str =
    "SELECT id, at, event_id, level, message FROM events ORDER BY id DESC LIMIT $1";
