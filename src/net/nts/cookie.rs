//! Server cookies (RFC 8915 §6): the client's session keys, encrypted under a server master key,
//! so the server keeps no per-client state.
//!
//! Layout, 104 bytes (a multiple of 4, so the cookie field needs no padding):
//! `key id (4) | nonce (16) | AES-SIV(master[key id], ad = key id, nonce,
//!  aead (2) | reserved (2) | c2s key (32) | s2c key (32))`.
//!
//! Master keys rotate ([`CookieKeys::rotate_if_due`]); cookies made under the last
//! [`KEPT_KEYS`] keys still open, so a client's oldest cookie (eight polls old) survives a
//! rotation. Persisting them (the key file) lets cookies survive a restart.

use super::aead::{AES_SIV_CMAC_256, KEY_LEN, Key, NONCE_LEN, TAG_LEN};

const PLAIN_LEN: usize = 4 + 2 * KEY_LEN;
/// Length of every cookie we issue.
pub(crate) const COOKIE_LEN: usize = 4 + NONCE_LEN + TAG_LEN + PLAIN_LEN;
/// Master keys kept: the current one and two before it.
pub(crate) const KEPT_KEYS: usize = 3;
/// Default rotation interval: a day (cookies then stay valid 2–3 days).
pub(crate) const DEFAULT_ROTATION_S: u64 = 86_400;

/// The two keys of one NTS association, as exported from its TLS session (RFC 8915 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// Client to server: authenticates requests.
    pub(crate) c2s: Key,
    /// Server to client: authenticates replies and encrypts the new cookies in them.
    pub(crate) s2c: Key,
}

/// One cookie master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MasterKey {
    pub(crate) id: u32,
    /// Unix seconds it became current.
    pub(crate) created: u64,
    pub(crate) key: Key,
}

/// The master keys, newest first. Immutable once built: rotation makes a new set, which the
/// serving threads pick up through an `ArcSwap`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieKeys {
    keys: Vec<MasterKey>,
}

impl CookieKeys {
    /// A fresh set with one new key made at `now` (unix seconds).
    pub fn generate(now: u64) -> CookieKeys {
        CookieKeys { keys: vec![MasterKey { id: rand::random(), created: now, key: Key::random() }] }
    }

    /// From stored keys (any order); `None` when there are none.
    pub(crate) fn from_keys(mut keys: Vec<MasterKey>) -> Option<CookieKeys> {
        if keys.is_empty() {
            return None;
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.created));
        keys.truncate(KEPT_KEYS);
        Some(CookieKeys { keys })
    }

    pub(crate) fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    pub(crate) fn current(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// A new set with a fresh current key when the current one is `interval_s` old (or from the
    /// future: a clock stepped back must not freeze rotation).
    pub(crate) fn rotate_if_due(&self, now: u64, interval_s: u64) -> Option<CookieKeys> {
        let created = self.current().created;
        if now < created || now - created >= interval_s { Some(self.rotated(now)) } else { None }
    }

    /// A new set with a fresh current key, keeping the newest older ones.
    pub(crate) fn rotated(&self, now: u64) -> CookieKeys {
        let mut id: u32 = rand::random();
        while self.keys.iter().any(|k| k.id == id) {
            id = id.wrapping_add(1);
        }
        let mut keys = vec![MasterKey { id, created: now, key: Key::random() }];
        keys.extend(self.keys.iter().take(KEPT_KEYS - 1).cloned());
        CookieKeys { keys }
    }

    /// A cookie carrying `session` under the current key.
    pub(crate) fn seal(&self, session: &SessionKeys) -> [u8; COOKIE_LEN] {
        let master = self.current();
        let mut plain = [0u8; PLAIN_LEN];
        plain[..2].copy_from_slice(&AES_SIV_CMAC_256.to_be_bytes());
        plain[4..4 + KEY_LEN].copy_from_slice(&session.c2s.0);
        plain[4 + KEY_LEN..].copy_from_slice(&session.s2c.0);
        let mut cookie = [0u8; COOKIE_LEN];
        cookie[..4].copy_from_slice(&master.id.to_be_bytes());
        let nonce: [u8; NONCE_LEN] = rand::random();
        cookie[4..4 + NONCE_LEN].copy_from_slice(&nonce);
        let (head, sealed) = cookie.split_at_mut(4 + NONCE_LEN);
        master.key.seal_into(&head[..4], &nonce, &plain, sealed);
        cookie
    }

    /// The session keys in a cookie of ours, or `None` (unknown or retired key, not ours,
    /// tampered).
    pub fn open(&self, cookie: &[u8]) -> Option<SessionKeys> {
        if cookie.len() != COOKIE_LEN {
            return None;
        }
        let id = u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
        let master = self.keys.iter().find(|k| k.id == id)?;
        let plain =
            master.key.open(&cookie[..4], &cookie[4..4 + NONCE_LEN], &cookie[4 + NONCE_LEN..]).ok()?;
        if plain.len() != PLAIN_LEN || u16::from_be_bytes([plain[0], plain[1]]) != AES_SIV_CMAC_256 {
            return None;
        }
        let key = |r: std::ops::Range<usize>| -> Option<Key> { Some(Key(plain[r].try_into().ok()?)) };
        Some(SessionKeys { c2s: key(4..4 + KEY_LEN)?, s2c: key(4 + KEY_LEN..PLAIN_LEN)? })
    }
}

/// Random session keys, for tests and the server's own checks.
#[cfg(test)]
pub(crate) fn random_session() -> SessionKeys {
    SessionKeys { c2s: Key::random(), s2c: Key::random() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip_and_tamper() {
        assert_eq!(COOKIE_LEN % 4, 0);
        assert_eq!(COOKIE_LEN, 104);
        let keys = CookieKeys::generate(1000);
        let s = random_session();
        let c = keys.seal(&s);
        assert_eq!(keys.open(&c), Some(s.clone()));
        assert_ne!(keys.seal(&s), c, "fresh nonce each time");
        for i in [0, 5, 30, COOKIE_LEN - 1] {
            let mut bad = c;
            bad[i] ^= 0x40;
            assert_eq!(keys.open(&bad), None, "byte {i}");
        }
        assert_eq!(keys.open(&c[..100]), None);
        assert_eq!(CookieKeys::generate(1000).open(&c), None, "another server's key");
    }

    #[test]
    fn rotation_keeps_recent_keys_only() {
        let k0 = CookieKeys::generate(1000);
        assert!(k0.rotate_if_due(1000 + 99, 100).is_none());
        assert!(k0.rotate_if_due(999, 100).is_some(), "a clock stepped back rotates");
        let s = random_session();
        let c0 = k0.seal(&s);
        let k1 = k0.rotate_if_due(1100, 100).unwrap();
        assert_eq!(k1.current().created, 1100);
        assert_ne!(k1.current().id, k0.current().id);
        assert_eq!(k1.open(&c0), Some(s.clone()), "cookies of the previous key still open");
        let c1 = k1.seal(&s);
        let k2 = k1.rotated(1200);
        let k3 = k2.rotated(1300);
        assert_eq!(k3.keys().len(), KEPT_KEYS);
        assert_eq!(k3.open(&c0), None, "retired after {KEPT_KEYS} rotations");
        assert_eq!(k3.open(&c1), Some(s));
        let back = CookieKeys::from_keys(k3.keys().iter().rev().cloned().collect()).unwrap();
        assert_eq!(back, k3, "order restored from storage");
        assert!(CookieKeys::from_keys(vec![]).is_none());
    }
}
