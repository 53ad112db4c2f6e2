// masto.js against the social surface of issue 13: profile edits (masto sends
// update_credentials as a multipart form, nested keys and all), locked accounts and
// follow requests.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createRestAPIClient } from 'masto';

import { BASE, signUpWithCode } from './helpers.mjs';

const client = (user) => createRestAPIClient({ url: BASE, accessToken: user.token });

async function waitFor(what, read, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('masto.js: profile and follow requests', () => {
  let owner;
  let asker;

  before(async () => {
    owner = await signUpWithCode('mastolocked');
    asker = await signUpWithCode('mastoasker');
  });

  it('edits the profile with fields and post defaults', async () => {
    const me = await client(owner).v1.accounts.updateCredentials({
      displayName: 'Masto Owner',
      note: 'edited through masto.js',
      fieldsAttributes: [{ name: 'site', value: 'https://masto.example' }, { name: 'x', value: 'y' }],
      source: { privacy: 'unlisted', language: 'de' },
    });
    assert.equal(me.displayName, 'Masto Owner');
    assert.deepEqual(me.fields.map((f) => f.name), ['site', 'x']);
    assert.equal(me.source.privacy, 'unlisted');
    assert.equal(me.source.language, 'de');
    assert.equal(me.source.note, 'edited through masto.js');
    const seen = await client(asker).v1.accounts.$select(me.id).fetch();
    assert.equal(seen.displayName, 'Masto Owner');
    await assert.rejects(
      client(owner).v1.accounts.updateCredentials({ displayName: 'n'.repeat(31) }),
      (err) => err.statusCode === 422,
    );
  });

  it('turns a follow of a locked account into a request the owner decides', async () => {
    const ownerApi = client(owner);
    const askerApi = client(asker);
    const me = await ownerApi.v1.accounts.updateCredentials({ locked: true });
    assert.equal(me.locked, true);
    const rel = await askerApi.v1.accounts.$select(me.id).follow();
    assert.equal(rel.requested, true);
    assert.equal(rel.following, false);
    const askerMe = await askerApi.v1.accounts.verifyCredentials();
    const requests = await ownerApi.v1.followRequests.list();
    assert.deepEqual(requests.map((a) => a.id), [askerMe.id]);
    const note = await waitFor('a follow_request notification', async () =>
      (await ownerApi.v1.notifications.list({ types: ['follow_request'] }))[0]);
    assert.equal(note.type, 'follow_request');
    const askerId = note.account.id;
    const decided = await ownerApi.v1.followRequests.$select(askerId).authorize();
    assert.equal(decided.followedBy, true);
    const [after] = await askerApi.v1.accounts.relationships.fetch({ id: [me.id] });
    assert.equal(after.following, true);
    assert.equal(after.requested, false);
    await assert.rejects(ownerApi.v1.followRequests.$select(askerId).reject(), (err) => err.statusCode === 404);
  });

  it('mutes and unmutes a conversation', async () => {
    const ownerApi = client(owner);
    const root = await ownerApi.v1.statuses.create({ status: 'a masto thread' });
    const muted = await ownerApi.v1.statuses.$select(root.id).mute();
    assert.equal(muted.muted, true);
    assert.equal((await ownerApi.v1.statuses.$select(root.id).fetch()).muted, true);
    const unmuted = await ownerApi.v1.statuses.$select(root.id).unmute();
    assert.equal(unmuted.muted, false);
    await assert.rejects(ownerApi.v1.statuses.$select('12345').mute(), (err) => err.statusCode === 404);
  });
});
