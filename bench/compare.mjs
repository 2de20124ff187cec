// A/B: the same loads against two builds of the broker, interleaved, to check
// what a change saves. Each DIR holds build/index.js and build/index_bg.wasm
// (this repository, or a copy of the crate built with `worker-build --release`).
//
//   node bench/compare.mjs [--rounds 2] [--duration 5] [--flows] DIR_A DIR_B
//
// Both builds run at once, each in its own Node process and workerd, with KV
// and their own fake Attio. For each case, every round measures A then B
// (workerd utime+stime over the run / requests) and the median of the rounds
// is reported. --flows adds whole flows (Node driver, --duration seconds).
// Prints a Markdown table; exits non-zero if a case answered wrongly.
import path from 'node:path';
import { statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import {
  settings, log, serve, stopAll, wrkCase, measured, pool, timed, step, Jar, pkce,
  registerClient, authorizeQuery, form, FORM, JSONH, REDIRECT, fmt, wholeFlow,
} from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); if (i < 0) return def; const v = Number(args[i + 1]); args.splice(i, 2); return v; };
const rounds = opt('rounds', 2);
settings.duration = opt('duration', 5);
settings.warmup = opt('warmup', 1);
const flows = args.includes('--flows');
const dirs = args.filter((a) => !a.startsWith('--')).map((d) => path.resolve(d));
if (dirs.length !== 2) {
  console.error('usage: node bench/compare.mjs [--rounds N] [--duration S] [--flows] DIR_A DIR_B');
  process.exit(2);
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
const gz = (f) => Number(execFileSync('sh', ['-c', 'gzip -9 -c "$1" | wc -c', 'sh', f]).toString().trim());

async function main() {
  const servers = [];
  for (const d of dirs) servers.push(await serve('broker', { root: d }));
  // Per build: a client, a consent form with its cookie, a refresh token.
  const prep = [];
  for (const s of servers) {
    const cid = await registerClient(s.url);
    const p = pkce();
    const jar = new Jar();
    const consent = await step.consentPage(s.url, cid, jar, p);
    const cookie = jar.header();
    const code = await step.callback(await step.fakeAttio(await step.consentSubmit(s.url, consent, jar)), jar);
    const tok = await step.token(s.url, cid, code, p.verifier);
    prep.push({ consentQuery: authorizeQuery(cid, p, 'bench'), consent, cookie, refresh: tok.refresh_token });
  }
  const cases = (x) => [
    ['GET /health', '/health', {}, 200],
    ['GET /.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server', {}, 200],
    ['GET /oauth/authorize (manual start)', '/oauth/authorize', {}, 302],
    ['GET /oauth/authorize (consent page)', `/oauth/authorize?${x.consentQuery}`, {}, 200],
    ['POST /oauth/register', '/oauth/register', { method: 'POST', headers: JSONH, body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'Bench Client', token_endpoint_auth_method: 'none' }) }, 201],
    ['POST /oauth/authorize (consent submit)', '/oauth/authorize', { method: 'POST', headers: { ...FORM, cookie: x.cookie }, body: form({ consent: x.consent, action: 'approve' }) }, 302],
    ['POST /oauth/token (refresh grant)', '/oauth/token', { method: 'POST', headers: FORM, body: form({ grant_type: 'refresh_token', refresh_token: x.refresh }) }, 200],
  ];
  const results = new Map();
  let ok = true;
  const n = cases(prep[0]).length;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < 2; k++) {
        const [name, p, init, expect] = cases(prep[k])[i];
        const row = await wrkCase(servers[k], `${'AB'[k]}: ${name}`, p, init, expect);
        ok &&= row.valid;
        const key = `${name}`;
        if (!results.has(key)) results.set(key, [[], []]);
        results.get(key)[k].push(row.cpu_us_per_req);
      }
    }
  }
  if (flows) {
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < 2; k++) {
        await pool({ seconds: settings.warmup, task: () => wholeFlow(servers[k].url) });
        const row = await measured(servers[k], `${'AB'[k]}: whole flow`, 5, (lat) =>
          pool({ seconds: settings.duration, task: () => timed(lat, () => wholeFlow(servers[k].url)) }));
        ok &&= row.valid;
        if (!results.has('whole flow (per flow)')) results.set('whole flow (per flow)', [[], []]);
        results.get('whole flow (per flow)')[k].push(row.cpu_us_per_req);
      }
    }
  }
  await stopAll();
  const L = [];
  L.push(`A = ${dirs[0]}`, `B = ${dirs[1]}`, '');
  L.push(`| Case | A: CPU/request (µs) | B: CPU/request (µs) | B − A (µs) | B ÷ A |`, '|---|---:|---:|---:|---:|');
  for (const [name, [a, b]] of results) {
    const ma = median(a);
    const mb = median(b);
    L.push(`| ${name} | ${fmt(ma)} (${a.map((x) => fmt(x)).join(', ')}) | ${fmt(mb)} (${b.map((x) => fmt(x)).join(', ')}) | ${fmt(mb - ma)} | ${fmt(mb / ma, 2)} |`);
  }
  const sizes = dirs.map((d) => path.join(d, 'build/index_bg.wasm')).map((f) => [statSync(f).size, gz(f)]);
  L.push(`| Wasm size raw / gzip -9 (bytes) | ${fmt(sizes[0][0])} / ${fmt(sizes[0][1])} | ${fmt(sizes[1][0])} / ${fmt(sizes[1][1])} | ${fmt(sizes[1][0] - sizes[0][0])} / ${fmt(sizes[1][1] - sizes[0][1])} | |`);
  L.push('', `Median of ${rounds} rounds of ${settings.duration} s each (wrk -t1 -c${settings.connections}); the rounds are in brackets.`, '');
  process.stdout.write(L.join('\n'));
  return ok;
}

const hardStop = setTimeout(() => { log('time limit (10 minutes) reached: stopping'); process.exit(1); }, 10 * 60 * 1000);
hardStop.unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
main().then(async (ok) => { await stopAll(); process.exit(ok ? 0 : 1); }, async (e) => { console.error(e); await stopAll(); process.exit(1); });
