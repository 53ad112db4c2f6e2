"""Mastodon.py (PyPI) against a running Starling: direct conversations and the `direct` and
`list` streams (issue 13), as an app's direct-messages tab and a list column use them."""

from mastodon import MastodonNotFoundError, StreamListener

from conftest import wait_until


class Collector(StreamListener):
    def __init__(self):
        super().__init__()
        self.updates = []
        self.conversations = []
        self.errors = []

    def on_update(self, status):
        self.updates.append(status)

    def on_conversation(self, conversation):
        self.conversations.append(conversation)

    def on_abort(self, err):
        self.errors.append(err)


def test_conversations_group_direct_posts_and_mark_read(new_user, http):
    alice, bob, eve = new_user("cpalice"), new_user("cpbob"), new_user("cpeve")
    first = alice.api.status_post(f"@{bob.username} psst", visibility="direct")
    convs = wait_until(lambda: bob.api.conversations() or None, message="bob's conversation")
    assert len(convs) == 1
    conv = convs[0]
    assert conv["unread"] is True
    assert str(conv["last_status"]["id"]) == str(first["id"])
    assert [a["username"] for a in conv["accounts"]] == [alice.username]
    answer = bob.api.status_post(f"@{alice.username} hi", visibility="direct", in_reply_to_id=first["id"])
    wait_until(
        lambda: str(alice.api.conversations()[0]["last_status"]["id"]) == str(answer["id"]) or None,
        message="the answer in alice's conversation",
    )
    assert str(alice.api.conversations()[0]["id"]) == str(conv["id"])
    read = bob.api.conversations_read(conv["id"])
    assert read["unread"] is False
    assert bob.api.conversations()[0]["unread"] is False
    # Someone else's conversation is not found.
    try:
        eve.api.conversations_read(conv["id"])
        raise AssertionError("eve read bob's conversation")
    except MastodonNotFoundError:
        pass
    # Removed for bob only; a new post brings it back.
    assert http.request("DELETE", f"/api/v1/conversations/{conv['id']}", bob.token).status_code == 200
    assert bob.api.conversations() == []
    assert len(alice.api.conversations()) == 1
    again = alice.api.status_post(f"@{bob.username} still there?", visibility="direct")
    back = wait_until(lambda: bob.api.conversations() or None, message="the conversation back")
    assert str(back[0]["last_status"]["id"]) == str(again["id"])
    assert back[0]["unread"] is True


def test_stream_direct_gets_a_conversation_event(new_user):
    alice, bob = new_user("sdalice"), new_user("sdbob")
    listener = Collector()
    handle = bob.api.stream_direct(listener, run_async=True, timeout=30)
    try:
        wait_until(handle.is_receiving, message="the direct stream to open")
        post = alice.api.status_post(f"@{bob.username} live and direct", visibility="direct")
        wait_until(lambda: listener.conversations or None, message="the conversation event")
        conv = listener.conversations[0]
        assert str(conv["last_status"]["id"]) == str(post["id"])
        assert conv["unread"] is True
        assert not listener.updates, "a direct stream carries conversations only"
        assert not listener.errors, listener.errors
    finally:
        handle.close()


def test_stream_list_gets_the_lists_posts_only(new_user, http):
    owner, friend, other, stranger = (new_user(p) for p in ("slowner", "slfriend", "slother", "slstranger"))
    owner.api.account_follow(friend.id)
    owner.api.account_follow(other.id)
    list_id = str(owner.api.list_create("live")["id"])
    owner.api.list_accounts_add(list_id, [friend.id])
    listener = Collector()
    handle = owner.api.stream_list(list_id, listener, run_async=True, timeout=30)
    try:
        wait_until(handle.is_receiving, message="the list stream to open")
        outside = str(other.api.status_post("not on the list")["id"])
        inside = str(friend.api.status_post("on the list")["id"])
        wait_until(lambda: listener.updates or None, message="the list's update")
        got = [str(s["id"]) for s in listener.updates]
        assert inside in got and outside not in got, got
    finally:
        handle.close()
    # Someone else's list, or garbage: an error, no stream.
    res = http.get(f"/api/v1/streaming/list?list={list_id}", stranger.token)
    assert res.status_code == 401 and "error" in res.json()
    res = http.get("/api/v1/streaming/list?list=garbage", stranger.token)
    assert res.status_code == 422 and "error" in res.json()
