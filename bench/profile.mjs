// Where the broker's CPU goes, by function: V8's sampling profiler through
// workerd's inspector while wrk drives one endpoint.
//
//   node bench/profile.mjs [--root DIR] [--seconds 5] [--interval 250] CASE
//
// CASE: health | as-metadata | pr-metadata | manual | consent-page | register
//       | consent-submit | refresh
// --root: a directory holding build/index.js and build/index_bg.wasm (default:
//   this repository), e.g. a copy of the crate built with a change, to compare.
// Writes bench/results/profile-CASE.cpuprofile (open it in Chrome DevTools or
// speedscope) and prints the heaviest functions, inclusive and self.
//
// Caveats: with an inspector attached, workerd forwards every console.log to
// it, which makes the broker's one log line per request look far more
// expensive than it is without an inspector (bench/run.sh measures without
// one). The summary therefore reports the console.log subtree separately and
// gives the other percentages without it. Sampling also slows the Worker
// down; use the percentages, not the absolute times. scripts/build.sh strips
// the names section, so frames in build/ show as wasm-function[N]: for Rust
// names, profile a copy of the crate built with plain `worker-build --release`
// (see BENCHMARKS.md, "Tools in bench/").
import { Miniflare } from 'miniflare';
import WebSocket from 'ws';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeAttio } from '../tests/support/fake-attio.mjs';
import { ROOT, ATTIO_ID, ATTIO_SECRET, compatibilityDate } from './common.mjs';

const args = process.argv.slice(2);
const flag = (name, def) => { const i = args.indexOf(`--${name}`); if (i < 0) return def; const v = args[i + 1]; args.splice(i, 2); return v; };
const root = path.resolve(flag('root', ROOT));
const seconds = Number(flag('seconds', 5));
const interval = Number(flag('interval', 250));
const which = args[0];
const CASES = ['health', 'as-metadata', 'pr-metadata', 'manual', 'consent-page', 'register', 'consent-submit', 'refresh'];
if (!CASES.includes(which)) {
  console.error(`usage: node bench/profile.mjs [--root DIR] [--seconds N] [--interval µs] ${CASES.join('|')}`);
  process.exit(2);
}

const REDIRECT = 'http://127.0.0.1:9/callback';
// Miniflare refuses module paths outside the working directory.
process.chdir(root);
const attio = await startFakeAttio({ clientId: ATTIO_ID, clientSecret: ATTIO_SECRET, issueRefreshToken: true });
const INSPECTOR = 9300 + Math.floor(Math.random() * 500);
const mf = new Miniflare({
  rootPath: root,
  scriptPath: 'build/index.js',
  modules: true,
  modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
  compatibilityDate: compatibilityDate(),
  kvNamespaces: ['OAUTH_SESSIONS'],
  bindings: {
    ATTIO_CLIENT_ID: ATTIO_ID, ATTIO_CLIENT_SECRET: ATTIO_SECRET,
    ATTIO_AUTHORIZE_URL: attio.urls.authorize, ATTIO_TOKEN_URL: attio.urls.token,
    ATTIO_INTROSPECT_URL: attio.urls.introspect, ATTIO_REVOKE_URL: attio.urls.revoke,
  },
  host: '127.0.0.1',
  port: 0,
  inspectorPort: INSPECTOR,
  handleRuntimeStdio(o, e) { o.resume(); e.on('data', (d) => { if (process.env.BENCH_DEBUG) process.stderr.write(d); }); },
});
const base = (await mf.ready).origin;

// ---- the request for this case (some need a registered client or a flow first)
async function http(url, init = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  return { res, text: await res.text() };
}
const form = (o) => new URLSearchParams(o).toString();
const pkce = () => { const v = randomBytes(32).toString('base64url'); return { v, c: createHash('sha256').update(v).digest('base64url') }; };
async function client() {
  const { text } = await http(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'Bench Client', token_endpoint_auth_method: 'none' }) });
  return JSON.parse(text).client_id;
}
function consentQuery(cid, p) {
  return form({ response_type: 'code', client_id: cid, redirect_uri: REDIRECT, state: 'bench', code_challenge: p.c, code_challenge_method: 'S256' });
}
async function consentPage(cid, p) {
  const { res, text } = await http(`${base}/oauth/authorize?${consentQuery(cid, p)}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const consent = text.match(/name="consent" value="([^"]+)"/)[1].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  return { cookie, consent };
}
let request = { path: '/health' };
switch (which) {
  case 'health': break;
  case 'as-metadata': request = { path: '/.well-known/oauth-authorization-server' }; break;
  case 'pr-metadata': request = { path: '/.well-known/oauth-protected-resource' }; break;
  case 'manual': request = { path: '/oauth/authorize' }; break;
  case 'consent-page': request = { path: `/oauth/authorize?${consentQuery(await client(), pkce())}` }; break;
  case 'register':
    request = { path: '/oauth/register', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'Bench Client', token_endpoint_auth_method: 'none' }) };
    break;
  case 'consent-submit': {
    const { cookie, consent } = await consentPage(await client(), pkce());
    request = { path: '/oauth/authorize', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: form({ consent, action: 'approve' }) };
    break;
  }
  case 'refresh': {
    // One whole flow for a refresh token.
    const cid = await client();
    const p = pkce();
    const { cookie, consent } = await consentPage(cid, p);
    const sub = await http(`${base}/oauth/authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: form({ consent, action: 'approve' }) });
    const toCallback = await http(sub.res.headers.get('location'));
    const cb = await http(toCallback.res.headers.get('location'), { headers: { cookie } });
    const code = new URL(cb.res.headers.get('location')).searchParams.get('code');
    const tok = await http(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: cid, code_verifier: p.v }) });
    const rt = JSON.parse(tok.text).refresh_token;
    request = { path: '/oauth/token', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ grant_type: 'refresh_token', refresh_token: rt }) };
    break;
  }
}

// ---- wrk, as bench/run.sh drives it
function wrk(secs) {
  const env = { ...process.env, WRK_METHOD: request.method || 'GET', WRK_BODY_FILE: '' };
  if (request.body) {
    env.WRK_BODY_FILE = path.join(tmpdir(), `attio-bench-profile-${process.pid}`);
    writeFileSync(env.WRK_BODY_FILE, request.body);
  }
  const argv = ['-t1', '-c4', `-d${secs}s`, '-s', path.join(ROOT, 'bench/wrk/request.lua')];
  for (const [k, v] of Object.entries(request.headers || {})) argv.push('-H', `${k}: ${v}`);
  argv.push(base + request.path);
  return new Promise((resolve) => {
    const p = spawn('wrk', argv, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('exit', () => { const m = out.match(/^BENCH_JSON (.*)$/m); resolve(m ? JSON.parse(m[1]) : null); });
  });
}

// ---- the inspector
const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR}/json/list`)).json();
const target = targets.find((t) => t.webSocketDebuggerUrl.endsWith('/core:user:')) || targets[0];
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r) => ws.on('open', r));
let id = 0;
const pending = new Map();
ws.on('message', (m) => { const d = JSON.parse(m); if (d.id && pending.has(d.id)) { pending.get(d.id)(d); pending.delete(d.id); } });
const call = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });

await wrk(2); // warm-up: let V8 tier up
await call('Profiler.enable');
await call('Profiler.setSamplingInterval', { interval });
await call('Profiler.start');
const result = await wrk(seconds);
const { result: { profile } } = await call('Profiler.stop');
ws.close();
await mf.dispose();
await attio.close();

const outDir = path.join(ROOT, 'bench/results');
mkdirSync(outDir, { recursive: true });
const outFile = path.join(outDir, `profile-${which}.cpuprofile`);
writeFileSync(outFile, JSON.stringify(profile));

// ---- summary
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
const nameOf = (n) => n.callFrame.functionName || `(anonymous ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber})`;
const selfTime = new Map();
profile.samples.forEach((s, i) => selfTime.set(s, (selfTime.get(s) || 0) + (profile.timeDeltas[i + 1] || 0)));
const isConsole = (chain) => chain.some((c) => /^__wbg_log_|^__wbg_error_/.test(c));
const inclusive = new Map();
const self = new Map();
let total = 0;
let consoleT = 0;
let idle = 0;
for (const [nid, t] of selfTime) {
  const chain = [];
  for (let x = nid; x != null; x = parent.get(x)) chain.push(nameOf(nodes.get(x)));
  if (['(idle)', '(program)', '(garbage collector)'].includes(chain[0])) { idle += t; if (chain[0] !== '(garbage collector)') continue; }
  if (isConsole(chain)) { consoleT += t; continue; }
  total += t;
  self.set(chain[0], (self.get(chain[0]) || 0) + t);
  for (const c of new Set(chain)) inclusive.set(c, (inclusive.get(c) || 0) + t);
}
const pct = (t) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
console.log(`profile of ${which} (${request.method || 'GET'} ${request.path.slice(0, 60)}), ${result?.requests ?? '?'} requests in ${seconds} s under the profiler; written to ${path.relative(ROOT, outFile)}`);
console.log(`console.log subtree (inflated by the inspector): ${(consoleT / 1000).toFixed(0)} ms; the rest: ${(total / 1000).toFixed(0)} ms; idle/program: ${(idle / 1000).toFixed(0)} ms`);
console.log('\n-- inclusive (percent of the non-console time) --');
for (const [n, t] of top(inclusive, 45)) console.log(`${pct(t)}  ${n.slice(0, 140)}`);
console.log('\n-- self --');
for (const [n, t] of top(self, 25)) console.log(`${pct(t)}  ${n.slice(0, 140)}`);
process.exit(0);
