// The manual flow in a real browser (headless Chromium via playwright-core):
// open /oauth/authorize, pass through the (non-interactive) fake Attio, land on
// the token page, press "Copy token" and read the clipboard back. Also checks
// that the page runs without Content Security Policy violations, and saves a
// screenshot to test-output/token-page.png.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../support/broker.mjs';
import { startStack, MODES } from '../support/client.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'test-output');
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

for (const mode of MODES) {
  describe(`token page in Chromium (${mode.name})`, () => {
    let stack;
    let browser;

    before(async () => {
      stack = await startStack({ kv: mode.kv });
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    }, { timeout: 60_000 });

    after(async () => {
      await Promise.allSettled([browser?.close(), stack?.close()]);
    });

    it('"Copy token" puts the issued token on the clipboard, with no CSP violations', async () => {
      const context = await browser.newContext({ viewport: { width: 900, height: 1000 } });
      try {
        await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
        const page = await context.newPage();
        const cspMessages = [];
        const pageErrors = [];
        page.on('console', (msg) => {
          if (msg.text().includes('Content Security Policy')) cspMessages.push(msg.text());
        });
        page.on('pageerror', (err) => pageErrors.push(String(err)));
        // Injected through CDP (not subject to the page's CSP): record violations as events too.
        await page.addInitScript(() => {
          window.__csp = [];
          document.addEventListener('securitypolicyviolation', (e) => {
            window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
          });
        });

        const response = await page.goto(`${stack.url}/oauth/authorize`, { waitUntil: 'load' });
        assert.ok(response, 'navigation produced a response');
        assert.equal(response.status(), 200, `landed on ${page.url()} with ${response.status()}`);
        assert.ok(page.url().startsWith(`${stack.url}/oauth/callback?`), `landed on ${page.url()}`);
        assert.equal(await page.title(), 'Your Attio access token');

        const token = stack.attio.issued.at(-1);
        assert.ok(token, 'the fake issued a token');
        assert.equal(await page.inputValue('#token'), token);

        // Screenshot before clicking, so the page is shown as a person first sees it.
        mkdirSync(OUT, { recursive: true });
        await page.screenshot({ path: path.join(OUT, mode.kv ? 'token-page.png' : 'token-page-no-kv.png'), fullPage: true });

        await page.getByRole('button', { name: 'Copy token', exact: true }).click();
        await page.waitForFunction(() => document.getElementById('token-status')?.textContent.trim().length > 0, null, { timeout: 5_000 });
        const status = await page.textContent('#token-status');
        assert.match(status, /Copied/, `status text: ${status}`);

        const clip = await page.evaluate(() => navigator.clipboard.readText());
        assert.equal(clip, token, 'clipboard holds the issued token');

        const violations = await page.evaluate(() => window.__csp);
        assert.deepEqual(cspMessages, [], 'no CSP violation in the console');
        assert.deepEqual(violations, [], 'no securitypolicyviolation events');
        assert.deepEqual(pageErrors, [], 'no script errors');
      } finally {
        await context.close();
      }
    });
  });
}
