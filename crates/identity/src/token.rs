//! Encrypted, stateless tokens (Fernet-style) and their key repository.
//!
//! A token is `base64url(0x01 || nonce || XChaCha20-Poly1305(payload))`.
//! Nothing about a token is stored: validation decrypts it, checks expiry
//! and the revocation index, and resolves the user and scope (cached).
//!
//! Keys live in `<state>/token-keys/` as Keystone's fernet repository does:
//! file `0` is the staged key, the highest number is the primary (used to
//! encrypt), the others are secondary (only decrypt). Rotation promotes the
//! staged key, stages a new one and drops the oldest beyond `MAX_KEYS`.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Keys kept: staged + primary + one secondary.
pub const MAX_KEYS: usize = 3;
const VERSION: u8 = 1;

/// Authentication methods, as a bit set in the payload.
pub const METHOD_PASSWORD: u8 = 1;
pub const METHOD_TOKEN: u8 = 2;
pub const METHOD_APP_CRED: u8 = 4;

pub fn method_names(bits: u8) -> Vec<&'static str> {
    let mut v = Vec::new();
    if bits & METHOD_PASSWORD != 0 {
        v.push("password");
    }
    if bits & METHOD_TOKEN != 0 {
        v.push("token");
    }
    if bits & METHOD_APP_CRED != 0 {
        v.push("application_credential");
    }
    v
}

/// What a token is scoped to, by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScopeRef {
    Unscoped,
    Project(String),
    Domain(String),
    System,
}

/// The decrypted content of a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub methods: u8,
    pub user_id: String,
    pub scope: ScopeRef,
    pub issued_at: i64,
    pub expires_at: i64,
    /// This token's audit id first, then the one of the token it came from.
    pub audit_ids: Vec<[u8; 16]>,
    pub app_cred_id: Option<String>,
}

pub fn audit_id_str(a: &[u8; 16]) -> String {
    URL_SAFE_NO_PAD.encode(a)
}

pub fn new_audit_id() -> [u8; 16] {
    let mut a = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut a);
    a
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token was not made by any current key")]
    UnknownKey,
    #[error("key repository {path}: {source}")]
    Repository {
        path: PathBuf,
        source: std::io::Error,
    },
}

// ---- payload encoding ----

fn put_id(out: &mut Vec<u8>, id: &str) {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        out.push(1);
        out.extend_from_slice(&hex::decode(id).unwrap_or_default());
    } else {
        let b = id.as_bytes();
        out.push(0);
        out.push(b.len().min(255) as u8);
        out.extend_from_slice(&b[..b.len().min(255)]);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.0.len() < n {
            return Err(TokenError::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, TokenError> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64, TokenError> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes(
            b.try_into().map_err(|_| TokenError::Malformed)?,
        ))
    }
    fn id(&mut self) -> Result<String, TokenError> {
        match self.u8()? {
            1 => Ok(hex::encode(self.take(16)?)),
            0 => {
                let n = self.u8()? as usize;
                String::from_utf8(self.take(n)?.to_vec()).map_err(|_| TokenError::Malformed)
            }
            _ => Err(TokenError::Malformed),
        }
    }
}

impl Payload {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.push(self.methods);
        put_id(&mut out, &self.user_id);
        match &self.scope {
            ScopeRef::Unscoped => out.push(0),
            ScopeRef::Project(id) => {
                out.push(1);
                put_id(&mut out, id);
            }
            ScopeRef::Domain(id) => {
                out.push(2);
                put_id(&mut out, id);
            }
            ScopeRef::System => out.push(3),
        }
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.push(self.audit_ids.len().min(2) as u8);
        for a in self.audit_ids.iter().take(2) {
            out.extend_from_slice(a);
        }
        match &self.app_cred_id {
            Some(id) => {
                out.push(1);
                put_id(&mut out, id);
            }
            None => out.push(0),
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Payload, TokenError> {
        let mut r = Reader(bytes);
        let methods = r.u8()?;
        let user_id = r.id()?;
        let scope = match r.u8()? {
            0 => ScopeRef::Unscoped,
            1 => ScopeRef::Project(r.id()?),
            2 => ScopeRef::Domain(r.id()?),
            3 => ScopeRef::System,
            _ => return Err(TokenError::Malformed),
        };
        let issued_at = r.i64()?;
        let expires_at = r.i64()?;
        let n = r.u8()?;
        let mut audit_ids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            audit_ids.push(r.take(16)?.try_into().map_err(|_| TokenError::Malformed)?);
        }
        let app_cred_id = if r.u8()? == 1 { Some(r.id()?) } else { None };
        if !r.0.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(Payload {
            methods,
            user_id,
            scope,
            issued_at,
            expires_at,
            audit_ids,
            app_cred_id,
        })
    }
}

// ---- key repository ----

/// The keys in use, primary first.
pub struct TokenKeys {
    dir: Option<PathBuf>,
    /// (index, cipher), sorted with the primary first.
    keys: Vec<(u32, XChaCha20Poly1305)>,
}

impl TokenKeys {
    /// Loads `dir`, creating the staged and first primary keys if it is empty.
    pub fn open(dir: &Path) -> Result<TokenKeys, TokenError> {
        let err = |source| TokenError::Repository {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        set_private(dir, 0o700);
        if Self::indexes(dir).map_err(err)?.is_empty() {
            write_key(dir, 0).map_err(err)?;
            write_key(dir, 1).map_err(err)?;
        }
        Self::load(dir)
    }

    /// Keys held only in memory (tests, benchmarks).
    pub fn ephemeral() -> TokenKeys {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        TokenKeys {
            dir: None,
            keys: vec![(1, XChaCha20Poly1305::new((&k).into()))],
        }
    }

    fn indexes(dir: &Path) -> std::io::Result<Vec<u32>> {
        let mut v: Vec<u32> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    fn load(dir: &Path) -> Result<TokenKeys, TokenError> {
        let err = |source| TokenError::Repository {
            path: dir.to_owned(),
            source,
        };
        let mut keys = Vec::new();
        for i in Self::indexes(dir).map_err(err)?.into_iter().rev() {
            let text = std::fs::read_to_string(dir.join(i.to_string())).map_err(err)?;
            let raw = URL_SAFE_NO_PAD
                .decode(text.trim())
                .map_err(|_| TokenError::Malformed)?;
            if raw.len() != 32 {
                return Err(TokenError::Malformed);
            }
            keys.push((i, XChaCha20Poly1305::new(raw.as_slice().into())));
        }
        Ok(TokenKeys {
            dir: Some(dir.to_owned()),
            keys,
        })
    }

    /// Promotes the staged key to primary, stages a new key, and removes the
    /// oldest secondary keys beyond [`MAX_KEYS`]. Returns the new primary.
    pub fn rotate(dir: &Path) -> Result<u32, TokenError> {
        let err = |source| TokenError::Repository {
            path: dir.to_owned(),
            source,
        };
        Self::open(dir)?;
        let idx = Self::indexes(dir).map_err(err)?;
        let next = idx.last().copied().unwrap_or(0) + 1;
        std::fs::rename(dir.join("0"), dir.join(next.to_string())).map_err(err)?;
        write_key(dir, 0).map_err(err)?;
        let mut idx = Self::indexes(dir).map_err(err)?;
        while idx.len() > MAX_KEYS {
            // idx[0] is the staged key; idx[1] the oldest secondary.
            let old = idx.remove(1);
            std::fs::remove_file(dir.join(old.to_string())).map_err(err)?;
        }
        Ok(next)
    }

    /// Re-reads the repository after a rotation by another process.
    pub fn reload(&mut self) -> Result<(), TokenError> {
        if let Some(dir) = self.dir.clone() {
            *self = Self::load(&dir)?;
        }
        Ok(())
    }

    pub fn primary_index(&self) -> u32 {
        self.keys.first().map(|k| k.0).unwrap_or(0)
    }

    pub fn seal(&self, p: &Payload) -> String {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let (_, cipher) = &self.keys[0];
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), p.encode().as_slice())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 24 + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        URL_SAFE_NO_PAD.encode(out)
    }

    pub fn open_token(&self, token: &str) -> Result<Payload, TokenError> {
        if token.len() > 1024 {
            return Err(TokenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        if raw.len() < 1 + 24 + 16 || raw[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let nonce = XNonce::from_slice(&raw[1..25]);
        for (_, cipher) in &self.keys {
            if let Ok(plain) = cipher.decrypt(nonce, &raw[25..]) {
                return Payload::decode(&plain);
            }
        }
        Err(TokenError::UnknownKey)
    }
}

fn write_key(dir: &Path, index: u32) -> std::io::Result<()> {
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    let path = dir.join(index.to_string());
    let tmp = dir.join(format!(".{index}.tmp"));
    std::fs::write(&tmp, URL_SAFE_NO_PAD.encode(k))?;
    set_private(&tmp, 0o600);
    std::fs::rename(tmp, path)
}

fn set_private(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            methods: METHOD_PASSWORD | METHOD_TOKEN,
            user_id: "0123456789abcdef0123456789abcdef".into(),
            scope: ScopeRef::Project("default".into()),
            issued_at: 1,
            expires_at: 2,
            audit_ids: vec![new_audit_id(), new_audit_id()],
            app_cred_id: Some("ffffffffffffffffffffffffffffffff".into()),
        }
    }

    #[test]
    fn seal_and_open_round_trip() {
        let keys = TokenKeys::ephemeral();
        let p = payload();
        let t = keys.seal(&p);
        assert!(t.len() < 255, "token is {} chars", t.len());
        assert_eq!(keys.open_token(&t).unwrap(), p);
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let keys = TokenKeys::ephemeral();
        let t = keys.seal(&payload());
        let mut bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(keys.open_token(&URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        assert!(TokenKeys::ephemeral().open_token(&t).is_err());
        assert!(keys.open_token("not a token").is_err());
        assert!(keys.open_token("").is_err());
    }

    #[test]
    fn rotation_keeps_recent_tokens_valid() {
        let dir = std::env::temp_dir().join(format!("ferro-keys-{}", uuid::Uuid::new_v4()));
        let k1 = TokenKeys::open(&dir).unwrap();
        let t1 = k1.seal(&payload());
        TokenKeys::rotate(&dir).unwrap();
        let k2 = TokenKeys::open(&dir).unwrap();
        assert_eq!(k2.primary_index(), 2);
        assert!(k2.open_token(&t1).is_ok(), "secondary key still decrypts");
        TokenKeys::rotate(&dir).unwrap();
        TokenKeys::rotate(&dir).unwrap();
        let k4 = TokenKeys::open(&dir).unwrap();
        assert!(k4.open_token(&t1).is_err(), "key 1 was dropped");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), MAX_KEYS);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
