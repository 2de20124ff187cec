//! Client ID Metadata Documents (MCP 2025-11-25): a `client_id` that is an
//! https URL with a path names a JSON document describing the client.
//!
//! The rules that keep this from becoming a request forgery tool live here
//! and run before any fetch: https only (http on loopback only when the
//! clearly named test setting is on), no credentials in the URL, no
//! fragment, no IP literal in a private or special range, no special-use
//! host names. The shell then fetches with a deadline, without following
//! redirects, reading at most `MAX_DOCUMENT_BYTES`; on Cloudflare the
//! `global_fetch_strictly_public` compatibility flag also refuses names that
//! resolve to private addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::redirect;
use super::registration::ClientRecord;
use super::types::{AuthMethod, UnixTime};
use super::upstream::{Answer, Outbound};

pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
pub const FETCH_DEADLINE_MS: u64 = 3_000;
pub const MAX_CACHE_SECONDS: u64 = 86_400;
/// The setting that lets `http://` documents on loopback through, for tests
/// and local development only. Off unless set to exactly "true".
pub const LOOPBACK_SETTING: &str = "UNSAFE_ALLOW_LOOPBACK_CLIENT_METADATA";

/// Is this client id a metadata document URL (as opposed to a registered id)?
pub fn is_document_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// `localhost`, 127.0.0.0/8 or ::1, as parsed by `url`.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn v4_is_special(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
        || o[0] >= 240 // reserved
}

fn v6_is_special(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_is_special(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0] == 0 // IPv4-compatible and other reserved
}

/// Is this IP address private, loopback or otherwise not on the public internet?
pub fn is_special_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_special(v4),
        IpAddr::V6(v6) => v6_is_special(v6),
    }
}

const SPECIAL_SUFFIXES: &[&str] = &[
    ".localhost",
    ".invalid",
    ".local",
    ".internal",
    ".home.arpa",
    ".test",
    ".example",
];

/// Check a document URL before anything is fetched. `Err` says why, for the
/// error page or `error_description`.
pub fn check_url(client_id: &str, allow_loopback: bool) -> Result<url::Url, String> {
    if client_id.len() > 2000 {
        return Err("the client_id URL is too long".into());
    }
    let u =
        url::Url::parse(client_id).map_err(|_| "the client_id is not a valid URL".to_string())?;
    if u.as_str() != client_id {
        return Err("the client_id URL is not in its normal form".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the client_id URL must not contain credentials".into());
    }
    if u.fragment().is_some() {
        return Err("the client_id URL must not contain a fragment".into());
    }
    if u.path().is_empty() || u.path() == "/" {
        return Err("the client_id URL must have a path".into());
    }
    let host = u
        .host()
        .ok_or_else(|| "the client_id URL has no host".to_string())?;
    let loopback_ok = allow_loopback && is_loopback_host(&host);
    match u.scheme() {
        "https" => {}
        "http" if loopback_ok => {}
        _ => return Err("client metadata documents must be served over https".into()),
    }
    if !loopback_ok {
        match host {
            url::Host::Ipv4(ip) if v4_is_special(ip) => {
                return Err("the client_id URL's host is a private or reserved IP address".into())
            }
            url::Host::Ipv6(ip) if v6_is_special(ip) => {
                return Err("the client_id URL's host is a private or reserved IP address".into())
            }
            url::Host::Domain(d) => {
                let d = d.to_ascii_lowercase();
                let d = d.trim_end_matches('.');
                if d == "localhost"
                    || !d.contains('.')
                    || SPECIAL_SUFFIXES.iter().any(|s| d.ends_with(s))
                {
                    return Err("the client_id URL's host is a special-use or local name".into());
                }
            }
            _ => {}
        }
    }
    Ok(u)
}

/// The fetch: GET, no credentials, no redirects (the shell never follows
/// them), a short deadline, at most 5 KB read.
pub fn fetch_request(u: &url::Url) -> Outbound {
    Outbound {
        method: "GET",
        url: u.to_string(),
        headers: vec![("Accept", "application/json".into())],
        body: None,
        deadline_ms: FETCH_DEADLINE_MS,
        max_bytes: MAX_DOCUMENT_BYTES,
    }
}

/// Parse a fetched document into a client record. `Err` says why.
pub fn parse_document(
    client_id: &str,
    answer: &Answer,
    allowed: &[String],
    now: UnixTime,
) -> Result<ClientRecord, String> {
    let body = match answer {
        Answer::Timeout => return Err("the client metadata document did not arrive in time".into()),
        Answer::Network => return Err("the client metadata document could not be fetched".into()),
        Answer::Http { status, .. } if (300..400).contains(status) => {
            return Err(
                "the client metadata document URL answered with a redirect, which is not followed"
                    .into(),
            )
        }
        Answer::Http { status, .. } if *status != 200 => {
            return Err(format!(
                "the client metadata document URL answered HTTP {status}"
            ))
        }
        Answer::Http {
            truncated: true, ..
        } => return Err("the client metadata document is larger than 5 KB".into()),
        Answer::Http { body, .. } => body,
    };
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| "the client metadata document is not JSON".to_string())?;
    let obj = v
        .as_object()
        .ok_or_else(|| "the client metadata document is not a JSON object".to_string())?;
    if obj.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err("the document's client_id does not equal its URL".into());
    }
    let uris: Vec<String> = match obj.get("redirect_uris") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("redirect_uris must be strings")?,
        _ => return Err("the document has no redirect_uris".into()),
    };
    if uris.len() > 20 {
        return Err("the document lists too many redirect_uris".into());
    }
    for u in &uris {
        redirect::check_registrable(u, allowed)?;
    }
    // Only public clients: a document cannot hold a secret. A list of
    // methods is accepted when it includes "none".
    match obj.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "none" => {}
        Some(Value::Array(list)) if list.iter().any(|m| m.as_str() == Some("none")) => {}
        Some(_) => return Err(
            "clients identified by a metadata document must use token_endpoint_auth_method none"
                .into(),
        ),
    }
    let text = |k: &str, max: usize| {
        obj.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= max)
            .map(str::to_string)
    };
    Ok(ClientRecord {
        redirect_uris: uris,
        auth: AuthMethod::None,
        name: text("client_name", 200),
        client_uri: text("client_uri", 2000),
        logo_uri: None,
        scope: None,
        software_id: text("software_id", 200),
        software_version: text("software_version", 100),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        issued_at: now,
        expires_at: 0,
        secret_hash: None,
    })
}

/// How long a document may be cached, from its `Cache-Control` (at most a
/// day; 0 = do not cache).
pub fn cache_seconds(cache_control: Option<&str>) -> u64 {
    let Some(cc) = cache_control else { return 0 };
    let mut max_age = None;
    for d in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if d == "no-store" || d == "no-cache" || d == "private" {
            return 0;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.unwrap_or(0).min(MAX_CACHE_SECONDS)
}

/// The host shown on the consent page ("published by").
pub fn document_host(client_id: &str) -> Option<String> {
    url::Url::parse(client_id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> Answer {
        Answer::Http {
            status: 200,
            retry_after: None,
            cache_control: None,
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    const ID: &str = "https://app.example.com/oauth/client.json";

    #[test]
    fn url_rules() {
        assert!(check_url(ID, false).is_ok());
        for bad in [
            "http://app.example.com/c.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://u:p@app.example.com/c",
            "https://app.example.com/c#f",
            "https://127.0.0.2/c.json",
            "https://10.0.0.1/c.json",
            "https://192.168.1.1/c.json",
            "https://169.254.169.254/latest",
            "https://[::1]/c.json",
            "https://[fd00::1]/c.json",
            "https://[::ffff:10.0.0.1]/c.json",
            "https://2130706433/c.json",
            "https://localhost/c.json",
            "https://nowhere.invalid/c.json",
            "https://printer.local/c.json",
            "https://intranet/c.json",
            "ftp://app.example.com/c.json",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9/c.json", true).is_ok());
        assert!(check_url("http://127.0.0.1:9/c.json", false).is_err());
        assert!(check_url("http://10.0.0.1/c.json", true).is_err());
        assert!(check_url("https://8.8.8.8/c.json", false).is_ok());
    }

    #[test]
    fn documents() {
        let ok = format!(
            r#"{{"client_id":"{ID}","client_name":"App","redirect_uris":["https://app.example.com/cb"]}}"#
        );
        let r = parse_document(ID, &doc(&ok), &[], 5).unwrap();
        assert_eq!(r.auth, AuthMethod::None);
        assert_eq!(r.name.as_deref(), Some("App"));
        let cases = [
            (
                r#"{"client_id":"https://other/x","redirect_uris":["https://a/cb"]}"#.to_string(),
                "does not equal",
            ),
            (format!(r#"{{"client_id":"{ID}"}}"#), "no redirect_uris"),
            (
                format!(r#"{{"client_id":"{ID}","redirect_uris":["http://evil.example/cb"]}}"#),
                "loopback",
            ),
            (
                format!(
                    r#"{{"client_id":"{ID}","redirect_uris":["https://a/cb"],"token_endpoint_auth_method":"client_secret_basic"}}"#
                ),
                "none",
            ),
            ("<html>".to_string(), "not JSON"),
        ];
        for (body, why) in cases {
            let e = parse_document(ID, &doc(&body), &[], 5).unwrap_err();
            assert!(e.contains(why), "{body}: {e}");
        }
        let list = format!(
            r#"{{"client_id":"{ID}","redirect_uris":["https://a/cb"],"token_endpoint_auth_method":["private_key_jwt","none"]}}"#
        );
        assert!(parse_document(ID, &doc(&list), &[], 5).is_ok());
        let redirect = Answer::Http {
            status: 302,
            retry_after: None,
            cache_control: None,
            body: vec![],
            truncated: false,
        };
        assert!(parse_document(ID, &redirect, &[], 5)
            .unwrap_err()
            .contains("redirect"));
        let big = Answer::Http {
            status: 200,
            retry_after: None,
            cache_control: None,
            body: vec![],
            truncated: true,
        };
        assert!(parse_document(ID, &big, &[], 5)
            .unwrap_err()
            .contains("5 KB"));
        assert!(parse_document(ID, &Answer::Timeout, &[], 5)
            .unwrap_err()
            .contains("in time"));
    }

    #[test]
    fn caching() {
        assert_eq!(cache_seconds(None), 0);
        assert_eq!(cache_seconds(Some("public, max-age=600")), 600);
        assert_eq!(cache_seconds(Some("max-age=999999")), MAX_CACHE_SECONDS);
        assert_eq!(cache_seconds(Some("no-store, max-age=600")), 0);
        assert_eq!(document_host(ID).as_deref(), Some("app.example.com"));
    }
}
