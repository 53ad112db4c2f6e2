// masto.js from npm against Starling: direct conversations (list, read, remove) and the
// `direct` and `list` streams through masto.js's own streaming client (issue 13), the calls
// behind an app's direct-messages tab and a list column.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createRestAPIClient, createStreamingAPIClient } from 'masto';
import WebSocket from 'ws';

import { BASE, signUpWithCode } from './helpers.mjs';

async function eventually(check, what) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first event of `subscription` that `pick` accepts, posting with `post` once a second
 * meanwhile (the socket subscribes asynchronously and the server sends no acknowledgement). */
async function firstEvent(subscription, pick, post) {
  const got = (async () => {
    for await (const event of subscription) {
      if (pick(event)) return event;
    }
    return null;
  })();
  let done = false;
  const poster = (async () => {
    for (let i = 0; i < 10 && !done; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      if (!done) await post(i);
    }
    await new Promise((r) => setTimeout(r, 2000));
    return null;
  })();
  const event = await Promise.race([got, poster]);
  done = true;
  return event;
}

describe('masto.js conversations and the direct and list streams', () => {
  let alice;
  let bob;
  let eve;
  let aliceMe;
  let bobMe;
  let streamingUrl;
  let tokens;

  before(async () => {
    const [a, b, e] = [await signUpWithCode('mcalice'), await signUpWithCode('mcbob'), await signUpWithCode('mceve')];
    tokens = { alice: a.token, bob: b.token };
    alice = createRestAPIClient({ url: BASE, accessToken: a.token });
    bob = createRestAPIClient({ url: BASE, accessToken: b.token });
    eve = createRestAPIClient({ url: BASE, accessToken: e.token });
    aliceMe = await alice.v1.accounts.verifyCredentials();
    bobMe = await bob.v1.accounts.verifyCredentials();
    streamingUrl = (await alice.v2.instance.fetch()).configuration.urls.streaming;
  });

  it('lists, reads and removes conversations', async () => {
    const post = await alice.v1.statuses.create({ status: `@${bobMe.username} hello`, visibility: 'direct' });
    const convs = await eventually(async () => {
      const page = await bob.v1.conversations.list();
      return page.length ? page : null;
    }, "bob's conversation");
    assert.equal(convs.length, 1);
    assert.equal(convs[0].unread, true);
    assert.equal(convs[0].lastStatus.id, post.id);
    assert.deepEqual(convs[0].accounts.map((a) => a.id), [aliceMe.id]);
    const read = await bob.v1.conversations.$select(convs[0].id).read();
    assert.equal(read.unread, false);
    await assert.rejects(eve.v1.conversations.$select(convs[0].id).read(), (e) => e.statusCode === 404);
    await assert.rejects(eve.v1.conversations.$select(convs[0].id).remove(), (e) => e.statusCode === 404);
    await bob.v1.conversations.$select(convs[0].id).remove();
    assert.deepEqual(await bob.v1.conversations.list(), []);
    assert.equal((await alice.v1.conversations.list()).length, 1, 'removed for bob only');
  });

  it('streams a conversation event on the direct stream', async () => {
    const streaming = createStreamingAPIClient({ streamingApiUrl: streamingUrl, accessToken: tokens.bob, implementation: WebSocket });
    const subscription = streaming.direct.subscribe();
    try {
      const event = await firstEvent(
        subscription,
        (e) => e.event === 'conversation',
        (i) => alice.v1.statuses.create({ status: `@${bobMe.username} live ${i}`, visibility: 'direct' }),
      );
      assert.ok(event, 'no conversation event arrived');
      assert.match(event.payload.lastStatus.content, /live/);
      assert.equal(event.payload.unread, true);
    } finally {
      subscription.unsubscribe();
      streaming.close();
    }
  });

  it('streams a list member\'s post on the list stream', async () => {
    await alice.v1.accounts.$select(bobMe.id).follow();
    const list = await alice.v1.lists.create({ title: 'streamed' });
    await alice.v1.lists.$select(list.id).accounts.create({ accountIds: [bobMe.id] });
    const streaming = createStreamingAPIClient({ streamingApiUrl: streamingUrl, accessToken: tokens.alice, implementation: WebSocket });
    const subscription = streaming.list.subscribe({ list: list.id });
    try {
      const event = await firstEvent(
        subscription,
        (e) => e.event === 'update',
        (i) => bob.v1.statuses.create({ status: `for the list ${i}` }),
      );
      assert.ok(event, 'no update arrived on the list stream');
      assert.equal(event.payload.account.id, bobMe.id);
      assert.deepEqual(event.stream, ['list', list.id]);
    } finally {
      subscription.unsubscribe();
      streaming.close();
    }
  });
});
