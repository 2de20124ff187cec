//! A libFuzzer-free fuzz harness: feeds seeded random and mutated inputs
//! through `attio_oauth_broker_fuzz::check` for a bounded time and prints
//! inputs per second. Any panic is caught, printed with its input (hex and
//! escaped) and makes the run exit with status 1.
//!
//! Usage: smoke [SECONDS=60] [SEED=1] [--max-len N]
//!        smoke --write-seeds DIR   (write the seed inputs as a libFuzzer corpus)

use std::panic;
use std::time::{Duration, Instant};

use attio_oauth_broker::core::crypto::Purpose;
use attio_oauth_broker::core::session::{self, ClientRequest, Session};
use attio_oauth_broker::core::types::Secret;
use attio_oauth_broker_fuzz::{check, fixture, XorShift, NOW};

/// Valid inputs to mutate from, so that mutations reach past the first check
/// of each parser (sealed values, forms, JSON, URIs, cookies).
fn seeds() -> Vec<Vec<u8>> {
    let f = fixture();
    let mut rng = XorShift(42);
    let mut out: Vec<Vec<u8>> = [
        "grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&client_id=x&code_verifier=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "grant_type=refresh_token&refresh_token=r&scope=a+b",
        r#"{"grant_type":"refresh_token","refresh_token":"r","n":5,"b":true}"#,
        r#"{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"client_name":"Claude","token_endpoint_auth_method":"client_secret_post","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_uri":"https://claude.ai","scope":"a b"}"#,
        r#"{"redirect_uris":["http://127.0.0.1:33418/","http://[::1]:1/cb","cursor://anysphere.cursor-mcp/oauth/callback"]}"#,
        "state=abc&code=def&error=access_denied&error_description=%3Cscript%3E",
        "response_type=code&client_id=kv.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&redirect_uri=https%3A%2F%2Fclaude.ai%2Fapi%2Fmcp%2Fauth_callback&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        "http://127.0.0.1:33418/cb\nhttp://127.0.0.1:5000/cb",
        "https://claude.ai/api/mcp/auth_callback\nhttps://claude.ai@evil.example/api/mcp/auth_callback",
        "http://[::1]:1/cb\nhttp://[0:0:0:0:0:0:0:1]:2/cb",
        "application/json; charset=utf-8\n{\"token\":\"t\"}",
        "Basic aWQ6c2VjcmV0\ngrant_type=refresh_token",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "%ff%fe%zz%%+&&==&a=%C3%28",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let req = ClientRequest {
        client_ref: session::client_ref(&f.keys, "cid"),
        redirect_uri: "https://claude.ai/api/mcp/auth_callback".into(),
        redirect_uri_given: true,
        state: Some("st".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: None,
        resource: None,
    };
    let sess = Session {
        browser: session::browser_hash(&f.keys, "cookie"),
        verifier: Secret::new("v".repeat(43)),
        expires_at: NOW + 600,
        client: Some(req),
    };
    for p in [
        Purpose::State,
        Purpose::Stored,
        Purpose::Consent,
        Purpose::Client,
        Purpose::Code,
    ] {
        out.push(f.keys.seal_json(p, &sess, NOW + 600, &mut rng).into_bytes());
    }
    out.push(
        f.keys
            .seal_json(Purpose::Client, &f.client, 0, &mut rng)
            .into_bytes(),
    );
    let approvals = session::write_approvals(&f.keys, vec![], "ref", NOW);
    out.push(approvals.into_bytes());
    out
}

const INTERESTING: &[&[u8]] = &[
    b"%",
    b"%0",
    b"%ff",
    b"%C3%28",
    b"+",
    b"&",
    b"=",
    b"\r\n",
    b"\0",
    b"#",
    b"@",
    b"..",
    b"/",
    b"\\",
    b":",
    b"[",
    b"]",
    b"{",
    b"}",
    b"[",
    b"\"",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"-",
    b"_",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\xae",
    b"xn--",
    b"localhost",
    b"127.0.0.1",
    b"[::1]",
    b"https://",
    b"http://",
    b"client_id=",
    b"state=",
    b"&state=",
    b"redirect_uris",
];

fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    // One input in eight is fresh random bytes; the rest are mutated seeds.
    if rng.below(8) == 0 {
        let n = rng.below(max_len.min(300) + 1);
        let ascii = rng.below(2) == 0;
        return (0..n)
            .map(|_| {
                if ascii {
                    0x20 + rng.below(95) as u8
                } else {
                    rng.next_u64() as u8
                }
            })
            .collect();
    }
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(6) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, ins.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                v.drain(i..i + n);
            }
            4 if len > 0 => v.truncate(rng.below(len)),
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                let chunk: Vec<u8> = v[i..i + n].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => {
                // Swap a base64url character for another: a tampered seal.
                const B64: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let i = rng.below(len);
                v[i] = B64[rng.below(B64.len())];
            }
            _ => {
                let i = rng.below(len + 1);
                let n = rng.below(64);
                let b = rng.next_u64() as u8;
                v.splice(i..i, std::iter::repeat(b).take(n));
            }
        }
    }
    v.truncate(max_len);
    v
}

fn escape(v: &[u8]) -> String {
    v.iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut max_len = 4096usize;
    while let Some(a) = args.next() {
        if a == "--max-len" {
            max_len = args.next().and_then(|v| v.parse().ok()).unwrap_or(max_len);
        } else {
            positional.push(a);
        }
    }
    if positional.first().map(String::as_str) == Some("--write-seeds") {
        // Write the seeds as a libFuzzer corpus (used by scripts/fuzz.sh).
        let dir = positional
            .get(1)
            .cloned()
            .unwrap_or_else(|| "corpus/parse".into());
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (i, s) in seeds().iter().enumerate() {
            std::fs::write(format!("{dir}/seed-{i:02}"), s).expect("write a seed");
        }
        return;
    }
    let seconds: u64 = positional
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = positional
        .get(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let seeds = seeds();
    // Seeds themselves first.
    for s in &seeds {
        check(s);
    }
    panic::set_hook(Box::new(|_| {}));
    let mut rng = XorShift(seed);
    let start = Instant::now();
    let limit = Duration::from_secs(seconds);
    let mut count: u64 = 0;
    let mut bytes: u64 = 0;
    let mut next_report = Duration::from_secs(10);
    println!(
        "smoke fuzz: {seconds} s, seed {seed}, {} seeds, inputs up to {max_len} bytes",
        seeds.len()
    );
    while start.elapsed() < limit {
        for _ in 0..256 {
            let input = mutate(&mut rng, &seeds, max_len);
            bytes += input.len() as u64;
            if let Err(e) = panic::catch_unwind(|| check(&input)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(no message)".into());
                println!("PANIC after {count} inputs: {msg}");
                println!("input ({} bytes), escaped: {}", input.len(), escape(&input));
                println!(
                    "input hex: {}",
                    input.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
                std::process::exit(1);
            }
            count += 1;
        }
        if start.elapsed() >= next_report {
            println!("  {:>4} s: {count} inputs", start.elapsed().as_secs());
            next_report += Duration::from_secs(10);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "smoke fuzz done: {count} inputs in {secs:.1} s = {:.0} inputs/s ({:.1} MB), no panic",
        count as f64 / secs,
        bytes as f64 / 1e6
    );
}
