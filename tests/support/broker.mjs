// Start the built Worker (build/index.js + its Wasm) in workerd through
// Miniflare, on a free loopback port, with or without the KV binding.
import { Miniflare, Log, LogLevel } from 'miniflare';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Every line the Worker logged (console.log) in this process, for hygiene checks. */
export const workerLogs = [];

class CapturingLog extends Log {
  constructor() { super(LogLevel.INFO); }
  log(message) { workerLogs.push(String(message)); }
}

/**
 * @param {{kv?: boolean, vars?: Record<string,string>}} options
 * @returns {Promise<{url: string, mf: Miniflare, close: () => Promise<void>, kvKeys: () => Promise<string[]>}>}
 */
export async function startBroker({ kv = true, vars = {} } = {}) {
  if (!existsSync(path.join(ROOT, 'build/index.js'))) {
    throw new Error('build/index.js is missing: run scripts/build.sh first (scripts/test.sh does)');
  }
  const mf = new Miniflare({
    rootPath: ROOT,
    scriptPath: 'build/index.js',
    modules: true,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-01',
    compatibilityFlags: ['global_fetch_strictly_public'],
    kvNamespaces: kv ? ['OAUTH_SESSIONS'] : [],
    bindings: vars,
    host: '127.0.0.1',
    port: 0,
    log: new CapturingLog(),
    handleRuntimeStdio(stdout, stderr) {
      const collect = (s) => s.on('data', (d) => { for (const l of String(d).split('\n')) if (l) workerLogs.push(l); });
      collect(stdout); collect(stderr);
    },
  });
  const ready = await mf.ready;
  const url = ready.origin;
  return {
    url,
    mf,
    async kvKeys() {
      if (!kv) return [];
      const ns = await mf.getKVNamespace('OAUTH_SESSIONS');
      const { keys } = await ns.list();
      return keys.map((k) => k.name);
    },
    close: () => mf.dispose(),
  };
}
