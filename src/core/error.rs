//! One error type for the whole broker. API endpoints render it as RFC 6749
//! JSON; browser endpoints render it as a friendly page; authorization errors
//! for a verified client become a redirect (see `authorize`).

use serde_json::json;

use super::http::Reply;

/// Wire names of OAuth errors (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2;
/// RFC 7009), plus the few HTTP-level ones the broker needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidRedirectUri,
    InvalidClientMetadata,
    NotFound,
    MethodNotAllowed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
        }
    }
}

/// What a person should check, shown on the error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Help {
    None,
    /// The browser flow expired, was used, or came back without its cookie.
    StartAgain,
    /// Attio refused or failed the code exchange.
    UpstreamExchange,
    /// Attio could not be reached or answered in time.
    UpstreamUnavailable,
    /// The broker is missing settings.
    Configuration,
    /// The client's request cannot be trusted enough to redirect back.
    BadClientRequest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub status: u16,
    pub help: Help,
    /// `Retry-After` to pass on (seconds or an HTTP date), for 429 and 503.
    pub retry_after: Option<String>,
    /// `Allow` for 405.
    pub allow: Option<&'static str>,
    /// Sent as `WWW-Authenticate` (401 invalid_client).
    pub www_authenticate: Option<&'static str>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, status: u16, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            status,
            help: Help::None,
            retry_after: None,
            allow: None,
            www_authenticate: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, 400, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, 400, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::InvalidClient, 401, d);
        e.www_authenticate = Some("Basic realm=\"attio-oauth-broker\"");
        e
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, 500, d)
    }
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, 404, "no such endpoint")
    }
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            ErrorCode::MethodNotAllowed,
            405,
            format!("this endpoint accepts {allow}"),
        );
        e.allow = Some(allow);
        e
    }
    /// The broker is missing settings: name them, never their values.
    pub fn misconfigured(missing: &[&str]) -> Self {
        let mut e = Self::new(
            ErrorCode::ServerError,
            503,
            format!(
                "the broker is not configured: missing {}",
                missing.join(", ")
            ),
        );
        e.help = Help::Configuration;
        e
    }

    pub fn with_help(mut self, help: Help) -> Self {
        self.help = help;
        self
    }

    /// RFC 6749 §5.2 JSON error.
    pub fn to_json(&self) -> Reply {
        let mut r = Reply::json(
            self.status,
            &json!({ "error": self.code.as_str(), "error_description": self.description }),
        )
        .header("Pragma", "no-cache");
        if let Some(a) = self.allow {
            r = r.header("Allow", a);
        }
        if let Some(ra) = &self.retry_after {
            r = r.header("Retry-After", ra);
        }
        if let Some(w) = self.www_authenticate {
            r = r.header("WWW-Authenticate", w);
        }
        r
    }

    /// The friendly page for browser endpoints.
    pub fn to_page(&self, nonce: &str) -> Reply {
        let mut r = super::pages::error_page(self, nonce);
        if let Some(a) = self.allow {
            r = r.header("Allow", a);
        }
        if let Some(ra) = &self.retry_after {
            r = r.header("Retry-After", ra);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_and_headers() {
        let r = OAuthError::invalid_client("wrong secret").to_json();
        assert_eq!(r.status, 401);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "invalid_client");
        assert_eq!(v["error_description"], "wrong secret");
        assert!(r
            .get_header("WWW-Authenticate")
            .unwrap()
            .starts_with("Basic"));
        assert_eq!(r.get_header("Cache-Control"), Some("no-store"));
    }

    #[test]
    fn misconfigured_names_settings() {
        let e = OAuthError::misconfigured(&["ATTIO_CLIENT_ID"]);
        assert_eq!(e.status, 503);
        assert!(e.description.contains("ATTIO_CLIENT_ID"));
        assert_eq!(
            OAuthError::method_not_allowed("GET, HEAD")
                .to_json()
                .get_header("Allow"),
            Some("GET, HEAD")
        );
    }
}
