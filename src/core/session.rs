//! The records a flow carries from step to step, the browser-binding and
//! approval cookies, and where each record lives with and without KV.
//!
//! | record        | with KV                                   | without KV                 |
//! |---------------|-------------------------------------------|----------------------------|
//! | `Session`     | `session:<state>`, sealed, TTL 10 min     | sealed into `state`        |
//! | `CodeGrant`   | `code:<keyed hash of code>`, sealed, 10 min | sealed into the code     |
//! | pending consent | sealed into the consent form (both modes) |                          |

use serde::{Deserialize, Serialize};

use super::crypto::{b64url, b64url_decode, ct_eq, random_token, Keys, Purpose};
use super::types::{AttioGrant, Rng, Secret, UnixTime};

/// Lifetime of a sign-in at Attio and of a broker authorization code.
pub const FLOW_TTL: u64 = 600;
/// How long an approval on the consent page is remembered.
pub const APPROVAL_TTL: u64 = 30 * 86_400;
const MAX_APPROVALS: usize = 20;

/// What a client asked for at `/oauth/authorize`, once verified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientRequest {
    /// Keyed hash of the client id (client ids can be long sealed values).
    pub client_ref: String,
    pub redirect_uri: String,
    /// Whether the client sent `redirect_uri` (then the token request must too).
    pub redirect_uri_given: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub code_challenge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// A sign-in at Attio in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Keyed hash of the browser cookie that started it.
    pub browser: String,
    /// The broker's PKCE verifier towards Attio.
    pub verifier: Secret,
    pub expires_at: UnixTime,
    /// `None`: the manual flow (show the token). `Some`: an MCP client's flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRequest>,
}

/// The pending authorization carried through the consent form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingConsent {
    pub browser: String,
    pub request: ClientRequest,
    /// For the page: the client's self-declared name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
}

/// A broker authorization code's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub request: ClientRequest,
    pub grant: AttioGrant,
    pub expires_at: UnixTime,
}

pub fn client_ref(keys: &Keys, client_id: &str) -> String {
    keys.storage_hash(format!("client-ref:{client_id}").as_bytes())[..22].to_string()
}

pub fn browser_hash(keys: &Keys, cookie: &str) -> String {
    keys.storage_hash(format!("browser:{cookie}").as_bytes())
}

pub fn session_key(state: &str) -> String {
    format!("session:{state}")
}

pub fn code_key(keys: &Keys, code: &str) -> String {
    format!("code:{}", keys.storage_hash(code.as_bytes()))
}

/// Random values the broker hands out (KV states and codes) are 43
/// base64url characters; anything else is refused before a KV read.
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Cookie names and attributes, which depend on whether the public URL is
/// https. `__Host-` cookies must have `Path=/` and `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn for_base(base_url: &str) -> CookiePolicy {
        CookiePolicy {
            secure: base_url.starts_with("https://"),
        }
    }

    pub fn browser_name(self) -> &'static str {
        if self.secure {
            "__Host-attio_broker_browser"
        } else {
            "attio_broker_browser"
        }
    }

    pub fn approval_name(self) -> &'static str {
        if self.secure {
            "__Host-attio_broker_consent"
        } else {
            "attio_broker_consent"
        }
    }

    fn attrs(self, max_age: u64) -> String {
        if self.secure {
            format!("Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
        } else {
            format!("Path=/oauth; Max-Age={max_age}; HttpOnly; SameSite=Lax")
        }
    }

    pub fn set_browser(self, value: &str) -> String {
        format!(
            "{}={}; {}",
            self.browser_name(),
            value,
            self.attrs(FLOW_TTL)
        )
    }

    pub fn clear_browser(self) -> String {
        format!("{}=; {}", self.browser_name(), self.attrs(0))
    }

    pub fn set_approvals(self, value: &str) -> String {
        format!(
            "{}={}; {}",
            self.approval_name(),
            value,
            self.attrs(APPROVAL_TTL)
        )
    }
}

/// The browser's binding value: reuse a well-formed existing cookie (so
/// several tabs can sign in at once), else make a new one.
pub fn browser_value(existing: Option<&str>, rng: &mut dyn Rng) -> (String, bool) {
    match existing {
        Some(v) if is_token_shaped(v) => (v.to_string(), false),
        _ => (random_token(rng), true),
    }
}

/// Signed list of `client_ref:expires_at` approvals.
pub fn read_approvals(keys: &Keys, cookie: Option<&str>, now: UnixTime) -> Vec<(String, UnixTime)> {
    let Some(cookie) = cookie else {
        return Vec::new();
    };
    let Some((payload, mac)) = cookie.split_once('.') else {
        return Vec::new();
    };
    let (Some(payload), Some(mac)) = (b64url_decode(payload), b64url_decode(mac)) else {
        return Vec::new();
    };
    if !ct_eq(&keys.approval_mac(&payload), &mac) {
        return Vec::new();
    }
    let Ok(text) = String::from_utf8(payload) else {
        return Vec::new();
    };
    text.split(',')
        .filter_map(|e| {
            let (r, exp) = e.split_once(':')?;
            let exp: u64 = exp.parse().ok()?;
            (exp > now).then(|| (r.to_string(), exp))
        })
        .take(MAX_APPROVALS)
        .collect()
}

pub fn is_approved(approvals: &[(String, UnixTime)], client_ref: &str) -> bool {
    approvals
        .iter()
        .any(|(r, _)| ct_eq(r.as_bytes(), client_ref.as_bytes()))
}

/// Add an approval (newest first, at most 20 kept) and sign the list.
pub fn write_approvals(
    keys: &Keys,
    mut approvals: Vec<(String, UnixTime)>,
    client_ref: &str,
    now: UnixTime,
) -> String {
    approvals.retain(|(r, _)| r != client_ref);
    approvals.insert(0, (client_ref.to_string(), now + APPROVAL_TTL));
    approvals.truncate(MAX_APPROVALS);
    let payload: Vec<String> = approvals.iter().map(|(r, e)| format!("{r}:{e}")).collect();
    let payload = payload.join(",");
    format!(
        "{}.{}",
        b64url(payload.as_bytes()),
        b64url(&keys.approval_mac(payload.as_bytes()))
    )
}

/// Where a new session goes: the `state` to send to Attio, and with KV the
/// record to store under `session_key(state)`.
pub struct SessionPlacement {
    pub state: String,
    pub store: Option<String>,
}

pub fn place_session(
    keys: &Keys,
    session: &Session,
    kv: bool,
    rng: &mut dyn Rng,
) -> SessionPlacement {
    let sealed = |rng: &mut dyn Rng, p| keys.seal_json(p, session, session.expires_at, rng);
    if kv {
        let state = random_token(rng);
        SessionPlacement {
            state,
            store: Some(sealed(rng, Purpose::Stored)),
        }
    } else {
        SessionPlacement {
            state: sealed(rng, Purpose::State),
            store: None,
        }
    }
}

/// Where a new code goes: the code to give the client, and with KV the record
/// to store under the returned key.
pub struct CodePlacement {
    pub code: String,
    pub store: Option<(String, String)>,
}

pub fn place_code(keys: &Keys, grant: &CodeGrant, kv: bool, rng: &mut dyn Rng) -> CodePlacement {
    if kv {
        let code = random_token(rng);
        let key = code_key(keys, &code);
        CodePlacement {
            code,
            store: Some((
                key,
                keys.seal_json(Purpose::Code, grant, grant.expires_at, rng),
            )),
        }
    } else {
        CodePlacement {
            code: keys.seal_json(Purpose::Code, grant, grant.expires_at, rng),
            store: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::crypto::test_rng::TestRng;
    use super::*;

    #[test]
    fn approvals_round_trip_and_reject_tampering() {
        let k = Keys::derive(b"k");
        let c = write_approvals(&k, vec![], "refA", 100);
        let a = read_approvals(&k, Some(&c), 101);
        assert!(is_approved(&a, "refA"));
        assert!(!is_approved(&a, "refB"));
        assert!(read_approvals(&k, Some(&c), 100 + APPROVAL_TTL).is_empty());
        let mut t = c.clone();
        t.insert(2, 'x');
        assert!(read_approvals(&k, Some(&t), 101).is_empty());
        assert!(read_approvals(&Keys::derive(b"other"), Some(&c), 101).is_empty());
        assert!(read_approvals(&k, Some("garbage"), 101).is_empty());
        let mut list = vec![];
        for i in 0..30 {
            let c = write_approvals(&k, list, &format!("r{i}"), 100);
            list = read_approvals(&k, Some(&c), 100);
        }
        assert_eq!(list.len(), 20);
        assert!(is_approved(&list, "r29") && !is_approved(&list, "r0"));
    }

    #[test]
    fn cookie_attributes() {
        let s = CookiePolicy::for_base("https://x.dev");
        assert!(s
            .set_browser("v")
            .starts_with("__Host-attio_broker_browser=v; Path=/;"));
        assert!(s.set_browser("v").contains("Secure") && s.set_browser("v").contains("HttpOnly"));
        let p = CookiePolicy::for_base("http://localhost:8787");
        assert!(
            p.set_browser("v").contains("Path=/oauth") && !p.set_browser("v").contains("Secure")
        );
        assert!(p.clear_browser().contains("Max-Age=0"));
    }

    #[test]
    fn browser_value_reuses_only_well_formed() {
        let mut r = TestRng(1);
        let (v, new) = browser_value(None, &mut r);
        assert!(new && is_token_shaped(&v));
        assert_eq!(browser_value(Some(&v), &mut r), (v.clone(), false));
        assert!(browser_value(Some("x;y"), &mut r).1);
    }

    #[test]
    fn sessions_placed_by_mode() {
        let k = Keys::derive(b"k");
        let s = Session {
            browser: "b".into(),
            verifier: Secret::new("v"),
            expires_at: 700,
            client: None,
        };
        let kv = place_session(&k, &s, true, &mut TestRng(3));
        assert!(is_token_shaped(&kv.state));
        let stored: Session = k
            .open_json(Purpose::Stored, kv.store.as_ref().unwrap(), 100)
            .unwrap();
        assert_eq!(stored.browser, "b");
        let sl = place_session(&k, &s, false, &mut TestRng(3));
        assert!(sl.store.is_none());
        let opened: Session = k.open_json(Purpose::State, &sl.state, 100).unwrap();
        assert_eq!(opened.verifier.secret(), "v");
        assert!(k
            .open_json::<Session>(Purpose::State, &sl.state, 700)
            .is_err());
    }
}
