"""Live streams through Mastodon.py: `stream_user` (server-sent events) and its WebSocket
handle (`stream_open_websocket` + `stream_user(websocket_handle=...)`) against a running
Starling. Each test follows an author, opens a stream, posts, and waits for the events."""

import time

from mastodon import StreamListener

from conftest import wait_until


class Collector(StreamListener):
    """Keeps every event it is handed, as Mastodon.py decoded it."""

    def __init__(self):
        super().__init__()
        self.updates = []
        self.deletes = []
        self.notifications = []
        self.errors = []

    def on_update(self, status):
        self.updates.append(status)

    def on_delete(self, status_id):
        self.deletes.append(str(status_id))

    def on_notification(self, notification):
        self.notifications.append(notification)

    def on_abort(self, err):
        self.errors.append(err)

    def update_ids(self):
        return [str(s["id"]) for s in self.updates]


def test_stream_user_over_sse_gets_a_followees_post_and_its_delete(new_user):
    author = new_user("sse_author")
    fan = new_user("sse_fan")
    fan.api.account_follow(author.id)
    assert fan.api.stream_healthy()

    listener = Collector()
    handle = fan.api.stream_user(listener, run_async=True, timeout=30)
    try:
        wait_until(handle.is_receiving, message="the SSE stream to open")
        status = author.api.status_post("live over server-sent events")
        sid = str(status["id"])
        wait_until(lambda: sid in listener.update_ids(), message="the update over SSE")
        update = next(u for u in listener.updates if str(u["id"]) == sid)
        assert update["account"]["username"] == author.username
        assert "live over server-sent events" in update["content"]

        author.api.status_delete(sid)
        wait_until(lambda: sid in listener.deletes, message="the delete over SSE")
        assert not listener.errors, listener.errors
    finally:
        handle.close()


def test_websocket_stream_gets_a_followees_post(new_user):
    author = new_user("ws_author")
    fan = new_user("ws_fan")
    stranger = new_user("ws_stranger")
    fan.api.account_follow(author.id)

    fan_events = Collector()
    stranger_events = Collector()
    fan_ws = fan.api.stream_open_websocket(reconnect_async=False)
    stranger_ws = stranger.api.stream_open_websocket(reconnect_async=False)
    try:
        fan.api.stream_user(fan_events, websocket_handle=fan_ws)
        stranger.api.stream_user(stranger_events, websocket_handle=stranger_ws)
        # Subscriptions travel as messages on the socket; give the server a moment.
        time.sleep(0.5)
        status = author.api.status_post("live over a WebSocket")
        sid = str(status["id"])
        wait_until(lambda: sid in fan_events.update_ids(), message="the update over the WebSocket")
        update = next(u for u in fan_events.updates if str(u["id"]) == sid)
        assert update["account"]["id"] == author.id or str(update["account"]["id"]) == author.id
        # Someone who does not follow the author is not told.
        time.sleep(0.5)
        assert sid not in stranger_events.update_ids()
        assert not fan_events.errors, fan_events.errors
    finally:
        fan_ws.close()
        stranger_ws.close()
