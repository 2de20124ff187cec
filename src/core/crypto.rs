//! Keys, sealing and signing.
//!
//! Every sealed value is `base64url(header || nonce || ciphertext)` where the
//! header is `version (1) || purpose (1) || expires_at (8, big endian)`, the
//! AEAD is XChaCha20-Poly1305 with a random 24-byte nonce, the header is the
//! associated data, and each purpose has its own key derived with HKDF-SHA256.
//! A value sealed for one purpose therefore never opens as another's, and any
//! changed byte fails to open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::types::{Rng, UnixTime};

const VERSION: u8 = 1;
const HEADER_LEN: usize = 10;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Sealed values larger than this are refused before any decoding work.
pub const MAX_SEALED_LEN: usize = 8 * 1024;

/// What a sealed value is for. The byte is part of the authenticated header
/// and the key is derived from the purpose's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The `state` sent to Attio when there is no KV: the whole session.
    State = 1,
    /// The pending authorization carried through the consent form.
    Consent = 2,
    /// A registration carried in the `client_id` itself when there is no KV.
    Client = 3,
    /// A broker authorization code (stateless), or a stored code record (KV).
    Code = 4,
    /// Records at rest in KV (sessions).
    Stored = 5,
    /// A refresh token handed to a client: Attio's, bound to that client.
    Refresh = 6,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::State => b"attio-oauth-broker/v1/seal/state",
            Purpose::Consent => b"attio-oauth-broker/v1/seal/consent",
            Purpose::Client => b"attio-oauth-broker/v1/seal/client",
            Purpose::Code => b"attio-oauth-broker/v1/seal/code",
            Purpose::Stored => b"attio-oauth-broker/v1/seal/stored",
            Purpose::Refresh => b"attio-oauth-broker/v1/seal/refresh",
        }
    }
    const ALL: [Purpose; 6] = [
        Purpose::State,
        Purpose::Consent,
        Purpose::Client,
        Purpose::Code,
        Purpose::Stored,
        Purpose::Refresh,
    ];
}

/// Why a sealed value did not open. Deliberately coarse: callers turn all of
/// them into one "invalid or expired" answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    Malformed,
    Forged,
    Expired,
}

/// Keys for every purpose, derived once per request from one secret.
pub struct Keys {
    seal: [[u8; 32]; 6],
    approval_mac: [u8; 32],
    client_secret_mac: [u8; 32],
    hash_key: [u8; 32],
}

impl Keys {
    /// Derive all keys from `ikm` (BROKER_SECRET, or ATTIO_CLIENT_SECRET when
    /// no dedicated secret is set) with HKDF-SHA256 and one label per purpose.
    pub fn derive(ikm: &[u8]) -> Keys {
        let hk = Hkdf::<Sha256>::new(Some(b"attio-oauth-broker"), ikm);
        let expand = |label: &[u8]| {
            let mut k = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's limit, so this cannot fail.
            let _ = hk.expand(label, &mut k);
            k
        };
        let mut seal = [[0u8; 32]; 6];
        for p in Purpose::ALL {
            seal[p as usize - 1] = expand(p.label());
        }
        Keys {
            seal,
            approval_mac: expand(b"attio-oauth-broker/v1/mac/approval"),
            client_secret_mac: expand(b"attio-oauth-broker/v1/mac/client-secret"),
            hash_key: expand(b"attio-oauth-broker/v1/mac/storage-key"),
        }
    }

    fn cipher(&self, p: Purpose) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.seal[p as usize - 1]).into())
    }

    /// Seal `plaintext` for `purpose`; `expires_at` 0 means never.
    pub fn seal(
        &self,
        purpose: Purpose,
        plaintext: &[u8],
        expires_at: UnixTime,
        rng: &mut dyn Rng,
    ) -> String {
        let mut header = [0u8; HEADER_LEN];
        header[0] = VERSION;
        header[1] = purpose as u8;
        header[2..].copy_from_slice(&expires_at.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        // Encryption with a valid key and nonce length cannot fail.
        let ct = self
            .cipher(purpose)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &header,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Open a value sealed for `purpose`, checking its expiry against `now`.
    pub fn open(
        &self,
        purpose: Purpose,
        sealed: &str,
        now: UnixTime,
    ) -> Result<Vec<u8>, OpenError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(OpenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(sealed.as_bytes())
            .map_err(|_| OpenError::Malformed)?;
        if raw.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || raw[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        if raw[1] != purpose as u8 {
            return Err(OpenError::Forged);
        }
        let (header, rest) = raw.split_at(HEADER_LEN);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let plain = self
            .cipher(purpose)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: header,
                },
            )
            .map_err(|_| OpenError::Forged)?;
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&header[2..]);
        let expires_at = u64::from_be_bytes(exp);
        if expires_at != 0 && now >= expires_at {
            return Err(OpenError::Expired);
        }
        Ok(plain)
    }

    pub fn seal_json<T: Serialize>(
        &self,
        purpose: Purpose,
        value: &T,
        expires_at: UnixTime,
        rng: &mut dyn Rng,
    ) -> String {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.seal(purpose, &bytes, expires_at, rng)
    }

    pub fn open_json<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        sealed: &str,
        now: UnixTime,
    ) -> Result<T, OpenError> {
        let bytes = self.open(purpose, sealed, now)?;
        serde_json::from_slice(&bytes).map_err(|_| OpenError::Malformed)
    }

    /// HMAC-SHA256 for signed cookies (consent approvals).
    pub fn approval_mac(&self, data: &[u8]) -> [u8; 32] {
        hmac(&self.approval_mac, data)
    }

    /// The secret of a confidential client registered without KV: derived,
    /// never stored, never Attio's.
    pub fn derived_client_secret(&self, client_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac(&self.client_secret_mac, client_id.as_bytes()))
    }

    /// A keyed hash used to name records in KV (codes, client secrets), so a
    /// KV listing reveals neither codes nor secrets.
    pub fn storage_hash(&self, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(hmac(&self.hash_key, data))
    }
}

fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Constant-time equality for secrets of possibly different lengths (the
/// length itself is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data.as_bytes()).ok()
}

/// A fresh random token of 32 bytes, base64url (43 characters).
pub fn random_token(rng: &mut dyn Rng) -> String {
    let mut b = [0u8; 32];
    rng.fill(&mut b);
    b64url(&b)
}

#[cfg(test)]
pub mod test_rng {
    use super::super::types::Rng;
    /// Deterministic generator for tests (xorshift; not for production).
    pub struct TestRng(pub u64);
    impl Rng for TestRng {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *b = self.0 as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_rng::TestRng;
    use super::*;
    use proptest::prelude::*;

    fn keys() -> Keys {
        Keys::derive(b"test secret")
    }

    #[test]
    fn seal_open_round_trip() {
        let k = keys();
        let s = k.seal(Purpose::State, b"hello", 100, &mut TestRng(1));
        assert_eq!(k.open(Purpose::State, &s, 99).unwrap(), b"hello");
    }

    #[test]
    fn expired_values_do_not_open() {
        let k = keys();
        let s = k.seal(Purpose::State, b"hello", 100, &mut TestRng(1));
        assert_eq!(k.open(Purpose::State, &s, 100), Err(OpenError::Expired));
        let never = k.seal(Purpose::Client, b"x", 0, &mut TestRng(2));
        assert!(k.open(Purpose::Client, &never, u64::MAX).is_ok());
    }

    #[test]
    fn other_purpose_and_other_key_fail() {
        let k = keys();
        let s = k.seal(Purpose::State, b"hello", 0, &mut TestRng(1));
        for p in Purpose::ALL {
            if p != Purpose::State {
                assert!(k.open(p, &s, 0).is_err(), "{p:?}");
            }
        }
        assert_eq!(
            Keys::derive(b"other").open(Purpose::State, &s, 0),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let k = keys();
        for g in ["", "!!!", "AAAA", &"A".repeat(MAX_SEALED_LEN + 1)] {
            assert!(k.open(Purpose::State, g, 0).is_err());
        }
    }

    #[test]
    fn nonces_differ() {
        let k = keys();
        let mut rng = TestRng(7);
        assert_ne!(
            k.seal(Purpose::Code, b"a", 0, &mut rng),
            k.seal(Purpose::Code, b"a", 0, &mut rng)
        );
    }

    #[test]
    fn derived_secrets_are_stable_and_distinct() {
        let k = keys();
        assert_eq!(k.derived_client_secret("a"), k.derived_client_secret("a"));
        assert_ne!(k.derived_client_secret("a"), k.derived_client_secret("b"));
        assert_ne!(k.storage_hash(b"a"), k.derived_client_secret("a"));
    }

    proptest! {
        #[test]
        fn prop_round_trip(data in proptest::collection::vec(any::<u8>(), 0..512), seed in 1u64.., exp in 1u64..) {
            let k = keys();
            let s = k.seal(Purpose::Code, &data, exp, &mut TestRng(seed));
            prop_assert_eq!(k.open(Purpose::Code, &s, exp - 1).unwrap(), data);
        }

        #[test]
        fn prop_any_changed_byte_fails(data in proptest::collection::vec(any::<u8>(), 0..64), idx in any::<usize>(), flip in 1u8..) {
            let k = keys();
            let s = k.seal(Purpose::Consent, &data, 0, &mut TestRng(3));
            let mut raw = b64url_decode(&s).unwrap();
            let i = idx % raw.len();
            raw[i] ^= flip;
            prop_assert!(k.open(Purpose::Consent, &b64url(&raw), 0).is_err());
        }

        #[test]
        fn prop_open_never_panics(s in ".{0,300}") {
            let _ = keys().open(Purpose::State, &s, 0);
        }
    }
}
