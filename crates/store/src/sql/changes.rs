//! The change set of `Store::apply`: one statement (or two) per `Change` variant.

/// Used by `apply`.
pub(crate) const BUMP_CREDENTIAL_VERSION: &str =
    "INSERT INTO counters (name, value) VALUES ('credential_version', 1) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1";

/// Used by `apply`, `revoke` and the exchange-certificate insert: every
/// write that can change what the engine caches (templates, settings, KRA
/// certificates and their revocation, exchange certificates).
pub(crate) const BUMP_CONFIG_VERSION: &str =
    "INSERT INTO counters (name, value) VALUES ('config_version', 1) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1";

/// Used by `config_version`.
pub(crate) const CONFIG_VERSION: &str = "SELECT value FROM counters WHERE name = 'config_version'";

/// Used by `put_template`.
pub(crate) const PUT_TEMPLATE: &str = "INSERT INTO templates (name, definition) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET definition = excluded.definition";

/// Used by `set_ca_template`.
pub(crate) const SET_CA_TEMPLATE_INSERT: &str =
    "INSERT INTO ca_templates (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";

/// Used by `set_ca_template`.
pub(crate) const SET_CA_TEMPLATE_DELETE: &str = "DELETE FROM ca_templates WHERE name = $1";

/// Used by `add_kra`.
pub(crate) const ADD_KRA: &str =
    "INSERT INTO kra_certificates (thumbprint, cert_der, added_at, chain_der, crl_source) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (thumbprint) DO UPDATE SET \
                 chain_der = excluded.chain_der, crl_source = excluded.crl_source";

/// Used by `remove_kra`.
pub(crate) const REMOVE_KRA: &str = "DELETE FROM kra_certificates WHERE thumbprint = $1";

/// Used by `set_setting`.
pub(crate) const SET_SETTING: &str = "INSERT INTO settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/// Used by `add_principal`.
pub(crate) const ADD_PRINCIPAL: &str =
    "INSERT INTO principals (name, kind, upn, email, downlevel, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING";

/// Used by `remove_principal`.
pub(crate) const REMOVE_PRINCIPAL: &str = "DELETE FROM principals WHERE name = $1";

/// Used by `add_member`.
pub(crate) const ADD_MEMBER: &str =
    "INSERT INTO group_members (group_name, member_name) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Used by `attach_archived_key`.
pub(crate) const ATTACH_ARCHIVED_KEY: &str = "UPDATE requests SET archived_key = $1, kra_hashes = $2, owner = COALESCE($3, owner), \
                 import_source = COALESCE($4, import_source) WHERE request_id = $5 AND archived_key IS NULL";

/// Used by `set_owner_names`.
pub(crate) const SET_OWNER_NAMES: &str = "INSERT INTO key_owner_names (request_id, name) \
                     SELECT request_id, $2 FROM requests WHERE thumbprint = $1 \
                     ON CONFLICT DO NOTHING";

/// Used by `clear_archived_key`.
pub(crate) const CLEAR_ARCHIVED_KEY: &str =
    "UPDATE requests SET archived_key = NULL, kra_hashes = NULL WHERE request_id = $1";

/// Used by `insert_unmatched_key`.
pub(crate) const INSERT_UNMATCHED_KEY: &str = "INSERT INTO unmatched_keys (key_id, archived_key, kra_hashes, owner, import_source, imported_by, imported_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key_id) DO NOTHING";

/// Used by `add_token`.
pub(crate) const ADD_TOKEN: &str =
    "INSERT INTO api_tokens (id, principal, secret_hash, created_at) VALUES ($1, $2, $3, $4)";

/// Used by `map_certificate`.
pub(crate) const MAP_CERTIFICATE: &str = "INSERT INTO certificate_mappings (thumbprint, principal, serial) VALUES ($1, $2, $3) \
                 ON CONFLICT (thumbprint) DO UPDATE SET principal = excluded.principal, serial = excluded.serial";

/// Used by `revoke_token`.
pub(crate) const REVOKE_TOKEN: &str = "DELETE FROM api_tokens WHERE id = $1 AND principal = $2";

/// Used by `unmap_certificate`.
pub(crate) const UNMAP_CERTIFICATE: &str =
    "DELETE FROM certificate_mappings WHERE thumbprint = $1 AND principal = $2";

/// Used by `grant_role`.
pub(crate) const GRANT_ROLE: &str =
    "INSERT INTO roles (principal, role) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Used by `revoke_role`.
pub(crate) const REVOKE_ROLE: &str = "DELETE FROM roles WHERE principal = $1 AND role = $2";

/// Used by `set_permission`.
pub(crate) const SET_PERMISSION_DELETE: &str =
    "DELETE FROM template_permissions WHERE template = $1 AND principal = $2 AND allow = $3";

/// Used by `set_permission`.
pub(crate) const SET_PERMISSION_INSERT: &str =
    "INSERT INTO template_permissions (template, principal, allow, rights) VALUES ($1, $2, $3, $4)";

/// Used by `set_restrictions`.
pub(crate) const SET_RESTRICTIONS_DELETE: &str =
    "DELETE FROM manager_restrictions WHERE manager = $1";

/// Used by `set_restrictions`.
pub(crate) const SET_RESTRICTIONS_INSERT: &str =
    "INSERT INTO manager_restrictions (manager, kind, value) VALUES ($1, $2, $3)";
