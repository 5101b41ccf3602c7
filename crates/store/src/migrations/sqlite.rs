//! SQLite's migrations: the schema's history since the first release, applied
//! to existing databases in order.

/// (version, SQL) for the SQLite backend, in order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
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
    (
        7,
        // Principal names are case-insensitive (like Windows accounts): every
        // column naming a principal compares with NOCASE, so `MGR` and `mgr`
        // are one name everywhere. Of names that already differ only in case,
        // the earliest-created principal keeps the name; every row naming a
        // later one exactly (its tokens, certificate mappings, roles,
        // memberships, permissions, restrictions) is removed with it, so no
        // credential or grant moves to the surviving principal, and an event
        // (4097) records each removal. `credential_version` is bumped by every
        // change to principals and credentials and read per request, so
        // revocations take effect at once in every process. Certificate
        // mappings keep the serial number for `principal unmap-cert NAME SERIAL`.
        r#"
CREATE TABLE principal_case_duplicates AS
    SELECT p.name AS name, (
        SELECT q.name FROM principals q
        WHERE q.name = p.name COLLATE NOCASE AND q.name <> p.name
        ORDER BY q.created_at, q.name LIMIT 1
    ) AS kept
    FROM principals p
    WHERE EXISTS (
        SELECT 1 FROM principals q
        WHERE q.name = p.name COLLATE NOCASE AND q.name <> p.name
          AND (q.created_at < p.created_at OR (q.created_at = p.created_at AND q.name < p.name))
    );
INSERT INTO events (at, event_id, level, message)
    SELECT CAST(strftime('%s', 'now') AS INTEGER), 4097, 'warning',
        'principal ''' || name || ''' removed with its tokens, certificate mappings, roles, memberships, permissions and restrictions: principal names are case-insensitive and ''' || kept || ''' is older'
    FROM principal_case_duplicates;
DELETE FROM api_tokens WHERE principal IN (SELECT name FROM principal_case_duplicates);
DELETE FROM certificate_mappings WHERE principal IN (SELECT name FROM principal_case_duplicates);
DELETE FROM roles WHERE principal IN (SELECT name FROM principal_case_duplicates);
DELETE FROM group_members WHERE member_name IN (SELECT name FROM principal_case_duplicates)
    OR group_name IN (SELECT name FROM principal_case_duplicates);
DELETE FROM template_permissions WHERE principal IN (SELECT name FROM principal_case_duplicates);
DELETE FROM manager_restrictions WHERE manager IN (SELECT name FROM principal_case_duplicates);
DELETE FROM principals WHERE name IN (SELECT name FROM principal_case_duplicates);
DROP TABLE principal_case_duplicates;

CREATE TABLE principals_v6 (
    name          TEXT PRIMARY KEY COLLATE NOCASE,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    upn           TEXT,
    email         TEXT,
    downlevel     TEXT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);
INSERT INTO principals_v6 SELECT name, kind, upn, email, downlevel, password_hash, created_at FROM principals;
DROP TABLE principals;
ALTER TABLE principals_v6 RENAME TO principals;
CREATE INDEX principals_upn ON principals (upn);
CREATE INDEX principals_downlevel ON principals (downlevel);

CREATE TABLE group_members_v6 (
    group_name  TEXT NOT NULL COLLATE NOCASE,
    member_name TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (group_name, member_name)
);
INSERT OR IGNORE INTO group_members_v6 SELECT group_name, member_name FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_v6 RENAME TO group_members;
CREATE INDEX group_members_member ON group_members (member_name);

CREATE TABLE api_tokens_v6 (
    id          TEXT PRIMARY KEY,
    principal   TEXT NOT NULL COLLATE NOCASE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
INSERT INTO api_tokens_v6 SELECT id, principal, secret_hash, created_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_v6 RENAME TO api_tokens;
CREATE INDEX api_tokens_principal ON api_tokens (principal);

CREATE TABLE certificate_mappings_v6 (
    thumbprint TEXT PRIMARY KEY,
    principal  TEXT NOT NULL COLLATE NOCASE,
    serial     TEXT
);
INSERT INTO certificate_mappings_v6 (thumbprint, principal, serial)
    SELECT m.thumbprint, m.principal, (SELECT r.serial FROM requests r WHERE r.thumbprint = m.thumbprint)
    FROM certificate_mappings m;
DROP TABLE certificate_mappings;
ALTER TABLE certificate_mappings_v6 RENAME TO certificate_mappings;
CREATE INDEX certificate_mappings_principal ON certificate_mappings (principal);

CREATE TABLE roles_v6 (
    principal TEXT NOT NULL COLLATE NOCASE,
    role      TEXT NOT NULL,
    PRIMARY KEY (principal, role)
);
INSERT OR IGNORE INTO roles_v6 SELECT principal, role FROM roles;
DROP TABLE roles;
ALTER TABLE roles_v6 RENAME TO roles;

CREATE TABLE template_permissions_v6 (
    template  TEXT NOT NULL,
    principal TEXT NOT NULL COLLATE NOCASE,
    allow     INTEGER NOT NULL,
    rights    TEXT NOT NULL,
    PRIMARY KEY (template, principal, allow)
);
INSERT INTO template_permissions_v6
    SELECT template, MIN(principal), allow, group_concat(rights, ',')
    FROM template_permissions GROUP BY template, principal COLLATE NOCASE, allow;
DROP TABLE template_permissions;
ALTER TABLE template_permissions_v6 RENAME TO template_permissions;

CREATE TABLE manager_restrictions_v6 (
    manager TEXT NOT NULL COLLATE NOCASE,
    kind    TEXT NOT NULL CHECK (kind IN ('group', 'template')),
    value   TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (manager, kind, value)
);
INSERT OR IGNORE INTO manager_restrictions_v6 SELECT manager, kind, value FROM manager_restrictions;
DROP TABLE manager_restrictions;
ALTER TABLE manager_restrictions_v6 RENAME TO manager_restrictions;

INSERT INTO counters (name, value) VALUES ('credential_version', 0) ON CONFLICT (name) DO NOTHING;
"#,
    ),
    (
        8,
        // The CA exchange private keys live in the database, each sealed
        // (CMS EnvelopedData) to the home's exchange wrapping key, so every
        // node of a CA on one database uses the exchange certificate any node
        // made. Before, they were files in one home.
        r#"
CREATE TABLE exchange_keys (
    serial     TEXT PRIMARY KEY,
    sealed_key BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
"#,
    ),
    (
        9,
        // Delta CRLs share the CRL number sequence: a delta names the base
        // CRL it completes (NULL for a base CRL). A renewal names the request
        // whose certificate it renews; that one names its successor once the
        // renewal is issued (the key history follows both). A certificate
        // records the key identifier of the CA key that signed it, and each
        // CRL the index of the CA key that signed it (one CRL per CA key
        // after a renewal with a new key).
        r#"
ALTER TABLE crls ADD COLUMN delta_base BIGINT;
ALTER TABLE crls ADD COLUMN key_index BIGINT NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN renewal_of BIGINT;
ALTER TABLE requests ADD COLUMN issuer_key_id TEXT;
ALTER TABLE requests ADD COLUMN superseded_by BIGINT;
CREATE INDEX requests_renewal_of ON requests (renewal_of);
"#,
    ),
];
