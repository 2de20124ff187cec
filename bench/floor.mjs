// The floor: a do-nothing JS module Worker that answers a fixed JSON body.
// bench/run.sh serves it in the same workerd (Miniflare) as the broker, and
// every broker figure is compared with this one.
const BODY = '{"status":"ok"}';
export default {
  fetch() {
    return new Response(BODY, { headers: { 'content-type': 'application/json' } });
  },
};
