//! `/oauth/token` and `/oauth/revoke`: parse the request, authenticate the
//! client, redeem a broker code, or forward a refresh or revocation to Attio.

use serde_json::{json, Value};

use super::crypto::{b64url_decode, Keys, Purpose};
use super::error::{ErrorCode, OAuthError};
use super::http::Reply;
use super::params::decode;
pub use super::params::Params;
use super::pkce;
use super::registration::{secret_matches, ClientRecord};
use super::session::{client_ref, code_key, is_token_shaped, CodeGrant};
use super::types::{AttioGrant, AuthMethod, Rng, Secret, UnixTime};

pub const MAX_BODY: usize = 64 * 1024;

/// Parse a token or revocation request body: form (the standard), or JSON
/// for lenient clients. Anything else is `invalid_request`.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Params, OAuthError> {
    if body.len() > MAX_BODY {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            413,
            "the request body is larger than 64 KiB",
        ));
    }
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-www-form-urlencoded" => {
            Params::parse_form(body).map_err(|e| OAuthError::invalid_request(e.describe()))
        }
        "application/json" => {
            Params::parse_json(body).map_err(|e| OAuthError::invalid_request(e.describe()))
        }
        "" => Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        )),
        _ => Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded (or application/json)",
        )),
    }
}

/// How the client presented itself.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Presented {
    pub client_id: Option<String>,
    pub secret: Option<String>,
}

/// Collect client credentials from the body and the `Authorization` header.
/// Two methods at once is `invalid_request` (RFC 6749 §2.3).
pub fn presented_client(
    params: &Params,
    authorization: Option<&str>,
) -> Result<Presented, OAuthError> {
    let body_id = params.get("client_id").map(str::to_string);
    let body_secret = params.get("client_secret").map(str::to_string);
    let basic = match authorization {
        None => None,
        Some(h) => {
            let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client("only HTTP Basic client authentication is supported in the Authorization header"));
            }
            let raw = b64_std_decode(rest.trim())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let text = String::from_utf8(raw)
                .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = text
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            // RFC 6749 §2.3.1: both parts are form-encoded before Basic.
            let id = decode(id.as_bytes()).unwrap_or_else(|_| id.to_string());
            let secret = decode(secret.as_bytes()).unwrap_or_else(|_| secret.to_string());
            Some((id, secret))
        }
    };
    match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not both Basic and client_secret",
                ));
            }
            if body_id.as_ref().is_some_and(|b| *b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok(Presented {
                client_id: Some(id),
                secret: Some(secret).filter(|s| !s.is_empty()),
            })
        }
        None => Ok(Presented {
            client_id: body_id,
            secret: body_secret,
        }),
    }
}

fn b64_std_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .or_else(|| b64url_decode(s.trim_end_matches('=')))
}

/// Authenticate a resolved client per its registered method. Confidential
/// clients may use either Basic or post (they are equally strong); public
/// clients need nothing.
pub fn authenticate(
    record: &ClientRecord,
    client_id: &str,
    presented: &Presented,
    keys: &Keys,
) -> Result<(), OAuthError> {
    match record.auth {
        AuthMethod::None => Ok(()),
        AuthMethod::ClientSecretPost | AuthMethod::ClientSecretBasic => match &presented.secret {
            None => Err(OAuthError::invalid_client(
                "this client must authenticate with its client_secret",
            )),
            Some(s) if secret_matches(record, client_id, s, keys) => Ok(()),
            Some(_) => Err(OAuthError::invalid_client("client authentication failed")),
        },
    }
}

/// Where a broker code is: a KV key, or sealed in the code itself.
pub enum CodeLocation {
    Stored(String),
    Sealed(CodeGrant),
}

/// A code that does not open, has expired or was already used: one answer
/// for all, so a caller learns nothing about which.
pub fn bad_code() -> OAuthError {
    OAuthError::invalid_grant("the authorization code is invalid, expired or already used")
}

pub fn locate_code(
    code: &str,
    keys: &Keys,
    kv: bool,
    now: UnixTime,
) -> Result<CodeLocation, OAuthError> {
    if kv {
        if is_token_shaped(code) {
            return Ok(CodeLocation::Stored(code_key(keys, code)));
        }
        return Err(bad_code());
    }
    keys.open_json(Purpose::Code, code, now)
        .map(CodeLocation::Sealed)
        .map_err(|_| bad_code())
}

pub fn open_stored_code(
    keys: &Keys,
    stored: Option<&str>,
    now: UnixTime,
) -> Result<CodeGrant, OAuthError> {
    keys.open_json(Purpose::Code, stored.ok_or_else(bad_code)?, now)
        .map_err(|_| bad_code())
}

/// Check a redeemed code against the token request: same client, same
/// redirect URI, PKCE.
pub fn check_code(
    grant: &CodeGrant,
    params: &Params,
    client_id: &str,
    keys: &Keys,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if grant.expires_at <= now {
        return Err(bad_code());
    }
    if !super::crypto::ct_eq(
        client_ref(keys, client_id).as_bytes(),
        grant.request.client_ref.as_bytes(),
    ) {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    match params.get("redirect_uri") {
        Some(r) if r == grant.request.redirect_uri => {}
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ))
        }
        None if grant.request.redirect_uri_given => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: it was sent in the authorization request",
            ))
        }
        None => {}
    }
    match pkce::verify(params.get("code_verifier"), &grant.request.code_challenge) {
        Ok(()) => Ok(()),
        Err(pkce::PkceError::Missing) => Err(OAuthError::invalid_request(
            "code_verifier is required (PKCE)",
        )),
        Err(pkce::PkceError::Malformed) => Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 unreserved characters",
        )),
        Err(pkce::PkceError::Mismatch) => Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        )),
    }
}

/// A refresh token as the broker hands it to a client: Attio's refresh
/// token, sealed together with the client it was issued to. Attio's own
/// refresh token is useless without the broker's client secret; the broker
/// adds that secret, so it must make sure only the same client refreshes
/// (RFC 6749 §6).
#[derive(serde::Serialize, serde::Deserialize)]
struct BoundRefresh {
    client_ref: String,
    attio: Secret,
}

/// Replace Attio's refresh token in `grant` (if any) by one bound to `client_id`.
pub fn bind_refresh(grant: &mut AttioGrant, keys: &Keys, client_id: &str, rng: &mut dyn Rng) {
    if let Some(rt) = grant.refresh_token.take() {
        let bound = BoundRefresh {
            client_ref: client_ref(keys, client_id),
            attio: rt,
        };
        grant.refresh_token = Some(Secret::new(keys.seal_json(
            Purpose::Refresh,
            &bound,
            0,
            rng,
        )));
    }
}

/// Which Attio refresh token a refresh request may use, given the client
/// that authenticated (if any). A token bound to a client needs that client;
/// an unbound token is one a person copied from the token page (the manual
/// flow) and is refused from registered clients.
pub fn refresh_for<'a>(
    presented: &'a str,
    client: Option<(&str, &ClientRecord)>,
    keys: &Keys,
    now: UnixTime,
) -> Result<(Secret, bool), OAuthError> {
    match (
        keys.open_json::<BoundRefresh>(Purpose::Refresh, presented, now),
        client,
    ) {
        (Ok(_), None) => Err(OAuthError::invalid_client(
            "this refresh token was issued to a client: authenticate as that client",
        )),
        (Ok(b), Some((id, record))) => {
            if !super::crypto::ct_eq(client_ref(keys, id).as_bytes(), b.client_ref.as_bytes()) {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            if !record.grant_types.iter().any(|g| g == "refresh_token") {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    400,
                    "this client did not register the refresh_token grant",
                ));
            }
            Ok((b.attio, true))
        }
        (Err(_), Some(_)) => Err(OAuthError::invalid_grant(
            "the refresh token is invalid for this client",
        )),
        (Err(_), None) => Ok((Secret::new(presented), false)),
    }
}

/// What to revoke at Attio for a token presented at `/oauth/revoke`: a
/// refresh token the broker bound to a client is unwrapped to Attio's own
/// (`None`: it belongs to another client, so nothing is revoked and, per
/// RFC 7009, the answer is still 200); anything else is passed on as it is.
pub fn revocable(
    presented: &str,
    client_id: Option<&str>,
    keys: &Keys,
    now: UnixTime,
) -> Option<Secret> {
    match keys.open_json::<BoundRefresh>(Purpose::Refresh, presented, now) {
        Ok(b) => match client_id {
            Some(id)
                if !super::crypto::ct_eq(
                    client_ref(keys, id).as_bytes(),
                    b.client_ref.as_bytes(),
                ) =>
            {
                None
            }
            _ => Some(b.attio),
        },
        Err(_) => Some(Secret::new(presented)),
    }
}

/// The token response (RFC 6749 §5.1): the Attio token, the scopes Attio
/// reported, a refresh token only if Attio gave one, an expiry only if Attio
/// gave one.
pub fn token_reply(grant: &AttioGrant) -> Reply {
    let mut v = json!({ "access_token": grant.access_token.secret(), "token_type": "Bearer" });
    let o = v.as_object_mut().expect("json! object");
    if let Some(s) = &grant.scope {
        o.insert("scope".into(), Value::String(s.clone()));
    }
    if let Some(r) = &grant.refresh_token {
        o.insert(
            "refresh_token".into(),
            Value::String(r.secret().to_string()),
        );
    }
    if let Some(e) = grant.expires_in {
        o.insert("expires_in".into(), json!(e));
    }
    Reply::json(200, &v).header("Pragma", "no-cache")
}

/// What the token endpoint is asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode {
        code: String,
    },
    Refresh {
        refresh_token: String,
        scope: Option<String>,
    },
}

pub fn grant(params: &Params) -> Result<Grant, OAuthError> {
    match params.get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is required")),
        Some("authorization_code") => {
            let code = params
                .get("code")
                .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
            Ok(Grant::AuthorizationCode {
                code: code.to_string(),
            })
        }
        Some("refresh_token") => {
            let rt = params
                .get("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
            Ok(Grant::Refresh {
                refresh_token: rt.to_string(),
                scope: params.get("scope").map(str::to_string),
            })
        }
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            400,
            "grant_type must be authorization_code or refresh_token",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::crypto::test_rng::TestRng;
    use super::super::session::{place_code, ClientRequest};
    use super::super::types::Secret;
    use super::*;

    fn form(s: &str) -> Params {
        parse_body(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            s.as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn content_types() {
        assert!(parse_body(Some("application/json"), br#"{"grant_type":"x"}"#).is_ok());
        assert!(parse_body(None, b"a=1").is_err());
        assert!(parse_body(Some("text/plain"), b"a=1").is_err());
        assert!(parse_body(Some(";;;"), b"a=1").is_err());
        assert_eq!(
            parse_body(
                Some("application/x-www-form-urlencoded"),
                &vec![b'a'; MAX_BODY + 1]
            )
            .unwrap_err()
            .status,
            413
        );
    }

    #[test]
    fn grants() {
        assert_eq!(
            grant(&form("grant_type=refresh_token")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            grant(&form("grant_type=password")).unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(
            grant(&form("")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            grant(&form("grant_type=authorization_code&code=c")).unwrap(),
            Grant::AuthorizationCode { code: "c".into() }
        );
    }

    #[test]
    fn client_credentials() {
        use base64::Engine;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("id%3Ax:s%26")
        );
        let p = presented_client(&form(""), Some(&basic)).unwrap();
        assert_eq!(
            p,
            Presented {
                client_id: Some("id:x".into()),
                secret: Some("s&".into())
            }
        );
        assert_eq!(
            presented_client(&form("client_secret=s"), Some(&basic))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            presented_client(&form("client_id=other"), Some(&basic))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            presented_client(&form(""), Some("Bearer x"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            presented_client(&form(""), Some("Basic !!!"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            presented_client(&form("client_id=a&client_secret=b"), None).unwrap(),
            Presented {
                client_id: Some("a".into()),
                secret: Some("b".into())
            }
        );
    }

    #[test]
    fn code_checks() {
        let keys = Keys::derive(b"k");
        let verifier = "a".repeat(43);
        let grant = CodeGrant {
            request: ClientRequest {
                client_ref: client_ref(&keys, "cid"),
                redirect_uri: "https://x/cb".into(),
                redirect_uri_given: true,
                state: None,
                code_challenge: pkce::challenge_s256(&verifier),
                scope: None,
                resource: None,
            },
            grant: AttioGrant {
                access_token: Secret::new("at"),
                refresh_token: None,
                expires_in: None,
                scope: None,
                workspace_name: None,
            },
            expires_at: 700,
        };
        let ok = format!("redirect_uri=https://x/cb&code_verifier={verifier}");
        assert!(check_code(&grant, &form(&ok), "cid", &keys, 100).is_ok());
        assert_eq!(
            check_code(&grant, &form(&ok), "other", &keys, 100)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            check_code(&grant, &form(&ok), "cid", &keys, 700)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        let wrong_uri = format!("redirect_uri=https://x/cb/&code_verifier={verifier}");
        assert_eq!(
            check_code(&grant, &form(&wrong_uri), "cid", &keys, 100)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            check_code(
                &grant,
                &form(&format!("code_verifier={verifier}")),
                "cid",
                &keys,
                100
            )
            .unwrap_err()
            .code,
            ErrorCode::InvalidRequest
        );
        let wrong_v = format!("redirect_uri=https://x/cb&code_verifier={}", "b".repeat(43));
        assert_eq!(
            check_code(&grant, &form(&wrong_v), "cid", &keys, 100)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            check_code(
                &grant,
                &form("redirect_uri=https://x/cb"),
                "cid",
                &keys,
                100
            )
            .unwrap_err()
            .code,
            ErrorCode::InvalidRequest
        );

        // stateless codes open; KV codes are looked up by keyed hash
        let placed = place_code(&keys, &grant, false, &mut TestRng(1));
        assert!(matches!(
            locate_code(&placed.code, &keys, false, 100),
            Ok(CodeLocation::Sealed(_))
        ));
        assert!(locate_code(&placed.code, &keys, false, 700).is_err());
        let kv = place_code(&keys, &grant, true, &mut TestRng(1));
        match locate_code(&kv.code, &keys, true, 100) {
            Ok(CodeLocation::Stored(k)) => assert_eq!(k, kv.store.as_ref().unwrap().0),
            _ => panic!(),
        }
        assert!(open_stored_code(&keys, Some(&kv.store.unwrap().1), 100).is_ok());
        assert!(open_stored_code(&keys, None, 100).is_err());
    }

    #[test]
    fn refresh_tokens_are_bound_to_their_client() {
        let keys = Keys::derive(b"k");
        let rec = |grants: &[&str]| ClientRecord {
            redirect_uris: vec![],
            auth: AuthMethod::None,
            name: None,
            client_uri: None,
            logo_uri: None,
            scope: None,
            software_id: None,
            software_version: None,
            grant_types: grants.iter().map(|g| g.to_string()).collect(),
            issued_at: 0,
            expires_at: 0,
            secret_hash: None,
        };
        let full = rec(&["authorization_code", "refresh_token"]);
        let mut g = AttioGrant {
            access_token: Secret::new("at"),
            refresh_token: Some(Secret::new("attio-rt")),
            expires_in: None,
            scope: None,
            workspace_name: None,
        };
        bind_refresh(&mut g, &keys, "cid", &mut TestRng(4));
        let bound = g.refresh_token.unwrap().secret().to_string();
        assert!(!bound.contains("attio-rt"));
        assert_eq!(
            refresh_for(&bound, Some(("cid", &full)), &keys, 1)
                .unwrap()
                .0
                .secret(),
            "attio-rt"
        );
        assert_eq!(
            refresh_for(&bound, Some(("other", &full)), &keys, 1)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            refresh_for(&bound, None, &keys, 1).unwrap_err().code,
            ErrorCode::InvalidClient
        );
        assert_eq!(
            refresh_for(
                &bound,
                Some(("cid", &rec(&["authorization_code"]))),
                &keys,
                1
            )
            .unwrap_err()
            .code,
            ErrorCode::UnauthorizedClient
        );
        // an unbound (manual flow) token works only without a client
        assert_eq!(
            refresh_for("raw", None, &keys, 1).unwrap().0.secret(),
            "raw"
        );
        assert_eq!(
            refresh_for("raw", Some(("cid", &full)), &keys, 1)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        // revocation unwraps a bound token for its own client only
        assert_eq!(
            revocable(&bound, Some("cid"), &keys, 1).unwrap().secret(),
            "attio-rt"
        );
        assert_eq!(
            revocable(&bound, None, &keys, 1).unwrap().secret(),
            "attio-rt"
        );
        assert!(revocable(&bound, Some("other"), &keys, 1).is_none());
        assert_eq!(
            revocable("at", Some("cid"), &keys, 1).unwrap().secret(),
            "at"
        );
    }

    #[test]
    fn token_reply_never_invents_expiry() {
        let g = AttioGrant {
            access_token: Secret::new("at"),
            refresh_token: None,
            expires_in: None,
            scope: Some("a:read".into()),
            workspace_name: None,
        };
        let r = token_reply(&g);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            json!({"access_token":"at","token_type":"Bearer","scope":"a:read"})
        );
        assert_eq!(r.get_header("Cache-Control"), Some("no-store"));
    }
}
