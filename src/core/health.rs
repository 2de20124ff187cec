//! `/health`: what is configured (never a secret's value), and warnings about
//! set-ups that will break callbacks.

use serde_json::{json, Value};

use super::config::Config;
use super::http::Reply;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Headers of the request that matter for the tunnel warning.
pub struct Seen<'a> {
    pub origin: &'a str,
    pub forwarded_proto: Option<&'a str>,
    pub forwarded_host: Option<&'a str>,
}

pub fn warnings(cfg: &Config, seen: &Seen) -> Vec<String> {
    let mut w: Vec<String> = cfg.invalid.clone();
    if cfg.worker_url.is_none() {
        let (scheme, host) = seen.origin.split_once("://").unwrap_or(("", seen.origin));
        let proto = seen.forwarded_proto.map(|p| {
            p.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let fhost = seen.forwarded_host.map(|h| {
            h.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let proto_differs = proto
            .as_deref()
            .is_some_and(|p| !p.is_empty() && p != scheme);
        let host_differs = fhost
            .as_deref()
            .is_some_and(|h| !h.is_empty() && h != host.to_ascii_lowercase());
        if proto_differs || host_differs {
            w.push(format!(
                "WORKER_URL is not set and this request was forwarded (X-Forwarded-Proto/X-Forwarded-Host) from another origin than the Worker sees ({}): set WORKER_URL to the public URL, or callbacks and metadata will point at the wrong address",
                seen.origin
            ));
        }
    }
    w
}

pub fn report(cfg: &Config, seen: &Seen) -> Reply {
    let base = cfg.base_url(seen.origin);
    let missing = cfg.missing();
    let presence = |p: bool| if p { "present" } else { "missing" };
    let checks = json!({
        "attio_client_id": presence(cfg.attio_client_id.is_some()),
        "attio_client_secret": presence(cfg.attio_client_secret.is_some()),
        "broker_secret": if cfg.broker_secret.is_some() { "dedicated" } else { "derived from ATTIO_CLIENT_SECRET" },
        "storage": if cfg.kv_bound { "kv (OAUTH_SESSIONS bound)" } else { "stateless (no OAUTH_SESSIONS binding: sealed state)" },
        "worker_url": if cfg.worker_url.is_some() { "configured" } else { "from the request" },
        "attio_token_url": cfg.token_url,
    });
    let mut body = json!({
        "status": if missing.is_some() { "misconfigured" } else { "ok" },
        "version": VERSION,
        "worker_url": base,
        "checks": checks,
        "warnings": warnings(cfg, seen),
    });
    if let Some(m) = &missing {
        body["missing"] = Value::from(m.0.clone());
    }
    Reply::json(if missing.is_some() { 503 } else { 200 }, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Config::from_lookup(
            |k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone()),
            false,
        )
    }

    #[test]
    fn ok_and_misconfigured_never_show_secrets() {
        let seen = Seen {
            origin: "http://localhost:8787",
            forwarded_proto: None,
            forwarded_host: None,
        };
        let r = report(
            &cfg(&[
                ("ATTIO_CLIENT_ID", "id-value"),
                ("ATTIO_CLIENT_SECRET", "secret-value"),
            ]),
            &seen,
        );
        assert_eq!(r.status, 200);
        assert!(!r.body_text().contains("secret-value") && !r.body_text().contains("id-value"));
        let r = report(&cfg(&[]), &seen);
        assert_eq!(r.status, 503);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], "misconfigured");
        assert_eq!(
            v["missing"],
            json!(["ATTIO_CLIENT_ID", "ATTIO_CLIENT_SECRET"])
        );
    }

    #[test]
    fn tunnel_warning() {
        let c = cfg(&[]);
        let behind = Seen {
            origin: "http://localhost:8787",
            forwarded_proto: Some("https"),
            forwarded_host: Some("abc.ngrok.app"),
        };
        assert_eq!(warnings(&c, &behind).len(), 1);
        let direct = Seen {
            origin: "https://b.dev",
            forwarded_proto: Some("https"),
            forwarded_host: Some("b.dev"),
        };
        assert!(warnings(&c, &direct).is_empty());
        let set = cfg(&[("WORKER_URL", "https://abc.ngrok.app")]);
        assert!(warnings(&set, &behind).is_empty());
    }
}
