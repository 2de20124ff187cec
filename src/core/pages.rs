//! HTML pages: the token page, error pages, the consent page and the landing
//! page. Every dynamic value goes through `esc`; every page carries the same
//! security headers and a per-response CSP nonce for its one style and script.

use super::error::{ErrorCode, Help, OAuthError};
use super::http::Reply;

/// Escape for HTML text and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '`' => out.push_str("&#96;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{color-scheme:light dark;--fg:#1b1d21;--muted:#5b6170;--bg:#f6f7f9;--card:#fff;--line:#d9dce3;--accent:#2d5bff;--accent-fg:#fff;--bad:#b42318}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaef;--muted:#a5abb8;--bg:#111318;--card:#1a1d24;--line:#333846;--accent:#7b98ff;--accent-fg:#0b0d12;--bad:#ff8a80}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:40rem;margin:0 auto;padding:2rem 1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.5rem}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
p,li{color:var(--fg)}
.muted{color:var(--muted);font-size:.9rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
textarea{width:100%;font:14px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:.6rem;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg);resize:vertical;word-break:break-all}
.row{display:flex;gap:.5rem;align-items:center;margin-top:.5rem;flex-wrap:wrap}
button,.button{font:inherit;font-weight:600;padding:.6rem 1.1rem;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-fg);cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:transparent;color:var(--accent)}
button:focus-visible,.button:focus-visible,textarea:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
a{color:var(--accent)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:1rem 0}
dt{font-weight:600}dd{margin:0;word-break:break-word}
.error-code{font-family:ui-monospace,monospace;color:var(--bad)}
.stand-in{border:2px dashed var(--bad);border-radius:8px;padding:.5rem .75rem}
.status{min-height:1.5em;color:var(--muted)}
textarea.code{white-space:pre;word-break:normal;overflow-x:auto}
"#;

const COPY_SCRIPT: &str = r#"
document.querySelectorAll('button[data-copy]').forEach(function (b) {
  b.addEventListener('click', function () {
    var t = document.getElementById(b.getAttribute('data-copy'));
    var s = document.getElementById(b.getAttribute('data-status'));
    function done(ok) { s.textContent = ok ? 'Copied to the clipboard.' : 'Copy failed: select the text and copy it yourself.'; }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(t.value).then(function () { done(true); }, function () {
        t.select(); done(document.execCommand('copy'));
      });
    } else { t.select(); done(document.execCommand('copy')); }
  });
});
"#;

/// Headers every HTML page carries.
fn page_reply(status: u16, title: &str, body: &str, nonce: &str, script: bool) -> Reply {
    let nonce = esc(nonce);
    let script_tag = if script {
        format!("<script nonce=\"{nonce}\">{COPY_SCRIPT}</script>")
    } else {
        String::new()
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title>\
<style nonce=\"{nonce}\">{STYLE}</style></head><body><main>{body}</main>{script_tag}</body></html>",
        title = esc(title)
    );
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src data:; \
base-uri 'none'; frame-ancestors 'none'"
    );
    Reply::new(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Content-Security-Policy", &csp)
        .header("Cache-Control", "no-store")
        .header("Pragma", "no-cache")
        .header("Referrer-Policy", "no-referrer")
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "DENY")
        .body(html.into_bytes())
}

/// What the token page shows.
pub struct TokenView<'a> {
    pub access_token: &'a str,
    pub refresh_token: Option<&'a str>,
    pub expires_in: Option<u64>,
    pub workspace_name: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// The token came from the local stand-in for Attio (tests, dev.sh).
    pub stand_in: bool,
}

/// The Claude Desktop configuration block with the token filled in, in the
/// order people expect to read it (serde_json would sort the keys).
pub fn claude_desktop_config(token: &str) -> String {
    let token = serde_json::to_string(token).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\n  \"mcpServers\": {{\n    \"attio\": {{\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"attio-mcp\"],\n      \"env\": {{\n        \"ATTIO_ACCESS_TOKEN\": {token}\n      }}\n    }}\n  }}\n}}"
    )
}

pub fn token_page(v: &TokenView, nonce: &str) -> Reply {
    let mut details = String::new();
    if let Some(w) = v.workspace_name {
        details.push_str(&format!("<dt>Workspace</dt><dd>{}</dd>", esc(w)));
    }
    if let Some(s) = v.scope {
        let items: Vec<String> = s
            .split_whitespace()
            .map(|x| format!("<code>{}</code>", esc(x)))
            .collect();
        details.push_str(&format!("<dt>Scopes</dt><dd>{}</dd>", items.join(" ")));
    }
    details.push_str(&match v.expires_in {
        Some(s) => format!("<dt>Expires</dt><dd>in {} seconds</dd>", s),
        None => "<dt>Expires</dt><dd>Attio did not give an expiry: the token is valid until it is revoked or the app is uninstalled.</dd>".to_string(),
    });
    let refresh = match v.refresh_token {
        Some(r) => format!(
            "<label for=\"refresh\">Refresh token</label>\
<textarea id=\"refresh\" rows=\"2\" readonly spellcheck=\"false\">{}</textarea>\
<div class=\"row\"><button type=\"button\" class=\"secondary\" data-copy=\"refresh\" data-status=\"refresh-status\">Copy refresh token</button>\
<span id=\"refresh-status\" class=\"status\" role=\"status\" aria-live=\"polite\"></span></div>",
            esc(r)
        ),
        None => String::new(),
    };
    let config = claude_desktop_config(v.access_token);
    let stand_in = if v.stand_in {
        "<p class=\"stand-in\" role=\"note\"><strong>Local stand-in:</strong> this token was issued by the local stand-in for Attio \
(<code>ATTIO_TOKEN_URL</code> points at this machine). It does not work with the real Attio.</p>"
    } else {
        ""
    };
    let body = format!(
        "<div class=\"card\"><h1>Your Attio access token</h1>{stand_in}\
<p>Copy it into your MCP server's configuration. Treat it like a password: anyone who has it can use your Attio workspace.</p>\
<label for=\"token\">Access token</label>\
<textarea id=\"token\" rows=\"2\" readonly spellcheck=\"false\" autofocus>{token}</textarea>\
<div class=\"row\"><button type=\"button\" data-copy=\"token\" data-status=\"token-status\">Copy token</button>\
<span id=\"token-status\" class=\"status\" role=\"status\" aria-live=\"polite\"></span></div>\
{refresh}<dl>{details}</dl>\
<h2>Claude Desktop</h2><p class=\"muted\">Paste into <code>claude_desktop_config.json</code> (Settings → Developer → Edit Config), then restart Claude Desktop.</p>\
<label for=\"config\">Configuration for Claude Desktop</label>\
<textarea id=\"config\" class=\"code\" rows=\"11\" readonly spellcheck=\"false\" wrap=\"off\">{config}</textarea>\
<div class=\"row\"><button type=\"button\" class=\"secondary\" data-copy=\"config\" data-status=\"config-status\">Copy configuration</button>\
<span id=\"config-status\" class=\"status\" role=\"status\" aria-live=\"polite\"></span></div>\
<p class=\"muted\">This page is shown once and is not stored. Close it when you are done.</p></div>",
        token = esc(v.access_token),
        config = esc(&config),
    );
    page_reply(200, "Your Attio access token", &body, nonce, true)
}

fn error_title(e: &OAuthError) -> &'static str {
    match (e.help, e.code) {
        (_, ErrorCode::AccessDenied) => "Access was not granted",
        (Help::Configuration, _) => "The broker is not configured",
        (Help::StartAgain, _) => "This sign-in link has expired or was already used",
        (Help::UpstreamExchange, _) => "Attio did not accept the sign-in",
        (Help::UpstreamUnavailable, _) => "Attio could not be reached",
        (Help::BadClientRequest, _) => "This sign-in request is not valid",
        (_, ErrorCode::NotFound) => "Page not found",
        (_, ErrorCode::MethodNotAllowed) => "Method not allowed",
        _ => "Something went wrong",
    }
}

fn error_checks(help: Help) -> &'static [&'static str] {
    match help {
        Help::Configuration => &[
            "Set the missing settings with <code>wrangler secret put NAME</code> (or in <code>.dev.vars</code> when running locally).",
            "Open <code>/health</code> to see what is configured.",
        ],
        Help::StartAgain => &[
            "Sign-in links work once and for 10 minutes: start again.",
            "Finish the sign-in in the same browser you started it in (it needs the broker's cookie).",
        ],
        Help::UpstreamExchange => &[
            "The redirect URI registered for the app at Attio must be exactly this broker's <code>/oauth/callback</code> URL.",
            "<code>ATTIO_CLIENT_ID</code> and <code>ATTIO_CLIENT_SECRET</code> must belong to the same Attio app.",
            "Attio's codes expire after 10 minutes: start again and finish promptly.",
        ],
        Help::UpstreamUnavailable => &[
            "Attio may be having a problem: wait a minute and start again.",
            "Check <code>ATTIO_TOKEN_URL</code> if you changed it.",
        ],
        Help::BadClientRequest => &[
            "The application that sent you here may not be registered with this broker, or sent a redirect address it did not register.",
            "Reconnect from the application so that it registers again.",
        ],
        Help::None => &[],
    }
}

/// "the state is missing" -> "The state is missing."
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out: String = match c.next() {
        // ASCII only: char::to_uppercase would link Unicode case tables.
        Some(f) => std::iter::once(f.to_ascii_uppercase()).chain(c).collect(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

pub fn error_page(e: &OAuthError, nonce: &str) -> Reply {
    let checks: Vec<String> = error_checks(e.help)
        .iter()
        .map(|c| format!("<li>{c}</li>"))
        .collect();
    let checks = if checks.is_empty() {
        String::new()
    } else {
        format!("<h2>What to check</h2><ul>{}</ul>", checks.join(""))
    };
    let again = match e.help {
        Help::StartAgain | Help::UpstreamExchange | Help::UpstreamUnavailable => {
            "<p><a class=\"button\" href=\"/oauth/authorize\">Start again</a></p>"
        }
        _ => "<p><a href=\"/\">Go to the start page</a></p>",
    };
    let body = format!(
        "<div class=\"card\"><h1>{title}</h1><p>{desc}</p>{checks}{again}\
<p class=\"muted\">Error code: <span class=\"error-code\">{code}</span></p></div>",
        title = esc(error_title(e)),
        desc = esc(&sentence(&e.description)),
        code = esc(e.code.as_str()),
    );
    page_reply(e.status, error_title(e), &body, nonce, false)
}

pub struct ConsentView<'a> {
    pub client_name: Option<&'a str>,
    pub redirect_host: &'a str,
    pub client_uri: Option<&'a str>,
    /// For a Client ID Metadata Document: the host that published it.
    pub published_by: Option<&'a str>,
    /// Sealed pending request, posted back with the decision.
    pub consent: &'a str,
}

pub fn consent_page(v: &ConsentView, nonce: &str) -> Reply {
    let name = v
        .client_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Unnamed client");
    let mut site = match v.client_uri {
        Some(u) => format!("<dt>Website</dt><dd>{}</dd>", esc(u)),
        None => String::new(),
    };
    if let Some(h) = v.published_by {
        site.push_str(&format!(
            "<dt>Client information from</dt><dd><strong>{}</strong></dd>",
            esc(h)
        ));
    }
    let body = format!(
        "<div class=\"card\"><h1>Allow {name} to access your Attio workspace?</h1>\
<p><strong>{name}</strong> wants to connect to Attio through this broker. If you approve, it will receive an \
access token for your Attio workspace, with the permissions set on this broker's Attio app.</p>\
<dl><dt>Application</dt><dd>{name}</dd><dt>Sends you back to</dt><dd><strong>{host}</strong></dd>{site}</dl>\
<p class=\"muted\">Only approve if you started this connection and recognise <strong>{host}</strong>. \
The application's name is self-declared.</p>\
<form method=\"post\" action=\"/oauth/authorize\">\
<input type=\"hidden\" name=\"consent\" value=\"{consent}\">\
<div class=\"row\"><button type=\"submit\" name=\"action\" value=\"approve\" autofocus>Approve</button>\
<button type=\"submit\" name=\"action\" value=\"deny\" class=\"secondary\">Deny</button></div></form></div>",
        name = esc(name),
        host = esc(v.redirect_host),
        consent = esc(v.consent),
    );
    page_reply(200, "Approve access to Attio", &body, nonce, false)
}

pub fn landing_page(base: &str, nonce: &str) -> Reply {
    let body = format!(
        "<div class=\"card\"><h1>Attio OAuth broker</h1>\
<p>This service connects MCP clients to Attio with standard OAuth, and can show you an Attio access token to copy.</p>\
<p><a class=\"button\" href=\"/oauth/authorize\">Get an Attio access token</a></p>\
<h2>For MCP clients</h2><p class=\"muted\">Authorization server metadata: <code>{base}/.well-known/oauth-authorization-server</code></p>\
<p class=\"muted\"><a href=\"/health\">Health</a></p></div>",
        base = esc(base)
    );
    page_reply(200, "Attio OAuth broker", &body, nonce, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dangerous() {
        assert_eq!(
            esc("<a href=\"x\" onclick='y'>&`"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;"
        );
        assert_eq!(esc("a\u{0}b"), "a\u{FFFD}b");
    }

    #[test]
    fn token_page_shows_token_and_config_and_headers() {
        let r = token_page(
            &TokenView {
                access_token: "tok<1>",
                refresh_token: None,
                expires_in: None,
                workspace_name: Some("<b>W</b>"),
                scope: Some("a:read b:read-write"),
                stand_in: false,
            },
            "NONCE",
        );
        let html = r.body_text();
        assert!(html.contains("tok&lt;1&gt;"));
        assert!(!html.contains("tok<1>"));
        assert!(html.contains("&lt;b&gt;W&lt;/b&gt;"));
        assert!(html.contains("ATTIO_ACCESS_TOKEN"));
        let cfg: serde_json::Value = serde_json::from_str(&claude_desktop_config("t\"<")).unwrap();
        assert_eq!(
            cfg["mcpServers"]["attio"]["env"]["ATTIO_ACCESS_TOKEN"],
            "t\"<"
        );
        assert_eq!(
            cfg["mcpServers"]["attio"]["args"],
            serde_json::json!(["-y", "attio-mcp"])
        );
        assert!(
            claude_desktop_config("x").find("command").unwrap()
                < claude_desktop_config("x").find("args").unwrap()
        );
        assert!(!html.contains("Refresh token"));
        assert!(html.contains("did not give an expiry"));
        let csp = r.get_header("Content-Security-Policy").unwrap();
        assert!(csp.contains("script-src 'nonce-NONCE'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.get_header("Cache-Control"), Some("no-store"));
        assert_eq!(r.get_header("Referrer-Policy"), Some("no-referrer"));
        assert_eq!(r.get_header("X-Content-Type-Options"), Some("nosniff"));
        assert!(html.contains("<script nonce=\"NONCE\">"));
    }

    #[test]
    fn consent_page_escapes_name_and_defaults() {
        let r = consent_page(
            &ConsentView {
                client_name: Some("<img src=x onerror=alert(1)>"),
                redirect_host: "evil\"host",
                client_uri: None,
                published_by: Some("<b>"),
                consent: "c\"v",
            },
            "n",
        );
        let html = r.body_text();
        assert!(!html.contains("<img"));
        assert!(html.contains("evil&quot;host"));
        assert!(html.contains("value=\"c&quot;v\""));
        assert!(html.contains("<strong>&lt;b&gt;</strong>"));
        let r = consent_page(
            &ConsentView {
                client_name: None,
                redirect_host: "h",
                client_uri: None,
                published_by: None,
                consent: "c",
            },
            "n",
        );
        assert!(r.body_text().contains("Unnamed client"));
        assert!(!r.body_text().contains("<script"));
    }

    #[test]
    fn error_page_has_status_and_help() {
        let e = OAuthError::invalid_request("bad <x>").with_help(Help::StartAgain);
        let r = error_page(&e, "n");
        assert_eq!(r.status, 400);
        assert!(r.body_text().contains("Bad &lt;x&gt;."));
        let denied =
            OAuthError::new(ErrorCode::AccessDenied, 403, "denied").with_help(Help::StartAgain);
        assert!(error_page(&denied, "n")
            .body_text()
            .contains("<h1>Access was not granted</h1>"));
        assert!(error_page(&OAuthError::not_found(), "n")
            .body_text()
            .contains("href=\"/\""));
        assert!(r.body_text().contains("Start again"));
    }
}
