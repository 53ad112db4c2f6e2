// Shared helpers of the Node and browser stages: the server under test (run.sh sets
// STARLING_BASE_URL), fresh accounts, apps, PKCE, and the authorization-code flow driven
// through Starling's own login and consent pages with plain HTTP, as a browser would
// (one session cookie, the forms' hidden fields, redirects read, not followed).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

export const BASE = (process.env.STARLING_BASE_URL ?? '').replace(/\/$/, '');
if (!BASE) {
  throw new Error('STARLING_BASE_URL is not set: run `bash infra/clients/run.sh`, which starts a server and sets it');
}
export const OOB = 'urn:ietf:wg:oauth:2.0:oob';
export const PASSWORD = 'correct horse battery staple';
export const OUTPUT_DIR = process.env.STARLING_TEST_OUTPUT ?? new URL('../test-output/', import.meta.url).pathname;

const run = randomBytes(3).toString('hex');
let counter = 0;
/** A username no other test of this run uses. */
export const uniqueName = (prefix) => `${prefix}_${run}_${counter++}`;

async function json(res, what) {
  const text = await res.text();
  assert.ok(res.ok, `${what}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** Register an app: `{ id, client_id, client_secret, ... }`. */
export async function registerApp({ name = 'node tests', redirectUris = OOB, scopes = 'read write follow push' } = {}) {
  const res = await fetch(`${BASE}/api/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: redirectUris, scopes }),
  });
  return json(res, 'POST /api/v1/apps');
}

let signUpApp;
/** Create an account as a sign-up form in an app would (app token, POST /api/v1/accounts). */
export async function signUp(prefix = 'node') {
  signUpApp ??= await registerApp({ name: 'node sign-up' });
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: signUpApp.client_id,
    client_secret: signUpApp.client_secret,
    scope: 'read write follow',
  });
  const appToken = await json(await fetch(`${BASE}/oauth/token`, { method: 'POST', body: form }), 'app token');
  const username = uniqueName(prefix);
  const res = await fetch(`${BASE}/api/v1/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${appToken.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ username, email: `${username}@example.org`, password: PASSWORD, agreement: true, locale: 'en' }),
  });
  await json(res, `sign up ${username}`);
  return { username, password: PASSWORD };
}

/** A PKCE pair (RFC 7636): a random verifier and its S256 challenge. */
export function pkce() {
  const verifier = randomBytes(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export function authorizeUrl({ clientId, redirectUri, scope = 'read write follow', state, challenge, method = 'S256' }) {
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope });
  if (state) q.set('state', state);
  if (challenge) {
    q.set('code_challenge', challenge);
    q.set('code_challenge_method', method);
  }
  return `${BASE}/oauth/authorize?${q}`;
}

const unescape = (s) => s
  .replaceAll('&#34;', '"').replaceAll('&quot;', '"')
  .replaceAll('&#39;', "'").replaceAll('&#60;', '<').replaceAll('&lt;', '<')
  .replaceAll('&#62;', '>').replaceAll('&gt;', '>')
  .replaceAll('&#38;', '&').replaceAll('&amp;', '&');

/** The hidden and filled fields of the first form on `html` whose action is `action`. */
export function formFields(html, action) {
  const at = html.indexOf(`action="${action}"`);
  assert.ok(at >= 0, `no form posting to ${action} in:\n${html}`);
  const form = html.slice(at, html.indexOf('</form>', at));
  const fields = {};
  for (const [tag] of form.matchAll(/<input\b[^>]*>/g)) {
    const name = tag.match(/\bname="([^"]*)"/);
    const value = tag.match(/\bvalue="([^"]*)"/);
    if (name) fields[unescape(name[1])] = unescape(value?.[1] ?? '');
  }
  return fields;
}

/** A cookie-keeping HTTP client that does not follow redirects: a browser without a screen. */
export class FormBrowser {
  cookie = null;

  async request(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.cookie) headers.cookie = this.cookie;
    const res = await fetch(new URL(url, BASE), { ...init, headers, redirect: 'manual' });
    const set = res.headers.getSetCookie();
    if (set.length) this.cookie = set[0].split(';')[0];
    return { status: res.status, location: res.headers.get('location'), headers: res.headers, body: await res.text() };
  }

  post(url, fields) {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /**
   * Open an authorize URL, sign in if asked, press Authorize (or Deny). Returns the
   * redirect's Location, or for the out-of-band URI the code shown on the page.
   */
  async authorize(url, { username, password = PASSWORD, decision = 'approve' }) {
    let page = await this.request(url);
    assert.equal(page.status, 200, page.body);
    if (page.body.includes('action="/auth/sign_in"')) {
      const fields = formFields(page.body, '/auth/sign_in');
      const signed = await this.post('/auth/sign_in', { ...fields, username, password });
      assert.equal(signed.status, 303, `sign in: ${signed.status} ${signed.body}`);
      page = await this.request(signed.location);
      assert.equal(page.status, 200, page.body);
    }
    const fields = formFields(page.body, '/oauth/authorize');
    const answer = await this.post('/oauth/authorize', { ...fields, decision });
    if (answer.status === 200) {
      const m = answer.body.match(/<output id="code" class="code">([^<]+)<\/output>/);
      assert.ok(m, `no code on the page:\n${answer.body}`);
      return { code: m[1] };
    }
    assert.equal(answer.status, 302, answer.body);
    return { location: answer.location };
  }
}

/** Exchange a code at /oauth/token (form body). Returns `{ status, body }`. */
export async function exchange(fields) {
  const res = await fetch(`${BASE}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', ...fields }),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * A new user signed in through the authorization-code flow with PKCE:
 * `{ username, token, app }`.
 */
export async function signUpWithCode(prefix = 'node', { scope = 'read write follow' } = {}) {
  const user = await signUp(prefix);
  const redirectUri = 'http://127.0.0.1:1/callback';
  const app = await registerApp({ name: 'node code flow', redirectUris: redirectUri, scopes: scope });
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString('hex');
  const browser = new FormBrowser();
  const { location } = await browser.authorize(
    authorizeUrl({ clientId: app.client_id, redirectUri, scope, state, challenge }),
    { username: user.username },
  );
  const back = new URL(location);
  assert.equal(back.searchParams.get('state'), state);
  const { status, body } = await exchange({
    code: back.searchParams.get('code'),
    redirect_uri: redirectUri,
    client_id: app.client_id,
    client_secret: app.client_secret,
    code_verifier: verifier,
  });
  assert.equal(status, 200, JSON.stringify(body));
  return { username: user.username, token: body.access_token, app };
}

/** Wait for `predicate` to hold, polling every 50 ms, up to `ms`. */
export async function eventually(predicate, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
