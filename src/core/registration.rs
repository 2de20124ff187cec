//! Dynamic client registration (RFC 7591): validate the metadata, decide the
//! client's id and secret, and authenticate it later.
//!
//! With KV a client gets a random id (`kv.` + 32 characters) and its record is
//! stored, with only a keyed hash of its secret. Without KV the id *is* the
//! sealed record and a confidential client's secret is an HMAC of the id, so
//! nothing is stored at all.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::config::Config;
use super::crypto::{random_token, Keys, Purpose};
use super::error::{ErrorCode, OAuthError};
use super::redirect;
use super::types::{AuthMethod, Rng, Secret, UnixTime};

pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_REDIRECT_URIS: usize = 10;
/// The serialised record must stay small enough to travel as a client id.
pub const MAX_RECORD_LEN: usize = 5000;
pub const KV_ID_PREFIX: &str = "kv.";

/// What the broker remembers about a registered client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientRecord {
    pub redirect_uris: Vec<String>,
    pub auth: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    pub grant_types: Vec<String>,
    pub issued_at: UnixTime,
    /// KV mode: when the stored record lapses. 0 = never (stateless).
    #[serde(default)]
    pub expires_at: UnixTime,
    /// KV mode, confidential clients: keyed hash of the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
}

fn bad_meta(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, 400, d)
}

fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Option<String>, OAuthError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= max && !s.chars().any(|c| c.is_control()) => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(bad_meta(format!(
            "{key} is too long or contains control characters"
        ))),
        Some(_) => Err(bad_meta(format!("{key} must be a string"))),
    }
}

fn opt_url(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, OAuthError> {
    let v = opt_string(obj, key, 2000)?;
    if let Some(u) = &v {
        match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "https" | "http") => {}
            _ => return Err(bad_meta(format!("{key} must be an http(s) URL"))),
        }
    }
    Ok(v)
}

fn string_list(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad_meta(format!("{key} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad_meta(format!("{key} must be an array of strings"))),
    }
}

/// Validate an RFC 7591 registration request body into a record.
pub fn validate(body: &[u8], cfg: &Config, now: UnixTime) -> Result<ClientRecord, OAuthError> {
    if body.len() > MAX_BODY {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            413,
            "the registration request is larger than 64 KiB",
        ));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| bad_meta("the body must be a JSON object"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad_meta("the body must be a JSON object"))?;

    let redirect_uris = match string_list(obj, "redirect_uris") {
        Err(_) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                400,
                "redirect_uris must be an array of strings",
            ))
        }
        Ok(None) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                400,
                "redirect_uris is required",
            ))
        }
        Ok(Some(v)) if v.is_empty() => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                400,
                "redirect_uris must not be empty",
            ))
        }
        Ok(Some(v)) if v.len() > MAX_REDIRECT_URIS => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                400,
                "at most 10 redirect_uris may be registered",
            ))
        }
        Ok(Some(v)) => v,
    };
    for uri in &redirect_uris {
        redirect::check_registrable(uri, &cfg.allowed_redirects)
            .map_err(|why| OAuthError::new(ErrorCode::InvalidRedirectUri, 400, why))?;
    }

    let auth = match opt_string(obj, "token_endpoint_auth_method", 64)? {
        None => AuthMethod::None,
        Some(m) => AuthMethod::parse(&m).ok_or_else(|| {
            bad_meta("token_endpoint_auth_method must be none, client_secret_post or client_secret_basic")
        })?,
    };

    let grant_types = string_list(obj, "grant_types")?
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if grant_types
        .iter()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(bad_meta(
            "only the authorization_code and refresh_token grant types are supported",
        ));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(bad_meta("grant_types must include authorization_code"));
    }
    if let Some(rt) = string_list(obj, "response_types")? {
        if rt.iter().any(|r| r != "code") {
            return Err(bad_meta("only the code response type is supported"));
        }
    }

    let record = ClientRecord {
        redirect_uris,
        auth,
        name: opt_string(obj, "client_name", 200)?,
        client_uri: opt_url(obj, "client_uri")?,
        logo_uri: opt_url(obj, "logo_uri")?,
        scope: opt_string(obj, "scope", 2000)?,
        software_id: opt_string(obj, "software_id", 200)?,
        software_version: opt_string(obj, "software_version", 100)?,
        grant_types,
        issued_at: now,
        expires_at: 0,
        secret_hash: None,
    };
    if serde_json::to_vec(&record).map_or(0, |v| v.len()) > MAX_RECORD_LEN {
        return Err(bad_meta("the registration metadata is too large"));
    }
    Ok(record)
}

/// The outcome of a registration: what to store (KV mode) and what to answer.
pub struct Registered {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// KV mode: the record to store under `client_key(client_id)`, with its
    /// time to live in seconds.
    pub store: Option<(String, u64)>,
    pub record: ClientRecord,
}

pub fn client_key(client_id: &str) -> String {
    format!("client:{client_id}")
}

/// Give the validated client an id and, when confidential, a secret.
pub fn register(
    mut record: ClientRecord,
    keys: &Keys,
    cfg: &Config,
    rng: &mut dyn Rng,
) -> Registered {
    if cfg.kv_bound {
        let ttl = cfg.client_ttl_days * 86_400;
        let client_id = format!("{KV_ID_PREFIX}{}", &random_token(rng)[..32]);
        record.expires_at = record.issued_at + ttl;
        let secret = record
            .auth
            .is_confidential()
            .then(|| Secret::new(random_token(rng)));
        record.secret_hash = secret
            .as_ref()
            .map(|s| keys.storage_hash(s.secret().as_bytes()));
        let stored = serde_json::to_string(&record).unwrap_or_default();
        Registered {
            client_id,
            secret,
            store: Some((stored, ttl)),
            record,
        }
    } else {
        let client_id = keys.seal_json(Purpose::Client, &record, 0, rng);
        let secret = record
            .auth
            .is_confidential()
            .then(|| Secret::new(keys.derived_client_secret(&client_id)));
        Registered {
            client_id,
            secret,
            store: None,
            record,
        }
    }
}

/// The 201 body (RFC 7591 §3.2.1).
pub fn response_body(r: &Registered) -> Value {
    let rec = &r.record;
    let mut v = json!({
        "client_id": r.client_id,
        "client_id_issued_at": rec.issued_at,
        "redirect_uris": rec.redirect_uris,
        "token_endpoint_auth_method": rec.auth.as_str(),
        "grant_types": rec.grant_types,
        "response_types": ["code"],
    });
    let o = v.as_object_mut().expect("json! object");
    if let Some(s) = &r.secret {
        o.insert("client_secret".into(), json!(s.secret()));
        o.insert("client_secret_expires_at".into(), json!(rec.expires_at));
    }
    for (k, val) in [
        ("client_name", &rec.name),
        ("client_uri", &rec.client_uri),
        ("logo_uri", &rec.logo_uri),
        ("scope", &rec.scope),
        ("software_id", &rec.software_id),
        ("software_version", &rec.software_version),
    ] {
        if let Some(x) = val {
            o.insert(k.into(), json!(x));
        }
    }
    v
}

/// How a client id is to be resolved.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientLookup {
    /// Look the record up in KV under this key.
    Stored(String),
    /// The id was a sealed registration; here it is.
    Sealed(ClientRecord),
    /// A Client ID Metadata Document URL, checked and safe to fetch.
    Document(url::Url),
    /// A URL client id that must not be fetched; the reason.
    RefusedDocument(String),
    /// Cannot be a client of this broker.
    Unknown,
}

pub fn lookup(client_id: &str, keys: &Keys, cfg: &Config, now: UnixTime) -> ClientLookup {
    if client_id.len() > crate::core::crypto::MAX_SEALED_LEN {
        return ClientLookup::Unknown;
    }
    if crate::core::cimd::is_document_id(client_id) {
        return match crate::core::cimd::check_url(client_id, cfg.allow_loopback_client_metadata) {
            Ok(u) => ClientLookup::Document(u),
            Err(why) => ClientLookup::RefusedDocument(why),
        };
    }
    if let Some(rest) = client_id.strip_prefix(KV_ID_PREFIX) {
        let well_formed = rest.len() == 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        return if cfg.kv_bound && well_formed {
            ClientLookup::Stored(client_key(client_id))
        } else {
            ClientLookup::Unknown
        };
    }
    match keys.open_json::<ClientRecord>(Purpose::Client, client_id, now) {
        Ok(r) => ClientLookup::Sealed(r),
        Err(_) => ClientLookup::Unknown,
    }
}

/// Parse a stored record, refusing one that has lapsed (KV deletes it by TTL,
/// but a read may race the expiry).
pub fn parse_stored(json: &str, now: UnixTime) -> Option<ClientRecord> {
    let r: ClientRecord = serde_json::from_str(json).ok()?;
    (r.expires_at == 0 || now < r.expires_at).then_some(r)
}

/// A KV registration with less than half of its time to live left, renewed
/// for a full one: (record to store, TTL). `None` when no renewal is due (or
/// the client is not stored in KV).
pub fn renewal(record: &ClientRecord, cfg: &Config, now: UnixTime) -> Option<(ClientRecord, u64)> {
    let ttl = cfg.client_ttl_days * 86_400;
    if record.expires_at == 0 || record.expires_at.saturating_sub(now) >= ttl / 2 {
        return None;
    }
    let mut renewed = record.clone();
    renewed.expires_at = now + ttl;
    Some((renewed, ttl))
}

/// Check a presented secret against the client (constant time).
pub fn secret_matches(
    record: &ClientRecord,
    client_id: &str,
    presented: &str,
    keys: &Keys,
) -> bool {
    match &record.secret_hash {
        Some(h) => crate::core::crypto::ct_eq(
            keys.storage_hash(presented.as_bytes()).as_bytes(),
            h.as_bytes(),
        ),
        None => {
            record.auth.is_confidential()
                && crate::core::crypto::ct_eq(
                    keys.derived_client_secret(client_id).as_bytes(),
                    presented.as_bytes(),
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::crypto::test_rng::TestRng;
    use super::*;

    fn cfg(kv: bool) -> Config {
        Config::from_lookup(|_| None, kv)
    }

    #[test]
    fn minimal_public_client() {
        let r = validate(br#"{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"client_name":"Claude"}"#, &cfg(false), 10).unwrap();
        assert_eq!(r.auth, AuthMethod::None);
        assert_eq!(r.grant_types, vec!["authorization_code", "refresh_token"]);
    }

    #[test]
    fn rejections() {
        let c = cfg(false);
        let code = |b: &str| validate(b.as_bytes(), &c, 0).unwrap_err();
        assert_eq!(code("{}").code, ErrorCode::InvalidRedirectUri);
        assert_eq!(
            code(r#"{"redirect_uris":[]}"#).code,
            ErrorCode::InvalidRedirectUri
        );
        assert_eq!(
            code(r#"{"redirect_uris":"https://x/cb"}"#).code,
            ErrorCode::InvalidRedirectUri
        );
        assert_eq!(
            code(r#"{"redirect_uris":["http://evil.example/cb"]}"#).code,
            ErrorCode::InvalidRedirectUri
        );
        assert_eq!(code(r#"{"redirect_uris":["https://x/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#).code, ErrorCode::InvalidClientMetadata);
        assert_eq!(
            code(r#"{"redirect_uris":["https://x/cb"],"grant_types":["client_credentials"]}"#).code,
            ErrorCode::InvalidClientMetadata
        );
        assert_eq!(
            code(r#"{"redirect_uris":["https://x/cb"],"response_types":["token"]}"#).code,
            ErrorCode::InvalidClientMetadata
        );
        assert_eq!(
            code(r#"{"redirect_uris":["https://x/cb"],"client_name":5}"#).code,
            ErrorCode::InvalidClientMetadata
        );
        assert_eq!(code("[1]").code, ErrorCode::InvalidClientMetadata);
        assert_eq!(code("not json").code, ErrorCode::InvalidClientMetadata);
        let huge = format!(
            r#"{{"redirect_uris":["https://x/cb"],"client_name":"{}"}}"#,
            "a".repeat(MAX_BODY)
        );
        assert_eq!(validate(huge.as_bytes(), &c, 0).unwrap_err().status, 413);
    }

    #[test]
    fn stateless_registration_round_trips_and_secret_is_derived() {
        let keys = Keys::derive(b"k");
        let c = cfg(false);
        let rec = validate(br#"{"redirect_uris":["https://x/cb"],"token_endpoint_auth_method":"client_secret_post"}"#, &c, 5).unwrap();
        let reg = register(rec.clone(), &keys, &c, &mut TestRng(9));
        assert!(reg.store.is_none());
        let secret = reg.secret.clone().unwrap();
        assert_eq!(
            lookup(&reg.client_id, &keys, &c, 6),
            ClientLookup::Sealed(rec.clone())
        );
        assert!(secret_matches(&rec, &reg.client_id, secret.secret(), &keys));
        assert!(!secret_matches(&rec, &reg.client_id, "nope", &keys));
        let body = response_body(&reg);
        assert_eq!(body["client_secret_expires_at"], 0);
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
        // a public client has no secret at all
        let pubrec = validate(br#"{"redirect_uris":["https://x/cb"]}"#, &c, 5).unwrap();
        let pubreg = register(pubrec.clone(), &keys, &c, &mut TestRng(9));
        assert!(response_body(&pubreg).get("client_secret").is_none());
        assert!(!secret_matches(
            &pubrec,
            &pubreg.client_id,
            &keys.derived_client_secret(&pubreg.client_id),
            &keys
        ));
    }

    #[test]
    fn kv_registration_stores_hash_only() {
        let keys = Keys::derive(b"k");
        let c = cfg(true);
        let rec = validate(br#"{"redirect_uris":["https://x/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#, &c, 5).unwrap();
        let reg = register(rec, &keys, &c, &mut TestRng(9));
        let (stored, ttl) = reg.store.clone().unwrap();
        assert_eq!(ttl, 90 * 86_400);
        let secret = reg.secret.clone().unwrap();
        assert!(!stored.contains(secret.secret()));
        assert_eq!(
            lookup(&reg.client_id, &keys, &c, 6),
            ClientLookup::Stored(client_key(&reg.client_id))
        );
        let parsed = parse_stored(&stored, 6).unwrap();
        assert!(secret_matches(
            &parsed,
            &reg.client_id,
            secret.secret(),
            &keys
        ));
        assert!(parse_stored(&stored, 5 + ttl).is_none());
        // renewed only when less than half of its time to live is left
        assert!(renewal(&parsed, &c, 6).is_none());
        let (renewed, ttl2) = renewal(&parsed, &c, 5 + ttl / 2 + 1).unwrap();
        assert_eq!(renewed.expires_at, 5 + ttl / 2 + 1 + ttl2);
        assert_eq!(renewed.secret_hash, parsed.secret_hash);
        // without KV, a kv. id is unknown
        assert_eq!(
            lookup(&reg.client_id, &keys, &cfg(false), 6),
            ClientLookup::Unknown
        );
    }

    #[test]
    fn forged_ids_are_unknown() {
        let keys = Keys::derive(b"k");
        for id in [
            "",
            "kv.short",
            "kv.<script>aaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "AAAA",
            "garbage!",
        ] {
            assert_eq!(
                lookup(id, &keys, &cfg(true), 0),
                ClientLookup::Unknown,
                "{id}"
            );
        }
    }
}
