//! `/oauth/callback`: Attio sends the browser back here. The state is checked
//! before anything else (found or opened, not expired, not used, bound to this
//! browser's cookie); then the shell exchanges the code, and the flow ends
//! with the token page (manual) or a broker code for the MCP client.

use super::authorize::error_redirect;
use super::crypto::{ct_eq, Keys, Purpose};
use super::error::{ErrorCode, Help, OAuthError};
use super::http::Reply;
use super::pages::{token_page, TokenView};
use super::params::{append_query, Params};
use super::session::{
    browser_hash, is_token_shaped, place_code, session_key, CodeGrant, CookiePolicy, Session,
    FLOW_TTL,
};
use super::types::{AttioGrant, Rng, UnixTime};

fn start_again(desc: &str) -> OAuthError {
    OAuthError::invalid_request(desc).with_help(Help::StartAgain)
}

#[derive(Debug)]
pub struct CallbackParams {
    pub state: String,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub fn parse(query: &str) -> Result<CallbackParams, OAuthError> {
    let p = Params::parse_form(query.as_bytes()).map_err(|e| start_again(&e.describe()))?;
    let state = p.get("state").ok_or_else(|| {
        start_again("the callback has no state: it did not come from a sign-in started here")
    })?;
    Ok(CallbackParams {
        state: state.to_string(),
        code: p.get("code").map(str::to_string),
        error: p.get("error").map(|e| {
            e.chars()
                .filter(|c| c.is_ascii_lowercase() || *c == '_')
                .take(40)
                .collect()
        }),
        error_description: p
            .get("error_description")
            .map(|d| d.chars().take(200).collect()),
    })
}

/// Where the session is: in KV under a key, or sealed in the state itself.
pub enum Located {
    Stored(String),
    Sealed(Session),
}

fn expired_or_unknown() -> OAuthError {
    start_again("this sign-in has expired, was already used, or did not start here")
}

pub fn locate(state: &str, keys: &Keys, kv: bool, now: UnixTime) -> Result<Located, OAuthError> {
    if kv {
        if is_token_shaped(state) {
            Ok(Located::Stored(session_key(state)))
        } else {
            Err(expired_or_unknown())
        }
    } else {
        keys.open_json(Purpose::State, state, now)
            .map(Located::Sealed)
            .map_err(|_| expired_or_unknown())
    }
}

/// Open a session read from KV (`None`: not found, so expired or used).
pub fn open_stored(
    keys: &Keys,
    stored: Option<&str>,
    now: UnixTime,
) -> Result<Session, OAuthError> {
    let s = stored.ok_or_else(expired_or_unknown)?;
    keys.open_json(Purpose::Stored, s, now)
        .map_err(|_| expired_or_unknown())
}

/// The session must belong to the browser that brought the callback.
pub fn check_browser(
    session: &Session,
    cookie: Option<&str>,
    keys: &Keys,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if session.expires_at <= now {
        return Err(expired_or_unknown());
    }
    let cookie = cookie.ok_or_else(|| {
        start_again("this browser has no sign-in cookie: finish the sign-in in the browser that started it, with cookies enabled")
    })?;
    if ct_eq(
        browser_hash(keys, cookie).as_bytes(),
        session.browser.as_bytes(),
    ) {
        Ok(())
    } else {
        Err(start_again("this sign-in was started in another browser"))
    }
}

/// What to do after the state checks.
pub enum Next {
    /// Exchange this code at Attio.
    Exchange { code: String },
    /// Attio said no (or sent no code): answer this.
    Done(Reply),
}

/// Attio's `error`, or a missing code: a page for the manual flow, a redirect
/// with `access_denied` (or `server_error`) for a client.
pub fn next(session: &Session, params: CallbackParams, base: &str, nonce: &str) -> Next {
    let clear = CookiePolicy::for_base(base).clear_browser();
    let problem = match (&params.error, params.code) {
        (None, Some(code)) => return Next::Exchange { code },
        (Some(e), _) => e.clone(),
        // A malformed callback, not an upstream failure: a 4xx, never 5xx.
        (None, None) => {
            let e = start_again("the callback has neither a code nor an error");
            return Next::Done(
                match &session.client {
                    Some(req) => Reply::redirect(&error_redirect(
                        &req.redirect_uri,
                        ErrorCode::InvalidRequest,
                        &e.description,
                        req.state.as_deref(),
                        base,
                    )),
                    None => e.to_page(nonce),
                }
                .header("Set-Cookie", &clear),
            );
        }
    };
    match &session.client {
        Some(req) => {
            let (code, desc) = if problem == "access_denied" {
                (ErrorCode::AccessDenied, "the user denied access at Attio")
            } else {
                (ErrorCode::ServerError, "Attio did not complete the sign-in")
            };
            Next::Done(
                Reply::redirect(&error_redirect(
                    &req.redirect_uri,
                    code,
                    desc,
                    req.state.as_deref(),
                    base,
                ))
                .header("Set-Cookie", &clear),
            )
        }
        None => {
            let e = if problem == "access_denied" {
                let mut e = OAuthError::new(
                    ErrorCode::AccessDenied,
                    403,
                    "Access was denied at Attio, so no token was issued.",
                );
                if let Some(d) = &params.error_description {
                    e.description =
                        format!("Access was denied at Attio ({d}), so no token was issued.");
                }
                e.with_help(Help::StartAgain)
            } else {
                OAuthError::new(
                    ErrorCode::ServerError,
                    502,
                    format!("Attio did not complete the sign-in ({problem})."),
                )
                .with_help(Help::UpstreamExchange)
            };
            Next::Done(e.to_page(nonce).header("Set-Cookie", &clear))
        }
    }
}

/// The manual flow's end: the token page, with the sign-in cookie cleared.
pub fn token_page_reply(grant: &AttioGrant, base: &str, nonce: &str, stand_in: bool) -> Reply {
    token_page(
        &TokenView {
            access_token: grant.access_token.secret(),
            refresh_token: grant.refresh_token.as_ref().map(|r| r.secret()),
            expires_in: grant.expires_in,
            workspace_name: grant.workspace_name.as_deref(),
            scope: grant.scope.as_deref(),
            stand_in,
        },
        nonce,
    )
    .header("Set-Cookie", &CookiePolicy::for_base(base).clear_browser())
}

/// An upstream failure during the sign-in: the error page, cookie cleared.
pub fn failure_reply(session: &Session, err: &OAuthError, base: &str, nonce: &str) -> Reply {
    let clear = CookiePolicy::for_base(base).clear_browser();
    match &session.client {
        // The client is waiting at its redirect URI: tell it, not a page it
        // may never show.
        Some(req) => {
            let code = if err.status == 503 || err.status == 504 {
                ErrorCode::TemporarilyUnavailable
            } else {
                ErrorCode::ServerError
            };
            Reply::redirect(&error_redirect(
                &req.redirect_uri,
                code,
                &err.description,
                req.state.as_deref(),
                base,
            ))
            .header("Set-Cookie", &clear)
        }
        None => err.to_page(nonce).header("Set-Cookie", &clear),
    }
}

/// A client flow's end: mint the broker's code and send it to the client with
/// `state` and `iss` (RFC 9207).
pub struct Minted {
    pub reply: Reply,
    /// KV mode: (key, value, ttl).
    pub store: Option<(String, String, u64)>,
}

pub fn mint_code(
    session: &Session,
    grant: AttioGrant,
    keys: &Keys,
    kv: bool,
    base: &str,
    now: UnixTime,
    rng: &mut dyn Rng,
) -> Option<Minted> {
    let req = session.client.clone()?;
    let code_grant = CodeGrant {
        request: req.clone(),
        grant,
        expires_at: now + FLOW_TTL,
    };
    let placed = place_code(keys, &code_grant, kv, rng);
    let mut pairs = vec![("code", placed.code.as_str())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", base));
    let reply = Reply::redirect(&append_query(&req.redirect_uri, &pairs))
        .header("Set-Cookie", &CookiePolicy::for_base(base).clear_browser());
    Some(Minted {
        reply,
        store: placed.store.map(|(k, v)| (k, v, FLOW_TTL)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::crypto::test_rng::TestRng;
    use super::super::session::{place_session, ClientRequest};
    use super::super::types::Secret;
    use super::*;

    fn session(keys: &Keys, client: Option<ClientRequest>) -> Session {
        Session {
            browser: browser_hash(keys, "cookie"),
            verifier: Secret::new("v"),
            expires_at: 700,
            client,
        }
    }

    fn req() -> ClientRequest {
        ClientRequest {
            client_ref: "ref".into(),
            redirect_uri: "https://claude.ai/cb".into(),
            redirect_uri_given: true,
            state: Some("st".into()),
            code_challenge: "c".into(),
            scope: None,
            resource: None,
        }
    }

    #[test]
    fn stateless_state_round_trip_and_browser_binding() {
        let keys = Keys::derive(b"k");
        let s = session(&keys, None);
        let placed = place_session(&keys, &s, false, &mut TestRng(1));
        let Located::Sealed(opened) = locate(&placed.state, &keys, false, 100).ok().unwrap() else {
            panic!()
        };
        assert!(check_browser(&opened, Some("cookie"), &keys, 100).is_ok());
        assert!(check_browser(&opened, Some("other"), &keys, 100).is_err());
        assert!(check_browser(&opened, None, &keys, 100).is_err());
        assert!(locate(&placed.state, &keys, false, 700).is_err());
        assert!(locate("forged", &keys, false, 100).is_err());
        assert!(locate("forged", &keys, true, 100).is_err());
    }

    #[test]
    fn denial_is_a_page_for_manual_and_a_redirect_for_clients() {
        let keys = Keys::derive(b"k");
        let p = || parse("state=x&error=access_denied&error_description=%3Cb%3Eno").unwrap();
        match next(&session(&keys, None), p(), "https://b", "n") {
            Next::Done(r) => {
                assert_eq!(r.status, 403);
                assert!(r.body_text().contains("&lt;b&gt;no"));
                assert!(r.get_header("Set-Cookie").unwrap().contains("Max-Age=0"));
            }
            _ => panic!(),
        }
        match next(&session(&keys, Some(req())), p(), "https://b", "n") {
            Next::Done(r) => {
                let loc = r.get_header("Location").unwrap();
                assert!(loc.starts_with("https://claude.ai/cb?error=access_denied"));
                assert!(loc.contains("state=st") && loc.contains("iss=https%3A%2F%2Fb"));
            }
            _ => panic!(),
        }
        assert!(matches!(
            next(
                &session(&keys, None),
                parse("state=x&code=c").unwrap(),
                "https://b",
                "n"
            ),
            Next::Exchange { .. }
        ));
        assert!(parse("code=c").is_err());
        match next(
            &session(&keys, None),
            parse("state=x").unwrap(),
            "https://b",
            "n",
        ) {
            Next::Done(r) => assert_eq!(r.status, 400),
            _ => panic!(),
        }
    }

    #[test]
    fn minted_code_opens_as_the_grant() {
        let keys = Keys::derive(b"k");
        let grant = AttioGrant {
            access_token: Secret::new("at"),
            refresh_token: None,
            expires_in: None,
            scope: None,
            workspace_name: None,
        };
        let m = mint_code(
            &session(&keys, Some(req())),
            grant,
            &keys,
            false,
            "https://b",
            100,
            &mut TestRng(2),
        )
        .unwrap();
        let loc = m.reply.get_header("Location").unwrap().to_string();
        let u = url::Url::parse(&loc).unwrap();
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        let g: CodeGrant = keys.open_json(Purpose::Code, &q["code"], 101).unwrap();
        assert_eq!(g.grant.access_token.secret(), "at");
        assert_eq!(q["state"], "st");
        assert_eq!(q["iss"], "https://b");
        assert!(m.store.is_none());
        assert!(mint_code(
            &session(&keys, None),
            g.grant,
            &keys,
            false,
            "https://b",
            100,
            &mut TestRng(2)
        )
        .is_none());
    }
}
