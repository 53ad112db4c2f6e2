"""Web Push with Mastodon.py: subscribe with keys Mastodon.py generates, receive a push on a
local push service (an HTTP server in this test), decrypt it with Mastodon.py.

run.sh starts the server with push.allow_private_addresses, so an http://127.0.0.1 endpoint
is accepted (production refuses it).
"""

import http.server
import queue
import threading

import pytest

from conftest import PASSWORD, make_client


class _PushService(http.server.BaseHTTPRequestHandler):
    received: "queue.Queue" = queue.Queue()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.received.put((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def push_service():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PushService)
    _PushService.received = queue.Queue()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _PushService.received
    server.shutdown()


def _push_client(base_url, app, user):
    """A token with the push scope, through the password grant (Mastodon.py's default scopes
    include push)."""
    api = make_client(base_url, app)
    api.log_in(user.username, PASSWORD, scopes=["read", "write", "follow", "push"], allow_http=True)
    return api


def test_a_mention_is_pushed_and_mastodon_py_decrypts_it(base_url, app, new_user, push_service):
    endpoint, received = push_service
    alice, bob = new_user("pushee"), new_user("pusher")
    api = _push_client(base_url, app, alice)
    private, public = api.push_subscription_generate_keys()
    sub = api.push_subscription_set(f"{endpoint}/alice", public, mention_events=True, policy="all")
    assert sub["endpoint"] == f"{endpoint}/alice"
    assert sub["alerts"]["mention"] is True
    assert sub["alerts"]["follow"] is False
    assert sub["server_key"] == api.instance_v2()["configuration"]["vapid"]["public_key"]
    assert api.push_subscription()["endpoint"] == f"{endpoint}/alice"

    bob.api.status_post(f"@{alice.username} see you at the lake")
    path, headers, body = received.get(timeout=5)
    assert path == "/alice"
    assert headers["content-encoding"] == "aesgcm"
    push = api.push_subscription_decrypt_push(body, private, headers["encryption"], headers["crypto-key"])
    assert push["notification_type"] == "mention"
    assert push["title"] == f"You were mentioned by {bob.username}"
    assert "see you at the lake" in push["body"]
    assert push["access_token"] == api.access_token
    notification = api.notifications()[0]
    assert str(push["notification_id"]) == str(notification["id"])

    # Alerts are updated in place; the follow now comes through, a favourite does not.
    sub = api.push_subscription_update(follow_events=True)
    assert sub["alerts"]["follow"] is True and sub["alerts"]["mention"] is True
    bob.api.account_follow(alice.id)
    _, headers, body = received.get(timeout=5)
    push = api.push_subscription_decrypt_push(body, private, headers["encryption"], headers["crypto-key"])
    assert push["notification_type"] == "follow"

    api.push_subscription_delete()
    with pytest.raises(Exception):
        api.push_subscription()


def test_a_token_without_push_scope_cannot_subscribe(base_url, app, new_user):
    user = new_user("nopush")
    api = make_client(base_url, app)
    api.log_in(user.username, PASSWORD, scopes=["read", "write"], allow_http=True)
    private, public = api.push_subscription_generate_keys()
    with pytest.raises(Exception) as failed:
        api.push_subscription_set("https://push.example.com/x", public, mention_events=True)
    assert "403" in str(failed.value) or "scope" in str(failed.value)
