//! Attio's endpoints as values: the core builds each request, the shell sends
//! it with a deadline, and the core classifies the answer. Attio's raw bodies
//! never reach a user or a log.

use serde_json::Value;

use super::config::Config;
use super::error::{ErrorCode, Help, OAuthError};
use super::params::encode_form;
use super::types::{AttioGrant, Secret};

/// Deadline for the token exchange and refresh.
pub const TOKEN_DEADLINE_MS: u64 = 10_000;
/// Deadline for the best-effort introspection after a sign-in.
pub const INTROSPECT_DEADLINE_MS: u64 = 3_000;
/// Deadline for revocation.
pub const REVOKE_DEADLINE_MS: u64 = 5_000;
/// Most bytes of an Attio answer the shell reads.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An HTTP request to Attio. `Debug` hides the body and headers: they carry
/// secrets.
pub struct Outbound {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
    pub deadline_ms: u64,
    /// Most bytes of the answer to read.
    pub max_bytes: usize,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outbound({} {})", self.method, self.url)
    }
}

/// What came back, as the shell saw it.
#[derive(Debug)]
pub enum Answer {
    Http {
        status: u16,
        retry_after: Option<String>,
        cache_control: Option<String>,
        body: Vec<u8>,
        truncated: bool,
    },
    Timeout,
    Network,
}

fn form_post(url: &str, pairs: &[(&str, &str)], deadline_ms: u64) -> Outbound {
    Outbound {
        method: "POST",
        url: url.to_string(),
        headers: vec![
            ("Content-Type", "application/x-www-form-urlencoded".into()),
            ("Accept", "application/json".into()),
        ],
        body: Some(encode_form(pairs)),
        deadline_ms,
        max_bytes: MAX_RESPONSE_BYTES,
    }
}

fn credentials(cfg: &Config) -> (&str, &str) {
    (
        cfg.attio_client_id.as_deref().unwrap_or_default(),
        cfg.attio_client_secret
            .as_ref()
            .map(Secret::secret)
            .unwrap_or_default(),
    )
}

/// Exchange Attio's code (client secret in the body, as Attio documents).
pub fn code_exchange(cfg: &Config, code: &str, redirect_uri: &str, verifier: &str) -> Outbound {
    let (id, secret) = credentials(cfg);
    form_post(
        &cfg.token_url,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", id),
            ("client_secret", secret),
            ("code_verifier", verifier),
        ],
        TOKEN_DEADLINE_MS,
    )
}

pub fn refresh(cfg: &Config, refresh_token: &str, scope: Option<&str>) -> Outbound {
    let (id, secret) = credentials(cfg);
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", id),
        ("client_secret", secret),
    ];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    form_post(&cfg.token_url, &pairs, TOKEN_DEADLINE_MS)
}

pub fn introspect(cfg: &Config, access_token: &str) -> Outbound {
    Outbound {
        method: "POST",
        url: cfg.introspect_url.clone(),
        headers: vec![
            ("Authorization", format!("Bearer {access_token}")),
            ("Accept", "application/json".into()),
        ],
        body: None,
        deadline_ms: INTROSPECT_DEADLINE_MS,
        max_bytes: MAX_RESPONSE_BYTES,
    }
}

pub fn revoke(cfg: &Config, token: &str) -> Outbound {
    let (id, secret) = credentials(cfg);
    form_post(
        &cfg.revoke_url,
        &[
            ("token", token),
            ("client_id", id),
            ("client_secret", secret),
        ],
        REVOKE_DEADLINE_MS,
    )
}

/// Why a call to Attio did not give what was needed. `Display`-free on
/// purpose: it carries only a status, never a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// Attio refused (4xx other than 429); `error` is its RFC 6749 code if any.
    Refused {
        status: u16,
        error: Option<String>,
    },
    /// Attio is rate limiting (429).
    RateLimited {
        retry_after: Option<String>,
    },
    /// Attio failed (5xx).
    Failed {
        status: u16,
        retry_after: Option<String>,
    },
    /// 2xx, but not a usable body (not JSON, empty, too large, no token).
    BadBody,
    Timeout,
    Network,
}

impl UpstreamError {
    /// For the log: a status and a kind, nothing from the body.
    pub fn log_line(&self, what: &str) -> String {
        match self {
            UpstreamError::Refused { status, .. } => {
                format!("attio {what}: refused with HTTP {status}")
            }
            UpstreamError::RateLimited { .. } => format!("attio {what}: rate limited (HTTP 429)"),
            UpstreamError::Failed { status, .. } => {
                format!("attio {what}: failed with HTTP {status}")
            }
            UpstreamError::BadBody => format!("attio {what}: unusable response body"),
            UpstreamError::Timeout => format!("attio {what}: timed out"),
            UpstreamError::Network => format!("attio {what}: network error"),
        }
    }

    /// As an OAuth error for an API endpoint (token refresh, revoke).
    pub fn to_api_error(&self) -> OAuthError {
        match self {
            UpstreamError::Refused { error: Some(e), .. }
                if e == "invalid_client" || e == "unauthorized_client" =>
            {
                OAuthError::new(
                    ErrorCode::ServerError,
                    502,
                    "Attio rejected the broker's client credentials",
                )
            }
            UpstreamError::Refused {
                status: 401,
                error: None,
            } => OAuthError::new(
                ErrorCode::ServerError,
                502,
                "Attio rejected the broker's client credentials",
            ),
            UpstreamError::Refused { .. } => OAuthError::invalid_grant("Attio rejected the grant"),
            UpstreamError::RateLimited { retry_after } => {
                let mut e = OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    503,
                    "Attio is rate limiting requests; retry later",
                );
                e.retry_after = Some(retry_after.clone().unwrap_or_else(|| "60".into()));
                e
            }
            UpstreamError::Failed {
                status,
                retry_after,
            } => {
                let mut e = OAuthError::new(
                    ErrorCode::ServerError,
                    502,
                    format!("Attio failed with HTTP {status}"),
                );
                e.retry_after = retry_after.clone();
                e
            }
            UpstreamError::BadBody => OAuthError::new(
                ErrorCode::ServerError,
                502,
                "Attio's answer was not a usable token response",
            ),
            UpstreamError::Timeout => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                504,
                "Attio did not answer in time",
            ),
            UpstreamError::Network => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                502,
                "Attio could not be reached",
            ),
        }
    }

    /// At the revocation endpoint: whatever went wrong at Attio, the broker
    /// could not revoke right now (RFC 7009 §2.2.1: 503).
    pub fn to_revoke_error(&self) -> OAuthError {
        let e = self.to_api_error();
        if e.status == 503 {
            return e;
        }
        let mut e = OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            503,
            "Attio could not revoke the token right now; retry later",
        );
        e.retry_after = Some("30".into());
        e
    }

    /// As an error page after a browser sign-in.
    pub fn to_page_error(&self) -> OAuthError {
        let mut e = self.to_api_error();
        match self {
            UpstreamError::Refused { status, .. } => {
                e = OAuthError::new(
                    ErrorCode::InvalidGrant,
                    502,
                    format!("Attio refused to exchange the sign-in code (HTTP {status})."),
                );
                e.help = Help::UpstreamExchange;
            }
            UpstreamError::BadBody => {
                e.description =
                    "Attio's answer to the code exchange did not contain an access token.".into();
                e.help = Help::UpstreamExchange;
            }
            _ => e.help = Help::UpstreamUnavailable,
        }
        e
    }
}

fn classify(answer: &Answer) -> Result<Value, UpstreamError> {
    match answer {
        Answer::Timeout => Err(UpstreamError::Timeout),
        Answer::Network => Err(UpstreamError::Network),
        Answer::Http {
            status,
            retry_after,
            body,
            truncated,
            ..
        } => {
            let json: Option<Value> = if *truncated {
                None
            } else {
                serde_json::from_slice(body).ok()
            };
            match *status {
                200..=299 => json.filter(Value::is_object).ok_or(UpstreamError::BadBody),
                429 => Err(UpstreamError::RateLimited {
                    retry_after: retry_after.clone(),
                }),
                400..=499 => Err(UpstreamError::Refused {
                    status: *status,
                    error: json
                        .as_ref()
                        .and_then(|j| j.get("error"))
                        .and_then(Value::as_str)
                        .map(sanitize_code),
                }),
                _ => Err(UpstreamError::Failed {
                    status: *status,
                    retry_after: retry_after.clone(),
                }),
            }
        }
    }
}

/// Keep only an RFC 6749-shaped error code from Attio (letters and `_`).
fn sanitize_code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .take(40)
        .collect()
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parse a token answer (code exchange or refresh).
pub fn parse_token(answer: &Answer) -> Result<AttioGrant, UpstreamError> {
    let v = classify(answer)?;
    let access_token = str_field(&v, "access_token").ok_or(UpstreamError::BadBody)?;
    if let Some(t) = str_field(&v, "token_type") {
        if !t.eq_ignore_ascii_case("bearer") {
            return Err(UpstreamError::BadBody);
        }
    }
    Ok(AttioGrant {
        access_token: Secret::new(access_token),
        refresh_token: str_field(&v, "refresh_token").map(Secret::new),
        expires_in: v.get("expires_in").and_then(Value::as_u64),
        scope: str_field(&v, "scope"),
        workspace_name: None,
    })
}

/// What introspection told us, when it worked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    pub workspace_name: Option<String>,
}

pub fn parse_introspection(answer: &Answer) -> Option<Introspection> {
    let v = classify(answer).ok()?;
    Some(Introspection {
        active: v.get("active").and_then(Value::as_bool).unwrap_or(false),
        scope: str_field(&v, "scope"),
        workspace_name: str_field(&v, "workspace_name"),
    })
}

/// Add what introspection found to the grant (only if the token is active).
pub fn enrich(grant: &mut AttioGrant, info: Option<Introspection>) {
    if let Some(i) = info.filter(|i| i.active) {
        if grant.scope.is_none() {
            grant.scope = i.scope;
        }
        grant.workspace_name = i.workspace_name;
    }
}

/// RFC 7009: success and "no such token" are both fine for the client.
pub fn parse_revoke(answer: &Answer) -> Result<(), UpstreamError> {
    match answer {
        Answer::Http { status, .. } if (200..300).contains(status) => Ok(()),
        Answer::Http {
            status: 400 | 404, ..
        } => Ok(()),
        other => match classify(other) {
            Ok(_) => Ok(()),
            Err(UpstreamError::Refused { status, error })
                if error.as_deref() == Some("invalid_token") =>
            {
                let _ = status;
                Ok(())
            }
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, body: &str) -> Answer {
        Answer::Http {
            status,
            retry_after: None,
            cache_control: None,
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn token_success_without_expiry() {
        let g = parse_token(&http(200, r#"{"access_token":"at","token_type":"Bearer"}"#)).unwrap();
        assert_eq!(g.access_token.secret(), "at");
        assert!(g.expires_in.is_none() && g.refresh_token.is_none());
    }

    #[test]
    fn token_failures_are_classified() {
        assert_eq!(
            parse_token(&http(200, "<html>")).unwrap_err(),
            UpstreamError::BadBody
        );
        assert_eq!(
            parse_token(&http(200, "")).unwrap_err(),
            UpstreamError::BadBody
        );
        assert_eq!(
            parse_token(&http(200, r#"{"token_type":"Bearer"}"#)).unwrap_err(),
            UpstreamError::BadBody
        );
        assert_eq!(
            parse_token(&http(200, r#"{"access_token":"x","token_type":"mac"}"#)).unwrap_err(),
            UpstreamError::BadBody
        );
        assert_eq!(
            parse_token(&Answer::Http {
                status: 200,
                retry_after: None,
                cache_control: None,
                body: b"{}".to_vec(),
                truncated: true
            })
            .unwrap_err(),
            UpstreamError::BadBody
        );
        assert_eq!(
            parse_token(&http(400, r#"{"error":"invalid_grant"}"#)).unwrap_err(),
            UpstreamError::Refused {
                status: 400,
                error: Some("invalid_grant".into())
            }
        );
        assert_eq!(
            parse_token(&http(400, r#"{"status_code":400,"message":"x"}"#)).unwrap_err(),
            UpstreamError::Refused {
                status: 400,
                error: None
            }
        );
        let e = parse_token(&Answer::Http {
            status: 429,
            retry_after: Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
            cache_control: None,
            body: vec![],
            truncated: false,
        })
        .unwrap_err();
        assert_eq!(e.to_api_error().status, 503);
        assert_eq!(
            e.to_api_error().retry_after.as_deref(),
            Some("Wed, 21 Oct 2026 07:28:00 GMT")
        );
        assert_eq!(
            parse_token(&http(500, ""))
                .unwrap_err()
                .to_api_error()
                .status,
            502
        );
        assert_eq!(
            parse_token(&Answer::Timeout)
                .unwrap_err()
                .to_api_error()
                .status,
            504
        );
        assert_eq!(
            parse_token(&Answer::Network)
                .unwrap_err()
                .to_api_error()
                .status,
            502
        );
    }

    #[test]
    fn page_errors_explain() {
        let e = UpstreamError::Refused {
            status: 400,
            error: None,
        }
        .to_page_error();
        assert_eq!(e.help, Help::UpstreamExchange);
        assert_eq!(
            UpstreamError::Timeout.to_page_error().help,
            Help::UpstreamUnavailable
        );
        assert!(!UpstreamError::Refused {
            status: 401,
            error: Some("<x>".into())
        }
        .log_line("token")
        .contains('<'));
    }

    #[test]
    fn introspection_enriches_only_when_active() {
        let mut g = parse_token(&http(200, r#"{"access_token":"at"}"#)).unwrap();
        enrich(
            &mut g,
            parse_introspection(&http(200, r#"{"active":false,"workspace_name":"W"}"#)),
        );
        assert!(g.workspace_name.is_none());
        enrich(
            &mut g,
            parse_introspection(&http(
                200,
                r#"{"active":true,"workspace_name":"W","scope":"a:read"}"#,
            )),
        );
        assert_eq!(g.workspace_name.as_deref(), Some("W"));
        assert_eq!(g.scope.as_deref(), Some("a:read"));
    }

    #[test]
    fn requests_carry_credentials_but_debug_does_not() {
        let cfg = Config::from_lookup(
            |k| match k {
                "ATTIO_CLIENT_ID" => Some("id".into()),
                "ATTIO_CLIENT_SECRET" => Some("sekrit".into()),
                _ => None,
            },
            false,
        );
        let o = code_exchange(&cfg, "c", "https://b/oauth/callback", "v");
        assert!(o.body.as_deref().unwrap().contains("client_secret=sekrit"));
        assert!(!format!("{o:?}").contains("sekrit"));
        assert_eq!(parse_revoke(&http(204, "")), Ok(()));
        assert_eq!(parse_revoke(&http(400, "{}")), Ok(()));
        let down = parse_revoke(&http(503, "")).unwrap_err().to_revoke_error();
        assert_eq!(
            (down.status, down.code),
            (503, ErrorCode::TemporarilyUnavailable)
        );
        assert_eq!(down.retry_after.as_deref(), Some("30"));
        let limited = UpstreamError::RateLimited {
            retry_after: Some("9".into()),
        }
        .to_revoke_error();
        assert_eq!(limited.retry_after.as_deref(), Some("9"));
    }
}
