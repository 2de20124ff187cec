//! The Worker shell: one `#[event(fetch)]` entry, a `Router` built per
//! request, and one small handler per endpoint that reads the request, calls
//! the core, performs the I/O the core asked for (KV, Attio) and returns the
//! core's reply. Each handler reads top-down as its flow.

mod io;

use crate::core::cache::Expiring;

use worker::{console_log, event, Context, Env, KvStore, Request, Response, RouteContext, Router};

use crate::core::authorize::{self, Checked, Decision};
use crate::core::callback::{self, Located, Next};
use crate::core::config::Config;
use crate::core::crypto::{random_token, Keys};
use crate::core::error::{Help, OAuthError};
use crate::core::http::{Incoming, Reply};
use crate::core::registration::{self, ClientLookup, ClientRecord};
use crate::core::routes::{self, Dispatch, Endpoint};
use crate::core::session::CookiePolicy;
use crate::core::token::{self, CodeLocation, Grant};
use crate::core::{cimd, health, metadata, pages, upstream};
use io::{kv_delete, kv_get, kv_put, OsRng};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    console_error_panic_hook::set_once();
    let router = Router::new()
        .on_async("/", |r, c| handle(Endpoint::Landing, r, c))
        .on_async("/health", |r, c| handle(Endpoint::Health, r, c))
        .on_async("/ping", |r, c| handle(Endpoint::Health, r, c))
        .on_async("/.well-known/oauth-authorization-server", |r, c| {
            handle(Endpoint::AuthorizationServerMetadata, r, c)
        })
        .on_async("/.well-known/oauth-authorization-server/*rest", |r, c| {
            handle(Endpoint::AuthorizationServerMetadata, r, c)
        })
        .on_async("/.well-known/oauth-protected-resource", |r, c| {
            handle(Endpoint::ProtectedResourceMetadata, r, c)
        })
        .on_async("/.well-known/oauth-protected-resource/*rest", |r, c| {
            handle(Endpoint::ProtectedResourceMetadata, r, c)
        })
        .on_async("/oauth/authorize", |r, c| handle(Endpoint::Authorize, r, c))
        .on_async("/oauth/callback", |r, c| handle(Endpoint::Callback, r, c))
        .on_async("/oauth/token", |r, c| handle(Endpoint::Token, r, c))
        .on_async("/oauth/register", |r, c| handle(Endpoint::Register, r, c))
        .on_async("/oauth/revoke", |r, c| handle(Endpoint::Revoke, r, c))
        .or_else_any_method_async("/*path", |r, _| async move {
            let reply = routes::with_cors(OAuthError::not_found().to_json());
            io::to_response(reply, r.method() == worker::Method::Head)
        });
    match router.run(req, env).await {
        Ok(r) => Ok(r),
        Err(_) => {
            console_log!("internal error while answering a request");
            io::to_response(OAuthError::server_error("internal error").to_json(), false)
        }
    }
}

/// Everything a handler needs for one request.
struct Ctx {
    cfg: std::rc::Rc<Config>,
    kv: Option<KvStore>,
    incoming: Incoming,
    /// The public base URL, also the issuer.
    base: String,
    now: u64,
    nonce: String,
}

impl Ctx {
    /// Keys, or the error that names the missing settings. Derived once
    /// per isolate, like the settings they come from.
    fn keys(&self) -> Result<std::rc::Rc<Keys>, OAuthError> {
        if let Some(m) = self.cfg.missing() {
            return Err(OAuthError::misconfigured(&m.0));
        }
        let Some(material) = self.cfg.key_material() else {
            return Err(OAuthError::misconfigured(&["ATTIO_CLIENT_SECRET"]));
        };
        let fingerprint = crate::core::crypto::sha256(material.secret().as_bytes());
        let cached = KEYS.with(|k| {
            k.borrow()
                .as_ref()
                .filter(|(f, _)| *f == fingerprint)
                .map(|(_, keys)| keys.clone())
        });
        Ok(cached.unwrap_or_else(|| {
            let keys = std::rc::Rc::new(Keys::derive(material.secret().as_bytes()));
            KEYS.with(|k| *k.borrow_mut() = Some((fingerprint, keys.clone())));
            keys
        }))
    }

    fn browser_cookie(&self) -> Option<&str> {
        self.incoming
            .cookie(CookiePolicy::for_base(&self.base).browser_name())
    }

    fn approval_cookie(&self) -> Option<&str> {
        self.incoming
            .cookie(CookiePolicy::for_base(&self.base).approval_name())
    }
}

fn storage_error() -> OAuthError {
    let mut e = OAuthError::new(
        crate::core::error::ErrorCode::TemporarilyUnavailable,
        503,
        "the broker's storage is unavailable; retry shortly",
    );
    e.retry_after = Some("5".into());
    e
}

async fn handle(ep: Endpoint, req: Request, route: RouteContext<()>) -> worker::Result<Response> {
    let method = req.method().to_string();
    let (cfg, kv) = io::load(&route.env);
    let incoming = io::incoming(&req);
    let ctx = Ctx {
        base: cfg.base_url(&incoming.origin()),
        cfg,
        kv,
        now: io::now(),
        // Only HTML pages use a CSP nonce.
        nonce: if ep.is_browser() {
            random_token(&mut OsRng)[..22].to_string()
        } else {
            String::new()
        },
        incoming,
    };
    let rest = route.param("rest").cloned();
    let reply = match routes::dispatch(ep, &method) {
        Dispatch::Preflight => routes::preflight(ep),
        Dispatch::NotAllowed => fail(ep, &ctx, OAuthError::method_not_allowed(ep.allow())),
        Dispatch::Run => run(ep, req, ctx, rest.as_deref()).await,
    };
    let reply = if ep.is_browser() || method == "OPTIONS" {
        reply
    } else {
        routes::with_cors(reply)
    };
    console_log!("{} {} -> {}", method, ep_name(ep), reply.status);
    io::to_response(reply, method == "HEAD")
}

fn ep_name(ep: Endpoint) -> &'static str {
    match ep {
        Endpoint::Landing => "/",
        Endpoint::Health => "/health",
        Endpoint::AuthorizationServerMetadata => "/.well-known/oauth-authorization-server",
        Endpoint::ProtectedResourceMetadata => "/.well-known/oauth-protected-resource",
        Endpoint::Authorize => "/oauth/authorize",
        Endpoint::Callback => "/oauth/callback",
        Endpoint::Token => "/oauth/token",
        Endpoint::Register => "/oauth/register",
        Endpoint::Revoke => "/oauth/revoke",
    }
}

/// One error, two renderings: a page for browser endpoints, JSON otherwise.
fn fail(ep: Endpoint, ctx: &Ctx, e: OAuthError) -> Reply {
    if ep.is_browser() {
        e.to_page(&ctx.nonce)
    } else {
        e.to_json()
    }
}

async fn run(ep: Endpoint, req: Request, ctx: Ctx, rest: Option<&str>) -> Reply {
    let result = match ep {
        Endpoint::Landing => Ok(pages::landing_page(&ctx.base, &ctx.nonce)),
        Endpoint::Health => Ok(health::report(
            &ctx.cfg,
            &health::Seen {
                origin: &ctx.incoming.origin(),
                forwarded_proto: ctx.incoming.header("x-forwarded-proto"),
                forwarded_host: ctx.incoming.header("x-forwarded-host"),
            },
        )),
        Endpoint::AuthorizationServerMetadata => {
            Ok(Reply::json_bytes(200, metadata_document(&ctx.base))
                .header("Cache-Control", "public, max-age=3600"))
        }
        Endpoint::ProtectedResourceMetadata => Ok(Reply::json(
            200,
            &metadata::protected_resource(&ctx.base, rest),
        )
        .header("Cache-Control", "public, max-age=3600")),
        Endpoint::Authorize if ctx.incoming.method == "POST" => consent_submit(req, &ctx).await,
        Endpoint::Authorize => authorize_get(&ctx).await,
        Endpoint::Callback => callback_get(&ctx).await,
        Endpoint::Token => token_post(req, &ctx).await,
        Endpoint::Register => register_post(req, &ctx).await,
        Endpoint::Revoke => revoke_post(req, &ctx).await,
    };
    result.unwrap_or_else(|e| fail(ep, &ctx, e))
}

/// Why a client id did not resolve.
enum ClientProblem {
    Unknown,
    /// A client metadata document that was refused, could not be fetched, or
    /// is invalid: why.
    Document(String),
    Storage,
}

impl ClientProblem {
    /// At `/oauth/authorize`: an error page, never a redirect.
    fn for_page(self) -> OAuthError {
        match self {
            ClientProblem::Unknown => authorize::unknown_client(),
            ClientProblem::Document(why) => OAuthError::new(
                crate::core::error::ErrorCode::InvalidClient,
                400,
                format!("client metadata document: {why}"),
            )
            .with_help(Help::BadClientRequest),
            ClientProblem::Storage => storage_error(),
        }
    }
    /// At the token and revocation endpoints.
    fn for_api(self) -> OAuthError {
        match self {
            ClientProblem::Unknown => OAuthError::invalid_client("unknown client"),
            ClientProblem::Document(why) => {
                OAuthError::invalid_client(format!("client metadata document: {why}"))
            }
            ClientProblem::Storage => storage_error(),
        }
    }
}

thread_local! {
    /// Keys derived from the key material whose SHA-256 is the first field.
    static KEYS: std::cell::RefCell<Option<([u8; 32], std::rc::Rc<Keys>)>> = const { std::cell::RefCell::new(None) };
    /// The last authorization server metadata document: (base URL, bytes).
    static METADATA: std::cell::RefCell<Option<(String, Vec<u8>)>> = const { std::cell::RefCell::new(None) };
    /// Sealed (stateless) codes this isolate has redeemed, until they expire.
    static USED_CODES: std::cell::RefCell<Expiring<()>> = std::cell::RefCell::new(Expiring::new(10_000));
    /// Registered clients read from KV, by KV key, until their registration lapses.
    static STORED_CLIENTS: std::cell::RefCell<Expiring<ClientRecord>> = std::cell::RefCell::new(Expiring::new(1000));
    /// Client metadata documents, by URL, for as long as their Cache-Control allows.
    static DOCUMENTS: std::cell::RefCell<Expiring<ClientRecord>> = std::cell::RefCell::new(Expiring::new(100));
}

/// The RFC 8414 document for this base URL, serialised once per isolate.
fn metadata_document(base: &str) -> Vec<u8> {
    METADATA.with(|m| {
        let mut m = m.borrow_mut();
        match m.as_ref() {
            Some((b, doc)) if b == base => doc.clone(),
            _ => {
                let doc =
                    serde_json::to_vec(&metadata::authorization_server(base)).unwrap_or_default();
                *m = Some((base.to_string(), doc.clone()));
                doc
            }
        }
    })
}

/// Resolve a client id to its registration: KV, sealed, or a client
/// metadata document (cached per its Cache-Control, at most a day).
async fn resolve_client(
    ctx: &Ctx,
    keys: &Keys,
    client_id: &str,
) -> Result<ClientRecord, ClientProblem> {
    match registration::lookup(client_id, keys, &ctx.cfg, ctx.now) {
        ClientLookup::Unknown => Err(ClientProblem::Unknown),
        ClientLookup::Sealed(r) => Ok(r),
        ClientLookup::Stored(key) => {
            let Some(kv) = &ctx.kv else {
                return Err(ClientProblem::Unknown);
            };
            // Registrations never change, so a record read once is kept in
            // the isolate until it lapses (saves a KV read per request).
            if let Some(r) = STORED_CLIENTS.with(|c| c.borrow().get(&key, ctx.now)) {
                return Ok(r);
            }
            let stored = kv_get(kv, &key).await.map_err(|_| ClientProblem::Storage)?;
            let record = stored
                .and_then(|s| registration::parse_stored(&s, ctx.now))
                .ok_or(ClientProblem::Unknown)?;
            let expires_at = record.expires_at;
            STORED_CLIENTS.with(|c| {
                c.borrow_mut()
                    .insert(key, record.clone(), expires_at, ctx.now)
            });
            Ok(record)
        }
        ClientLookup::RefusedDocument(why) => Err(ClientProblem::Document(why)),
        ClientLookup::Document(url) => {
            if let Some(r) = DOCUMENTS.with(|d| d.borrow().get(client_id, ctx.now)) {
                return Ok(r);
            }
            let kv_key = format!("cimd:{}", keys.storage_hash(client_id.as_bytes()));
            if let Some(kv) = &ctx.kv {
                if let Ok(Some(s)) = kv_get(kv, &kv_key).await {
                    if let Ok(r) = serde_json::from_str::<ClientRecord>(&s) {
                        return Ok(r);
                    }
                }
            }
            let answer = io::send(&cimd::fetch_request(&url)).await;
            let record =
                cimd::parse_document(client_id, &answer, &ctx.cfg.allowed_redirects, ctx.now)
                    .map_err(ClientProblem::Document)?;
            let ttl = match &answer {
                upstream::Answer::Http { cache_control, .. } => {
                    cimd::cache_seconds(cache_control.as_deref())
                }
                _ => 0,
            };
            if ttl > 0 {
                DOCUMENTS.with(|d| {
                    d.borrow_mut().insert(
                        client_id.to_string(),
                        record.clone(),
                        ctx.now + ttl,
                        ctx.now,
                    )
                });
                if let (Some(kv), true) = (&ctx.kv, ttl >= 60) {
                    let _ = kv_put(
                        kv,
                        &kv_key,
                        serde_json::to_string(&record).unwrap_or_default(),
                        ttl,
                    )
                    .await;
                }
            }
            Ok(record)
        }
    }
}

/// Store what `start_signin` asked for and answer its redirect.
async fn begin(ctx: &Ctx, started: authorize::Started) -> Result<Reply, OAuthError> {
    if let (Some((key, value, ttl)), Some(kv)) = (&started.store, &ctx.kv) {
        kv_put(kv, key, value.clone(), *ttl)
            .await
            .map_err(|_| storage_error())?;
    }
    Ok(started.reply())
}

// GET /oauth/authorize
async fn authorize_get(ctx: &Ctx) -> Result<Reply, OAuthError> {
    let keys = ctx.keys()?;
    let params = authorize::parse_query(ctx.incoming.query())?;
    let Some(client_id) = params.get("client_id").map(str::to_string) else {
        // The manual flow: straight to Attio.
        let started = authorize::start_signin(
            &ctx.cfg,
            &keys,
            &ctx.base,
            ctx.browser_cookie(),
            None,
            ctx.now,
            &mut OsRng,
        );
        return begin(ctx, started).await;
    };
    let client = resolve_client(ctx, &keys, &client_id)
        .await
        .map_err(ClientProblem::for_page)?;
    let request =
        match authorize::check_client_request(&params, &client_id, &client, &keys, &ctx.base) {
            Checked::Ok(r) => r,
            Checked::Page(e) => return Err(e),
            Checked::Redirect(location) => return Ok(Reply::redirect(&location)),
        };
    if authorize::already_approved(&keys, ctx.approval_cookie(), &request, ctx.now) {
        let started = authorize::start_signin(
            &ctx.cfg,
            &keys,
            &ctx.base,
            ctx.browser_cookie(),
            Some(request),
            ctx.now,
            &mut OsRng,
        );
        return begin(ctx, started).await;
    }
    Ok(authorize::consent(
        &keys,
        &ctx.base,
        ctx.browser_cookie(),
        &client_id,
        request,
        &client,
        &ctx.nonce,
        ctx.now,
        &mut OsRng,
    ))
}

// POST /oauth/authorize (the consent form)
async fn consent_submit(mut req: Request, ctx: &Ctx) -> Result<Reply, OAuthError> {
    let keys = ctx.keys()?;
    let body = io::read_body(&mut req, 16 * 1024).await.ok_or_else(|| {
        OAuthError::new(
            crate::core::error::ErrorCode::InvalidRequest,
            413,
            "the form is too large",
        )
    })?;
    let (decision, request) =
        authorize::check_consent_submission(&body, &keys, ctx.browser_cookie(), ctx.now)?;
    match decision {
        Decision::Deny => Ok(Reply::redirect(&authorize::denied_redirect(
            &request, &ctx.base,
        ))),
        Decision::Approve => {
            let remember = authorize::remember_approval(
                &keys,
                &ctx.base,
                ctx.approval_cookie(),
                &request,
                ctx.now,
            );
            let started = authorize::start_signin(
                &ctx.cfg,
                &keys,
                &ctx.base,
                ctx.browser_cookie(),
                Some(request),
                ctx.now,
                &mut OsRng,
            );
            Ok(begin(ctx, started).await?.header("Set-Cookie", &remember))
        }
    }
}

// GET /oauth/callback
async fn callback_get(ctx: &Ctx) -> Result<Reply, OAuthError> {
    let keys = ctx.keys()?;
    // 1. The state, before anything else.
    let params = callback::parse(ctx.incoming.query())?;
    let (session, stored_key) =
        match callback::locate(&params.state, &keys, ctx.kv.is_some(), ctx.now)? {
            Located::Sealed(s) => (s, None),
            Located::Stored(key) => {
                let kv = ctx.kv.as_ref().ok_or_else(storage_error)?;
                let stored = kv_get(kv, &key).await.map_err(|_| storage_error())?;
                (
                    callback::open_stored(&keys, stored.as_deref(), ctx.now)?,
                    Some(key),
                )
            }
        };
    // Only the browser that started the sign-in may use (and so spend) it.
    callback::check_browser(&session, ctx.browser_cookie(), &keys, ctx.now)?;
    if let (Some(key), Some(kv)) = (&stored_key, &ctx.kv) {
        // Used once: delete before going on.
        kv_delete(kv, key).await.map_err(|_| storage_error())?;
    }
    // 2. Attio's answer.
    let code = match callback::next(&session, params, &ctx.base, &ctx.nonce) {
        Next::Done(reply) => return Ok(reply),
        Next::Exchange { code } => code,
    };
    // 3. Exchange the code; ask about the token, best effort.
    let redirect_uri = format!("{}/oauth/callback", ctx.base);
    let exchange =
        upstream::code_exchange(&ctx.cfg, &code, &redirect_uri, session.verifier.secret());
    let mut grant = match upstream::parse_token(&io::send(&exchange).await) {
        Ok(g) => g,
        Err(e) => {
            console_log!("{}", e.log_line("code exchange"));
            return Ok(callback::failure_reply(
                &session,
                &e.to_page_error(),
                &ctx.base,
                &ctx.nonce,
            ));
        }
    };
    let info = upstream::parse_introspection(
        &io::send(&upstream::introspect(&ctx.cfg, grant.access_token.secret())).await,
    );
    upstream::enrich(&mut grant, info);
    // 4. The token page, or a code for the client.
    if session.client.is_none() {
        return Ok(callback::token_page_reply(
            &grant,
            &ctx.base,
            &ctx.nonce,
            ctx.cfg.uses_stand_in(),
        ));
    }
    let minted = callback::mint_code(
        &session,
        grant,
        &keys,
        ctx.kv.is_some(),
        &ctx.base,
        ctx.now,
        &mut OsRng,
    )
    .ok_or_else(|| OAuthError::server_error("no client in this session"))?;
    if let (Some((key, value, ttl)), Some(kv)) = (&minted.store, &ctx.kv) {
        kv_put(kv, key, value.clone(), *ttl)
            .await
            .map_err(|_| storage_error())?;
    }
    Ok(minted.reply)
}

/// The body of a token or revocation request, and the client it names,
/// authenticated as registered (`None`: no client named).
async fn api_request(
    req: &mut Request,
    ctx: &Ctx,
    keys: &Keys,
) -> Result<(token::Params, Option<(String, ClientRecord)>), OAuthError> {
    let body = io::read_body(req, token::MAX_BODY).await.ok_or_else(|| {
        OAuthError::new(
            crate::core::error::ErrorCode::InvalidRequest,
            413,
            "the request body is larger than 64 KiB",
        )
    })?;
    let params = token::parse_body(ctx.incoming.header("content-type"), &body)?;
    let presented = token::presented_client(&params, ctx.incoming.header("authorization"))?;
    match &presented.client_id {
        Some(id) => {
            let record = resolve_client(ctx, keys, id)
                .await
                .map_err(ClientProblem::for_api)?;
            token::authenticate(&record, id, &presented, keys)?;
            Ok((params, Some((id.clone(), record))))
        }
        None => Ok((params, None)),
    }
}

// POST /oauth/token
async fn token_post(mut req: Request, ctx: &Ctx) -> Result<Reply, OAuthError> {
    let keys = ctx.keys()?;
    let (params, client) = api_request(&mut req, ctx, &keys).await?;
    let grant = token::grant(&params)?;
    match grant {
        Grant::AuthorizationCode { code } => {
            let (client_id, record) =
                client.ok_or_else(|| OAuthError::invalid_client("client_id is required"))?;
            let code_grant = match token::locate_code(&code, &keys, ctx.kv.is_some(), ctx.now)? {
                CodeLocation::Sealed(g) => {
                    // A sealed code cannot be marked used everywhere; this
                    // isolate at least refuses to redeem it twice.
                    let key = crate::core::session::code_key(&keys, &code);
                    let seen =
                        USED_CODES.with(|u| u.borrow_mut().insert(key, (), g.expires_at, ctx.now));
                    if seen {
                        return Err(token::bad_code());
                    }
                    g
                }
                CodeLocation::Stored(key) => {
                    let kv = ctx.kv.as_ref().ok_or_else(storage_error)?;
                    let stored = kv_get(kv, &key).await.map_err(|_| storage_error())?;
                    let g = token::open_stored_code(&keys, stored.as_deref(), ctx.now)?;
                    kv_delete(kv, &key).await.map_err(|_| storage_error())?;
                    g
                }
            };
            token::check_code(&code_grant, &params, &client_id, &keys, ctx.now)?;
            let mut grant = code_grant.grant;
            token::bind_refresh(&mut grant, &keys, &client_id, &mut OsRng);
            // A client in use keeps its registration: renew it in KV when
            // less than half of its time to live is left.
            if let (Some(kv), Some((renewed, ttl))) =
                (&ctx.kv, registration::renewal(&record, &ctx.cfg, ctx.now))
            {
                let key = registration::client_key(&client_id);
                if kv_put(
                    kv,
                    &key,
                    serde_json::to_string(&renewed).unwrap_or_default(),
                    ttl,
                )
                .await
                .is_ok()
                {
                    let expires_at = renewed.expires_at;
                    STORED_CLIENTS
                        .with(|c| c.borrow_mut().insert(key, renewed, expires_at, ctx.now));
                }
            }
            Ok(token::token_reply(&grant))
        }
        Grant::Refresh {
            refresh_token,
            scope,
        } => {
            let named = client.as_ref().map(|(id, rec)| (id.as_str(), rec));
            let (attio_rt, bound) = token::refresh_for(&refresh_token, named, &keys, ctx.now)?;
            let out = upstream::refresh(&ctx.cfg, attio_rt.secret(), scope.as_deref());
            match upstream::parse_token(&io::send(&out).await) {
                Ok(mut g) => {
                    if let (true, Some((id, _))) = (bound, &client) {
                        token::bind_refresh(&mut g, &keys, id, &mut OsRng);
                    }
                    Ok(token::token_reply(&g))
                }
                Err(e) => {
                    console_log!("{}", e.log_line("refresh"));
                    Err(e.to_api_error())
                }
            }
        }
    }
}

// POST /oauth/register
async fn register_post(mut req: Request, ctx: &Ctx) -> Result<Reply, OAuthError> {
    let keys = ctx.keys()?;
    let body = io::read_body(&mut req, registration::MAX_BODY)
        .await
        .ok_or_else(|| {
            OAuthError::new(
                crate::core::error::ErrorCode::InvalidClientMetadata,
                413,
                "the registration request is larger than 64 KiB",
            )
        })?;
    let record = registration::validate(&body, &ctx.cfg, ctx.now)?;
    let registered = registration::register(record, &keys, &ctx.cfg, &mut OsRng);
    if let (Some((value, ttl)), Some(kv)) = (&registered.store, &ctx.kv) {
        kv_put(
            kv,
            &registration::client_key(&registered.client_id),
            value.clone(),
            *ttl,
        )
        .await
        .map_err(|_| storage_error())?;
    }
    Ok(Reply::json(201, &registration::response_body(&registered)).header("Pragma", "no-cache"))
}

// POST /oauth/revoke
async fn revoke_post(mut req: Request, ctx: &Ctx) -> Result<Reply, OAuthError> {
    let keys = ctx.keys()?;
    let (params, client) = api_request(&mut req, ctx, &keys).await?;
    let presented = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let Some(token) = token::revocable(
        presented,
        client.as_ref().map(|(id, _)| id.as_str()),
        &keys,
        ctx.now,
    ) else {
        return Ok(Reply::new(200).header("Cache-Control", "no-store"));
    };
    match upstream::parse_revoke(&io::send(&upstream::revoke(&ctx.cfg, token.secret())).await) {
        Ok(()) => Ok(Reply::new(200).header("Cache-Control", "no-store")),
        Err(e) => {
            console_log!("{}", e.log_line("revoke"));
            Err(e.to_revoke_error())
        }
    }
}
