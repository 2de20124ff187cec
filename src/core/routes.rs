//! Which endpoint answers which path and methods, and CORS. The shell's
//! Router dispatches to the handlers; the rules for 404, 405 and preflight
//! live here.

use super::http::Reply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Landing,
    Health,
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
    Authorize,
    Callback,
    Token,
    Register,
    Revoke,
}

impl Endpoint {
    pub fn allow(self) -> &'static str {
        match self {
            // No HEAD where a GET has effects (starting or finishing a sign-in).
            Endpoint::Authorize => "GET, POST, OPTIONS",
            Endpoint::Callback => "GET, OPTIONS",
            Endpoint::Token | Endpoint::Register | Endpoint::Revoke => "POST, OPTIONS",
            _ => "GET, HEAD, OPTIONS",
        }
    }

    /// Browser endpoints answer errors with pages; the others with JSON.
    pub fn is_browser(self) -> bool {
        matches!(
            self,
            Endpoint::Landing | Endpoint::Authorize | Endpoint::Callback
        )
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Dispatch {
    Run,
    Preflight,
    NotAllowed,
}

pub fn dispatch(ep: Endpoint, method: &str) -> Dispatch {
    if method == "OPTIONS" {
        return Dispatch::Preflight;
    }
    if ep.allow().split(", ").any(|m| m == method) {
        Dispatch::Run
    } else {
        Dispatch::NotAllowed
    }
}

pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, MCP-Protocol-Version";

/// CORS for browser-based clients (MCP Inspector). No credentials are ever
/// allowed cross-origin, so `*` is safe.
pub fn with_cors(r: Reply) -> Reply {
    r.header("Access-Control-Allow-Origin", "*")
        .header("Access-Control-Expose-Headers", "WWW-Authenticate")
}

pub fn preflight(ep: Endpoint) -> Reply {
    Reply::new(204)
        .header("Access-Control-Allow-Origin", "*")
        .header("Access-Control-Allow-Methods", ep.allow())
        .header("Access-Control-Allow-Headers", ALLOW_HEADERS)
        .header("Access-Control-Max-Age", "86400")
        .header("Allow", ep.allow())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(dispatch(Endpoint::Token, "POST"), Dispatch::Run);
        assert_eq!(dispatch(Endpoint::Token, "GET"), Dispatch::NotAllowed);
        assert_eq!(dispatch(Endpoint::Health, "HEAD"), Dispatch::Run);
        assert_eq!(dispatch(Endpoint::Callback, "HEAD"), Dispatch::NotAllowed);
        assert_eq!(dispatch(Endpoint::Authorize, "HEAD"), Dispatch::NotAllowed);
        assert_eq!(dispatch(Endpoint::Health, "DELETE"), Dispatch::NotAllowed);
        assert_eq!(dispatch(Endpoint::Register, "OPTIONS"), Dispatch::Preflight);
        let p = preflight(Endpoint::Register);
        assert_eq!(p.status, 204);
        assert!(p
            .get_header("Access-Control-Allow-Headers")
            .unwrap()
            .contains("MCP-Protocol-Version"));
    }
}
