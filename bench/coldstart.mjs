// Cold start, run by bench/bench.mjs:
//   node bench/coldstart.mjs [runs] [--rust-floor] [--variant DIR ...]
// Each run creates a new Miniflare instance (a new workerd process) for the
// floor, then the broker (then the Rust floor, then each variant: DIR holds a
// build/ of a changed copy of the crate), and measures: spawn -> listening (mf.ready),
// the first request's latency, spawn -> first answered request, and the
// workerd process's CPU (utime+stime) up to that answer. Prints JSON.
import { Miniflare } from 'miniflare';
import http from 'node:http';
import path from 'node:path';
import { miniflareOptions, ROOT, cpuTicks, ticksToMicros, workerdChildren } from './common.mjs';

const argv = process.argv.slice(2);
const RUNS = Number(argv.find((a) => /^\d+$/.test(a)) || 5);
const variants = argv.flatMap((a, i) => (a === '--variant' ? [path.resolve(argv[i + 1])] : []));
const KINDS = ['floor', 'broker', ...(argv.includes('--rust-floor') ? ['rust-floor'] : []), ...variants.map((d) => `variant:${d}`)];
// If anything fails, leave no workerd behind.
process.on('exit', () => { for (const pid of workerdChildren(process.pid)) { try { process.kill(pid, 'SIGKILL'); } catch {} } });
const DEAD = 'http://127.0.0.1:9';
const vars = {
  ATTIO_CLIENT_ID: 'cold-start-client',
  ATTIO_CLIENT_SECRET: 'cold-start-secret',
  ATTIO_AUTHORIZE_URL: `${DEAD}/authorize`,
  ATTIO_TOKEN_URL: `${DEAD}/oauth/token`,
  ATTIO_INTROSPECT_URL: `${DEAD}/oauth/introspect`,
  ATTIO_REVOKE_URL: `${DEAD}/oauth/revoke`,
};

// Warm up Node's fetch (undici loads lazily on first use) so that the first
// request below measures the Worker, not the client.
const srv = http.createServer((_q, r) => r.end('ok'));
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
await (await fetch(`http://127.0.0.1:${srv.address().port}/`)).text();
srv.close();

async function once(kind) {
  const variant = kind.startsWith('variant:') ? kind.slice(8) : null;
  const opts = miniflareOptions(variant ? 'broker' : kind, { vars, kv: true });
  if (variant) opts.rootPath = variant;
  // Miniflare refuses module paths outside the working directory.
  process.chdir(variant || ROOT);
  const t0 = performance.now();
  const mf = new Miniflare(opts);
  const url = (await mf.ready).origin;
  const t1 = performance.now();
  process.chdir(ROOT);
  const res = await fetch(`${url}${kind === 'floor' ? '/' : kind === 'rust-floor' ? '/bare' : '/health'}`);
  await res.text();
  const t2 = performance.now();
  const pids = workerdChildren(process.pid);
  const ticks = pids.length === 1 ? cpuTicks(pids[0]) : NaN;
  if (res.status !== 200) throw new Error(`${kind}: first request answered ${res.status}`);
  await mf.dispose();
  return { ready_ms: t1 - t0, first_request_ms: t2 - t1, first_answer_ms: t2 - t0, cpu_ms: ticksToMicros(ticks) / 1000 };
}

const runs = Object.fromEntries(KINDS.map((k) => [k, []]));
for (let i = 0; i < RUNS; i++) {
  for (const kind of KINDS) runs[kind].push(await once(kind));
}
const mean = (xs, k) => xs.reduce((a, x) => a + x[k], 0) / xs.length;
const summary = (xs) => ({
  ready_ms: mean(xs, 'ready_ms'),
  first_request_ms: mean(xs, 'first_request_ms'),
  first_answer_ms: mean(xs, 'first_answer_ms'),
  first_answer_min_ms: Math.min(...xs.map((x) => x.first_answer_ms)),
  cpu_ms: mean(xs, 'cpu_ms'),
  runs: xs,
});

const out = { runs: RUNS };
for (const k of KINDS) out[k] = summary(runs[k]);
out.extra_over_floor_ms = out.broker.first_answer_ms - out.floor.first_answer_ms;
process.stdout.write(JSON.stringify(out) + '\n');
