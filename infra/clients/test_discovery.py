"""Mastodon.py (PyPI) against a running Starling: the Explore tab (issue 13), trending
hashtags, statuses and links, and who to follow, as an app's Explore screen reads them.
"""

from mastodon import MastodonNotFoundError

from conftest import wait_until


def test_trending_tags_and_links_come_with_history(new_user, http):
    users = [new_user("trender") for _ in range(3)]
    tag = f"explore{users[0].id[-6:]}"
    link = f"https://news.example/{tag}"
    for u in users:
        u.api.status_post(f"reading about #{tag} at {link}")

    def found():
        return [t for t in users[0].api.trending_tags(limit=20) if t["name"] == tag]

    trend = wait_until(found, timeout=15, message="the hashtag among the trends")[0]
    assert trend["url"].endswith(f"/tags/{tag}")
    assert len(trend["history"]) == 7
    assert int(trend["history"][0]["uses"]) == 3
    assert int(trend["history"][0]["accounts"]) == 3
    # The hashtag's own page carries the same history.
    assert int(users[0].api.tag(tag)["history"][0]["accounts"]) == 3
    links = wait_until(
        lambda: [c for c in http.get("/api/v1/trends/links?limit=20").json() if c["url"] == link],
        timeout=15, message="the link among the trends")
    assert links[0]["history"][0]["accounts"] == "3"
    # A limit of a million is clamped, as Mastodon clamps it.
    res = http.get("/api/v1/trends/tags?limit=1000000")
    assert res.status_code == 200 and len(res.json()) <= 20


def test_trending_statuses_are_public_posts_many_accounts_liked(new_user):
    author = new_user("tauthor")
    fans = [new_user("tfan") for _ in range(3)]
    post = author.api.status_post("worth a look")
    for fan in fans[:2]:
        fan.api.status_favourite(post["id"])
    fans[2].api.status_reblog(post["id"])

    def trending_ids():
        return [str(s["id"]) for s in fans[0].api.trending_statuses()]

    wait_until(lambda: str(post["id"]) in trending_ids(), timeout=15, message="the trending status")
    author.api.status_delete(post["id"])
    wait_until(lambda: str(post["id"]) not in trending_ids(), timeout=15,
               message="the deleted status out of the trends")


def test_suggestions_are_friends_of_friends_and_can_be_dismissed(new_user, http):
    me, friend, suggested, other = (new_user(p) for p in ("sme", "sfriend", "ssuggested", "sother"))
    friend.api.account_follow(suggested.id)
    friend.api.account_follow(other.id)
    me.api.account_follow(friend.id)

    def suggested_ids():
        return [str(s.get("account", s)["id"]) for s in me.api.suggestions()]

    got = wait_until(lambda: suggested.id in suggested_ids() and suggested_ids(), timeout=15,
                     message="the friend's follow among the suggestions")
    assert friend.id not in got and me.id not in got
    v2 = http.get("/api/v2/suggestions", me.token).json()
    entry = next(s for s in v2 if s["account"]["id"] == suggested.id)
    assert entry["sources"] == ["friends_of_friends"]
    me.api.suggestion_delete(suggested.id)
    assert suggested.id not in suggested_ids()
    # Dismissed for good, and a missing account is 404.
    try:
        me.api.suggestion_delete("999999999999")
        raise AssertionError("dismissing a missing account succeeded")
    except MastodonNotFoundError:
        pass
    res = http.request("DELETE", "/api/v1/suggestions/999999999999", me.token)
    assert res.status_code == 404 and "error" in res.json()
