//! Reading a CA's CMC Full PKI Response: its status and the values of its
//! Microsoft attributes (issued-certificate and encrypted-key hashes).

use lockbox_codec::cmc::{CmcAddAttributes, CmcStatusInfo, PkiResponse};
use lockbox_codec::oids;

/// The values (OCTET STRINGs) of attribute `oid` in the response's
/// `CMC add attributes` controls.
pub fn attr_values(resp: &PkiResponse, oid: der::asn1::ObjectIdentifier) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in resp
        .control_sequence
        .iter()
        .filter(|c| c.attr_type == oids::MS_CMC_ADD_ATTRIBUTES)
    {
        for v in c.attr_values.iter() {
            if let Ok(add) = v.decode_as::<CmcAddAttributes>() {
                for a in add.attributes.iter().filter(|a| a.oid == oid) {
                    for val in a.values.iter() {
                        if let Ok(os) = val.decode_as::<der::asn1::OctetString>() {
                            out.push(os.as_bytes().to_vec());
                        }
                    }
                }
            }
        }
    }
    out
}

/// Every CMC status info of the response, in order, each decoded when reached.
pub fn statuses(resp: &PkiResponse) -> impl Iterator<Item = der::Result<CmcStatusInfo>> + '_ {
    resp.control_sequence
        .iter()
        .filter(|c| c.attr_type == oids::ID_CMC_STATUS_INFO)
        .flat_map(|c| c.attr_values.iter().map(|v| v.decode_as()))
}
