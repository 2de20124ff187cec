// Client ID Metadata Documents: URL client ids fetched safely. Documents are
// served by a loopback server this test starts; the broker lets http on
// loopback through only with UNSAFE_ALLOW_LOOPBACK_CLIENT_METADATA=true.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStack, MODES, Browser, clientFlow, tokenRequest, pkcePair } from '../support/client.mjs';

const REDIRECT = 'http://127.0.0.1:9/callback';

async function startDocServer() {
  const hits = [];
  let base;
  const docs = {
    '/good.json': () => [200, { 'cache-control': 'max-age=600' }, { client_id: `${base}/good.json`, client_name: 'Doc Client', redirect_uris: [REDIRECT] }],
    '/nocache.json': () => [200, {}, { client_id: `${base}/nocache.json`, redirect_uris: [REDIRECT] }],
    '/mismatch.json': () => [200, {}, { client_id: `${base}/other.json`, redirect_uris: [REDIRECT] }],
    '/noredirect.json': () => [200, {}, { client_id: `${base}/noredirect.json` }],
    '/confidential.json': () => [200, {}, { client_id: `${base}/confidential.json`, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic' }],
    '/methods.json': () => [200, {}, { client_id: `${base}/methods.json`, redirect_uris: [REDIRECT], token_endpoint_auth_method: ['private_key_jwt', 'none'] }],
    '/big.json': () => [200, {}, { client_id: `${base}/big.json`, redirect_uris: [REDIRECT], padding: 'x'.repeat(10_000) }],
    '/html': () => [200, { 'content-type': 'text/html' }, '<html>not json</html>'],
    '/redirect.json': () => [302, { location: `${base}/good.json` }, ''],
    '/missing.json': () => [404, {}, ''],
  };
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    hits.push(req.url);
    if (req.url === '/slow.json') {
      const t = setTimeout(() => { res.end('{}'); }, 6000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    const d = docs[req.url];
    if (!d) { res.writeHead(404).end(); return; }
    const [status, headers, body] = d();
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
  return { base, hits, close: () => { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(r)); } };
}

function authorizeUrl(broker, clientId, redirectUri = REDIRECT) {
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, state: 's', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
  return `${broker}/oauth/authorize?${q}`;
}

for (const mode of MODES) {
  describe(`client metadata documents (${mode.name})`, () => {
    let s, docs;
    before(async () => {
      docs = await startDocServer();
      s = await startStack({ kv: mode.kv, vars: { UNSAFE_ALLOW_LOOPBACK_CLIENT_METADATA: 'true' } });
    });
    after(async () => { await s?.close(); await docs?.close(); });

    it('advertises client_id_metadata_document_supported', async () => {
      const m = await (await fetch(`${s.url}/.well-known/oauth-authorization-server`)).json();
      assert.equal(m.client_id_metadata_document_supported, true);
    });

    it('a URL client completes the flow; consent shows the document host; the document is cached', async () => {
      const client = { client_id: `${docs.base}/good.json` };
      const browser = new Browser();
      const page = await browser.request(authorizeUrl(s.url, client.client_id));
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /Doc Client/);
      assert.match(html, /Client information from<\/dt><dd><strong>127\.0\.0\.1<\/strong>/);
      const f = await clientFlow(s.url, browser, { client, redirectUri: REDIRECT });
      const t = await tokenRequest(s.url, { grant_type: 'authorization_code', code: f.params.code, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: f.pkce.verifier });
      assert.equal(t.status, 200, JSON.stringify(t.body));
      assert.equal(t.body.access_token, s.attio.issued.at(-1));
      assert.equal(docs.hits.filter((h) => h === '/good.json').length, 1, 'fetched once, then cached per max-age');
    });

    it('a document listing several auth methods including none is accepted', async () => {
      const res = await fetch(authorizeUrl(s.url, `${docs.base}/methods.json`));
      assert.equal(res.status, 200);
    });

    it('a document without caching headers is fetched each time', async () => {
      const id = `${docs.base}/nocache.json`;
      await fetch(authorizeUrl(s.url, id));
      await fetch(authorizeUrl(s.url, id));
      assert.equal(docs.hits.filter((h) => h === '/nocache.json').length, 2);
    });

    for (const [doc, why] of [
      ['/mismatch.json', /does not equal its URL/],
      ['/noredirect.json', /no redirect_uris/],
      ['/confidential.json', /must use token_endpoint_auth_method none/],
      ['/big.json', /larger than 5 KB/],
      ['/html', /not JSON/],
      ['/redirect.json', /redirect, which is not followed/],
      ['/missing.json', /HTTP 404/],
      ['/slow.json', /did not arrive in time/],
    ]) {
      it(`${doc}: an error page at authorize and invalid_client at the token endpoint, saying why`, async () => {
        const id = `${docs.base}${doc}`;
        const res = await fetch(authorizeUrl(s.url, id), { redirect: 'manual' });
        assert.equal(res.status, 400);
        assert.equal(res.headers.get('location'), null);
        assert.match(await res.text(), why);
        const t = await tokenRequest(s.url, { grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: REDIRECT, client_id: id, code_verifier: pkcePair().verifier });
        assert.equal(t.status, 401);
        assert.equal(t.body.error, 'invalid_client');
        assert.match(t.body.error_description, why);
      });
    }

    it('a redirect URI the document does not list gets an error page', async () => {
      const res = await fetch(authorizeUrl(s.url, `${docs.base}/good.json`, 'https://evil.example/cb'), { redirect: 'manual' });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('location'), null);
    });
  });
}

describe('client metadata documents: refusals before any fetch (setting off)', () => {
  let s, docs;
  before(async () => {
    docs = await startDocServer();
    s = await startStack({ kv: false });
  });
  after(async () => { await s?.close(); await docs?.close(); });

  for (const [label, id] of [
    ['an http URL', () => `${docs.base}/good.json`],
    ['an IP-literal loopback host (127.0.0.2)', () => `https://127.0.0.2:${new URL(docs.base).port}/good.json`],
    ['an IP-literal in a private range', () => 'https://10.1.2.3/good.json'],
    ['a metadata service address', () => 'https://169.254.169.254/latest/meta-data'],
    ['IPv6 loopback', () => `https://[::1]:${new URL(docs.base).port}/good.json`],
    ['a decimal IP that means loopback', () => 'https://2130706433/good.json'],
    ['localhost', () => `https://localhost:${new URL(docs.base).port}/good.json`],
    ['a host that does not resolve (.invalid)', () => 'https://client.invalid/good.json'],
    ['a URL without a path', () => 'https://app.example.com'],
    ['a URL with credentials', () => 'https://user:pw@app.example.com/c.json'],
  ]) {
    it(`${label} is refused without fetching`, async () => {
      const before = docs.hits.length;
      const res = await fetch(authorizeUrl(s.url, id()), { redirect: 'manual' });
      assert.equal(res.status, 400);
      assert.match(res.headers.get('content-type'), /text\/html/);
      const t = await tokenRequest(s.url, { grant_type: 'authorization_code', code: 'x', client_id: id(), code_verifier: pkcePair().verifier });
      assert.equal(t.status, 401);
      assert.equal(t.body.error, 'invalid_client');
      assert.equal(docs.hits.length, before, 'no request reached the document server');
    });
  }
});
