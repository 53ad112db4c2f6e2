// masto.js from npm against Starling: lists, followed hashtags, bookmarks and favourites
// (issue 13), the calls behind an app's Lists, Explore, Bookmarks and Favourites screens.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createRestAPIClient } from 'masto';

import { BASE, signUpWithCode } from './helpers.mjs';

const ids = (items) => items.map((s) => s.id);

async function eventually(check, what) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('masto.js feeds', () => {
  let owner;
  let friend;
  let stranger;
  let ownerMe;

  before(async () => {
    const [o, f, s] = [await signUpWithCode('flowner'), await signUpWithCode('flfriend'), await signUpWithCode('flstranger')];
    owner = createRestAPIClient({ url: BASE, accessToken: o.token });
    friend = createRestAPIClient({ url: BASE, accessToken: f.token });
    stranger = createRestAPIClient({ url: BASE, accessToken: s.token });
    ownerMe = await owner.v1.accounts.verifyCredentials();
  });

  it('creates a list, adds a followed member and reads the list timeline', async () => {
    const friendMe = await friend.v1.accounts.verifyCredentials();
    await owner.v1.accounts.$select(friendMe.id).follow();
    const list = await owner.v1.lists.create({ title: 'masto list', repliesPolicy: 'followed', exclusive: true });
    assert.equal(list.repliesPolicy, 'followed');
    assert.equal(list.exclusive, true);
    await owner.v1.lists.$select(list.id).accounts.create({ accountIds: [friendMe.id] });
    const members = await owner.v1.lists.$select(list.id).accounts.list();
    assert.deepEqual(ids(members), [friendMe.id]);
    const holding = await owner.v1.accounts.$select(friendMe.id).lists.list();
    assert.deepEqual(ids(holding), [list.id]);
    const posted = await friend.v1.statuses.create({ status: 'masto list post' });
    const timeline = await eventually(async () => {
      const page = await owner.v1.timelines.list.$select(list.id).list();
      return page.length ? page : null;
    }, 'the list timeline');
    assert.deepEqual(ids(timeline), [posted.id]);
    // Exclusive: not at home.
    const home = await owner.v1.timelines.home.list();
    assert.ok(!ids(home).includes(posted.id));
    // Someone else's list is not found.
    await assert.rejects(stranger.v1.lists.$select(list.id).fetch(), (e) => e.statusCode === 404);
    // A member the owner does not follow is refused.
    const strangerMe = await stranger.v1.accounts.verifyCredentials();
    await assert.rejects(
      owner.v1.lists.$select(list.id).accounts.create({ accountIds: [strangerMe.id] }),
      (e) => e.statusCode === 422,
    );
    await owner.v1.lists.$select(list.id).accounts.remove({ accountIds: [friendMe.id] });
    assert.deepEqual(await owner.v1.lists.$select(list.id).accounts.list(), []);
    await owner.v1.lists.$select(list.id).remove();
    assert.deepEqual(await owner.v1.lists.list(), []);
  });

  it('follows a hashtag and sees strangers\' posts with it at home', async () => {
    const tag = await owner.v1.tags.$select('mastofeeds').follow();
    assert.equal(tag.following, true);
    const followed = await owner.v1.followedTags.list();
    assert.deepEqual(followed.map((t) => t.name), ['mastofeeds']);
    const posted = await stranger.v1.statuses.create({ status: 'about #MastoFeeds' });
    await eventually(async () => ids(await owner.v1.timelines.home.list()).includes(posted.id), 'the tagged post');
    const unfollowed = await owner.v1.tags.$select('mastofeeds').unfollow();
    assert.equal(unfollowed.following, false);
  });

  it('bookmarks and favourites, listed newest kept first with their paginator', async () => {
    const posts = [];
    for (let i = 0; i < 3; i++) posts.push((await stranger.v1.statuses.create({ status: `keep ${i}` })).id);
    for (const id of [posts[1], posts[0], posts[2]]) {
      assert.equal((await owner.v1.statuses.$select(id).bookmark()).bookmarked, true);
      assert.equal((await owner.v1.statuses.$select(id).favourite()).favourited, true);
    }
    const seen = [];
    for await (const page of owner.v1.bookmarks.list({ limit: 2 })) {
      seen.push(...ids(page));
      if (seen.length > 10) break;
    }
    assert.deepEqual(seen, [posts[2], posts[0], posts[1]]);
    const faves = await owner.v1.favourites.list();
    assert.deepEqual(ids(faves).slice(0, 3), [posts[2], posts[0], posts[1]]);
    assert.equal((await owner.v1.statuses.$select(posts[0]).unbookmark()).bookmarked, false);
    assert.ok(!ids(await owner.v1.bookmarks.list()).includes(posts[0]));
    assert.equal(ownerMe.username.length > 0, true);
  });
});
