// masto.js from npm against Starling: the Explore tab (issue 13), trending hashtags and
// statuses and who to follow, as an app's Explore screen calls them.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createRestAPIClient } from 'masto';

import { BASE, eventually, signUpWithCode } from './helpers.mjs';

describe('masto.js explore', () => {
  const clients = [];
  const accounts = [];

  before(async () => {
    for (const prefix of ['exa', 'exb', 'exc', 'exd']) {
      const user = await signUpWithCode(prefix);
      const client = createRestAPIClient({ url: BASE, accessToken: user.token });
      clients.push(client);
      accounts.push(await client.v1.accounts.verifyCredentials());
    }
  });

  it('lists trending hashtags with their history and trending statuses', async () => {
    const tag = `mastotrend${accounts[0].id.slice(-6)}`;
    for (const client of clients.slice(0, 3)) {
      await client.v1.statuses.create({ status: `about #${tag}` });
    }
    const trend = await eventually(async () => {
      const tags = await clients[3].v1.trends.tags.list({ limit: 20 });
      return tags.find((t) => t.name === tag && t.history?.[0]?.accounts === '3');
    }, 15_000);
    assert.equal(trend.history.length, 7);
    assert.equal(trend.history[0].uses, '3');

    const post = await clients[0].v1.statuses.create({ status: 'a post to like' });
    await clients[1].v1.statuses.$select(post.id).favourite();
    await clients[2].v1.statuses.$select(post.id).favourite();
    await clients[3].v1.statuses.$select(post.id).reblog();
    const trending = await eventually(async () => {
      const statuses = await clients[3].v1.trends.statuses.list();
      return statuses.find((s) => s.id === post.id);
    }, 15_000);
    assert.equal(trending.favouritesCount, 2);
  });

  it('suggests friends of friends and forgets a dismissed one', async () => {
    const [me, friend] = [clients[0], clients[1]];
    const target = accounts[2];
    await friend.v1.accounts.$select(target.id).follow();
    await me.v1.accounts.$select(accounts[1].id).follow();
    const suggestion = await eventually(async () => {
      const list = await me.v2.suggestions.list();
      return list.find((s) => s.account.id === target.id);
    }, 15_000);
    assert.deepEqual(suggestion.sources, ['friends_of_friends']);
    await me.v1.suggestions.$select(target.id).remove();
    const after = await me.v2.suggestions.list();
    assert.ok(!after.some((s) => s.account.id === target.id));
    await assert.rejects(me.v1.suggestions.$select('999999999999').remove(), (e) => e.statusCode === 404);
  });
});
