//! Certificate templates as data: the built-ins, editing, and what they imply
//! for an issued certificate.

use serde::{Deserialize, Serialize};

use crate::error::{codes, EngineError, EngineResult};
use crate::period::Period;

/// What a template's key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Encryption only (the key may be archived).
    Encryption,
    /// Signature only (the key is never archived).
    Signature,
    /// Both.
    Both,
}

/// A certificate template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Common name (what requests and `ca templates` use).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Template OID (carried in the v2 template extension).
    pub oid: String,
    /// Schema version: 1 = fixed (duplicate to change), 2 and 3 editable.
    pub schema_version: u8,
    /// Major revision (bumped on every change).
    pub major_version: u32,
    /// Minor revision.
    pub minor_version: u32,
    /// Key purpose.
    pub purpose: Purpose,
    /// keyUsage bits by RFC 5280 name (`digitalSignature`, `keyEncipherment`, ...).
    pub key_usage: Vec<String>,
    /// Extended key usages (OIDs).
    pub ekus: Vec<String>,
    /// Also write the Microsoft application-policies extension mirroring the EKUs.
    pub application_policies: bool,
    /// Certificate validity.
    pub validity: Period,
    /// Renewal overlap: with `do_not_reenroll_if_duplicate`, a requester may
    /// enroll again once its current certificate expires within this period.
    pub renewal_overlap: Period,
    /// Minimum key size in bits (RSA modulus; EC field size).
    pub min_key_size: u32,
    /// Allowed key algorithms: `rsa`, `p256`, `p384`, `p521`.
    pub key_algorithms: Vec<String>,
    /// Archive the subject's encryption private key.
    pub archive_private_key: bool,
    /// Archival requests must encrypt the key to the CA with AES: the CA
    /// refuses a 3DES envelope (checked on the envelope's algorithm before
    /// anything is decrypted). Off for the built-ins (Windows 2003 clients send 3DES).
    pub use_aes_for_key_transport: bool,
    /// Pend requests for certificate-manager approval.
    pub requires_approval: bool,
    /// Publish issued certificates to the directory. Not supported yet
    /// (directory publication arrives with directory integration): setting it
    /// to true is refused.
    pub publish_to_directory: bool,
    /// Refuse a new enrollment by a requester who already holds a valid
    /// (issued, unrevoked, unexpired) certificate of this template, unless that
    /// certificate is within `renewal_overlap` of its expiry.
    pub do_not_reenroll_if_duplicate: bool,
    /// Templates this one supersedes. Not supported yet (supersession arrives
    /// with autoenrollment): setting a non-empty list is refused.
    pub superseded_templates: Vec<String>,
    /// Principals and groups that may enroll.
    pub enroll: Vec<String>,
    /// Principals and groups that may autoenroll.
    pub autoenroll: Vec<String>,
    /// Issue CA certificates (basicConstraints cA=TRUE).
    pub ca: bool,
    /// Internal to the CA (not requestable by clients), like CAExchange.
    pub internal: bool,
    /// The enrollee supplies the subject and subject alternative names in the
    /// request (`WebServer`, `SubCA`). Otherwise the CA builds them from the
    /// requester's principal record (CN, e-mail, UPN) and ignores every name in
    /// the request, as AD CS builds them from Active Directory.
    #[serde(default)]
    pub enrollee_supplies_subject: bool,
}

/// The Microsoft arc under which built-in Lockbox templates are numbered.
pub const TEMPLATE_ARC: &str = "1.3.6.1.4.1.311.21.8.7638725.6482482.15862581.4921836.9542041.123";

const EKU_EFS: &str = "1.3.6.1.4.1.311.10.3.4";
const EKU_EMAIL: &str = "1.3.6.1.5.5.7.3.4";
const EKU_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
/// EKUs that let a certificate authenticate a client: client authentication,
/// smart card logon, PKINIT client, any purpose.
const CLIENT_AUTH_EKUS: &[&str] = &[
    EKU_CLIENT_AUTH,
    "1.3.6.1.4.1.311.20.2.2",
    "1.3.6.1.5.2.3.4",
    "2.5.29.37.0",
];
const EKU_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const EKU_KRA: &str = "1.3.6.1.4.1.311.21.6";
const EKU_CA_EXCHANGE: &str = "1.3.6.1.4.1.311.21.5";

#[allow(clippy::too_many_arguments)]
fn base(
    name: &str,
    display: &str,
    index: u32,
    schema: u8,
    purpose: Purpose,
    ku: &[&str],
    ekus: &[&str],
    validity: Period,
) -> Template {
    Template {
        name: name.into(),
        display_name: display.into(),
        oid: format!("{TEMPLATE_ARC}.{index}"),
        schema_version: schema,
        major_version: if schema == 1 { 4 } else { 100 },
        minor_version: 0,
        purpose,
        key_usage: ku.iter().map(|s| s.to_string()).collect(),
        ekus: ekus.iter().map(|s| s.to_string()).collect(),
        application_policies: schema >= 2,
        validity,
        renewal_overlap: Period::Weeks(6),
        min_key_size: 2048,
        key_algorithms: vec!["rsa".into(), "p256".into(), "p384".into()],
        archive_private_key: false,
        use_aes_for_key_transport: false,
        requires_approval: false,
        publish_to_directory: false,
        do_not_reenroll_if_duplicate: false,
        superseded_templates: vec![],
        enroll: vec!["Authenticated Users".into()],
        autoenroll: vec![],
        ca: false,
        internal: false,
        enrollee_supplies_subject: false,
    }
}

/// The built-in templates a new CA starts with.
pub fn builtins() -> Vec<Template> {
    let user = base(
        "User",
        "User",
        1,
        1,
        Purpose::Both,
        &["digitalSignature", "keyEncipherment"],
        &[EKU_EFS, EKU_EMAIL, EKU_CLIENT_AUTH],
        Period::Years(1),
    );
    let efs = base(
        "EFS",
        "Basic EFS",
        2,
        1,
        Purpose::Encryption,
        &["keyEncipherment"],
        &[EKU_EFS],
        Period::Years(1),
    );
    let mut exch = base(
        "ExchangeUser",
        "Exchange User",
        3,
        1,
        Purpose::Encryption,
        &["keyEncipherment"],
        &[EKU_EMAIL],
        Period::Years(1),
    );
    exch.archive_private_key = true;
    let sig = base(
        "ExchangeUserSignature",
        "Exchange Signature Only",
        4,
        1,
        Purpose::Signature,
        &["digitalSignature"],
        &[EKU_EMAIL],
        Period::Years(1),
    );
    let mut kra = base(
        "KeyRecoveryAgent",
        "Key Recovery Agent",
        5,
        2,
        Purpose::Encryption,
        &["keyEncipherment"],
        &[EKU_KRA],
        Period::Years(2),
    );
    kra.requires_approval = true;
    kra.key_algorithms = vec!["rsa".into()];
    kra.enroll = vec!["Administrators".into()];
    let mut xchg = base(
        "CAExchange",
        "CA Exchange",
        6,
        2,
        Purpose::Encryption,
        &["keyEncipherment"],
        &[EKU_CA_EXCHANGE],
        Period::Days(7),
    );
    xchg.internal = true;
    xchg.renewal_overlap = Period::Days(1);
    xchg.enroll = vec![];
    let mut subca = base(
        "SubCA",
        "Subordinate Certification Authority",
        7,
        1,
        Purpose::Signature,
        &["digitalSignature", "keyCertSign", "cRLSign"],
        &[],
        Period::Years(5),
    );
    subca.ca = true;
    subca.enroll = vec!["Administrators".into()];
    subca.enrollee_supplies_subject = true;
    let web = base(
        "WebServer",
        "Web Server",
        8,
        1,
        Purpose::Both,
        &["digitalSignature", "keyEncipherment"],
        &[EKU_SERVER_AUTH],
        Period::Years(2),
    );
    let mut web = web;
    web.enroll = vec!["Administrators".into()];
    web.enrollee_supplies_subject = true;
    vec![user, efs, exch, sig, kra, xchg, subca, web]
}

/// Templates a new CA issues by default.
pub const DEFAULT_CA_TEMPLATES: &[&str] = &[
    "User",
    "EFS",
    "ExchangeUser",
    "ExchangeUserSignature",
    "SubCA",
    "WebServer",
];

/// The keyUsage names Lockbox accepts.
pub const KEY_USAGE_NAMES: &[&str] = &[
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
];

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::bad_input(codes::E_INVALIDARG, msg)
}

fn parse_bool(v: &str) -> EngineResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(bad(format!("'{v}' is not a boolean (true/false)"))),
    }
}

fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Template {
    /// The keys `set` understands.
    pub const SETTABLE: &'static [&'static str] = &[
        "display_name",
        "purpose",
        "key_usage",
        "ekus",
        "application_policies",
        "validity",
        "renewal_overlap",
        "min_key_size",
        "key_algorithms",
        "archive_private_key",
        "use_aes_for_key_transport",
        "requires_approval",
        "publish_to_directory",
        "do_not_reenroll_if_duplicate",
        "superseded_templates",
        "enroll",
        "autoenroll",
        "enrollee_supplies_subject",
    ];

    /// Changes one property. Version 1 templates are fixed: duplicate them first.
    pub fn set(&mut self, key: &str, value: &str) -> EngineResult<()> {
        if self.schema_version < 2 {
            return Err(EngineError::Conflict(format!(
                "template '{}' is a version 1 template and cannot be changed; duplicate it first (lockbox template duplicate {} NEW)",
                self.name, self.name
            )));
        }
        if self.internal {
            return Err(EngineError::Conflict(format!(
                "template '{}' is internal to the CA",
                self.name
            )));
        }
        let key_norm = key.trim().to_ascii_lowercase().replace('-', "_");
        match key_norm.as_str() {
            "display_name" => self.display_name = value.to_string(),
            "purpose" => {
                self.purpose = match value.to_ascii_lowercase().as_str() {
                    "encryption" => Purpose::Encryption,
                    "signature" => Purpose::Signature,
                    "both" | "signature_and_encryption" => Purpose::Both,
                    _ => return Err(bad("purpose must be encryption, signature or both")),
                }
            }
            "key_usage" => {
                let list = parse_list(value);
                for k in &list {
                    if !KEY_USAGE_NAMES.contains(&k.as_str()) {
                        return Err(bad(format!(
                            "unknown key usage '{k}' (one of {})",
                            KEY_USAGE_NAMES.join(", ")
                        )));
                    }
                }
                self.key_usage = list;
            }
            "ekus" | "eku" => {
                let list = parse_list(value);
                for o in &list {
                    const_oid::ObjectIdentifier::new(o)
                        .map_err(|_| bad(format!("'{o}' is not an OID")))?;
                }
                self.ekus = list;
            }
            "application_policies" => self.application_policies = parse_bool(value)?,
            "validity" => self.validity = Period::parse(value)?,
            "renewal_overlap" => self.renewal_overlap = Period::parse(value)?,
            "min_key_size" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| bad("min_key_size must be a number of bits"))?;
                if !(256..=16384).contains(&n) {
                    return Err(bad("min_key_size must be between 256 and 16384"));
                }
                self.min_key_size = n;
            }
            "key_algorithms" => {
                let list = parse_list(value);
                for a in &list {
                    if !["rsa", "p256", "p384", "p521"].contains(&a.as_str()) {
                        return Err(bad(format!(
                            "unknown key algorithm '{a}' (rsa, p256, p384, p521)"
                        )));
                    }
                }
                if list.is_empty() {
                    return Err(bad("key_algorithms must not be empty"));
                }
                self.key_algorithms = list;
            }
            "archive_private_key" => self.archive_private_key = parse_bool(value)?,
            "use_aes_for_key_transport" => self.use_aes_for_key_transport = parse_bool(value)?,
            "requires_approval" => self.requires_approval = parse_bool(value)?,
            "publish_to_directory" => {
                if parse_bool(value)? {
                    return Err(bad(
                        "publish_to_directory is not supported yet: Lockbox has no directory to publish certificates to (it arrives with directory integration); leave it false",
                    ));
                }
                self.publish_to_directory = false;
            }
            "do_not_reenroll_if_duplicate" => {
                self.do_not_reenroll_if_duplicate = parse_bool(value)?
            }
            "superseded_templates" => {
                if !parse_list(value).is_empty() {
                    return Err(bad(
                        "superseded_templates is not supported yet: superseding templates arrives with autoenrollment; only an empty list is accepted",
                    ));
                }
                self.superseded_templates = vec![];
            }
            "enroll" => self.enroll = parse_list(value),
            "autoenroll" => self.autoenroll = parse_list(value),
            "enrollee_supplies_subject" => self.enrollee_supplies_subject = parse_bool(value)?,
            _ => {
                return Err(bad(format!(
                    "unknown template property '{key}' (settable: {})",
                    Self::SETTABLE.join(", ")
                )))
            }
        }
        self.validate()?;
        self.major_version += 1;
        Ok(())
    }

    /// Whether certificates of this template can authenticate a client: an
    /// EKU for client authentication (or any purpose), or no EKU at all on an
    /// end-entity certificate (valid for every purpose).
    pub fn allows_client_auth(&self) -> bool {
        (self.ekus.is_empty() && !self.ca)
            || self
                .ekus
                .iter()
                .any(|e| CLIENT_AUTH_EKUS.contains(&e.trim()))
    }

    /// The built-in default of `enrollee_supplies_subject` for a template
    /// stored before the property existed: on for CA and server-authentication
    /// templates without client authentication (`SubCA`, `WebServer` and
    /// their duplicates), off for the rest.
    pub fn legacy_enrollee_supplies_subject(&self) -> bool {
        (self.ca || self.ekus.iter().any(|e| e == EKU_SERVER_AUTH)) && !self.allows_client_auth()
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> EngineResult<()> {
        if self.archive_private_key && self.purpose == Purpose::Signature {
            return Err(bad(format!(
                "template '{}': a signature-only template cannot archive private keys",
                self.name
            )));
        }
        if self.renewal_overlap.approx_seconds() > self.validity.approx_seconds() {
            return Err(bad("renewal_overlap must not exceed validity"));
        }
        // A certificate with id-kp-OCSPSigning from this CA is an authorised
        // responder for all its certificates (RFC 6960 4.2.2.2): only the
        // CA's own responder certificates carry it.
        if self
            .ekus
            .iter()
            .any(|e| e.trim() == OCSP_SIGNING || e.trim() == ANY_EKU)
        {
            return Err(bad(format!(
                "template '{}': OCSP signing ({OCSP_SIGNING}) and any purpose ({ANY_EKU}) are \
                 reserved for the CA's own OCSP responder",
                self.name
            )));
        }
        Ok(())
    }

    /// Makes an editable (version 2) copy under a new name and OID.
    pub fn duplicate(&self, new_name: &str, oid: String) -> EngineResult<Template> {
        validate_name(new_name)?;
        let mut t = self.clone();
        t.name = new_name.to_string();
        t.display_name = new_name.to_string();
        t.oid = oid;
        t.schema_version = self.schema_version.max(2);
        t.major_version = 100;
        t.minor_version = 0;
        t.application_policies = true;
        t.internal = false;
        // settings Lockbox does not act on yet never carry over
        t.publish_to_directory = false;
        t.superseded_templates = vec![];
        Ok(t)
    }
}

/// id-kp-OCSPSigning, which no template may issue.
const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
/// anyExtendedKeyUsage, likewise.
const ANY_EKU: &str = "2.5.29.37.0";

/// Template names: letters, digits, `-`, `_`, `.`; 1-64 characters.
pub fn validate_name(name: &str) -> EngineResult<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(format!(
            "invalid template name '{name}' (letters, digits, '-', '_', '.'; at most 64)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_template_issues_ocsp_signing() {
        let mut t = builtins().into_iter().find(|t| t.name == "User").unwrap();
        t.ekus.push("1.3.6.1.5.5.7.3.9".into());
        assert!(t.validate().is_err());
        t.ekus.pop();
        t.ekus.push(" 2.5.29.37.0".into());
        assert!(t.validate().is_err());
    }

    #[test]
    fn builtins_are_consistent() {
        let all = builtins();
        assert_eq!(all.len(), 8);
        for t in &all {
            t.validate().unwrap();
        }
        let exch = all.iter().find(|t| t.name == "ExchangeUser").unwrap();
        assert!(exch.archive_private_key);
        let kra = all.iter().find(|t| t.name == "KeyRecoveryAgent").unwrap();
        assert!(kra.requires_approval && kra.ekus == vec![EKU_KRA.to_string()]);
    }

    #[test]
    fn v1_is_fixed_and_duplicate_is_editable() {
        let user = builtins().into_iter().find(|t| t.name == "User").unwrap();
        let mut u = user.clone();
        assert!(u.set("validity", "2y").is_err());
        let mut d = user.duplicate("User2", "1.2.3.4".into()).unwrap();
        d.set("validity", "2y").unwrap();
        assert_eq!(d.validity, Period::Years(2));
        assert!(d.set("bogus", "1").is_err());
        assert!(d.set("key_usage", "sneeze").is_err());
        let mut s = builtins()
            .into_iter()
            .find(|t| t.name == "ExchangeUserSignature")
            .unwrap()
            .duplicate("S2", "1.2.3.5".into())
            .unwrap();
        assert!(s.set("archive_private_key", "true").is_err());
        assert!(user.duplicate("bad name!", "1.2".into()).is_err());
    }

    #[test]
    fn enrollee_supplied_subject_defaults_and_client_auth() {
        let all = builtins();
        for t in &all {
            let supplies = matches!(t.name.as_str(), "WebServer" | "SubCA");
            assert_eq!(t.enrollee_supplies_subject, supplies, "{}", t.name);
            if t.enrollee_supplies_subject {
                assert!(!t.allows_client_auth(), "{} allows client auth", t.name);
            }
            assert_eq!(t.legacy_enrollee_supplies_subject(), supplies, "{}", t.name);
        }
        let user = all.iter().find(|t| t.name == "User").unwrap();
        assert!(user.allows_client_auth());
        let mut d = user.duplicate("Named", "1.2.3.6".into()).unwrap();
        assert!(!d.enrollee_supplies_subject);
        d.set("enrollee_supplies_subject", "true").unwrap();
        assert!(d.enrollee_supplies_subject);
        assert!(d.set("enrollee_supplies_subject", "maybe").is_err());
        // a template stored before the property existed reads as false
        let mut json: serde_json::Value = serde_json::to_value(user).unwrap();
        json.as_object_mut()
            .unwrap()
            .remove("enrollee_supplies_subject");
        let old: Template = serde_json::from_value(json).unwrap();
        assert!(!old.enrollee_supplies_subject);
    }

    /// Issue 12 item 14: settings Lockbox does not act on are refused when set.
    #[test]
    fn unsupported_settings_are_refused() {
        let mut d = builtins()
            .into_iter()
            .find(|t| t.name == "User")
            .unwrap()
            .duplicate("U2", "1.2.3.6".into())
            .unwrap();
        for (k, v) in [
            ("publish_to_directory", "true"),
            ("superseded_templates", "User"),
            ("superseded_templates", "User,EFS"),
        ] {
            let e = d.set(k, v).unwrap_err();
            assert!(e.to_string().contains("not supported yet"), "{k}: {e}");
        }
        d.set("publish_to_directory", "false").unwrap();
        d.set("superseded_templates", "").unwrap();
        assert!(!d.publish_to_directory && d.superseded_templates.is_empty());
        // no built-in claims a behaviour that does not exist
        assert!(builtins()
            .iter()
            .all(|t| !t.publish_to_directory && t.superseded_templates.is_empty()));
    }
}
