// An I/O reference for bench/run.sh: the floor Worker plus exactly one
// platform operation per request, to tell what Miniflare's KV and an outbound
// fetch cost in workerd apart from the broker's own code.
//   /kv-put     one KV put of a 300-byte value (new key, expirationTtl 600)
//   /kv-get     one KV get of an existing key
//   /kv-delete  one KV delete (of a key that does not exist)
//   /fetch      one outbound POST to the fake Attio's token endpoint, body read
const BODY = '{"status":"ok"}';
const VALUE = 'v'.repeat(300);
const FORM = 'grant_type=refresh_token&refresh_token=x&client_id=nobody&client_secret=wrong';
let seeded = false;

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    const kv = env.OAUTH_SESSIONS;
    if (path === '/kv-put') {
      await kv.put(`bench:${crypto.randomUUID()}`, VALUE, { expirationTtl: 600 });
    } else if (path === '/kv-get') {
      if (!seeded) { await kv.put('bench:fixed', VALUE); seeded = true; }
      await kv.get('bench:fixed');
    } else if (path === '/kv-delete') {
      await kv.delete(`bench:${crypto.randomUUID()}`);
    } else if (path === '/fetch') {
      const r = await fetch(env.FETCH_URL, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: FORM });
      await r.text();
    }
    return new Response(BODY, { headers: { 'content-type': 'application/json' } });
  },
};
