//! `view --restrict` parsing (certutil -view style).

use lockbox_codec::hexfmt::normalize_hex;
use lockbox_store::{Column, Disposition, Op, RequestRecord, Restriction, Value};

use crate::error::{codes, EngineError, EngineResult};
use crate::period::parse_datetime;

fn bad(msg: String) -> EngineError {
    EngineError::bad_input(codes::E_INVALIDARG, msg)
}

/// Parses `Column op value[,Column op value...]`.
///
/// Operators: `=`, `!=`/`<>`, `<`, `<=`, `>`, `>=`. Times take `YYYY-MM-DD` or
/// RFC 3339; dispositions take names or AD CS codes (9 pending, 20 issued,
/// 21 revoked, 31 denied); serials, thumbprints and key IDs take hex with or
/// without spaces.
pub fn parse_restrictions(text: &str) -> EngineResult<Vec<Restriction>> {
    let mut out = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (pos, op, len) = ["<=", ">=", "!=", "<>", "=", "<", ">"]
            .iter()
            .filter_map(|o| term.find(o).map(|p| (p, *o)))
            .min_by_key(|(p, o)| (*p, std::cmp::Reverse(o.len())))
            .map(|(p, o)| (p, o, o.len()))
            .ok_or_else(|| {
                bad(format!(
                    "restriction '{term}' has no operator (=, !=, <, <=, >, >=)"
                ))
            })?;
        let name = term[..pos].trim();
        let raw = term[pos + len..].trim().trim_matches('"');
        if raw.starts_with(['<', '>', '=', '!']) {
            return Err(bad(format!(
                "restriction '{term}' has a malformed operator (=, !=, <, <=, >, >=)"
            )));
        }
        let column = Column::parse(name).ok_or_else(|| {
            bad(format!(
                "unknown column '{name}' (known: {})",
                Column::ALL
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let op = match op {
            "=" => Op::Eq,
            "!=" | "<>" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            _ => Op::Ge,
        };
        let value = match column {
            c if c.is_time() => Value::Int(parse_datetime(raw)?),
            Column::Disposition => {
                let d = match raw {
                    "9" => Some(Disposition::Pending),
                    "20" => Some(Disposition::Issued),
                    "21" => Some(Disposition::Revoked),
                    "30" | "31" => Some(Disposition::Denied),
                    other => Disposition::parse(other),
                }
                .ok_or_else(|| {
                    bad(format!(
                        "unknown disposition '{raw}' (pending, issued, denied, revoked)"
                    ))
                })?;
                Value::Text(d.as_str().to_string())
            }
            Column::ArchivedKey => Value::Int(match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => 1,
                "0" | "false" | "no" => 0,
                _ => return Err(bad(format!("ArchivedKey takes true/false, not '{raw}'"))),
            }),
            c if c.is_integer() => Value::Int(
                raw.parse()
                    .map_err(|_| bad(format!("column {} needs a number, not '{raw}'", c.name())))?,
            ),
            Column::SerialNumber | Column::Thumbprint | Column::KeyId => {
                Value::Text(normalize_hex(raw).ok_or_else(|| bad(format!("'{raw}' is not hex")))?)
            }
            _ => Value::Text(raw.to_string()),
        };
        out.push(Restriction { column, op, value });
    }
    Ok(out)
}

/// Parses an `--out` column list; empty means the default set.
pub fn parse_columns(text: Option<&str>) -> EngineResult<Vec<Column>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(vec![
            Column::RequestId,
            Column::Disposition,
            Column::Requester,
            Column::Template,
            Column::SerialNumber,
            Column::CommonName,
            Column::NotBefore,
            Column::NotAfter,
            Column::SupersededBy,
        ]),
        Some(t) => t
            .split(',')
            .map(|c| Column::parse(c).ok_or_else(|| bad(format!("unknown column '{}'", c.trim()))))
            .collect(),
    }
}

/// The value of one column of a row, as text.
pub fn cell(r: &RequestRecord, c: Column) -> String {
    let cert = r.cert.as_ref();
    let opt = |s: Option<&String>| s.cloned().unwrap_or_default();
    let time = |t: Option<i64>| t.map(crate::period::rfc3339).unwrap_or_default();
    match c {
        Column::RequestId => r.request_id.to_string(),
        Column::Disposition => r.disposition.as_str().to_string(),
        Column::Requester => r.requester.clone(),
        Column::Template => opt(r.template.as_ref()),
        Column::SerialNumber => cert.map(|c| c.serial.clone()).unwrap_or_default(),
        Column::Subject => cert
            .map(|c| c.subject.clone())
            .unwrap_or_else(|| r.request_subject.clone()),
        Column::CommonName => opt(r.common_name.as_ref()),
        Column::Upn => opt(r.upn.as_ref()),
        Column::Email => opt(r.email.as_ref()),
        Column::KeyId => cert.map(|c| c.key_id.clone()).unwrap_or_default(),
        Column::Thumbprint => cert.map(|c| c.thumbprint.clone()).unwrap_or_default(),
        Column::NotBefore => time(cert.map(|c| c.not_before)),
        Column::NotAfter => time(cert.map(|c| c.not_after)),
        Column::SubmittedWhen => crate::period::rfc3339(r.submitted_at),
        Column::ResolvedWhen => time(r.resolved_at),
        Column::RevokedWhen => time(r.revoked_at),
        Column::RevocationReason => r
            .revocation_reason
            .map(|x| crate::crl::reason_name(x).to_string())
            .unwrap_or_default(),
        Column::StatusCode => format!("0x{:08x}", r.status_code as u32),
        Column::KeyLength => cert.map(|c| c.key_length.to_string()).unwrap_or_default(),
        Column::ArchivedKey => if r.has_archived_key { "yes" } else { "" }.to_string(),
        Column::RenewalOf => r.renewal_of.map(|x| x.to_string()).unwrap_or_default(),
        Column::SupersededBy => r.superseded_by.map(|x| x.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_issue_example() {
        let r =
            parse_restrictions("CertificateTemplate=ExchangeUser,NotBefore>=2026-01-01").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].column, Column::Template);
        assert_eq!(r[1].op, Op::Ge);
        assert!(matches!(r[1].value, Value::Int(_)));
        let r = parse_restrictions("SerialNumber=\"1b 4a\"").unwrap();
        assert_eq!(r[0].value, Value::Text("1b4a".into()));
        assert!(parse_restrictions("Bogus=1").is_err());
        assert!(parse_restrictions("RequestID").is_err());
        assert!(parse_restrictions("CommonName>>=").is_err());
        assert!(parse_restrictions("CommonName=>x").is_err());
        assert!(parse_restrictions("RequestID=abc").is_err());
        assert!(parse_restrictions("NotBefore>=yesterday").is_err());
        assert_eq!(
            parse_restrictions("Disposition=20").unwrap()[0].value,
            Value::Text("issued".into())
        );
        let cols = parse_columns(Some("RequestID,SerialNumber,CommonName,NotBefore")).unwrap();
        assert_eq!(cols.len(), 4);
    }
}
