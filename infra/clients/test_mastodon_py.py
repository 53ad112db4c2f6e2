"""Mastodon.py (PyPI) against a running Starling.

Each test drives the server through Mastodon.py's public API, the way an application would;
a few also read the raw HTTP response where the wire itself is the subject (Link header
order, entity fields, error bodies).
"""

import datetime
import re
import secrets
import time

import pytest
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonIllegalArgumentError,
    MastodonNotFoundError,
    MastodonUnauthorizedError,
)

from conftest import (
    ACCOUNT_FIELDS,
    PASSWORD,
    RELATIONSHIP_FIELDS,
    STATUS_FIELDS,
    home_ids,
    make_client,
    wait_until,
)


def status_code(err: MastodonAPIError) -> int:
    # Mastodon.py raises ex_type('Mastodon API returned error', status_code, reason, error_msg)
    # (mastodon/internals.py, __api_request).
    return err.args[1]


def unique(text: str) -> str:
    return f"{text} {secrets.token_hex(4)}"


# --- instance ----------------------------------------------------------------------------


def test_instance_v1(base_url, app):
    m = make_client(base_url, app)
    inst = m.instance_v1()  # GET /api/v1/instance/ (trailing slash)
    assert inst["uri"]
    assert inst["title"]
    assert isinstance(inst["version"], str) and inst["version"]


def test_instance_v2(base_url, app):
    m = make_client(base_url, app)
    inst = m.instance_v2()  # GET /api/v2/instance/ (trailing slash)
    assert inst["domain"]
    assert isinstance(inst["api_versions"]["mastodon"], int)
    assert inst["configuration"]["urls"]["streaming"]
    assert inst["configuration"]["statuses"]["max_characters"] == 500


def test_instance_v2_without_trailing_slash(http):
    # The same document at the path without the slash (masto.js, megalodon, the apps).
    resp = http.get("/api/v2/instance")
    assert resp.status_code == 200
    inst = resp.json()
    assert isinstance(inst["api_versions"]["mastodon"], int)
    assert inst["configuration"]["urls"]["streaming"]
    assert inst["version"].split(" ")[0].split("+")[0].count(".") == 2


def test_instance_picks_v2_for_a_v4_server(base_url, app):
    m = make_client(base_url, app)
    inst = m.instance()  # v2 when the version is >= 4.0.0, else v1
    assert "domain" in inst, f"instance() fell back to v1: {dict(inst)}"


def test_retrieve_mastodon_version(base_url, app):
    m = make_client(base_url, app)
    version = m.retrieve_mastodon_version(fail_hard=True)
    assert re.match(r"^\d+\.\d+\.\d+", version), version
    assert m.mastodon_major >= 4
    assert m.verify_minimum_version("4.0.0", cached=True)
    assert isinstance(m.mastodon_api_version, int) and m.mastodon_api_version >= 1


# --- apps, registration, tokens -------------------------------------------------------------


def test_register_and_verify_credentials(new_user, http):
    user = new_user("reg")
    me = user.api.account_verify_credentials()
    assert me["username"] == user.username
    assert me["acct"] == user.username
    assert isinstance(me["id"], str)
    assert "source" in me, "verify_credentials must carry `source`"
    assert me["statuses_count"] == 0
    raw = http.get("/api/v1/accounts/verify_credentials", user.token).json()
    missing = ACCOUNT_FIELDS - set(raw)
    assert not missing, f"Account lacks {sorted(missing)}"


def test_password_grant_login(base_url, app, alice):
    m = make_client(base_url, app)
    # Since Starling publishes /.well-known/oauth-authorization-server, Mastodon.py takes the
    # token endpoint from it and insists on https unless told this is a plain-http test server.
    token = m.log_in(username=alice.username, password=PASSWORD, allow_http=True)
    assert isinstance(token, str) and token
    assert token != alice.token
    assert m.account_verify_credentials()["id"] == alice.id


def test_password_grant_wrong_password(base_url, app, alice):
    m = make_client(base_url, app)
    # log_in wraps the server's error into MastodonIllegalArgumentError.
    with pytest.raises(MastodonIllegalArgumentError):
        m.log_in(username=alice.username, password="not the password", allow_http=True)


def test_bad_token_is_unauthorized(base_url, app):
    m = make_client(base_url, app, access_token="not-a-token")
    with pytest.raises(MastodonUnauthorizedError):
        m.account_verify_credentials()


def test_revoke_access_token(base_url, app, alice):
    m = make_client(base_url, app)
    token = m.log_in(username=alice.username, password=PASSWORD, allow_http=True)
    assert m.account_verify_credentials()["id"] == alice.id
    m.revoke_access_token(allow_http=True)
    with pytest.raises(MastodonUnauthorizedError):
        make_client(base_url, app, access_token=token).account_verify_credentials()
    # The user's other tokens keep working.
    assert alice.api.account_verify_credentials()["id"] == alice.id


# --- statuses -----------------------------------------------------------------------------


def test_status_post_and_fetch(alice, bob, http):
    text = unique("hello <world> & friends")
    st = alice.api.status_post(text)
    assert isinstance(st["id"], str)
    assert st["account"]["id"] == alice.id
    assert st["visibility"] == "public"
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert st["content"] == f"<p>{escaped}</p>"
    assert isinstance(st["created_at"], datetime.datetime)

    fetched = bob.api.status(st["id"])
    assert fetched["id"] == st["id"]
    assert fetched["content"] == st["content"]
    assert fetched["account"]["username"] == alice.username

    raw = http.get(f"/api/v1/statuses/{st['id']}", bob.token).json()
    missing = STATUS_FIELDS - set(raw)
    assert not missing, f"Status lacks {sorted(missing)}"
    missing = ACCOUNT_FIELDS - set(raw["account"])
    assert not missing, f"Status.account lacks {sorted(missing)}"


def test_status_post_idempotency_key(alice):
    key = secrets.token_hex(8)
    first = alice.api.status_post(unique("idempotent"), idempotency_key=key)
    again = alice.api.status_post(unique("idempotent retry"), idempotency_key=key)
    assert again["id"] == first["id"]
    other = alice.api.status_post(unique("idempotent other"), idempotency_key=secrets.token_hex(8))
    assert other["id"] != first["id"]


def test_status_post_visibility(alice):
    for visibility in ("unlisted", "private"):
        st = alice.api.status_post(unique(f"visibility {visibility}"), visibility=visibility)
        assert st["visibility"] == visibility
        assert alice.api.status(st["id"])["visibility"] == visibility


def test_private_status_hidden_from_non_followers(alice, carol):
    st = alice.api.status_post(unique("followers only"), visibility="private")
    with pytest.raises(MastodonNotFoundError):
        carol.api.status(st["id"])


def test_status_too_long_is_422(alice):
    alice.api.status_post("x" * 500)  # exactly the limit
    with pytest.raises(MastodonAPIError) as err:
        alice.api.status_post("x" * 501)
    assert status_code(err.value) == 422
    assert err.value.args[3], "the error body must carry {\"error\": ...}"


def test_unknown_status_is_not_found(alice):
    with pytest.raises(MastodonNotFoundError):
        alice.api.status("1")


def test_delete_someone_elses_status_is_403(alice, bob):
    st = bob.api.status_post(unique("not yours"))
    with pytest.raises(MastodonAPIError) as err:
        alice.api.status_delete(st["id"])
    assert status_code(err.value) == 403
    assert bob.api.status(st["id"])["id"] == st["id"]


def test_status_delete(new_user):
    author, reader = new_user("author"), new_user("reader")
    reader.api.account_follow(author.id)
    text = unique("delete me")
    st = author.api.status_post(text)
    wait_until(lambda: st["id"] in home_ids(reader.api), message="the post in the follower's home")

    deleted = author.api.status_delete(st["id"])
    assert deleted["id"] == st["id"]
    assert deleted["text"] == text, "DELETE returns the status with its source `text`"

    with pytest.raises(MastodonNotFoundError):
        author.api.status(st["id"])
    with pytest.raises(MastodonNotFoundError):
        reader.api.status(st["id"])
    wait_until(lambda: st["id"] not in home_ids(reader.api), message="the post gone from home")
    assert st["id"] not in home_ids(author.api)
    assert st["id"] not in [s["id"] for s in author.api.account_statuses(author.id)]


# --- accounts and follows -------------------------------------------------------------------


def test_account_lookup(alice, bob):
    acct = bob.api.account_lookup(alice.username)
    assert acct["id"] == alice.id
    assert acct["username"] == alice.username
    with pytest.raises(MastodonNotFoundError):
        bob.api.account_lookup(f"nobody_{secrets.token_hex(4)}")


def test_account_by_id(alice, bob):
    acct = bob.api.account(alice.id)
    assert acct["username"] == alice.username
    with pytest.raises(MastodonNotFoundError):
        bob.api.account("1")


def test_follow_relationships_unfollow(new_user, http):
    a, b = new_user("follower"), new_user("followee")

    rel = a.api.account_follow(b.id)
    assert rel["id"] == b.id
    assert rel["following"] is True
    assert rel["followed_by"] is False

    rels = a.api.account_relationships(b.id)
    assert len(rels) == 1
    assert rels[0]["id"] == b.id and rels[0]["following"] is True
    rels = b.api.account_relationships([a.id])
    assert rels[0]["id"] == a.id
    assert rels[0]["followed_by"] is True and rels[0]["following"] is False

    raw = http.get("/api/v1/accounts/relationships", a.token, params={"id[]": [b.id]}).json()
    missing = RELATIONSHIP_FIELDS - set(raw[0])
    assert not missing, f"Relationship lacks {sorted(missing)}"

    assert [x["id"] for x in a.api.account_followers(b.id)] == [a.id]
    assert [x["id"] for x in a.api.account_following(a.id)] == [b.id]
    assert a.api.account(b.id)["followers_count"] == 1
    assert a.api.account(a.id)["following_count"] == 1

    rel = a.api.account_unfollow(b.id)
    assert rel["id"] == b.id
    assert rel["following"] is False
    assert a.api.account_relationships(b.id)[0]["following"] is False
    assert list(a.api.account_followers(b.id)) == []
    assert list(a.api.account_following(a.id)) == []


def test_relationships_for_several_ids(alice, bob, carol):
    rels = alice.api.account_relationships([bob.id, carol.id])
    assert sorted(r["id"] for r in rels) == sorted([bob.id, carol.id])


# --- home timeline -----------------------------------------------------------------------


def test_home_timeline_shows_a_followees_post(new_user):
    reader, author, stranger = new_user("reader"), new_user("author"), new_user("stranger")
    reader.api.account_follow(author.id)
    st = author.api.status_post(unique("for my followers"))
    other = stranger.api.status_post(unique("not followed"))
    home = wait_until(
        lambda: [s for s in reader.api.timeline_home() if s["id"] == st["id"]],
        message="the followee's post in home",
    )
    assert home[0]["account"]["id"] == author.id
    assert home[0]["content"] == st["content"]
    assert other["id"] not in home_ids(reader.api)


def test_home_timeline_includes_own_posts(new_user):
    user = new_user("self")
    st = user.api.status_post(unique("my own post"))
    wait_until(lambda: st["id"] in home_ids(user.api), message="one's own post in home")


PAGE_POSTS = 45


@pytest.fixture(scope="module")
def paged_home(new_user):
    """A reader whose home holds exactly 45 statuses from one followee, newest first."""
    reader, author = new_user("pager"), new_user("paged")
    reader.api.account_follow(author.id)
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
    posted = [author.api.status_post(f"page post {i}")["id"] for i in range(PAGE_POSTS)]
    expected = list(reversed(posted))

    def all_arrived():
        ids = [s["id"] for s in reader.api.fetch_remaining(reader.api.timeline_home(limit=40))]
        return ids if len(ids) >= PAGE_POSTS else None

    wait_until(all_arrived, timeout=20, interval=0.2, message=f"{PAGE_POSTS} posts in home")
    return reader, author, expected, before


def ids(page) -> list:
    return [s["id"] for s in page] if page is not None else []


def test_status_ids_are_time_ordered(paged_home):
    _, _, expected, _ = paged_home
    as_ints = [int(i) for i in expected]
    assert as_ints == sorted(as_ints, reverse=True)
    # (unix_ms << 16) | low16: the high bits are a plausible millisecond clock.
    now_ms = time.time() * 1000
    assert abs((as_ints[0] >> 16) - now_ms) < 10 * 60 * 1000


def test_home_pagination_fetch_next(paged_home):
    reader, _, expected, _ = paged_home
    page1 = reader.api.timeline_home(limit=20)
    assert ids(page1) == expected[:20]
    page2 = reader.api.fetch_next(page1)
    assert ids(page2) == expected[20:40]
    page3 = reader.api.fetch_next(page2)
    assert ids(page3) == expected[40:]
    page4 = reader.api.fetch_next(page3)
    assert not ids(page4)


def test_home_pagination_fetch_previous(paged_home):
    reader, _, expected, _ = paged_home
    page1 = reader.api.timeline_home(limit=20)
    page2 = reader.api.fetch_next(page1)
    page3 = reader.api.fetch_next(page2)
    # min_id pages forward from the cursor: the 20 statuses just newer than page 3,
    # still newest first.
    assert ids(reader.api.fetch_previous(page3)) == expected[20:40]
    assert ids(reader.api.fetch_previous(page2)) == expected[:20]
    assert not ids(reader.api.fetch_previous(page1))


def test_home_pagination_fetch_remaining(paged_home):
    reader, _, expected, _ = paged_home
    everything = reader.api.fetch_remaining(reader.api.timeline_home(limit=20))
    assert ids(everything) == expected


def test_home_since_id_and_min_id(paged_home):
    reader, _, expected, _ = paged_home
    assert ids(reader.api.timeline_home(since_id=expected[5])) == expected[:5]
    assert ids(reader.api.timeline_home(min_id=expected[5])) == expected[:5]
    assert ids(reader.api.timeline_home(max_id=expected[5], limit=3)) == expected[6:9]
    assert ids(reader.api.timeline_home(min_id=expected[30], limit=4)) == expected[26:30]


def test_home_datetime_cursors(paged_home):
    # Mastodon.py turns a datetime into the id (secs << 16) * 1000.
    reader, _, expected, before = paged_home
    assert ids(reader.api.timeline_home(max_id=before)) == []
    assert ids(reader.api.timeline_home(min_id=before, limit=40)) == expected[-40:]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
    assert ids(reader.api.timeline_home(max_id=later, limit=10)) == expected[:10]


def test_home_link_header_next_first(paged_home, http):
    reader, _, expected, _ = paged_home
    resp = http.get("/api/v1/timelines/home", reader.token, params={"limit": 20})
    assert resp.status_code == 200
    link = resp.headers.get("Link", "")
    # toot's parser: re.match('<([^>]+)>; rel="next"', links) (toot/api.py, _get_next_path).
    m = re.match(r'<([^>]+)>; rel="next"', link)
    assert m, f"Link must start with the next link, got {link!r}"
    assert f"max_id={expected[19]}" in m.group(1)
    assert re.search(rf'<[^>]*min_id={expected[0]}[^>]*>; rel="prev"', link), link


def test_account_statuses(paged_home):
    reader, author, expected, _ = paged_home
    page = reader.api.account_statuses(author.id, limit=40)
    assert ids(page) == expected[:40]
    assert ids(reader.api.fetch_remaining(page)) == expected
    assert ids(reader.api.account_statuses(author.id, max_id=expected[40])) == expected[41:]
    assert reader.api.account(author.id)["statuses_count"] == PAGE_POSTS


def test_error_bodies_are_json(http, alice):
    resp = http.get("/api/v1/statuses/1", alice.token)
    assert resp.status_code == 404
    assert isinstance(resp.json().get("error"), str)
    resp = http.get("/api/v1/accounts/verify_credentials", "not-a-token")
    assert resp.status_code == 401
    assert isinstance(resp.json().get("error"), str)


# --- search ------------------------------------------------------------------------------


def test_search_v2(new_user):
    # The index is fed asynchronously: poll (up to 3 s) until the post is searchable.
    author = new_user("searcher")
    reader = new_user("reader")
    word = f"zq{secrets.token_hex(4)}"
    tag = f"tag{secrets.token_hex(3)}"
    st = author.api.status_post(f"Searching for {word} with #{tag}")
    hidden = author.api.status_post(f"{word} for followers only", visibility="private")

    def found():
        result = reader.api.search_v2(word, result_type="statuses")
        return [s["id"] for s in result["statuses"]]

    ids = wait_until(found, timeout=3.0, message="the post in search results")
    assert ids == [st["id"]], "the private post is not found"
    assert hidden["id"] not in ids

    result = reader.api.search_v2(f"#{tag}")
    assert [s["id"] for s in result["statuses"]] == [st["id"]]
    assert [h["name"] for h in result["hashtags"]] == [tag]
    assert result["hashtags"][0]["url"].endswith(f"/tags/{tag}")

    result = reader.api.search_v2(f"{word} from:{author.username}", result_type="statuses")
    assert [s["id"] for s in result["statuses"]] == [st["id"]]

    prefix = author.username[: len(author.username) - 2]
    accounts = wait_until(
        lambda: reader.api.search_v2(prefix, result_type="accounts")["accounts"],
        timeout=3.0,
        message="the account in search results",
    )
    assert author.id in [a["id"] for a in accounts]
    # An exact address comes first.
    exact = reader.api.search_v2(f"@{author.username}", result_type="accounts")["accounts"]
    assert exact[0]["id"] == author.id


# --- social actions: favourites, reblogs, replies, notifications, hashtags ------------------


def test_favourite_and_unfavourite(new_user):
    author, fan = new_user("faved"), new_user("fan")
    st = author.api.status_post(unique("worth a star"))
    faved = fan.api.status_favourite(st["id"])
    assert faved["favourited"] is True
    assert faved["favourites_count"] == 1
    assert fan.api.status_favourite(st["id"])["favourites_count"] == 1
    assert [a["id"] for a in author.api.status_favourited_by(st["id"])] == [fan.id]
    undone = fan.api.status_unfavourite(st["id"])
    assert undone["favourited"] is False
    assert undone["favourites_count"] == 0


def test_reblog_wraps_the_original_and_reaches_followers(new_user):
    author, booster, reader = new_user("orig"), new_user("booster"), new_user("reader")
    reader.api.account_follow(booster.id)
    st = author.api.status_post(unique("boost me"))
    wrapper = booster.api.status_reblog(st["id"])
    assert wrapper["reblog"]["id"] == st["id"]
    assert wrapper["reblog"]["reblogged"] is True
    assert wrapper["account"]["id"] == booster.id
    home = wait_until(
        lambda: [s for s in reader.api.timeline_home() if s["id"] == wrapper["id"]],
        message="the reblog in a follower's home",
    )
    assert home[0]["reblog"]["id"] == st["id"]
    assert home[0]["reblog"]["account"]["id"] == author.id
    assert [a["id"] for a in author.api.status_reblogged_by(st["id"])] == [booster.id]
    undone = booster.api.status_unreblog(st["id"])
    assert undone["id"] == st["id"] and undone["reblogged"] is False
    wait_until(
        lambda: wrapper["id"] not in home_ids(reader.api),
        message="unreblog removes the wrapper from home",
    )


def test_private_status_cannot_be_reblogged(new_user):
    author, other = new_user("privrb"), new_user("other")
    other.api.account_follow(author.id)
    st = author.api.status_post(unique("followers only"), visibility="private")
    with pytest.raises(MastodonAPIError) as err:
        other.api.status_reblog(st["id"])
    assert status_code(err.value) == 403


def test_reply_and_context(new_user):
    root_author, replier = new_user("thread"), new_user("replier")
    root = root_author.api.status_post(unique("start of a thread"))
    first = replier.api.status_reply(root, unique("first reply"))
    assert first["in_reply_to_id"] == root["id"]
    assert first["in_reply_to_account_id"] == root_author.id
    assert f"@{root_author.username}" in first["content"]
    second = root_author.api.status_reply(first, unique("reply to the reply"))
    ctx = replier.api.status_context(root["id"])
    assert ctx["ancestors"] == []
    assert [s["id"] for s in ctx["descendants"]] == [first["id"], second["id"]]
    ctx = replier.api.status_context(second["id"])
    assert [s["id"] for s in ctx["ancestors"]] == [root["id"], first["id"]]
    assert replier.api.status(root["id"])["replies_count"] == 1


def test_notifications_for_mention_follow_favourite_reblog(new_user):
    me, other = new_user("notified"), new_user("actor")
    mine = me.api.status_post(unique("notice me"))
    other.api.account_follow(me.id)
    other.api.status_favourite(mine["id"])
    other.api.status_reblog(mine["id"])
    mention = other.api.status_post(f"hello @{me.username}")

    def all_four():
        got = me.api.notifications()
        return got if len(got) >= 4 else None

    notes = wait_until(all_four, message="four notifications")
    # Fan-out workers apply events concurrently, so their order is not fixed.
    by_type = {n["type"]: n for n in notes}
    assert sorted(by_type) == ["favourite", "follow", "mention", "reblog"]
    assert all(n["account"]["id"] == other.id for n in notes)
    assert by_type["mention"]["status"]["id"] == mention["id"]
    assert by_type["reblog"]["status"]["id"] == mine["id"]
    assert by_type["favourite"]["status"]["id"] == mine["id"]
    assert by_type["follow"]["status"] is None
    mentions = me.api.notifications(types=["mention"])
    assert [n["id"] for n in mentions] == [by_type["mention"]["id"]]
    no_follow = me.api.notifications(exclude_types=["follow"])
    assert sorted(n["type"] for n in no_follow) == ["favourite", "mention", "reblog"]
    one = me.api.notifications(id=by_type["favourite"]["id"])
    assert one["type"] == "favourite"
    page = me.api.notifications(limit=2)
    rest = me.api.fetch_next(page)
    assert [n["id"] for n in page + rest] == [n["id"] for n in notes]
    me.api.notifications_dismiss(notes[0]["id"])
    assert len(me.api.notifications()) == 3
    me.api.notifications_clear()
    assert me.api.notifications() == []


def test_block_and_mute(new_user):
    me, pest = new_user("blocker"), new_user("pest")
    me.api.account_follow(pest.id)
    pest.api.account_follow(me.id)
    rel = me.api.account_block(pest.id)
    assert rel["blocking"] is True and rel["following"] is False and rel["followed_by"] is False
    assert [a["id"] for a in me.api.blocks()] == [pest.id]
    with pytest.raises(MastodonAPIError) as err:
        pest.api.account_follow(me.id)
    assert status_code(err.value) == 403
    rel = me.api.account_unblock(pest.id)
    assert rel["blocking"] is False
    rel = me.api.account_mute(pest.id, notifications=False)
    assert rel["muting"] is True and rel["muting_notifications"] is False
    assert [a["id"] for a in me.api.mutes()] == [pest.id]
    assert me.api.account_unmute(pest.id)["muting"] is False


def test_hashtag_timeline(new_user):
    author, reader = new_user("tagger"), new_user("tagreader")
    tag = f"Tag{secrets.token_hex(3)}"
    posted = [author.api.status_post(f"{unique('tagged')} #{tag}") for _ in range(3)]
    author.api.status_post(f"#{tag} unlisted", visibility="unlisted")
    timeline = reader.api.timeline_hashtag(tag.lower())
    assert [s["id"] for s in timeline] == [s["id"] for s in reversed(posted)]
    assert timeline[0]["tags"][0]["name"] == tag.lower()
    page = reader.api.timeline_hashtag(tag, limit=2)
    rest = reader.api.fetch_next(page)
    assert [s["id"] for s in page + rest] == [s["id"] for s in reversed(posted)]
    public = reader.api.timeline_public(local=True)
    assert posted[-1]["id"] in [s["id"] for s in public]
