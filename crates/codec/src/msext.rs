//! Microsoft certificate extensions as typed values for x509-cert's typed
//! extension lookup (`TbsCertificate::get_extension::<T>()` /
//! `filter_extensions::<T>()`): each type carries its OID.

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::BmpString;
use der::{DecodeValue, FixedTag, Header, Reader, Tag};

use crate::ms::CertificateTemplateExt;
use crate::oids;

impl AssociatedOid for CertificateTemplateExt {
    const OID: ObjectIdentifier = oids::MS_CERTIFICATE_TEMPLATE;
}

/// The v1 certificate type name extension (1.3.6.1.4.1.311.20.2): the
/// template's name as a BMPString.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct CertTypeName(pub String);

impl AssociatedOid for CertTypeName {
    const OID: ObjectIdentifier = oids::MS_CERT_TYPE_NAME;
}

impl FixedTag for CertTypeName {
    const TAG: Tag = Tag::BmpString;
}

impl<'a> DecodeValue<'a> for CertTypeName {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(CertTypeName(
            BmpString::decode_value(reader, header)?.to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn cert_type_name_decodes_as_the_bmpstring_reader_does() {
        let der = BmpString::from_utf8("User").unwrap().to_der().unwrap();
        assert_eq!(CertTypeName::from_der(&der).unwrap().0, "User");
        assert_eq!(
            crate::ms::decode_cert_type_name(&der).unwrap(),
            CertTypeName::from_der(&der).unwrap().0
        );
    }
}
