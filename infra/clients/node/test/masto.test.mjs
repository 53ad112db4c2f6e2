// masto.js from npm against Starling: signing in through the authorization-code flow
// (masto's own OAuth client exchanges the code, as a multipart form), then the calls a
// client makes on its first screens.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createOAuthAPIClient, createRestAPIClient, createStreamingAPIClient } from 'masto';
import WebSocket from 'ws';

import { BASE, FormBrowser, authorizeUrl, pkce, registerApp, signUp, signUpWithCode } from './helpers.mjs';

describe('masto.js', () => {
  let alice;
  let bob;
  let masto;

  before(async () => {
    alice = await signUpWithCode('mastoalice');
    bob = await signUpWithCode('mastobob');
    masto = createRestAPIClient({ url: BASE, accessToken: alice.token });
  });

  it('exchanges an authorization code with PKCE through its OAuth client', async () => {
    const user = await signUp('mastocode');
    const redirectUri = 'http://127.0.0.1:1/masto';
    const app = await registerApp({ name: 'masto code', redirectUris: redirectUri });
    const { verifier, challenge } = pkce();
    const { location } = await new FormBrowser().authorize(
      authorizeUrl({ clientId: app.client_id, redirectUri, state: 'm', challenge }),
      { username: user.username },
    );
    const code = new URL(location).searchParams.get('code');
    const oauth = createOAuthAPIClient({ url: BASE });
    const token = await oauth.token.create({
      grantType: 'authorization_code',
      clientId: app.client_id,
      clientSecret: app.client_secret,
      redirectUri,
      code,
      codeVerifier: verifier,
    });
    assert.equal(token.tokenType, 'Bearer');
    assert.equal(token.scope, 'read write follow');
    const me = await createRestAPIClient({ url: BASE, accessToken: token.accessToken }).v1.accounts.verifyCredentials();
    assert.equal(me.username, user.username);
    // The code worked once.
    await assert.rejects(oauth.token.create({
      grantType: 'authorization_code', clientId: app.client_id, clientSecret: app.client_secret,
      redirectUri, code, codeVerifier: verifier,
    }));
  });

  it('verifies credentials and the app', async () => {
    const me = await masto.v1.accounts.verifyCredentials();
    assert.equal(me.username, alice.username);
    assert.equal(typeof me.source, 'object');
    const app = await masto.v1.apps.verifyCredentials();
    assert.equal(app.name, 'node code flow');
  });

  it('posts, pages the home timeline with its paginator, and favourites', async () => {
    const posted = [];
    for (let i = 0; i < 5; i++) {
      posted.push((await masto.v1.statuses.create({ status: `masto post ${i}`, visibility: 'public' })).id);
    }
    const seen = [];
    for await (const page of masto.v1.timelines.home.list({ limit: 2 })) {
      assert.ok(page.length <= 2);
      seen.push(...page.map((s) => s.id));
      if (seen.length > 20) break;
    }
    assert.deepEqual(seen.filter((id) => posted.includes(id)), [...posted].reverse());
    assert.equal(new Set(seen).size, seen.length, 'no status twice across pages');

    const favourited = await masto.v1.statuses.$select(posted[0]).favourite();
    assert.equal(favourited.favourited, true);
    assert.equal(favourited.favouritesCount, 1);
  });

  it('streams a followed account\'s post as an update over WebSocket', async () => {
    const bobApi = createRestAPIClient({ url: BASE, accessToken: bob.token });
    const bobMe = await bobApi.v1.accounts.verifyCredentials();
    await masto.v1.accounts.$select(bobMe.id).follow();
    const instance = await masto.v2.instance.fetch();
    const streaming = createStreamingAPIClient({
      streamingApiUrl: instance.configuration.urls.streaming,
      accessToken: alice.token,
      implementation: WebSocket,
    });
    const subscription = streaming.user.subscribe();
    try {
      const got = (async () => {
        for await (const event of subscription) {
          if (event.event === 'update' && event.payload.account.id === bobMe.id) return event.payload;
        }
        return null;
      })();
      // The socket subscribes asynchronously and the server sends no acknowledgement: post
      // once a second until one of bob's posts arrives (at most 15).
      let done = false;
      const poster = (async () => {
        for (let i = 0; i < 15 && !done; i++) {
          await new Promise((r) => setTimeout(r, 1000));
          if (!done) await bobApi.v1.statuses.create({ status: `streamed from bob ${i}` });
        }
        await new Promise((r) => setTimeout(r, 2000));
        return null;
      })();
      const update = await Promise.race([got, poster]);
      done = true;
      assert.ok(update, 'no update arrived');
      assert.match(update.content, /streamed from bob/);
    } finally {
      subscription.unsubscribe();
      streaming.close();
    }
  });

});

