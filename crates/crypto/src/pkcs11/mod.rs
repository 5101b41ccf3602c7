//! Keys on a PKCS#11 token (an HSM, a smart card, SoftHSM2).
//!
//! A [`Token`] is one logged-in token of one module, found by its label, with
//! a pool of sessions sized to the cores; a [`TokenKey`] is a key pair on it,
//! named by `CKA_ID` (and `CKA_LABEL`), that signs and decrypts through the
//! token and never leaves it. Both plug into the same seams as software keys
//! ([`KeyHandle`](crate::KeyHandle), [`DecryptionKey`](crate::DecryptionKey),
//! [`PrivateKey`](crate::PrivateKey)).
//!
//! Failures say which module, token and key (never the PIN) and come in two
//! kinds: [`CryptoError::TokenUnavailable`] (no token, no key, device gone:
//! may pass once the token is back) and [`CryptoError::TokenLogin`] (the PIN
//! was refused). When the token goes away the pool drops its sessions and
//! the next operation looks for the token again, so a service recovers by
//! itself when it is back.

mod key;
mod pool;
pub mod softhsm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::Session;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::key::KeySpec;

pub use key::{KeyProtection, KeyUse, TokenKey};

/// A loaded module. Every operation holds `lock` for reading; looking for
/// tokens again ([`Module::rescan`]) holds it for writing, so the library is
/// never finalised under a running call. `generation` counts initialisations:
/// sessions and object handles of an older one are never used (nor closed:
/// their numbers may belong to new sessions).
pub(crate) struct Module {
    ctx: Pkcs11,
    path: PathBuf,
    lock: RwLock<()>,
    generation: AtomicU64,
    last_rescan: Mutex<Option<Instant>>,
}

/// How often a module is re-initialised to look for a token that is not there.
const RESCAN_EVERY: Duration = Duration::from_secs(5);

impl Module {
    /// The module at `path`, loaded and initialised once per process (a
    /// second `C_Initialize` of a library fails): the CA token and an
    /// agent's token may share one.
    fn get(path: &Path) -> Result<Arc<Module>, CryptoError> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let mut map = MODULES
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| CryptoError::Operation("PKCS#11 module table"))?;
        if let Some(m) = map.get(path) {
            return Ok(m.clone());
        }
        let ctx = Pkcs11::new(path).map_err(|e| {
            CryptoError::TokenUnavailable(format!(
                "cannot load PKCS#11 module {}: {e}",
                path.display()
            ))
        })?;
        let module = Arc::new(Module {
            ctx,
            path: path.to_path_buf(),
            lock: RwLock::new(()),
            generation: AtomicU64::new(0),
            last_rescan: Mutex::new(None),
        });
        module.initialize()?;
        map.insert(path.to_path_buf(), module.clone());
        Ok(module)
    }

    fn initialize(&self) -> Result<(), CryptoError> {
        match self
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
            Err(e) => Err(CryptoError::TokenUnavailable(format!(
                "cannot initialise PKCS#11 module {}: {}",
                self.path.display(),
                rv_name(&e)
            ))),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Finalises and initialises the module again, at most every
    /// [`RESCAN_EVERY`], once no call is running: some modules (SoftHSM2
    /// among them) only see tokens that were there when they were
    /// initialised, so a token plugged back in (or made after start) is
    /// found only this way. Returns whether it did.
    fn rescan(&self) -> Result<bool, CryptoError> {
        let _writer = self
            .lock
            .write()
            .map_err(|_| CryptoError::Operation("PKCS#11 module lock"))?;
        let mut last = self
            .last_rescan
            .lock()
            .map_err(|_| CryptoError::Operation("PKCS#11 module lock"))?;
        if last.is_some_and(|t| t.elapsed() < RESCAN_EVERY) {
            return Ok(false);
        }
        *last = Some(Instant::now());
        // A failing C_Finalize leaves the library initialised, which
        // `initialize` accepts.
        let _ = self.ctx.clone().finalize();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.initialize()?;
        Ok(true)
    }
}

/// The narrow form of [`token_gone`] for failures of a decryption: only a
/// token that is not there or a session that no longer exists. A module
/// that reports something about the ciphertext as a device error must not
/// turn it into an answer of its own (RFC 3218).
pub(crate) fn device_gone(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}

/// The PKCS#11 return value's name (`PinIncorrect`, `DeviceRemoved`, ...)
/// or a short description: never the long text, never anything secret.
pub(crate) fn rv_name(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, func) => format!("{rv:?} in {func:?}"),
        other => format!("{other:?}"),
    }
}

/// Whether a failure means the token (or the session) is gone, so that the
/// pool should start again from finding the token. Only answers about the
/// device, never about the data: `CKR_GENERAL_ERROR` and data errors are the
/// operation's own failure (a decryption's then takes the one error path).
pub(crate) fn token_gone(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SlotIdInvalid
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}

/// Where a token is: the module, the token label, the PIN.
pub struct TokenConfig {
    /// Path of the PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label (`CK_TOKEN_INFO.label`, trailing blanks ignored).
    pub token_label: String,
    /// The user PIN (zeroized on drop; never printed).
    pub pin: Zeroizing<String>,
    /// Most sessions open at once (0: one per core).
    pub max_sessions: usize,
    /// The token's serial number, when known (recorded at `init`): a token
    /// with the right label but another serial is not this token, and is
    /// never given the PIN.
    pub token_serial: Option<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<hidden>")
            .finish()
    }
}

/// A logged-in token with a pool of sessions.
pub struct Token {
    ctx: Pkcs11,
    lib: Arc<Module>,
    module: PathBuf,
    label: String,
    serial: Option<String>,
    pin: cryptoki::types::AuthPin,
    pool: pool::Pool,
    /// Set once the token refused the PIN: it is not offered again (a real
    /// token locks its PIN after a few wrong tries), every use fails at once
    /// until the process starts again with the right PIN.
    pin_refused: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Token(module {}, token '{}')",
            self.module.display(),
            self.label
        )
    }
}

impl Token {
    /// Loads the module; the token itself is looked for (and logged into) on
    /// first use, so a CA whose token is absent still opens and answers
    /// what needs no key. [`Token::check`] looks now.
    pub fn open(config: TokenConfig) -> Result<Arc<Token>, CryptoError> {
        let lib = Module::get(&config.module)?;
        let max = if config.max_sessions == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            config.max_sessions
        };
        Ok(Arc::new(Token {
            ctx: lib.ctx.clone(),
            lib,
            module: config.module,
            label: config.token_label,
            serial: config.token_serial,
            pin: cryptoki::types::AuthPin::from(config.pin.as_str()),
            pool: pool::Pool::new(max),
            pin_refused: Default::default(),
        }))
    }

    /// The module path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Finds the token and logs in now (a clear error when it is absent or
    /// the PIN is refused).
    pub fn check(&self) -> Result<(), CryptoError> {
        self.with_session(|_, _| Ok(()))
    }

    fn describe(&self) -> String {
        format!("token '{}' (module {})", self.label, self.module.display())
    }

    /// The slot holding the token with our label, if present.
    fn find_slot(&self) -> Result<Option<cryptoki::slot::Slot>, CryptoError> {
        let slots = self.ctx.get_slots_with_token().map_err(|e| {
            CryptoError::TokenUnavailable(format!("{}: {}", self.describe(), rv_name(&e)))
        })?;
        Ok(slots.into_iter().find(|slot| {
            self.ctx.get_token_info(*slot).is_ok_and(|info| {
                info.label().trim_end() == self.label
                    && self
                        .serial
                        .as_deref()
                        .is_none_or(|s| info.serial_number().trim_end() == s)
            })
        }))
    }

    /// Opens one logged-in read-write session on the token with our label.
    fn open_session(&self) -> Result<Session, CryptoError> {
        if self.pin_refused.load(Ordering::Acquire) {
            return Err(CryptoError::TokenLogin(format!(
                "{}: the PIN was refused earlier and is not offered again (a token locks \
                 its PIN after a few wrong tries): set the right PIN and restart",
                self.describe()
            )));
        }
        let slot = self.find_slot()?.ok_or_else(|| {
            CryptoError::TokenUnavailable(format!("{}: no such token is present", self.describe()))
        })?;
        let session = self.ctx.open_rw_session(slot).map_err(|e| {
            CryptoError::TokenUnavailable(format!("{}: {}", self.describe(), rv_name(&e)))
        })?;
        match session.login(cryptoki::session::UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(
                e @ CkError::Pkcs11(
                    RvError::PinIncorrect
                    | RvError::PinLocked
                    | RvError::PinExpired
                    | RvError::PinInvalid
                    | RvError::PinLenRange,
                    _,
                ),
            ) => {
                self.pin_refused.store(true, Ordering::Release);
                Err(CryptoError::TokenLogin(format!(
                    "{}: the PIN was refused ({})",
                    self.describe(),
                    rv_name(&e)
                )))
            }
            Err(e) => Err(CryptoError::TokenUnavailable(format!(
                "{}: login failed ({})",
                self.describe(),
                rv_name(&e)
            ))),
        }
    }

    /// Runs `f` on a pooled session (with the module's generation, for
    /// object handles kept between calls). A token that is not there is
    /// looked for once more after re-initialising the module
    /// ([`Module::rescan`]). A failure that means the token or the session
    /// is gone empties the pool (the next call finds the token again) and is
    /// [`CryptoError::TokenUnavailable`]; other failures are `f`'s.
    pub(crate) fn with_session<T>(
        &self,
        f: impl FnOnce(&Session, u64) -> Result<T, CryptoError>,
    ) -> Result<T, CryptoError> {
        let mut rescanned = false;
        loop {
            let reader = self
                .lib
                .lock
                .read()
                .map_err(|_| CryptoError::Operation("PKCS#11 module lock"))?;
            let generation = self.lib.generation();
            let lease = match self.pool.take(generation, || self.open_session()) {
                Ok(lease) => lease,
                Err(CryptoError::TokenUnavailable(_)) if !rescanned => {
                    drop(reader);
                    rescanned = true;
                    self.lib.rescan()?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(session) = lease.session() else {
                return Err(CryptoError::Operation("PKCS#11 session pool"));
            };
            let out = f(session, generation);
            match &out {
                Err(CryptoError::TokenUnavailable(_)) => self.pool.discard(lease, generation),
                _ => self.pool.give_back(lease, generation),
            }
            return out;
        }
    }

    /// Maps a failure of an operation on the token: the token gone is
    /// [`CryptoError::TokenUnavailable`], anything else `other`.
    pub(crate) fn failure(&self, what: &str, e: &CkError, other: CryptoError) -> CryptoError {
        self.classify(what, e, token_gone(e), other)
    }

    /// [`Token::failure`] for a decryption ([`device_gone`]).
    pub(crate) fn decrypt_failure(&self, e: &CkError, other: CryptoError) -> CryptoError {
        self.classify("decrypting", e, device_gone(e), other)
    }

    fn classify(&self, what: &str, e: &CkError, gone: bool, other: CryptoError) -> CryptoError {
        if gone {
            CryptoError::TokenUnavailable(format!("{}: {what}: {}", self.describe(), rv_name(e)))
        } else {
            other
        }
    }

    /// Whether the token holds a private key labelled `label`.
    pub fn has_key(&self, label: &str) -> Result<bool, CryptoError> {
        self.with_session(|s, _| {
            s.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map(|found| !found.is_empty())
            .map_err(|e| self.failure("finding a key", &e, CryptoError::Operation("find")))
        })
    }

    /// The private key labelled `label` on the token, with its public key.
    pub fn find_key(self: &Arc<Self>, label: &str) -> Result<TokenKey, CryptoError> {
        let id = self.with_session(|s, _| {
            let found = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .map_err(|e| self.failure("finding a key", &e, CryptoError::Operation("find")))?;
            let [handle] = found[..] else {
                return Err(CryptoError::TokenUnavailable(format!(
                    "{}: {} private keys labelled '{label}' (need exactly one)",
                    self.describe(),
                    found.len()
                )));
            };
            let attrs = s
                .get_attributes(handle, &[AttributeType::Id])
                .map_err(|e| self.failure("reading a key", &e, CryptoError::Operation("read")))?;
            Ok(attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Id(id) => Some(id),
                    _ => None,
                })
                .unwrap_or_default())
        })?;
        self.key_by_id(&id, label)
    }

    /// The key pair with `CKA_ID` `id` (`label` is for messages and status).
    pub fn key_by_id(self: &Arc<Self>, id: &[u8], label: &str) -> Result<TokenKey, CryptoError> {
        TokenKey::load(self.clone(), id.to_vec(), label.to_string())
    }

    /// Generates a key pair on the token: private half `CKA_TOKEN`,
    /// `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, allowed only
    /// `usage`; a random 16-byte `CKA_ID`; `label` on both halves.
    pub fn generate(
        self: &Arc<Self>,
        spec: KeySpec,
        label: &str,
        usage: KeyUse,
    ) -> Result<TokenKey, CryptoError> {
        let id = crate::random::random_bytes(16)?;
        let common = |public: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
                Attribute::Private(!public),
            ]
        };
        let mut public = common(true);
        let mut private = common(false);
        private.extend([
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(usage != KeyUse::Decrypt),
            Attribute::Decrypt(usage != KeyUse::Sign && spec.is_rsa()),
            Attribute::Derive(usage != KeyUse::Sign && !spec.is_rsa()),
            Attribute::Unwrap(false),
        ]);
        public.extend([
            Attribute::Verify(usage != KeyUse::Decrypt),
            Attribute::Wrap(false),
        ]);
        let mechanism = if spec.is_rsa() {
            let bits: u64 = match spec {
                KeySpec::Rsa3072 => 3072,
                KeySpec::Rsa4096 => 4096,
                _ => 2048,
            };
            public.extend([
                Attribute::KeyType(KeyType::RSA),
                Attribute::ModulusBits(bits.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Encrypt(usage != KeyUse::Sign),
            ]);
            private.push(Attribute::KeyType(KeyType::RSA));
            cryptoki::mechanism::Mechanism::RsaPkcsKeyPairGen
        } else {
            let curve = if spec == KeySpec::P384 {
                lockbox_codec::oids::SECP384R1
            } else {
                lockbox_codec::oids::SECP256R1
            };
            public.extend([
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(der::Encode::to_der(&curve)?),
            ]);
            private.push(Attribute::KeyType(KeyType::EC));
            cryptoki::mechanism::Mechanism::EccKeyPairGen
        };
        self.with_session(|s, _| {
            s.generate_key_pair(&mechanism, &public, &private)
                .map(|_| ())
                .map_err(|e| {
                    self.failure(
                        "generating a key pair",
                        &e,
                        CryptoError::Unsupported(format!(
                            "{}: the token did not generate a {spec} key: {}",
                            self.describe(),
                            rv_name(&e)
                        )),
                    )
                })
        })?;
        self.key_by_id(&id, label)
    }

    /// The slot a session is on.
    fn slot_of(&self, s: &Session) -> Result<cryptoki::slot::Slot, CryptoError> {
        Ok(s.get_session_info()
            .map_err(|e| {
                self.failure(
                    "reading the session",
                    &e,
                    CryptoError::Operation("session info"),
                )
            })?
            .slot_id())
    }

    /// The token's serial number (`CK_TOKEN_INFO.serialNumber`).
    pub fn serial_number(&self) -> Result<String, CryptoError> {
        self.with_session(|s, _| {
            let slot = self.slot_of(s)?;
            let info = self.ctx.get_token_info(slot).map_err(|e| {
                self.failure(
                    "reading the token",
                    &e,
                    CryptoError::Operation("token info"),
                )
            })?;
            Ok(info.serial_number().trim_end().to_string())
        })
    }

    /// Whether the token offers raw RSA (`CKM_RSA_X_509`), which an
    /// exchange key on it needs (RFC 3218).
    pub fn supports_raw_rsa(&self) -> Result<bool, CryptoError> {
        self.supports(cryptoki::mechanism::MechanismType::RSA_X_509)
    }

    /// Whether the token offers `mechanism`.
    pub(crate) fn supports(
        &self,
        mechanism: cryptoki::mechanism::MechanismType,
    ) -> Result<bool, CryptoError> {
        self.with_session(|s, _| {
            let slot = self.slot_of(s)?;
            // Asked for the one mechanism (the whole list would name
            // vendor mechanisms the library does not know, noisily).
            match self.ctx.get_mechanism_info(slot, mechanism) {
                Ok(_) => Ok(true),
                Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => Ok(false),
                Err(e) => Err(self.failure(
                    "reading mechanisms",
                    &e,
                    CryptoError::Operation("mechanism info"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests;
