//! Names for OAuth concepts, so that a client id is never confused with a
//! token and a secret is never printed by accident.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Source of randomness. The core never reads entropy itself: the Worker shell
/// passes `getrandom`, tests pass a deterministic generator.
pub trait Rng {
    fn fill(&mut self, buf: &mut [u8]);

    fn bytes<const N: usize>(&mut self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

/// Seconds since the Unix epoch, as passed in by the caller.
pub type UnixTime = u64;

/// A value that must never be logged or shown by accident: `Debug` prints
/// `[redacted]`, equality is constant-time, and reading it takes a visible
/// call to `secret()`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn secret(&self) -> &str {
        &self.0
    }
    pub fn ct_eq(&self, other: &str) -> bool {
        crate::core::crypto::ct_eq(self.0.as_bytes(), other.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A registered client's identifier: a random id (KV mode), a sealed
/// registration (stateless mode), or later an https URL (metadata documents).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub String);

/// How a registered client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl AuthMethod {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(AuthMethod::None),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
        }
    }
    pub fn is_confidential(self) -> bool {
        self != AuthMethod::None
    }
}

/// The token Attio issued, with what Attio said about it. Attio's tokens do
/// not expire, so there is deliberately no expiry here unless Attio sends one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttioGrant {
    pub access_token: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert!(!format!("{:?}", Some(s.clone())).contains("hunter2"));
        assert!(s.ct_eq("hunter2"));
        assert!(!s.ct_eq("hunter3"));
        assert!(!s.ct_eq("hunter"));
    }

    #[test]
    fn auth_method_round_trip() {
        for m in [
            AuthMethod::None,
            AuthMethod::ClientSecretPost,
            AuthMethod::ClientSecretBasic,
        ] {
            assert_eq!(AuthMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(AuthMethod::parse("private_key_jwt"), None);
        assert!(!AuthMethod::None.is_confidential());
    }
}
