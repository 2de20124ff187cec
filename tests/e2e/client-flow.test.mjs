// MCP client flows: registration, authorize with PKCE, consent, callback,
// code exchange with each client authentication method, and revocation,
// with and without KV.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, MODES, Browser, register, clientFlow, tokenRequest, pkcePair, consentValue } from '../support/client.mjs';

const REDIRECT = 'http://127.0.0.1:9/callback';

for (const mode of MODES) {
  describe(`registration (${mode.name})`, () => {
    let s;
    before(async () => { s = await startStack({ kv: mode.kv }); });
    after(async () => { await s?.close(); });

    const post = (body, headers = { 'content-type': 'application/json' }) =>
      fetch(`${s.url}/oauth/register`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

    it('registers a public client (none is the default) with 201 and no secret', async () => {
      const res = await post({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], client_name: 'Claude' });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const c = await res.json();
      assert.ok(c.client_id);
      assert.equal(typeof c.client_id_issued_at, 'number');
      assert.equal(c.token_endpoint_auth_method, 'none');
      assert.deepEqual(c.redirect_uris, ['https://claude.ai/api/mcp/auth_callback']);
      assert.equal(c.client_name, 'Claude');
      assert.equal(c.client_secret, undefined);
      assert.equal(c.client_secret_expires_at, undefined);
      if (mode.kv) assert.ok((await s.broker.kvKeys()).includes(`client:${c.client_id}`));
    });

    it('gives confidential clients their own secret, never Attio\'s', async () => {
      for (const method of ['client_secret_post', 'client_secret_basic']) {
        const c = await (await post({ redirect_uris: [REDIRECT], token_endpoint_auth_method: method })).json();
        assert.equal(c.token_endpoint_auth_method, method);
        assert.ok(c.client_secret && c.client_secret.length >= 32);
        assert.notEqual(c.client_secret, 'test-attio-secret-do-not-leak');
        assert.equal(typeof c.client_secret_expires_at, 'number');
      }
    });

    it('accepts the redirect URIs real clients use', async () => {
      const uris = [
        'https://claude.ai/api/mcp/auth_callback', 'https://chatgpt.com/connector_platform_oauth_redirect',
        'http://localhost:3334/oauth/callback', 'http://127.0.0.1:33418/', 'http://[::1]:8080/cb',
        'cursor://anysphere.cursor-mcp/oauth/callback', 'https://vscode.dev/redirect',
      ];
      const res = await post({ redirect_uris: uris });
      assert.equal(res.status, 201);
    });

    it('refuses bad redirect URIs with invalid_redirect_uri', async () => {
      for (const uris of [undefined, [], 'https://x.dev/cb', ['http://evil.example/cb'], ['https://x.dev/cb#f'], ['javascript:alert(1)'],
        ['data:text/html,hi'], ['file:///etc/passwd'], ['https://claude.ai@evil.example/cb'], ['relative/cb'], ['http://192.168.0.1/cb']]) {
        const res = await post({ redirect_uris: uris });
        assert.equal(res.status, 400, JSON.stringify(uris));
        const e = await res.json();
        assert.equal(e.error, 'invalid_redirect_uri', JSON.stringify(uris));
        assert.ok(e.error_description);
      }
    });

    it('refuses bad metadata with invalid_client_metadata', async () => {
      for (const body of ['not json', '[1]', { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt' },
        { redirect_uris: [REDIRECT], grant_types: ['client_credentials'] }, { redirect_uris: [REDIRECT], response_types: ['token'] },
        { redirect_uris: [REDIRECT], client_name: 42 }]) {
        const res = await post(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal((await res.json()).error, 'invalid_client_metadata');
      }
    });

    it('refuses a body over 64 KiB with 413', async () => {
      const res = await post({ redirect_uris: [REDIRECT], client_name: 'x'.repeat(70 * 1024) });
      assert.equal(res.status, 413);
    });
  });

  describe(`authorize, consent and code exchange (${mode.name})`, () => {
    let s;
    before(async () => { s = await startStack({ kv: mode.kv }); });
    after(async () => { await s?.close(); });

    it('a public client completes the flow and gets the Attio token', async () => {
      const client = await register(s.url);
      const browser = new Browser();
      const { params, state, pkce } = await clientFlow(s.url, browser, { client, redirectUri: REDIRECT, extra: { resource: 'https://mcp.example/mcp', scope: 'record_permission:read' } });
      assert.equal(params.state, state);
      assert.equal(params.iss, s.url);
      assert.ok(params.code);
      const t = await tokenRequest(s.url, { grant_type: 'authorization_code', code: params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: pkce.verifier, resource: 'https://mcp.example/mcp' });
      assert.equal(t.status, 200, JSON.stringify(t.body));
      assert.equal(t.headers.get('cache-control'), 'no-store');
      assert.equal(t.body.access_token, s.attio.issued.at(-1));
      assert.equal(t.body.token_type, 'Bearer');
      assert.equal(t.body.scope, 'record_permission:read-write object_configuration:read list_entry:read');
      assert.equal(t.body.refresh_token, undefined, 'no refresh token when Attio gave none');
      assert.equal(t.body.expires_in, undefined, 'no invented expiry');
      // used once (without KV: within the isolate, which here is the only one)
      const again = await tokenRequest(s.url, { grant_type: 'authorization_code', code: params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: pkce.verifier });
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'invalid_grant');
    });

    it('the consent page names the client and its redirect host, escaped', async () => {
      const client = await register(s.url, { client_name: '<script>alert(1)</script>Evil', redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] });
      const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: 'https://claude.ai/api/mcp/auth_callback', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      const res = await new Browser().request(`${s.url}/oauth/authorize?${q}`);
      assert.equal(res.status, 200);
      const html = await res.text();
      assert.ok(!html.includes('<script>alert(1)'));
      assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;Evil'));
      assert.match(html, /claude\.ai/);
      assert.match(html, />Approve</);
      assert.match(html, />Deny</);
      assert.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/);
      const unnamed = await register(s.url, { client_name: undefined });
      const q2 = new URLSearchParams({ response_type: 'code', client_id: unnamed.client_id, redirect_uri: REDIRECT, code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      assert.match(await (await fetch(`${s.url}/oauth/authorize?${q2}`)).text(), /Unnamed client/);
    });

    it('deny sends access_denied back to the client with its state', async () => {
      const client = await register(s.url);
      const browser = new Browser();
      const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, state: 'keep me', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      const page = await browser.request(`${s.url}/oauth/authorize?${q}`);
      const consent = consentValue(await page.text());
      const res = await browser.request(`${s.url}/oauth/authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ consent, action: 'deny' }) });
      assert.equal(res.status, 302);
      const loc = new URL(res.headers.get('location'));
      assert.equal(loc.origin + loc.pathname, REDIRECT);
      assert.equal(loc.searchParams.get('error'), 'access_denied');
      assert.equal(loc.searchParams.get('state'), 'keep me');
      assert.equal(loc.searchParams.get('iss'), s.url);
    });

    it('the consent form only works in the browser it was shown to (CSRF)', async () => {
      const client = await register(s.url);
      const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      const consent = consentValue(await (await new Browser().request(`${s.url}/oauth/authorize?${q}`)).text());
      const attacker = new Browser();
      await attacker.request(`${s.url}/oauth/authorize`); // gets its own browser cookie
      const res = await attacker.request(`${s.url}/oauth/authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ consent, action: 'approve' }) });
      assert.equal(res.status, 400);
      assert.match(res.headers.get('content-type'), /text\/html/);
      const none = await fetch(`${s.url}/oauth/authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ consent, action: 'approve' }), redirect: 'manual' });
      assert.equal(none.status, 400);
    });

    it('an approval is remembered: a reconnect skips the consent page', async () => {
      const client = await register(s.url);
      const browser = new Browser();
      await clientFlow(s.url, browser, { client, redirectUri: REDIRECT });
      const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      const res = await browser.request(`${s.url}/oauth/authorize?${q}`);
      assert.equal(res.status, 302);
      assert.ok(res.headers.get('location').startsWith(s.attio.urls.authorize));
      // the approval is for this redirect URI only: another loopback port asks again
      const q3 = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: 'http://127.0.0.1:10/callback', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      const client2 = await register(s.url, { redirect_uris: ['http://127.0.0.1/callback'] });
      const approved2 = new Browser();
      await clientFlow(s.url, approved2, { client: client2, redirectUri: 'http://127.0.0.1:4000/callback' });
      const q4 = new URLSearchParams({ response_type: 'code', client_id: client2.client_id, redirect_uri: 'http://127.0.0.1:5000/callback', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      assert.equal((await approved2.request(`${s.url}/oauth/authorize?${q4}`)).status, 200, 'consent again on another port');
      void q3;
      // another client is not approved by it
      const other = await register(s.url);
      const q2 = new URLSearchParams({ response_type: 'code', client_id: other.client_id, redirect_uri: REDIRECT, code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
      assert.equal((await browser.request(`${s.url}/oauth/authorize?${q2}`)).status, 200);
    });

    it('an unknown or forged client gets an error page, never a redirect', async () => {
      for (const id of ['nope', 'kv.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'A'.repeat(200)]) {
        const q = new URLSearchParams({ response_type: 'code', client_id: id, redirect_uri: REDIRECT, code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
        const res = await fetch(`${s.url}/oauth/authorize?${q}`, { redirect: 'manual' });
        assert.equal(res.status, 400, id);
        assert.equal(res.headers.get('location'), null);
        assert.match(res.headers.get('content-type'), /text\/html/);
      }
    });

    it('an unregistered redirect_uri gets an error page, never a redirect', async () => {
      const client = await register(s.url);
      for (const r of ['https://evil.example/callback', 'http://127.0.0.1:9/callback/', 'http://127.0.0.1:9/Callback', 'http://localhost:9/callback']) {
        const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: r, code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
        const res = await fetch(`${s.url}/oauth/authorize?${q}`, { redirect: 'manual' });
        assert.equal(res.status, 400, r);
        assert.equal(res.headers.get('location'), null, r);
      }
    });

    it('a loopback redirect URI matches on any port', async () => {
      const client = await register(s.url, { redirect_uris: ['http://127.0.0.1:33418/'] });
      const { params } = await clientFlow(s.url, new Browser(), { client, redirectUri: 'http://127.0.0.1:50123/' });
      assert.ok(params.code);
    });

    it('missing or plain PKCE is an error redirect to the verified redirect URI', async () => {
      const client = await register(s.url);
      for (const [extra, error] of [[{}, 'invalid_request'], [{ code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' }, 'invalid_request'], [{ code_challenge: pkcePair().challenge, code_challenge_method: 'S256', response_type: 'token' }, 'unsupported_response_type']]) {
        const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, state: 's1', ...extra });
        const res = await fetch(`${s.url}/oauth/authorize?${q}`, { redirect: 'manual' });
        assert.equal(res.status, 302, JSON.stringify(extra));
        const loc = new URL(res.headers.get('location'));
        assert.equal(loc.origin + loc.pathname, REDIRECT);
        assert.equal(loc.searchParams.get('error'), error);
        assert.equal(loc.searchParams.get('state'), 's1');
      }
    });

    it('PKCE, redirect_uri and client binding are checked at the token endpoint', async () => {
      const client = await register(s.url);
      const other = await register(s.url);
      const flow = async () => (await clientFlow(s.url, new Browser(), { client, redirectUri: REDIRECT }));
      const cases = [
        [(f) => ({ code_verifier: pkcePair().verifier }), 'invalid_grant'],
        [(f) => ({ code_verifier: 'short' }), 'invalid_grant'],
        [(f) => ({ code_verifier: undefined }), 'invalid_request'],
        [(f) => ({ redirect_uri: REDIRECT + '/' }), 'invalid_grant'],
        [(f) => ({ client_id: other.client_id }), 'invalid_grant'],
        [(f) => ({ code: f.params.code.slice(0, -2) + 'AA' }), 'invalid_grant'],
      ];
      for (const [change, error] of cases) {
        const f = await flow();
        const form = { grant_type: 'authorization_code', code: f.params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: f.pkce.verifier, ...change(f) };
        for (const k of Object.keys(form)) if (form[k] === undefined) delete form[k];
        const t = await tokenRequest(s.url, form);
        assert.equal(t.status, 400, JSON.stringify(change(f)));
        assert.equal(t.body.error, error, JSON.stringify(change(f)));
      }
    });

    it('confidential clients authenticate with post or basic; wrong secret is 401', async () => {
      for (const method of ['client_secret_post', 'client_secret_basic']) {
        const client = await register(s.url, { token_endpoint_auth_method: method });
        const base = async () => {
          const f = await clientFlow(s.url, new Browser(), { client, redirectUri: REDIRECT });
          return { grant_type: 'authorization_code', code: f.params.code, redirect_uri: REDIRECT, code_verifier: f.pkce.verifier };
        };
        const basic = (id, secret) => ({ authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64') });
        const ok = method === 'client_secret_post'
          ? await tokenRequest(s.url, { ...(await base()), client_id: client.client_id, client_secret: client.client_secret })
          : await tokenRequest(s.url, await base(), basic(client.client_id, client.client_secret));
        assert.equal(ok.status, 200, `${method}: ${JSON.stringify(ok.body)}`);
        assert.equal(ok.body.access_token, s.attio.issued.at(-1));

        const wrong = await tokenRequest(s.url, { ...(await base()), client_id: client.client_id, client_secret: 'wrong' });
        assert.equal(wrong.status, 401);
        assert.equal(wrong.body.error, 'invalid_client');
        assert.ok(wrong.headers.get('www-authenticate'));

        const missing = await tokenRequest(s.url, { ...(await base()), client_id: client.client_id });
        assert.equal(missing.status, 401);

        const both = await tokenRequest(s.url, { ...(await base()), client_id: client.client_id, client_secret: client.client_secret }, basic(client.client_id, client.client_secret));
        assert.equal(both.status, 400);
        assert.equal(both.body.error, 'invalid_request');
      }
    });

    it('a refresh token from Attio reaches the client bound to it: only that client can refresh', async () => {
      const s2 = await startStack({ kv: mode.kv, attio: { issueRefreshToken: true } });
      try {
        const client = await register(s2.url);
        const f = await clientFlow(s2.url, new Browser(), { client, redirectUri: REDIRECT });
        const t = await tokenRequest(s2.url, { grant_type: 'authorization_code', code: f.params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: f.pkce.verifier });
        assert.equal(t.status, 200);
        const attioRt = s2.attio.refreshTokens.at(-1);
        assert.ok(t.body.refresh_token);
        assert.notEqual(t.body.refresh_token, attioRt, "Attio's refresh token is sealed to the client");
        assert.ok(!t.body.refresh_token.includes(attioRt));
        const r = await tokenRequest(s2.url, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: client.client_id });
        assert.equal(r.status, 200);
        assert.ok(r.body.access_token);
        assert.equal(s2.attio.requests.filter((q) => q.path === '/oauth/token').at(-1).form.refresh_token, attioRt, 'Attio got its own refresh token');
        const anonymous = await tokenRequest(s2.url, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token });
        assert.equal(anonymous.status, 401);
        assert.equal(anonymous.body.error, 'invalid_client');
        const other = await register(s2.url);
        const stolen = await tokenRequest(s2.url, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: other.client_id });
        assert.equal(stolen.status, 400);
        assert.equal(stolen.body.error, 'invalid_grant');
        const rawFromClient = await tokenRequest(s2.url, { grant_type: 'refresh_token', refresh_token: attioRt, client_id: client.client_id });
        assert.equal(rawFromClient.status, 400);
        // revoking the bound refresh token revokes Attio's own at Attio
        const revoke = (form) => fetch(`${s2.url}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
        const before = s2.attio.requests.filter((q) => q.path === '/oauth/revoke').length;
        assert.equal((await revoke({ token: t.body.refresh_token, client_id: other.client_id })).status, 200);
        assert.equal(s2.attio.requests.filter((q) => q.path === '/oauth/revoke').length, before, "another client's revocation does nothing");
        assert.equal((await revoke({ token: t.body.refresh_token, client_id: client.client_id })).status, 200);
        assert.equal(s2.attio.requests.filter((q) => q.path === '/oauth/revoke').at(-1).form.token, attioRt);
        const afterRevoke = await tokenRequest(s2.url, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: client.client_id });
        assert.equal(afterRevoke.status, 400);
        assert.equal(afterRevoke.body.error, 'invalid_grant');
      } finally {
        await s2.close();
      }
    });

    it('Attio denial in a client flow goes back to the client as access_denied', async () => {
      const client = await register(s.url);
      s.attio.fail('authorize', 'deny');
      try {
        const { params } = await clientFlow(s.url, new Browser(), { client, redirectUri: REDIRECT, state: 'abc' });
        assert.equal(params.error, 'access_denied');
        assert.equal(params.state, 'abc');
      } finally {
        s.attio.reset();
      }
    });

    it('revocation forwards to Attio and answers 200, also for unknown tokens', async () => {
      const client = await register(s.url);
      const f = await clientFlow(s.url, new Browser(), { client, redirectUri: REDIRECT });
      const t = await tokenRequest(s.url, { grant_type: 'authorization_code', code: f.params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: f.pkce.verifier });
      const revoke = (form) => fetch(`${s.url}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
      const res = await revoke({ token: t.body.access_token, client_id: client.client_id });
      assert.equal(res.status, 200);
      const seen = s.attio.requests.filter((r) => r.path === '/oauth/revoke').at(-1);
      assert.equal(seen.form.token, t.body.access_token);
      assert.equal((await revoke({ token: 'unknown-token' })).status, 200);
      const missing = await revoke({});
      assert.equal(missing.status, 400);
      assert.equal((await missing.json()).error, 'invalid_request');
      s.attio.fail('revoke', 'status500');
      try {
        const down = await revoke({ token: 'x' });
        assert.equal(down.status, 503);
        assert.equal((await down.json()).error, 'temporarily_unavailable');
      } finally {
        s.attio.reset();
      }
    });
  });
}
