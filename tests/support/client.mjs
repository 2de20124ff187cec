// A small HTTP "browser" for end-to-end tests: a cookie jar that honours
// Path and Max-Age, manual redirects, and helpers to walk OAuth flows.
import { startBroker } from './broker.mjs';
import { startFakeAttio, brokerVars } from './fake-attio.mjs';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export class Jar {
  constructor() { this.cookies = new Map(); }
  store(setCookies) {
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq), value = pair.slice(eq + 1);
      const a = Object.fromEntries(attrs.map((x) => { const i = x.indexOf('='); return i < 0 ? [x.toLowerCase(), true] : [x.slice(0, i).toLowerCase(), x.slice(i + 1)]; }));
      if (a['max-age'] === '0') this.cookies.delete(name);
      else this.cookies.set(name, { value, path: a.path || '/', attrs: a });
    }
  }
  header(url) {
    const p = new URL(url).pathname;
    return [...this.cookies].filter(([, c]) => p.startsWith(c.path)).map(([n, c]) => `${n}=${c.value}`).join('; ');
  }
  get(name) { return this.cookies.get(name)?.value; }
}

export class Browser {
  constructor() { this.jar = new Jar(); }
  /** One request, no redirect following; cookies sent and stored. */
  async request(url, init = {}) {
    const headers = new Headers(init.headers || {});
    const c = this.jar.header(url);
    if (c) headers.set('cookie', c);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.jar.store(res.headers.getSetCookie());
    return res;
  }
  /** Follow redirects up to `max` hops, stopping at a URL starting with `stopAt`. */
  async follow(url, { stopAt, max = 10, init } = {}) {
    let res = await this.request(url, init);
    for (let i = 0; i < max && res.status >= 300 && res.status < 400; i++) {
      const next = new URL(res.headers.get('location'), url).toString();
      if (stopAt && next.startsWith(stopAt)) return { res, stoppedAt: next };
      url = next;
      res = await this.request(url);
    }
    return { res, url };
  }
}

export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export const ATTIO_ID = 'test-attio-client';
export const ATTIO_SECRET = 'test-attio-secret-do-not-leak';
export const BROKER_SECRET = 'test-broker-secret-do-not-leak';

/** Start a fake Attio and a broker pointed at it. */
export async function startStack({ kv = true, vars = {}, attio: attioOptions = {} } = {}) {
  const attio = await startFakeAttio({ clientId: ATTIO_ID, clientSecret: ATTIO_SECRET, ...attioOptions });
  const broker = await startBroker({
    kv,
    vars: { ...brokerVars(attio, ATTIO_ID, ATTIO_SECRET), ...vars },
  });
  return { attio, broker, url: broker.url, async close() { await broker.close(); await attio.close(); } };
}

/** A loopback port nothing listens on: open a server on port 0, note the port, close it. */
export async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Both storage modes, for describe() loops. */
export const MODES = [{ name: 'with KV', kv: true }, { name: 'without KV', kv: false }];

/** Register a client; returns the parsed 201 body. */
export async function register(base, meta = {}) {
  const res = await fetch(`${base}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/callback'], client_name: 'Test Client', ...meta }),
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The consent form's hidden value from a consent page. */
export function consentValue(html) {
  const m = html.match(/name="consent" value="([^"]+)"/);
  return m && m[1].replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}

/**
 * Walk a whole client flow: authorize -> consent (approve) -> fake Attio ->
 * callback -> back to the client's redirect URI. Returns the final redirect's
 * query parameters.
 */
export async function clientFlow(base, browser, { client, redirectUri, state = 'st-' + randomBytes(4).toString('hex'), pkce = pkcePair(), extra = {} }) {
  const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri, state, code_challenge: pkce.challenge, code_challenge_method: 'S256', ...extra });
  let res = await browser.request(`${base}/oauth/authorize?${q}`);
  if (res.status === 200) {
    const html = await res.text();
    const consent = consentValue(html);
    if (!consent) throw new Error('no consent form on the page');
    res = await browser.request(`${base}/oauth/authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ consent, action: 'approve' }) });
  }
  if (res.status !== 302) throw new Error(`authorize: expected 302, got ${res.status}`);
  const { stoppedAt, res: last } = await browser.follow(res.headers.get('location'), { stopAt: redirectUri.split('?')[0] });
  if (!stoppedAt) throw new Error(`flow did not return to the client: ${last.status}`);
  const params = Object.fromEntries(new URL(stoppedAt).searchParams);
  return { params, state, pkce };
}

/** POST a form to the token endpoint; returns {status, body, headers}. */
export async function tokenRequest(base, form, headers = {}) {
  const res = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) });
  const text = await res.text();
  let body; try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body, headers: res.headers };
}
