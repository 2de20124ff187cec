// Foundation: health, discovery, routing rules, CORS and configuration
// errors, against the release Worker in workerd, with and without KV.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, MODES } from '../support/client.mjs';
import { startBroker } from '../support/broker.mjs';

for (const mode of MODES) {
  describe(`foundation (${mode.name})`, () => {
    let s;
    before(async () => { s = await startStack({ kv: mode.kv }); });
    after(async () => { await s?.close(); });

    it('GET /health reports ok, the storage mode and no secret values', async () => {
      const res = await fetch(`${s.url}/health`);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.status, 'ok');
      assert.equal(body.worker_url, s.url);
      assert.match(body.version, /^\d+\.\d+\.\d+/);
      assert.equal(body.checks.attio_client_secret, 'present');
      assert.match(body.checks.storage, mode.kv ? /^kv/ : /^stateless/);
      const text = JSON.stringify(body);
      assert.ok(!text.includes('test-attio-secret'), 'no secret in /health');
    });

    it('HEAD /health and /ping answer too', async () => {
      const head = await fetch(`${s.url}/health`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal((await head.text()).length, 0);
      const ping = await fetch(`${s.url}/ping`);
      assert.equal(ping.status, 200);
      assert.equal((await ping.json()).status, 'ok');
    });

    it('/health warns about a tunnel when WORKER_URL is unset', async () => {
      const res = await fetch(`${s.url}/health`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'abc.ngrok.app' } });
      const body = await res.json();
      assert.equal(body.warnings.length, 1);
      assert.match(body.warnings[0], /WORKER_URL/);
    });

    it('serves RFC 8414 metadata with the issuer byte for byte', async () => {
      const res = await fetch(`${s.url}/.well-known/oauth-authorization-server`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /application\/json/);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('cache-control'), 'public, max-age=3600');
      const m = await res.json();
      assert.equal(m.issuer, s.url);
      assert.ok(!m.issuer.endsWith('/'));
      assert.equal(m.authorization_endpoint, `${s.url}/oauth/authorize`);
      assert.equal(m.token_endpoint, `${s.url}/oauth/token`);
      assert.equal(m.registration_endpoint, `${s.url}/oauth/register`);
      assert.equal(m.revocation_endpoint, `${s.url}/oauth/revoke`);
      assert.deepEqual(m.response_types_supported, ['code']);
      assert.deepEqual(m.grant_types_supported, ['authorization_code', 'refresh_token']);
      assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
      assert.deepEqual(m.token_endpoint_auth_methods_supported, ['none', 'client_secret_post', 'client_secret_basic']);
      assert.equal(m.authorization_response_iss_parameter_supported, true);
      assert.ok(m.scopes_supported.includes('record_permission:read-write'));
      assert.ok(m.scopes_supported.every((x) => /^[a-z_]+:(read|read-write)$/.test(x)));
      assert.ok(m.service_documentation);
      const suffixed = await (await fetch(`${s.url}/.well-known/oauth-authorization-server/mcp`)).json();
      assert.equal(suffixed.issuer, s.url);
    });

    it('serves RFC 9728 metadata naming the broker as authorization server', async () => {
      const res = await fetch(`${s.url}/.well-known/oauth-protected-resource`);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=3600');
      const m = await res.json();
      assert.equal(m.resource, s.url);
      assert.deepEqual(m.authorization_servers, [s.url]);
      const suffixed = await (await fetch(`${s.url}/.well-known/oauth-protected-resource/mcp`)).json();
      assert.equal(suffixed.resource, `${s.url}/mcp`);
    });

    it('does not serve an OpenID configuration it could not honour', async () => {
      const res = await fetch(`${s.url}/.well-known/openid-configuration`);
      assert.equal(res.status, 404);
    });

    it('unknown paths get a JSON 404', async () => {
      for (const p of ['/nope', '/oauth', '/oauth/authorize/extra', '/%ff']) {
        const res = await fetch(`${s.url}${p}`);
        assert.equal(res.status, 404, p);
        const body = await res.json();
        assert.equal(body.error, 'not_found');
      }
    });

    it('a wrong method gets 405 with Allow', async () => {
      for (const [method, path, allow] of [
        ['GET', '/oauth/token', 'POST, OPTIONS'],
        ['DELETE', '/health', 'GET, HEAD, OPTIONS'],
        ['PUT', '/oauth/register', 'POST, OPTIONS'],
        ['POST', '/.well-known/oauth-authorization-server', 'GET, HEAD, OPTIONS'],
      ]) {
        const res = await fetch(`${s.url}${path}`, { method });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers.get('allow'), allow);
        assert.equal((await res.json()).error, 'method_not_allowed');
      }
      const page = await fetch(`${s.url}/oauth/callback`, { method: 'POST' });
      assert.equal(page.status, 405);
      assert.match(page.headers.get('content-type'), /text\/html/);
    });

    it('answers CORS preflight on every endpoint', async () => {
      for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource', '/oauth/register', '/oauth/token', '/oauth/revoke', '/health', '/oauth/authorize']) {
        const res = await fetch(`${s.url}${p}`, {
          method: 'OPTIONS',
          headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST', 'access-control-request-headers': 'mcp-protocol-version, content-type' },
        });
        assert.equal(res.status, 204, p);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.match(res.headers.get('access-control-allow-headers'), /MCP-Protocol-Version/i);
        assert.match(res.headers.get('access-control-allow-headers'), /Authorization/);
      }
      const res = await fetch(`${s.url}/oauth/token`, { method: 'POST', headers: { origin: 'http://localhost:6274' } });
      assert.equal(res.headers.get('access-control-expose-headers'), 'WWW-Authenticate');
    });

    it('the landing page links to the manual flow', async () => {
      const res = await fetch(`${s.url}/`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /href="\/oauth\/authorize"/);
    });
  });
}

describe('configuration', () => {
  it('a broker without secrets names what is missing, and never panics', async () => {
    const b = await startBroker({ kv: false, vars: {} });
    try {
      const health = await fetch(`${b.url}/health`);
      assert.equal(health.status, 503);
      const h = await health.json();
      assert.equal(h.status, 'misconfigured');
      assert.deepEqual(h.missing, ['ATTIO_CLIENT_ID', 'ATTIO_CLIENT_SECRET']);

      const page = await fetch(`${b.url}/oauth/authorize`, { redirect: 'manual' });
      assert.equal(page.status, 503);
      assert.match(page.headers.get('content-type'), /text\/html/);
      assert.match(await page.text(), /ATTIO_CLIENT_ID, ATTIO_CLIENT_SECRET/);

      for (const p of ['/oauth/token', '/oauth/register', '/oauth/revoke']) {
        const res = await fetch(`${b.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        assert.equal(res.status, 503, p);
        const body = await res.json();
        assert.equal(body.error, 'server_error');
        assert.match(body.error_description, /ATTIO_CLIENT_ID/);
      }
      // metadata does not need secrets
      assert.equal((await fetch(`${b.url}/.well-known/oauth-authorization-server`)).status, 200);
    } finally {
      await b.close();
    }
  });

  it('WORKER_URL is used without its trailing slash everywhere', async () => {
    const b = await startBroker({ kv: false, vars: { ATTIO_CLIENT_ID: 'x', ATTIO_CLIENT_SECRET: 'y', WORKER_URL: 'https://broker.example.com/' } });
    try {
      const m = await (await fetch(`${b.url}/.well-known/oauth-authorization-server`)).json();
      assert.equal(m.issuer, 'https://broker.example.com');
      assert.equal(m.token_endpoint, 'https://broker.example.com/oauth/token');
      const res = await fetch(`${b.url}/oauth/authorize`, { redirect: 'manual' });
      const loc = new URL(res.headers.get('location'));
      assert.equal(loc.searchParams.get('redirect_uri'), 'https://broker.example.com/oauth/callback');
      // https public URL: __Host- cookie, Secure, Path=/
      const cookie = res.headers.get('set-cookie');
      assert.match(cookie, /^__Host-attio_broker_browser=/);
      assert.match(cookie, /; Secure/);
      assert.match(cookie, /Path=\/;/);
      // a deployed Worker points at the real Attio by default
      assert.equal(loc.origin, 'https://app.attio.com');
    } finally {
      await b.close();
    }
  });
});
