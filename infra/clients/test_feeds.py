"""Mastodon.py (PyPI) against a running Starling: lists, followed hashtags, bookmarks,
favourites, pins and account search (issue 13), as an app's Lists, Explore, Bookmarks and
Favourites screens use them.
"""

import pytest
from mastodon import MastodonAPIError, MastodonNotFoundError

from conftest import home_ids, wait_until


def ids(items) -> list:
    return [str(i["id"]) for i in items]


def test_lists_are_fed_by_fan_out_and_private(new_user, http):
    owner, friend, other, stranger = (new_user(p) for p in ("lowner", "lfriend", "lother", "lstranger"))
    owner.api.account_follow(friend.id)
    owner.api.account_follow(other.id)
    created = owner.api.list_create("friends")
    list_id = str(created["id"])
    assert created["title"] == "friends"
    assert created["replies_policy"] == "list"
    owner.api.list_accounts_add(list_id, [friend.id])
    assert ids(owner.api.list_accounts(list_id)) == [friend.id]
    assert [str(l["id"]) for l in owner.api.lists()] == [list_id]
    assert [str(l["id"]) for l in owner.api.account_lists(friend.id)] == [list_id]
    # A member the owner does not follow: 422 with an error, as Mastodon answers.
    res = http.post(f"/api/v1/lists/{list_id}/accounts", owner.token, data={"account_ids[]": stranger.id})
    assert res.status_code == 422 and "error" in res.json()
    # Someone else's list is not found.
    with pytest.raises(MastodonNotFoundError):
        stranger.api.list(list_id)
    with pytest.raises(MastodonNotFoundError):
        stranger.api.timeline_list(list_id)

    listed = str(friend.api.status_post("for the list")["id"])
    unlisted = str(other.api.status_post("not for the list")["id"])
    got = wait_until(lambda: ids(owner.api.timeline_list(list_id)) or None, message="the list timeline")
    assert got == [listed]
    wait_until(lambda: unlisted in home_ids(owner.api), message="home")

    owner.api.list_update(list_id, "pals")
    assert owner.api.list(list_id)["title"] == "pals"
    owner.api.list_accounts_delete(list_id, [friend.id])
    assert owner.api.list_accounts(list_id) == []
    assert owner.api.timeline_list(list_id) == []
    owner.api.list_delete(list_id)
    assert owner.api.lists() == []


def test_followed_hashtags_bring_strangers_posts_home(new_user, http):
    fan, stranger = new_user("tfan"), new_user("tstranger")
    tag = fan.api.tag_follow("starlingtest")
    assert tag["name"] == "starlingtest" and tag["following"] is True
    assert [t["name"] for t in fan.api.followed_tags()] == ["starlingtest"]
    assert fan.api.tag("starlingtest")["following"] is True
    post = str(stranger.api.status_post("hello #StarlingTest")["id"])
    wait_until(lambda: post in home_ids(fan.api), message="the tagged post at home")
    assert fan.api.tag_unfollow("starlingtest")["following"] is False
    assert fan.api.followed_tags() == []
    res = http.post(f"/api/v1/tags/{'t' * 10_000}/follow", fan.token)
    assert res.status_code == 422 and "error" in res.json()


def test_bookmarks_and_favourites_page_newest_kept_first(new_user):
    me, author = new_user("bkeeper"), new_user("bauthor")
    posts = [str(author.api.status_post(f"keep {i}")["id"]) for i in range(3)]
    for p in (posts[1], posts[0], posts[2]):
        assert me.api.status_bookmark(p)["bookmarked"] is True
        assert me.api.status_favourite(p)["favourited"] is True
    page = me.api.bookmarks(limit=2)
    assert ids(page) == [posts[2], posts[0]]
    rest = me.api.fetch_next(page)
    assert ids(rest) == [posts[1]]
    assert ids(me.api.favourites()) == [posts[2], posts[0], posts[1]]
    assert me.api.status_unbookmark(posts[0])["bookmarked"] is False
    assert ids(me.api.bookmarks()) == [posts[2], posts[1]]
    me.api.status_unfavourite(posts[2])
    assert ids(me.api.favourites()) == [posts[0], posts[1]]


def test_pins_show_on_the_profile(new_user):
    me, other = new_user("pinner"), new_user("pviewer")
    mine = str(me.api.status_post("pinned post")["id"])
    assert me.api.status_pin(mine)["pinned"] is True
    assert ids(other.api.account_statuses(me.id, pinned=True)) == [mine]
    theirs = str(other.api.status_post("not yours")["id"])
    with pytest.raises(MastodonAPIError):
        me.api.status_pin(theirs)
    assert me.api.status_unpin(mine)["pinned"] is False
    assert other.api.account_statuses(me.id, pinned=True) == []


def test_account_search_puts_follows_first(new_user):
    me = new_user("searcher")
    a, b = new_user("zebrafinch"), new_user("zebracorn")
    me.api.account_follow(b.id)
    found = wait_until(lambda: len(me.api.account_search("zebra", limit=10)) >= 2 and me.api.account_search("zebra"),
                       message="the search index")
    assert ids(found)[:2] == [b.id, a.id]
    assert ids(me.api.account_search("zebra", following=True)) == [b.id]
