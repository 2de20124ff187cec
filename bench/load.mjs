// Bounded load test on loopback: many complete MCP client flows at once
// (register → authorize → consent → Attio → callback → token) against the
// built Worker in workerd (Miniflare, tests/support/broker.mjs) with the fake
// Attio, in both storage modes. Asserts zero failed flows and zero 5xx;
// prints flows per second and p50/p99 flow latency; exits non-zero on any
// failure. Stops by itself: a fixed number of flows and a time limit.
//
//   node bench/load.mjs [--flows 500] [--concurrency 20] [--mode both|kv|nokv] [--time-limit 300]
//
// Only 127.0.0.1 is ever contacted. Needs build/ (bash scripts/build.sh).
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setMaxListeners } from 'node:events';
import { startStack, consentValue } from '../tests/support/client.mjs';

const { values: opts } = parseArgs({
  options: {
    flows: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '20' },
    mode: { type: 'string', default: 'both' },
    'time-limit': { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
  },
});
const FLOWS = Math.max(1, Number(opts.flows));
const CONCURRENCY = Math.max(1, Math.min(Number(opts.concurrency), FLOWS));
const TIME_LIMIT_MS = Number(opts['time-limit']) * 1000;
const MODES = { both: [true, false], kv: [true], nokv: [false] }[opts.mode];
if (!MODES || !Number.isFinite(FLOWS) || !Number.isFinite(CONCURRENCY) || !(TIME_LIMIT_MS > 0)) {
  console.error('usage: node bench/load.mjs [--flows N] [--concurrency C] [--mode both|kv|nokv] [--time-limit SECONDS]');
  process.exit(2);
}

const REDIRECT = 'http://127.0.0.1:9/callback';
const FORM = 'application/x-www-form-urlencoded';

class FlowError extends Error {}

/** One request; counts statuses and refuses to go on after a 5xx. */
async function req(ctx, url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (ctx.cookie && url.startsWith(ctx.base)) headers.set('cookie', ctx.cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual', signal: ctx.signal });
  const text = await res.text();
  if (url.startsWith(ctx.base)) {
    ctx.stats.requests++;
    if (res.status >= 500) {
      ctx.stats.fivexx++;
      throw new FlowError(`${init.method ?? 'GET'} ${new URL(url).pathname} → ${res.status}: ${text.slice(0, 200)}`);
    }
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      if (pair.startsWith('attio_broker_browser=')) ctx.cookie = pair.endsWith('=') ? '' : pair;
    }
  }
  return { status: res.status, text, location: res.headers.get('location') };
}

function expect(cond, what) {
  if (!cond) throw new FlowError(what);
}

/** One complete client flow; returns its latency in ms. */
async function flow(base, attio, stats, signal) {
  const t0 = performance.now();
  const ctx = { base, stats, signal, cookie: '' };
  // register
  const reg = await req(ctx, `${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'load' }) });
  expect(reg.status === 201, `register → ${reg.status}`);
  const client = JSON.parse(reg.text);
  // authorize → consent page
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, state, code_challenge: challenge, code_challenge_method: 'S256' });
  const page = await req(ctx, `${base}/oauth/authorize?${q}`);
  expect(page.status === 200, `authorize → ${page.status}`);
  const consent = consentValue(page.text);
  expect(consent, 'no consent form');
  // consent → Attio
  const approve = await req(ctx, `${base}/oauth/authorize`, { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams({ consent, action: 'approve' }) });
  expect(approve.status === 302 && approve.location?.startsWith(attio.urls.authorize), `consent → ${approve.status}`);
  // Attio → callback
  const atAttio = await req(ctx, approve.location);
  expect(atAttio.status === 302 && atAttio.location?.startsWith(`${base}/oauth/callback?`), `fake Attio → ${atAttio.status}`);
  const cb = await req(ctx, atAttio.location);
  expect(cb.status === 302 && cb.location?.startsWith(`${REDIRECT}?`), `callback → ${cb.status} ${cb.location}`);
  const back = new URL(cb.location).searchParams;
  expect(back.get('state') === state && back.get('iss') === base && back.get('code'), `callback redirect: ${cb.location}`);
  // code → token
  const tok = await req(ctx, `${base}/oauth/token`, { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams({ grant_type: 'authorization_code', code: back.get('code'), redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: verifier }) });
  expect(tok.status === 200, `token → ${tok.status}: ${tok.text.slice(0, 200)}`);
  const body = JSON.parse(tok.text);
  expect(typeof body.access_token === 'string' && body.access_token.startsWith('attio_at_') && body.token_type === 'Bearer', `token body: ${tok.text.slice(0, 200)}`);
  stats.tokens.add(body.access_token);
  return performance.now() - t0;
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);

async function run(kv) {
  const name = kv ? 'with KV' : 'without KV';
  const stack = await startStack({ kv });
  const stats = { requests: 0, fivexx: 0, tokens: new Set(), failures: [] };
  const latencies = [];
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one signal shared by every request of the run
  const deadline = setTimeout(() => controller.abort(), TIME_LIMIT_MS);
  let next = 0;
  let started = 0;
  try {
    // Warm up: one flow, not counted, so the first Wasm instantiation is not measured.
    await flow(stack.url, stack.attio, { requests: 0, fivexx: 0, tokens: new Set() }, controller.signal);
    const t1 = performance.now();
    const worker = async () => {
      while (next < FLOWS && !controller.signal.aborted) {
        next++;
        started++;
        try {
          latencies.push(await flow(stack.url, stack.attio, stats, controller.signal));
        } catch (e) {
          stats.failures.push(controller.signal.aborted ? 'time limit reached' : e.message);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const secs = (performance.now() - t1) / 1000;
    clearTimeout(deadline);
    const sorted = [...latencies].sort((a, b) => a - b);
    const result = {
      mode: name,
      flows: FLOWS,
      concurrency: CONCURRENCY,
      completed: latencies.length,
      failed: stats.failures.length + (FLOWS - started),
      fivexx: stats.fivexx,
      requests: stats.requests,
      seconds: Number(secs.toFixed(2)),
      flowsPerSecond: Number((latencies.length / secs).toFixed(1)),
      requestsPerSecond: Number((stats.requests / secs).toFixed(1)),
      p50ms: Number(pct(sorted, 50).toFixed(1)),
      p99ms: Number(pct(sorted, 99).toFixed(1)),
      maxms: Number((sorted.at(-1) ?? NaN).toFixed(1)),
      distinctTokens: stats.tokens.size,
      timeLimitHit: controller.signal.aborted,
      firstFailures: [...new Set(stats.failures)].slice(0, 5),
    };
    return result;
  } finally {
    clearTimeout(deadline);
    await stack.close();
  }
}

const results = [];
for (const kv of MODES) {
  const r = await run(kv);
  results.push(r);
  if (opts.json) continue;
  console.log(`${r.mode}: ${r.completed}/${r.flows} flows, concurrency ${r.concurrency}, ${r.seconds} s → ${r.flowsPerSecond} flows/s (${r.requestsPerSecond} broker requests/s); flow latency p50 ${r.p50ms} ms, p99 ${r.p99ms} ms, max ${r.maxms} ms; failed ${r.failed}, 5xx ${r.fivexx}`);
  for (const f of r.firstFailures) console.log(`  failure: ${f}`);
}
if (opts.json) console.log(JSON.stringify(results, null, 2));

const bad = results.filter((r) => r.failed > 0 || r.fivexx > 0 || r.completed !== r.flows || r.distinctTokens !== r.completed || r.timeLimitHit);
if (bad.length) {
  console.error(`LOAD TEST FAILED: ${bad.map((r) => `${r.mode}: ${r.failed} failed, ${r.fivexx} 5xx, ${r.completed}/${r.flows} completed${r.timeLimitHit ? ', time limit hit' : ''}`).join('; ')}`);
  process.exit(1);
}
console.log('load test passed: zero failed flows, zero 5xx');
process.exit(0);
