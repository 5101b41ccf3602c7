//! Finding recovery candidates: by name, serial, thumbprint or an encrypted message.

use std::collections::BTreeMap;

use lockbox_codec::hexfmt::{normalize_hex, to_hex};
use lockbox_crypto::cms::decode_envelope;
use lockbox_store::{Column, Op as QOp, RequestRecord, Restriction, Value};

use crate::core::Core;
use crate::recovery::Candidate;
use crate::{codes, Actor, EngineError, EngineResult, Op};

pub(crate) fn candidate(r: &RequestRecord) -> Option<Candidate> {
    let c = r.cert.as_ref()?;
    Some(Candidate {
        request_id: r.request_id,
        serial: c.serial.clone(),
        subject: c.subject.clone(),
        upn: c.upn.clone(),
        not_before: c.not_before,
        not_after: c.not_after,
        template: r.template.clone(),
        version: None,
        cert_hash: c.thumbprint.clone(),
        requester: r.requester.clone(),
    })
}

pub(crate) fn archived(column: Column, value: Value) -> Vec<Restriction> {
    // Names match case-insensitively, as in AD CS (`getkey bob` finds CN=Bob);
    // hex tokens are normalised to lowercase already.
    let op = match column {
        Column::CommonName | Column::Upn | Column::Email | Column::Requester => QOp::EqNoCase,
        _ => QOp::Eq,
    };
    vec![
        Restriction { column, op, value },
        Restriction {
            column: Column::ArchivedKey,
            op: QOp::Eq,
            value: Value::Int(1),
        },
    ]
}

/// Serial numbers and key identifiers (hex) of a message's recipients.
pub(crate) fn message_tokens(ed: &cms::enveloped_data::EnvelopedData) -> Vec<String> {
    use cms::enveloped_data::{
        KeyAgreeRecipientIdentifier, RecipientIdentifier, RecipientInfo as RI,
    };
    let mut out: Vec<String> = lockbox_crypto::cms::envelope_recipient_ids(ed)
        .into_iter()
        .map(|(_, s)| to_hex(s.as_bytes()))
        .collect();
    for ri in ed.recip_infos.0.iter() {
        match ri {
            RI::Ktri(k) => {
                if let RecipientIdentifier::SubjectKeyIdentifier(ski) = &k.rid {
                    out.push(to_hex(ski.0.as_bytes()));
                }
            }
            RI::Kari(k) => {
                for rek in &k.recipient_enc_keys {
                    if let KeyAgreeRecipientIdentifier::RKeyId(rk) = &rek.rid {
                        out.push(to_hex(rk.subject_key_identifier.0.as_bytes()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// DER of an encrypted message given as DER, PEM, or a MIME `smime.p7m` part.
pub fn message_der(input: &[u8]) -> EngineResult<Vec<u8>> {
    if let Ok(d) = lockbox_codec::pem::decode_input(input) {
        return Ok(d.der);
    }
    let text = String::from_utf8_lossy(input);
    let body = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .map(|(_, b)| b.to_string())
        .ok_or_else(|| {
            EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, "not DER, PEM or a MIME part")
        })?;
    let body: String = body
        .lines()
        .take_while(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(lockbox_codec::pem::decode_input(body.as_bytes())?.der)
}

pub(crate) async fn search_rows(core: &Core, token: &str) -> EngineResult<Vec<RequestRecord>> {
    let t = token.trim();
    if t.is_empty() {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "an empty search token",
        ));
    }
    let mut queries = vec![
        archived(Column::CommonName, Value::Text(t.into())),
        archived(Column::Upn, Value::Text(t.into())),
        archived(Column::Email, Value::Text(t.into())),
        archived(Column::Requester, Value::Text(t.into())),
    ];
    if let Some(hex) = normalize_hex(t) {
        for col in [Column::SerialNumber, Column::Thumbprint, Column::KeyId] {
            queries.push(archived(col, Value::Text(hex.clone())));
        }
    }
    // A down-level name or principal: its UPN, e-mail and name too.
    if let Some(p) = core.directory.principals().await?.into_iter().find(|p| {
        p.downlevel
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(t))
            || p.name.eq_ignore_ascii_case(t)
    }) {
        for (col, v) in [
            (Column::Upn, p.upn),
            (Column::Email, p.email),
            (Column::Requester, Some(p.name.clone())),
        ] {
            if let Some(v) = v {
                queries.push(archived(col, Value::Text(v)));
            }
        }
    }
    let mut found: BTreeMap<i64, RequestRecord> = BTreeMap::new();
    // Imported keys: the names their owner was known by on the source.
    for r in core.store.find_by_owner_name(t, 10_000).await? {
        found.insert(r.request_id, r);
    }
    for q in queries {
        for r in core.store.query(&q, 10_000).await? {
            found.insert(r.request_id, r);
        }
    }
    Ok(found.into_values().collect())
}

/// Recovery candidates for a token (CN, UPN, DOMAIN\user, e-mail, requester,
/// serial, SHA-1 thumbprint or key ID). Only rows holding an archived key;
/// expired certificates included. Certificate managers only; a restricted
/// manager sees only the rows it may act on.
pub(crate) async fn find_candidates(
    core: &Core,
    actor: &Actor,
    token: &str,
) -> EngineResult<Vec<Candidate>> {
    crate::authz::authorize(core, actor, Op::SearchKeys).await?;
    let rows = search_rows(core, token).await?;
    let mut out = Vec::new();
    let templates = crate::templates::templates(core).await?;
    for r in rows {
        if decide_quietly(core, actor, &r).await {
            if let Some(mut c) = candidate(&r) {
                c.version = r
                    .template
                    .as_deref()
                    .and_then(|n| templates.iter().find(|t| t.name == n))
                    .map(|t| format!("{}.{}", t.major_version, t.minor_version));
                out.push(c);
            }
        }
    }
    Ok(out)
}

pub(crate) async fn decide_quietly(core: &Core, actor: &Actor, r: &RequestRecord) -> bool {
    crate::authz::would_allow(
        core,
        actor,
        Op::RetrieveKey {
            requester: &r.requester,
            template: r.template.as_deref(),
        },
    )
    .await
}

/// Archived keys whose certificates match any recipient of an encrypted
/// message (issuer + serial, or subject key identifier).
pub(crate) async fn candidates_for_message(
    core: &Core,
    actor: &Actor,
    message: &[u8],
) -> EngineResult<Vec<Candidate>> {
    crate::authz::authorize(core, actor, Op::SearchKeys).await?;
    let der = crate::recovery::message_der(message)?;
    let ed = decode_envelope(&der)
        .map_err(|e| EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, format!("message: {e}")))?;
    let mut out: BTreeMap<i64, Candidate> = BTreeMap::new();
    for token in message_tokens(&ed) {
        for r in search_rows(core, &token).await? {
            if decide_quietly(core, actor, &r).await {
                if let Some(c) = candidate(&r) {
                    out.insert(c.request_id, c);
                }
            }
        }
    }
    Ok(out.into_values().collect())
}

/// Most rows one key history follows (a bound against a link cycle that a
/// damaged database could hold).
const HISTORY_LIMIT: usize = 10_000;

/// The key history of a token (`getkey --history`, the KMS "key history"):
/// every certificate the recovery search finds for it, and every
/// certificate linked to those by renewal (what they renewed and what
/// renewed them), oldest first. Certificate managers only; a restricted
/// manager sees only the rows it may act on.
pub(crate) async fn key_history(
    core: &Core,
    actor: &Actor,
    token: &str,
) -> EngineResult<Vec<crate::recovery::HistoryEntry>> {
    crate::authz::authorize(core, actor, Op::SearchKeys).await?;
    let mut seen: BTreeMap<i64, RequestRecord> = BTreeMap::new();
    let mut todo: Vec<i64> = Vec::new();
    for r in search_rows(core, token).await? {
        todo.extend(r.renewal_of.iter().chain(r.superseded_by.iter()));
        seen.insert(r.request_id, r);
    }
    while let Some(id) = todo.pop() {
        if seen.contains_key(&id) || seen.len() >= HISTORY_LIMIT {
            continue;
        }
        if let Some(r) = core.store.get_request(id).await? {
            todo.extend(r.renewal_of.iter().chain(r.superseded_by.iter()));
            seen.insert(id, r);
        }
    }
    let mut visible = Vec::new();
    for r in seen.into_values() {
        if decide_quietly(core, actor, &r).await {
            visible.push(r);
        }
    }
    // Links to rows this manager may not see are left out too.
    let ids: std::collections::BTreeSet<i64> = visible.iter().map(|r| r.request_id).collect();
    let shown = |l: Option<i64>| l.filter(|id| ids.contains(id));
    let mut out = Vec::new();
    for r in visible {
        if let Some(c) = candidate(&r) {
            out.push(crate::recovery::HistoryEntry {
                candidate: c,
                archived: r.has_archived_key,
                disposition: r.disposition.as_str().to_string(),
                renewal_of: shown(r.renewal_of),
                superseded_by: shown(r.superseded_by),
            });
        }
    }
    out.sort_by_key(|e| (e.candidate.not_before, e.candidate.request_id));
    Ok(out)
}
