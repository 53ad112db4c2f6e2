// masto.js from npm against Starling: editing a status (update, history, source) and
// polls (create with a status, vote once), as an app's Edit button and poll widget use them.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createRestAPIClient } from 'masto';

import { BASE, signUpWithCode } from './helpers.mjs';

describe('masto.js edits and polls', () => {
  let author;
  let voter;

  before(async () => {
    const [a, v] = [await signUpWithCode('edauthor'), await signUpWithCode('edvoter')];
    author = createRestAPIClient({ url: BASE, accessToken: a.token });
    voter = createRestAPIClient({ url: BASE, accessToken: v.token });
  });

  it('edits a status and reads its history and source', async () => {
    const status = await author.v1.statuses.create({ status: 'masto first draft' });
    assert.equal(status.editedAt, null);
    const edited = await author.v1.statuses.$select(status.id).update({
      status: 'masto second draft',
      spoilerText: 'cw',
    });
    assert.equal(edited.id, status.id);
    assert.match(edited.content, /second draft/);
    assert.ok(edited.editedAt);
    const history = await author.v1.statuses.$select(status.id).history.list();
    assert.equal(history.length, 2);
    assert.match(history[0].content, /first draft/);
    assert.match(history[1].content, /second draft/);
    assert.equal(history[1].spoilerText, 'cw');
    const source = await author.v1.statuses.$select(status.id).source.fetch();
    assert.equal(source.text, 'masto second draft');
    assert.equal(source.spoilerText, 'cw');
    // Someone else cannot edit it.
    await assert.rejects(
      voter.v1.statuses.$select(status.id).update({ status: 'not mine' }),
      (e) => e.statusCode === 404,
    );
  });

  it('posts a poll and votes in it once', async () => {
    const status = await author.v1.statuses.create({
      status: 'masto poll',
      poll: { options: ['left', 'right'], expiresIn: 600 },
    });
    assert.deepEqual(status.poll.options.map((o) => o.title), ['left', 'right']);
    const poll = await voter.v1.polls.$select(status.poll.id).votes.create({ choices: [1] });
    assert.equal(poll.voted, true);
    assert.deepEqual(poll.ownVotes, [1]);
    assert.equal(poll.votesCount, 1);
    const again = await voter.v1.polls.$select(status.poll.id).fetch();
    assert.equal(again.options[1].votesCount, 1);
    await assert.rejects(
      voter.v1.polls.$select(status.poll.id).votes.create({ choices: [0] }),
      (e) => e.statusCode === 422,
    );
    await assert.rejects(
      author.v1.polls.$select(status.poll.id).votes.create({ choices: [0] }),
      (e) => e.statusCode === 422,
    );
    await assert.rejects(
      author.v1.statuses.create({ status: 'one option', poll: { options: ['alone'], expiresIn: 600 } }),
      (e) => e.statusCode === 422,
    );
  });
});
