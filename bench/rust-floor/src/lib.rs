//! The Rust floor: what the worker crate costs before any broker code runs.
//!
//! - `/bare`: answer a fixed JSON body straight from the fetch handler.
//! - `/router`: the same, through a `Router` with the broker's 13 routes,
//!   built per request as the broker does.
//! - `/router-env`: the router plus the broker's per-request prelude: 11
//!   settings looked up as a secret then as a var, the KV binding, and the
//!   request's headers and URL copied into Rust.
use worker::{event, Context, Env, Request, Response, Result, RouteContext, Router};

const BODY: &str = "{\"status\":\"ok\"}";
const SETTINGS: [&str; 11] = [
    "ATTIO_CLIENT_ID",
    "ATTIO_CLIENT_SECRET",
    "BROKER_SECRET",
    "WORKER_URL",
    "ATTIO_AUTHORIZE_URL",
    "ATTIO_TOKEN_URL",
    "ATTIO_INTROSPECT_URL",
    "ATTIO_REVOKE_URL",
    "ALLOWED_REDIRECT_URIS",
    "CLIENT_TTL_DAYS",
    "UNSAFE_ALLOW_LOOPBACK_CLIENT_METADATA",
];

fn fixed() -> Result<Response> {
    let r = Response::from_bytes(BODY.as_bytes().to_vec())?;
    r.headers().set("content-type", "application/json")?;
    Ok(r)
}

async fn handler(req: Request, c: RouteContext<bool>) -> Result<Response> {
    if !c.data {
        return fixed();
    }
    let mut found = 0usize;
    for name in SETTINGS {
        let v = c
            .env
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| c.env.var(name).map(|v| v.to_string()))
            .ok();
        found += v.map_or(0, |v| v.len());
    }
    let kv = c.env.kv("OAUTH_SESSIONS").ok();
    let mut headers = std::collections::BTreeMap::new();
    for (k, v) in req.headers().entries() {
        headers.insert(k.to_ascii_lowercase(), v);
    }
    let url = req.url().map(|u| u.to_string()).unwrap_or_default();
    let r = fixed()?;
    r.headers().set(
        "x-seen",
        &format!("{}/{}/{}/{}", found, kv.is_some(), headers.len(), url.len()),
    )?;
    Ok(r)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    if req.path() == "/bare" {
        return fixed();
    }
    let with_prelude = req.path() == "/router-env";
    let h = handler;
    Router::with_data(with_prelude)
        .on_async("/", h)
        .on_async("/health", h)
        .on_async("/ping", h)
        .on_async("/.well-known/oauth-authorization-server", h)
        .on_async("/.well-known/oauth-authorization-server/*rest", h)
        .on_async("/.well-known/oauth-protected-resource", h)
        .on_async("/.well-known/oauth-protected-resource/*rest", h)
        .on_async("/oauth/authorize", h)
        .on_async("/oauth/callback", h)
        .on_async("/oauth/token", h)
        .on_async("/oauth/register", h)
        .on_async("/oauth/revoke", h)
        .or_else_any_method_async("/*path", h)
        .run(req, env)
        .await
}
