// Attio failing in every way the fake can: 500, 429 with a Retry-After date,
// a reply slower than the broker's deadline, 200 with HTML, an empty 200, a
// 5 MB answer, and a refused connection. The API endpoints (refresh at
// /oauth/token, /oauth/revoke) must answer an OAuth JSON error with 502, 503
// or 504; the browser path (/oauth/callback's code exchange in an MCP client's
// flow, and the best-effort introspection) must end the flow cleanly and let
// the next one succeed. Attio's raw bodies are never passed on or logged.
//
// The manual flow's error pages for each code-exchange fault are covered in
// manual-flow.test.mjs; this file covers the API endpoints, an MCP client's
// flow and introspection.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, MODES, Browser, register, clientFlow, tokenRequest, ATTIO_SECRET, closedPort } from '../support/client.mjs';
import { workerLogs } from '../support/broker.mjs';

const REDIRECT = 'http://127.0.0.1:9/callback';
const FORM = 'application/x-www-form-urlencoded';
// Strings found only in the fake's failure bodies: never to be passed on.
const RAW_MARKERS = ['oops', '"padding"', '&quot;padding', 'xxxxxxxxxx', 'status_code', 'Fake Attio', 'injected', 'rate_limit', 'Rate limit exceeded', 'internal_server_error'];
const TOKEN_SHAPE = /attio_at_[0-9a-f]{48}/;


async function post(base, path, form, headers = {}) {
  const t0 = Date.now();
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': FORM, ...headers }, body: new URLSearchParams(form) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json, ms: Date.now() - t0 };
}

const show = (r) => `${r.status} ${r.text.slice(0, 300)}`;

function noRawBody(text, headers) {
  for (const m of RAW_MARKERS) assert.ok(!text.includes(m), `passes on the fake's raw body (${m}): ${text.slice(0, 200)}`);
  assert.ok(!TOKEN_SHAPE.test(text), 'passes on a token from an unusable answer');
  assert.ok(!text.includes(ATTIO_SECRET), 'leaks ATTIO_CLIENT_SECRET');
  if (headers) for (const [k, v] of headers) assert.ok(!v.includes(ATTIO_SECRET) && !RAW_MARKERS.some((m) => v.includes(m)), `header ${k} leaks`);
}

/** An OAuth JSON error for an upstream fault. */
function apiError(r, status, errors) {
  assert.equal(r.status, status, show(r));
  assert.ok([502, 503, 504].includes(r.status), `an upstream fault is 502, 503 or 504: ${r.status}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.ok([].concat(errors).includes(r.json?.error), `error ${r.json?.error} not in ${errors}: ${show(r)}`);
  assert.equal(typeof r.json.error_description, 'string');
  assert.equal(r.json.access_token, undefined);
  noRawBody(r.text, r.headers);
}

/** The log lines written since `mark`: a status and a kind, never a body. */
function logsSince(mark) {
  const lines = workerLogs.slice(mark);
  for (const l of lines) noRawBody(l);
  return lines;
}

function assertRetryAfterDate(r) {
  const ra = r.headers.get('retry-after');
  assert.ok(ra, 'Retry-After is passed on');
  const when = Date.parse(ra);
  assert.ok(Number.isFinite(when), `Retry-After is Attio's HTTP date: ${ra}`);
  assert.ok(when > Date.now() - 5_000 && when < Date.now() + 120_000, `Retry-After is the date Attio gave: ${ra}`);
}

const REFRESH_FAULTS = [
  { name: '500', mode: 'status500', status: 502, error: 'server_error', log: /failed with HTTP 500/ },
  { name: '429 with a Retry-After date', mode: 'status429', status: 503, error: 'temporarily_unavailable', retryAfter: true, log: /rate limited/ },
  { name: 'a reply slower than the 10 s deadline', mode: 'slow', extra: { ms: 15_000 }, status: 504, error: 'temporarily_unavailable', within: [9_000, 14_000], log: /timed out/ },
  { name: '200 with HTML, not JSON', mode: 'notJson', status: 502, error: 'server_error', log: /unusable response body/ },
  { name: 'an empty 200', mode: 'empty', status: 502, error: 'server_error', log: /unusable response body/ },
  { name: 'a 5 MB answer', mode: 'huge', status: 502, error: 'server_error', log: /unusable response body/ },
  { name: '200 without an access token', mode: 'noAccessToken', status: 502, error: 'server_error', log: /unusable response body/ },
];

const REVOKE_FAULTS = [
  { name: '500', mode: 'status500', status: 503 },
  { name: '429 with a Retry-After date', mode: 'status429', status: 503, retryAfter: true },
  { name: 'a reply slower than the 5 s deadline', mode: 'slow', extra: { ms: 15_000 }, status: 503, within: [4_500, 9_000] },
];

for (const mode of MODES) {
  describe(`upstream faults (${mode.name})`, () => {
    let s; // fake Attio that issues refresh tokens
    let dead; // a broker whose token, introspect and revoke URLs point at a closed port
    before(async () => {
      s = await startStack({ kv: mode.kv, attio: { issueRefreshToken: true } });
      const port = await closedPort();
      dead = await startStack({
        kv: mode.kv,
        vars: {
          ATTIO_TOKEN_URL: `http://127.0.0.1:${port}/oauth/token`,
          ATTIO_INTROSPECT_URL: `http://127.0.0.1:${port}/oauth/introspect`,
          ATTIO_REVOKE_URL: `http://127.0.0.1:${port}/oauth/revoke`,
        },
      });
    });
    after(async () => { await Promise.allSettled([s?.close(), dead?.close()]); });
    beforeEach(() => { s?.attio.reset(); });

    /** A real refresh token from a completed client flow. */
    async function refreshToken() {
      const client = await register(s.url);
      const { params, pkce } = await clientFlow(s.url, new Browser(), { client, redirectUri: REDIRECT });
      const t = await tokenRequest(s.url, { grant_type: 'authorization_code', code: params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: pkce.verifier });
      assert.equal(t.status, 200, JSON.stringify(t.body));
      assert.ok(t.body.refresh_token, 'the fake issued a refresh token');
      return { client, refresh: t.body.refresh_token, access: t.body.access_token };
    }

    describe('API: refresh at POST /oauth/token', () => {
      for (const f of REFRESH_FAULTS) {
        it(`Attio answers ${f.name} → ${f.status} ${f.error}`, async () => {
          const { client, refresh } = await refreshToken();
          s.attio.fail('token', f.mode, f.extra);
          const mark = workerLogs.length;
          const r = await post(s.url, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refresh, client_id: client.client_id });
          apiError(r, f.status, f.error);
          if (f.retryAfter) assertRetryAfterDate(r);
          if (f.within) assert.ok(r.ms >= f.within[0] && r.ms < f.within[1], `the broker's deadline: took ${r.ms} ms`);
          await new Promise((res) => setTimeout(res, 50));
          assert.ok(logsSince(mark).some((l) => f.log.test(l)), `one log line with the status or kind (${f.log})`);
          // Attio recovers: the same refresh token works again.
          s.attio.reset();
          const ok = await post(s.url, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refresh, client_id: client.client_id });
          assert.equal(ok.status, 200, show(ok));
          assert.ok(ok.json.access_token);
        });
      }

      it('Attio cannot be reached (connection refused) → 502 OAuth JSON error', async () => {
        const mark = workerLogs.length;
        const r = await post(dead.url, '/oauth/token', { grant_type: 'refresh_token', refresh_token: 'attio_rt_x' });
        apiError(r, 502, ['server_error', 'temporarily_unavailable']);
        await new Promise((res) => setTimeout(res, 50));
        assert.ok(logsSince(mark).some((l) => /network error/.test(l)), 'a "network error" log line');
      });

      it('Attio refuses the refresh token (400, RFC 6749 or Attio-shaped) → 400 invalid_grant, not a fault', async () => {
        for (const m of ['status400', 'attio400']) {
          s.attio.fail('token', m);
          const r = await post(s.url, '/oauth/token', { grant_type: 'refresh_token', refresh_token: 'attio_rt_x' });
          assert.equal(r.status, 400, show(r));
          assert.equal(r.json.error, 'invalid_grant');
          noRawBody(r.text, r.headers);
        }
      });
    });

    describe('API: POST /oauth/revoke', () => {
      for (const f of REVOKE_FAULTS) {
        it(`Attio answers ${f.name} → ${f.status} temporarily_unavailable with Retry-After`, async () => {
          const { access } = await refreshToken();
          s.attio.fail('revoke', f.mode, f.extra);
          const t0 = Date.now();
          const r = await post(s.url, '/oauth/revoke', { token: access });
          apiError(r, f.status, 'temporarily_unavailable');
          assert.ok(r.headers.get('retry-after'), 'Retry-After is set');
          if (f.retryAfter) assertRetryAfterDate(r);
          if (f.within) assert.ok(Date.now() - t0 >= f.within[0] && Date.now() - t0 < f.within[1], `the broker's 5 s deadline: took ${Date.now() - t0} ms`);
          s.attio.reset();
          const ok = await post(s.url, '/oauth/revoke', { token: access });
          assert.equal(ok.status, 200, show(ok));
        });
      }

      it('Attio answers 200 with HTML, an empty body or 5 MB → 200 (revocation is judged by status only), nothing passed on', async () => {
        for (const m of ['notJson', 'empty', 'huge']) {
          s.attio.fail('revoke', m);
          const r = await post(s.url, '/oauth/revoke', { token: 'attio_at_x' });
          assert.equal(r.status, 200, `${m}: ${show(r)}`);
          assert.equal(r.text, '');
          noRawBody(r.text, r.headers);
        }
      });

      it('Attio cannot be reached (connection refused) → 503 temporarily_unavailable with Retry-After', async () => {
        const r = await post(dead.url, '/oauth/revoke', { token: 'attio_at_x' });
        apiError(r, 503, 'temporarily_unavailable');
        assert.ok(r.headers.get('retry-after'));
      });
    });

    describe("browser: an MCP client's flow when the code exchange fails", () => {
      const FLOW_FAULTS = [
        ['500', 'status500', 'server_error'],
        ['429 with a Retry-After date', 'status429', 'temporarily_unavailable'],
        ['a reply slower than the 10 s deadline', 'slow', 'temporarily_unavailable', { ms: 15_000 }],
        ['200 with HTML, not JSON', 'notJson', 'server_error'],
        ['an empty 200', 'empty', 'server_error'],
        ['a 5 MB answer', 'huge', 'server_error'],
      ];
      for (const [name, m, error, extra] of FLOW_FAULTS) {
        it(`Attio answers ${name} → back to the client with error=${error} and its state; the next flow succeeds`, async () => {
          const client = await register(s.url);
          s.attio.fail('token', m, extra);
          const mark = workerLogs.length;
          const { params } = await clientFlow(s.url, new Browser(), { client, redirectUri: REDIRECT, state: 'keep-me' });
          assert.equal(params.error, error, JSON.stringify(params));
          assert.equal(params.state, 'keep-me');
          assert.equal(params.iss, s.url);
          assert.equal(params.code, undefined, 'no code after a failed exchange');
          noRawBody(JSON.stringify(params));
          logsSince(mark);
          s.attio.reset();
          const next = await clientFlow(s.url, new Browser(), { client, redirectUri: REDIRECT });
          assert.ok(next.params.code, 'the next flow gets a code');
        });
      }

      it('Attio cannot be reached (connection refused) → back to the client with error=server_error', async () => {
        const client = await register(dead.url);
        const { params } = await clientFlow(dead.url, new Browser(), { client, redirectUri: REDIRECT, state: 'keep-me' });
        assert.ok(['server_error', 'temporarily_unavailable'].includes(params.error), JSON.stringify(params));
        assert.equal(params.state, 'keep-me');
        assert.equal(params.code, undefined);
      });
    });

    describe('browser: introspection fails (best effort, 3 s deadline)', () => {
      const INTROSPECT_FAULTS = [['500', 'status500'], ['429', 'status429'], ['a reply slower than 15 s', 'slow', { ms: 15_000 }], ['200 with HTML', 'notJson'], ['an empty 200', 'empty'], ['a 5 MB answer', 'huge']];
      for (const [name, m, extra] of INTROSPECT_FAULTS) {
        it(`Attio's introspection answers ${name} → the manual flow still shows the token page, without workspace`, async () => {
          s.attio.fail('introspect', m, extra);
          const browser = new Browser();
          const start = await browser.request(`${s.url}/oauth/authorize`);
          const back = await browser.request(start.headers.get('location'));
          const t0 = Date.now();
          const res = await browser.request(back.headers.get('location'));
          const html = await res.text();
          const ms = Date.now() - t0;
          assert.equal(res.status, 200, html.slice(0, 300));
          assert.match(res.headers.get('content-type'), /^text\/html/);
          assert.ok(html.includes(s.attio.issued.at(-1)), 'the token is shown');
          assert.ok(!html.includes('Acme Test Workspace'), 'no workspace from a failed introspection');
          for (const mk of RAW_MARKERS) assert.ok(!html.includes(mk), `page passes on ${mk}`);
          if (m === 'slow') assert.ok(ms >= 2_500 && ms < 7_000, `the 3 s introspection deadline: took ${ms} ms`);
        });
      }

      it('introspection unreachable (connection refused) → the client flow still completes', async () => {
        // dead's token URL is dead too, so use a stack with only introspection dead.
        const port = await closedPort();
        const half = await startStack({ kv: mode.kv, vars: { ATTIO_INTROSPECT_URL: `http://127.0.0.1:${port}/oauth/introspect` } });
        try {
          const client = await register(half.url);
          const { params, pkce } = await clientFlow(half.url, new Browser(), { client, redirectUri: REDIRECT });
          assert.ok(params.code, JSON.stringify(params));
          const t = await tokenRequest(half.url, { grant_type: 'authorization_code', code: params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: pkce.verifier });
          assert.equal(t.status, 200, JSON.stringify(t.body));
          assert.equal(t.body.access_token, half.attio.issued.at(-1));
        } finally {
          await half.close();
        }
      });
    });
  });
}
