//! A key pair on a token: signs, decrypts and agrees through the token.

use std::sync::{Arc, Mutex};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::{OctetString, UintRef};
use der::{Decode, Encode, Sequence};
use lockbox_codec::oids;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use super::Token;
use crate::error::CryptoError;
use crate::key::{ec_spki, rsa_spki, KeyHandle};
use crate::keytransport::{pkcs1_v15_unpad, DecryptionKey, KeyTransport};
use crate::provider::PrivateKey;

/// What a key generated on a token may do (one use per key, as a CA keeps
/// its signing and exchange keys apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// Signatures only (the CA key).
    Sign,
    /// Decryption (RSA) or key agreement (EC) only (agent keys).
    Decrypt,
    /// A CA exchange key: decryption, and a signature on its own
    /// certificate request (the request row of the exchange certificate).
    Exchange,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Rsa {
        modulus_len: usize,
    },
    Ec {
        sig_oid: ObjectIdentifier,
        field_len: usize,
    },
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    exponent: UintRef<'a>,
}

#[derive(Sequence)]
struct EcdsaSignature<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// The DigestInfo prefix of SHA-256 (RFC 8017 section 9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// How the private half of a key is protected on its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyProtection {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_SIGN`.
    pub sign: bool,
    /// `CKA_DECRYPT`.
    pub decrypt: bool,
    /// `CKA_DERIVE`.
    pub derive: bool,
    /// `CKA_UNWRAP`.
    pub unwrap: bool,
}

impl KeyProtection {
    /// Whether the private key can never leave the token in the clear.
    pub fn kept_in(&self) -> bool {
        self.sensitive && !self.extractable && self.never_extractable
    }
}

/// A key pair on a [`Token`], named by `CKA_ID`.
pub struct TokenKey {
    token: Arc<Token>,
    id: Vec<u8>,
    label: String,
    spki: SubjectPublicKeyInfoOwned,
    kind: Kind,
    /// The private key's object handle with the module generation it is
    /// valid in, looked up again after the module was re-initialised.
    handle: Mutex<Option<(u64, ObjectHandle)>>,
    /// Whether PKCS#1 v1.5 decryption may fall back to the token's own
    /// unpadding (`CKM_RSA_PKCS`) when it has no raw RSA: for an agent's
    /// key, never for a key that answers requests from the network.
    padded_fallback: bool,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({:?}, label '{}')", self.token, self.label)
    }
}

fn attr_bytes(attrs: &[Attribute], ty: AttributeType) -> Option<Vec<u8>> {
    attrs.iter().find_map(|a| match (a, ty) {
        (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent)
        | (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint) => Some(v.clone()),
        _ => None,
    })
}

fn attr_bool(attrs: &[Attribute], ty: AttributeType) -> bool {
    attrs.iter().any(|a| {
        matches!(
            (a, ty),
            (Attribute::Sensitive(true), AttributeType::Sensitive)
                | (Attribute::Extractable(true), AttributeType::Extractable)
                | (
                    Attribute::NeverExtractable(true),
                    AttributeType::NeverExtractable
                )
                | (Attribute::Sign(true), AttributeType::Sign)
                | (Attribute::Decrypt(true), AttributeType::Decrypt)
                | (Attribute::Derive(true), AttributeType::Derive)
                | (Attribute::Unwrap(true), AttributeType::Unwrap)
        )
    })
}

/// The one object of `class` with `CKA_ID` `id` (an ID two objects share
/// names no key: refused).
fn find_one(
    token: &Token,
    s: &Session,
    class: ObjectClass,
    id: &[u8],
) -> Result<Option<ObjectHandle>, CryptoError> {
    let found = s
        .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])
        .map_err(|e| token.failure("finding a key", &e, CryptoError::Operation("find")))?;
    if found.len() > 1 {
        return Err(CryptoError::InvalidKey(format!(
            "{}: {} objects of one class share CKA_ID {}: a key must be named by a unique ID",
            token.describe(),
            found.len(),
            hex::encode(id)
        )));
    }
    Ok(found.first().copied())
}

/// What the token says about one key pair.
struct Pair {
    handle: ObjectHandle,
    label: String,
    spki: SubjectPublicKeyInfoOwned,
    kind: Kind,
}

/// Reads the key pair with `CKA_ID` `id`: the private object (exactly one),
/// its label, and the public key (from the public object with the same ID,
/// else, for RSA, from the private object).
fn read_pair(token: &Token, s: &Session, id: &[u8], label: &str) -> Result<Pair, CryptoError> {
    if id.is_empty() {
        return Err(CryptoError::InvalidKey(format!(
            "key '{label}' has no CKA_ID: a key on the token is named by a non-empty ID"
        )));
    }
    let handle = find_one(token, s, ObjectClass::PRIVATE_KEY, id)?.ok_or_else(|| {
        CryptoError::TokenUnavailable(format!(
            "{}: no private key '{label}' (CKA_ID {}) on it",
            token.describe(),
            hex::encode(id)
        ))
    })?;
    let read = |h, types: &[AttributeType]| {
        s.get_attributes(h, types)
            .map_err(|e| token.failure("reading a key", &e, CryptoError::Operation("read")))
    };
    let attrs = read(handle, &[AttributeType::KeyType, AttributeType::Label])?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    let actual_label = attrs
        .iter()
        .find_map(|a| match a {
            Attribute::Label(l) => Some(String::from_utf8_lossy(l).into_owned()),
            _ => None,
        })
        .unwrap_or_default();
    let public = find_one(token, s, ObjectClass::PUBLIC_KEY, id)?;
    let (spki, kind) = match key_type {
        Some(t) if t == KeyType::RSA => {
            let types = [AttributeType::Modulus, AttributeType::PublicExponent];
            let attrs = read(public.unwrap_or(handle), &types)?;
            let (Some(n), Some(e)) = (
                attr_bytes(&attrs, AttributeType::Modulus),
                attr_bytes(&attrs, AttributeType::PublicExponent),
            ) else {
                return Err(CryptoError::InvalidKey(format!(
                    "RSA key '{label}' on the token has no readable public key"
                )));
            };
            let pkcs1 = RsaPublicKey {
                modulus: UintRef::new(&n)?,
                exponent: UintRef::new(&e)?,
            }
            .to_der()?;
            let modulus_len = n.iter().skip_while(|b| **b == 0).count();
            (rsa_spki(&pkcs1)?, Kind::Rsa { modulus_len })
        }
        Some(t) if t == KeyType::EC => {
            let public = public.ok_or_else(|| {
                CryptoError::InvalidKey(format!(
                    "EC key '{label}' on the token has no public key object with its CKA_ID"
                ))
            })?;
            let attrs = read(public, &[AttributeType::EcParams, AttributeType::EcPoint])?;
            let params = attr_bytes(&attrs, AttributeType::EcParams).unwrap_or_default();
            let curve = ObjectIdentifier::from_der(&params).map_err(|_| {
                CryptoError::Unsupported("EC key on the token with unnamed curve".into())
            })?;
            let (sig_oid, field_len) = if curve == oids::SECP256R1 {
                (oids::ECDSA_WITH_SHA256, 32)
            } else if curve == oids::SECP384R1 {
                (oids::ECDSA_WITH_SHA384, 48)
            } else {
                return Err(CryptoError::Unsupported(format!("EC curve {curve}")));
            };
            let raw = attr_bytes(&attrs, AttributeType::EcPoint).unwrap_or_default();
            let point = if raw.len() == 1 + 2 * field_len && raw.first() == Some(&4) {
                raw
            } else {
                OctetString::from_der(&raw)?.as_bytes().to_vec()
            };
            (ec_spki(curve, &point)?, Kind::Ec { sig_oid, field_len })
        }
        _ => {
            return Err(CryptoError::Unsupported(format!(
                "key '{label}' on the token is neither RSA nor EC"
            )))
        }
    };
    Ok(Pair {
        handle,
        label: actual_label,
        spki,
        kind,
    })
}

impl TokenKey {
    /// Reads the key pair with `CKA_ID` `id` from the token (`label` is for
    /// messages until the token's own label is read).
    pub(super) fn load(token: Arc<Token>, id: Vec<u8>, label: String) -> Result<Self, CryptoError> {
        let (generation, pair) = token
            .with_session(|s, generation| Ok((generation, read_pair(&token, s, &id, &label)?)))?;
        Ok(TokenKey {
            token,
            id,
            label: pair.label,
            spki: pair.spki,
            kind: pair.kind,
            handle: Mutex::new(Some((generation, pair.handle))),
            padded_fallback: false,
        })
    }

    /// Allows PKCS#1 v1.5 decryption through the token's own unpadding when
    /// it has no raw RSA (an agent's smart card; never the exchange key).
    pub fn allow_padded_decryption(mut self) -> Self {
        self.padded_fallback = true;
        self
    }

    /// The key's `CKA_ID`.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The key's `CKA_LABEL`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The token the key is on.
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// Runs `op` with the private key's handle; a handle the token no longer
    /// knows is looked up again once.
    fn with_key<T>(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
        what: &str,
        other: impl Fn(&CkError) -> CryptoError,
    ) -> Result<T, CryptoError> {
        self.with_key_as(op, false, what, other)
    }

    /// [`TokenKey::with_key`] for a decryption: its failures are classified
    /// narrowly ([`super::device_gone`]).
    fn decrypt_with_key<T>(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
        other: impl Fn(&CkError) -> CryptoError,
    ) -> Result<T, CryptoError> {
        self.with_key_as(op, true, "decrypting", other)
    }

    fn with_key_as<T>(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
        decrypting: bool,
        what: &str,
        other: impl Fn(&CkError) -> CryptoError,
    ) -> Result<T, CryptoError> {
        self.token.with_session(|s, generation| {
            let cached = self.handle.lock().ok().and_then(|h| *h);
            let handle = match cached {
                Some((g, h)) if g == generation => h,
                _ => self.lookup(s, generation)?,
            };
            let out = match op(s, handle) {
                Err(CkError::Pkcs11(
                    RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
                    _,
                )) => {
                    let fresh = self.lookup(s, generation)?;
                    op(s, fresh)
                }
                other => other,
            };
            out.map_err(|e| {
                if decrypting {
                    self.token.decrypt_failure(&e, other(&e))
                } else {
                    self.token.failure(what, &e, other(&e))
                }
            })
        })
    }

    /// [`TokenKey::with_key`] for signatures: a failure the token does not
    /// explain (`CKR_GENERAL_ERROR` from a token whose files went away, say)
    /// is checked by looking for the key again, so that a key or token that
    /// is gone reads as [`CryptoError::TokenUnavailable`]. Signatures only:
    /// a decryption's failure must take no extra step (RFC 3218).
    fn sign_with_key(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> Result<Vec<u8>, CkError>,
        other: CryptoError,
    ) -> Result<Vec<u8>, CryptoError> {
        match self.with_key(op, "signing", |_| {
            CryptoError::Operation("signature on the token")
        }) {
            Err(CryptoError::Operation(_)) => {
                self.token
                    .with_session(|s, g| self.lookup(s, g).map(|_| ()))?;
                Err(other)
            }
            out => out,
        }
    }

    /// Finds the private key again by its `CKA_ID` (after the module was
    /// re-initialised, or the token said the handle is stale), and requires
    /// the same public key: an ID that now names another key is refused.
    fn lookup(&self, s: &Session, generation: u64) -> Result<ObjectHandle, CryptoError> {
        let pair = match read_pair(&self.token, s, &self.id, &self.label) {
            Ok(p) => p,
            Err(CryptoError::TokenUnavailable(_)) => {
                return Err(CryptoError::TokenUnavailable(format!(
                    "{}: the private key '{}' is no longer on it",
                    self.token.describe(),
                    self.label
                )))
            }
            Err(e) => return Err(e),
        };
        if pair.spki != self.spki {
            return Err(CryptoError::TokenUnavailable(format!(
                "{}: CKA_ID {} now names another key than '{}'",
                self.token.describe(),
                hex::encode(&self.id),
                self.label
            )));
        }
        if let Ok(mut slot) = self.handle.lock() {
            *slot = Some((generation, pair.handle));
        }
        Ok(pair.handle)
    }

    /// The certificate stored on the token with the key's `CKA_ID`, if any
    /// (as a smart card keeps its certificate beside its key).
    pub fn certificate(&self) -> Result<Option<Vec<u8>>, CryptoError> {
        self.token.with_session(|s, _| {
            let Some(h) = find_one(&self.token, s, ObjectClass::CERTIFICATE, &self.id)? else {
                return Ok(None);
            };
            let attrs = s.get_attributes(h, &[AttributeType::Value]).map_err(|e| {
                self.token
                    .failure("reading a certificate", &e, CryptoError::Operation("read"))
            })?;
            Ok(attrs.into_iter().find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            }))
        })
    }

    /// How the private key is protected (`CKA_SENSITIVE`, `CKA_EXTRACTABLE`,
    /// `CKA_NEVER_EXTRACTABLE`).
    pub fn protection(&self) -> Result<KeyProtection, CryptoError> {
        let types = [
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
            AttributeType::Sign,
            AttributeType::Decrypt,
            AttributeType::Derive,
            AttributeType::Unwrap,
        ];
        let attrs = self.with_key(
            |s, h| s.get_attributes(h, &types),
            "reading key attributes",
            |_| CryptoError::Operation("reading key attributes"),
        )?;
        Ok(KeyProtection {
            sensitive: attr_bool(&attrs, AttributeType::Sensitive),
            extractable: attr_bool(&attrs, AttributeType::Extractable),
            never_extractable: attr_bool(&attrs, AttributeType::NeverExtractable),
            sign: attr_bool(&attrs, AttributeType::Sign),
            decrypt: attr_bool(&attrs, AttributeType::Decrypt),
            derive: attr_bool(&attrs, AttributeType::Derive),
            unwrap: attr_bool(&attrs, AttributeType::Unwrap),
        })
    }

    /// Turns signing off (`CKA_SIGN` false) once an exchange key has signed
    /// its own request: from then on it only decrypts. Best effort: a token
    /// that refuses the change keeps the key as generated.
    pub fn stop_signing(&self) -> Result<(), CryptoError> {
        self.with_key(
            |s, h| s.update_attributes(h, &[Attribute::Sign(false)]),
            "changing key attributes",
            |_| CryptoError::Operation("changing key attributes"),
        )
    }

    /// Removes both halves of the key pair from the token.
    pub fn destroy(&self) -> Result<(), CryptoError> {
        self.token.with_session(|s, _| {
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                let found = s
                    .find_objects(&[Attribute::Class(class), Attribute::Id(self.id.clone())])
                    .map_err(|e| {
                        self.token
                            .failure("finding a key", &e, CryptoError::Operation("find"))
                    })?;
                for h in found {
                    s.destroy_object(h).map_err(|e| {
                        self.token
                            .failure("removing a key", &e, CryptoError::Operation("destroy"))
                    })?;
                }
            }
            Ok(())
        })?;
        if let Ok(mut slot) = self.handle.lock() {
            *slot = None;
        }
        Ok(())
    }

    fn rsa_decrypt_raw(
        &self,
        encrypted: &[u8],
        modulus_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let raw = self.decrypt_with_key(|s, h| s.decrypt(&Mechanism::RsaX509, h, encrypted),
            |e| match e {
                CkError::Pkcs11(RvError::MechanismInvalid, _) => CryptoError::Unsupported(format!(
                    "{}: the token has no raw RSA (CKM_RSA_X_509), which the exchange key needs to \
                     keep PKCS#1 v1.5 padding failures indistinguishable (RFC 3218); use a token \
                     that offers it, or keep exchange keys in software (archival.exchange_on_token = false)",
                    self.token.describe()
                )),
                _ => CryptoError::Decrypt,
            },
        )?;
        let raw = Zeroizing::new(raw);
        if raw.len() > modulus_len {
            return Err(CryptoError::Decrypt);
        }
        // Left-pad to the modulus length: a token may drop leading zeros.
        let mut em = Zeroizing::new(vec![0u8; modulus_len - raw.len()]);
        em.extend_from_slice(&raw);
        Ok(em)
    }
}

impl KeyHandle for TokenKey {
    fn public_key_info(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.kind {
            Kind::Rsa { .. } => AlgorithmIdentifierOwned {
                oid: oids::SHA256_WITH_RSA,
                parameters: Some(der::asn1::Any::from(der::asn1::Null)),
            },
            Kind::Ec { sig_oid, .. } => AlgorithmIdentifierOwned {
                oid: sig_oid,
                parameters: None,
            },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self.kind {
            Kind::Rsa { .. } => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(&crate::digest::sha256(message));
                self.sign_with_key(
                    |s, h| s.sign(&Mechanism::RsaPkcs, h, &info),
                    CryptoError::Operation("RSA signature on the token"),
                )
            }
            Kind::Ec { sig_oid, field_len } => {
                let hash = if sig_oid == oids::ECDSA_WITH_SHA384 {
                    crate::digest::digest_by_oid(&oids::SHA384, message)?
                } else {
                    crate::digest::sha256(message).to_vec()
                };
                let raw = self.sign_with_key(
                    |s, h| s.sign(&Mechanism::Ecdsa, h, &hash),
                    CryptoError::Operation("ECDSA signature on the token"),
                )?;
                if raw.len() != 2 * field_len {
                    return Err(CryptoError::Operation(
                        "ECDSA signature length from the token",
                    ));
                }
                let (r, s) = raw.split_at(field_len);
                Ok(EcdsaSignature {
                    r: UintRef::new(r)?,
                    s: UintRef::new(s)?,
                }
                .to_der()?)
            }
        }
    }
}

impl DecryptionKey for TokenKey {
    fn recipient_public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn decrypt_key(
        &self,
        transport: KeyTransport,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Kind::Rsa { modulus_len } = self.kind else {
            return Err(CryptoError::Unsupported(
                "key transport needs an RSA key".into(),
            ));
        };
        match transport {
            KeyTransport::RsaPkcs1v15 => match self.rsa_decrypt_raw(encrypted, modulus_len) {
                Ok(em) => pkcs1_v15_unpad(&em),
                Err(CryptoError::Unsupported(_)) if self.padded_fallback => self
                    .decrypt_with_key(
                        |s, h| s.decrypt(&Mechanism::RsaPkcs, h, encrypted),
                        |_| CryptoError::Decrypt,
                    )
                    .map(Zeroizing::new),
                Err(e) => Err(e),
            },
            KeyTransport::RsaOaepSha1 | KeyTransport::RsaOaepSha256 => {
                let (hash, mgf) = if transport == KeyTransport::RsaOaepSha1 {
                    (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1)
                } else {
                    (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256)
                };
                let params = PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty());
                self.decrypt_with_key(
                    |s, h| s.decrypt(&Mechanism::RsaPkcsOaep(params), h, encrypted),
                    |e| match e {
                        CkError::Pkcs11(
                            RvError::MechanismInvalid | RvError::MechanismParamInvalid,
                            _,
                        ) => CryptoError::Unsupported(format!(
                            "{}: the token does not offer {transport:?}",
                            self.token.describe()
                        )),
                        _ => CryptoError::Decrypt,
                    },
                )
                .map(Zeroizing::new)
            }
        }
    }

    fn unwrap_agreed_key(
        &self,
        originator_point: &[u8],
        key_enc_alg: &AlgorithmIdentifierOwned,
        ukm: Option<&[u8]>,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Kind::Ec { field_len, .. } = self.kind else {
            return Err(CryptoError::Unsupported(
                "key agreement needs an EC key".into(),
            ));
        };
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen((field_len as u64).into()),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let z = self.decrypt_with_key(
            |s, h| {
                let params = Ecdh1DeriveParams::new(EcKdf::null(), originator_point);
                let secret = s.derive_key(&Mechanism::Ecdh1Derive(params), h, &template)?;
                let value = s.get_attributes(secret, &[AttributeType::Value]);
                let _ = s.destroy_object(secret);
                Ok(value?
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::Value(v) => Some(Zeroizing::new(v)),
                        _ => None,
                    })
                    .unwrap_or_default())
            },
            |_| CryptoError::Decrypt,
        )?;
        if z.len() != field_len {
            return Err(CryptoError::Decrypt);
        }
        crate::kari::unwrap_with_secret(&self.spki, &z, key_enc_alg, ukm, wrapped)
    }
}

impl PrivateKey for TokenKey {
    fn is_rsa(&self) -> bool {
        matches!(self.kind, Kind::Rsa { .. })
    }

    fn token_id(&self) -> Option<Vec<u8>> {
        Some(self.id.clone())
    }

    fn export_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Err(CryptoError::Unsupported(format!(
            "the key '{}' is on {} and cannot leave it",
            self.label,
            self.token.describe()
        )))
    }
}
