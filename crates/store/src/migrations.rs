//! Versioned schema migrations. Each migration runs in its own transaction and
//! is recorded in `schema_migrations`; a database newer than this build is refused.

/// (version, SQL) for the SQLite backend, in order.
pub(crate) const SQLITE: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE requests (
    request_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_der         BLOB NOT NULL,
    request_kind        TEXT NOT NULL,
    requester           TEXT NOT NULL,
    template            TEXT,
    request_subject     TEXT NOT NULL,
    disposition         TEXT NOT NULL,
    disposition_message TEXT NOT NULL,
    status_code         BIGINT NOT NULL DEFAULT 0,
    submitted_at        BIGINT NOT NULL,
    resolved_at         BIGINT,
    cert_der            BLOB,
    serial              TEXT,
    subject             TEXT,
    common_name         TEXT,
    upn                 TEXT,
    email               TEXT,
    key_id              TEXT,
    thumbprint          TEXT,
    not_before          BIGINT,
    not_after           BIGINT,
    key_algorithm       TEXT,
    key_length          BIGINT,
    revoked_at          BIGINT,
    revocation_reason   INTEGER,
    archived_key        BLOB,
    kra_hashes          TEXT,
    CHECK (disposition IN ('pending', 'issued', 'denied', 'revoked')),
    CHECK (disposition NOT IN ('issued', 'revoked') OR cert_der IS NOT NULL)
);
CREATE UNIQUE INDEX requests_serial ON requests (serial);
CREATE INDEX requests_common_name ON requests (common_name);
CREATE INDEX requests_upn ON requests (upn);
CREATE INDEX requests_email ON requests (email);
CREATE INDEX requests_key_id ON requests (key_id);
CREATE INDEX requests_thumbprint ON requests (thumbprint);
CREATE INDEX requests_subject ON requests (subject);
CREATE INDEX requests_requester ON requests (requester);
CREATE INDEX requests_template ON requests (template);
CREATE INDEX requests_disposition ON requests (disposition);
CREATE INDEX requests_not_before ON requests (not_before);
CREATE INDEX requests_not_after ON requests (not_after);
CREATE INDEX requests_revoked_at ON requests (revoked_at);

CREATE TABLE crls (
    crl_number   BIGINT PRIMARY KEY,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    der          BLOB NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('crl_number', 0);

CREATE TABLE templates (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);

CREATE TABLE ca_templates (
    name TEXT PRIMARY KEY
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE kra_certificates (
    thumbprint TEXT PRIMARY KEY,
    cert_der   BLOB NOT NULL,
    added_at   BIGINT NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE principals (
    name          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    upn           TEXT,
    email         TEXT,
    downlevel     TEXT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX principals_upn ON principals (upn);
CREATE INDEX principals_downlevel ON principals (downlevel);

CREATE TABLE group_members (
    group_name  TEXT NOT NULL,
    member_name TEXT NOT NULL,
    PRIMARY KEY (group_name, member_name)
);
CREATE INDEX group_members_member ON group_members (member_name);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE certificate_mappings (
    thumbprint TEXT PRIMARY KEY,
    principal  TEXT NOT NULL
);

CREATE TABLE roles (
    principal TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (principal, role)
);

CREATE TABLE template_permissions (
    template  TEXT NOT NULL,
    principal TEXT NOT NULL,
    allow     INTEGER NOT NULL,
    rights    TEXT NOT NULL,
    PRIMARY KEY (template, principal, allow)
);

CREATE TABLE manager_restrictions (
    manager TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('group', 'template')),
    value   TEXT NOT NULL,
    PRIMARY KEY (manager, kind, value)
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    category  TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE audit_heads (
    seq       BIGINT PRIMARY KEY,
    hash      TEXT NOT NULL,
    signature TEXT NOT NULL,
    at        BIGINT NOT NULL
);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       BIGINT NOT NULL,
    event_id INTEGER NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL
);

ALTER TABLE kra_certificates ADD COLUMN chain_der BLOB;
ALTER TABLE kra_certificates ADD COLUMN crl_source TEXT;
"#,
    ),
    (
        4,
        r#"
ALTER TABLE requests ADD COLUMN foreign_cert INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN owner TEXT;
ALTER TABLE requests ADD COLUMN import_source TEXT;

CREATE TABLE unmatched_keys (
    key_id        TEXT PRIMARY KEY,
    archived_key  BLOB NOT NULL,
    kra_hashes    TEXT NOT NULL,
    owner         TEXT,
    import_source TEXT,
    imported_by   TEXT NOT NULL,
    imported_at   BIGINT NOT NULL
);
"#,
    ),
    (
        5,
        // Without statistics SQLite cannot tell that `disposition` has only four
        // values, and for `template = ? AND disposition = ?` (the exchange
        // certificate lookup made by every archival) it chose
        // `requests_disposition`, reading every issued row: archival slowed down
        // as the table grew. The composite index matches both terms, so the
        // planner prefers it.
        r#"
CREATE INDEX requests_template_disposition ON requests (template, disposition);
"#,
    ),
    (
        6,
        // Recovery searches match names case-insensitively, as AD CS does
        // (`getkey bob` finds CN=Bob): NOCASE indexes keep them indexed.
        // Imported keys keep the names their owner is known by (principal,
        // UPN, down-level name, e-mail), filled here from earlier imports.
        r#"
CREATE INDEX requests_common_name_nocase ON requests (common_name COLLATE NOCASE);
CREATE INDEX requests_upn_nocase ON requests (upn COLLATE NOCASE);
CREATE INDEX requests_email_nocase ON requests (email COLLATE NOCASE);
CREATE INDEX requests_requester_nocase ON requests (requester COLLATE NOCASE);
CREATE TABLE key_owner_names (
    request_id INTEGER NOT NULL,
    name       TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (request_id, name)
);
CREATE INDEX key_owner_names_name ON key_owner_names (name, request_id);
INSERT OR IGNORE INTO key_owner_names (request_id, name)
    SELECT request_id, json_extract(owner, '$.record.' || f.key) FROM requests,
        (SELECT 'upn' AS key UNION ALL SELECT 'email' UNION ALL SELECT 'mailbox') AS f
    WHERE owner IS NOT NULL AND json_valid(owner)
      AND json_type(owner, '$.record.' || f.key) = 'text';
"#,
    ),
];
