"""Mastodon.py (PyPI) against a running Starling: editing a post (history, source, the
`update` notification to those who reblogged it) and polls (posting one, voting once, the
`poll` notification when it ends), as an app's Edit button and poll widget use them.
"""

import pytest
from mastodon import MastodonAPIError, MastodonNotFoundError

from conftest import wait_until


def notes(api, kind):
    return [n for n in api.notifications(types=[kind])]


def test_status_update_history_and_source(new_user):
    author, fan = new_user("eauthor"), new_user("efan")
    post = author.api.status_post("first draft of #editing")
    sid = str(post["id"])
    assert post["edited_at"] is None
    fan.api.status_reblog(sid)

    edited = author.api.status_update(sid, "second draft", spoiler_text="careful", sensitive=True)
    assert str(edited["id"]) == sid
    assert "second draft" in edited["content"]
    assert edited["edited_at"] is not None
    assert edited["spoiler_text"] == "careful"
    assert edited["sensitive"] is True
    # Everyone reads the new text at once.
    assert "second draft" in fan.api.status(sid)["content"]

    history = author.api.status_history(sid)
    assert len(history) == 2
    assert "first draft" in history[0]["content"]
    assert "second draft" in history[1]["content"]
    assert history[1]["spoiler_text"] == "careful"
    assert str(history[0]["account"]["id"]) == author.id
    source = author.api.status_source(sid)
    assert source["text"] == "second draft"
    assert source["spoiler_text"] == "careful"

    # The one who reblogged it is told.
    got = wait_until(lambda: notes(fan.api, "update") or None, message="the update notification")
    assert got[0]["type"] == "update"
    assert str(got[0]["status"]["id"]) == sid
    assert str(got[0]["account"]["id"]) == author.id


def test_editing_someone_elses_post_or_a_reblog_is_refused(new_user, http):
    author, other = new_user("erauthor"), new_user("erother")
    sid = str(author.api.status_post("only mine")["id"])
    with pytest.raises(MastodonNotFoundError):
        other.api.status_update(sid, "not yours")
    reblog = other.api.status_reblog(sid)
    res = http.request("PUT", f"/api/v1/statuses/{reblog['id']}", other.token, data={"status": "boost"})
    assert res.status_code == 403 and "error" in res.json()
    with pytest.raises(MastodonAPIError):
        author.api.status_update(sid, "   ")
    assert "only mine" in author.api.status(sid)["content"]


def test_polls_are_posted_and_voted_once(new_user):
    author, voter, other = new_user("pauthor"), new_user("pvoter"), new_user("pother")
    poll = author.api.make_poll(["tea", "coffee", "water"], expires_in=600, multiple=True)
    post = author.api.status_post("what to drink?", poll=poll)
    assert [o["title"] for o in post["poll"]["options"]] == ["tea", "coffee", "water"]
    assert post["poll"]["multiple"] is True
    assert post["poll"]["expired"] is False
    pid = post["poll"]["id"]

    voted = voter.api.poll_vote(pid, [0, 2])
    assert voted["voted"] is True
    assert voted["own_votes"] == [0, 2]
    assert voted["votes_count"] == 2
    assert voted["voters_count"] == 1
    other.api.poll_vote(pid, [2])
    seen = author.api.poll(pid)
    assert [o["votes_count"] for o in seen["options"]] == [1, 0, 2]
    assert seen["voters_count"] == 2
    # The status carries the poll as each viewer sees it.
    assert voter.api.status(post["id"])["poll"]["own_votes"] == [0, 2]

    with pytest.raises(MastodonAPIError):
        voter.api.poll_vote(pid, [1])  # twice
    with pytest.raises(MastodonAPIError):
        author.api.poll_vote(pid, [1])  # one's own poll
    with pytest.raises(MastodonAPIError):
        new_user("pthird").api.poll_vote(pid, [5])  # no such option
    assert author.api.poll(pid)["votes_count"] == 3

    for bad in (["alone"], ["a", "b", "c", "d", "e"], ["a", "x" * 51]):
        with pytest.raises(MastodonAPIError):
            author.api.status_post("bad poll", poll=author.api.make_poll(bad, expires_in=600))


def test_a_poll_that_ends_notifies_its_voters_and_author(new_user):
    author, voter = new_user("peauthor"), new_user("pevoter")
    limits = author.api.instance()["configuration"]["polls"]
    if limits["min_expiration"] > 2:
        pytest.skip("the server's polls last at least %s s" % limits["min_expiration"])
    post = author.api.status_post("quick one", poll=author.api.make_poll(["yes", "no"], expires_in=2))
    voter.api.poll_vote(post["poll"]["id"], [0])
    for api in (voter.api, author.api):
        got = wait_until(lambda: notes(api, "poll") or None, timeout=20, message="the poll notification")
        assert got[0]["type"] == "poll"
        assert str(got[0]["status"]["id"]) == str(post["id"])
        assert got[0]["status"]["poll"]["expired"] is True
    with pytest.raises(MastodonAPIError):
        new_user("pelate").api.poll_vote(post["poll"]["id"], [1])
