// megalodon from npm against Starling: detection through nodeinfo, its own app
// registration and authorize URL (out of band: the code is read off the page), its token
// exchange, then the first screens' calls and the user stream.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import megalodon from 'megalodon';

// megalodon is CommonJS: its default export is `module.exports.default`.
const generator = megalodon.default ?? megalodon;
const { detector } = megalodon;

import { BASE, FormBrowser, OOB, signUp, signUpWithCode } from './helpers.mjs';

/** The `max_id` of a Link header's `rel="next"` URL, if any. */
function nextMaxId(link) {
  const next = (link ?? '').split(',').find((part) => /rel="next"/.test(part));
  if (!next) return null;
  return new URL(next.match(/<([^>]+)>/)[1]).searchParams.get('max_id');
}

describe('megalodon', () => {
  let carol;
  let dave;
  let client;

  before(async () => {
    carol = await signUpWithCode('megacarol');
    dave = await signUpWithCode('megadave');
    client = generator('mastodon', BASE, carol.token);
  });

  it('detects the server as Mastodon-compatible through nodeinfo', async () => {
    assert.equal(await detector(BASE), 'mastodon');
  });

  it('signs in with its registerApp URL and fetchAccessToken (out of band)', async () => {
    const user = await signUp('megaoob');
    const anon = generator('mastodon', BASE);
    const app = await anon.registerApp('megalodon test', { scopes: ['read', 'write', 'follow'], redirect_uris: OOB });
    assert.ok(app.url.startsWith(`${BASE}/oauth/authorize?`), app.url);
    const { code } = await new FormBrowser().authorize(app.url, { username: user.username });
    const token = await anon.fetchAccessToken(app.client_id, app.client_secret, code, OOB);
    assert.ok(token.access_token);
    const me = await generator('mastodon', BASE, token.access_token).verifyAccountCredentials();
    assert.equal(me.data.username, user.username);
  });

  it('verifies credentials, posts, pages home by its Link header and favourites', async () => {
    const me = await client.verifyAccountCredentials();
    assert.equal(me.data.username, carol.username);
    const posted = [];
    for (let i = 0; i < 5; i++) {
      posted.push((await client.postStatus(`megalodon post ${i}`)).data.id);
    }
    const seen = [];
    let maxId;
    for (let pages = 0; pages < 10; pages++) {
      const res = await client.getHomeTimeline({ limit: 2, ...(maxId ? { max_id: maxId } : {}) });
      seen.push(...res.data.map((s) => s.id));
      maxId = nextMaxId(res.headers.link);
      if (!maxId || res.data.length === 0) break;
    }
    assert.deepEqual(seen.filter((id) => posted.includes(id)), [...posted].reverse());
    const fav = await client.favouriteStatus(posted[1]);
    assert.equal(fav.data.favourited, true);
  });

  it('receives a followed account\'s post on the user stream', async () => {
    const daveClient = generator('mastodon', BASE, dave.token);
    const daveMe = (await daveClient.verifyAccountCredentials()).data;
    await client.followAccount(daveMe.id);
    const stream = await client.userStreaming();
    try {
      const update = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no update within 15 s')), 15_000);
        stream.on('update', (status) => {
          if (status.account.id === daveMe.id) {
            clearTimeout(timer);
            resolve(status);
          }
        });
        stream.on('error', (e) => console.error('stream error', e?.message ?? e));
        stream.on('connect', async () => {
          // Give the server a moment to subscribe the socket, then post.
          await new Promise((r) => setTimeout(r, 300));
          await daveClient.postStatus('megalodon streamed');
        });
      });
      assert.match(update.content, /megalodon streamed/);
    } finally {
      stream.stop();
    }
  });
});
