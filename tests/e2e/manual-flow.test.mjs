// The manual flow (GET /oauth/authorize with no client_id): the broker sends
// the browser to Attio, Attio comes back to /oauth/callback, the broker
// exchanges the code and shows the token page. Also: what happens when Attio
// denies or fails, when the state is abused, and the refresh grant at
// POST /oauth/token. Run for both storage modes (with and without KV).
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Browser, startStack, MODES, ATTIO_ID, ATTIO_SECRET, tokenRequest, closedPort } from '../support/client.mjs';

const COOKIE = 'attio_broker_browser';
const WORKSPACE = 'Acme Test Workspace';
const SCOPES = ['record_permission:read-write', 'object_configuration:read', 'list_entry:read'];
// Markers that appear only in the fake's raw (failure) bodies.
const RAW_MARKERS = [
  'oops', '"padding"', '&quot;padding', 'xxxxxxxxxx', 'status_code', 'Fake Attio', 'injected',
  'internal_server_error', 'invalid_request_error', 'rate_limit', 'Rate limit exceeded',
];

const s256 = (v) => createHash('sha256').update(v, 'utf8').digest('base64url');


/** Parse one Set-Cookie line into {name, value, attrs} (attr names lower-cased). */
function parseSetCookie(line) {
  const [pair, ...rest] = line.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const a of rest) {
    const i = a.indexOf('=');
    if (i < 0) attrs[a.toLowerCase()] = true;
    else attrs[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs };
}

function browserCookie(res) {
  const lines = res.headers.getSetCookie().filter((l) => l.startsWith(`${COOKIE}=`));
  assert.equal(lines.length, 1, `expected one ${COOKIE} Set-Cookie, got ${JSON.stringify(res.headers.getSetCookie())}`);
  return parseSetCookie(lines[0]);
}

/**
 * Start a manual sign-in in `browser` and let the fake Attio answer; stop
 * before the callback. Returns the broker's authorize response, the Attio URL
 * it pointed at, and the callback URL the fake sent the browser to.
 */
async function startManual(stack, browser) {
  const authorizeRes = await browser.request(`${stack.url}/oauth/authorize`);
  assert.equal(authorizeRes.status, 302, 'GET /oauth/authorize should redirect to Attio');
  const attioUrl = new URL(authorizeRes.headers.get('location'));
  const fakeRes = await browser.request(attioUrl.href);
  assert.equal(fakeRes.status, 302, `the fake Attio should redirect back (got ${fakeRes.status})`);
  const callbackUrl = new URL(fakeRes.headers.get('location'), attioUrl).href;
  assert.ok(callbackUrl.startsWith(`${stack.url}/oauth/callback?`), `fake should send the browser to the callback: ${callbackUrl}`);
  return { authorizeRes, attioUrl, callbackUrl, state: attioUrl.searchParams.get('state') };
}

/** The whole manual flow; returns the callback response and its body. */
async function manualFlow(stack, browser = new Browser()) {
  const started = await startManual(stack, browser);
  const res = await browser.request(started.callbackUrl);
  const html = await res.text();
  return { ...started, res, html, browser };
}

function assertPageHeaders(res) {
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /frame-ancestors 'none'/, `CSP: ${csp}`);
  assert.match(csp, /script-src 'nonce-[A-Za-z0-9_-]+'/, `CSP: ${csp}`);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
}

function assertStartAgain(html) {
  assert.match(html, /<a [^>]*href="\/oauth\/authorize"[^>]*>Start again<\/a>/, 'page should have a "Start again" link to /oauth/authorize');
}

function assertNoLeaks(res, html) {
  for (const m of RAW_MARKERS) assert.ok(!html.includes(m), `page leaks the fake's raw body marker ${JSON.stringify(m)}`);
  assert.ok(!html.includes(ATTIO_SECRET), 'page leaks the client secret');
  for (const [k, v] of res.headers) assert.ok(!v.includes(ATTIO_SECRET), `header ${k} leaks the client secret`);
}

const tokenRequests = (attio) => attio.requests.filter((r) => r.method === 'POST' && r.path === '/oauth/token');

/** Flip one character in the middle of a string (stays base64url-shaped). */
function tamper(s) {
  const i = Math.floor(s.length / 2);
  const c = s[i] === 'A' ? 'B' : 'A';
  return s.slice(0, i) + c + s.slice(i + 1);
}

function withState(callbackUrl, state) {
  const u = new URL(callbackUrl);
  u.searchParams.set('state', state);
  return u.href;
}

function assertErrorJson(r, status, error) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body, 'object', `expected a JSON body, got ${r.body}`);
  assert.equal(r.body.error, error);
  assert.equal(typeof r.body.error_description, 'string');
  assert.ok(r.body.error_description.length > 0);
  assert.ok(!JSON.stringify(r.body).includes(ATTIO_SECRET), 'error leaks the client secret');
}

for (const mode of MODES) {
  describe(`manual flow (${mode.name})`, () => {
    let stack;   // default fake (no refresh tokens)
    let rtStack; // fake that issues refresh tokens
    let deadStack; // broker whose ATTIO_TOKEN_URL points at a closed port

    before(async () => {
      stack = await startStack({ kv: mode.kv });
      rtStack = await startStack({ kv: mode.kv, attio: { issueRefreshToken: true } });
      const port = await closedPort();
      deadStack = await startStack({ kv: mode.kv, vars: { ATTIO_TOKEN_URL: `http://127.0.0.1:${port}/oauth/token` } });
    }, { timeout: 60_000 });

    after(async () => {
      await Promise.allSettled([stack?.close(), rtStack?.close(), deadStack?.close()]);
    });

    // Each test starts with no injected failure and no recorded requests.
    beforeEach(() => {
      for (const s of [stack, rtStack, deadStack]) s?.attio.reset();
    });

    it('success: authorize redirects to Attio with PKCE and a browser cookie; callback shows the token page', async () => {
      const browser = new Browser();
      const { authorizeRes, attioUrl, callbackUrl } = await startManual(stack, browser);

      // The redirect to Attio.
      assert.equal(`${attioUrl.origin}${attioUrl.pathname}`, stack.attio.urls.authorize);
      const q = attioUrl.searchParams;
      assert.equal(q.get('client_id'), ATTIO_ID);
      assert.equal(q.get('response_type'), 'code');
      assert.equal(q.get('redirect_uri'), `${stack.url}/oauth/callback`);
      assert.ok(q.get('state'), 'state is sent');
      assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
      assert.equal(q.get('code_challenge_method'), 'S256');

      // The browser-binding cookie.
      const c = browserCookie(authorizeRes);
      assert.ok(c.value.length > 0);
      assert.equal(c.attrs.httponly, true, 'HttpOnly');
      assert.equal(String(c.attrs.samesite).toLowerCase(), 'lax');
      assert.equal(c.attrs.path, '/oauth');
      assert.equal(c.attrs['max-age'], '600');
      assert.equal(c.attrs.secure, undefined, 'no Secure over http');

      // The callback: the token page.
      const res = await browser.request(callbackUrl);
      const html = await res.text();
      assert.equal(res.status, 200, html);
      assertPageHeaders(res);
      assert.equal(stack.attio.issued.length > 0, true);
      const token = stack.attio.issued.at(-1);
      assert.ok(html.includes(token), 'page shows the access token');
      assert.ok(html.includes(WORKSPACE), 'page shows the workspace name');
      for (const s of SCOPES) assert.ok(html.includes(s), `page shows scope ${s}`);
      assert.ok(html.includes('ATTIO_ACCESS_TOKEN'), 'Claude Desktop config has ATTIO_ACCESS_TOKEN');
      assert.ok(html.includes('attio-mcp'), 'Claude Desktop config runs attio-mcp');
      assert.ok(html.includes(`&quot;ATTIO_ACCESS_TOKEN&quot;: &quot;${token}&quot;`), 'config carries the token');
      assert.ok(!html.includes('Refresh token'), 'no refresh token section');
      assert.ok(!html.includes(ATTIO_SECRET), 'page does not leak the client secret');

      // The script carries the CSP nonce.
      const nonce = /script-src 'nonce-([A-Za-z0-9_-]+)'/.exec(res.headers.get('content-security-policy'))[1];
      assert.ok(html.includes(`<script nonce="${nonce}">`), 'script tag carries the CSP nonce');

      // The cookie is cleared.
      const cleared = browserCookie(res);
      assert.equal(cleared.value, '');
      assert.equal(cleared.attrs['max-age'], '0');
      assert.equal(cleared.attrs.path, '/oauth');

      // The code exchange at the fake: client secret and a verifier matching the challenge.
      const reqs = tokenRequests(stack.attio);
      assert.equal(reqs.length, 1, 'one code exchange');
      const f = reqs[0].form;
      assert.equal(f.grant_type, 'authorization_code');
      assert.equal(f.client_id, ATTIO_ID);
      assert.equal(f.client_secret, ATTIO_SECRET);
      assert.equal(f.redirect_uri, `${stack.url}/oauth/callback`);
      assert.ok(f.code_verifier, 'code_verifier sent');
      assert.equal(s256(f.code_verifier), q.get('code_challenge'), 'verifier matches the challenge');
    });

    it('no refresh token is shown when Attio gives none; it is shown when Attio gives one', async () => {
      const plain = await manualFlow(stack);
      assert.equal(plain.res.status, 200);
      assert.ok(!plain.html.includes('Refresh token'));
      assert.ok(!plain.html.includes('attio_rt_'));

      const withRt = await manualFlow(rtStack);
      assert.equal(withRt.res.status, 200, withRt.html);
      const rt = rtStack.attio.refreshTokens.at(-1);
      assert.ok(rt, 'fake issued a refresh token');
      assert.ok(withRt.html.includes('Refresh token'), 'refresh token section shown');
      assert.ok(withRt.html.includes(rt), 'page shows the refresh token');
      assert.ok(withRt.html.includes(rtStack.attio.issued.at(-1)), 'page shows the access token');
    });

    it('Attio denial: callback answers a 403 page that says access was denied; no token exchange', async () => {
      stack.attio.fail('authorize', 'deny');
      const browser = new Browser();
      const { callbackUrl } = await startManual(stack, browser);
      assert.equal(new URL(callbackUrl).searchParams.get('error'), 'access_denied');
      const res = await browser.request(callbackUrl);
      const html = await res.text();
      assert.equal(res.status, 403, html);
      assertPageHeaders(res);
      assert.match(html, /denied/i);
      assert.match(html, /<h1>Access was not granted<\/h1>/);
      assertStartAgain(html);
      assert.equal(browserCookie(res).attrs['max-age'], '0', 'cookie cleared');
      assert.equal(tokenRequests(stack.attio).length, 0, 'no code exchange at Attio');
    });

    // Each failure of the code exchange → a friendly error page.
    const FAILURES = [
      { mode: 'status500', status: 502, check: /ATTIO_TOKEN_URL/ },
      { mode: 'status400', status: 502, check: /redirect URI/ },
      { mode: 'attio400', status: 502, check: /redirect URI/ },
      { mode: 'status429', status: 503, check: /ATTIO_TOKEN_URL/ },
      { mode: 'notJson', status: 502, check: /redirect URI/ },
      { mode: 'empty', status: 502, check: /redirect URI/ },
      { mode: 'noAccessToken', status: 502, check: /redirect URI/ },
      { mode: 'huge', status: 502, check: /redirect URI/ },
      { mode: 'slow', extra: { ms: 15_000 }, status: 504, check: /ATTIO_TOKEN_URL/ },
    ];
    for (const f of FAILURES) {
      it(`code exchange failure ${f.mode} → ${f.status} error page`, async () => {
        stack.attio.fail('token', f.mode, f.extra);
        const browser = new Browser();
        const { callbackUrl } = await startManual(stack, browser);
        const t0 = Date.now();
        const res = await browser.request(callbackUrl);
        const html = await res.text();
        const elapsed = Date.now() - t0;
        assert.equal(res.status, f.status, html);
        assertPageHeaders(res);
        assert.match(html, /What to check/);
        assert.match(html, f.check);
        assertStartAgain(html);
        assertNoLeaks(res, html);
        assert.equal(tokenRequests(stack.attio).length, 1, 'the exchange was attempted');
        // The huge body carries a token-shaped value: it must not be shown.
        assert.ok(!/attio_at_[0-9a-f]{48}/.test(html), 'no access token on an error page');
        assert.equal(browserCookie(res).attrs['max-age'], '0', 'cookie cleared');
        if (f.mode === 'slow') {
          assert.ok(elapsed >= 9_000 && elapsed < 14_000, `expected the broker's ~10 s deadline, took ${elapsed} ms`);
        }
      });
    }

    it('code exchange against a closed port → 502 error page', async () => {
      const browser = new Browser();
      const { callbackUrl } = await startManual(deadStack, browser);
      const res = await browser.request(callbackUrl);
      const html = await res.text();
      assert.ok(res.status >= 500 && res.status <= 504, `expected a 5xx, got ${res.status}`);
      assert.equal(res.status, 502, html);
      assertPageHeaders(res);
      assert.match(html, /What to check/);
      assert.match(html, /ATTIO_TOKEN_URL/);
      assertStartAgain(html);
      assertNoLeaks(res, html);
    });

    describe('state abuse', () => {
      it('replayed state → 400 "expired or was already used" page', async () => {
        const browser = new Browser();
        const { callbackUrl, state } = await startManual(stack, browser);
        if (mode.kv) assert.ok((await stack.broker.kvKeys()).includes(`session:${state}`), 'session stored in KV');
        const first = await browser.request(callbackUrl);
        await first.text();
        assert.equal(first.status, 200);
        // With KV the session is deleted on first use; without KV the state
        // still opens, but the cookie was cleared, so the browser check fails.
        if (mode.kv) assert.ok(!(await stack.broker.kvKeys()).includes(`session:${state}`), 'session deleted after use');
        assert.equal(browser.jar.get(COOKIE), undefined, 'cookie cleared by the first callback');
        const second = await browser.request(callbackUrl);
        const html = await second.text();
        assert.equal(second.status, 400, html);
        assertPageHeaders(second);
        assert.match(html, /expired or was already used/);
        assertStartAgain(html);
        assert.equal(tokenRequests(stack.attio).length, 1, 'no second code exchange');
      });

      it('forged state → 400', async () => {
        const browser = new Browser();
        const { callbackUrl } = await startManual(stack, browser);
        for (const forged of ['forged-state', randomBytes(32).toString('base64url'), randomBytes(120).toString('base64url')]) {
          const res = await browser.request(withState(callbackUrl, forged));
          const html = await res.text();
          assert.equal(res.status, 400, `state ${forged}: ${html}`);
          assertStartAgain(html);
        }
        assert.equal(tokenRequests(stack.attio).length, 0, 'no code exchange');
      });

      it('tampered state → 400', async () => {
        const browser = new Browser();
        const { callbackUrl, state } = await startManual(stack, browser);
        const res = await browser.request(withState(callbackUrl, tamper(state)));
        const html = await res.text();
        assert.equal(res.status, 400, html);
        assertStartAgain(html);
        assert.equal(tokenRequests(stack.attio).length, 0, 'no code exchange');
      });

      it('callback without the browser cookie → 400', async () => {
        const { callbackUrl } = await startManual(stack, new Browser());
        const stranger = new Browser();
        const res = await stranger.request(callbackUrl);
        const html = await res.text();
        assert.equal(res.status, 400, html);
        assertStartAgain(html);
        assert.equal(tokenRequests(stack.attio).length, 0, 'no code exchange');
      });

      it("a state from another browser's flow → 400", async () => {
        const alice = new Browser();
        const bob = new Browser();
        const a = await startManual(stack, alice);
        await startManual(stack, bob); // Bob has his own sign-in cookie
        assert.ok(bob.jar.get(COOKIE));
        assert.notEqual(bob.jar.get(COOKIE), alice.jar.get(COOKIE));
        const res = await bob.request(a.callbackUrl);
        const html = await res.text();
        assert.equal(res.status, 400, html);
        assertStartAgain(html);
        assert.equal(tokenRequests(stack.attio).length, 0, 'no code exchange');
      });

      // Expired state (older than 10 minutes) is not tested here: it would
      // need a 10-minute wait. Host unit tests cover expiry
      // (src/core/callback.rs: locate/check_browser at and after expires_at).
    });

    describe('refresh (POST /oauth/token grant_type=refresh_token)', () => {
      let refreshToken;
      before(async () => {
        const { res } = await manualFlow(rtStack);
        assert.equal(res.status, 200);
        refreshToken = rtStack.attio.refreshTokens.at(-1);
        assert.ok(refreshToken);
      }, { timeout: 30_000 });

      it('a refresh token Attio issued → 200 JSON with a new access token, no-store', async () => {
        const r = await tokenRequest(rtStack.url, { grant_type: 'refresh_token', refresh_token: refreshToken });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.access_token, rtStack.attio.issued.at(-1));
        assert.equal(r.body.token_type, 'Bearer');
        assert.equal(r.headers.get('cache-control'), 'no-store');
        assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
        const sent = tokenRequests(rtStack.attio).at(-1).form;
        assert.equal(sent.grant_type, 'refresh_token');
        assert.equal(sent.refresh_token, refreshToken);
        assert.equal(sent.client_secret, ATTIO_SECRET);
      });

      it('an unknown refresh token → 400 invalid_grant', async () => {
        const r = await tokenRequest(rtStack.url, { grant_type: 'refresh_token', refresh_token: 'attio_rt_unknown' });
        assertErrorJson(r, 400, 'invalid_grant');
      });

      it('missing refresh_token → 400 invalid_request', async () => {
        const r = await tokenRequest(rtStack.url, { grant_type: 'refresh_token' });
        assertErrorJson(r, 400, 'invalid_request');
        assert.equal(tokenRequests(rtStack.attio).length, 0, 'nothing sent to Attio');
      });

      it('grant_type=password → 400 unsupported_grant_type', async () => {
        const r = await tokenRequest(rtStack.url, { grant_type: 'password', username: 'u', password: 'p' });
        assertErrorJson(r, 400, 'unsupported_grant_type');
        assert.equal(tokenRequests(rtStack.attio).length, 0, 'nothing sent to Attio');
      });

      it('a JSON body is accepted for refresh', async () => {
        const res = await fetch(`${rtStack.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: refreshToken }),
        });
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        assert.equal(body.access_token, rtStack.attio.issued.at(-1));
        assert.equal(body.token_type, 'Bearer');
        assert.equal(res.headers.get('cache-control'), 'no-store');
      });

      it('Attio fails with 500 → 502 server_error', async () => {
        rtStack.attio.fail('token', 'status500');
        const r = await tokenRequest(rtStack.url, { grant_type: 'refresh_token', refresh_token: refreshToken });
        assertErrorJson(r, 502, 'server_error');
        assert.ok(!JSON.stringify(r.body).includes('injected'), 'no raw Attio body');
      });

      it('Attio rate limits (429) → 503 temporarily_unavailable with Retry-After', async () => {
        rtStack.attio.fail('token', 'status429');
        const r = await tokenRequest(rtStack.url, { grant_type: 'refresh_token', refresh_token: refreshToken });
        assertErrorJson(r, 503, 'temporarily_unavailable');
        assert.ok(r.headers.get('retry-after'), 'Retry-After is set');
      });
    });
  });
}
