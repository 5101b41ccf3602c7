//! Row mapping: the columns read back into model types and the binds of a new request row.

use sqlx::any::AnyRow;
use sqlx::{Any, FromRow};

use crate::model::*;
use crate::{StoreError, StoreResult};

/// A `requests` row selected with `select_requests!` (`sql/requests.rs`), as stored: the
/// certificate columns are NULL until a certificate exists.
#[derive(FromRow)]
struct RequestRow {
    request_id: i64,
    request_der: Vec<u8>,
    request_kind: String,
    requester: String,
    template: Option<String>,
    request_subject: String,
    disposition: String,
    disposition_message: String,
    status_code: i64,
    submitted_at: i64,
    resolved_at: Option<i64>,
    cert_der: Option<Vec<u8>>,
    serial: Option<String>,
    subject: Option<String>,
    common_name: Option<String>,
    upn: Option<String>,
    email: Option<String>,
    key_id: Option<String>,
    thumbprint: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    key_algorithm: Option<String>,
    key_length: Option<i64>,
    revoked_at: Option<i64>,
    revocation_reason: Option<i32>,
    renewal_of: Option<i64>,
    superseded_by: Option<i64>,
    issuer_key_id: Option<String>,
    has_archived_key: i64,
}

/// A `requests` row selected with `select_requests!` (`sql/requests.rs`); the certificate fields exist only with a certificate.
pub(super) fn record_from_row(row: &AnyRow) -> StoreResult<RequestRecord> {
    let r = RequestRow::from_row(row)?;
    let disposition = Disposition::parse(&r.disposition)
        .ok_or_else(|| StoreError::Integrity(format!("unknown disposition '{}'", r.disposition)))?;
    let cert = r.cert_der.map(|cert_der| CertFields {
        cert_der,
        serial: r.serial.unwrap_or_default(),
        subject: r.subject.unwrap_or_default(),
        common_name: r.common_name.clone(),
        upn: r.upn.clone(),
        email: r.email.clone(),
        key_id: r.key_id.unwrap_or_default(),
        thumbprint: r.thumbprint.unwrap_or_default(),
        not_before: r.not_before.unwrap_or_default(),
        not_after: r.not_after.unwrap_or_default(),
        key_algorithm: r.key_algorithm.unwrap_or_default(),
        key_length: r.key_length.unwrap_or_default(),
        issuer_key_id: r.issuer_key_id,
    });
    Ok(RequestRecord {
        request_id: r.request_id,
        disposition,
        disposition_message: r.disposition_message,
        status_code: r.status_code,
        requester: r.requester,
        template: r.template,
        request_kind: r.request_kind,
        request_subject: r.request_subject,
        submitted_at: r.submitted_at,
        resolved_at: r.resolved_at,
        request_der: r.request_der,
        common_name: r.common_name,
        upn: r.upn,
        email: r.email,
        cert,
        revoked_at: r.revoked_at,
        revocation_reason: r.revocation_reason,
        renewal_of: r.renewal_of,
        superseded_by: r.superseded_by,
        has_archived_key: r.has_archived_key != 0,
    })
}

/// A query with bound SQLite arguments.
pub(super) type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Binds the twelve certificate columns in the order of the `UPDATE` in `issue_pending`.
pub(super) fn bind_cert<'q>(q: Query<'q>, c: &'q CertFields) -> Query<'q> {
    q.bind(&c.cert_der)
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.common_name)
        .bind(&c.upn)
        .bind(&c.email)
        .bind(&c.key_id)
        .bind(&c.thumbprint)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.key_algorithm)
        .bind(c.key_length)
        .bind(&c.issuer_key_id)
}

/// How an imported row differs from one requested here.
#[derive(Clone, Copy, Default)]
pub(super) struct ImportMeta<'q> {
    pub(super) foreign: bool,
    pub(super) owner: Option<&'q str>,
    pub(super) source: Option<&'q str>,
}

/// Binds a new request to `insert_request_sql!`: resolved unless pending;
/// the certificate's identities override the request's once it exists.
pub(super) fn bind_new_request<'q>(
    q: Query<'q>,
    new: &'q NewRequest,
    import: ImportMeta<'q>,
) -> Query<'q> {
    let resolved_at = match new.disposition {
        Disposition::Pending => None,
        _ => Some(new.submitted_at),
    };
    let c = new.cert.as_ref();
    q.bind(&new.request_der)
        .bind(&new.request_kind)
        .bind(&new.requester)
        .bind(&new.template)
        .bind(&new.request_subject)
        .bind(new.disposition.as_str())
        .bind(&new.disposition_message)
        .bind(new.status_code)
        .bind(new.submitted_at)
        .bind(resolved_at)
        .bind(c.map_or(&new.request_common_name, |c| &c.common_name))
        .bind(c.map_or(&new.request_upn, |c| &c.upn))
        .bind(c.map_or(&new.request_email, |c| &c.email))
        .bind(&new.archived_key)
        .bind(&new.kra_hashes)
        .bind(c.map(|c| &c.cert_der))
        .bind(c.map(|c| &c.serial))
        .bind(c.map(|c| &c.subject))
        .bind(c.map(|c| &c.key_id))
        .bind(c.map(|c| &c.thumbprint))
        .bind(c.map(|c| c.not_before))
        .bind(c.map(|c| c.not_after))
        .bind(c.map(|c| &c.key_algorithm))
        .bind(c.map(|c| c.key_length))
        .bind(i64::from(import.foreign))
        .bind(import.owner)
        .bind(import.source)
        .bind(new.renewal_of)
        .bind(c.and_then(|c| c.issuer_key_id.as_ref()))
}
