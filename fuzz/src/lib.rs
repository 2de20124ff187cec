//! What the fuzz target and the smoke harness check: every parser of
//! untrusted input in the broker's core, fed the same bytes. None may panic,
//! and a few round trips must hold (a registration that validates must look
//! up as itself; a value sealed for one purpose opens only as that purpose).

use std::sync::OnceLock;

use attio_oauth_broker::core::callback;
use attio_oauth_broker::core::config::Config;
use attio_oauth_broker::core::crypto::{Keys, Purpose};
use attio_oauth_broker::core::params::Params;
use attio_oauth_broker::core::redirect;
use attio_oauth_broker::core::registration::{self, ClientLookup, ClientRecord};
use attio_oauth_broker::core::session::{self, CodeGrant, PendingConsent, Session};
use attio_oauth_broker::core::token;
use attio_oauth_broker::core::types::Rng;
use attio_oauth_broker::core::{pkce, upstream};

/// A fixed "now" (2026-12-01), so runs are reproducible.
pub const NOW: u64 = 1_796_083_200;

/// Deterministic randomness (xorshift64*), for sealing in round trips.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

impl Rng for XorShift {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

pub struct Fixture {
    pub keys: Keys,
    pub cfg_kv: Config,
    pub cfg_plain: Config,
    pub cfg_allow: Config,
    pub client: ClientRecord,
}

fn config(kv: bool, allowed: Option<&str>) -> Config {
    let allowed = allowed.map(str::to_string);
    Config::from_lookup(
        move |k| match k {
            "ATTIO_CLIENT_ID" => Some("fuzz-client".into()),
            "ATTIO_CLIENT_SECRET" => Some("fuzz-secret".into()),
            "ALLOWED_REDIRECT_URIS" => allowed.clone(),
            _ => None,
        },
        kv,
    )
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg_plain = config(false, None);
        let client = registration::validate(
            br#"{"redirect_uris":["https://claude.ai/api/mcp/auth_callback","http://127.0.0.1:33418/cb","cursor://anysphere.cursor-mcp/oauth/callback"],"client_name":"Fuzz"}"#,
            &cfg_plain,
            NOW,
        )
        .expect("the fixture registration is valid");
        Fixture {
            keys: Keys::derive(b"fuzz-broker-secret"),
            cfg_kv: config(true, None),
            cfg_plain,
            cfg_allow: config(false, Some("claude.ai, https://chatgpt.com/connector_platform_oauth_redirect, http://localhost:3334/oauth/callback")),
            client,
        }
    })
}

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "APPLICATION/JSON; charset=\"utf-8\"",
    "",
    ";;;=",
    "text/plain",
    "multipart/form-data; boundary=x",
];

/// Run every parser on `data`. Panics only on a bug.
pub fn check(data: &[u8]) {
    let f = fixture();
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    // Two-argument functions get the input split at the first newline.
    let (a, b) = s.split_once('\n').unwrap_or((s, ""));
    let sel = data.first().copied().unwrap_or(0) as usize;

    // params.rs
    let form = Params::parse_form(data);
    let _ = Params::parse_json(data);
    if let Ok(p) = &form {
        for name in [
            "client_id",
            "state",
            "code",
            "redirect_uri",
            "grant_type",
            "",
        ] {
            let _ = p.get(name);
        }
    }

    // redirect.rs
    let _ = redirect::check_registrable(s, &[]);
    let _ = redirect::check_registrable(s, &f.cfg_allow.allowed_redirects);
    let _ = redirect::check_registrable(a, &[b.to_string()]);
    if redirect::matches(a, b) && a != b && redirect::check_registrable(a, &[]).is_ok() {
        // Beyond exact equality, a registered URI only matches a loopback
        // http URI on another port: same host, no fragment, no user info.
        assert!(
            b.starts_with("http://"),
            "non-exact match for a non-http URI: {a:?} ~ {b:?}"
        );
        assert!(
            !b.contains('#') && !b.contains('@'),
            "matched a URI with a fragment or user info: {a:?} ~ {b:?}"
        );
        assert_eq!(
            url_host(a),
            url_host(b),
            "matches() accepted another host: {a:?} ~ {b:?}"
        );
    }
    let _ = redirect::display_host(s);

    // registration.rs
    for cfg in [&f.cfg_plain, &f.cfg_kv, &f.cfg_allow] {
        if let Ok(record) = registration::validate(data, cfg, NOW) {
            for uri in &record.redirect_uris {
                assert!(redirect::check_registrable(uri, &cfg.allowed_redirects).is_ok());
            }
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ data.len() as u64);
            let reg = registration::register(record.clone(), &f.keys, cfg, &mut rng);
            let _ = registration::response_body(&reg);
            match registration::lookup(&reg.client_id, &f.keys, cfg, NOW + 1) {
                ClientLookup::Sealed(back) => {
                    assert_eq!(back, record, "a sealed registration must open as itself")
                }
                ClientLookup::Stored(key) => {
                    assert_eq!(key, registration::client_key(&reg.client_id))
                }
                other => panic!("a fresh registration looked up as {other:?}"),
            }
            if let Some((stored, _)) = &reg.store {
                assert!(registration::parse_stored(stored, NOW + 1).is_some());
            }
        }
    }
    let _ = registration::lookup(s, &f.keys, &f.cfg_plain, NOW);
    let _ = registration::lookup(s, &f.keys, &f.cfg_kv, NOW);
    let _ = registration::parse_stored(s, NOW);
    let _ = registration::secret_matches(&f.client, a, b, &f.keys);

    // token.rs
    let ct = CONTENT_TYPES[sel % CONTENT_TYPES.len()];
    for parsed in [
        token::parse_body(Some(ct), data),
        token::parse_body(Some(a), b.as_bytes()),
        token::parse_body(None, data),
    ] {
        if let Ok(params) = parsed {
            let _ = token::presented_client(&params, None);
            let _ = token::presented_client(&params, Some(a));
            let _ = token::grant(&params);
        }
    }
    let _ = token::locate_code(s, &f.keys, false, NOW);
    let _ = token::locate_code(s, &f.keys, true, NOW);
    let _ = token::open_stored_code(&f.keys, Some(s), NOW);

    // callback.rs
    if let Ok(p) = callback::parse(s) {
        let _ = callback::locate(&p.state, &f.keys, false, NOW);
        let _ = callback::locate(&p.state, &f.keys, true, NOW);
    }
    let _ = callback::open_stored(&f.keys, Some(s), NOW);

    // crypto.rs: no purpose opens a forged value, and none panics.
    for p in [
        Purpose::State,
        Purpose::Consent,
        Purpose::Client,
        Purpose::Code,
        Purpose::Stored,
    ] {
        let _ = f.keys.open(p, s, NOW);
        let _ = f.keys.open(p, s, 0);
        let _ = f.keys.open(p, s, u64::MAX);
    }
    let _ = f.keys.open_json::<Session>(Purpose::State, s, NOW);
    let _ = f.keys.open_json::<PendingConsent>(Purpose::Consent, s, NOW);
    let _ = f.keys.open_json::<ClientRecord>(Purpose::Client, s, NOW);
    let _ = f.keys.open_json::<CodeGrant>(Purpose::Code, s, NOW);
    // Round trip: the input sealed for one purpose opens only as that purpose.
    if data.len() <= 512 {
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03 ^ sel as u64);
        let sealed = f.keys.seal(Purpose::Code, data, NOW + 10, &mut rng);
        assert_eq!(
            f.keys.open(Purpose::Code, &sealed, NOW).as_deref(),
            Ok(data)
        );
        assert!(f.keys.open(Purpose::State, &sealed, NOW).is_err());
        assert!(
            f.keys.open(Purpose::Code, &sealed, NOW + 10).is_err(),
            "an expired value opened"
        );
    }

    // session.rs, pkce.rs: cookies and verifiers.
    let _ = session::read_approvals(&f.keys, Some(s), NOW);
    let _ = session::is_token_shaped(s);
    let _ = pkce::verify(Some(s), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let _ = pkce::is_valid_challenge(s);

    // upstream.rs: Attio's answers are untrusted too.
    let status = match sel % 6 {
        0 => 200,
        1 => 400,
        2 => 401,
        3 => 429,
        4 => 500,
        _ => 100 + (data.len() as u16 % 500),
    };
    let answer = upstream::Answer::Http {
        status,
        retry_after: Some(a.to_string()),
        cache_control: Some(b.to_string()),
        body: data.to_vec(),
        truncated: sel % 7 == 0,
    };
    if let Err(e) = upstream::parse_token(&answer) {
        let line = e.log_line("fuzz");
        assert!(
            !line.contains('<') && !line.contains('\n'),
            "log line carries input: {line:?}"
        );
        let _ = e.to_api_error();
        let _ = e.to_page_error();
    }
    let _ = upstream::parse_introspection(&answer);
    let _ = upstream::parse_revoke(&answer);
}

fn url_host(u: &str) -> Option<String> {
    url::Url::parse(u)
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}
