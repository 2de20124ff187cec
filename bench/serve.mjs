// One worker in its own Node process, so that its workerd child can be
// measured alone:  node bench/serve.mjs KIND
//   broker       the built broker (build/) with KV, pointed at a fake Attio
//   broker-nokv  the same without KV (stateless, sealed values)
//   floor        the do-nothing JS Worker (bench/floor.mjs)
//   floor-io     the floor plus one KV operation or one fetch (bench/floor-io.mjs)
//   rust-floor   the Rust control (bench/rust-floor/build/), same vars and KV
// The fake Attio runs in this same Node process (its CPU stays here, out of
// the workerd figure).
// Prints one JSON line {kind, url, attio, pid} on stdout, then serves until
// stdin closes or SIGTERM.
import { Miniflare } from 'miniflare';
import { startFakeAttio, brokerVars } from '../tests/support/fake-attio.mjs';
import path from 'node:path';
import { miniflareOptions, workerdChildren, ATTIO_ID, ATTIO_SECRET } from './common.mjs';

// --root DIR: serve DIR/build instead of this repository's build/ (to compare
// a changed copy of the crate; see bench/compare.mjs).
const kind = process.argv[2];
const rootArg = process.argv.indexOf('--root');
const root = rootArg > 0 ? path.resolve(process.argv[rootArg + 1]) : null;
const KINDS = ['broker', 'broker-nokv', 'floor', 'floor-io', 'rust-floor'];
if (!KINDS.includes(kind)) {
  console.error(`usage: node bench/serve.mjs ${KINDS.join('|')} [--root DIR]`);
  process.exit(2);
}

let attio = null;
let vars = {};
if (kind !== 'floor') {
  attio = await startFakeAttio({ clientId: ATTIO_ID, clientSecret: ATTIO_SECRET, issueRefreshToken: true });
  vars = brokerVars(attio, ATTIO_ID, ATTIO_SECRET);
  if (kind === 'floor-io') vars = { FETCH_URL: attio.urls.token };
  // The fake records every request; forget them now and then so a long run
  // does not grow its memory.
  setInterval(() => attio.reset(), 2000).unref();
}
const options = miniflareOptions(kind === 'broker-nokv' ? 'broker' : kind, { vars, kv: kind !== 'broker-nokv' });
if (root) {
  // Miniflare refuses module paths outside its working directory.
  process.chdir(root);
  options.rootPath = root;
}
const mf = new Miniflare(options);
const url = (await mf.ready).origin;
process.stdout.write(JSON.stringify({ kind, url, attio: attio?.url ?? null, pid: process.pid }) + '\n');

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  // Never leave workerd behind: if dispose hangs, kill our own workerd child.
  const deadline = new Promise((r) => setTimeout(r, 5000).unref());
  try { await Promise.race([mf.dispose(), deadline]); } catch {}
  for (const pid of workerdChildren(process.pid)) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  try { await attio?.close(); } catch {}
  process.exit(0);
}
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
