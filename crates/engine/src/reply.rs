//! CMC Full PKI Responses (RFC 5272 section 4.2; MS-WCCE 3.2.1.4.2.1.4.8.2).

use der::asn1::{Any, GeneralizedTime, OctetString, SetOfVec};
use der::Encode;
use lockbox_codec::cmc::{CmcAddAttributes, CmcStatusInfo, PendInfo, PkiResponse, TaggedAttribute};
use lockbox_codec::oids;
use lockbox_codec::pem::decode_input;
use lockbox_crypto::cms::sign_data;
use lockbox_crypto::digest::sha1;
use lockbox_store::Disposition;
use x509_cert::attr::Attribute;

use crate::core::Core;
use crate::{EngineError, EngineResult, Outcome};

fn enc(e: der::Error) -> EngineError {
    EngineError::Config(format!("encoding CMC response: {e}"))
}

fn any<T: Encode + der::Tagged + der::EncodeValue>(v: &T) -> EngineResult<Any> {
    Any::encode_from(v).map_err(enc)
}

fn status_control(
    status: u32,
    body_part: u32,
    text: Option<String>,
    pend: Option<PendInfo>,
) -> EngineResult<TaggedAttribute> {
    let info = CmcStatusInfo {
        cmc_status: status,
        body_list: vec![body_part],
        status_string: text,
        other_info: pend.map(|p| any(&p)).transpose()?,
    };
    Ok(TaggedAttribute {
        body_part_id: 1,
        attr_type: oids::ID_CMC_STATUS_INFO,
        attr_values: SetOfVec::try_from(vec![any(&info)?]).map_err(enc)?,
    })
}

async fn sign_response(
    core: &Core,
    resp: &PkiResponse,
    extra_certs: Vec<Vec<u8>>,
) -> EngineResult<Vec<u8>> {
    let key = core.signing_key()?;
    let (_, ca_cert) = core.ca_cert()?;
    let mut certs = extra_certs;
    certs.extend(core.chain_and_cross()?);
    let content = resp.to_der().map_err(enc)?;
    Ok(sign_data(
        key.as_ref(),
        ca_cert,
        oids::ID_CCT_PKI_RESPONSE,
        &content,
        &certs,
    )?)
}

/// The response to a submitted request: success with the certificate hash
/// (and the encrypted-key hash when a key was archived), or pending.
pub(crate) async fn build(core: &Core, o: &Outcome) -> EngineResult<Vec<u8>> {
    let body_part = o.body_part_id.unwrap_or(1);
    let mut controls = Vec::new();
    let mut certs = Vec::new();
    match o.disposition {
        Disposition::Issued => {
            controls.push(status_control(0, body_part, Some("Issued".into()), None)?);
            let pem = o.certificate_pem.as_deref().unwrap_or_default();
            let der = decode_input(pem.as_bytes())?.der;
            let mut attrs = vec![Attribute {
                oid: oids::MS_ISSUED_CERT_HASH,
                values: SetOfVec::try_from(vec![any(
                    &OctetString::new(sha1(&der).to_vec()).map_err(enc)?
                )?])
                .map_err(enc)?,
            }];
            if let Some(h) = &o.encrypted_key_hash {
                let bytes = hex::decode(h)
                    .map_err(|_| EngineError::Config("stored key hash is not hex".into()))?;
                attrs.push(Attribute {
                    oid: oids::MS_ENCRYPTED_KEY_HASH,
                    values: SetOfVec::try_from(vec![any(&OctetString::new(bytes).map_err(enc)?)?])
                        .map_err(enc)?,
                });
            }
            let add = CmcAddAttributes {
                data_reference: 0,
                cert_references: vec![body_part],
                attributes: SetOfVec::try_from(attrs).map_err(enc)?,
            };
            controls.push(TaggedAttribute {
                body_part_id: 2,
                attr_type: oids::MS_CMC_ADD_ATTRIBUTES,
                attr_values: SetOfVec::try_from(vec![any(&add)?]).map_err(enc)?,
            });
            certs.push(der);
        }
        Disposition::Pending => {
            let pend = PendInfo {
                pend_token: OctetString::new(o.request_id.to_be_bytes().to_vec()).map_err(enc)?,
                pend_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                    crate::period::now().max(0) as u64,
                ))
                .map_err(enc)?,
            };
            controls.push(status_control(
                3,
                body_part,
                Some(format!(
                    "Taken under submission; request ID {}",
                    o.request_id
                )),
                Some(pend),
            )?);
        }
        _ => controls.push(status_control(2, body_part, Some(o.message.clone()), None)?),
    }
    sign_response(
        core,
        &PkiResponse {
            control_sequence: controls,
            cms_sequence: vec![],
            other_msg_sequence: vec![],
        },
        certs,
    )
    .await
}

/// A CMC failure response (cmcStatus failed, failInfo badRequest) carrying the error text.
pub(crate) async fn failure(
    core: &Core,
    err: &EngineError,
    body_part: u32,
) -> EngineResult<Vec<u8>> {
    let info = CmcStatusInfo {
        cmc_status: 2,
        body_list: vec![body_part],
        status_string: Some(format!("{err} (0x{:08x})", err.code())),
        other_info: Some(any(&2u32)?),
    };
    let control = TaggedAttribute {
        body_part_id: 1,
        attr_type: oids::ID_CMC_STATUS_INFO,
        attr_values: SetOfVec::try_from(vec![any(&info)?]).map_err(enc)?,
    };
    sign_response(
        core,
        &PkiResponse {
            control_sequence: vec![control],
            cms_sequence: vec![],
            other_msg_sequence: vec![],
        },
        vec![],
    )
    .await
}

/// Builds the CMC Full PKI Response for an outcome (RFC 5272, MS-WCCE 3.2.1.4.2.1.4.8.2).
pub(crate) async fn cmc_response(
    core: &Core,
    outcome: &crate::enroll::Outcome,
) -> EngineResult<Vec<u8>> {
    build(core, outcome).await
}
