//! AEAD_AES_SIV_CMAC_256 (RFC 5297, NTS algorithm 15): the only algorithm NTS requires, and the
//! one we speak. A 32-byte key; the nonce is the last associated-data component, so any nonce
//! length works (we send 16 bytes); the output is the 16-byte synthetic IV followed by the
//! ciphertext.

use aes_siv::KeyInit;
use aes_siv::siv::Aes128Siv;

/// IANA AEAD registry number of AEAD_AES_SIV_CMAC_256.
pub(crate) const AES_SIV_CMAC_256: u16 = 15;
pub(crate) const KEY_LEN: usize = 32;
/// The synthetic IV that leads the ciphertext.
pub(crate) const TAG_LEN: usize = 16;
/// The nonce length we use when sealing.
pub(crate) const NONCE_LEN: usize = 16;

/// A symmetric key. Debug output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Key(pub(crate) [u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// The ciphertext did not authenticate under the key, nonce and associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub(crate) struct AuthError;

impl Key {
    pub(crate) fn random() -> Key {
        Key(rand::random())
    }

    fn cipher(&self) -> Aes128Siv {
        Aes128Siv::new((&self.0).into())
    }

    /// Encrypts `plaintext` into `out`, which must be exactly `TAG_LEN` longer.
    pub(crate) fn seal_into(&self, ad: &[u8], nonce: &[u8], plaintext: &[u8], out: &mut [u8]) {
        assert_eq!(out.len(), plaintext.len() + TAG_LEN, "seal_into: output length");
        out[TAG_LEN..].copy_from_slice(plaintext);
        // Two headers are far below the crate's limit, so this cannot fail.
        if let Ok(tag) = self.cipher().encrypt_in_place_detached([ad, nonce], &mut out[TAG_LEN..]) {
            out[..TAG_LEN].copy_from_slice(&tag);
        }
    }

    #[cfg(test)]
    pub(crate) fn seal(&self, ad: &[u8], nonce: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; plaintext.len() + TAG_LEN];
        self.seal_into(ad, nonce, plaintext, &mut out);
        out
    }

    /// Authenticates and decrypts `ciphertext` (tag first).
    pub(crate) fn open(&self, ad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, AuthError> {
        if ciphertext.len() < TAG_LEN {
            return Err(AuthError);
        }
        let tag = aes_siv::Tag::clone_from_slice(&ciphertext[..TAG_LEN]);
        let mut plain = ciphertext[TAG_LEN..].to_vec();
        self.cipher().decrypt_in_place_detached([ad, nonce], &mut plain, &tag).map_err(|_| AuthError)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 5297 appendix A.1 (one associated-data string, no nonce) pins the construction.
    #[test]
    fn rfc5297_deterministic_vector() {
        let key =
            Key(hex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").try_into().unwrap());
        let ad = hex("101112131415161718191a1b1c1d1e1f2021222324252627");
        let pt = hex("112233445566778899aabbccddee");
        let mut out = vec![0u8; pt.len() + TAG_LEN];
        out[TAG_LEN..].copy_from_slice(&pt);
        let tag = key.cipher().encrypt_in_place_detached([&ad[..]], &mut out[TAG_LEN..]).unwrap();
        out[..TAG_LEN].copy_from_slice(&tag);
        assert_eq!(out, hex("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c"));
    }

    #[test]
    fn round_trip_and_tamper() {
        let k = Key::random();
        let ct = k.seal(b"header", &[9; NONCE_LEN], b"cookies");
        assert_eq!(ct.len(), 7 + TAG_LEN);
        assert_eq!(k.open(b"header", &[9; NONCE_LEN], &ct).unwrap(), b"cookies");
        assert_eq!(k.open(b"headex", &[9; NONCE_LEN], &ct), Err(AuthError));
        assert_eq!(k.open(b"header", &[8; NONCE_LEN], &ct), Err(AuthError));
        let mut bad = ct.clone();
        bad[TAG_LEN] ^= 1;
        assert_eq!(k.open(b"header", &[9; NONCE_LEN], &bad), Err(AuthError));
        assert_eq!(Key::random().open(b"header", &[9; NONCE_LEN], &ct), Err(AuthError));
        assert_eq!(k.open(b"", &[], &[0; 15]), Err(AuthError));
        // An empty plaintext is just the tag.
        let tag = k.seal(b"ad", &[1; 16], b"");
        assert_eq!(k.open(b"ad", &[1; 16], &tag).unwrap(), b"");
        assert_eq!(format!("{k:?}"), "Key(..)");
    }
}
