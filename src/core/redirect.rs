//! Redirect URI rules: which URIs a client may register, and whether the URI
//! of an authorization request matches a registered one.
//!
//! Registered URIs are kept and compared as the exact strings the client sent
//! (no canonicalisation), except for loopback URIs, which match on any port
//! (RFC 8252 §7.3).

pub const MAX_REDIRECT_URI_LEN: usize = 2000;

const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "filesystem",
    "ftp",
    "ws",
    "wss",
    "mailto",
    "tel",
];

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// Why a redirect URI is refused, phrased for `error_description`.
pub fn check_registrable(uri: &str, allowed: &[String]) -> Result<(), String> {
    if uri.is_empty() {
        return Err("a redirect URI is empty".into());
    }
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err("a redirect URI is too long".into());
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a redirect URI contains whitespace or control characters".into());
    }
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment".into());
    }
    let parsed =
        url::Url::parse(uri).map_err(|_| "a redirect URI is not an absolute URI".to_string())?;
    let scheme = parsed.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(format!(
            "redirect URIs with the {scheme}: scheme are not allowed"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a redirect URI must not contain user information".into());
    }
    match scheme {
        "https" => {
            if parsed.host_str().map_or(true, str::is_empty) {
                return Err("an https redirect URI needs a host".into());
            }
        }
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = if host == "::1" { "[::1]" } else { host };
            if !is_loopback_host(host) {
                return Err("http redirect URIs are only allowed on loopback (127.0.0.1, [::1], localhost); use https".into());
            }
        }
        _ => {
            // Private-use scheme of a native app (RFC 8252 §7.1), such as
            // cursor://. It must name something after the scheme.
            if uri.len() <= scheme.len() + 1 {
                return Err("a redirect URI with a private-use scheme needs a path".into());
            }
        }
    }
    if !allowed.is_empty() && !is_allowed(uri, &parsed, allowed) {
        return Err(
            "this redirect URI is not allowed by the broker's ALLOWED_REDIRECT_URIS setting".into(),
        );
    }
    Ok(())
}

fn is_allowed(uri: &str, parsed: &url::Url, allowed: &[String]) -> bool {
    let host = parsed.host_str().unwrap_or("");
    allowed.iter().any(|a| {
        if a.contains(':') {
            a == uri
        } else {
            host.eq_ignore_ascii_case(a)
        }
    })
}

/// Does `requested` match `registered`? Exact string match, or for loopback
/// http URIs the same host, path and query on any port.
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    reg.scheme() == "http"
        && req.scheme() == "http"
        && reg.host_str().is_some_and(|h| is_loopback_host(&bracket(h)))
        && reg.host_str() == req.host_str()
        && req.username().is_empty()
        && req.password().is_none()
        && req.fragment().is_none()
        && reg.path() == req.path()
        && reg.query() == req.query()
        // the requested string must be in the same (un-normalised) form as
        // its parse, so that tricks like dot segments cannot sneak through
        && requested_is_plain(requested, &req)
}

fn bracket(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

fn requested_is_plain(raw: &str, parsed: &url::Url) -> bool {
    let s = parsed.as_str();
    raw == s || (parsed.path() == "/" && format!("{raw}/") == s)
}

/// What the consent page shows as "sends you back to".
pub fn display_host(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) => match (u.scheme(), u.host_str()) {
            ("https", Some(h)) | ("http", Some(h)) => match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            },
            (s, Some(h)) if !h.is_empty() => format!("{s}://{h}"),
            (s, _) => format!("{s}:"),
        },
        Err(_) => "an unknown address".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(u: &str) -> bool {
        check_registrable(u, &[]).is_ok()
    }

    #[test]
    fn registrable() {
        for u in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://localhost:3334/oauth/callback",
            "http://127.0.0.1:33418/",
            "http://127.0.0.1/",
            "http://[::1]:8080/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "https://vscode.dev/redirect",
        ] {
            assert!(ok(u), "{u}");
        }
        for u in [
            "",
            "http://example.com/cb",
            "http://192.168.1.1/cb",
            "https://claude.ai@evil.example/cb",
            "https://user:pw@x.dev/cb",
            "https://x.dev/cb#frag",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "/relative",
            "https://x.dev/a b",
            "https://x.dev/\r\nX: y",
            "http://localhost.evil.com/cb",
            "http://127.0.0.1.nip.io/cb",
        ] {
            assert!(!ok(u), "{u}");
        }
        assert!(!ok(&format!(
            "https://x.dev/{}",
            "a".repeat(MAX_REDIRECT_URI_LEN)
        )));
        // Non-ASCII hosts (look-alikes such as a Cyrillic "а") do not parse;
        // the punycode form is an ordinary, distinct host.
        assert!(!ok("https://cl\u{0430}ude.ai/api/mcp/auth_callback"));
        assert!(ok("https://xn--cude-7na.ai/api/mcp/auth_callback"));
        assert!(!matches(
            "https://claude.ai/api/mcp/auth_callback",
            "https://xn--cude-7na.ai/api/mcp/auth_callback"
        ));
    }

    #[test]
    fn allow_list() {
        let allowed = vec![
            "claude.ai".to_string(),
            "http://localhost:3334/oauth/callback".to_string(),
        ];
        assert!(check_registrable("https://claude.ai/api/mcp/auth_callback", &allowed).is_ok());
        assert!(check_registrable("http://localhost:3334/oauth/callback", &allowed).is_ok());
        assert!(check_registrable("http://localhost:3335/oauth/callback", &allowed).is_err());
        assert!(check_registrable("https://evil.example/cb", &allowed).is_err());
    }

    #[test]
    fn matching() {
        let reg = "https://claude.ai/api/mcp/auth_callback";
        assert!(matches(reg, reg));
        for bad in [
            "https://claude.ai/api/mcp/auth_callback/",
            "https://CLAUDE.ai/api/mcp/auth_callback",
            "https://claude.ai/api/mcp/../mcp/auth_callback",
            "https://claude.ai/api/mcp/auth_callback?x=1",
            "https://claude.ai:443/api/mcp/auth_callback",
            "https://claude.ai@evil.example/api/mcp/auth_callback",
        ] {
            assert!(!matches(reg, bad), "{bad}");
        }
        let lo = "http://127.0.0.1:33418/";
        assert!(matches(lo, "http://127.0.0.1:5000/"));
        assert!(matches(lo, "http://127.0.0.1/"));
        assert!(!matches(lo, "http://localhost:5000/"));
        assert!(!matches(lo, "http://127.0.0.1:5000/other"));
        assert!(!matches(
            "http://localhost:3334/oauth/callback",
            "http://localhost:9/oauth/x/../callback"
        ));
        assert!(matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!matches(
            "http://localhost:3334/cb",
            "http://user@localhost:3334/cb"
        ));
        assert!(!matches("cursor://a/cb", "cursor://a/cb/"));
    }

    #[test]
    fn display() {
        assert_eq!(display_host("https://claude.ai/x"), "claude.ai");
        assert_eq!(display_host("http://localhost:3334/x"), "localhost:3334");
        assert_eq!(
            display_host("cursor://anysphere.cursor-mcp/oauth"),
            "cursor://anysphere.cursor-mcp"
        );
    }
}
