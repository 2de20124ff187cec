// Shared by bench/bench.mjs and bench/compare.mjs: starting servers
// (bench/serve.mjs, one Node process and one workerd each), wrk cases with
// workerd CPU accounting, and a small HTTP client that walks OAuth flows.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, cpuTicks, ticksToMicros, workerdChildren, percentile } from './common.mjs';

/** Load settings; bench.mjs and compare.mjs set them from their options. */
export const settings = { duration: 5, warmup: 1, connections: 4, concurrency: 8 };

export const REDIRECT = 'http://127.0.0.1:9/callback';
export const log = (...a) => console.error('[bench]', ...a);

// ---------------------------------------------------------------- servers
export const children = [];
export async function serve(kind, { root } = {}) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/serve.mjs'), kind, ...(root ? ['--root', root] : [])], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench/serve.mjs ${kind} exited (${code}) before it was ready`)));
  });
  const info = JSON.parse(line);
  let pids = [];
  for (let i = 0; i < 50 && pids.length === 0; i++) {
    pids = workerdChildren(info.pid);
    if (pids.length === 0) await sleep(100);
  }
  if (pids.length !== 1) throw new Error(`expected one workerd child of ${kind} (pid ${info.pid}), found ${pids.length}`);
  info.workerd = pids[0];
  child.workerd = pids[0];
  log(`${kind}: ${info.url} (node pid ${info.pid}, workerd pid ${info.workerd})`);
  return info;
}
/** Stop every server we started: close its stdin, wait, then kill by pid. */
export async function stopAll(which) {
  const list = which ? children.filter((c) => which.some((w) => w.pid === c.pid)) : children.slice();
  for (const c of list) children.splice(children.indexOf(c), 1);
  await Promise.all(list.map(async (c) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    try { c.stdin.end(); } catch {}
    const t = await Promise.race([exited.then(() => 'exited'), sleep(8000).then(() => 'timeout')]);
    if (t === 'timeout') {
      if (c.workerd) { try { process.kill(c.workerd, 'SIGKILL'); } catch {} }
      try { c.kill('SIGKILL'); } catch {}
    }
  }));
}
process.on('exit', () => {
  for (const c of children) {
    if (c.workerd) { try { process.kill(c.workerd, 'SIGKILL'); } catch {} }
    try { c.kill('SIGKILL'); } catch {}
  }
});
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- wrk cases
const tmp = path.join(tmpdir(), `attio-bench-${process.pid}`);
mkdirSync(tmp, { recursive: true });

export function runWrk(url, { method = 'GET', headers = {}, body = null, seconds, connections = settings.connections }) {
  const env = { ...process.env, WRK_METHOD: method, WRK_BODY_FILE: '' };
  if (body != null) {
    const file = path.join(tmp, `body-${randomBytes(4).toString('hex')}`);
    writeFileSync(file, body);
    env.WRK_BODY_FILE = file;
  }
  const argv = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--timeout', '5s', '-s', path.join(ROOT, 'bench/wrk/request.lua')];
  for (const [k, v] of Object.entries(headers)) argv.push('-H', `${k}: ${v}`);
  argv.push(url);
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', argv, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', (code) => {
      const m = out.match(/^BENCH_JSON (.*)$/m);
      if (code !== 0 || !m) return reject(new Error(`wrk failed (${code}): ${out}`));
      resolve(JSON.parse(m[1]));
    });
  });
}

export async function wrkCase(server, name, pathAndQuery, init, expect, group = 'broker') {
  const url = server.url + pathAndQuery;
  if (settings.warmup > 0) await runWrk(url, { ...init, seconds: settings.warmup });
  const before = cpuTicks(server.workerd);
  const r = await runWrk(url, { ...init, seconds: settings.duration });
  const ticks = cpuTicks(server.workerd) - before;
  const ok = r.statuses[String(expect)] ?? 0;
  const errs = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const row = {
    name,
    group,
    target: server.kind,
    driver: `wrk -t1 -c${settings.connections}`,
    requests: r.requests,
    expected_status: expect,
    statuses: r.statuses,
    valid: ok === r.requests && r.requests > 0 && r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout === 0,
    cpu_ticks: ticks,
    cpu_us_per_req: ticksToMicros(ticks) / r.requests,
    rps: r.requests / (r.duration_us / 1e6),
    p50_ms: r.p50_us / 1000,
    p99_ms: r.p99_us / 1000,
    socket_errors: errs,
  };
  log(`${name}: ${fmt(row.cpu_us_per_req)} µs CPU/req, ${fmt(row.rps)} req/s, p50 ${row.p50_ms.toFixed(2)} ms, p99 ${row.p99_ms.toFixed(2)} ms${row.valid ? '' : `  (INVALID: statuses ${JSON.stringify(r.statuses)}, errors ${JSON.stringify(r.errors)})`}`);
  return row;
}

// ---------------------------------------------------------------- HTTP client for the Node driver
export class Jar {
  constructor() { this.c = new Map(); }
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      if (attrs.some((a) => a.toLowerCase() === 'max-age=0')) this.c.delete(name);
      else this.c.set(name, pair.slice(eq + 1));
    }
  }
  header() { return [...this.c].map(([n, v]) => `${n}=${v}`).join('; '); }
}

export async function req(url, { method = 'GET', headers = {}, body, jar } = {}) {
  const h = { ...headers };
  if (jar && jar.c.size) h.cookie = jar.header();
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  if (jar) jar.store(res);
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), text };
}

export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function consentValue(html) {
  const m = html.match(/name="consent" value="([^"]+)"/);
  return m && m[1].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

export function expectStatus(r, status, what) {
  if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 200)}`);
  return r;
}

export const form = (o) => new URLSearchParams(o).toString();
export const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
export const JSONH = { 'content-type': 'application/json' };

export async function registerClient(base) {
  const r = expectStatus(await req(`${base}/oauth/register`, {
    method: 'POST', headers: JSONH,
    body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'Bench Client', token_endpoint_auth_method: 'none' }),
  }), 201, 'register');
  return JSON.parse(r.text).client_id;
}

export function authorizeQuery(clientId, p, state = 'st-' + randomBytes(4).toString('hex')) {
  return form({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, state, code_challenge: p.challenge, code_challenge_method: 'S256' });
}

/** Steps of one client flow, each one timed by the caller's hooks. */
export const step = {
  async consentPage(base, clientId, jar, p) {
    const r = expectStatus(await req(`${base}/oauth/authorize?${authorizeQuery(clientId, p)}`, { jar }), 200, 'consent page');
    const consent = consentValue(r.text);
    if (!consent) throw new Error('no consent form on the page');
    return consent;
  },
  async consentSubmit(base, consent, jar) {
    const r = expectStatus(await req(`${base}/oauth/authorize`, { method: 'POST', headers: FORM, body: form({ consent, action: 'approve' }), jar }), 302, 'consent submit');
    return r.location;
  },
  async fakeAttio(location) {
    const r = expectStatus(await req(location), 302, 'fake Attio authorize');
    return r.location; // the broker's /oauth/callback?code&state
  },
  async callback(callbackUrl, jar) {
    const r = expectStatus(await req(callbackUrl, { jar }), 302, 'callback');
    const u = new URL(r.location);
    const code = u.searchParams.get('code');
    if (!code || !r.location.startsWith(REDIRECT)) throw new Error(`callback did not return a code to the client: ${r.location}`);
    return code;
  },
  async token(base, clientId, code, verifier) {
    const r = expectStatus(await req(`${base}/oauth/token`, {
      method: 'POST', headers: FORM,
      body: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: clientId, code_verifier: verifier }),
    }), 200, 'token (code exchange)');
    const body = JSON.parse(r.text);
    if (!body.access_token) throw new Error('token: no access_token');
    return body;
  },
};

/** One whole client flow: register, consent page, consent submit, fake Attio, callback, token. */
export async function wholeFlow(base) {
  const cid = await registerClient(base);
  const jar = new Jar();
  const p = pkce();
  const consent = await step.consentPage(base, cid, jar, p);
  const callbackUrl = await step.fakeAttio(await step.consentSubmit(base, consent, jar));
  const code = await step.callback(callbackUrl, jar);
  await step.token(base, cid, code, p.verifier);
}

/** Up to `concurrency` workers run `task(i)` for i = 0.. until `items` are done or `seconds` pass. */
export async function pool({ concurrency = settings.concurrency, items = Infinity, seconds = Infinity, task }) {
  const deadline = performance.now() + seconds * 1000;
  let next = 0;
  let done = 0;
  const errors = [];
  async function worker() {
    while (next < items && performance.now() < deadline) {
      const i = next++;
      try { await task(i); done++; } catch (e) { errors.push(e); if (errors.length > 20) throw e; }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { done, errors };
}

/** Measure a Node-driven phase: workerd CPU delta, count, latencies. */
export async function measured(server, name, unitsPerTask, run, group = 'broker') {
  const lat = [];
  const before = cpuTicks(server.workerd);
  const t0 = performance.now();
  const { done, errors } = await run(lat);
  const elapsed = (performance.now() - t0) / 1000;
  const ticks = cpuTicks(server.workerd) - before;
  lat.sort((a, b) => a - b);
  const row = {
    name,
    group,
    target: server.kind,
    driver: `node fetch, ${settings.concurrency} in flight`,
    requests: done,
    broker_requests: done * unitsPerTask,
    valid: errors.length === 0 && done > 0,
    errors: errors.slice(0, 3).map(String),
    cpu_ticks: ticks,
    cpu_us_per_req: ticksToMicros(ticks) / done,
    rps: done / elapsed,
    p50_ms: percentile(lat, 50),
    p99_ms: percentile(lat, 99),
  };
  log(`${name}: ${fmt(row.cpu_us_per_req)} µs CPU each, ${fmt(row.rps)}/s, p50 ${row.p50_ms.toFixed(2)} ms, p99 ${row.p99_ms.toFixed(2)} ms${row.valid ? '' : `  (INVALID: ${row.errors.join('; ')})`}`);
  return row;
}

export const timed = async (lat, f) => { const t = performance.now(); const v = await f(); lat.push(performance.now() - t); return v; };

export function fmt(n, digits = 0) {
  if (n == null || Number.isNaN(n)) return 'n/a';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
