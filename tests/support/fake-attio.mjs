// Fake of Attio's REST OAuth 2.0 provider, for end-to-end tests on loopback.
//
// It imitates what docs.attio.com documents (see /work/shared/reference/attio-oauth.md):
// authorize -> 302 with code+state; token (form body, client secret in the body,
// answer {"access_token","token_type":"Bearer"} with no expires_in); introspect with a Bearer
// header; revoke (204 / 400). Things Attio does not document (PKCE enforcement, refresh grant,
// error body shapes) are made strict or configurable so tests can exercise the broker's handling.
//
// This is a LOCAL STAND-IN, not the real Attio. Node built-ins only; binds 127.0.0.1 by default.
//
// Usage in tests:
//   const attio = await startFakeAttio({ issueRefreshToken: true });
//   ... attio.urls.token ...; attio.fail('token', 'status500'); attio.reset(); await attio.close();
//
// CLI: node tests/support/fake-attio.mjs --port 8788 [--interactive] [--host 127.0.0.1]
//      [--refresh-token] [--client-id ID] [--client-secret SECRET]

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const ENDPOINTS = ['authorize', 'token', 'introspect', 'revoke'];
const MODES = [
  'status500', 'status400', 'attio400', 'status429', 'slow', 'notJson', 'empty', 'huge',
  'noAccessToken', 'deny', 'inactive',
];
const ONLY_FOR = { deny: 'authorize', inactive: 'introspect' };
const CODE_TTL_MS = 10 * 60 * 1000;
const MAX_REQUEST_BODY = 1024 * 1024;
const HUGE_BYTES = 5 * 1024 * 1024;
const NOTICE = 'Local stand-in for Attio \u2014 not the real Attio';

const randomHex = (bytes = 24) => randomBytes(bytes).toString('hex');
const nowSeconds = () => Math.floor(Date.now() / 1000);
const s256 = (verifier) => createHash('sha256').update(verifier, 'utf8').digest('base64url');

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"'`]/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;',
  })[c]);
}

/**
 * Start a fake Attio OAuth provider.
 * @param {object} [options]
 * @param {number} [options.port=0]
 * @param {string} [options.host='127.0.0.1']
 * @param {string} [options.clientId='test-attio-client']
 * @param {string} [options.clientSecret='test-attio-secret']
 * @param {boolean} [options.interactive=false] show a consent page instead of redirecting at once
 * @param {boolean} [options.issueRefreshToken=false] add refresh_token to token responses
 * @param {string} [options.workspaceName='Acme Test Workspace']
 * @param {string} [options.scope]
 * @param {number} [options.codeTtlMs=600000] authorization code lifetime (extra, for expiry tests)
 */
/** The broker settings that point it at this fake with the given credentials. */
export function brokerVars(attio, clientId, clientSecret) {
  return {
    ATTIO_CLIENT_ID: clientId,
    ATTIO_CLIENT_SECRET: clientSecret,
    ATTIO_AUTHORIZE_URL: attio.urls.authorize,
    ATTIO_TOKEN_URL: attio.urls.token,
    ATTIO_INTROSPECT_URL: attio.urls.introspect,
    ATTIO_REVOKE_URL: attio.urls.revoke,
  };
}

export async function startFakeAttio(options = {}) {
  const {
    port = 0,
    host = '127.0.0.1',
    clientId = 'test-attio-client',
    clientSecret = 'test-attio-secret',
    interactive = false,
    issueRefreshToken = false,
    workspaceName = 'Acme Test Workspace',
    scope = 'record_permission:read-write object_configuration:read list_entry:read',
    codeTtlMs = CODE_TTL_MS,
  } = options;

  const requests = [];
  const issued = [];
  const refreshTokens = [];
  const failures = new Map(); // endpoint -> { mode, extra }
  const codes = new Map(); // code -> { redirect_uri, code_challenge, used, created }
  const accessTokens = new Map(); // token -> { iat }
  const liveRefreshTokens = new Set();
  const sockets = new Set();
  const timers = new Set();
  let closed = false;
  let closing = null;

  // ---------- response helpers ----------
  function send(res, status, body, headers = {}) {
    if (res.headersSent || res.destroyed) return;
    const buf = body == null ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.writeHead(status, { 'Content-Length': buf.length, ...headers });
    res.end(buf);
  }
  const json = (res, status, obj, headers = {}) =>
    send(res, status, JSON.stringify(obj), {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      ...headers,
    });
  const html = (res, status, markup, headers = {}) =>
    send(res, status, markup, { 'Content-Type': 'text/html; charset=utf-8', ...headers });
  const redirect = (res, location) =>
    send(res, 302, '', { Location: location, 'Cache-Control': 'no-store' });
  const oauthError = (res, status, error, description, headers) =>
    json(res, status, description ? { error, error_description: description } : { error }, headers);
  const attioError = (res, status, type, code, message) =>
    json(res, status, { status_code: status, type, code, message });

  function htmlPage(title, bodyMarkup) {
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="robots" content="noindex">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}
.banner{background:#fff3cd;border:1px solid #e0b000;padding:.75rem 1rem;border-radius:6px;font-weight:600}
a.button{display:inline-block;padding:.5rem 1.25rem;margin-right:.75rem;border-radius:6px;text-decoration:none;color:#fff}
#approve{background:#1a7f37}#deny{background:#b42318}code{word-break:break-all}</style>
</head><body>
<p class="banner" role="alert">${escapeHtml(NOTICE)}</p>
${bodyMarkup}
</body></html>`;
  }
  const authorizeError = (res, message) =>
    html(res, 400, htmlPage('Authorization error', `<h1>Authorization error</h1><p>${escapeHtml(message)}</p>`));

  function withParams(base, params) {
    const u = new URL(base);
    for (const [k, v] of Object.entries(params)) if (v != null) u.searchParams.append(k, v);
    return u.href;
  }

  // ---------- failure injection ----------
  function hugeBody(endpoint) {
    const padding = 'x'.repeat(HUGE_BYTES);
    // Valid-looking payload plus padding, so a broker without a size cap would "succeed"
    // (and a test can tell). Tokens in it are never registered as live.
    let base;
    if (endpoint === 'token') base = { access_token: `attio_at_${randomHex()}`, token_type: 'Bearer' };
    else if (endpoint === 'introspect') base = { ...introspection(`attio_at_${randomHex()}`, nowSeconds()) };
    else base = {};
    return JSON.stringify({ ...base, padding });
  }

  // Returns true when the failure fully handled the response; 'slow' answers later normally.
  function applyFailure(endpoint, ctx, res, proceed) {
    const f = failures.get(endpoint);
    if (!f) return false;
    const { mode, extra } = f;
    switch (mode) {
      case 'status500':
        attioError(res, 500, 'internal_server_error', 'internal_error', 'Fake Attio: injected 500');
        return true;
      case 'status400':
        oauthError(res, 400, 'invalid_grant', 'Fake Attio: injected RFC 6749 error');
        return true;
      case 'attio400':
        attioError(res, 400, 'invalid_request_error', 'bad', 'Fake Attio: injected Attio-envelope error');
        return true;
      case 'status429':
        json(res, 429,
          { status_code: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Rate limit exceeded, please try again later' },
          { 'Retry-After': new Date(Date.now() + 30_000).toUTCString() });
        return true;
      case 'slow': {
        const ms = Number.isFinite(extra?.ms) ? extra.ms : 15_000;
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (closed || res.destroyed) return;
          proceed();
        }, ms);
        timer.unref();
        timers.add(timer);
        res.on('close', () => { clearTimeout(timer); timers.delete(timer); });
        return true;
      }
      case 'notJson':
        html(res, 200, '<html>oops</html>');
        return true;
      case 'empty':
        send(res, 200, '');
        return true;
      case 'huge':
        send(res, 200, hugeBody(endpoint), { 'Content-Type': 'application/json; charset=utf-8' });
        return true;
      case 'noAccessToken':
        json(res, 200, { token_type: 'Bearer' });
        return true;
      case 'deny': {
        // Validate like a normal authorize first: Attio only redirects to a known redirect_uri.
        const bad = validateAuthorize(ctx.query);
        if (bad) { authorizeError(res, bad); return true; }
        redirect(res, denyLocation(ctx.query));
        return true;
      }
      case 'inactive':
        json(res, 200, { active: false });
        return true;
      default:
        return false;
    }
  }

  // ---------- authorize ----------
  function validateAuthorize(q) {
    if (q.client_id !== clientId) return 'Unknown client_id.';
    if (q.response_type !== 'code') return 'response_type must be "code".';
    if (!q.redirect_uri) return 'redirect_uri is required.';
    let u;
    try { u = new URL(q.redirect_uri); } catch { return 'redirect_uri is not an absolute URL.'; }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'redirect_uri must be http(s).';
    if (q.code_challenge != null && q.code_challenge_method !== 'S256')
      return 'code_challenge_method must be S256.';
    return null;
  }
  const denyLocation = (q) => withParams(q.redirect_uri, {
    error: 'access_denied', error_description: 'The user denied access', state: q.state,
  });

  function handleAuthorize(ctx, res) {
    const q = ctx.query;
    const bad = validateAuthorize(q);
    if (bad) return authorizeError(res, bad);
    const code = `attio_code_${randomHex(16)}`;
    codes.set(code, {
      redirect_uri: q.redirect_uri,
      code_challenge: q.code_challenge ?? null,
      used: false,
      created: Date.now(),
    });
    const approve = withParams(q.redirect_uri, { code, state: q.state });
    if (!interactive) return redirect(res, approve);
    const deny = denyLocation(q);
    html(res, 200, htmlPage('Fake Attio \u2014 authorize', `
<h1>Authorize application</h1>
<p>This page is a <strong>local stand-in for Attio, not the real Attio</strong>. No Attio account is involved.</p>
<p>Application <code>${escapeHtml(q.client_id)}</code> asks for access to workspace
<strong>${escapeHtml(workspaceName)}</strong> with scopes <code>${escapeHtml(scope)}</code>.</p>
<p>After you choose, you will be sent to:<br><code id="redirect-uri">${escapeHtml(q.redirect_uri)}</code></p>
<p><a class="button" id="approve" href="${escapeHtml(approve)}">Approve</a>
<a class="button" id="deny" href="${escapeHtml(deny)}">Deny</a></p>`), { 'Cache-Control': 'no-store' });
  }

  // ---------- token ----------
  function issueAccessToken() {
    const token = `attio_at_${randomHex()}`;
    accessTokens.set(token, { iat: nowSeconds() });
    issued.push(token);
    return token;
  }

  function handleToken(ctx, res) {
    const form = ctx.form;
    if (!form) {
      return oauthError(res, 400, 'invalid_request', 'Body must be application/x-www-form-urlencoded');
    }
    const grant = form.grant_type;
    if (!grant) return oauthError(res, 400, 'invalid_request', 'grant_type is required');
    if (grant !== 'authorization_code' && grant !== 'refresh_token') {
      return oauthError(res, 400, 'unsupported_grant_type', `Unsupported grant_type: ${grant}`);
    }
    // Client credentials in the body (Attio documents no HTTP Basic).
    if (form.client_id !== clientId || form.client_secret !== clientSecret) {
      return oauthError(res, 401, 'invalid_client', 'Client authentication failed');
    }

    if (grant === 'refresh_token') {
      const rt = form.refresh_token;
      if (!rt || !liveRefreshTokens.has(rt)) {
        return oauthError(res, 400, 'invalid_grant', 'Unknown refresh token');
      }
      const body = { access_token: issueAccessToken(), token_type: 'Bearer' };
      if (issueRefreshToken) body.refresh_token = rt; // not rotated
      return json(res, 200, body);
    }

    const { code, redirect_uri: redirectUri, code_verifier: verifier } = form;
    if (!code) return oauthError(res, 400, 'invalid_request', 'code is required');
    if (!redirectUri) return oauthError(res, 400, 'invalid_request', 'redirect_uri is required');
    const rec = codes.get(code);
    if (!rec) return oauthError(res, 400, 'invalid_grant', 'Unknown authorization code');
    if (rec.used) return oauthError(res, 400, 'invalid_grant', 'Authorization code already used');
    if (Date.now() - rec.created > codeTtlMs) {
      return oauthError(res, 400, 'invalid_grant', 'Authorization code expired');
    }
    if (redirectUri !== rec.redirect_uri) {
      return oauthError(res, 400, 'invalid_grant', 'redirect_uri does not match the authorization request');
    }
    if (rec.code_challenge != null) {
      if (!verifier) return oauthError(res, 400, 'invalid_grant', 'code_verifier is required');
      if (s256(verifier) !== rec.code_challenge) {
        return oauthError(res, 400, 'invalid_grant', 'code_verifier does not match code_challenge');
      }
    }
    rec.used = true;
    const body = { access_token: issueAccessToken(), token_type: 'Bearer' };
    if (issueRefreshToken) {
      const rt = `attio_rt_${randomHex()}`;
      liveRefreshTokens.add(rt);
      refreshTokens.push(rt);
      body.refresh_token = rt;
    }
    json(res, 200, body);
  }

  // ---------- introspect / revoke ----------
  function bearer(headers) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
    return m ? m[1] : null;
  }

  function introspection(_token, iat) {
    return {
      active: true,
      scope,
      client_id: clientId,
      token_type: 'Bearer',
      exp: null,
      iat,
      sub: 'ws_123',
      aud: clientId,
      iss: 'attio.com',
      authorized_by_workspace_member_id: null,
      workspace_id: 'ws_123',
      workspace_name: workspaceName,
      workspace_slug: 'acme-test',
      workspace_logo_url: null,
    };
  }

  function handleIntrospect(ctx, res) {
    const token = bearer(ctx.headers);
    if (!token) {
      return attioError(res, 401, 'auth_error', 'missing_bearer_token', 'Authorization: Bearer header is required');
    }
    const rec = accessTokens.get(token);
    if (!rec) return json(res, 200, { active: false });
    json(res, 200, introspection(token, rec.iat));
  }

  function handleRevoke(ctx, res) {
    const token = ctx.form?.token || bearer(ctx.headers);
    if (token && accessTokens.delete(token)) return send(res, 204, '');
    if (token && liveRefreshTokens.delete(token)) return send(res, 204, '');
    attioError(res, 400, 'invalid_request_error', 'token_not_found', 'No token found');
  }

  // ---------- routing ----------
  const ROUTES = {
    'GET /authorize': ['authorize', handleAuthorize],
    'POST /oauth/token': ['token', handleToken],
    'POST /oauth/introspect': ['introspect', handleIntrospect],
    'POST /oauth/revoke': ['revoke', handleRevoke],
  };

  function dispatch(ctx, res) {
    const route = ROUTES[`${ctx.method} ${ctx.path}`];
    if (!route) {
      return json(res, 404, { status_code: 404, type: 'invalid_request_error', code: 'not_found', message: `No route for ${ctx.method} ${ctx.path}` });
    }
    const [endpoint, handler] = route;
    const proceed = () => {
      try { handler(ctx, res); } catch (err) {
        attioError(res, 500, 'internal_server_error', 'fake_attio_bug', String(err?.stack ?? err));
      }
    };
    if (applyFailure(endpoint, ctx, res, proceed)) return;
    proceed();
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BODY) { tooBig = true; return; }
      chunks.push(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake-attio.invalid');
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
      const ctype = String(headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      const form = ctype === 'application/x-www-form-urlencoded'
        ? Object.fromEntries(new URLSearchParams(body))
        : null;
      const ctx = {
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body,
        form,
      };
      requests.push(ctx);
      if (tooBig) return json(res, 413, { status_code: 413, type: 'invalid_request_error', code: 'payload_too_large', message: 'Request body too large' });
      dispatch(ctx, res);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });

  const addr = server.address();
  const hostForUrl = addr.family === 'IPv6' || addr.family === 6 ? `[${addr.address}]` : addr.address;
  const url = `http://${hostForUrl}:${addr.port}`;

  return {
    url,
    urls: {
      authorize: `${url}/authorize`,
      token: `${url}/oauth/token`,
      introspect: `${url}/oauth/introspect`,
      revoke: `${url}/oauth/revoke`,
    },
    requests,
    issued,
    refreshTokens,
    fail(endpoint, mode, extra = {}) {
      if (!ENDPOINTS.includes(endpoint)) throw new TypeError(`fake Attio: unknown endpoint ${endpoint}`);
      if (!MODES.includes(mode)) throw new TypeError(`fake Attio: unknown failure mode ${mode}`);
      if (ONLY_FOR[mode] && ONLY_FOR[mode] !== endpoint) {
        throw new TypeError(`fake Attio: mode ${mode} only applies to ${ONLY_FOR[mode]}`);
      }
      failures.set(endpoint, { mode, extra });
    },
    reset() {
      failures.clear();
      requests.length = 0;
    },
    close() {
      if (closing) return closing;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      closing = new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
      return closing;
    },
  };
}

// ---------- CLI ----------
function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--port': opts.port = Number(value()); break;
      case '--host': opts.host = value(); break;
      case '--interactive': opts.interactive = true; break;
      case '--refresh-token': opts.issueRefreshToken = true; break;
      case '--client-id': opts.clientId = value(); break;
      case '--client-secret': opts.clientSecret = value(); break;
      case '--workspace-name': opts.workspaceName = value(); break;
      case '-h': case '--help':
        console.log('usage: node fake-attio.mjs [--port N] [--host H] [--interactive] [--refresh-token] [--client-id ID] [--client-secret S] [--workspace-name NAME]');
        process.exit(0);
        break;
      default:
        console.error(`fake Attio: unknown argument ${a}`);
        process.exit(2);
    }
  }
  if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port >= 0 && opts.port < 65536)) {
    console.error('fake Attio: --port must be an integer 0-65535');
    process.exit(2);
  }
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const fake = await startFakeAttio(parseArgs(process.argv.slice(2)));
  console.log(`fake Attio (local stand-in, not the real Attio) listening on ${fake.url}`);
  const stop = () => { fake.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
