// The browser stage: Debian's Chromium (/usr/bin/chromium), driven by playwright-core, signs
// in through Starling's own pages as a person would, and an app on another local origin
// uses the API with CORS. No tool downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';

import { BASE, OOB, OUTPUT_DIR, PASSWORD, authorizeUrl, exchange, pkce, registerApp, signUp } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The app's own origin: a tiny static server on another port of 127.0.0.1. */
function startAppOrigin() {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>test app</title><p>test app: ${req.url.replace(/[<&]/g, '')}</p>`);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}` }));
  });
}

describe('Chromium signs in through the authorize pages', () => {
  let browser;
  let context;
  let appOrigin;
  let appServer;
  let user;
  let app;
  let callback;

  before(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    ({ server: appServer, origin: appOrigin } = await startAppOrigin());
    callback = `${appOrigin}/callback`;
    user = await signUp('browser');
    app = await registerApp({ name: 'Browser Test App', redirectUris: `${callback}\n${OOB}`, scopes: 'read write follow' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
    });
    // A phone-sized window: the pages must read well there.
    context = await browser.newContext({ viewport: { width: 400, height: 760 }, deviceScaleFactor: 2 });
  });

  after(async () => {
    await browser?.close();
    appServer?.close();
  });

  /** Open the authorize URL; sign in when the login page shows. Returns the consent page. */
  async function toConsent(page, url, { screenshots = false } = {}) {
    await page.goto(url);
    if (await page.locator('form[action="/auth/sign_in"]').count()) {
      assert.equal(await page.locator('h1').textContent(), 'Sign in');
      await page.getByLabel('Username').fill(user.username);
      await page.getByLabel('Password').fill(PASSWORD);
      if (screenshots) await page.screenshot({ path: `${OUTPUT_DIR}/login.png`, fullPage: true });
      await page.getByRole('button', { name: 'Sign in' }).click();
    }
    await page.getByRole('button', { name: 'Authorize' }).waitFor();
    if (screenshots) await page.screenshot({ path: `${OUTPUT_DIR}/consent.png`, fullPage: true });
    return page;
  }

  it('signs in with PKCE and state, lands on the app\'s origin, and the app uses the API across origins', async () => {
    const page = await context.newPage();
    const { verifier, challenge } = pkce();
    const state = `st-${Date.now()}`;
    // A wrong password first: the same login page, with the message.
    await page.goto(authorizeUrl({ clientId: app.client_id, redirectUri: callback, state, challenge }));
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    assert.equal((await page.getByRole('alert').textContent()).trim(), 'Invalid username or password.');

    await toConsent(page, authorizeUrl({ clientId: app.client_id, redirectUri: callback, state, challenge }), { screenshots: true });
    assert.match(await page.locator('h1').textContent(), /Authorize Browser Test App\?/);
    assert.match(await page.locator('main').textContent(), new RegExp(`@${user.username}`));
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(callback)),
      page.getByRole('button', { name: 'Authorize' }).click(),
    ]);
    const landed = new URL(page.url());
    assert.equal(landed.origin, appOrigin);
    assert.equal(landed.searchParams.get('state'), state);
    const code = landed.searchParams.get('code');
    assert.ok(code);

    // The app's page exchanges the code and reads the home timeline, cross-origin.
    const result = await page.evaluate(async ({ base, code, verifier, callback, clientId, clientSecret }) => {
      const tokenRes = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: callback,
          client_id: clientId, client_secret: clientSecret,
        }),
      });
      const token = await tokenRes.json();
      const headers = { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' };
      for (const text of ['first from the browser', 'second from the browser']) {
        const r = await fetch(`${base}/api/v1/statuses`, {
          method: 'POST', headers: { ...headers, 'idempotency-key': `${text}-${code}` }, body: JSON.stringify({ status: text }),
        });
        if (!r.ok) return { error: `post: ${r.status}` };
      }
      const home = await fetch(`${base}/api/v1/timelines/home?limit=1`, { headers });
      return {
        tokenStatus: tokenRes.status,
        token,
        homeStatus: home.status,
        link: home.headers.get('link'),
        statuses: (await home.json()).map((s) => s.content),
      };
    }, { base: BASE, code, verifier, callback, clientId: app.client_id, clientSecret: app.client_secret });
    assert.equal(result.error, undefined, result.error);
    assert.equal(result.tokenStatus, 200, JSON.stringify(result.token));
    assert.equal(result.homeStatus, 200);
    assert.deepEqual(result.statuses, ['<p>second from the browser</p>']);
    assert.match(result.link ?? '', /max_id=\d+>; rel="next"/, 'the Link header is readable across origins');

    // The same code again, from the app's page: refused.
    const reused = await page.evaluate(async ({ base, code, verifier, callback, clientId, clientSecret }) => {
      const r = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: callback,
          client_id: clientId, client_secret: clientSecret,
        }),
      });
      return { status: r.status, body: await r.json() };
    }, { base: BASE, code, verifier, callback, clientId: app.client_id, clientSecret: app.client_secret });
    assert.deepEqual([reused.status, reused.body.error], [400, 'invalid_grant']);
    await page.close();
  });

  it('refuses a wrong verifier', async () => {
    const page = await context.newPage();
    const { challenge } = pkce();
    await toConsent(page, authorizeUrl({ clientId: app.client_id, redirectUri: callback, state: 'v', challenge }));
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(callback)),
      page.getByRole('button', { name: 'Authorize' }).click(),
    ]);
    const code = new URL(page.url()).searchParams.get('code');
    const wrong = await exchange({
      code, code_verifier: pkce().verifier, redirect_uri: callback,
      client_id: app.client_id, client_secret: app.client_secret,
    });
    assert.deepEqual([wrong.status, wrong.body.error], [400, 'invalid_grant']);
    await page.close();
  });

  it('denies: the app gets access_denied and its state', async () => {
    const page = await context.newPage();
    await toConsent(page, authorizeUrl({ clientId: app.client_id, redirectUri: callback, state: 'deny-1' }));
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(callback)),
      page.getByRole('button', { name: 'Deny' }).click(),
    ]);
    const landed = new URL(page.url());
    assert.equal(landed.searchParams.get('error'), 'access_denied');
    assert.equal(landed.searchParams.get('state'), 'deny-1');
    assert.equal(landed.searchParams.get('code'), null);
    await page.close();
  });

  it('shows the code on a page for the out-of-band URI', async () => {
    const page = await context.newPage();
    await toConsent(page, authorizeUrl({ clientId: app.client_id, redirectUri: OOB }));
    await page.getByRole('button', { name: 'Authorize' }).click();
    const code = (await page.locator('#code').textContent()).trim();
    await page.screenshot({ path: `${OUTPUT_DIR}/oob-code.png`, fullPage: true });
    const token = await exchange({ code, redirect_uri: OOB, client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    const me = await fetch(`${BASE}/api/v1/accounts/verify_credentials`, {
      headers: { authorization: `Bearer ${token.body.access_token}` },
    }).then((r) => r.json());
    assert.equal(me.username, user.username);
    await page.close();
  });

  it('runs no script and allows no framing on the pages', async () => {
    const page = await context.newPage();
    const res = await page.goto(authorizeUrl({ clientId: app.client_id, redirectUri: callback }));
    const csp = res.headers()['content-security-policy'];
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src|unsafe-inline/);
    assert.equal(res.headers()['x-frame-options'], 'DENY');
    assert.equal(await page.locator('script').count(), 0);
    await page.close();
  });
});
