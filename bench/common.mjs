// Shared by the bench scripts: the Miniflare options for the broker and the
// floor (kept identical to tests/support/broker.mjs: same workerd, same
// compatibility date as wrangler.toml), and workerd CPU accounting via /proc.
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const ATTIO_ID = 'bench-attio-client';
export const ATTIO_SECRET = 'bench-attio-secret';

export function compatibilityDate() {
  const m = readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8').match(/^compatibility_date\s*=\s*"([^"]+)"/m);
  return m ? m[1] : '2026-04-01';
}

/** Miniflare options for one worker: 'broker', 'floor', 'floor-io' or 'rust-floor'. */
export function miniflareOptions(kind, { vars = {}, kv = true } = {}) {
  const common = {
    rootPath: ROOT,
    modules: true,
    compatibilityDate: compatibilityDate(),
    host: '127.0.0.1',
    port: 0,
    // Drain workerd's stdout/stderr (the broker logs one line per request);
    // the Worker still pays for console.log, Node only discards the text.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.on('data', (d) => { if (process.env.BENCH_DEBUG) process.stderr.write(d); });
    },
  };
  // The floor gets the same KV binding (unused), so that Miniflare starts the
  // same services for both and only the Worker differs.
  if (kind === 'floor') return { ...common, scriptPath: 'bench/floor.mjs', kvNamespaces: kv ? ['OAUTH_SESSIONS'] : [] };
  if (kind === 'floor-io') return { ...common, scriptPath: 'bench/floor-io.mjs', kvNamespaces: ['OAUTH_SESSIONS'], bindings: vars };
  return {
    ...common,
    scriptPath: kind === 'rust-floor' ? 'bench/rust-floor/build/index.js' : 'build/index.js',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    kvNamespaces: kv ? ['OAUTH_SESSIONS'] : [],
    bindings: vars,
  };
}

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(f[11]) + Number(f[12]);
}

export const ticksToMicros = (ticks) => (ticks * 1e6) / CLK_TCK;

/** The pids of the `workerd` children of `parentPid`. */
export function workerdChildren(parentPid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === parentPid && comm.startsWith('workerd')) out.push(Number(d));
  }
  return out;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
