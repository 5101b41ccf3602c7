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
];
