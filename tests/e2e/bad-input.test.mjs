// Bad input at every endpoint: each class of malformed, oversize, forged or
// hostile input gets a definite 4xx answer (an OAuth JSON error from the API
// endpoints, an HTML page from the browser endpoints), never a 5xx, never a
// redirect to an unverified address, never a reflected script or header.
// docs/bad-input.md has the table of rows; each row names its test here.
//
// Requests that fetch() cannot send (non-UTF-8 bytes in the request line,
// malformed or huge headers, control bytes in cookies) go over a raw socket.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { hkdfSync, createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { startStack, MODES, Browser, register, clientFlow, tokenRequest, pkcePair, consentValue, ATTIO_SECRET } from '../support/client.mjs';
import { workerLogs } from '../support/broker.mjs';

const REDIRECT = 'http://127.0.0.1:9/callback';
const CLAUDE = 'https://claude.ai/api/mcp/auth_callback';
const LOOPBACK = 'http://127.0.0.1:33418/cb';
const LOOPBACK6 = 'http://[::1]:33418/cb';
const XSS = '<script>alert(1)</script>';
const COOKIE = 'attio_broker_browser';
const APPROVALS = 'attio_broker_consent';
const FORM = 'application/x-www-form-urlencoded';
const PAST = 1_000_000_000; // 2001: any expiry before now

// ---------------------------------------------------------------- helpers

/** A response, normalised: status, lower-cased headers, text, parsed JSON. */
function normalise(status, headers, text, setCookies = []) {
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status, headers, text, json, setCookies };
}

/** fetch() without following redirects, normalised. */
async function call(url, init = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const text = await res.text();
  return normalise(res.status, Object.fromEntries(res.headers), text, res.headers.getSetCookie());
}

/**
 * Send raw bytes as one HTTP/1.1 request over a socket and read one response
 * (Content-Length or chunked). For inputs fetch() refuses to send.
 */
function rawRequest(base, bytes, { timeoutMs = 20_000, head = false } = {}) {
  const u = new URL(base);
  return new Promise((resolve) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const end = buf.indexOf('\r\n\r\n');
      const headText = (end >= 0 ? buf.subarray(0, end) : buf).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(headText);
      const headers = {};
      const setCookies = [];
      for (const line of headText.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        if (k === 'set-cookie') setCookies.push(v);
        headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
      }
      let body = end >= 0 ? buf.subarray(end + 4) : Buffer.alloc(0);
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
      const r = normalise(m ? Number(m[1]) : null, headers, body.toString('utf8'), setCookies);
      r.error = m ? null : (error?.message ?? 'no response');
      resolve(r);
    };
    const complete = () => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const headText = buf.subarray(0, end).toString('latin1');
      const status = Number((/^HTTP\/1\.[01] (\d{3})/.exec(headText) ?? [])[1]);
      if (head || status === 204 || status === 304) return true;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
      if (cl) return buf.length - end - 4 >= Number(cl[1]);
      if (/\r\ntransfer-encoding:\s*chunked/i.test(headText)) return buf.subarray(end + 4).includes('0\r\n\r\n');
      return false;
    };
    const timer = setTimeout(() => finish(new Error('timeout')), timeoutMs);
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); if (complete()) finish(); });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', (e) => finish(e));
    sock.write(bytes);
  });
}

function dechunk(b) {
  const out = [];
  let i = 0;
  while (i < b.length) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) break;
    const n = parseInt(b.subarray(i, eol).toString('latin1'), 16);
    if (!n) break;
    out.push(b.subarray(eol + 2, eol + 2 + n));
    i = eol + 2 + n + 2;
  }
  return Buffer.concat(out);
}

/** A raw request from parts. `path` and header values are sent as latin1 bytes. */
function raw(base, method, path, headers = {}, body) {
  const u = new URL(base);
  const b = body == null ? null : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${u.host}`, 'Connection: close'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (b && !Object.keys(headers).some((k) => /^(content-length|transfer-encoding)$/i.test(k))) lines.push(`Content-Length: ${b.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return rawRequest(base, b ? Buffer.concat([head, b]) : head, { head: method === 'HEAD' });
}

const show = (r) => `${r.status} ${r.error ?? ''} ${r.headers?.location ?? ''} ${String(r.text).slice(0, 300)}`;

/** Never a 5xx. */
function below500(r) {
  assert.ok(r.status !== null, `no response: ${r.error}`);
  assert.ok(r.status < 500, `a 5xx for bad input: ${show(r)}`);
}

/** An RFC 6749 JSON error with this status and code. */
function jsonError(r, status, error) {
  below500(r);
  assert.equal(r.status, status, show(r));
  assert.match(r.headers['content-type'] ?? '', /^application\/json/, show(r));
  assert.equal(r.json?.error, error, show(r));
  assert.equal(typeof r.json.error_description, 'string');
  assert.equal(r.headers['cache-control'], 'no-store');
  noLeak(r);
}

/** An HTML page (browser endpoints) with this status, never a redirect. */
function page(r, status, re) {
  below500(r);
  assert.equal(r.status, status, show(r));
  assert.match(r.headers['content-type'] ?? '', /^text\/html/, show(r));
  assert.equal(r.headers.location, undefined, 'an error page never redirects');
  assert.match(r.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  if (re) assert.match(r.text, re);
  noLeak(r);
}

/** A redirect back to the client with an OAuth error. */
function clientError(r, redirectUri, error, state) {
  below500(r);
  assert.equal(r.status, 302, show(r));
  const loc = new URL(r.headers.location);
  assert.equal(loc.href.split('?')[0], redirectUri);
  assert.equal(loc.searchParams.get('error'), error, loc.href);
  if (state !== undefined) assert.equal(loc.searchParams.get('state'), state);
  return loc;
}

function noLeak(r) {
  assert.ok(!r.text.includes(ATTIO_SECRET), 'the body leaks ATTIO_CLIENT_SECRET');
  for (const [k, v] of Object.entries(r.headers)) assert.ok(!String(v).includes(ATTIO_SECRET), `header ${k} leaks ATTIO_CLIENT_SECRET`);
}

/** No raw markup from the input in the page (it must be escaped). */
function noRawMarkup(r, needle = XSS) {
  assert.ok(!r.text.includes(needle), `the answer reflects ${needle} unescaped`);
  assert.ok(!/<script>alert/i.test(r.text), 'the answer contains an injected script');
}

/** No header was injected through CR/LF. */
function noInjectedHeader(r) {
  assert.equal(r.headers['x-injected'], undefined, 'a header was injected');
  assert.ok(!r.setCookies.some((c) => c.startsWith('injected=')), 'a cookie was injected');
  for (const [k, v] of Object.entries(r.headers)) assert.ok(!/[\r\n]/.test(v), `header ${k} contains CR/LF`);
}

/** Flip one character in the middle (stays base64url-shaped). */
function tamper(s, at = Math.floor(s.length / 2)) {
  const c = s[at] === 'A' ? 'B' : 'A';
  return s.slice(0, at) + c + s.slice(at + 1);
}

const form = (o) => new URLSearchParams(o).toString();
const asIs = (b) => typeof b === 'string' || Buffer.isBuffer(b);
const postForm = (base, path, body, headers = {}) => call(`${base}${path}`, { method: 'POST', headers: { 'content-type': FORM, ...headers }, body: asIs(body) ? body : form(body) });
const postJson = (base, path, body, headers = {}) => call(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: asIs(body) ? body : JSON.stringify(body) });

/** Authorize query for a registered client. */
function authorizeQuery(client, extra = {}) {
  const q = { response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, code_challenge: pkcePair().challenge, code_challenge_method: 'S256', ...extra };
  for (const k of Object.keys(q)) if (q[k] === undefined) delete q[k];
  return `/oauth/authorize?${new URLSearchParams(q)}`;
}

/** How many requests the fake Attio's token endpoint has had. */
const tokenCalls = (stack) => stack.attio.requests.filter((x) => x.path === '/oauth/token').length;

/** Lines of the Worker's per-request log ("GET /oauth/token -> 400"). */
const requestLines = () => workerLogs.filter((l) => /^[A-Z]+ \/\S* -> \d{3}$/.test(l)).length;

// ------------------------------------------------- sealing, as the broker does
// Keys are HKDF-SHA256(ikm = the broker's key material, salt
// "attio-oauth-broker", info = label); values are XChaCha20-Poly1305 with the
// 10-byte header as associated data. Knowing the test secret lets a test mint
// values the broker accepts cryptographically (to reach its expiry checks) or
// values sealed under another key (forged).

const PURPOSE = { state: 1, consent: 2, client: 3, code: 4, stored: 5 };
const rotl = (v, n) => ((v << n) | (v >>> (32 - n))) >>> 0;

function hchacha20(key, nonce16) {
  const s = new Uint32Array(16);
  s.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(i * 4);
  for (let i = 0; i < 4; i++) s[12 + i] = nonce16.readUInt32LE(i * 4);
  const qr = (a, b, c, d) => {
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 16);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 12);
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 8);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  const out = Buffer.alloc(32);
  for (let i = 0; i < 4; i++) { out.writeUInt32LE(s[i], i * 4); out.writeUInt32LE(s[12 + i], 16 + i * 4); }
  return out;
}

function sealer(secret) {
  const expand = (info) => Buffer.from(hkdfSync('sha256', Buffer.from(secret), Buffer.from('attio-oauth-broker'), Buffer.from(info), 32));
  const keys = Object.fromEntries(Object.keys(PURPOSE).map((p) => [p, expand(`attio-oauth-broker/v1/seal/${p}`)]));
  const hashKey = expand('attio-oauth-broker/v1/mac/storage-key');
  const storageHash = (data) => createHmac('sha256', hashKey).update(data).digest('base64url');
  return {
    seal(purpose, value, expiresAt) {
      const header = Buffer.alloc(10);
      header[0] = 1;
      header[1] = PURPOSE[purpose];
      header.writeBigUInt64BE(BigInt(expiresAt), 2);
      const nonce = randomBytes(24);
      const c = createCipheriv('chacha20-poly1305', hchacha20(keys[purpose], nonce.subarray(0, 16)), Buffer.concat([Buffer.alloc(4), nonce.subarray(16)]), { authTagLength: 16 });
      c.setAAD(header, { plaintextLength: 0 });
      const ct = Buffer.concat([c.update(Buffer.from(JSON.stringify(value))), c.final(), c.getAuthTag()]);
      return Buffer.concat([header, nonce, ct]).toString('base64url');
    },
    storageHash,
    browserHash: (cookie) => storageHash(`browser:${cookie}`),
    clientRef: (id) => storageHash(`client-ref:${id}`).slice(0, 22),
  };
}

const BROKER = sealer(ATTIO_SECRET); // keys derived from ATTIO_CLIENT_SECRET (no BROKER_SECRET set)
const OTHER = sealer('some-other-secret');
const now = () => Math.floor(Date.now() / 1000);
const token43 = () => randomBytes(32).toString('base64url');

/** A client request as the broker records it after /oauth/authorize. */
function clientRequest(clientId, challenge, redirectUri = REDIRECT) {
  return { client_ref: BROKER.clientRef(clientId), redirect_uri: redirectUri, redirect_uri_given: true, state: 'st', code_challenge: challenge };
}

async function kvPut(stack, key, value) {
  const ns = await stack.broker.mf.getKVNamespace('OAUTH_SESSIONS');
  await ns.put(key, value);
}

/** Start a manual sign-in; returns the browser and the callback URL from the fake Attio. */
async function startManual(stack) {
  const browser = new Browser();
  const a = await browser.request(`${stack.url}/oauth/authorize`);
  assert.equal(a.status, 302);
  const attioUrl = new URL(a.headers.get('location'));
  const f = await browser.request(attioUrl.href);
  assert.equal(f.status, 302);
  return { browser, callbackUrl: new URL(f.headers.get('location')), state: attioUrl.searchParams.get('state') };
}

function withParam(url, name, value) {
  const u = new URL(url);
  if (value === undefined) u.searchParams.delete(name); else u.searchParams.set(name, value);
  return u;
}

/** Request with the browser's cookies but through the normalising call(). */
async function asBrowser(browser, url, init = {}) {
  const headers = { ...(init.headers || {}) };
  const c = browser.jar.header(String(url));
  if (c) headers.cookie = c;
  const r = await call(String(url), { ...init, headers });
  browser.jar.store(r.setCookies);
  return r;
}

/** Run a client flow up to the broker's code; returns what a token request needs. */
async function codeFor(stack, client, redirectUri = REDIRECT) {
  const { params, pkce } = await clientFlow(stack.url, new Browser(), { client, redirectUri });
  assert.ok(params.code, `no code: ${JSON.stringify(params)}`);
  return { code: params.code, verifier: pkce.verifier, base: { grant_type: 'authorization_code', code: params.code, redirect_uri: redirectUri, client_id: client.client_id, code_verifier: pkce.verifier } };
}

const tokenJson = async (stack, f, headers) => {
  const t = await tokenRequest(stack.url, f, headers);
  return normalise(t.status, Object.fromEntries(t.headers), typeof t.body === 'string' ? t.body : JSON.stringify(t.body));
};

// ------------------------------------------------------- every endpoint

const API_ENDPOINTS = [
  ['/health', 'GET, HEAD, OPTIONS', ['POST', 'PUT', 'DELETE', 'PATCH']],
  ['/.well-known/oauth-authorization-server', 'GET, HEAD, OPTIONS', ['POST', 'PUT', 'DELETE']],
  ['/.well-known/oauth-protected-resource', 'GET, HEAD, OPTIONS', ['POST', 'DELETE']],
  ['/oauth/token', 'POST, OPTIONS', ['GET', 'PUT', 'DELETE', 'PATCH']],
  ['/oauth/register', 'POST, OPTIONS', ['GET', 'PUT', 'DELETE']],
  ['/oauth/revoke', 'POST, OPTIONS', ['GET', 'PUT', 'DELETE']],
];

describe('every endpoint', () => {
  let s;
  before(async () => { s = await startStack({ kv: true }); });
  after(async () => { await s?.close(); });

  describe('wrong method', () => {
    it('API endpoints: a method they do not take → 405 method_not_allowed with Allow', async () => {
      for (const [path, allow, methods] of API_ENDPOINTS) {
        for (const method of methods) {
          const r = await call(`${s.url}${path}`, { method, headers: method === 'GET' ? {} : { 'content-type': FORM }, body: method === 'GET' ? undefined : 'a=1' });
          jsonError(r, 405, 'method_not_allowed');
          assert.equal(r.headers.allow, allow, `${method} ${path}`);
        }
      }
    });

    it('browser endpoints: PUT/DELETE/PATCH /oauth/authorize, POST /oauth/callback → 405 page with Allow', async () => {
      // No HEAD on the endpoints whose GET starts or finishes a sign-in.
      for (const [method, path, allow] of [['PUT', '/oauth/authorize', 'GET, POST, OPTIONS'], ['DELETE', '/oauth/authorize', 'GET, POST, OPTIONS'],
        ['PATCH', '/oauth/authorize', 'GET, POST, OPTIONS'], ['POST', '/oauth/callback', 'GET, OPTIONS'], ['PUT', '/oauth/callback', 'GET, OPTIONS']]) {
        const r = await call(`${s.url}${path}`, { method, headers: { 'content-type': FORM }, body: 'a=1' });
        page(r, 405);
        assert.equal(r.headers.allow, allow, `${method} ${path}`);
      }
    });

    it('HEAD /oauth/callback and /oauth/authorize → 405 without running the endpoint', async () => {
      for (const [path, allow] of [['/oauth/callback?state=x&code=y', 'GET, OPTIONS'], ['/oauth/authorize', 'GET, POST, OPTIONS']]) {
        const r = await raw(s.url, 'HEAD', path);
        assert.equal(r.status, 405, path);
        assert.equal(r.headers.allow, allow, path);
      }
    });

    it('CORS preflight with hostile Origin and Access-Control-Request-* headers → 204', async () => {
      for (const path of ['/oauth/token', '/oauth/register', '/oauth/revoke', '/oauth/authorize', '/health']) {
        const r = await raw(s.url, 'OPTIONS', path, { origin: 'https://evil.example', 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'x-evil, \xff\xfe, cookie' });
        below500(r);
        assert.equal(r.status, 204, `${path}: ${show(r)}`);
        assert.equal(r.headers['access-control-allow-credentials'], undefined, 'never allows credentials');
      }
    });
  });

  describe('paths', () => {
    it('unknown paths, non-UTF-8 bytes and percent-encoded junk in the path → 404 not_found', async () => {
      for (const path of ['/\xff\xfe', '/oauth/\xfftoken', '/%ff%fe', '/oauth/tokenx', '/oauth/authorize/extra', '/oauth/token%00', `/${'a'.repeat(8000)}`]) {
        const r = await raw(s.url, 'GET', path);
        jsonError(r, 404, 'not_found');
      }
    });

    it('HTML, script and non-UTF-8 bytes in a path-suffixed metadata URL → 200 JSON, suffix percent-encoded', async () => {
      for (const path of [`/.well-known/oauth-protected-resource/${XSS}`, '/.well-known/oauth-protected-resource/\xff\xfe%ff', `/.well-known/oauth-authorization-server/${XSS}`]) {
        const r = await raw(s.url, 'GET', path);
        below500(r);
        assert.equal(r.status, 200, show(r));
        assert.match(r.headers['content-type'], /^application\/json/);
        assert.ok(r.json, 'valid JSON');
        noRawMarkup(r);
        if (r.json.resource) assert.doesNotThrow(() => new URL(r.json.resource));
      }
    });
  });

  describe('headers', () => {
    it('a 32 KiB header or cookie → answered normally (not 5xx)', async () => {
      const big = 'a'.repeat(32 * 1024);
      const h = await raw(s.url, 'GET', '/health', { 'x-big': big });
      below500(h);
      assert.equal(h.status, 200);
      const t = await raw(s.url, 'POST', '/oauth/token', { 'content-type': FORM, cookie: `${COOKIE}=${big}` }, 'grant_type=password');
      jsonError(t, 400, 'unsupported_grant_type');
      const a = await raw(s.url, 'GET', '/oauth/authorize', { cookie: `${COOKIE}=${big}` });
      below500(a);
      assert.equal(a.status, 302, 'the manual flow starts with a fresh cookie');
      assert.ok(a.setCookies.some((c) => c.startsWith(`${COOKIE}=`) && !c.includes(big)));
    });

    it('a 128 KiB header or a 200 KiB request line → 431 from the runtime', async () => {
      const h = await raw(s.url, 'GET', '/health', { 'x-big': 'a'.repeat(128 * 1024) });
      below500(h);
      assert.equal(h.status, 431, show(h));
      const q = await raw(s.url, 'GET', `/oauth/callback?state=${'a'.repeat(200 * 1024)}`);
      below500(q);
      assert.equal(q.status, 431, show(q));
    });

    it('2000 headers → answered normally', async () => {
      const head = `GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${Array.from({ length: 2000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`;
      const r = await rawRequest(s.url, Buffer.from(head));
      below500(r);
      assert.equal(r.status, 200);
    });

    it('a malformed header line (no colon) → 400 from the runtime', async () => {
      const r = await rawRequest(s.url, Buffer.from('POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nthis is not a header\r\nContent-Length: 0\r\n\r\n'));
      below500(r);
      assert.equal(r.status, 400, show(r));
    });

    it('an obs-folded header and non-ASCII header bytes → answered normally', async () => {
      const folded = await rawRequest(s.url, Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: a\r\n folded\r\n\r\n'));
      below500(folded);
      assert.equal(folded.status, 200);
      const bytes = await raw(s.url, 'GET', '/health', { 'x-a': '\xff\xfe\x80', 'x-forwarded-host': '\xff<script>' });
      below500(bytes);
      assert.equal(bytes.status, 200);
      noRawMarkup(bytes, '<script>');
    });

    it('HTML in X-Forwarded-Host / X-Forwarded-Proto at /health → 200 JSON, never reflected raw', async () => {
      const r = await call(`${s.url}/health`, { headers: { 'x-forwarded-host': `evil.example${XSS}`, 'x-forwarded-proto': `https${XSS}` } });
      below500(r);
      assert.equal(r.status, 200);
      assert.ok(r.json.warnings.length > 0, 'the forwarded-origin warning is given');
      noRawMarkup(r);
    });
  });

  describe('runtime rejections (workerd, before the Worker runs)', () => {
    // These never reach the Worker: workerd's HTTP parser refuses them. On
    // Cloudflare the edge refuses them with a 400 first. The test pins that
    // the broker's own code did not run (no request line in its log).
    it('invalid Content-Length (-1, abc, two values) or an unknown Transfer-Encoding → refused by workerd, the Worker never runs', async () => {
      for (const extra of ['Content-Length: -1', 'Content-Length: abc', 'Content-Length: 3\r\nContent-Length: 4', 'Transfer-Encoding: gzip']) {
        const before = requestLines();
        const r = await rawRequest(s.url, Buffer.from(`POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ${FORM}\r\n${extra}\r\n\r\nabcd`));
        assert.ok(r.status !== null, `no response for ${extra}`);
        await new Promise((res) => setTimeout(res, 100));
        if (r.status >= 500) {
          assert.equal(r.status, 500, `${extra}: ${show(r)}`);
          assert.equal(requestLines(), before, `${extra}: a 5xx must come from the runtime, not the broker`);
          assert.ok(!r.text.includes('error_description'), 'not a broker JSON error');
        } else {
          assert.equal(r.status, 400, `${extra}: ${show(r)}`);
        }
      }
    });

    it('an unknown method (FOO) → 501 from workerd, the Worker never runs', async () => {
      const before = requestLines();
      const r = await raw(s.url, 'FOO', '/oauth/token');
      assert.ok(r.status !== null, r.error);
      await new Promise((res) => setTimeout(res, 100));
      if (r.status >= 500) {
        assert.equal(r.status, 501, show(r));
        assert.equal(requestLines(), before, 'a 5xx must come from the runtime, not the broker');
      } else {
        assert.equal(r.status, 405, show(r));
      }
    });
  });
});

// ----------------------------------------------------- health and metadata

describe('/health and metadata documents', () => {
  let s;
  before(async () => { s = await startStack({ kv: true }); });
  after(async () => { await s?.close(); });
  const DOCS = ['/health', '/ping', '/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource'];

  it('bad percent-encoding, non-UTF-8 bytes, repeated and oversize parameters in the query → ignored, 200', async () => {
    for (const path of DOCS) {
      for (const q of ['?%ff%fe&%zz', '?a=1&a=2&a=3', '?\xff\xfe=\xc3\x28', `?x=${'a'.repeat(20000)}`, '?' + Array.from({ length: 200 }, (_, i) => `p${i}=1`).join('&')]) {
        const r = await raw(s.url, 'GET', path + q);
        below500(r);
        assert.equal(r.status, 200, `${path}${q.slice(0, 30)}: ${show(r)}`);
        assert.ok(r.json, 'JSON');
      }
    }
  });

  it('HEAD → 200 without a body; a body on GET → ignored, 200', async () => {
    for (const path of DOCS) {
      const h = await raw(s.url, 'HEAD', path);
      below500(h);
      assert.equal(h.status, 200);
      assert.equal(h.text, '');
      const g = await raw(s.url, 'GET', path, { 'content-type': 'application/json' }, '{"not":"expected"');
      below500(g);
      assert.equal(g.status, 200);
    }
  });
});

// ------------------------------------------------------ GET /oauth/authorize

const REDIRECT_TRICKS = [
  ['case change of the host', 'https://CLAUDE.ai/api/mcp/auth_callback'],
  ['case change of the path', 'https://claude.ai/api/mcp/Auth_Callback'],
  ['a trailing slash', 'https://claude.ai/api/mcp/auth_callback/'],
  ['dot segments', 'https://claude.ai/api/x/../mcp/auth_callback'],
  ['a single-dot segment', 'https://claude.ai/api/mcp/./auth_callback'],
  ['user info (claude.ai@evil.example)', 'https://claude.ai@evil.example/api/mcp/auth_callback'],
  ['a punycode look-alike host (xn--cude-7na.ai)', 'https://xn--cude-7na.ai/api/mcp/auth_callback'],
  ['a Unicode look-alike host (Cyrillic а)', 'https://cl\u0430ude.ai/api/mcp/auth_callback'],
  ['a port on a non-loopback host', 'https://claude.ai:8443/api/mcp/auth_callback'],
  ['the default port spelled out', 'https://claude.ai:443/api/mcp/auth_callback'],
  ['an open-redirect path (auth_callback/../../evil)', 'https://claude.ai/api/mcp/auth_callback/../../evil'],
  ['a scheme-relative URI (//evil.example)', '//evil.example'],
  ['another host that ends like it (claude.ai.evil.example)', 'https://claude.ai.evil.example/api/mcp/auth_callback'],
  ['an added query', 'https://claude.ai/api/mcp/auth_callback?next=https://evil.example'],
  ['an added fragment', 'https://claude.ai/api/mcp/auth_callback#x'],
  ['a percent-encoded path', 'https://claude.ai/api/mcp/auth%5Fcallback'],
  ['http instead of https', 'http://claude.ai/api/mcp/auth_callback'],
  ['IPv6 loopback spelled out in full', 'http://[0:0:0:0:0:0:0:1]:33418/cb'],
  ['another loopback name (localhost for 127.0.0.1)', 'http://localhost:33418/cb'],
  ['loopback with dot segments', 'http://127.0.0.1:33418/x/../cb'],
  ['loopback with user info', 'http://evil@127.0.0.1:33418/cb'],
  ['CR/LF in the redirect URI', 'https://claude.ai/api/mcp/auth_callback\r\nX-Injected: 1'],
];

for (const mode of MODES) {
  describe(`GET /oauth/authorize (${mode.name})`, () => {
    let s, client, multi;
    before(async () => {
      s = await startStack({ kv: mode.kv });
      client = await register(s.url);
      multi = await register(s.url, { redirect_uris: [CLAUDE, LOOPBACK, LOOPBACK6], client_name: XSS });
    });
    after(async () => { await s?.close(); });
    const get = (path, headers) => call(`${s.url}${path}`, { headers });

    describe('missing, empty and repeated parameters', () => {
      it('no client_id, or an empty one → the manual flow (302 to Attio)', async () => {
        for (const q of ['', '?client_id=', '?client_id=&client_id=', '?state=x']) {
          const r = await get(`/oauth/authorize${q}`);
          below500(r);
          assert.equal(r.status, 302, `${q}: ${show(r)}`);
          assert.ok(r.headers.location.startsWith(s.attio.urls.authorize));
        }
      });

      it('repeated client_id, redirect_uri or state → 400 page', async () => {
        for (const dup of [['client_id', 'other'], ['redirect_uri', CLAUDE], ['state', 'b'], ['code_challenge', pkcePair().challenge]]) {
          const r = await get(`${authorizeQuery(client, { state: 'a' })}&${dup[0]}=${encodeURIComponent(dup[1])}`);
          page(r, 400, /repeated/);
        }
      });

      it('a missing redirect_uri when several are registered → 400 page; with one registered → that one', async () => {
        page(await get(authorizeQuery(multi, { redirect_uri: undefined })), 400);
        page(await get(authorizeQuery(multi, { redirect_uri: '' })), 400);
        const one = await get(authorizeQuery(client, { redirect_uri: undefined }));
        below500(one);
        assert.equal(one.status, 200, 'consent page for the only registered URI');
      });

      it('missing or empty response_type → 302 invalid_request to the verified redirect URI', async () => {
        for (const rt of [undefined, '']) clientError(await get(authorizeQuery(client, { response_type: rt, state: 's1' })), REDIRECT, 'invalid_request', 's1');
        clientError(await get(authorizeQuery(client, { response_type: 'token', state: 's1' })), REDIRECT, 'unsupported_response_type', 's1');
      });
    });

    describe('oversize parameters', () => {
      it('a parameter over 8 KiB → 400 page', async () => {
        page(await get(authorizeQuery(client, { state: 'a'.repeat(8 * 1024 + 1) })), 400, /too long/);
        page(await get(`/oauth/authorize?client_id=${'A'.repeat(9000)}`), 400);
      });

      it('more than 64 parameters → 400 page', async () => {
        page(await get(`${authorizeQuery(client)}&${Array.from({ length: 64 }, (_, i) => `p${i}=1`).join('&')}`), 400, /too many/i);
      });

      it('a 64 KiB query → 400 page', async () => {
        page(await get(`${authorizeQuery(client)}&x=${'a'.repeat(64 * 1024)}`), 400);
      });

      it('state over 1024 characters → 302 invalid_request without the state', async () => {
        const loc = clientError(await get(authorizeQuery(client, { state: 's'.repeat(1025) })), REDIRECT, 'invalid_request');
        assert.equal(loc.searchParams.get('state'), null);
      });

      it('scope over 4096 characters → 302 invalid_scope', async () => {
        clientError(await get(authorizeQuery(client, { state: 's1', scope: 'a'.repeat(4097) })), REDIRECT, 'invalid_scope', 's1');
      });

      it('resource that is not an absolute URI, has a fragment or is over 2000 characters → 302 invalid_request', async () => {
        for (const resource of ['not a uri', XSS, 'https://mcp.example/#f', `https://mcp.example/${'a'.repeat(2000)}`]) {
          clientError(await get(authorizeQuery(client, { state: 's1', resource })), REDIRECT, 'invalid_request', 's1');
        }
      });
    });

    describe('malformed encoding', () => {
      it('bad percent-encoding (%zz, %, %4) → 400 page', async () => {
        for (const bad of ['%zz', '%', '%4']) page(await raw(s.url, 'GET', `${authorizeQuery(client)}&state=${bad}`), 400, /percent-encoded/);
      });

      it('percent-encoded bytes that are not UTF-8 (%ff, %C3%28) → 400 page', async () => {
        for (const bad of ['%ff', '%C3%28', '%ED%A0%80']) page(await raw(s.url, 'GET', `${authorizeQuery(client)}&state=${bad}`), 400, /percent-encoded/);
        page(await raw(s.url, 'GET', `/oauth/authorize?client_id=%ff`), 400);
      });

      it('raw non-UTF-8 bytes in the query → replaced with U+FFFD by the runtime: an unknown client_id → 400 page; in state → carried as text', async () => {
        page(await raw(s.url, 'GET', '/oauth/authorize?client_id=\xff\xfe&response_type=code'), 400);
        // workerd decodes the request line as UTF-8, replacing the invalid
        // bytes with U+FFFD, before the Worker sees the URL.
        const r = await raw(s.url, 'GET', `${authorizeQuery(client, { response_type: 'token' })}&state=\xff\xfe`);
        clientError(r, REDIRECT, 'unsupported_response_type', '\ufffd\ufffd');
      });
    });

    describe('forged, tampered, truncated and expired client ids', () => {
      const invalidClient = (r) => { page(r, 400, /not registered/); };

      it('forged client_id (random text, kv.-shaped, sealed under another key) → 400 page', async () => {
        const forged = OTHER.seal('client', { redirect_uris: [REDIRECT], auth: 'none', grant_types: ['authorization_code'], issued_at: now(), expires_at: 0 }, 0);
        for (const id of ['nope', `kv.${'A'.repeat(32)}`, 'kv.short', token43(), forged, XSS]) invalidClient(await get(authorizeQuery({ client_id: id })));
      });

      it('tampered and truncated client_id → 400 page', async () => {
        for (const id of [tamper(client.client_id), tamper(client.client_id, 5), client.client_id.slice(0, -3), client.client_id.slice(0, 10), `${client.client_id}x`]) {
          invalidClient(await get(authorizeQuery({ client_id: id })));
        }
      });

      it('a value sealed for another purpose (state, consent, code) as client_id → 400 page', async () => {
        const rec = { redirect_uris: [REDIRECT], auth: 'none', grant_types: ['authorization_code'], issued_at: now(), expires_at: 0 };
        for (const p of ['state', 'consent', 'code', 'stored']) invalidClient(await get(authorizeQuery({ client_id: BROKER.seal(p, rec, 0) })));
      });

      it('an expired client (a lapsed KV record; a sealed registration past its expiry) → 400 page', async () => {
        const rec = { redirect_uris: [REDIRECT], auth: 'none', grant_types: ['authorization_code'], issued_at: PAST - 10, expires_at: PAST };
        if (mode.kv) {
          const id = `kv.${randomBytes(24).toString('base64url')}`;
          await kvPut(s, `client:${id}`, JSON.stringify(rec));
          invalidClient(await get(authorizeQuery({ client_id: id })));
        }
        invalidClient(await get(authorizeQuery({ client_id: BROKER.seal('client', { ...rec, expires_at: 0 }, PAST) })));
      });

      if (mode.kv) {
        it('a deleted registration (KV record gone) → 400 page', async () => {
          const c = await register(s.url);
          const ns = await s.broker.mf.getKVNamespace('OAUTH_SESSIONS');
          await ns.delete(`client:${c.client_id}`);
          invalidClient(await get(authorizeQuery(c)));
        });
      }
    });

    describe('redirect URI tricks (client registered with claude.ai, 127.0.0.1 and [::1])', () => {
      for (const [name, uri] of REDIRECT_TRICKS) {
        it(`${name} → 400 page, never a redirect`, async () => {
          const r = await get(authorizeQuery(multi, { redirect_uri: uri, state: 's1' }));
          page(r, 400, /registered redirect URIs/);
          noInjectedHeader(r);
        });
      }

      it('loopback on another port, IPv4 and IPv6 → allowed (consent page)', async () => {
        for (const uri of ['http://127.0.0.1:5555/cb', 'http://127.0.0.1/cb', 'http://[::1]:5555/cb']) {
          const r = await get(authorizeQuery(multi, { redirect_uri: uri }));
          below500(r);
          assert.equal(r.status, 200, `${uri}: ${show(r)}`);
        }
      });
    });

    describe('PKCE challenge', () => {
      it('missing, plain, too short, too long or with bad characters → 302 invalid_request', async () => {
        const good = pkcePair().challenge;
        for (const extra of [{ code_challenge: undefined }, { code_challenge_method: 'plain' }, { code_challenge_method: undefined }, { code_challenge_method: 's256' },
          { code_challenge: good.slice(0, 42) }, { code_challenge: `${good}A` }, { code_challenge: `${good.slice(0, 42)}=` }, { code_challenge: `${good.slice(0, 41)}+/` }, { code_challenge: `${good.slice(0, 42)}\u00e9` }]) {
          clientError(await get(authorizeQuery(client, { state: 's1', ...extra })), REDIRECT, 'invalid_request', 's1');
        }
      });
    });

    describe('HTML, script and CR/LF in reflected fields', () => {
      it('HTML/script in state → percent-encoded in the Location, never raw in a page', async () => {
        const state = `${XSS}"'&<img src=x onerror=alert(1)>`;
        const loc = clientError(await get(authorizeQuery(client, { state, response_type: 'token' })), REDIRECT, 'unsupported_response_type', state);
        assert.ok(!loc.href.includes('<'), 'state is percent-encoded');
        const consent = await get(authorizeQuery(client, { state }));
        below500(consent);
        assert.equal(consent.status, 200);
        noRawMarkup(consent);
        assert.ok(!consent.text.includes('<img src=x'), 'no raw state in the consent page');
      });

      it('HTML/script in scope and resource → not reflected raw on the consent page', async () => {
        const r = await get(authorizeQuery(client, { scope: `read ${XSS}`, resource: `https://mcp.example/${XSS}` }));
        below500(r);
        assert.equal(r.status, 200, show(r));
        noRawMarkup(r);
      });

      it('HTML/script in client_name → escaped on the consent page', async () => {
        const r = await get(authorizeQuery(multi, { redirect_uri: CLAUDE }));
        below500(r);
        assert.equal(r.status, 200);
        noRawMarkup(r);
        assert.ok(r.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the name is shown escaped');
      });

      it('CR/LF in state → percent-encoded in the Location, no header injected', async () => {
        const state = 'a\r\nX-Injected: 1\r\nSet-Cookie: injected=1';
        const r = await get(authorizeQuery(client, { state, response_type: 'token' }));
        const loc = clientError(r, REDIRECT, 'unsupported_response_type', state);
        assert.ok(r.headers.location.includes('%0D%0A'), loc.href);
        noInjectedHeader(r);
        const raw1 = await raw(s.url, 'GET', `${authorizeQuery(client, { response_type: 'token' })}&state=a%0d%0aX-Injected:%201`);
        below500(raw1);
        noInjectedHeader(raw1);
      });

      it('HTML/script and CR/LF in client_id → 400 page, not reflected', async () => {
        for (const id of [XSS, 'a\r\nX-Injected: 1']) {
          const r = await get(authorizeQuery({ client_id: id }));
          page(r, 400);
          noRawMarkup(r);
          noInjectedHeader(r);
        }
      });
    });

    describe('tampered cookies', () => {
      it('a tampered or garbage approval cookie → the consent page again (the approval is not trusted)', async () => {
        const browser = new Browser();
        await clientFlow(s.url, browser, { client, redirectUri: REDIRECT });
        const appr = browser.jar.get(APPROVALS);
        assert.ok(appr, 'an approval cookie was set');
        const ok = await raw(s.url, 'GET', authorizeQuery(client), { cookie: `${APPROVALS}=${appr}` });
        assert.equal(ok.status, 302, 'the untampered approval skips the consent page');
        for (const bad of [tamper(appr, 3), tamper(appr, appr.length - 3), appr.slice(0, -4), `${appr}.x`, '....', '%ff%fe', `\xff\xfe`, `${appr.split('.')[0]}.${'A'.repeat(43)}`]) {
          const r = await raw(s.url, 'GET', authorizeQuery(client), { cookie: `${APPROVALS}=${bad}` });
          below500(r);
          assert.equal(r.status, 200, `approval ${JSON.stringify(bad)} must not skip consent: ${show(r)}`);
        }
      });

      it('a browser cookie with control or non-ASCII bytes, no "=", or 32 KiB → consent page with a fresh cookie', async () => {
        for (const cookie of [`${COOKIE}=\x01\x02`, `${COOKIE}=\xff\xfe`, 'garbage;;;=;==', `${COOKIE}=${'A'.repeat(32 * 1024)}`, `${COOKIE}=a; ${COOKIE}=b`, `${COOKIE}=${XSS}`]) {
          const r = await raw(s.url, 'GET', authorizeQuery(client), { cookie });
          below500(r);
          assert.equal(r.status, 200, `${JSON.stringify(cookie.slice(0, 40))}: ${show(r)}`);
          const set = r.setCookies.find((c) => c.startsWith(`${COOKIE}=`));
          assert.match(set ?? '', new RegExp(`^${COOKIE}=[A-Za-z0-9_-]{43};`), 'a fresh, well-formed cookie');
          noRawMarkup(r);
        }
      });
    });
  });
}

// ------------------------------------------ POST /oauth/authorize (consent)

for (const mode of MODES) {
  describe(`POST /oauth/authorize, the consent form (${mode.name})`, () => {
    let s, client;
    before(async () => {
      s = await startStack({ kv: mode.kv });
      client = await register(s.url);
    });
    after(async () => { await s?.close(); });

    /** A fresh consent page in a new browser: its form value and the browser. */
    async function consentIn(browser = new Browser()) {
      const r = await asBrowser(browser, `${s.url}${authorizeQuery(client, { state: 'st' })}`);
      assert.equal(r.status, 200, show(r));
      return { browser, consent: consentValue(r.text) };
    }
    const submit = (browser, body, headers = { 'content-type': FORM }) => asBrowser(browser, `${s.url}/oauth/authorize`, { method: 'POST', headers, body });

    describe('missing, empty and repeated parameters', () => {
      it('missing consent or an empty body → 400 page', async () => {
        const { browser } = await consentIn();
        for (const body of ['', 'action=approve', 'consent=&action=approve', '&&&']) page(await submit(browser, body), 400, /incomplete/);
      });

      it('missing, empty or unknown action → 400 page', async () => {
        const { browser, consent } = await consentIn();
        for (const action of [undefined, '', 'APPROVE', 'yes', XSS]) {
          const r = await submit(browser, form(action === undefined ? { consent } : { consent, action }));
          page(r, 400, /Approve or Deny/);
          noRawMarkup(r);
        }
      });

      it('repeated consent or action → 400 page', async () => {
        const { browser, consent } = await consentIn();
        page(await submit(browser, form([['consent', consent], ['consent', consent], ['action', 'approve']])), 400, /repeated/);
        page(await submit(browser, form([['consent', consent], ['action', 'deny'], ['action', 'approve']])), 400, /repeated/);
      });
    });

    describe('oversize body', () => {
      it('a body over 16 KiB → 413 page', async () => {
        const { browser, consent } = await consentIn();
        page(await submit(browser, form({ consent, action: 'approve', pad: 'a'.repeat(17 * 1024) })), 413);
      });

      it('a parameter over 8 KiB → 400 page', async () => {
        const { browser } = await consentIn();
        page(await submit(browser, form({ consent: 'A'.repeat(9000), action: 'approve' })), 400, /too long/);
      });
    });

    describe('Content-Type and encoding', () => {
      it('a JSON body → 400 page (the body is read as a form)', async () => {
        const { browser, consent } = await consentIn();
        page(await submit(browser, JSON.stringify({ consent, action: 'approve' }), { 'content-type': 'application/json' }), 400);
      });

      it('no, wrong or malformed Content-Type with a form body → accepted (the body is read as a form)', async () => {
        for (const ct of [undefined, 'text/plain', ';;;=', 'application/x-www-form-urlencoded; charset=\xff']) {
          const { browser, consent } = await consentIn();
          const headers = ct === undefined ? {} : { 'content-type': ct };
          const r = await raw(s.url, 'POST', '/oauth/authorize', { ...headers, cookie: browser.jar.header(`${s.url}/oauth/authorize`) }, form({ consent, action: 'deny' }));
          clientError(r, REDIRECT, 'access_denied', 'st');
        }
      });

      it('bad percent-encoding or bytes that are not UTF-8 → 400 page', async () => {
        const { browser, consent } = await consentIn();
        for (const body of [`consent=${consent}&action=%zz`, `consent=${consent}%&action=approve`, `consent=${consent}&action=%ff`, Buffer.concat([Buffer.from(`consent=${consent}&action=`), Buffer.from([0xff, 0xfe])])]) {
          page(await submit(browser, body), 400, /percent-encoded/);
        }
      });
    });

    describe('forged, tampered, truncated, expired and replayed consent', () => {
      it('forged consent (random, sealed under another key) → 400 page', async () => {
        const { browser } = await consentIn();
        const cookie = browser.jar.get(COOKIE);
        const pending = { browser: OTHER.browserHash(cookie), request: clientRequest(client.client_id, pkcePair().challenge) };
        for (const consent of [token43(), 'A'.repeat(300), OTHER.seal('consent', pending, now() + 600)]) {
          page(await submit(browser, form({ consent, action: 'approve' })), 400, /expired or is not valid/);
        }
      });

      it('tampered or truncated consent → 400 page', async () => {
        const { browser, consent } = await consentIn();
        for (const bad of [tamper(consent), tamper(consent, 3), tamper(consent, consent.length - 2), consent.slice(0, -4), consent.slice(0, 40), `${consent}AA`]) {
          page(await submit(browser, form({ consent: bad, action: 'approve' })), 400, /expired or is not valid/);
        }
      });

      it('expired consent (sealed with a past expiry) → 400 page', async () => {
        const { browser } = await consentIn();
        const pending = { browser: BROKER.browserHash(browser.jar.get(COOKIE)), request: clientRequest(client.client_id, pkcePair().challenge) };
        page(await submit(browser, form({ consent: BROKER.seal('consent', pending, PAST), action: 'approve' })), 400, /expired or is not valid/);
        // the same value with a live expiry is accepted: only the expiry differs
        clientError(await submit(browser, form({ consent: BROKER.seal('consent', pending, now() + 600), action: 'deny' })), REDIRECT, 'access_denied', 'st');
      });

      it('a value sealed for another purpose (state, client, code) as consent → 400 page', async () => {
        const { browser } = await consentIn();
        const pending = { browser: BROKER.browserHash(browser.jar.get(COOKIE)), request: clientRequest(client.client_id, pkcePair().challenge) };
        for (const p of ['state', 'client', 'code', 'stored']) page(await submit(browser, form({ consent: BROKER.seal(p, pending, now() + 600), action: 'approve' })), 400, /expired or is not valid/);
      });

      it('replayed consent: in another browser → 400 page; again in the same browser → a new sign-in (not single use, bound to the browser)', async () => {
        const { browser, consent } = await consentIn();
        clientError(await submit(browser, form({ consent, action: 'deny' })), REDIRECT, 'access_denied', 'st');
        page(await submit(new Browser(), form({ consent, action: 'approve' })), 400);
        const attacker = new Browser();
        await asBrowser(attacker, `${s.url}/oauth/authorize`); // its own browser cookie
        page(await submit(attacker, form({ consent, action: 'approve' })), 400, /not issued to this browser/);
        const again = await submit(browser, form({ consent, action: 'approve' }));
        below500(again);
        assert.equal(again.status, 302);
        assert.ok(again.headers.location.startsWith(s.attio.urls.authorize));
      });
    });

    describe('tampered cookies', () => {
      it('a missing, tampered or garbage browser cookie → 400 page', async () => {
        const { browser, consent } = await consentIn();
        const good = browser.jar.get(COOKIE);
        for (const cookie of [undefined, `${COOKIE}=${tamper(good)}`, `${COOKIE}=${good.slice(0, -1)}`, `${COOKIE}=\x01\xff`, `${COOKIE}=`, `other=${good}`]) {
          const r = await raw(s.url, 'POST', '/oauth/authorize', { 'content-type': FORM, ...(cookie ? { cookie } : {}) }, form({ consent, action: 'approve' }));
          page(r, 400);
        }
      });
    });
  });
}

// ------------------------------------------------------- GET /oauth/callback

for (const mode of MODES) {
  describe(`GET /oauth/callback (${mode.name})`, () => {
    let s, client;
    before(async () => {
      s = await startStack({ kv: mode.kv });
      client = await register(s.url);
    });
    after(async () => { await s?.close(); });
    const START_AGAIN = /expired or was already used/;

    describe('missing, empty and repeated parameters', () => {
      it('missing or empty state → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        for (const u of [withParam(callbackUrl, 'state', undefined), withParam(callbackUrl, 'state', ''), new URL(`${s.url}/oauth/callback`)]) {
          page(await asBrowser(browser, u), 400, START_AGAIN);
        }
      });

      it('repeated state or code → 400 page', async () => {
        const { browser, callbackUrl, state } = await startManual(s);
        page(await asBrowser(browser, `${callbackUrl}&state=${encodeURIComponent(state)}x`), 400, START_AGAIN);
        page(await asBrowser(browser, `${callbackUrl}&code=other`), 400, START_AGAIN);
      });

      it('a valid state with neither code nor error → 400 page (a malformed callback, not an upstream failure)', async () => {
        const { browser, callbackUrl } = await startManual(s);
        const u = withParam(callbackUrl, 'code', undefined);
        const r = await asBrowser(browser, u);
        page(r, 400);
      });
    });

    describe('oversize parameters', () => {
      it('state or code over 8 KiB → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        page(await asBrowser(browser, withParam(callbackUrl, 'state', 'A'.repeat(9000))), 400, START_AGAIN);
        page(await asBrowser(browser, withParam(callbackUrl, 'code', 'c'.repeat(9000))), 400, START_AGAIN);
      });

      it('more than 64 parameters → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        page(await asBrowser(browser, `${callbackUrl}&${Array.from({ length: 64 }, (_, i) => `p${i}=1`).join('&')}`), 400);
      });
    });

    describe('malformed encoding', () => {
      it('bad percent-encoding and percent-encoded non-UTF-8 → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        for (const bad of ['%zz', '%', '%ff', '%C3%28']) page(await asBrowser(browser, `${callbackUrl}&error_description=${bad}`), 400, START_AGAIN);
      });

      it('raw non-UTF-8 bytes in state or code → 400 page', async () => {
        for (const q of ['state=\xff\xfe&code=x', 'state=a&code=\xc3\x28', '\xff=\xfe']) page(await raw(s.url, 'GET', `/oauth/callback?${q}`), 400, START_AGAIN);
      });
    });

    describe('forged, tampered, truncated, expired and replayed state', () => {
      it('forged state (random 43 characters, random text, sealed under another key) → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        const exchanges = tokenCalls(s);
        const session = { browser: OTHER.browserHash(browser.jar.get(COOKIE)), verifier: 'v'.repeat(43), expires_at: now() + 600 };
        for (const state of [token43(), 'forged', XSS, OTHER.seal('state', session, now() + 600)]) {
          const r = await asBrowser(browser, withParam(callbackUrl, 'state', state));
          page(r, 400, START_AGAIN);
          noRawMarkup(r);
        }
        assert.equal(tokenCalls(s), exchanges, 'no code exchange for a forged state');
      });

      it('tampered or truncated state → 400 page', async () => {
        const { browser, callbackUrl, state } = await startManual(s);
        for (const bad of [tamper(state), tamper(state, 2), state.slice(0, -1), state.slice(0, 20), `${state}A`]) {
          page(await asBrowser(browser, withParam(callbackUrl, 'state', bad)), 400, START_AGAIN);
        }
      });

      it('expired state (seal or record past its expiry) → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        const session = { browser: BROKER.browserHash(browser.jar.get(COOKIE)), verifier: 'v'.repeat(43), expires_at: PAST };
        const states = [];
        if (mode.kv) {
          for (const [seal, rec] of [[PAST, session], [0, session]]) {
            const state = token43();
            await kvPut(s, `session:${state}`, BROKER.seal('stored', rec, seal));
            states.push(state);
          }
        } else {
          states.push(BROKER.seal('state', session, PAST), BROKER.seal('state', session, 0));
        }
        for (const state of states) page(await asBrowser(browser, withParam(callbackUrl, 'state', state)), 400, START_AGAIN);
        // the same session with a live expiry is accepted: only the expiry differs
        const live = { ...session, expires_at: now() + 600 };
        let liveState;
        if (mode.kv) { liveState = token43(); await kvPut(s, `session:${liveState}`, BROKER.seal('stored', live, now() + 600)); } else liveState = BROKER.seal('state', live, now() + 600);
        const ok = await asBrowser(browser, withParam(withParam(callbackUrl, 'state', liveState), 'code', undefined) + '&error=access_denied');
        page(ok, 403);
      });

      it('a value sealed for another purpose (client id, consent, code) as state → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        const session = { browser: BROKER.browserHash(browser.jar.get(COOKIE)), verifier: 'v'.repeat(43), expires_at: now() + 600 };
        for (const p of ['client', 'consent', 'code', mode.kv ? 'state' : 'stored']) {
          page(await asBrowser(browser, withParam(callbackUrl, 'state', BROKER.seal(p, session, now() + 600))), 400, START_AGAIN);
        }
        page(await asBrowser(browser, withParam(callbackUrl, 'state', client.client_id)), 400, START_AGAIN);
      });

      it('replayed state → 400 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        const first = await asBrowser(browser, callbackUrl);
        assert.equal(first.status, 200, show(first));
        page(await asBrowser(browser, callbackUrl), 400, START_AGAIN);
      });
    });

    describe('tampered cookies', () => {
      it("a missing, tampered, garbage or another browser's cookie → 400 page, no code exchange", async () => {
        const { browser, callbackUrl } = await startManual(s);
        const other = await startManual(s);
        const exchanges = tokenCalls(s);
        const good = browser.jar.get(COOKIE);
        for (const cookie of [undefined, `${COOKIE}=${tamper(good)}`, `${COOKIE}=${good.slice(0, -2)}`, `${COOKIE}=\x01\xff`, `${COOKIE}=${other.browser.jar.get(COOKIE)}`, `${COOKIE}=${'A'.repeat(32 * 1024)}`]) {
          page(await raw(s.url, 'GET', `${callbackUrl.pathname}${callbackUrl.search}`, cookie ? { cookie } : {}), 400);
        }
        assert.equal(tokenCalls(s), exchanges, 'no code exchange without the right cookie');
      });
    });

    describe('HTML, script and CR/LF from Attio', () => {
      it('HTML/script in error_description (manual flow, access_denied) → escaped on the 403 page', async () => {
        const { browser, callbackUrl } = await startManual(s);
        const u = withParam(withParam(callbackUrl, 'code', undefined), 'error', 'access_denied');
        u.searchParams.set('error_description', `${XSS}<img src=x onerror=alert(1)>`);
        const r = await asBrowser(browser, u);
        page(r, 403, /denied/);
        noRawMarkup(r);
        assert.ok(!r.text.includes('<img src=x'), 'no raw markup');
        assert.ok(r.text.includes('&lt;script&gt;'), 'shown escaped');
      });

      it('HTML and CR/LF in error and error_description (client flow) → a fixed description in the redirect, the client state intact', async () => {
        const browser = new Browser();
        const state = 'keep\r\n<me>';
        const q = authorizeQuery(client, { state });
        const pageRes = await asBrowser(browser, `${s.url}${q}`);
        const approve = await asBrowser(browser, `${s.url}/oauth/authorize`, { method: 'POST', headers: { 'content-type': FORM }, body: form({ consent: consentValue(pageRes.text), action: 'approve' }) });
        const attioUrl = new URL(approve.headers.location);
        const cb = new URL(`${s.url}/oauth/callback`);
        cb.searchParams.set('state', attioUrl.searchParams.get('state'));
        cb.searchParams.set('error', `access_denied\r\nX-Injected: 1${XSS}`);
        cb.searchParams.set('error_description', `${XSS}\r\nX-Injected: 1`);
        const r = await asBrowser(browser, cb);
        const loc = clientError(r, REDIRECT, 'server_error', state);
        assert.ok(!loc.href.includes('<'), 'nothing from Attio reflected raw');
        assert.ok(!loc.searchParams.get('error_description').includes('script'), 'Attio\'s description is not passed on');
        noInjectedHeader(r);
      });

      it('CR/LF and HTML in state at the callback → 400 page, no header injected', async () => {
        const r = await call(`${s.url}/oauth/callback?state=${encodeURIComponent(`a\r\nX-Injected: 1\r\n${XSS}`)}&code=x`);
        page(r, 400, START_AGAIN);
        noInjectedHeader(r);
        noRawMarkup(r);
      });
    });
  });
}

// ---------------------------------------------------------- POST /oauth/token

for (const mode of MODES) {
  describe(`POST /oauth/token (${mode.name})`, () => {
    let s, client, other, confidential;
    before(async () => {
      s = await startStack({ kv: mode.kv });
      client = await register(s.url);
      other = await register(s.url);
      confidential = await register(s.url, { token_endpoint_auth_method: 'client_secret_post' });
    });
    after(async () => { await s?.close(); });
    const post = (body, headers) => postForm(s.url, '/oauth/token', body, headers);

    describe('Content-Type', () => {
      it('missing Content-Type → 400 invalid_request', async () => {
        jsonError(await raw(s.url, 'POST', '/oauth/token', {}, 'grant_type=refresh_token&refresh_token=x'), 400, 'invalid_request');
      });

      it('a wrong Content-Type (text/plain, multipart/form-data, application/xml) → 400 invalid_request', async () => {
        for (const ct of ['text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'application/x-www-form-urlencodedx']) {
          jsonError(await post('grant_type=refresh_token&refresh_token=x', { 'content-type': ct }), 400, 'invalid_request');
        }
      });

      it('a malformed Content-Type header (";;;=", "/", control and non-ASCII bytes) → 400 invalid_request', async () => {
        for (const ct of [';;;=', '/', '=', 'application/json\x01', 'application/x-www-form-urlencoded\xff', '\xff\xfe']) {
          jsonError(await raw(s.url, 'POST', '/oauth/token', { 'content-type': ct }, 'grant_type=refresh_token&refresh_token=x'), 400, 'invalid_request');
        }
      });

      it('parameters, odd case and junk after the media type → still a form', async () => {
        for (const ct of ['application/x-www-form-urlencoded; charset=utf-8', 'APPLICATION/X-WWW-FORM-URLENCODED', 'application/x-www-form-urlencoded;;; =junk']) {
          jsonError(await post('grant_type=password', { 'content-type': ct }), 400, 'unsupported_grant_type');
        }
      });
    });

    describe('malformed bodies', () => {
      it('malformed JSON, or JSON that is not an object of strings → 400 invalid_request', async () => {
        for (const body of ['{', '{"grant_type":', '[1,2]', 'null', '"grant_type"', '42', '{"grant_type":{"a":1}}', '{"grant_type":["refresh_token"]}', '{"grant_type":null}', '{"a":1e999999}', '\ufeff{}', '{"a":"\\ud800"}', `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`]) {
          jsonError(await postJson(s.url, '/oauth/token', body), 400, 'invalid_request');
        }
      });

      it('JSON with a repeated key → 400 invalid_request (parameters must not repeat, RFC 6749 §3.2)', async () => {
        jsonError(await postJson(s.url, '/oauth/token', '{"grant_type":"password","grant_type":"refresh_token","refresh_token":"x"}'), 400, 'invalid_request');
        jsonError(await postJson(s.url, '/oauth/token', '{"grant_type":"refresh_token","refresh_token":"a","refresh_token":"b"}'), 400, 'invalid_request');
      });

      it('bad percent-encoding in a form (%zz, %, %4) → 400 invalid_request', async () => {
        for (const body of ['grant_type=%zz', 'grant_type=refresh_token&refresh_token=%', 'grant_type=refresh_token&refresh_token=%4', '%zz=1']) {
          jsonError(await post(body), 400, 'invalid_request');
        }
      });

      it('bytes that are not UTF-8, percent-encoded or raw → 400 invalid_request', async () => {
        jsonError(await post('grant_type=refresh_token&refresh_token=%ff%fe'), 400, 'invalid_request');
        jsonError(await post(Buffer.from([...Buffer.from('grant_type=refresh_token&refresh_token='), 0xff, 0xfe])), 400, 'invalid_request');
        jsonError(await postJson(s.url, '/oauth/token', Buffer.from([...Buffer.from('{"grant_type":"'), 0xff, ...Buffer.from('"}')])), 400, 'invalid_request');
      });

      it('a body declared chunked but malformed → 400 invalid_request', async () => {
        const r = await rawRequest(s.url, Buffer.from(`POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`));
        jsonError(r, 400, 'invalid_request');
      });
    });

    describe('missing, empty and repeated parameters', () => {
      it('missing or empty grant_type, code or refresh_token → 400 invalid_request', async () => {
        for (const f of [{}, { grant_type: '' }, { grant_type: 'authorization_code', client_id: client.client_id }, { grant_type: 'authorization_code', code: '', client_id: client.client_id },
          { grant_type: 'refresh_token' }, { grant_type: 'refresh_token', refresh_token: '' }]) {
          jsonError(await post(f), 400, 'invalid_request');
        }
      });

      it('an authorization_code grant without client_id → 401 invalid_client', async () => {
        const c = await codeFor(s, client);
        jsonError(await post({ grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT, code_verifier: c.verifier }), 401, 'invalid_client');
      });

      it('repeated parameters (grant_type, code, client_id, code_verifier) → 400 invalid_request', async () => {
        for (const extra of [['grant_type', 'refresh_token'], ['code', 'other'], ['client_id', other.client_id], ['code_verifier', 'a'.repeat(43)]]) {
          const body = `${form({ grant_type: 'authorization_code', code: 'c', client_id: client.client_id, code_verifier: 'b'.repeat(43) })}&${form([extra])}`;
          const r = await post(body);
          jsonError(r, 400, 'invalid_request');
          assert.match(r.json.error_description, /repeated/);
        }
      });

      it('an unknown grant_type → 400 unsupported_grant_type', async () => {
        for (const g of ['password', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'AUTHORIZATION_CODE', XSS]) {
          const r = await post({ grant_type: g });
          jsonError(r, 400, 'unsupported_grant_type');
          noRawMarkup(r);
        }
      });
    });

    describe('oversize parameters and bodies', () => {
      it('a parameter over 8 KiB → 400 invalid_request', async () => {
        jsonError(await post({ grant_type: 'refresh_token', refresh_token: 'r'.repeat(8 * 1024 + 1) }), 400, 'invalid_request');
      });

      it('more than 64 parameters → 400 invalid_request', async () => {
        jsonError(await post(Array.from({ length: 65 }, (_, i) => `p${i}=1`).join('&')), 400, 'invalid_request');
        jsonError(await postJson(s.url, '/oauth/token', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`p${i}`, '1']))), 400, 'invalid_request');
      });

      it('a body over 64 KiB (Content-Length or chunked) → 413 invalid_request', async () => {
        jsonError(await post(`grant_type=refresh_token&pad=${'a'.repeat(64 * 1024)}`), 413, 'invalid_request');
        const chunks = Array.from({ length: 10 }, () => `2710\r\n${'a'.repeat(10000)}\r\n`).join('');
        const r = await rawRequest(s.url, Buffer.from(`POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`));
        jsonError(r, 413, 'invalid_request');
      });
    });

    describe('client authentication', () => {
      it('a Bearer or unknown Authorization scheme → 401 invalid_client', async () => {
        for (const authorization of ['Bearer abc', 'Digest x', 'Basic', XSS]) {
          jsonError(await post({ grant_type: 'refresh_token', refresh_token: 'x' }, { authorization }), 401, 'invalid_client');
        }
      });

      it('malformed Basic credentials (not base64, no colon, not UTF-8) → 401 invalid_client', async () => {
        for (const cred of ['%%%', '!!!', Buffer.from('nocolon').toString('base64'), Buffer.from([0xff, 0x3a, 0xfe]).toString('base64')]) {
          jsonError(await post({ grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: `Basic ${cred}` }), 401, 'invalid_client');
        }
        jsonError(await raw(s.url, 'POST', '/oauth/token', { 'content-type': FORM, authorization: 'Basic \xff\xfe' }, 'grant_type=refresh_token&refresh_token=x'), 401, 'invalid_client');
      });

      it('Basic and client_secret together, or a body client_id other than Basic → 400 invalid_request', async () => {
        const basic = `Basic ${Buffer.from(`${encodeURIComponent(confidential.client_id)}:${encodeURIComponent(confidential.client_secret)}`).toString('base64')}`;
        jsonError(await post({ grant_type: 'refresh_token', refresh_token: 'x', client_secret: 'y' }, { authorization: basic }), 400, 'invalid_request');
        jsonError(await post({ grant_type: 'refresh_token', refresh_token: 'x', client_id: client.client_id }, { authorization: basic }), 400, 'invalid_request');
      });

      it('a wrong, empty-looking or another client\'s secret → 401 invalid_client', async () => {
        const other2 = await register(s.url, { token_endpoint_auth_method: 'client_secret_post' });
        for (const secret of ['wrong', ' ', other2.client_secret, confidential.client_secret.slice(0, -1), `${confidential.client_secret} `, ATTIO_SECRET]) {
          jsonError(await post({ grant_type: 'refresh_token', refresh_token: 'x', client_id: confidential.client_id, client_secret: secret }), 401, 'invalid_client');
        }
      });
    });

    describe('forged, tampered, truncated and expired client ids', () => {
      it('forged client_id (random, kv.-shaped, sealed under another key) → 401 invalid_client', async () => {
        const forged = OTHER.seal('client', { redirect_uris: [REDIRECT], auth: 'none', grant_types: ['authorization_code'], issued_at: now(), expires_at: 0 }, 0);
        for (const id of ['nope', `kv.${'A'.repeat(32)}`, token43(), forged, XSS, 'a'.repeat(8000)]) {
          const r = await post({ grant_type: 'authorization_code', code: 'c', client_id: id, code_verifier: 'v'.repeat(43) });
          jsonError(r, 401, 'invalid_client');
          noRawMarkup(r);
        }
      });

      it('tampered or truncated client_id → 401 invalid_client', async () => {
        for (const id of [tamper(client.client_id), client.client_id.slice(0, -2), `${client.client_id}A`]) {
          jsonError(await post({ grant_type: 'authorization_code', code: 'c', client_id: id, code_verifier: 'v'.repeat(43) }), 401, 'invalid_client');
        }
      });

      it('an expired client or a value sealed for another purpose as client_id → 401 invalid_client', async () => {
        const rec = { redirect_uris: [REDIRECT], auth: 'none', grant_types: ['authorization_code'], issued_at: PAST - 10, expires_at: PAST };
        const ids = [BROKER.seal('client', { ...rec, expires_at: 0 }, PAST), BROKER.seal('state', rec, 0), BROKER.seal('code', rec, 0)];
        if (mode.kv) {
          const id = `kv.${randomBytes(24).toString('base64url')}`;
          await kvPut(s, `client:${id}`, JSON.stringify(rec));
          ids.push(id);
        }
        for (const id of ids) jsonError(await post({ grant_type: 'authorization_code', code: 'c', client_id: id, code_verifier: 'v'.repeat(43) }), 401, 'invalid_client');
      });
    });

    describe('forged, tampered, truncated, expired and replayed codes', () => {
      it('forged code (random, 43 characters, sealed under another key) → 400 invalid_grant', async () => {
        const c = await codeFor(s, client);
        const grant = { request: clientRequest(client.client_id, 'x'.repeat(43)), grant: { access_token: 'forged' }, expires_at: now() + 600 };
        for (const code of ['nope', token43(), OTHER.seal('code', grant, now() + 600), XSS]) {
          const r = await post({ ...c.base, code });
          jsonError(r, 400, 'invalid_grant');
          assert.equal(r.json.access_token, undefined);
        }
      });

      it('tampered or truncated code → 400 invalid_grant', async () => {
        const c = await codeFor(s, client);
        for (const code of [tamper(c.code), tamper(c.code, 1), c.code.slice(0, -1), c.code.slice(0, 20), `${c.code}A`]) {
          jsonError(await post({ ...c.base, code }), 400, 'invalid_grant');
        }
        // the untouched code still works afterwards
        const ok = await post(c.base);
        assert.equal(ok.status, 200, show(ok));
      });

      it('expired code (seal or record past its expiry) → 400 invalid_grant', async () => {
        const { verifier, challenge } = pkcePair();
        const grant = (exp) => ({ request: clientRequest(client.client_id, challenge), grant: { access_token: 'attio_at_expired' }, expires_at: exp });
        const codes = [];
        for (const [record, seal] of [[PAST, PAST], [PAST, 0], [now() + 600, PAST]]) {
          if (mode.kv) {
            const code = token43();
            await kvPut(s, `code:${BROKER.storageHash(code)}`, BROKER.seal('code', grant(record), seal));
            codes.push(code);
          } else codes.push(BROKER.seal('code', grant(record), seal));
        }
        for (const code of codes) {
          const r = await post({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: verifier });
          jsonError(r, 400, 'invalid_grant');
        }
      });

      it('a value sealed for another purpose as code → 400 invalid_grant', async () => {
        const { verifier, challenge } = pkcePair();
        const grant = { request: clientRequest(client.client_id, challenge), grant: { access_token: 'attio_at_x' }, expires_at: now() + 600 };
        for (const p of ['state', 'consent', 'client', 'stored']) {
          jsonError(await post({ grant_type: 'authorization_code', code: BROKER.seal(p, grant, now() + 600), redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: verifier }), 400, 'invalid_grant');
        }
      });

      it(mode.kv ? 'replayed code → 400 invalid_grant (used once)' : 'replayed code → 400 invalid_grant (stateless: used once per isolate)', async () => {
        const c = await codeFor(s, client);
        const first = await post(c.base);
        assert.equal(first.status, 200, show(first));
        const again = await post(c.base);
        jsonError(again, 400, 'invalid_grant');
      });

      it('a code issued to another client → 400 invalid_grant', async () => {
        const c = await codeFor(s, client);
        jsonError(await post({ ...c.base, client_id: other.client_id }), 400, 'invalid_grant');
      });
    });

    describe('PKCE verifier', () => {
      const cases = [
        ['wrong', () => pkcePair().verifier, 'invalid_grant'],
        ['too short (42 characters)', (v) => v.slice(0, 42), 'invalid_grant'],
        ['too long (129 characters)', (v) => `${v}${'a'.repeat(129 - v.length)}`, 'invalid_grant'],
        ['bad characters (+, /, =, space, é, %00)', (v) => `${v.slice(0, 40)}+/=`, 'invalid_grant'],
        ['missing', () => undefined, 'invalid_request'],
        ['empty', () => '', 'invalid_request'],
      ];
      for (const [name, change, error] of cases) {
        it(`${name} → 400 ${error}`, async () => {
          const c = await codeFor(s, client);
          const f = { ...c.base, code_verifier: change(c.verifier) };
          if (f.code_verifier === undefined) delete f.code_verifier;
          jsonError(await post(f), 400, error);
          if (name.startsWith('bad characters')) {
            for (const v of [`${c.verifier.slice(0, 42)} `, `${c.verifier.slice(0, 42)}\u00e9`, `${c.verifier.slice(0, 42)}\u0000`, `${c.verifier.slice(0, 42)}<`]) {
              jsonError(await post({ ...c.base, code_verifier: v }), 400, 'invalid_grant');
            }
          }
        });
      }
    });

    describe('redirect URI tricks', () => {
      it('a redirect_uri that differs from the authorization request (slash, case, dot segment, port, user info) → 400 invalid_grant', async () => {
        for (const uri of [`${REDIRECT}/`, REDIRECT.replace('callback', 'Callback'), 'http://127.0.0.1:9/x/../callback', 'http://127.0.0.1:10/callback', 'http://a@127.0.0.1:9/callback', 'http://localhost:9/callback']) {
          const c = await codeFor(s, client);
          jsonError(await post({ ...c.base, redirect_uri: uri }), 400, 'invalid_grant');
        }
      });

      it('a missing redirect_uri when the authorization request had one → 400 invalid_request', async () => {
        const c = await codeFor(s, client);
        const f = { ...c.base };
        delete f.redirect_uri;
        jsonError(await post(f), 400, 'invalid_request');
      });
    });

    describe('HTML, script and CR/LF in parameters', () => {
      it('HTML/script in every parameter → never reflected in the error', async () => {
        for (const key of ['grant_type', 'code', 'client_id', 'redirect_uri', 'code_verifier', 'refresh_token', 'scope', 'resource', `x${XSS}`]) {
          const f = { grant_type: 'authorization_code', code: 'c', client_id: client.client_id, code_verifier: 'v'.repeat(43), [key]: XSS };
          const r = await post(f);
          below500(r);
          assert.ok(r.status >= 400, show(r));
          noRawMarkup(r);
        }
      });

      it('CR/LF and HTML in a refresh token → forwarded form-encoded; Attio refuses → 400 invalid_grant, nothing reflected', async () => {
        const r = await post({ grant_type: 'refresh_token', refresh_token: `x\r\nX-Injected: 1\r\n${XSS}` });
        jsonError(r, 400, 'invalid_grant');
        noInjectedHeader(r);
        noRawMarkup(r);
      });
    });
  });
}

// ------------------------------------------------------- POST /oauth/register

const REGISTER_TRICKS = [
  ['user info (claude.ai@evil.example)', 'https://claude.ai@evil.example/api/mcp/auth_callback'],
  ['user info with an empty password', 'https://user:@evil.example/cb'],
  ['a scheme-relative URI (//evil.example)', '//evil.example/cb'],
  ['a relative URI', '/oauth/callback'],
  ['http on a non-loopback host, with a port', 'http://evil.example:8080/cb'],
  ['http on a private address', 'http://192.168.0.1/cb'],
  ['a host that merely starts like loopback (localhost.evil.example)', 'http://localhost.evil.example/cb'],
  ['a trailing-dot localhost (localhost.)', 'http://localhost./cb'],
  ['a fragment', 'https://claude.ai/api/mcp/auth_callback#frag'],
  ['javascript:', 'javascript:alert(1)'],
  ['javascript: dressed as a host', 'javascript://claude.ai/%0aalert(1)'],
  ['data:', 'data:text/html,<script>alert(1)</script>'],
  ['file:', 'file:///etc/passwd'],
  ['a bare private-use scheme', 'cursor:'],
  ['whitespace', 'https://claude.ai/api/mcp/auth callback'],
  ['CR/LF', 'https://claude.ai/cb\r\nX-Injected: 1'],
  ['over 2000 characters', `https://claude.ai/${'a'.repeat(2000)}`],
];

const ALLOW_TRICKS = [
  ['a punycode look-alike of an allowed host (xn--cude-7na.ai)', 'https://xn--cude-7na.ai/api/mcp/auth_callback'],
  ['a Unicode look-alike of an allowed host', 'https://cl\u0430ude.ai/api/mcp/auth_callback'],
  ['an allowed host as a prefix (claude.ai.evil.example)', 'https://claude.ai.evil.example/api/mcp/auth_callback'],
  ['an allowed host in the path or query', 'https://evil.example/claude.ai?claude.ai'],
  ['an allowed host after a backslash (evil.example\\@claude.ai)', 'https://evil.example\\@claude.ai/cb'],
  ['a trailing slash on an allowed exact URI', 'https://chatgpt.com/connector_platform_oauth_redirect/'],
  ['dot segments in an allowed exact URI', 'https://chatgpt.com/x/../connector_platform_oauth_redirect'],
  ['a case change in an allowed exact URI', 'https://ChatGPT.com/connector_platform_oauth_redirect'],
  ['another port on an allowed exact loopback URI', 'http://localhost:3335/oauth/callback'],
];

for (const mode of MODES) {
  describe(`POST /oauth/register (${mode.name})`, () => {
    let s, allowStack;
    before(async () => {
      s = await startStack({ kv: mode.kv });
      allowStack = await startStack({ kv: mode.kv, vars: { ALLOWED_REDIRECT_URIS: 'claude.ai, https://chatgpt.com/connector_platform_oauth_redirect, http://localhost:3334/oauth/callback' } });
    });
    after(async () => { await Promise.allSettled([s?.close(), allowStack?.close()]); });
    const reg = (body, headers) => postJson(s.url, '/oauth/register', body, headers);
    const ok = { redirect_uris: [REDIRECT] };

    describe('Content-Type', () => {
      it('no, wrong or malformed Content-Type with a JSON body → accepted, 201 (the body is read as JSON)', async () => {
        for (const ct of [undefined, 'text/plain', ';;;=', 'application/json; charset=\xff']) {
          const r = await raw(s.url, 'POST', '/oauth/register', ct === undefined ? {} : { 'content-type': ct }, JSON.stringify(ok));
          below500(r);
          assert.equal(r.status, 201, `${ct}: ${show(r)}`);
        }
      });

      it('a form-encoded body → 400 invalid_client_metadata', async () => {
        jsonError(await postForm(s.url, '/oauth/register', { redirect_uris: REDIRECT }), 400, 'invalid_client_metadata');
      });
    });

    describe('malformed JSON and encoding', () => {
      it('malformed JSON, an empty body, a BOM, a lone surrogate or deep nesting → 400 invalid_client_metadata', async () => {
        for (const body of ['{', '', '\ufeff{"redirect_uris":["http://127.0.0.1:9/cb"]}', '{"redirect_uris":["http://127.0.0.1:9/cb"],"client_name":"\\ud800"}', `{"redirect_uris":${'['.repeat(30000)}${']'.repeat(30000)}}`, '{"redirect_uris":["http://127.0.0.1:9/cb"],}']) {
          jsonError(await reg(body), 400, 'invalid_client_metadata');
        }
      });

      it('bytes that are not UTF-8 → 400 invalid_client_metadata', async () => {
        jsonError(await reg(Buffer.concat([Buffer.from('{"redirect_uris":["http://127.0.0.1:9/cb"],"client_name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])), 400, 'invalid_client_metadata');
      });

      it('JSON that is not an object (array, null, string, number) → 400 invalid_client_metadata', async () => {
        for (const body of ['[1]', 'null', '"x"', '42', 'true']) jsonError(await reg(body), 400, 'invalid_client_metadata');
      });

      it('wrong types for metadata (client_name number, grant_types string, array of numbers) → 400 invalid_client_metadata', async () => {
        for (const extra of [{ client_name: 5 }, { client_name: ['a'] }, { grant_types: 'authorization_code' }, { grant_types: [1] }, { response_types: {} }, { token_endpoint_auth_method: true }, { client_uri: 7 }]) {
          jsonError(await reg({ ...ok, ...extra }), 400, 'invalid_client_metadata');
        }
      });

      it('a repeated key → accepted, the last one wins and is validated', async () => {
        const r = await reg('{"redirect_uris":["javascript:alert(1)"],"redirect_uris":["http://127.0.0.1:9/cb"]}');
        below500(r);
        assert.equal(r.status, 201, show(r));
        assert.deepEqual(r.json.redirect_uris, ['http://127.0.0.1:9/cb']);
        jsonError(await reg('{"redirect_uris":["http://127.0.0.1:9/cb"],"redirect_uris":["javascript:alert(1)"]}'), 400, 'invalid_redirect_uri');
      });
    });

    describe('missing, empty and oversize metadata', () => {
      it('missing, empty, null or non-array redirect_uris → 400 invalid_redirect_uri', async () => {
        for (const body of [{}, { redirect_uris: [] }, { redirect_uris: null }, { redirect_uris: REDIRECT }, { redirect_uris: [5] }, { redirect_uris: [''] }]) {
          jsonError(await reg(body), 400, 'invalid_redirect_uri');
        }
      });

      it('a body over 64 KiB → 413 invalid_client_metadata', async () => {
        jsonError(await reg({ ...ok, client_name: 'x'.repeat(70 * 1024) }), 413, 'invalid_client_metadata');
      });

      it('client_name over 200 characters, or metadata over 5000 bytes in all → 400 invalid_client_metadata', async () => {
        jsonError(await reg({ ...ok, client_name: 'n'.repeat(201) }), 400, 'invalid_client_metadata');
        jsonError(await reg({ redirect_uris: Array.from({ length: 5 }, (_, i) => `https://claude.ai/${i}/${'p'.repeat(1500)}`) }), 400, 'invalid_client_metadata');
      });

      it('more than 10 redirect_uris → 400 invalid_redirect_uri', async () => {
        jsonError(await reg({ redirect_uris: Array.from({ length: 11 }, (_, i) => `http://127.0.0.1:9/cb${i}`) }), 400, 'invalid_redirect_uri');
      });

      it('empty strings count as absent (client_name "", scope "") → 201 without them', async () => {
        const r = await reg({ ...ok, client_name: '', scope: '' });
        below500(r);
        assert.equal(r.status, 201);
        assert.equal(r.json.client_name, undefined);
      });
    });

    describe('HTML, script and control characters', () => {
      it('control characters (CR, LF, NUL, ESC) in client_name, scope or software_id → 400 invalid_client_metadata', async () => {
        for (const [k, v] of [['client_name', 'a\r\nb'], ['client_name', 'a\u0000b'], ['scope', 'a\nb'], ['software_id', '\u001b[31m'], ['software_version', '1\r\n']]) {
          jsonError(await reg({ ...ok, [k]: v }), 400, 'invalid_client_metadata');
        }
      });

      it('HTML/script in client_name and client_uri → 201, returned as JSON data (escaped wherever shown)', async () => {
        const r = await reg({ ...ok, client_name: XSS, client_uri: `https://x.dev/"><script>alert(1)</script>` });
        below500(r);
        assert.equal(r.status, 201, show(r));
        assert.match(r.headers['content-type'], /^application\/json/);
        assert.equal(r.json.client_name, XSS);
      });

      it('client_uri or logo_uri that is not http(s) (javascript:, data:) → 400 invalid_client_metadata', async () => {
        for (const extra of [{ client_uri: 'javascript:alert(1)' }, { logo_uri: 'data:image/svg+xml,<svg onload=alert(1)>' }, { client_uri: 'not a url' }]) {
          jsonError(await reg({ ...ok, ...extra }), 400, 'invalid_client_metadata');
        }
      });
    });

    describe('redirect URI tricks', () => {
      for (const [name, uri] of REGISTER_TRICKS) {
        it(`${name} → 400 invalid_redirect_uri`, async () => {
          const r = await reg({ redirect_uris: [uri] });
          jsonError(r, 400, 'invalid_redirect_uri');
          noRawMarkup(r);
        });
      }

      it('loopback forms (127.0.0.1 any port, [::1], localhost) and private-use schemes → 201', async () => {
        const r = await reg({ redirect_uris: ['http://127.0.0.1/cb', 'http://[::1]:8080/cb', 'http://localhost:3334/oauth/callback', 'cursor://anysphere.cursor-mcp/oauth/callback'] });
        below500(r);
        assert.equal(r.status, 201, show(r));
      });

      for (const [name, uri] of ALLOW_TRICKS) {
        it(`with ALLOWED_REDIRECT_URIS: ${name} → 400 invalid_redirect_uri`, async () => {
          const r = await postJson(allowStack.url, '/oauth/register', { redirect_uris: [uri] });
          jsonError(r, 400, 'invalid_redirect_uri');
        });
      }

      it('with ALLOWED_REDIRECT_URIS: an allowed host (any path) and the exact allowed URIs → 201', async () => {
        for (const uri of [CLAUDE, 'https://CLAUDE.ai/other', 'https://chatgpt.com/connector_platform_oauth_redirect', 'http://localhost:3334/oauth/callback']) {
          const r = await postJson(allowStack.url, '/oauth/register', { redirect_uris: [uri] });
          below500(r);
          assert.equal(r.status, 201, `${uri}: ${show(r)}`);
        }
      });
    });
  });
}

// --------------------------------------------------------- POST /oauth/revoke

for (const mode of MODES) {
  describe(`POST /oauth/revoke (${mode.name})`, () => {
    let s, client, confidential;
    before(async () => {
      s = await startStack({ kv: mode.kv });
      client = await register(s.url);
      confidential = await register(s.url, { token_endpoint_auth_method: 'client_secret_basic' });
    });
    after(async () => { await s?.close(); });
    const post = (body, headers) => postForm(s.url, '/oauth/revoke', body, headers);

    describe('Content-Type', () => {
      it('missing, wrong or malformed Content-Type → 400 invalid_request', async () => {
        jsonError(await raw(s.url, 'POST', '/oauth/revoke', {}, 'token=x'), 400, 'invalid_request');
        for (const ct of ['text/plain', ';;;=', 'application/x-www-form-urlencoded\xff']) {
          jsonError(await raw(s.url, 'POST', '/oauth/revoke', { 'content-type': ct }, 'token=x'), 400, 'invalid_request');
        }
      });
    });

    describe('malformed bodies', () => {
      it('malformed JSON or JSON that is not an object of strings → 400 invalid_request', async () => {
        for (const body of ['{', '[]', 'null', '{"token":["x"]}', '{"token":{"a":1}}']) jsonError(await postJson(s.url, '/oauth/revoke', body), 400, 'invalid_request');
      });

      it('JSON with a repeated key → 400 invalid_request', async () => {
        jsonError(await postJson(s.url, '/oauth/revoke', '{"token":"a","token":"b"}'), 400, 'invalid_request');
      });
    });

    describe('missing, empty and repeated parameters', () => {
      it('missing or empty token → 400 invalid_request', async () => {
        for (const body of ['', 'token=', 'token_type_hint=access_token']) jsonError(await post(body), 400, 'invalid_request');
      });

      it('a repeated token → 400 invalid_request', async () => {
        jsonError(await post('token=a&token=b'), 400, 'invalid_request');
      });
    });

    describe('malformed encoding', () => {
      it('bad percent-encoding or bytes that are not UTF-8 → 400 invalid_request', async () => {
        for (const body of ['token=%zz', 'token=%', 'token=%ff', Buffer.from([...Buffer.from('token='), 0xff])]) jsonError(await post(body), 400, 'invalid_request');
      });
    });

    describe('oversize parameters and bodies', () => {
      it('a token over 8 KiB → 400 invalid_request; a body over 64 KiB → 413 invalid_request', async () => {
        jsonError(await post({ token: 't'.repeat(8 * 1024 + 1) }), 400, 'invalid_request');
        jsonError(await post({ token: 'x', pad: 'p'.repeat(64 * 1024) }), 413, 'invalid_request');
      });
    });

    describe('forged, tampered and truncated client ids', () => {
      it('forged, tampered or truncated client_id → 401 invalid_client', async () => {
        for (const id of ['nope', `kv.${'A'.repeat(32)}`, tamper(client.client_id), client.client_id.slice(0, -3), XSS]) {
          jsonError(await post({ token: 'x', client_id: id }), 401, 'invalid_client');
        }
      });
    });

    describe('client authentication', () => {
      it('a wrong secret, a Bearer header or malformed Basic credentials → 401 invalid_client', async () => {
        const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
        for (const authorization of [basic(confidential.client_id, 'wrong'), 'Bearer x', 'Basic !!!', basic(confidential.client_id, '')]) {
          jsonError(await post({ token: 'x' }, { authorization }), 401, 'invalid_client');
        }
        const good = await post({ token: 'x' }, { authorization: basic(confidential.client_id, confidential.client_secret) });
        assert.equal(good.status, 200, show(good));
      });
    });

    describe('HTML, script and CR/LF in parameters', () => {
      it('HTML, script and CR/LF in the token → forwarded form-encoded, 200 (RFC 7009), nothing reflected', async () => {
        const r = await post({ token: `x\r\nX-Injected: 1\r\n${XSS}`, token_type_hint: XSS });
        below500(r);
        assert.equal(r.status, 200, show(r));
        noInjectedHeader(r);
        noRawMarkup(r);
        const seen = s.attio.requests.filter((x) => x.path === '/oauth/revoke').at(-1);
        assert.equal(seen.form.token, `x\r\nX-Injected: 1\r\n${XSS}`, 'Attio got the token intact, as form data');
      });
    });
  });
}
