//! The OpenAPI 3 description of the REST API.

use serde_json::{json, Value};

fn op(summary: &str, admin: bool) -> Value {
    let mut o = json!({ "summary": summary, "responses": { "200": { "description": "OK" }, "default": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } });
    if admin {
        o["security"] = json!([{ "bearer": [] }]);
    }
    o
}

fn with_params(mut o: Value, params: &[(&str, &str, bool)]) -> Value {
    o["parameters"] = Value::Array(
        params
            .iter()
            .map(|(name, place, required)| json!({ "name": name, "in": place, "required": required, "schema": { "type": "string" } }))
            .collect(),
    );
    o
}

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let id = ("id", "path", true);
    let name = ("name", "path", true);
    let mut submit = with_params(
        op(
            "Submit a PKCS#10 or CMC request (DER, PEM or base64 body)",
            false,
        ),
        &[
            ("template", "query", false),
            ("on_behalf_of", "query", false),
        ],
    );
    submit["description"] = json!("Authenticated callers enroll as themselves; anonymous callers only when server.allow_anonymous_enrollment is on (else 401), and never for templates that archive keys, authenticate clients or build names from the requester. Unless the template has enrollee_supplies_subject, the certificate names (CN, SAN e-mail and UPN) come from the requester's principal record and the names in the request are ignored.");
    submit["parameters"][1]["description"] = json!("Enroll for this principal (name, UPN or DOMAIN\\name): it becomes the requester and the names come from its record. Needs the EnrollmentAgent role; others get 0x80094012.");
    submit["requestBody"] = json!({ "required": true, "content": {
        "application/pkcs10": { "schema": { "type": "string", "format": "binary" } },
        "application/pkcs7-mime": { "schema": { "type": "string", "format": "binary" } },
        "text/plain": { "schema": { "type": "string" } } } });
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Lockbox CA API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Certification authority with key archival. Errors carry AD CS status codes." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": {
                "kind": { "type": "string" }, "code": { "type": "integer" }, "status": { "type": "string" },
                "name": { "type": "string" }, "message": { "type": "string" } } } } } }
        },
        "paths": {
            "/health": { "get": op("Liveness", false) },
            "/api/v1/openapi.json": { "get": op("This document", false) },
            "/api/v1/ca/certificate": { "get": with_params(op("CA certificate (PEM, or DER with format=der)", false), &[("format", "query", false)]) },
            "/api/v1/ca/chain": { "get": op("CA certificate and its chain (PEM)", false) },
            "/api/v1/ca/cross": { "get": op("Cross-certificates between CA keys after renewals with a new key (PEM)", false) },
            "/api/v1/ca/exchange": { "get": with_params(op("Current CA exchange certificate (clients encrypt archived keys to it)", false), &[("format", "query", false)]) },
            "/cmc": { "post": op("CMC over HTTP (RFC 5273): application/pkcs7-mime in, CMC Full PKI Response out", false) },
            "/api/v1/kra": { "get": op("Configured KRA certificates with status", true), "post": op("Add a KRA certificate (PEM/DER body, or a serial number)", true) },
            "/api/v1/keys": { "get": with_params(op("Recovery candidates for a token (certificate managers)", true), &[("token", "query", true)]) },
            "/api/v1/keys/blob": { "get": with_params(op("Recovery blob (audited)", true), &[("token", "query", false), ("request_id", "query", false)]) },
            "/api/v1/keys/history": { "get": with_params(op("Key history of a token: every certificate found and those linked to them by renewal", true), &[("token", "query", true)]) },
            "/api/v1/keys/p7m": { "post": op("Recovery candidates for the recipients of an encrypted message (body)", true) },
            "/api/v1/audit": { "get": with_params(op("Audit trail (Auditor)", true), &[("since", "query", false), ("limit", "query", false)]) },
            "/api/v1/audit/verify": { "get": op("Verify the audit chain and signed heads (Auditor)", true) },
            "/api/v1/backup": { "post": op("Online backup as a tar stream; keys encrypted under the JSON {passphrase} (Backup Operator)", true) },
            "/api/v1/events": { "get": with_params(op("CA event log", true), &[("limit", "query", false)]) },
            "/api/v1/kra/required": { "get": op("Number of KRAs each key is encrypted to", true), "put": op("Set it (JSON {required})", true) },
            "/api/v1/kra/{id}": { "delete": with_params(op("Remove a KRA certificate (thumbprint or serial)", true), &[("id", "path", true)]) },
            "/api/v1/ca/templates": { "get": op("Templates this CA issues", false) },
            "/api/v1/ca/templates/{name}": { "put": with_params(op("Issue this template", true), &[name]),
                                             "delete": with_params(op("Stop issuing this template", true), &[name]) },
            "/api/v1/crl": { "get": op("Current CRL (DER)", false), "post": op("Publish a new CRL", true) },
            "/api/v1/crl/delta": { "get": op("Current delta CRL (DER)", false), "post": op("Publish a new delta CRL", true) },
            "/crl/{name}": { "get": with_params(op("CRLs at their CDP names (DER): ca.crl, ca+.crl (delta), ca(K).crl and ca(K)+.crl for CA key K after renewals with a new key", false), &[("name", "path", true)]) },
            "/api/v1/requests": { "post": submit, "get": with_params(op("List requests", true), &[("disposition", "query", false), ("limit", "query", false)]) },
            "/api/v1/requests/{id}": { "get": with_params(op("Request status and row", true), &[id]) },
            "/api/v1/requests/{id}/certificate": { "get": with_params(op("Issued certificate (its requester or a reader of the CA database)", true), &[id, ("format", "query", false)]) },
            "/api/v1/requests/{id}/issue": { "post": with_params(op("Issue a pending request", true), &[id]) },
            "/api/v1/requests/{id}/deny": { "post": with_params(op("Deny a pending request", true), &[id]) },
            "/api/v1/certificates/{serial}/revoke": { "post": with_params(op("Revoke a certificate (JSON body {\"reason\": \"keyCompromise\"})", true), &[("serial", "path", true)]) },
            "/api/v1/certificates/{serial}/unrevoke": { "post": with_params(op("Release a certificate on hold (reason certificateHold)", true), &[("serial", "path", true)]) },
            "/api/v1/view": { "get": with_params(op("Query the CA database", true), &[("restrict", "query", false), ("limit", "query", false)]) },
            "/api/v1/templates": { "get": op("All templates", false) },
            "/api/v1/templates/{name}": { "get": with_params(op("One template", false), &[name]),
                                          "patch": with_params(op("Set a template property (JSON {key, value})", true), &[name]) },
            "/api/v1/templates/{name}/duplicate": { "post": with_params(op("Duplicate a template (JSON {new_name})", true), &[name]) }
        }
    })
}
