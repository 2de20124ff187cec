// The benchmark driver behind bench/run.sh (run that, not this; it builds first).
//
//   node bench/bench.mjs [--duration 5] [--warmup 1] [--connections 4]
//                        [--concurrency 8] [--flow-seconds 8] [--items 1500]
//                        [--cold-runs 5] [--no-stateless] [--no-io] [--rust-floor]
//                        [--out bench/results]
//
// It starts, each in its own Node process (bench/serve.mjs) with its own
// workerd child, (a) the broker with KV and a fake Attio, (b) the do-nothing
// floor Worker, (c) an I/O reference (the floor plus one KV operation or one
// fetch, bench/floor-io.mjs), (d) the broker without KV (whole flows only, to
// show what Miniflare's KV costs) and, with --rust-floor, (e) the Rust
// control in bench/rust-floor (built by run.sh). For every case it reads the
// workerd process's utime+stime from /proc/<pid>/stat before and after a
// bounded load, and
// reports workerd CPU per request, requests per second, p50/p99 latency and
// the ratio to the floor. Loads: wrk (-t1) for fixed requests; a Node driver
// (bounded concurrency) for requests that need fresh state: the callback, the
// code exchange and whole flows. Then size and cold start.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, statSync, readFileSync } from 'node:fs';
import { cpus, totalmem, loadavg } from 'node:os';
import path from 'node:path';
import { ROOT, CLK_TCK } from './common.mjs';
import {
  settings, log, serve, stopAll, wrkCase, measured, pool, timed, req, step, Jar, pkce,
  registerClient, authorizeQuery, form, FORM, JSONH, REDIRECT, fmt, wholeFlow,
} from './lib.mjs';

// ---------------------------------------------------------------- options
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const DURATION = opt('duration', 5); // seconds per wrk case
const WARMUP = opt('warmup', 1); // seconds of unmeasured load before each case
const CONNECTIONS = opt('connections', 4); // wrk connections (one thread)
const CONCURRENCY = opt('concurrency', 8); // Node driver: requests/flows in flight
const FLOW_SECONDS = opt('flow-seconds', 8); // whole flows: bounded duration
const ITEMS = opt('items', 1500); // callbacks / code exchanges to prepare
const PREP_SECONDS = opt('prep-seconds', 20); // cap on preparing them
const COLD_RUNS = opt('cold-runs', 5);
const STATELESS = !args.includes('--no-stateless');
const IO = !args.includes('--no-io');
const RUST_FLOOR = args.includes('--rust-floor');
const OUT = path.resolve(ROOT, args.includes('--out') ? args[args.indexOf('--out') + 1] : 'bench/results');

Object.assign(settings, { duration: DURATION, warmup: WARMUP, connections: CONNECTIONS, concurrency: CONCURRENCY });

// ---------------------------------------------------------------- size and cold start
function gzip9(file) {
  return Number(execFileSync('sh', ['-c', `gzip -9 -c "$1" | wc -c`, 'sh', file]).toString().trim());
}

function coldStart() {
  const extra = RUST_FLOOR ? ['--rust-floor'] : [];
  const out = execFileSync(process.execPath, [path.join(ROOT, 'bench/coldstart.mjs'), String(COLD_RUNS), ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], timeout: 180_000 });
  return JSON.parse(out.toString());
}

// ---------------------------------------------------------------- formatting

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || cpus()[0]?.model || 'unknown';
  const ver = (cmd, a) => { try { return execFileSync(cmd, a, { cwd: ROOT }).toString().trim().split('\n')[0]; } catch { return 'unknown'; } };
  const lock = readFileSync(path.join(ROOT, 'Cargo.lock'), 'utf8');
  const crate = (n) => (lock.match(new RegExp(`name = "${n}"\\nversion = "([^"]+)"`)) || [])[1] || 'unknown';
  const pkg = (n) => { try { return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', n, 'package.json'), 'utf8')).version; } catch { return 'unknown'; } };
  return {
    nproc: Number(ver('nproc', [])),
    cpu_model: model,
    memory_gib: +(totalmem() / 2 ** 30).toFixed(1),
    clk_tck: CLK_TCK,
    loadavg_start: loadavg().map((x) => +x.toFixed(2)),
    node: process.version,
    workerd: ver(path.join(ROOT, 'node_modules/.bin/workerd'), ['--version']),
    workerd_npm: pkg('workerd'),
    miniflare: pkg('miniflare'),
    wrangler: pkg('wrangler'),
    rustc: ver('rustc', ['--version']),
    worker_crate: crate('worker'),
    wasm_bindgen: crate('wasm-bindgen'),
    wrk: ver('sh', ['-c', 'wrk -v 2>&1 | head -1']),
    commit: ver('git', ['rev-parse', '--short', 'HEAD']) + (ver('sh', ['-c', 'git status --porcelain -- src Cargo.toml Cargo.lock scripts | head -1']) ? ' + uncommitted changes' : ''),
  };
}

// ---------------------------------------------------------------- main
async function main() {
  const env = machine();
  log(`machine: ${env.nproc} cores, ${env.cpu_model}, load average ${env.loadavg_start.join(' ')}`);
  const [floor, broker] = [await serve('floor'), await serve('broker')];
  const rows = [];
  const B = broker.url;

  // ---- preparation (unmeasured)
  const clientId = await registerClient(B);
  const p0 = pkce();
  const consentQuery = authorizeQuery(clientId, p0, 'bench-state');
  const jar0 = new Jar();
  const consent0 = await step.consentPage(B, clientId, jar0, p0);
  const browserCookie = jar0.header();
  // One whole flow gives a refresh token from the fake Attio (issueRefreshToken).
  const loc0 = await step.consentSubmit(B, consent0, jar0);
  const code0 = await step.callback(await step.fakeAttio(loc0), jar0);
  const tok0 = await step.token(B, clientId, code0, p0.verifier);
  if (!tok0.refresh_token) throw new Error('the fake Attio gave no refresh token');

  // ---- wrk cases: the floor first and last (drift check), the broker in between
  rows.push(await wrkCase(floor, 'floor (do-nothing JS Worker)', '/', {}, 200, 'floor'));
  const cases = [
    ['GET /health', '/health', {}, 200],
    ['GET /.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server', {}, 200],
    ['GET /.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource', {}, 200],
    ['GET /oauth/authorize (manual start)', '/oauth/authorize', {}, 302],
    ['GET /oauth/authorize (client: consent page)', `/oauth/authorize?${consentQuery}`, {}, 200],
    ['POST /oauth/register', '/oauth/register', {
      method: 'POST', headers: JSONH,
      body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'Bench Client', token_endpoint_auth_method: 'none' }),
    }, 201],
    ['POST /oauth/authorize (consent submit)', '/oauth/authorize', {
      method: 'POST', headers: { ...FORM, cookie: browserCookie }, body: form({ consent: consent0, action: 'approve' }),
    }, 302],
    ['POST /oauth/token (refresh grant)', '/oauth/token', {
      method: 'POST', headers: FORM, body: form({ grant_type: 'refresh_token', refresh_token: tok0.refresh_token }),
    }, 200],
  ];
  for (const [name, p, init, expect] of cases) rows.push(await wrkCase(broker, name, p, init, expect));

  // ---- references: what one platform operation costs, and the Rust floor
  if (IO) {
    const io = await serve('floor-io');
    for (const [name, p] of [
      ['JS floor + 1 KV put', '/kv-put'],
      ['JS floor + 1 KV get', '/kv-get'],
      ['JS floor + 1 KV delete', '/kv-delete'],
      ['JS floor + 1 fetch to the fake Attio', '/fetch'],
    ]) rows.push(await wrkCase(io, name, p, {}, 200, 'reference'));
    await stopAll([io]);
  }
  if (RUST_FLOOR) {
    const rf = await serve('rust-floor');
    for (const [name, p] of [
      ['Rust floor: fetch handler only (worker crate)', '/bare'],
      ['Rust floor: + Router with the 13 routes, built per request', '/router'],
      ['Rust floor: + Router + settings, KV binding, headers and URL', '/router-env'],
    ]) rows.push(await wrkCase(rf, name, p, {}, 200, 'reference'));
    await stopAll([rf]);
  }
  rows.push(await wrkCase(floor, 'floor (again, drift check)', '/', {}, 200, 'floor'));

  // ---- Node-driven: a floor baseline for this driver, then callback, code exchange, whole flows
  await pool({ seconds: WARMUP, task: () => req(`${floor.url}/`) });
  rows.push(await measured(floor, 'floor (Node driver baseline)', 1, (lat) =>
    pool({ seconds: DURATION, task: () => timed(lat, () => req(`${floor.url}/`)) }), 'floor'));

  log(`preparing up to ${ITEMS} sign-ins (consent page, submit, fake Attio) for the callback and token cases`);
  const items = [];
  await pool({
    items: ITEMS, seconds: PREP_SECONDS, task: async () => {
      const jar = new Jar();
      const p = pkce();
      const consent = await step.consentPage(B, clientId, jar, p);
      const callbackUrl = await step.fakeAttio(await step.consentSubmit(B, consent, jar));
      items.push({ jar, p, callbackUrl });
    },
  });
  log(`prepared ${items.length}`);
  const codes = [];
  rows.push(await measured(broker, 'GET /oauth/callback (KV, token + introspect at the fake)', 1, (lat) =>
    pool({ items: items.length, task: async (i) => {
      const it = items[i];
      const code = await timed(lat, () => step.callback(it.callbackUrl, it.jar));
      codes.push({ code, verifier: it.p.verifier });
    } })));
  rows.push(await measured(broker, 'POST /oauth/token (code exchange, KV)', 1, (lat) =>
    pool({ items: codes.length, task: (i) => timed(lat, () => step.token(B, clientId, codes[i].code, codes[i].verifier)) })));

  await pool({ seconds: WARMUP, task: () => wholeFlow(B) });
  rows.push(await measured(broker, 'whole flow (register → authorize → consent → callback → token), KV', 5, (lat) =>
    pool({ seconds: FLOW_SECONDS, task: () => timed(lat, () => wholeFlow(B)) })));

  if (STATELESS) {
    const nokv = await serve('broker-nokv');
    await pool({ seconds: WARMUP, task: () => wholeFlow(nokv.url) });
    rows.push(await measured(nokv, 'whole flow, without KV (sealed values)', 5, (lat) =>
      pool({ seconds: FLOW_SECONDS, task: () => timed(lat, () => wholeFlow(nokv.url)) }), 'reference'));
  }
  await stopAll();

  // ---- size and cold start
  const wasm = path.join(ROOT, 'build/index_bg.wasm');
  const js = path.join(ROOT, 'build/index.js');
  const size = {
    wasm_bytes: statSync(wasm).size,
    wasm_gzip9_bytes: gzip9(wasm),
    js_bytes: statSync(js).size,
    js_gzip9_bytes: gzip9(js),
  };
  log(`Wasm: ${fmt(size.wasm_bytes)} bytes raw, ${fmt(size.wasm_gzip9_bytes)} gzip -9`);
  log(`cold start: ${COLD_RUNS} runs each of the floor and the broker`);
  const cold = coldStart();
  env.loadavg_end = loadavg().map((x) => +x.toFixed(2));

  // ---- ratios and targets
  const floorWrk = rows.filter((r) => r.target === 'floor' && r.driver.startsWith('wrk'));
  const floorCpu = floorWrk.reduce((a, r) => a + r.cpu_us_per_req, 0) / floorWrk.length;
  const floorNode = rows.find((r) => r.name.startsWith('floor (Node'))?.cpu_us_per_req;
  for (const r of rows) {
    const base = r.driver.startsWith('wrk') ? floorCpu : floorNode;
    const per = r.broker_requests ? r.broker_requests / r.requests : 1;
    r.floor_cpu_us = base * per;
    r.ratio_to_floor = r.cpu_us_per_req / r.floor_cpu_us;
    r.above_floor_us = r.cpu_us_per_req - r.floor_cpu_us;
  }
  const staticRows = rows.filter((r) => /^GET \/(health|\.well-known)/.test(r.name));
  const flow = rows.find((r) => r.name.startsWith('whole flow (register'));
  const targets = [
    {
      target: 'every static endpoint ≤ 1.2× the floor\'s CPU per request',
      value: `worst ${fmt(Math.max(...staticRows.map((r) => r.ratio_to_floor)), 2)}× (${staticRows.map((r) => `${r.name.replace('GET ', '')} ${fmt(r.ratio_to_floor, 2)}×`).join(', ')})`,
      met: staticRows.every((r) => r.ratio_to_floor <= 1.2),
      by: `${fmt(Math.max(...staticRows.map((r) => r.ratio_to_floor)) / 1.2, 2)}× the limit`,
    },
    {
      target: 'a whole flow < 1 ms of CPU in total',
      value: `${fmt(flow.cpu_us_per_req / 1000, 2)} ms of workerd CPU per flow`,
      met: flow.cpu_us_per_req < 1000,
      by: `${fmt(flow.cpu_us_per_req / 1000, 2)}× the limit`,
    },
    {
      target: 'Wasm ≤ 150 KB gzipped',
      value: `${fmt(size.wasm_gzip9_bytes / 1000, 1)} KB (gzip -9)`,
      met: size.wasm_gzip9_bytes <= 150_000,
      by: `${fmt(size.wasm_gzip9_bytes / 150_000, 2)}× the limit`,
    },
    {
      target: 'cold start < 20 ms',
      value: `broker − floor, spawn → first answer: ${fmt(cold.extra_over_floor_ms, 1)} ms; first request ${fmt(cold.broker.first_request_ms, 1)} ms`,
      met: cold.extra_over_floor_ms < 20,
      by: `${fmt(cold.extra_over_floor_ms / 20, 2)}× the limit`,
    },
  ];

  const result = { when: new Date().toISOString(), settings: { DURATION, WARMUP, CONNECTIONS, CONCURRENCY, FLOW_SECONDS, ITEMS, COLD_RUNS }, machine: env, floor_cpu_us_per_req: floorCpu, rows, size, cold, targets };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(path.join(OUT, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
  const md = report(result);
  writeFileSync(path.join(OUT, 'latest.md'), md);
  process.stdout.write(md);
}

function report({ machine: m, rows, size, cold, targets, floor_cpu_us_per_req: floorCpu, settings }) {
  const L = [];
  L.push(`## Results (${new Date().toISOString()})`, '');
  L.push(`Broker: commit ${m.commit}; build/index_bg.wasm as built by scripts/build.sh.`);
  L.push(`Machine: ${m.nproc} cores, ${m.cpu_model}, ${m.memory_gib} GiB; load average at start ${m.loadavg_start.join(' ')}, at end ${m.loadavg_end.join(' ')}.`);
  L.push(`workerd ${m.workerd} (npm workerd ${m.workerd_npm}), Miniflare ${m.miniflare}, wrangler ${m.wrangler}, Node ${m.node}, ${m.rustc}, worker crate ${m.worker_crate}, wasm-bindgen ${m.wasm_bindgen}, ${m.wrk}.`);
  L.push(`Load: wrk -t1 -c${settings.CONNECTIONS} for ${settings.DURATION} s after ${settings.WARMUP} s of warm-up; Node driver with ${settings.CONCURRENCY} in flight; whole flows for ${settings.FLOW_SECONDS} s. CPU = workerd utime+stime (CLK_TCK ${m.clk_tck}) over the run ÷ count. Floor CPU/request (wrk, mean of the two floor runs): ${fmt(floorCpu)} µs.`, '');
  const table = (title, list) => {
    L.push(`**${title}**`, '');
    L.push('| Case | Load | Count | workerd CPU per request (µs) | × floor | Above floor (µs) | Requests/s | p50 (ms) | p99 (ms) | OK |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|:-:|');
    for (const r of list) {
      const flows = r.broker_requests > r.requests;
      const perReq = flows ? `**${fmt(r.cpu_us_per_req)} per flow** (${fmt(r.cpu_us_per_req / (r.broker_requests / r.requests))} per broker request)` : fmt(r.cpu_us_per_req);
      L.push(`| ${r.name} | ${r.driver} | ${fmt(r.requests)}${flows ? ' flows' : ''} | ${perReq} | ${fmt(r.ratio_to_floor, 2)} | ${fmt(r.above_floor_us)} | ${fmt(r.rps)}${flows ? ' flows' : ''} | ${fmt(r.p50_ms, 2)} | ${fmt(r.p99_ms, 2)} | ${r.valid ? 'yes' : 'NO'} |`);
    }
    L.push('');
  };
  table('Broker (with KV, fake Attio)', rows.filter((r) => r.group === 'broker'));
  table('Floors', rows.filter((r) => r.group === 'floor'));
  if (rows.some((r) => r.group === 'reference')) table('References (for the profile)', rows.filter((r) => r.group === 'reference'));
  L.push('× floor and Above floor: wrk rows against the wrk floor (mean of its two runs); Node-driven rows against the Node-driver floor; a whole flow against 5 floor requests (it makes 5 broker requests).', '');
  L.push('| Size | Raw (bytes) | gzip -9 (bytes) |', '|---|---:|---:|');
  L.push(`| build/index_bg.wasm | ${fmt(size.wasm_bytes)} | ${fmt(size.wasm_gzip9_bytes)} |`);
  L.push(`| build/index.js | ${fmt(size.js_bytes)} | ${fmt(size.js_gzip9_bytes)} |`, '');
  L.push(`Cold start (mean of ${cold.runs} runs; new Miniflare instance, i.e. a new workerd process, each run):`, '');
  L.push('| Worker | spawn → listening (ms) | first request (ms) | spawn → first answer (ms) | workerd CPU to first answer (ms) |', '|---|---:|---:|---:|---:|');
  for (const k of ['floor', 'broker', 'rust-floor'].filter((x) => cold[x])) {
    const c = cold[k];
    L.push(`| ${k === 'rust-floor' ? 'Rust floor (/bare)' : k} | ${fmt(c.ready_ms, 1)} | ${fmt(c.first_request_ms, 1)} | ${fmt(c.first_answer_ms, 1)} | ${fmt(c.cpu_ms, 1)} |`);
  }
  L.push(`| broker − floor | ${fmt(cold.broker.ready_ms - cold.floor.ready_ms, 1)} | ${fmt(cold.broker.first_request_ms - cold.floor.first_request_ms, 1)} | ${fmt(cold.extra_over_floor_ms, 1)} | ${fmt(cold.broker.cpu_ms - cold.floor.cpu_ms, 1)} |`, '');
  L.push('| Target | Measured | Met | By |', '|---|---|:-:|---|');
  for (const t of targets) L.push(`| ${t.target} | ${t.value} | ${t.met ? 'met' : 'MISSED'} | ${t.by} |`);
  L.push('');
  return L.join('\n');
}

const hardStop = setTimeout(() => { log('time limit (8 minutes) reached: stopping'); process.exit(1); }, 8 * 60 * 1000);
hardStop.unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
main().then(async () => { await stopAll(); process.exit(0); }, async (e) => { console.error(e); await stopAll(); process.exit(1); });
