//! `/oauth/authorize`: the manual flow (no `client_id`), an MCP client's
//! request (checked against its registration), the consent page and its
//! submission, and the redirect to Attio.
//!
//! Order of checks for a client, per RFC 6749 §4.1.2.1: until the client and
//! its redirect URI are verified, errors are shown as a page and never
//! redirected; after that they go back to the client as `error=...`.

use super::config::Config;
use super::crypto::{Keys, Purpose};
use super::error::{ErrorCode, Help, OAuthError};
use super::http::Reply;
use super::pages::{consent_page, ConsentView};
use super::params::{append_query, Params};
use super::pkce;
use super::redirect;
use super::registration::ClientRecord;
use super::session::{
    browser_hash, browser_value, client_ref, is_approved, place_session, read_approvals,
    write_approvals, ClientRequest, CookiePolicy, PendingConsent, Session, FLOW_TTL,
};
use super::types::{Rng, Secret, UnixTime};

pub const MAX_STATE_LEN: usize = 1024;
pub const MAX_SCOPE_LEN: usize = 4096;
pub const MAX_RESOURCE_LEN: usize = 2000;
/// Everything a client asks the broker to carry through the flow (redirect
/// URI, state, scope, resource) must fit in this many bytes, so that the
/// sealed consent form, state and code stay well under their 8 KiB limit.
pub const MAX_CARRIED_LEN: usize = 4096;

/// Parse the query of `GET /oauth/authorize`.
pub fn parse_query(query: &str) -> Result<Params, OAuthError> {
    Params::parse_form(query.as_bytes())
        .map_err(|e| OAuthError::invalid_request(e.describe()).with_help(Help::BadClientRequest))
}

/// An error page for a request that cannot be trusted to redirect.
fn page_error(desc: &str) -> OAuthError {
    OAuthError::invalid_request(desc).with_help(Help::BadClientRequest)
}

pub fn unknown_client() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidClient,
        400,
        "this client is not registered with this broker (or its registration has expired)",
    )
    .with_help(Help::BadClientRequest)
}

/// Build an error redirect to a verified client redirect URI (with `iss`,
/// RFC 9207).
pub fn error_redirect(
    redirect_uri: &str,
    code: ErrorCode,
    desc: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut pairs = vec![("error", code.as_str()), ("error_description", desc)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", issuer));
    append_query(redirect_uri, &pairs)
}

/// What a checked client request leads to.
#[derive(Debug)]
pub enum Checked {
    Ok(ClientRequest),
    /// Show this error page (client or redirect URI not verified).
    Page(OAuthError),
    /// Send the browser back to the client with an error.
    Redirect(String),
}

/// Check an MCP client's authorization request against its registration.
pub fn check_client_request(
    params: &Params,
    client_id: &str,
    client: &ClientRecord,
    keys: &Keys,
    issuer: &str,
) -> Checked {
    // 1. The redirect URI: registered, or the only one registered.
    let (redirect_uri, given) = match params.get("redirect_uri") {
        Some(r) => match client
            .redirect_uris
            .iter()
            .any(|reg| redirect::matches(reg, r))
        {
            true => (r.to_string(), true),
            false => {
                return Checked::Page(page_error(
                    "redirect_uri is not one of the client's registered redirect URIs",
                ))
            }
        },
        None if client.redirect_uris.len() == 1 => (client.redirect_uris[0].clone(), false),
        None => {
            return Checked::Page(page_error(
                "redirect_uri is required when a client registered several",
            ))
        }
    };
    // From here on errors go back to the client.
    let state = params.get("state");
    if state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        let e = "state is longer than 1024 characters";
        return Checked::Redirect(error_redirect(
            &redirect_uri,
            ErrorCode::InvalidRequest,
            e,
            None,
            issuer,
        ));
    }
    let fail = |code: ErrorCode, desc: &str| {
        Checked::Redirect(error_redirect(&redirect_uri, code, desc, state, issuer))
    };
    match params.get("response_type") {
        Some("code") => {}
        None => return fail(ErrorCode::InvalidRequest, "response_type is required"),
        Some(_) => {
            return fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )
        }
    }
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, _) => {
            return fail(
                ErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            )
        }
        (Some(_), Some("S256")) => params.get("code_challenge").unwrap_or_default(),
        (Some(_), _) => {
            return fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not allowed)",
            )
        }
    };
    if !pkce::is_valid_challenge(challenge) {
        return fail(
            ErrorCode::InvalidRequest,
            "code_challenge must be 43 base64url characters (S256)",
        );
    }
    let scope = params.get("scope");
    if scope.is_some_and(|s| s.len() > MAX_SCOPE_LEN) {
        return fail(ErrorCode::InvalidScope, "scope is too long");
    }
    let resource = params.get("resource");
    if let Some(r) = resource {
        let ok = r.len() <= MAX_RESOURCE_LEN && !r.contains('#') && url::Url::parse(r).is_ok();
        if !ok {
            return fail(
                ErrorCode::InvalidRequest,
                "resource must be an absolute URI without a fragment",
            );
        }
    }
    let carried = redirect_uri.len()
        + state.map_or(0, str::len)
        + scope.map_or(0, str::len)
        + resource.map_or(0, str::len);
    if carried > MAX_CARRIED_LEN {
        return fail(
            ErrorCode::InvalidRequest,
            "redirect_uri, state, scope and resource together are longer than 4096 bytes",
        );
    }
    Checked::Ok(ClientRequest {
        client_ref: client_ref(keys, client_id),
        redirect_uri,
        redirect_uri_given: given,
        state: state.map(str::to_string),
        code_challenge: challenge.to_string(),
        scope: scope.map(str::to_string),
        resource: resource.map(str::to_string),
    })
}

/// The start of a sign-in at Attio: where to send the browser, which cookies
/// to set, and (with KV) which session record to store.
pub struct Started {
    pub location: String,
    pub cookies: Vec<String>,
    pub store: Option<(String, String, u64)>,
}

impl Started {
    pub fn reply(&self) -> Reply {
        let mut r = Reply::redirect(&self.location);
        for c in &self.cookies {
            r = r.header("Set-Cookie", c);
        }
        r
    }
}

/// Create the session, bind it to the browser and point at Attio with the
/// broker's own PKCE challenge.
pub fn start_signin(
    cfg: &Config,
    keys: &Keys,
    base: &str,
    browser_cookie: Option<&str>,
    client: Option<ClientRequest>,
    now: UnixTime,
    rng: &mut dyn Rng,
) -> Started {
    let policy = CookiePolicy::for_base(base);
    let (browser, _) = browser_value(browser_cookie, rng);
    let verifier = pkce::new_verifier(rng);
    let challenge = pkce::challenge_s256(&verifier);
    let session = Session {
        browser: browser_hash(keys, &browser),
        verifier: Secret::new(verifier),
        expires_at: now + FLOW_TTL,
        client,
    };
    let placed = place_session(keys, &session, cfg.kv_bound, rng);
    let callback = format!("{base}/oauth/callback");
    let location = append_query(
        &cfg.authorize_url,
        &[
            (
                "client_id",
                cfg.attio_client_id.as_deref().unwrap_or_default(),
            ),
            ("response_type", "code"),
            ("redirect_uri", &callback),
            ("state", &placed.state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let store = placed
        .store
        .map(|v| (super::session::session_key(&placed.state), v, FLOW_TTL));
    Started {
        location,
        cookies: vec![policy.set_browser(&browser)],
        store,
    }
}

/// What an approval is remembered for: this client *and* this exact redirect
/// URI. A public client's id is no secret, so an approval must not carry
/// over to another loopback port or another address (RFC 8252 §8.6).
fn approval_ref(keys: &Keys, req: &ClientRequest) -> String {
    keys.storage_hash(format!("approval:{}:{}", req.client_ref, req.redirect_uri).as_bytes())[..22]
        .to_string()
}

/// Has this browser already approved this client for this redirect URI?
pub fn already_approved(
    keys: &Keys,
    cookie: Option<&str>,
    req: &ClientRequest,
    now: UnixTime,
) -> bool {
    is_approved(&read_approvals(keys, cookie, now), &approval_ref(keys, req))
}

/// The consent page, bound to this browser: the form carries the sealed
/// request, which opens only with this browser's cookie.
pub fn consent(
    keys: &Keys,
    base: &str,
    browser_cookie: Option<&str>,
    client_id: &str,
    req: ClientRequest,
    client: &ClientRecord,
    nonce: &str,
    now: UnixTime,
    rng: &mut dyn Rng,
) -> Reply {
    let policy = CookiePolicy::for_base(base);
    let (browser, _) = browser_value(browser_cookie, rng);
    let host = redirect::display_host(&req.redirect_uri);
    let published_by = if super::cimd::is_document_id(client_id) {
        super::cimd::document_host(client_id)
    } else {
        None
    };
    let pending = PendingConsent {
        browser: browser_hash(keys, &browser),
        request: req,
        client_name: client.name.clone(),
    };
    let sealed = keys.seal_json(Purpose::Consent, &pending, now + FLOW_TTL, rng);
    consent_page(
        &ConsentView {
            client_name: client.name.as_deref(),
            redirect_host: &host,
            client_uri: client.client_uri.as_deref(),
            published_by: published_by.as_deref(),
            consent: &sealed,
        },
        nonce,
    )
    .header("Set-Cookie", &policy.set_browser(&browser))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// Check a consent form submission: the sealed request must open and belong
/// to this browser (CSRF protection), and the action must be known.
pub fn check_consent_submission(
    body: &[u8],
    keys: &Keys,
    browser_cookie: Option<&str>,
    now: UnixTime,
) -> Result<(Decision, ClientRequest), OAuthError> {
    let params = Params::parse_form(body).map_err(|e| page_error(&e.describe()))?;
    let sealed = params
        .get("consent")
        .ok_or_else(|| page_error("the consent form is incomplete"))?;
    let pending: PendingConsent = keys.open_json(Purpose::Consent, sealed, now).map_err(|_| {
        OAuthError::invalid_request("this consent form has expired or is not valid")
            .with_help(Help::StartAgain)
    })?;
    let Some(cookie) = browser_cookie else {
        return Err(
            OAuthError::invalid_request("this browser's sign-in cookie is missing")
                .with_help(Help::StartAgain),
        );
    };
    if !super::crypto::ct_eq(
        browser_hash(keys, cookie).as_bytes(),
        pending.browser.as_bytes(),
    ) {
        return Err(OAuthError::invalid_request(
            "this consent form was not issued to this browser",
        )
        .with_help(Help::StartAgain));
    }
    let decision = match params.get("action") {
        Some("approve") => Decision::Approve,
        Some("deny") => Decision::Deny,
        _ => return Err(page_error("choose Approve or Deny")),
    };
    Ok((decision, pending.request))
}

/// After an approval: the cookie that remembers it.
pub fn remember_approval(
    keys: &Keys,
    base: &str,
    existing: Option<&str>,
    req: &ClientRequest,
    now: UnixTime,
) -> String {
    let policy = CookiePolicy::for_base(base);
    let list = read_approvals(keys, existing, now);
    policy.set_approvals(&write_approvals(keys, list, &approval_ref(keys, req), now))
}

/// After a denial: back to the client with `access_denied`.
pub fn denied_redirect(req: &ClientRequest, issuer: &str) -> String {
    error_redirect(
        &req.redirect_uri,
        ErrorCode::AccessDenied,
        "the user denied access",
        req.state.as_deref(),
        issuer,
    )
}

#[cfg(test)]
mod tests {
    use super::super::crypto::test_rng::TestRng;
    use super::super::types::AuthMethod;
    use super::*;

    fn client() -> ClientRecord {
        ClientRecord {
            redirect_uris: vec![
                "https://claude.ai/api/mcp/auth_callback".into(),
                "http://localhost:3334/cb".into(),
            ],
            auth: AuthMethod::None,
            name: Some("Claude".into()),
            client_uri: None,
            logo_uri: None,
            scope: None,
            software_id: None,
            software_version: None,
            grant_types: vec!["authorization_code".into()],
            issued_at: 0,
            expires_at: 0,
            secret_hash: None,
        }
    }

    fn q(s: &str) -> Params {
        parse_query(s).unwrap()
    }

    const CH: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn check(query: &str) -> Checked {
        check_client_request(
            &q(query),
            "cid",
            &client(),
            &Keys::derive(b"k"),
            "https://b.dev",
        )
    }

    #[test]
    fn valid_request() {
        let query = format!("response_type=code&redirect_uri=http://localhost:9999/cb&state=xyz&code_challenge={CH}&code_challenge_method=S256&resource=https://mcp.example/mcp&scope=a");
        match check(&query) {
            Checked::Ok(r) => {
                assert_eq!(r.redirect_uri, "http://localhost:9999/cb");
                assert_eq!(r.state.as_deref(), Some("xyz"));
                assert_eq!(r.resource.as_deref(), Some("https://mcp.example/mcp"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unverified_redirect_is_a_page_never_a_redirect() {
        assert!(matches!(
            check("response_type=code&redirect_uri=https://evil.example/cb"),
            Checked::Page(_)
        ));
        assert!(matches!(check("response_type=code"), Checked::Page(_)));
    }

    #[test]
    fn errors_after_verification_redirect_with_state_and_iss() {
        let base = "redirect_uri=https://claude.ai/api/mcp/auth_callback&state=s1";
        for (extra, code) in [
            (
                format!("&code_challenge={CH}&code_challenge_method=S256"),
                "invalid_request",
            ),
            (
                format!("&response_type=token&code_challenge={CH}&code_challenge_method=S256"),
                "unsupported_response_type",
            ),
            ("&response_type=code".to_string(), "invalid_request"),
            (
                format!("&response_type=code&code_challenge={CH}&code_challenge_method=plain"),
                "invalid_request",
            ),
            (
                format!("&response_type=code&code_challenge={CH}"),
                "invalid_request",
            ),
            (
                "&response_type=code&code_challenge=short&code_challenge_method=S256".to_string(),
                "invalid_request",
            ),
        ] {
            match check(&format!("{base}{extra}")) {
                Checked::Redirect(url) => {
                    let u = url::Url::parse(&url).unwrap();
                    let p: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
                    assert_eq!(p["error"], code, "{extra}");
                    assert_eq!(p["state"], "s1");
                    assert_eq!(p["iss"], "https://b.dev");
                    assert!(url.starts_with("https://claude.ai/api/mcp/auth_callback?"));
                }
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn carried_values_have_one_budget() {
        let q = format!("response_type=code&redirect_uri=http://localhost:1/cb&code_challenge={CH}&code_challenge_method=S256&scope={}&resource=https://r.example/{}", "s".repeat(3000), "r".repeat(1500));
        match check(&q) {
            Checked::Redirect(url) => assert!(url.contains("error=invalid_request")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_signin_points_at_attio_with_pkce() {
        let cfg = Config::from_lookup(
            |k| (k == "ATTIO_CLIENT_ID").then(|| "attio-id".to_string()),
            false,
        );
        let s = start_signin(
            &cfg,
            &Keys::derive(b"k"),
            "https://b.dev",
            None,
            None,
            100,
            &mut TestRng(4),
        );
        let u = url::Url::parse(&s.location).unwrap();
        let p: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(p["client_id"], "attio-id");
        assert_eq!(p["redirect_uri"], "https://b.dev/oauth/callback");
        assert_eq!(p["code_challenge_method"], "S256");
        assert_eq!(p["response_type"], "code");
        assert!(s.store.is_none());
        assert!(s.cookies[0].starts_with("__Host-attio_broker_browser="));
    }

    #[test]
    fn consent_submission_is_bound_to_the_browser() {
        let keys = Keys::derive(b"k");
        let req = match check(&format!("response_type=code&redirect_uri=http://localhost:1/cb&code_challenge={CH}&code_challenge_method=S256")) {
            Checked::Ok(r) => r,
            other => panic!("{other:?}"),
        };
        let cookie = "A".repeat(43);
        let page = consent(
            &keys,
            "http://l",
            Some(&cookie),
            "cid",
            req.clone(),
            &client(),
            "n",
            100,
            &mut TestRng(2),
        );
        let html = page.body_text().to_string();
        let start = html.find("name=\"consent\" value=\"").unwrap() + 22;
        let sealed = &html[start..start + html[start..].find('"').unwrap()];
        let body = format!("consent={sealed}&action=approve");
        let (d, r) = check_consent_submission(body.as_bytes(), &keys, Some(&cookie), 101).unwrap();
        assert_eq!(d, Decision::Approve);
        assert_eq!(r, req);
        assert!(
            check_consent_submission(body.as_bytes(), &keys, Some(&"B".repeat(43)), 101).is_err()
        );
        assert!(check_consent_submission(body.as_bytes(), &keys, None, 101).is_err());
        assert!(
            check_consent_submission(body.as_bytes(), &keys, Some(&cookie), 100 + FLOW_TTL)
                .is_err()
        );
        let deny = format!("consent={sealed}&action=deny");
        assert_eq!(
            check_consent_submission(deny.as_bytes(), &keys, Some(&cookie), 101)
                .unwrap()
                .0,
            Decision::Deny
        );
        let other = format!("consent={sealed}&action=maybe");
        assert!(check_consent_submission(other.as_bytes(), &keys, Some(&cookie), 101).is_err());
        // approval is remembered
        let set = remember_approval(&keys, "http://l", None, &req, 101);
        let value = set.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(already_approved(&keys, Some(value), &req, 102));
        let mut other_port = req.clone();
        other_port.redirect_uri = "http://localhost:2/cb".into();
        assert!(!already_approved(&keys, Some(value), &other_port, 102));
    }
}
