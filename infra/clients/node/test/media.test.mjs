// masto.js from npm: uploads through v2.media.create (which polls GET /api/v1/media/:id until
// the upload is processed), a post with the upload, and the file fetched back and decoded.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { deflateSync, inflateSync, crc32 } from 'node:zlib';
import { createRestAPIClient } from 'masto';

import { BASE, eventually, signUpWithCode } from './helpers.mjs';

/** A `width`×`height` RGB PNG of a gradient, written by hand (zlib is node's own). */
function png(width, height) {
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * 3)] = 0;
    for (let x = 0; x < width; x++) {
      const at = y * (1 + width * 3) + 1 + x * 3;
      raw[at] = x % 256; raw[at + 1] = y % 256; raw[at + 2] = 200;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4); sum.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Decode a PNG's pixel data: its size, and that every row inflates whole. */
function decodePng(buf) {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let at = 8; let width = 0; let height = 0; let depth = 0; let colour = 0; const idat = [];
  while (at < buf.length) {
    const len = buf.readUInt32BE(at); const type = buf.toString('latin1', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') { width = data.readUInt32BE(0); height = data.readUInt32BE(4); depth = data[8]; colour = data[9]; }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colour];
  const pixels = inflateSync(Buffer.concat(idat));
  assert.equal(pixels.length, height * (1 + width * channels * (depth / 8)));
  return { width, height };
}

describe('masto.js media', () => {
  let masto;

  before(async () => {
    const alice = await signUpWithCode('mastomedia');
    masto = createRestAPIClient({ url: BASE, accessToken: alice.token });
  });

  it('uploads with v2.media.create, polls until processed, posts it and reads the file back', async () => {
    const media = await masto.v2.media.create({
      file: new Blob([png(300, 120)], { type: 'image/png' }),
      description: 'a masto gradient',
    });
    assert.equal(media.type, 'image');
    assert.ok(media.url, 'processed: the url is set');
    assert.equal(media.meta.original.width, 300);
    assert.equal(media.description, 'a masto gradient');
    assert.ok(media.blurhash);

    const fetched = await masto.v1.media.$select(media.id).fetch();
    assert.equal(fetched.id, media.id);

    const status = await masto.v1.statuses.create({ status: 'with a picture', mediaIds: [media.id] });
    assert.deepEqual(status.mediaAttachments.map((m) => m.id), [media.id]);
    const again = await eventually(async () => {
      const s = await masto.v1.statuses.$select(status.id).fetch();
      return s.mediaAttachments.length === 1 ? s : null;
    });
    assert.equal(again.mediaAttachments[0].url, media.url);

    const res = await fetch(media.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const { width, height } = decodePng(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual([width, height], [300, 120]);
  });

  it('is told clearly when a file is not a picture', async () => {
    await assert.rejects(
      masto.v2.media.create({ file: new Blob([Buffer.from('PK\u0003\u0004 zip'.repeat(100))], { type: 'image/png' }) }),
      (err) => err.statusCode === 415,
    );
  });
});
