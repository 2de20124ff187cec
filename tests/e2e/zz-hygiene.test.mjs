// Secret hygiene. Runs a representative set of complete flows (the manual
// flow, MCP client flows with public and confidential clients, refresh,
// revoke, and error cases) in both storage modes, with and without a
// BROKER_SECRET, and records every response the broker gives (status, every
// header, the body) and every line the Worker logs. Then checks that
//
//   - ATTIO_CLIENT_SECRET and BROKER_SECRET appear in no response and no log;
//   - a registered client's secret appears only in that client's own 201;
//   - Attio's access and refresh tokens appear only on the manual flow's token
//     page and in /oauth/token 200 answers, and never in a log line;
//   - broker codes and states never appear in a log line.
//
// Named zz- so that it runs last in a plain `node --test tests/e2e/` listing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startStack, MODES, Jar, consentValue, ATTIO_SECRET, BROKER_SECRET } from '../support/client.mjs';
import { workerLogs } from '../support/broker.mjs';

const FORM = 'application/x-www-form-urlencoded';

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Every form a secret could take on the wire. */
function forms(secret) {
  const out = new Set([secret, encodeURIComponent(secret), new URLSearchParams({ x: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1)]);
  if (secret.length >= 12) {
    out.add(Buffer.from(secret).toString('base64').replace(/=+$/, ''));
    out.add(Buffer.from(secret).toString('base64url'));
  }
  return [...out].filter((f) => f.length >= 8);
}

/**
 * Records every response from the broker. `allow` names what may appear in a
 * response: 'tokens' (Attio's tokens) and/or a client secret.
 */
class Recorder {
  constructor(base) {
    this.base = base;
    this.records = [];
    this.jar = new Jar();
  }

  async request(url, init = {}, { allow = [], jar = this.jar, label } = {}) {
    const headers = new Headers(init.headers || {});
    const c = jar.header(url);
    if (c) headers.set('cookie', c);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(res.headers.getSetCookie());
    const text = await res.text();
    if (url.startsWith(this.base)) {
      this.records.push({ label: label ?? `${init.method ?? 'GET'} ${new URL(url).pathname}`, status: res.status, headers: [...res.headers], setCookies: res.headers.getSetCookie(), text, allow: new Set(allow) });
    }
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, headers: res.headers, text, json, location: res.headers.get('location') };
  }

  post(path, form, { headers = {}, ...opts } = {}) {
    return this.request(`${this.base}${path}`, { method: 'POST', headers: { 'content-type': FORM, ...headers }, body: new URLSearchParams(form) }, opts);
  }

  /** Follow redirects (recording broker answers) until a URL starting with stopAt or a non-redirect. */
  async follow(first, { stopAt, jar = this.jar, allowAtEnd = [] } = {}) {
    let r = first;
    let url;
    for (let i = 0; i < 10 && r.status >= 300 && r.status < 400; i++) {
      url = r.location;
      if (stopAt && url.startsWith(stopAt)) return { stoppedAt: url, res: r };
      // The broker's final answer (the callback) may carry a token page.
      const allow = url.startsWith(`${this.base}/oauth/callback`) ? allowAtEnd : [];
      r = await this.request(url, {}, { jar, allow });
    }
    return { res: r, url };
  }
}

function scanFor(haystack, secrets) {
  const found = [];
  for (const [name, secret] of secrets) for (const f of forms(secret)) if (haystack.includes(f)) { found.push(name); break; }
  return found;
}

async function scenario(s, rec, secretsOut) {
  const { attio, url: base } = s;
  const bearer = [];

  // Discovery, health, landing, unknown path.
  for (const p of ['/', '/health', '/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource', '/nope']) await rec.request(`${base}${p}`);

  // 1. The manual flow: the token page is the one page allowed to show tokens.
  {
    const jar = new Jar();
    const start = await rec.request(`${base}/oauth/authorize`, {}, { jar });
    const { res } = await rec.follow(start, { jar, allowAtEnd: ['tokens'] });
    assert.equal(res.status, 200, 'the manual flow ends on the token page');
    assert.ok(res.text.includes(attio.issued.at(-1)), 'the token page shows the token');
  }
  // ... denied at Attio, and Attio failing the exchange: error pages.
  for (const [endpoint, mode] of [['authorize', 'deny'], ['token', 'status500'], ['token', 'huge'], ['token', 'notJson']]) {
    attio.fail(endpoint, mode);
    const jar = new Jar();
    const { res } = await rec.follow(await rec.request(`${base}/oauth/authorize`, {}, { jar }), { jar });
    assert.ok(res.status >= 400, `${mode}: an error page`);
    attio.reset();
  }

  // 2. Registration: public, client_secret_post, client_secret_basic.
  const clients = {};
  for (const method of ['none', 'client_secret_post', 'client_secret_basic']) {
    const body = { redirect_uris: ['http://127.0.0.1:9/callback'], client_name: `hygiene ${method}` };
    if (method !== 'none') body.token_endpoint_auth_method = method;
    // Only this registration's 201 may carry this client's secret; we learn
    // the secret from it, so allow it by label and check afterwards.
    const r = await rec.request(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, { label: `register ${method}` });
    assert.equal(r.status, 201);
    clients[method] = r.json;
    rec.records.at(-1).allow.add(`secret:${r.json.client_id}`);
    if (r.json.client_secret) secretsOut.push([`client secret of ${method}`, r.json.client_secret, r.json.client_id]);
  }
  const basic = (c, secret = c.client_secret) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(c.client_id)}:${encodeURIComponent(secret)}`).toString('base64')}` });
  const auth = (c) => (c.token_endpoint_auth_method === 'client_secret_basic' ? { headers: basic(c) } : {});
  const authForm = (c) => (c.token_endpoint_auth_method === 'client_secret_post' ? { client_id: c.client_id, client_secret: c.client_secret } : c.token_endpoint_auth_method === 'none' ? { client_id: c.client_id } : {});

  // 3. A client flow for each: authorize → consent → Attio → callback → code → token.
  async function clientCode(c, { deny = false, state = 'st-hygiene' } = {}) {
    const jar = new Jar();
    const p = pkce();
    const q = new URLSearchParams({ response_type: 'code', client_id: c.client_id, redirect_uri: 'http://127.0.0.1:9/callback', state, code_challenge: p.challenge, code_challenge_method: 'S256' });
    let r = await rec.request(`${base}/oauth/authorize?${q}`, {}, { jar });
    if (r.status === 200) r = await rec.request(`${base}/oauth/authorize`, { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams({ consent: consentValue(r.text), action: deny ? 'deny' : 'approve' }) }, { jar });
    const { stoppedAt } = r.location?.startsWith('http://127.0.0.1:9/') ? { stoppedAt: r.location } : await rec.follow(r, { jar, stopAt: 'http://127.0.0.1:9/' });
    assert.ok(stoppedAt, 'the flow returns to the client');
    return { params: Object.fromEntries(new URL(stoppedAt).searchParams), verifier: p.verifier };
  }

  for (const [method, c] of Object.entries(clients)) {
    const { params, verifier } = await clientCode(c);
    assert.ok(params.code, `${method}: a code`);
    secretsOut.push([`broker code (${method})`, params.code, null, 'logs-only']);
    const t = await rec.post('/oauth/token', { grant_type: 'authorization_code', code: params.code, redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: verifier, ...authForm(c) }, { ...auth(c), allow: ['tokens'], label: `token (${method})` });
    assert.equal(t.status, 200, `${method}: ${t.text}`);
    bearer.push(t.json);
    // Error cases at the token endpoint: replay, wrong verifier, wrong secret.
    await rec.post('/oauth/token', { grant_type: 'authorization_code', code: params.code, redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: pkce().verifier, ...authForm(c) }, auth(c));
    if (method === 'client_secret_post') {
      const wrong = await rec.post('/oauth/token', { grant_type: 'authorization_code', code: params.code, redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: verifier, client_id: c.client_id, client_secret: `${c.client_secret}x` });
      assert.equal(wrong.status, 401);
    }
    if (method === 'client_secret_basic') {
      const wrong = await rec.post('/oauth/token', { grant_type: 'authorization_code', code: params.code, redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: verifier }, { headers: basic(c, 'wrong') });
      assert.equal(wrong.status, 401);
    }
  }
  // Denied at the consent page, and at Attio.
  await clientCode(clients.none, { deny: true });
  attio.fail('authorize', 'deny');
  await clientCode(clients.none);
  attio.reset();
  // Attio fails the exchange in a client flow.
  attio.fail('token', 'status500');
  await clientCode(clients.client_secret_post);
  attio.reset();

  // 4. Refresh (when Attio gave a refresh token), and refresh failures.
  for (const [i, c] of Object.values(clients).entries()) {
    const rt = bearer[i].refresh_token;
    if (!rt) continue;
    const r = await rec.post('/oauth/token', { grant_type: 'refresh_token', refresh_token: rt, ...authForm(c) }, { ...auth(c), allow: ['tokens'], label: 'refresh' });
    assert.equal(r.status, 200, r.text);
    bearer.push(r.json);
    for (const mode of ['status500', 'status429', 'huge', 'status400']) {
      attio.fail('token', mode);
      const f = await rec.post('/oauth/token', { grant_type: 'refresh_token', refresh_token: rt, ...authForm(c) }, auth(c));
      assert.ok(f.status >= 400, `${mode}: ${f.status}`);
      attio.reset();
    }
  }
  await rec.post('/oauth/token', { grant_type: 'refresh_token', refresh_token: 'attio_rt_unknown' });

  // 5. Revoke: with each client's authentication, unknown tokens, failures.
  for (const [i, c] of Object.values(clients).entries()) {
    const r = await rec.post('/oauth/revoke', { token: bearer[i].access_token, ...authForm(c) }, auth(c));
    assert.equal(r.status, 200, r.text);
  }
  await rec.post('/oauth/revoke', { token: 'unknown' });
  attio.fail('revoke', 'status500');
  await rec.post('/oauth/revoke', { token: bearer.at(-1).access_token });
  attio.reset();
  await rec.post('/oauth/revoke', { token: 'x', client_id: clients.client_secret_post.client_id, client_secret: 'wrong' });

  // 6. Assorted bad input.
  await rec.request(`${base}/oauth/authorize?client_id=nope&response_type=code`);
  await rec.request(`${base}/oauth/callback?state=forged&code=x`);
  await rec.request(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"redirect_uris":["http://evil.example/cb"]}' });
  await rec.post('/oauth/token', { grant_type: 'password' });
}

for (const mode of MODES) {
  for (const dedicated of [false, true]) {
    const name = `secret hygiene (${mode.name}, ${dedicated ? 'BROKER_SECRET set' : 'keys from ATTIO_CLIENT_SECRET'})`;
    describe(name, () => {
      let s, rec;
      const clientSecrets = [];
      before(async () => {
        s = await startStack({ kv: mode.kv, vars: dedicated ? { BROKER_SECRET } : {}, attio: { issueRefreshToken: dedicated } });
        rec = new Recorder(s.url);
        await scenario(s, rec, clientSecrets);
        await new Promise((res) => setTimeout(res, 200)); // let the last log lines arrive
      });
      after(async () => { await s?.close(); });

      const tokens = () => [...s.attio.issued.map((t) => ['Attio access token', t]), ...s.attio.refreshTokens.map((t) => ['Attio refresh token', t])];

      it('the scenario covered every endpoint and the success and error paths', () => {
        const labels = new Set(rec.records.map((r) => r.label));
        for (const l of ['GET /health', 'GET /oauth/authorize', 'POST /oauth/authorize', 'GET /oauth/callback', 'POST /oauth/token', 'POST /oauth/revoke', 'register none', 'register client_secret_post', 'token (client_secret_basic)']) {
          assert.ok(labels.has(l), `no ${l} in the scenario`);
        }
        const statuses = new Set(rec.records.map((r) => r.status));
        for (const st of [200, 201, 302, 400, 401, 403, 502, 503]) assert.ok(statuses.has(st), `no ${st} answer in the scenario`);
        assert.ok(tokens().length >= 4, 'Attio issued tokens');
        if (dedicated) assert.ok(s.attio.refreshTokens.length > 0, 'Attio issued refresh tokens');
        assert.ok(clientSecrets.filter(([, , , k]) => k !== 'logs-only').length === 2, 'two confidential clients');
      });

      it('ATTIO_CLIENT_SECRET and BROKER_SECRET appear in no response header or body', () => {
        for (const r of rec.records) {
          const found = scanFor(`${r.headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n${r.text}`, [['ATTIO_CLIENT_SECRET', ATTIO_SECRET], ['BROKER_SECRET', BROKER_SECRET]]);
          assert.deepEqual(found, [], `${r.label} → ${r.status} leaks ${found}`);
        }
      });

      it("a registered client's secret appears only in that client's own 201", () => {
        for (const [name, secret, id, kind] of clientSecrets) {
          if (kind === 'logs-only') continue;
          const where = rec.records.filter((r) => scanFor(`${r.headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n${r.text}`, [[name, secret]]).length);
          assert.equal(where.length, 1, `${name} appears in ${where.map((r) => `${r.label} → ${r.status}`).join(', ')}`);
          assert.equal(where[0].status, 201);
          assert.ok(where[0].allow.has(`secret:${id}`), `${name} is in another client's registration`);
        }
      });

      it("Attio's tokens appear only on the token page and in /oauth/token 200 answers", () => {
        const places = new Set();
        for (const r of rec.records) {
          const found = scanFor(`${r.headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n${r.text}`, tokens());
          if (!found.length) continue;
          assert.ok(r.allow.has('tokens') && r.status === 200, `${r.label} → ${r.status} carries ${found}`);
          assert.ok((r.label.startsWith('GET /oauth/callback') && /^text\/html/.test(r.headers.find(([k]) => k === 'content-type')?.[1] ?? '')) || r.label.startsWith('token') || r.label === 'refresh', `${r.label} may not carry tokens`);
          places.add(r.label.split(' ')[0]);
          // Headers never carry a token (no Location, no cookie).
          assert.deepEqual(scanFor(r.headers.map(([k, v]) => `${k}: ${v}`).join('\n'), tokens()), [], `${r.label}: a token in a header`);
        }
        assert.ok(places.has('GET') && places.has('token'), `tokens were seen on the token page and at the token endpoint (${[...places]})`);
      });

      it('no token, code, client secret, ATTIO_CLIENT_SECRET or BROKER_SECRET in any Worker log line', () => {
        assert.ok(workerLogs.length > 50, `the Worker logged (${workerLogs.length} lines)`);
        const secrets = [['ATTIO_CLIENT_SECRET', ATTIO_SECRET], ['BROKER_SECRET', BROKER_SECRET], ...tokens(), ...clientSecrets.map(([n, v]) => [n, v])];
        for (const line of workerLogs) {
          const found = scanFor(line, secrets);
          assert.deepEqual(found, [], `log line leaks ${found}: ${line.slice(0, 200)}`);
        }
      });

      it('no Set-Cookie, Location, WWW-Authenticate or Retry-After carries a secret or a token', () => {
        const secrets = [['ATTIO_CLIENT_SECRET', ATTIO_SECRET], ['BROKER_SECRET', BROKER_SECRET], ...tokens(), ...clientSecrets.filter(([, , , k]) => k !== 'logs-only').map(([n, v]) => [n, v])];
        for (const r of rec.records) {
          const hdrs = r.headers.filter(([k]) => ['set-cookie', 'location', 'www-authenticate', 'retry-after'].includes(k)).map(([k, v]) => `${k}: ${v}`).join('\n');
          assert.deepEqual(scanFor(hdrs, secrets), [], `${r.label} → ${r.status}: ${hdrs.slice(0, 200)}`);
        }
      });
    });
  }
}
