//! Directory: principals, groups, tokens, certificate mappings, roles, permissions, restrictions.

/// Used by `principal`.
pub(crate) const PRINCIPAL: &str = "SELECT name, kind, upn, email, downlevel, password_hash, created_at FROM principals WHERE name = $1";

/// Used by `principals`.
pub(crate) const PRINCIPALS: &str = "SELECT name, kind, upn, email, downlevel, password_hash, created_at FROM principals ORDER BY name";

/// Used by `groups_of`.
pub(crate) const GROUPS_OF: &str =
    "SELECT group_name FROM group_members WHERE member_name = $1 ORDER BY group_name";

/// Used by `members`.
pub(crate) const MEMBERS: &str =
    "SELECT member_name FROM group_members WHERE group_name = $1 ORDER BY member_name";

/// Used by `token`.
pub(crate) const TOKEN: &str = "SELECT principal, secret_hash FROM api_tokens WHERE id = $1";

/// Used by `principal_for_certificate`.
pub(crate) const PRINCIPAL_FOR_CERTIFICATE: &str =
    "SELECT principal FROM certificate_mappings WHERE thumbprint = $1";

/// Used by `roles`.
pub(crate) const ROLES: &str = "SELECT principal, role FROM roles ORDER BY principal, role";

/// Used by `permissions`.
pub(crate) const PERMISSIONS: &str = "SELECT template, principal, allow, rights FROM template_permissions WHERE template = $1 ORDER BY principal";

/// Used by `restrictions`.
pub(crate) const RESTRICTIONS: &str =
    "SELECT kind, value FROM manager_restrictions WHERE manager = $1 ORDER BY kind, value";

/// Used by `credential_version`.
pub(crate) const CREDENTIAL_VERSION: &str =
    "SELECT value FROM counters WHERE name = 'credential_version'";

/// Used by `tokens`.
pub(crate) const TOKENS: &str =
    "SELECT id, principal, created_at FROM api_tokens WHERE principal = $1 ORDER BY created_at, id";

/// Used by `certificate_mappings`.
pub(crate) const CERTIFICATE_MAPPINGS: &str = "SELECT thumbprint, principal, serial FROM certificate_mappings WHERE principal = $1 ORDER BY thumbprint";
