//! PKCE (RFC 7636), S256 only: towards clients (verify) and towards Attio
//! (the broker's own pair, never the client's).

use super::crypto::{b64url, ct_eq, sha256};
use super::types::Rng;

/// A code verifier: 43 to 128 unreserved characters (RFC 7636 §4.1).
pub fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge: base64url of 32 bytes, 43 characters, no padding.
pub fn is_valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn challenge_s256(verifier: &str) -> String {
    b64url(&sha256(verifier.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceError {
    Missing,
    Malformed,
    Mismatch,
}

/// Check a verifier against the challenge recorded at authorize.
pub fn verify(verifier: Option<&str>, challenge: &str) -> Result<(), PkceError> {
    let v = verifier.ok_or(PkceError::Missing)?;
    if !is_valid_verifier(v) {
        return Err(PkceError::Malformed);
    }
    if ct_eq(challenge_s256(v).as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

/// A fresh verifier (43 characters from 32 random bytes).
pub fn new_verifier(rng: &mut dyn Rng) -> String {
    let mut b = [0u8; 32];
    rng.fill(&mut b);
    b64url(&b)
}

#[cfg(test)]
mod tests {
    use super::super::crypto::test_rng::TestRng;
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(
            challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verify_rules() {
        let v = new_verifier(&mut TestRng(5));
        assert!(is_valid_verifier(&v));
        let c = challenge_s256(&v);
        assert!(is_valid_challenge(&c));
        assert_eq!(verify(Some(&v), &c), Ok(()));
        assert_eq!(verify(None, &c), Err(PkceError::Missing));
        assert_eq!(verify(Some("short"), &c), Err(PkceError::Malformed));
        assert_eq!(
            verify(Some(&"a".repeat(129)), &c),
            Err(PkceError::Malformed)
        );
        assert_eq!(
            verify(Some(&format!("{}!", &"a".repeat(43))), &c),
            Err(PkceError::Malformed)
        );
        assert_eq!(verify(Some(&"a".repeat(43)), &c), Err(PkceError::Mismatch));
    }
}
