//! Key recovery: finding candidates and producing signed recovery blobs for a
//! certificate manager; opening a blob with an agent key (`open.rs`), which
//! the agent does offline through `lockbox_client` and the CA's key-history
//! export does with an agent key the operator holds.

pub(crate) mod blob;
pub(crate) mod open;
pub(crate) mod search;

pub use open::{recover_from_blob, Recovered};
pub use search::message_der;

use serde::{Deserialize, Serialize};

/// A recovery candidate, as `getkey` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Candidate {
    /// Request ID.
    pub request_id: i64,
    /// Serial number (hex).
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// UPN.
    pub upn: Option<String>,
    /// notBefore (unix).
    pub not_before: i64,
    /// notAfter (unix).
    pub not_after: i64,
    /// Template.
    pub template: Option<String>,
    /// Template version (major.minor) when known.
    pub version: Option<String>,
    /// SHA-1 thumbprint.
    pub cert_hash: String,
    /// Requester.
    pub requester: String,
}

/// One certificate of a user's key history (`getkey --history`): the
/// candidate, whether its key is archived, and its renewal links.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The certificate (as a recovery candidate lists it).
    #[serde(flatten)]
    pub candidate: Candidate,
    /// Whether its private key is archived (recoverable).
    pub archived: bool,
    /// issued or revoked.
    pub disposition: String,
    /// The request whose certificate this one renewed.
    pub renewal_of: Option<i64>,
    /// The request whose certificate renewed this one (superseded), if any.
    pub superseded_by: Option<i64>,
}

/// A KRA able to open a blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecipientInfo {
    /// Issuer DN.
    pub issuer: String,
    /// Serial (hex).
    pub serial: String,
    /// SHA-1 of the KRA certificate (from the CA's KRA store).
    pub sha1: String,
}

/// A retrieved recovery blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryBlob {
    /// The candidate.
    pub candidate: Candidate,
    /// KRAs that can open it.
    pub recipients: Vec<RecipientInfo>,
    /// DER SignedData (not serialised in listings).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "b64")]
    pub blob: Vec<u8>,
}

/// The blob as one line of base64 in JSON (empty when absent).
mod b64 {
    use serde::{Deserialize, Deserializer, Serializer};
    /// Writes the bytes as base64 text without line breaks.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &lockbox_codec::pem::encode_pem("X", v)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
    }
    /// Reads base64 text back (an empty string is no blob).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(vec![]);
        }
        lockbox_codec::pem::decode_base64_text(&s).map_err(serde::de::Error::custom)
    }
}
