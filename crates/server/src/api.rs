//! REST endpoints.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use lockbox_codec::pem::encode_pem;
use lockbox_engine::principals::Credential;
use lockbox_engine::{codes, Actor, Ca, EngineError, ErrorKind, SubmitOptions};
use serde::Deserialize;
use serde_json::json;

/// Largest request body accepted (a CMC archival request is a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

type AppState = Arc<Ca>;

/// An engine error as an HTTP response with a stable JSON body.
pub struct ApiError(pub EngineError);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError(e)
    }
}

/// The HTTP status for an engine error kind (`denied_as`: policy refusals,
/// which the REST API and the form-based protocols report differently).
pub(crate) fn http_status(e: &EngineError, denied_as: StatusCode) -> StatusCode {
    match e.kind() {
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::Denied => denied_as,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = http_status(&e, StatusCode::UNPROCESSABLE_ENTITY);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error");
            "internal error (see the server log)".to_string()
        } else {
            e.to_string()
        };
        let code = e.code();
        let body = json!({
            "error": {
                "kind": e.kind().as_str(),
                "code": code,
                "status": format!("0x{code:08x}"),
                "name": codes::name(code),
                "message": message,
            }
        });
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lockbox\""),
            );
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(lockbox_engine::principals::LOGIN_WINDOW.as_secs()),
            );
        }
        resp
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn unauthorized() -> ApiError {
    ApiError(EngineError::Forbidden(
        "administrator token required".into(),
    ))
}

/// Authenticates the caller: `Authorization: Bearer` (API token or the
/// administrator token) or `Basic` (principal password). `None`: no credentials.
/// Failures are audited; password logins are throttled per (principal,
/// peer address) pair and per peer address (429 with `Retry-After` while
/// that pair or address is throttled; the same principal from another
/// address is unaffected).
pub(crate) async fn caller(ca: &Ca, headers: &HeaderMap) -> ApiResult<Option<Actor>> {
    let source = headers
        .get(PEER_ADDRESS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<std::net::IpAddr>().ok());
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        // A verified TLS client certificate mapped to a principal authenticates it
        // (the header is set by the connection layer, never taken from clients).
        return match headers
            .get(CLIENT_CERT_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(thumb) => Ok(ca.login(Credential::Certificate(thumb), source).await?),
            None => Ok(None),
        };
    };
    let value = value.to_str().map_err(|_| unauthorized())?;
    let (scheme, cred) = value.split_once(' ').ok_or_else(unauthorized)?;
    let actor = if scheme.eq_ignore_ascii_case("bearer") {
        ca.login(Credential::Token(cred.trim()), source).await?
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded =
            lockbox_codec::pem::decode_base64_text(cred.trim()).map_err(|_| unauthorized())?;
        let text = zeroize::Zeroizing::new(String::from_utf8(decoded).map_err(|_| unauthorized())?);
        let (user, pass) = text.split_once(':').ok_or_else(unauthorized)?;
        ca.login(
            Credential::Password {
                name: user,
                password: pass,
            },
            source,
        )
        .await?
    } else {
        None
    };
    actor.map(Some).ok_or_else(unauthorized)
}

/// An authenticated caller (the engine then decides what it may do).
async fn authenticated(ca: &Ca, headers: &HeaderMap) -> ApiResult<Actor> {
    caller(ca, headers).await?.ok_or_else(|| {
        ApiError(EngineError::Forbidden(
            "authentication required: send 'Authorization: Bearer <token>' or Basic credentials"
                .into(),
        ))
    })
}

/// Who is enrolling: an authenticated caller, or `anonymous` (as an
/// Authenticated User) when the CA allows anonymous enrollment.
pub(crate) async fn enrollee(ca: &Ca, headers: &HeaderMap) -> ApiResult<Actor> {
    match caller(ca, headers).await? {
        Some(a) => Ok(a),
        None => anonymous_enrollee(ca).ok_or_else(|| {
            ApiError(EngineError::Unauthenticated(
                "authentication required: anonymous enrollment is off (server.allow_anonymous_enrollment); send 'Authorization: Bearer <token>' or Basic credentials"
                    .into(),
            ))
        }),
    }
}

/// The anonymous caller as an Authenticated User, when the CA allows it.
pub(crate) fn anonymous_enrollee(ca: &Ca) -> Option<Actor> {
    ca.config().server.allow_anonymous_enrollment.then(|| {
        let mut a = Actor::anonymous();
        a.groups
            .push(lockbox_engine::authz::AUTHENTICATED_USERS.into());
        a
    })
}

/// Whether a browser sent this request from another origin: a foreign or
/// `null` `Origin` header. Clients other than browsers send none. Basic
/// credentials are ambient in browsers, so form posts check this.
pub(crate) fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

/// Set by the connection layer (never by clients) to the verified TLS client certificate's SHA-1.
pub const CLIENT_CERT_HEADER: &str = "x-lockbox-client-certificate-sha1";

/// Set from the connection's peer address (never by clients), for throttling failed logins.
pub const PEER_ADDRESS_HEADER: &str = "x-lockbox-peer-address";

/// Replaces any client-sent [`PEER_ADDRESS_HEADER`] with the connection's
/// peer address (`ConnectInfo`, set by `serve`), when known.
async fn peer_address(mut req: axum::extract::Request) -> axum::extract::Request {
    req.headers_mut().remove(PEER_ADDRESS_HEADER);
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    if let Some(v) = peer.and_then(|p| HeaderValue::from_str(&p).ok()) {
        req.headers_mut().insert(PEER_ADDRESS_HEADER, v);
    }
    req
}

/// Builds the router for a connection without a verified client certificate:
/// any client-supplied certificate header is removed.
pub fn router(ca: Arc<Ca>) -> Router {
    crate::tls::with_client_certificate(routes(ca), None)
}

/// The routes, trusting [`CLIENT_CERT_HEADER`] (wrap with
/// [`crate::tls::with_client_certificate`] before serving).
pub(crate) fn routes(ca: Arc<Ca>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/ca/certificate", get(ca_certificate))
        .route("/api/v1/ca/chain", get(ca_chain))
        .route("/api/v1/ca/exchange", get(ca_exchange))
        .route("/api/v1/kra", get(kra_list).post(kra_add))
        .route(
            "/api/v1/kra/required",
            get(kra_required).put(kra_set_required),
        )
        .route("/api/v1/kra/{id}", axum::routing::delete(kra_remove))
        .route("/cmc", post(submit_cmc))
        .route("/api/v1/keys", get(key_candidates))
        .route("/api/v1/keys/blob", get(key_blob))
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
        .route("/crl/ca.crl", get(crl))
        .route("/api/v1/requests", post(submit).get(list_requests))
        .route("/api/v1/requests/{id}", get(request_status))
        .route(
            "/api/v1/requests/{id}/certificate",
            get(request_certificate),
        )
        .route("/api/v1/requests/{id}/issue", post(issue))
        .route("/api/v1/requests/{id}/deny", post(deny))
        .route("/api/v1/certificates/{serial}/revoke", post(revoke))
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
        .merge(crate::certsrv::routes())
        .merge(crate::console::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(no_store_by_default))
        .layer(axum::middleware::from_fn(refuse_cross_origin_writes))
        .layer(axum::middleware::map_request(host_from_authority))
        .layer(axum::middleware::map_request(peer_address))
        .with_state(ca)
}

/// Browsers send ambient credentials (a TLS client certificate, cached Basic
/// credentials) with cross-site requests too: no state-changing request from
/// another origin reaches a handler.
async fn refuse_cross_origin_writes(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe && cross_origin(req.headers()) {
        return ApiError(EngineError::Forbidden(
            "cross-origin requests that change state are refused".into(),
        ))
        .into_response();
    }
    next.run(req).await
}

/// Responses may carry keys, recovery blobs, tokens or database rows: none
/// may be kept by a cache unless its handler says otherwise (the public CA
/// certificate, chain and CRL set no header and stay cacheable).
async fn no_store_by_default(uri: axum::http::Uri, mut resp: Response) -> Response {
    const PUBLIC: &[&str] = &[
        "/api/v1/ca/certificate",
        "/api/v1/ca/chain",
        "/api/v1/ca/exchange",
        "/api/v1/crl",
        "/crl/ca.crl",
    ];
    if !PUBLIC.contains(&uri.path()) && !resp.headers().contains_key(header::CACHE_CONTROL) {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// HTTP/2 carries the host in `:authority`, not in a `Host` header: copy it
/// there so same-origin checks see the same thing on both protocol versions.
async fn host_from_authority(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key(header::HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    req
}

async fn health(State(ca): State<AppState>) -> impl IntoResponse {
    Json(json!({ "status": "ok", "ca": ca.config().ca.name }))
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

fn cert_response(der: Vec<u8>, format: Option<&str>) -> Response {
    match format {
        Some("der") => ([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response(),
        _ => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            encode_pem("CERTIFICATE", &der),
        )
            .into_response(),
    }
}

async fn ca_certificate(
    State(ca): State<AppState>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    Ok(cert_response(ca.ca_certificate_der()?, q.format.as_deref()))
}

async fn ca_chain(State(ca): State<AppState>) -> ApiResult<Response> {
    let pem: String = ca
        .chain_der()?
        .iter()
        .map(|c| encode_pem("CERTIFICATE", c))
        .collect();
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

async fn crl(State(ca): State<AppState>) -> ApiResult<Response> {
    let der = ca.current_crl().await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

async fn crl_publish(State(ca): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let info = ca.publish_crl(&actor).await?;
    let mut body = serde_json::to_value(&info).unwrap_or_default();
    body["der_base64"] = json!(base64_encode(&info.der));
    Ok(Json(body).into_response())
}

pub(crate) fn base64_encode(data: &[u8]) -> String {
    // The PEM body without armour is plain base64.
    encode_pem("X", data)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

#[derive(Deserialize)]
struct SubmitQuery {
    template: Option<String>,
    /// Enroll for this principal (callers holding the EnrollmentAgent role).
    on_behalf_of: Option<String>,
}

async fn submit(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let actor = enrollee(&ca, &headers).await?;
    let requester = actor.name.clone();
    let wants_cmc = is_pkcs7(&headers, header::CONTENT_TYPE) || is_pkcs7(&headers, header::ACCEPT);
    let opts = SubmitOptions {
        template: q.template,
        requester,
        attributes: vec![],
        actor: Some(actor),
        on_behalf_of: q.on_behalf_of,
    };
    if wants_cmc {
        return Ok(cmc_exchange(&ca, &body, &opts).await);
    }
    let mut outcome = ca.submit(&body, &opts).await?;
    if outcome.body_part_id.is_some() {
        // The request was CMC: include the Full PKI Response for clients that want it.
        let resp = ca.cmc_response(&outcome).await?;
        outcome.cmc_response = Some(base64_encode(&resp));
    }
    Ok(Json(outcome).into_response())
}

fn is_pkcs7(headers: &HeaderMap, name: header::HeaderName) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/pkcs7-mime"))
}

/// RFC 5273 CMC over HTTP: the answer is a CMC Full PKI Response, also for failures.
async fn cmc_exchange(ca: &Ca, body: &[u8], opts: &SubmitOptions) -> Response {
    let ct = [(
        header::CONTENT_TYPE,
        "application/pkcs7-mime; smime-type=CMC-response",
    )];
    match ca.submit(body, opts).await {
        Ok(o) => match ca.cmc_response(&o).await {
            Ok(resp) => (ct, resp).into_response(),
            Err(e) => ApiError(e).into_response(),
        },
        Err(e) => {
            let status = match e.kind() {
                ErrorKind::BadInput => StatusCode::BAD_REQUEST,
                ErrorKind::Denied => StatusCode::OK,
                _ => return ApiError(e).into_response(),
            };
            match lockbox_engine::cmcresponse::failure(ca, &e, 1).await {
                Ok(resp) => (status, ct, resp).into_response(),
                Err(_) => ApiError(e).into_response(),
            }
        }
    }
}

async fn submit_cmc(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let actor = enrollee(&ca, &headers).await?;
    let requester = actor.name.clone();
    let opts = SubmitOptions {
        template: q.template,
        requester,
        attributes: vec![],
        actor: Some(actor),
        on_behalf_of: q.on_behalf_of,
    };
    Ok(cmc_exchange(&ca, &body, &opts).await)
}

async fn ca_exchange(
    State(ca): State<AppState>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    Ok(cert_response(
        ca.current_exchange_certificate().await?,
        q.format.as_deref(),
    ))
}

async fn kra_list(State(ca): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.kra_list(&actor).await?).into_response())
}

async fn kra_add(
    State(ca): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok((
        StatusCode::CREATED,
        Json(ca.kra_add(&actor, &body, None, None).await?),
    )
        .into_response())
}

/// `?force=true`: remove a KRA even when it is the last agent of some archived keys.
#[derive(Deserialize)]
struct ForceQuery {
    #[serde(default)]
    force: bool,
}

async fn kra_remove(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let t = ca.kra_remove(&actor, &id, q.force).await?;
    Ok(Json(json!({ "removed": t })).into_response())
}

async fn kra_required(State(ca): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    ca.authorize(&actor, lockbox_engine::authz::Op::ReadDatabase)
        .await?;
    Ok(Json(json!({ "required": ca.kra_required().await? })).into_response())
}

#[derive(Deserialize)]
struct RequiredBody {
    required: usize,
}

async fn kra_set_required(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<RequiredBody>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    ca.set_kra_required(&actor, b.required).await?;
    Ok(Json(json!({ "required": b.required })).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    disposition: Option<String>,
    limit: Option<i64>,
}

async fn list_requests(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let restrict = q
        .disposition
        .map(|d| format!("Disposition={d}"))
        .unwrap_or_default();
    let rows = ca.view(&actor, &restrict, q.limit.unwrap_or(1000)).await?;
    Ok(Json(rows).into_response())
}

async fn request_status(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.read_request(&actor, id).await?).into_response())
}

/// The request `id` if `user` may read it: its requester, or a reader of the
/// CA database (certsrv's rule). Anyone else gets one answer whether the
/// request exists or not, so request IDs cannot be probed.
pub(crate) async fn readable_request(
    ca: &Ca,
    user: Option<&Actor>,
    id: i64,
) -> Result<lockbox_engine::RequestRecord, EngineError> {
    let rec = ca.request(id).await;
    if let (Some(u), Ok(r)) = (user, &rec) {
        if r.requester.eq_ignore_ascii_case(&u.name) {
            return rec;
        }
    }
    if let Some(u) = user {
        if ca
            .authorize(u, lockbox_engine::authz::Op::ReadDatabase)
            .await
            .is_ok()
        {
            // A restricted manager reads only the rows within its restrictions.
            return ca.read_request(u, id).await;
        }
    }
    Err(EngineError::Forbidden(format!(
        "request {id} does not exist or is not yours"
    )))
}

/// `GET /api/v1/requests/{id}/certificate`: for the request's requester (an
/// anonymous requester when anonymous enrollment is on) or a reader of the database.
async fn request_certificate(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    let user = match caller(&ca, &headers).await? {
        Some(a) => Some(a),
        None => anonymous_enrollee(&ca),
    };
    readable_request(&ca, user.as_ref(), id).await?;
    Ok(cert_response(
        ca.certificate(id).await?,
        q.format.as_deref(),
    ))
}

async fn issue(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.issue(id, &actor).await?).into_response())
}

async fn deny(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.deny(id, &actor).await?).into_response())
}

#[derive(Deserialize)]
struct RevokeBody {
    reason: Option<String>,
}

async fn revoke(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: Option<Json<RevokeBody>>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let reason = body
        .and_then(|b| b.0.reason)
        .unwrap_or_else(|| "unspecified".into());
    let reason = lockbox_engine::crl::parse_reason(&reason)?;
    Ok(Json(ca.revoke(&serial, reason, &actor).await?).into_response())
}

#[derive(Deserialize)]
struct ViewQuery {
    restrict: Option<String>,
    limit: Option<i64>,
}

async fn view(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ViewQuery>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let rows = ca
        .view(
            &actor,
            q.restrict.as_deref().unwrap_or(""),
            q.limit.unwrap_or(10_000),
        )
        .await?;
    Ok(Json(rows).into_response())
}

async fn templates(State(ca): State<AppState>) -> ApiResult<Response> {
    Ok(Json(ca.templates().await?).into_response())
}

async fn template(State(ca): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(ca.template(&name).await?).into_response())
}

#[derive(Deserialize)]
struct SetBody {
    key: String,
    value: String,
}

async fn template_set(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(b): Json<SetBody>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.set_template(&actor, &name, &b.key, &b.value).await?).into_response())
}

#[derive(Deserialize)]
struct DuplicateBody {
    new_name: String,
}

async fn template_duplicate(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(b): Json<DuplicateBody>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok((
        StatusCode::CREATED,
        Json(ca.duplicate_template(&actor, &name, &b.new_name).await?),
    )
        .into_response())
}

async fn ca_templates(State(ca): State<AppState>) -> ApiResult<Response> {
    Ok(Json(ca.ca_templates().await?).into_response())
}

async fn ca_template_add(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let name = ca.set_ca_template(&actor, &name, true).await?;
    Ok(Json(json!({ "template": name, "enabled": true })).into_response())
}

async fn ca_template_remove(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let name = ca.set_ca_template(&actor, &name, false).await?;
    Ok(Json(json!({ "template": name, "enabled": false })).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    since: Option<i64>,
    limit: Option<i64>,
}

async fn audit_list(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(
        ca.audit_list(&actor, q.since, q.limit.unwrap_or(1000))
            .await?,
    )
    .into_response())
}

#[derive(Deserialize)]
struct BackupBody {
    passphrase: String,
}

/// `POST /api/v1/backup` (Backup Operator or CA administrator): an online
/// backup, keys encrypted under the passphrase in the body, returned as a tar
/// stream (`lockbox --server URL backup --out DIR` unpacks and verifies it).
async fn backup(
    State(ca): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<BackupBody>>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let Some(Json(body)) = body else {
        return Err(ApiError(EngineError::bad_input(
            codes::E_INVALIDARG,
            "send {\"passphrase\": \"...\"} as JSON",
        )));
    };
    let pass = zeroize::Zeroizing::new(body.passphrase.into_bytes());
    // Under the CA home (mode 0700, same protection as the database), not in
    // a shared or RAM-backed /tmp; removed when the response is built.
    let tmp = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(ca.home().root())
        .map_err(|e| ApiError(EngineError::Config(format!("temporary directory: {e}"))))?;
    let dir = tmp.path().join("backup");
    ca.backup(&actor, &dir, &pass).await?;
    let archive = tmp.path().join("backup.tar");
    let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, EngineError> {
        let f = std::fs::File::create(&archive)
            .map_err(|e| EngineError::Config(format!("creating the archive: {e}")))?;
        lockbox_engine::backup::pack(&dir, std::io::BufWriter::new(&f))?;
        // The open handle outlives the temporary directory (removed on return).
        std::fs::File::open(&archive)
            .map_err(|e| EngineError::Config(format!("reopening the archive: {e}")))
    })
    .await
    .map_err(|e| ApiError(EngineError::Config(format!("packing the backup: {e}"))))??;
    drop(tmp);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lockbox-backup.tar\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn audit_verify(State(ca): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.audit_verify(&actor).await?).into_response())
}

async fn events(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.events(&actor, q.limit.unwrap_or(200)).await?).into_response())
}

#[derive(Deserialize)]
struct KeyQuery {
    token: Option<String>,
    request_id: Option<i64>,
}

async fn key_candidates(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(
        ca.find_candidates(&actor, q.token.as_deref().unwrap_or(""))
            .await?,
    )
    .into_response())
}

async fn key_blob(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    let blob = match (q.request_id, q.token.as_deref()) {
        (Some(id), _) => ca.get_key_by_request(&actor, id).await?,
        (None, Some(t)) => ca.get_key(&actor, t).await?,
        (None, None) => {
            return Err(ApiError(EngineError::bad_input(
                codes::E_INVALIDARG,
                "give token or request_id",
            )))
        }
    };
    let mut resp = Json(blob).into_response();
    // A recovery blob is an archived key: never cached.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn key_candidates_for_message(
    State(ca): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.candidates_for_message(&actor, &body).await?).into_response())
}
