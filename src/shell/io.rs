//! The Worker side of I/O: settings, clock, entropy, KV, outbound fetch with
//! a deadline, and converting between worker types and the core's values.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::{
    AbortController, Delay, Env, Fetch, Headers, KvStore, Method, Request, RequestInit,
    RequestRedirect, Response,
};

use crate::core::config::Config;
use crate::core::http::{Incoming, Reply};
use crate::core::types::Rng;
use crate::core::upstream::{Answer, Outbound};

pub const KV_BINDING: &str = "OAUTH_SESSIONS";

/// Entropy from the platform's CSPRNG (crypto.getRandomValues).
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        // Without entropy no state, code or nonce is safe: fail the request
        // (a 500 from the runtime) rather than hand out guessable values.
        if getrandom::fill(buf).is_err() {
            panic!("no entropy available");
        }
    }
}

pub fn now() -> u64 {
    worker::Date::now().as_millis() / 1000
}

thread_local! {
    /// Settings read once per isolate: an isolate serves one version of the
    /// Worker, whose vars and secrets do not change (changing a secret
    /// deploys a new version). Saves ~30 JS boundary crossings per request.
    static SETTINGS: std::cell::RefCell<Option<std::rc::Rc<Config>>> = const { std::cell::RefCell::new(None) };
}

/// Settings from vars and secrets, and the optional KV binding.
pub fn load(env: &Env) -> (std::rc::Rc<Config>, Option<KvStore>) {
    let kv = env.kv(KV_BINDING).ok();
    if let Some(cfg) = SETTINGS.with(|s| s.borrow().clone()) {
        if cfg.kv_bound == kv.is_some() {
            return (cfg, kv);
        }
    }
    let get = |name: &str| {
        env.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| env.var(name).map(|v| v.to_string()))
            .ok()
    };
    let cfg = std::rc::Rc::new(Config::from_lookup(get, kv.is_some()));
    SETTINGS.with(|s| *s.borrow_mut() = Some(cfg.clone()));
    (cfg, kv)
}

pub fn incoming(req: &Request) -> Incoming {
    let mut headers = BTreeMap::new();
    for (k, v) in req.headers().entries() {
        headers.insert(k.to_ascii_lowercase(), v);
    }
    Incoming {
        method: req.method().to_string(),
        url: req.url().map(|u| u.to_string()).unwrap_or_default(),
        headers,
    }
}

/// Read a request body, at most `limit` bytes. `None`: larger than the limit.
/// An oversize body is still drained (up to `DRAIN_LIMIT`) before the 413 is
/// sent, so the client's connection is not reset under it.
pub async fn read_body(req: &mut Request, limit: usize) -> Option<Vec<u8>> {
    const DRAIN_LIMIT: usize = 1024 * 1024;
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|l| l.trim().parse::<usize>().ok());
    // A declared length within the limit: one read (workerd enforces the
    // length), much cheaper than the stream reader.
    if declared.is_some_and(|n| n <= limit) {
        return match req.bytes().await {
            Ok(b) if b.len() > limit => None,
            Ok(b) => Some(b),
            // A body that cannot be read is treated as empty, as below.
            Err(_) => Some(Vec::new()),
        };
    }
    let Ok(mut stream) = req.stream() else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut too_big = declared.is_some_and(|n| n > limit);
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        seen += chunk.len();
        if seen > limit {
            too_big = true;
            out = Vec::new();
        }
        if too_big {
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        out.extend_from_slice(&chunk);
    }
    if too_big {
        None
    } else {
        Some(out)
    }
}

pub fn to_response(reply: Reply, head: bool) -> worker::Result<Response> {
    let headers = Headers::new();
    for (k, v) in &reply.headers {
        // `append` keeps several Set-Cookie headers; an invalid value is
        // dropped rather than failing the whole response.
        let _ = headers.append(k, v);
    }
    let resp = if head || reply.body.is_empty() || matches!(reply.status, 204 | 304) {
        Response::empty()?
    } else {
        Response::from_bytes(reply.body)?
    };
    Ok(resp.with_status(reply.status).with_headers(headers))
}

/// Send a request to Attio with its deadline; read at most
/// `MAX_RESPONSE_BYTES` of the answer. Redirects are not followed.
pub async fn send(out: &Outbound) -> Answer {
    let controller = AbortController::default();
    let signal = controller.signal();
    let work = async {
        let headers = Headers::new();
        for (k, v) in &out.headers {
            let _ = headers.set(k, v);
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(out.method.to_string()))
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if let Some(b) = &out.body {
            init.with_body(Some(wasm_bindgen::JsValue::from_str(b)));
        }
        let Ok(request) = Request::new_with_init(&out.url, &init) else {
            return Answer::Network;
        };
        let mut resp = match Fetch::Request(request).send_with_signal(&signal).await {
            Ok(r) => r,
            Err(_) => return Answer::Network,
        };
        let status = resp.status_code();
        let retry_after = resp.headers().get("retry-after").ok().flatten();
        let cache_control = resp.headers().get("cache-control").ok().flatten();
        let mut body = Vec::new();
        let mut truncated = false;
        if let Ok(mut stream) = resp.stream() {
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) if body.len() + c.len() <= out.max_bytes => body.extend_from_slice(&c),
                    Ok(_) => {
                        truncated = true;
                        break;
                    }
                    Err(_) => return Answer::Network,
                }
            }
        }
        Answer::Http {
            status,
            retry_after,
            cache_control,
            body,
            truncated,
        }
    };
    let deadline = Delay::from(Duration::from_millis(out.deadline_ms));
    let outcome = match select(Box::pin(work), deadline).await {
        Either::Left((answer, _)) => Some(answer),
        Either::Right(((), _)) => None,
    };
    match outcome {
        Some(answer) => answer,
        None => {
            controller.abort();
            Answer::Timeout
        }
    }
}

/// KV failures are reported as a storage error (never a panic).
pub struct StorageError;

pub async fn kv_get(kv: &KvStore, key: &str) -> Result<Option<String>, StorageError> {
    kv.get(key).text().await.map_err(|_| StorageError)
}

pub async fn kv_put(kv: &KvStore, key: &str, value: String, ttl: u64) -> Result<(), StorageError> {
    kv.put(key, value)
        .map_err(|_| StorageError)?
        .expiration_ttl(ttl.max(60))
        .execute()
        .await
        .map_err(|_| StorageError)
}

pub async fn kv_delete(kv: &KvStore, key: &str) -> Result<(), StorageError> {
    kv.delete(key).await.map_err(|_| StorageError)
}
