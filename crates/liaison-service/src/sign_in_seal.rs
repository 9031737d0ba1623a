//! Second-factor secrets sealed at rest. A TOTP secret is what an authenticator app holds: a copy
//! of the database must not be enough to make a user's codes. With `[sign_in] key_file` (set by
//! the CLI to `DATA_DIR/sign-in.key`, created on first use with mode 0600), every secret the
//! node writes — the set-up step's and the user's — is sealed with XChaCha20-Poly1305 under that
//! key, the user's id as associated data (a sealed secret moved to another user's row does not
//! open). Without a key file (tests, embedded uses) secrets are written as hex, as before.
//! Secrets written in the clear before the node had a key are sealed by
//! [`Node::seal_second_factors`], which `liaison serve` and the demo run at start.

use crate::error::{Result, ServiceError};
use crate::node::Node;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use liaison_core::UserId;
use std::path::Path;

/// The prefix of a sealed secret: version 1, XChaCha20-Poly1305, then hex of nonce and sealed
/// bytes.
pub(crate) const SEALED: &str = "s1:";

fn internal(m: impl Into<String>) -> ServiceError {
    ServiceError::Internal(m.into())
}

fn parse_key(path: &Path, text: &str) -> std::result::Result<[u8; 32], String> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("{}:{}: not 'key HEX' with 64 hex digits", path.display(), i + 1);
        let mut parts = line.split_whitespace();
        let (Some("key"), Some(h), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let bytes = hex::decode(h).map_err(|_| bad())?;
        return bytes.try_into().map_err(|_| bad());
    }
    Err(format!("{} holds no key", path.display()))
}

/// Reads the key file (`key HEX`), creating it with a new random key (mode 0600) when there is
/// none; another process creating it at the same moment wins, and its key is read.
pub(crate) fn load_or_create(path: &Path) -> std::result::Result<[u8; 32], String> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let text = format!(
                "# Liaison: the key that seals second-factor (TOTP) secrets in the database (docs/ui.md, \"Sign-in\").\n\
                 # Secret: keep mode 0600 and back it up with the database; without it every user sets up the second factor again.\n\
                 key {}\n",
                hex::encode(key)
            );
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, text.as_bytes())?;
                    f.sync_all()
                });
            match written {
                Ok(()) => Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    parse_key(path, &std::fs::read_to_string(path).map_err(io)?)
                }
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

fn xnonce(b: &[u8]) -> XNonce {
    let mut n = XNonce::default();
    n.copy_from_slice(b);
    n
}

fn aad(user: UserId) -> Vec<u8> {
    let mut a = b"liaison-second-factor\x1f".to_vec();
    a.extend_from_slice(user.to_string().as_bytes());
    a
}

/// Seals `secret` for `user`.
pub(crate) fn seal(key: &[u8; 32], user: UserId, secret: &[u8]) -> Result<String> {
    let nonce: [u8; 24] = rand::random();
    let sealed = XChaCha20Poly1305::new(key.into())
        .encrypt(
            &xnonce(&nonce),
            Payload {
                msg: secret,
                aad: &aad(user),
            },
        )
        .map_err(|_| internal("sealing a second-factor secret failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{SEALED}{}", hex::encode(out)))
}

/// The raw secret of a stored one: sealed (needs the key) or hex (written without a key).
pub(crate) fn open(key: Option<&[u8; 32]>, user: UserId, stored: &str) -> Result<Vec<u8>> {
    let Some(h) = stored.strip_prefix(SEALED) else {
        return hex::decode(stored).map_err(|e| internal(format!("the second-factor secret of user {user}: {e}")));
    };
    let key = key.ok_or_else(|| internal("second-factor secrets are sealed, but [sign_in] key_file is not set"))?;
    let raw = hex::decode(h).map_err(|e| internal(format!("the second-factor secret of user {user}: {e}")))?;
    if raw.len() < 24 + 16 {
        return Err(internal(format!("the second-factor secret of user {user} is cut off")));
    }
    let (nonce, sealed) = raw.split_at(24);
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            &xnonce(nonce),
            Payload {
                msg: sealed,
                aad: &aad(user),
            },
        )
        .map_err(|_| {
            ServiceError::Integrity(format!(
                "the second-factor secret of user {user} does not open under [sign_in] key_file (another key, or a row moved from another user)"
            ))
        })
}

impl Node {
    /// The key of `[sign_in] key_file`, read (or created) once per node value.
    pub(crate) fn factor_key(&self) -> Result<Option<[u8; 32]>> {
        let cell = self.factor_key.get_or_init(|| match &self.sign_in.key_file {
            None => Ok(None),
            Some(p) => load_or_create(p).map(Some),
        });
        cell.clone().map_err(|e| internal(format!("[sign_in] key_file: {e}")))
    }

    /// A raw secret as it is stored for `user`: sealed when the node has a key, else hex.
    pub(crate) fn store_secret(&self, user: UserId, raw: &[u8]) -> Result<String> {
        match self.factor_key()? {
            Some(k) => seal(&k, user, raw),
            None => Ok(hex::encode(raw)),
        }
    }

    /// The raw secret of a stored one.
    pub(crate) fn read_secret(&self, user: UserId, stored: &str) -> Result<Vec<u8>> {
        open(self.factor_key()?.as_ref(), user, stored)
    }

    /// Seals every second-factor secret still stored in the clear (written before the node had
    /// a key file); how many. Nothing without a key file. Safe to run on several processes at
    /// once: a row is replaced only if it still holds what was read.
    pub async fn seal_second_factors(&self) -> Result<usize> {
        let Some(key) = self.factor_key()? else {
            return Ok(0);
        };
        let mut sealed = 0;
        for (user, stored) in self.store.unsealed_second_factors(SEALED).await? {
            let Ok(raw) = hex::decode(&stored) else {
                tracing::warn!(%user, "a second-factor secret is neither sealed nor hex; left as it is");
                continue;
            };
            if self
                .store
                .reseal_second_factor(user, &stored, &seal(&key, user, &raw)?)
                .await?
            {
                sealed += 1;
            }
        }
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_secret_opens_for_its_user_only_and_the_key_file_is_made_once() {
        let dir = std::env::temp_dir().join(format!("liaison-seal-{}", std::process::id()));
        let path = dir.join("sign-in.key");
        let _ = std::fs::remove_file(&path);
        let key = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), key, "read back, not made again");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (alice, bob) = (UserId::new(), UserId::new());
        let secret = b"12345678901234567890";
        let stored = seal(&key, alice, secret).unwrap();
        assert!(stored.starts_with(SEALED) && !stored.contains(&hex::encode(secret)));
        assert_eq!(open(Some(&key), alice, &stored).unwrap(), secret);
        assert!(matches!(
            open(Some(&key), bob, &stored),
            Err(ServiceError::Integrity(_))
        ));
        let other: [u8; 32] = rand::random();
        assert!(open(Some(&other), alice, &stored).is_err());
        assert!(open(None, alice, &stored).is_err(), "sealed needs the key");
        // Written in the clear before: still read.
        assert_eq!(open(Some(&key), alice, &hex::encode(secret)).unwrap(), secret);
        std::fs::write(&path, "key 1234\n").unwrap();
        assert!(load_or_create(&path).unwrap_err().contains(":1:"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
