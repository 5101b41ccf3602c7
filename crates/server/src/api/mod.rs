//! The REST API router: every `/api/v1/` route, `/health`, `/cmc` and
//! `/crl/{name}`, mapped to handlers grouped by resource.

mod admin;
mod ca;
mod keys;
mod kra;
mod requests;

use std::sync::Arc;

use axum::routing::{delete, get, post, put};
use axum::Router;
use lockbox_engine::Ca;

use admin::{
    audit_list, audit_verify, backup, ca_template_add, ca_template_remove, ca_templates, crl,
    crl_file, crl_publish, delta_crl, delta_crl_publish, events, template, template_duplicate,
    template_set, templates,
};
use ca::{ca_certificate, ca_chain, ca_cross, ca_exchange, health, openapi};
use keys::{key_blob, key_candidates, key_candidates_for_message, key_history};
use kra::{kra_add, kra_list, kra_remove, kra_required, kra_set_required};
use requests::{
    deny, issue, list_requests, request_certificate, request_status, revoke, submit, submit_cmc,
    unrevoke, view,
};

type AppState = Arc<Ca>;

/// The routes anyone may fetch without credentials, also served on the
/// plain-HTTP public listener: the CA certificate and chain, the CRLs.
pub(crate) fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ca/certificate", get(ca_certificate))
        .route("/api/v1/ca/chain", get(ca_chain))
        .route("/api/v1/ca/cross", get(ca_cross))
        .route("/crl/{name}", get(crl_file))
}

/// The REST routes (state: the CA); the application in `lib.rs` adds
/// certsrv, console and the shared layers.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/ca/certificate", get(ca_certificate))
        .route("/api/v1/ca/chain", get(ca_chain))
        .route("/api/v1/ca/cross", get(ca_cross))
        .route("/api/v1/ca/exchange", get(ca_exchange))
        .route("/api/v1/kra", get(kra_list).post(kra_add))
        .route(
            "/api/v1/kra/required",
            get(kra_required).put(kra_set_required),
        )
        .route("/api/v1/kra/{id}", delete(kra_remove))
        .route("/cmc", post(submit_cmc))
        .route("/api/v1/keys", get(key_candidates))
        .route("/api/v1/keys/blob", get(key_blob))
        .route("/api/v1/keys/history", get(key_history))
        .route("/api/v1/keys/p7m", post(key_candidates_for_message))
        .route("/api/v1/audit", get(audit_list))
        .route("/api/v1/audit/verify", get(audit_verify))
        .route("/api/v1/backup", post(backup))
        .route("/api/v1/events", get(events))
        .route("/api/v1/ca/templates", get(ca_templates))
        .route(
            "/api/v1/ca/templates/{name}",
            put(ca_template_add).delete(ca_template_remove),
        )
        .route("/api/v1/crl", get(crl).post(crl_publish))
        .route("/api/v1/crl/delta", get(delta_crl).post(delta_crl_publish))
        .route("/crl/{name}", get(crl_file))
        .route("/api/v1/requests", post(submit).get(list_requests))
        .route("/api/v1/requests/{id}", get(request_status))
        .route(
            "/api/v1/requests/{id}/certificate",
            get(request_certificate),
        )
        .route("/api/v1/requests/{id}/issue", post(issue))
        .route("/api/v1/requests/{id}/deny", post(deny))
        .route("/api/v1/certificates/{serial}/revoke", post(revoke))
        .route("/api/v1/certificates/{serial}/unrevoke", post(unrevoke))
        .route("/api/v1/view", get(view))
        .route("/api/v1/templates", get(templates))
        .route(
            "/api/v1/templates/{name}",
            get(template).patch(template_set),
        )
        .route(
            "/api/v1/templates/{name}/duplicate",
            post(template_duplicate),
        )
}
