// End-to-end: the official MCP TypeScript SDK's client `auth()` against the
// broker, with a real (headless Chromium) browser on the consent page, the
// fake Attio behind it, and a loopback redirect URI served by a tiny Node
// HTTP server, the way Claude Code / mcp-remote style clients work.
//
// Per storage mode: discovery + registration + consent approve + code
// exchange; a reconnect that skips consent (approval cookie); and a denial.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { startStack, MODES } from '../support/client.mjs';

const CLIENT_NAME = 'MCP SDK e2e';
const STEP_MS = 15_000; // any single wait (navigation, callback)
const TEST_MS = 60_000;

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

/** Reject after `ms` with a message naming what was awaited. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A loopback redirect URI (RFC 8252): http://127.0.0.1:<port>/callback.
 * `next()` resolves with the query of the next request to /callback.
 */
async function startLoopback() {
  const hits = [];
  const waiters = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    if (u.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const params = Object.fromEntries(u.searchParams);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end('<!doctype html><title>Loopback</title><p id="done">You can close this window.</p>');
    const w = waiters.shift();
    if (w) w(params); else hits.push(params);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    redirectUri: `http://127.0.0.1:${port}/callback`,
    next() {
      if (hits.length) return Promise.resolve(hits.shift());
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
        for (const s of sockets) s.destroy();
      });
    },
  };
}

/** An in-memory OAuthClientProvider whose user agent is a Chromium page. */
class ChromiumProvider {
  constructor({ redirectUri, context }) {
    this._redirectUri = redirectUri;
    this._context = context;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.authorizationUrls = [];
    this.pages = [];
    this.savedClients = [];
    this.savedTokens = [];
    /** Responses the browser saw for the last authorization (url, status). */
    this.responses = [];
  }

  get redirectUrl() { return this._redirectUri; }

  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [this._redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this._state = 'sdk-' + randomBytes(8).toString('hex');
    return this._state;
  }
  get lastState() { return this._state; }

  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; this.savedClients.push(info); }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; this.savedTokens.push(tokens); }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }

  async redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    const page = await this._context.newPage();
    page.setDefaultTimeout(STEP_MS);
    this.pages.push(page);
    this.responses = [];
    page.on('response', (r) => {
      this.responses.push({ url: r.url(), status: r.status(), method: r.request().method() });
    });
    // Resolves on the first document load: the consent page, or (when the
    // consent is remembered) the loopback page after Attio and the callback.
    await page.goto(String(url), { waitUntil: 'load', timeout: STEP_MS });
  }

  get page() { return this.pages.at(-1); }
}

/** A fetch that records what the SDK asks the broker. */
function recordingFetch(log) {
  return async (url, init = {}) => {
    const res = await fetch(url, init);
    log.push({ method: (init.method || 'GET').toUpperCase(), url: String(url), status: res.status });
    return res;
  };
}

const path = (u) => new URL(u).pathname;

for (const mode of MODES) {
  describe(`MCP TypeScript SDK auth() against the broker (${mode.name})`, { timeout: 4 * TEST_MS }, () => {
    let stack;
    let browser;

    before(async () => {
      stack = await startStack({ kv: mode.kv });
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
    });

    after(async () => {
      await browser?.close().catch(() => {});
      await stack?.close().catch(() => {});
    });

    /** A fresh browser context, provider and loopback server; cleaned up by the returned close(). */
    async function setup() {
      const loopback = await startLoopback();
      const context = await browser.newContext();
      const provider = new ChromiumProvider({ redirectUri: loopback.redirectUri, context });
      const requests = [];
      return {
        loopback, context, provider, requests, fetchFn: recordingFetch(requests),
        async close() {
          await context.close().catch(() => {});
          await loopback.close();
        },
      };
    }

    /** The consent page is showing: check it, then click one of its buttons. */
    async function decide(provider, loopback, button) {
      const page = provider.page;
      assert.equal(path(page.url()), '/oauth/authorize', `expected the consent page, at ${page.url()}`);
      const text = await page.locator('body').innerText();
      assert.match(text, /MCP SDK e2e/, 'the consent page names the client');
      assert.ok(text.includes(`127.0.0.1:${loopback.port}`), `the consent page names the redirect host 127.0.0.1:${loopback.port}`);
      const heading = await page.getByRole('heading', { level: 1 }).innerText();
      assert.match(heading, /MCP SDK e2e/);
      const callback = loopback.next();
      await page.getByRole('button', { name: button, exact: true }).click();
      return within(callback, STEP_MS, `the redirect to ${loopback.redirectUri} after "${button}"`);
    }

    it('discovers, registers, shows consent, and exchanges the code (REDIRECT then AUTHORIZED)', { timeout: TEST_MS }, async () => {
      const s = await setup();
      try {
        const { provider, loopback, requests, fetchFn } = s;
        const issuedBefore = stack.attio.issued.length;

        const first = await within(auth(provider, { serverUrl: stack.url, fetchFn }), STEP_MS, 'auth() to redirect');
        assert.equal(first, 'REDIRECT');

        // Discovery went through RFC 9728 then RFC 8414, then registration.
        const seen = requests.map((r) => `${r.method} ${path(r.url)} ${r.status}`);
        assert.ok(seen.includes('GET /.well-known/oauth-protected-resource 200'), `PRM fetched: ${seen.join(', ')}`);
        assert.ok(seen.includes('GET /.well-known/oauth-authorization-server 200'), `AS metadata fetched: ${seen.join(', ')}`);
        assert.ok(seen.includes('POST /oauth/register 201'), `registered: ${seen.join(', ')}`);
        for (const r of requests) assert.ok(r.url.startsWith(stack.url + '/'), `SDK request stays on the broker: ${r.url}`);

        const info = provider.clientInformation();
        assert.ok(info?.client_id, 'the SDK saved a client_id from registration');
        assert.equal(info.client_name, CLIENT_NAME);
        assert.deepEqual(info.redirect_uris, [loopback.redirectUri]);
        assert.equal(info.token_endpoint_auth_method, 'none');
        assert.equal(info.client_secret, undefined, 'a public client gets no secret');

        // The authorization request the SDK built.
        const authUrl = provider.authorizationUrls.at(-1);
        assert.equal(authUrl.origin + authUrl.pathname, `${stack.url}/oauth/authorize`);
        const q = Object.fromEntries(authUrl.searchParams);
        assert.equal(q.response_type, 'code');
        assert.equal(q.client_id, info.client_id);
        assert.equal(q.redirect_uri, loopback.redirectUri);
        assert.equal(q.code_challenge_method, 'S256');
        assert.match(q.code_challenge, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(q.state, provider.lastState);
        assert.equal(q.resource, stack.url, 'resource is the PRM resource, verbatim');

        // Consent, approve, through the fake Attio and the callback, back to the loopback.
        const params = await decide(provider, loopback, 'Approve');
        assert.ok(params.code, `a code came back: ${JSON.stringify(params)}`);
        assert.equal(params.state, provider.lastState);
        assert.equal(params.iss, stack.url, 'RFC 9207 iss is the broker URL');
        assert.equal(params.error, undefined);
        assert.ok(stack.attio.requests.some((r) => r.method === 'GET' && r.path === '/authorize'), 'the browser went to Attio');

        const second = await within(auth(provider, { serverUrl: stack.url, authorizationCode: params.code, fetchFn }), STEP_MS, 'auth() code exchange');
        assert.equal(second, 'AUTHORIZED');
        assert.ok(requests.some((r) => r.method === 'POST' && path(r.url) === '/oauth/token' && r.status === 200), 'token endpoint called');

        const tokens = provider.tokens();
        assert.equal(stack.attio.issued.length, issuedBefore + 1, 'Attio issued exactly one token');
        assert.equal(tokens.access_token, stack.attio.issued.at(-1));
        assert.match(tokens.token_type, /^bearer$/i);
        assert.equal(provider.clientInformation().client_id, info.client_id, 'the same registration is kept');
      } finally {
        await s.close();
      }
    });

    it('reconnect with the same browser and client skips the consent page', { timeout: TEST_MS }, async () => {
      const s = await setup();
      try {
        const { provider, loopback, fetchFn } = s;

        // First connection: consent shown and approved.
        assert.equal(await auth(provider, { serverUrl: stack.url, fetchFn }), 'REDIRECT');
        const clientId = provider.clientInformation().client_id;
        const firstParams = await decide(provider, loopback, 'Approve');
        assert.ok(firstParams.code);
        assert.equal(await auth(provider, { serverUrl: stack.url, authorizationCode: firstParams.code, fetchFn }), 'AUTHORIZED');
        const firstToken = provider.tokens().access_token;
        await provider.page.close();

        // Second connection: same context (cookies), same registration. No
        // refresh token from the fake Attio, so the SDK starts a new authorization.
        assert.equal(provider.tokens().refresh_token, undefined);
        const callback = loopback.next();
        const again = await within(auth(provider, { serverUrl: stack.url, fetchFn }), STEP_MS, 'auth() to redirect (reconnect)');
        assert.equal(again, 'REDIRECT');
        assert.equal(provider.clientInformation().client_id, clientId, 'no new registration');
        assert.equal(provider.savedClients.length, 1, 'saveClientInformation was called once');

        const params = await within(callback, STEP_MS, 'the redirect to the loopback without consent');
        const page = provider.page;
        const flow = provider.responses.map((r) => `${r.method} ${r.status} ${r.url.split('?')[0]}`);
        const authorize = provider.responses.find((r) => path(r.url) === '/oauth/authorize');
        assert.equal(authorize?.status, 302, `authorize answers 302 (no consent page): ${flow.join(' | ')}`);
        assert.ok(!provider.responses.some((r) => path(r.url) === '/oauth/authorize' && r.status === 200), 'no consent page');
        assert.ok(provider.responses.some((r) => r.url.startsWith(stack.attio.url + '/authorize')), `went to Attio: ${flow.join(' | ')}`);
        assert.ok(provider.responses.some((r) => r.url.startsWith(stack.url + '/oauth/callback')), `through the callback: ${flow.join(' | ')}`);
        assert.ok(page.url().startsWith(loopback.redirectUri), `ended on the loopback: ${page.url()}`);
        assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0);

        assert.ok(params.code);
        assert.equal(params.state, provider.lastState);
        assert.equal(params.iss, stack.url);
        assert.notEqual(params.code, firstParams.code);

        assert.equal(await auth(provider, { serverUrl: stack.url, authorizationCode: params.code, fetchFn }), 'AUTHORIZED');
        assert.equal(provider.tokens().access_token, stack.attio.issued.at(-1));
        assert.notEqual(provider.tokens().access_token, firstToken);
        assert.match(provider.tokens().token_type, /^bearer$/i);
      } finally {
        await s.close();
      }
    });

    it('Deny on the consent page sends access_denied with the state back to the client', { timeout: TEST_MS }, async () => {
      const s = await setup();
      try {
        const { provider, loopback, fetchFn } = s;
        const attioAuthorizesBefore = stack.attio.requests.filter((r) => r.path === '/authorize').length;
        const issuedBefore = stack.attio.issued.length;

        assert.equal(await auth(provider, { serverUrl: stack.url, fetchFn }), 'REDIRECT');
        const params = await decide(provider, loopback, 'Deny');
        assert.equal(params.error, 'access_denied', JSON.stringify(params));
        assert.equal(params.state, provider.lastState);
        assert.equal(params.iss, stack.url);
        assert.equal(params.code, undefined);
        assert.equal(stack.attio.requests.filter((r) => r.path === '/authorize').length, attioAuthorizesBefore, 'never sent to Attio');
        assert.equal(stack.attio.issued.length, issuedBefore);
        assert.equal(provider.tokens(), undefined);

        // A denial is not remembered: the next attempt shows the consent page again.
        assert.equal(await auth(provider, { serverUrl: stack.url, fetchFn }), 'REDIRECT');
        assert.equal(path(provider.page.url()), '/oauth/authorize');
        assert.equal(await provider.page.getByRole('button', { name: 'Approve', exact: true }).count(), 1);
      } finally {
        await s.close();
      }
    });
  });
}
