// Start-up endpoints through real npm clients: masto.js (grouped notifications v2, markers,
// filters v2) and megalodon (preferences, markers, filters v1, notifications).
//
// Needs a running Starling at STARLING_BASE_URL. Tokens: each user registers through
// POST /api/v1/accounts with a client-credentials app token, then signs in with the
// password grant (plain fetch, see `signIn`); switch `signIn` to the stage's shared
// sign-in helper (authorization code) when the Node stage has one.

import assert from "node:assert/strict";
import { test } from "node:test";

import { createRestAPIClient } from "masto";
import megalodon from "megalodon";

// megalodon is CommonJS: its `generator` is the default export's `default`.
const generator = megalodon.default ?? megalodon;

const BASE = (process.env.STARLING_BASE_URL ?? "").replace(/\/$/, "");
if (!BASE) throw new Error("STARLING_BASE_URL is not set");
const PASSWORD = "correct horse battery staple";
const run = Math.random().toString(36).slice(2, 8);
let counter = 0;

async function form(path, body, token) {
  const res = await fetch(BASE + path, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: new URLSearchParams(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

let appCache;
async function app() {
  appCache ??= await form("/api/v1/apps", {
    client_name: "starling-node-startup",
    redirect_uris: "urn:ietf:wg:oauth:2.0:oob",
    scopes: "read write follow",
  });
  return appCache;
}

/** A fresh account and a token for it from the password grant. */
async function signIn(prefix) {
  const { client_id, client_secret } = await app();
  const appToken = await form("/oauth/token", {
    grant_type: "client_credentials",
    client_id,
    client_secret,
    scope: "read write follow",
  });
  const username = `${prefix}_${run}_${counter++}`;
  await form(
    "/api/v1/accounts",
    { username, email: `${username}@example.org`, password: PASSWORD, agreement: "true", locale: "en" },
    appToken.access_token,
  );
  const token = await form("/oauth/token", {
    grant_type: "password",
    client_id,
    client_secret,
    username,
    password: PASSWORD,
    scope: "read write follow",
  });
  const masto = createRestAPIClient({ url: BASE, accessToken: token.access_token });
  const me = await masto.v1.accounts.verifyCredentials();
  return {
    username,
    id: me.id,
    token: token.access_token,
    masto,
    mega: generator("mastodon", BASE, token.access_token),
  };
}

async function until(what, fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("masto.js: grouped notifications, unread counts and markers", async () => {
  const author = await signIn("author");
  const fans = [await signIn("fan"), await signIn("fan"), await signIn("fan")];
  const post = await author.masto.v1.statuses.create({ status: "favourite me" });
  for (const f of fans) await f.masto.v1.statuses.$select(post.id).favourite();
  await fans[0].masto.v1.accounts.$select(author.id).follow();
  await fans[1].masto.v1.accounts.$select(author.id).follow();
  await fans[2].masto.v1.statuses.create({ status: `@${author.username} hi` });
  await until("six notifications", async () =>
    (await author.masto.v1.notifications.list({ limit: 40 })).length >= 6);

  const page = await author.masto.v2.notifications.list({ expandAccounts: "full" });
  const groups = page.notificationGroups;
  assert.equal(groups.length, 3, JSON.stringify(groups));
  const fav = groups.find((g) => g.type === "favourite");
  assert.equal(fav.notificationsCount, 3);
  assert.equal(fav.statusId, post.id);
  assert.deepEqual([...fav.sampleAccountIds].sort(), fans.map((f) => f.id).sort());
  assert.equal(groups.find((g) => g.type === "follow").notificationsCount, 2);
  assert.equal(groups.find((g) => g.type === "mention").notificationsCount, 1);
  assert.ok(page.statuses.some((s) => s.id === post.id));
  assert.equal(page.accounts.length, 3);

  // The paginator walks groups a page at a time through the Link header.
  const seen = [];
  for await (const p of author.masto.v2.notifications.list({ limit: 1 })) {
    seen.push(...p.notificationGroups.map((g) => g.groupKey));
    if (seen.length > 10) break;
  }
  // A group split by a page boundary shows again on the next page, as on Mastodon (apps
  // merge by group key).
  assert.deepEqual([...new Set(seen)], groups.map((g) => g.groupKey));

  const one = await author.masto.v2.notifications.$select(fav.groupKey).fetch();
  assert.equal(one.notificationGroups[0].notificationsCount, 3);
  assert.equal((await author.masto.v2.notifications.unreadCount.fetch()).count, 3);
  assert.equal((await author.masto.v1.notifications.unreadCount.fetch()).count, 6);

  const marker = await author.masto.v1.markers.create({
    notifications: { lastReadId: fav.mostRecentNotificationId },
  });
  assert.equal(marker.notifications.version, 1);
  const markers = await author.masto.v1.markers.fetch({ timeline: ["home", "notifications"] });
  assert.equal(markers.notifications.lastReadId, fav.mostRecentNotificationId);
  assert.equal(markers.home, undefined);
  const unread = (await author.masto.v2.notifications.unreadCount.fetch()).count;
  assert.ok(unread < 3, `fewer unread after the marker moved: ${unread}`);
});

test("masto.js: filters v2 hide and warn in home", async () => {
  const reader = await signIn("reader");
  const writer = await signIn("writer");
  await reader.masto.v1.accounts.$select(writer.id).follow();
  const hide = await reader.masto.v2.filters.create({
    title: "no spoilers",
    context: ["home"],
    filterAction: "hide",
    keywordsAttributes: [{ keyword: "spoiler", wholeWord: true }],
  });
  const warn = await reader.masto.v2.filters.create({
    title: "finales",
    context: ["home"],
    filterAction: "warn",
    keywordsAttributes: [{ keyword: "finale", wholeWord: true }],
  });
  assert.equal(hide.keywords[0].keyword, "spoiler");
  assert.equal((await reader.masto.v2.filters.list()).length, 2);

  const hidden = await writer.masto.v1.statuses.create({ status: "spoiler alert" });
  const warned = await writer.masto.v1.statuses.create({ status: "the finale!" });
  const plain = await writer.masto.v1.statuses.create({ status: "finales" });
  const home = await until("the plain post at home", async () => {
    const h = await reader.masto.v1.timelines.home.list({ limit: 40 });
    return h.some((s) => s.id === plain.id) && h;
  });
  assert.ok(!home.some((s) => s.id === hidden.id));
  const w = home.find((s) => s.id === warned.id);
  assert.equal(w.filtered[0].filter.id, warn.id);
  assert.deepEqual(w.filtered[0].keywordMatches, ["finale"]);

  const kw = await reader.masto.v2.filters.$select(warn.id).keywords.create({ keyword: "twist" });
  assert.equal(kw.wholeWord, true);
  const updated = await reader.masto.v2.filters.$select(warn.id).update({ title: "endings" });
  assert.equal(updated.title, "endings");
  await reader.masto.v2.filters.$select(hide.id).remove();
  const after = await reader.masto.v1.timelines.home.list({ limit: 40 });
  assert.ok(after.some((s) => s.id === hidden.id), "removing the filter shows the post");
});

test("megalodon: preferences, markers, filters v1 and notifications", async () => {
  const a = await signIn("mega");
  const b = await signIn("megb");
  const prefs = (await a.mega.getPreferences()).data;
  assert.equal(prefs["posting:default:visibility"], "public");
  assert.deepEqual((await a.mega.getInstanceCustomEmojis()).data, []);
  assert.ok(Array.isArray((await a.mega.getInstanceAnnouncements()).data));

  const post = (await a.mega.postStatus("a status to mark")).data;
  const saved = (await a.mega.saveMarkers({ home: { last_read_id: post.id } })).data;
  assert.equal(saved.home.last_read_id, post.id);
  assert.equal(saved.home.version, 1);
  const markers = (await a.mega.getMarkers(["home", "notifications"])).data;
  assert.equal(markers.home.last_read_id, post.id);

  const filter = (await a.mega.createFilter("weather", ["home"], { irreversible: true, whole_word: true })).data;
  assert.equal(filter.phrase, "weather");
  assert.equal(filter.irreversible, true);
  assert.equal((await a.mega.getFilters()).data.length, 1);
  const changed = (await a.mega.updateFilter(filter.id, "rain", ["home", "public"])).data;
  assert.equal(changed.phrase, "rain");
  assert.deepEqual(changed.context, ["home", "public"]);

  await b.mega.favouriteStatus(post.id);
  const notes = await until("a favourite notification", async () =>
    (await a.mega.getNotifications()).data.length > 0 && (await a.mega.getNotifications()).data);
  assert.equal(notes[0].type, "favourite");
  await a.mega.deleteFilter(filter.id);
  assert.equal((await a.mega.getFilters()).data.length, 0);
});
