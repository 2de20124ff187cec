//! Settings, read into one typed value per request.

use super::types::Secret;

pub const DEFAULT_AUTHORIZE_URL: &str = "https://app.attio.com/authorize";
pub const DEFAULT_TOKEN_URL: &str = "https://app.attio.com/oauth/token";
pub const DEFAULT_INTROSPECT_URL: &str = "https://app.attio.com/oauth/introspect";
pub const DEFAULT_REVOKE_URL: &str = "https://app.attio.com/oauth/revoke";
pub const DEFAULT_CLIENT_TTL_DAYS: u64 = 90;

/// Everything the broker is configured with. Secrets are `Secret`s; the
/// optional KV binding is only noted here (the shell holds the handle).
#[derive(Debug, Clone)]
pub struct Config {
    pub attio_client_id: Option<String>,
    pub attio_client_secret: Option<Secret>,
    pub broker_secret: Option<Secret>,
    /// Public base URL without a trailing slash, when configured.
    pub worker_url: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    pub introspect_url: String,
    pub revoke_url: String,
    pub kv_bound: bool,
    /// `ALLOWED_REDIRECT_URIS`: exact URIs or host names; empty = no extra rule.
    pub allowed_redirects: Vec<String>,
    pub client_ttl_days: u64,
    /// `UNSAFE_ALLOW_LOOPBACK_CLIENT_METADATA=true`: let http client
    /// metadata documents on loopback through (tests, local development).
    pub allow_loopback_client_metadata: bool,
    /// Problems with the settings that are present (not missing ones).
    pub invalid: Vec<String>,
}

/// The settings an OAuth endpoint cannot work without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub Vec<&'static str>);

impl Config {
    /// Read settings through `get` (vars and secrets of the Worker, or a map
    /// in tests). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, kv_bound: bool) -> Config {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut invalid = Vec::new();
        let worker_url = get("WORKER_URL").and_then(|u| match normalize_base_url(&u) {
            Some(u) => Some(u),
            None => {
                invalid.push(
                    "WORKER_URL must be an absolute http(s) URL without query or fragment"
                        .to_string(),
                );
                None
            }
        });
        let mut endpoint = |name: &str, default: &str| match get(name) {
            None => default.to_string(),
            Some(u) => match url::Url::parse(&u) {
                Ok(p) if matches!(p.scheme(), "https" | "http") => u,
                _ => {
                    invalid.push(format!("{name} must be an absolute http(s) URL"));
                    default.to_string()
                }
            },
        };
        let authorize_url = endpoint("ATTIO_AUTHORIZE_URL", DEFAULT_AUTHORIZE_URL);
        let token_url = endpoint("ATTIO_TOKEN_URL", DEFAULT_TOKEN_URL);
        let introspect_url = endpoint("ATTIO_INTROSPECT_URL", DEFAULT_INTROSPECT_URL);
        let revoke_url = endpoint("ATTIO_REVOKE_URL", DEFAULT_REVOKE_URL);
        let client_ttl_days = match get("CLIENT_TTL_DAYS") {
            None => DEFAULT_CLIENT_TTL_DAYS,
            Some(v) => match v.parse::<u64>() {
                Ok(d) if (1..=3650).contains(&d) => d,
                _ => {
                    invalid.push(
                        "CLIENT_TTL_DAYS must be a whole number of days from 1 to 3650".into(),
                    );
                    DEFAULT_CLIENT_TTL_DAYS
                }
            },
        };
        let allowed_redirects = get("ALLOWED_REDIRECT_URIS")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Config {
            attio_client_id: get("ATTIO_CLIENT_ID"),
            attio_client_secret: get("ATTIO_CLIENT_SECRET").map(Secret::new),
            broker_secret: get("BROKER_SECRET").map(Secret::new),
            worker_url,
            authorize_url,
            token_url,
            introspect_url,
            revoke_url,
            kv_bound,
            allowed_redirects,
            client_ttl_days,
            allow_loopback_client_metadata: get(super::cimd::LOOPBACK_SETTING).as_deref()
                == Some("true"),
            invalid,
        }
    }

    /// Settings that must be present for OAuth endpoints to work.
    pub fn missing(&self) -> Option<Missing> {
        let mut m = Vec::new();
        if self.attio_client_id.is_none() {
            m.push("ATTIO_CLIENT_ID");
        }
        if self.attio_client_secret.is_none() {
            m.push("ATTIO_CLIENT_SECRET");
        }
        if m.is_empty() {
            None
        } else {
            Some(Missing(m))
        }
    }

    /// Is Attio's token endpoint on this machine (the local stand-in)?
    pub fn uses_stand_in(&self) -> bool {
        url::Url::parse(&self.token_url)
            .ok()
            .and_then(|u| u.host().map(|h| super::cimd::is_loopback_host(&h)))
            == Some(true)
    }

    /// Key material: the dedicated BROKER_SECRET, else ATTIO_CLIENT_SECRET.
    pub fn key_material(&self) -> Option<&Secret> {
        self.broker_secret
            .as_ref()
            .or(self.attio_client_secret.as_ref())
    }

    /// The public base URL: WORKER_URL, else the origin the request came to.
    pub fn base_url(&self, request_origin: &str) -> String {
        match &self.worker_url {
            Some(u) => u.clone(),
            None => request_origin.trim_end_matches('/').to_string(),
        }
    }
}

/// `https://x.dev/` -> `https://x.dev`; keeps a path prefix without its
/// trailing slash. Refuses anything that is not an absolute http(s) URL.
pub fn normalize_base_url(input: &str) -> Option<String> {
    let u = url::Url::parse(input).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.query().is_some() || u.fragment().is_some() {
        return None;
    }
    if !u.username().is_empty() || u.password().is_some() || u.host_str().is_none() {
        return None;
    }
    Some(u.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned(), false)
    }

    #[test]
    fn defaults_point_at_attio() {
        let c = cfg(&[]);
        assert_eq!(c.token_url, DEFAULT_TOKEN_URL);
        assert!(!c.uses_stand_in());
        assert!(cfg(&[("ATTIO_TOKEN_URL", "http://127.0.0.1:8788/oauth/token")]).uses_stand_in());
        assert_eq!(
            c.missing(),
            Some(Missing(vec!["ATTIO_CLIENT_ID", "ATTIO_CLIENT_SECRET"]))
        );
        assert!(c.key_material().is_none());
    }

    #[test]
    fn worker_url_never_has_a_trailing_slash() {
        assert_eq!(
            cfg(&[("WORKER_URL", "https://x.dev/")])
                .worker_url
                .as_deref(),
            Some("https://x.dev")
        );
        assert_eq!(
            cfg(&[("WORKER_URL", "https://x.dev/a/")])
                .worker_url
                .as_deref(),
            Some("https://x.dev/a")
        );
        let bad = cfg(&[("WORKER_URL", "x.dev")]);
        assert!(bad.worker_url.is_none());
        assert_eq!(bad.invalid.len(), 1);
        assert_eq!(
            cfg(&[]).base_url("http://localhost:8787/"),
            "http://localhost:8787"
        );
    }

    #[test]
    fn broker_secret_preferred_and_empty_is_unset() {
        let c = cfg(&[
            ("ATTIO_CLIENT_ID", "id"),
            ("ATTIO_CLIENT_SECRET", "s"),
            ("BROKER_SECRET", "b"),
        ]);
        assert_eq!(c.key_material().unwrap().secret(), "b");
        assert!(c.missing().is_none());
        let c = cfg(&[
            ("ATTIO_CLIENT_ID", "id"),
            ("ATTIO_CLIENT_SECRET", "s"),
            ("BROKER_SECRET", " "),
        ]);
        assert_eq!(c.key_material().unwrap().secret(), "s");
    }

    #[test]
    fn bad_endpoint_falls_back_and_is_reported() {
        let c = cfg(&[("ATTIO_TOKEN_URL", "ftp://x")]);
        assert_eq!(c.token_url, DEFAULT_TOKEN_URL);
        assert_eq!(c.invalid.len(), 1);
        let c = cfg(&[("ALLOWED_REDIRECT_URIS", " claude.ai, https://x/cb ,")]);
        assert_eq!(c.allowed_redirects, vec!["claude.ai", "https://x/cb"]);
    }
}
