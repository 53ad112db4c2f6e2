"""Fixtures for the Python client stage: a running Starling, an app, users, helpers.

run.sh starts the server and sets STARLING_BASE_URL; the tests only talk HTTP to it, through
the real clients (Mastodon.py, toot) and, for checks of the wire itself, through requests.
"""

import itertools
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pytest
import requests
from mastodon import Mastodon

CLIENT_NAME = "starling-client-tests"
PASSWORD = "correct horse battery staple"
REQUEST_TIMEOUT = 30


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("STARLING_BASE_URL")
    if not url:
        pytest.fail(
            "STARLING_BASE_URL is not set: run `bash infra/clients/run.sh`, which starts a "
            "server and sets it",
            pytrace=False,
        )
    return url.rstrip("/")


@pytest.fixture(scope="session")
def app(base_url):
    """(client_id, client_secret) of an app registered through Mastodon.create_app."""
    client_id, client_secret = Mastodon.create_app(
        CLIENT_NAME,
        api_base_url=base_url,
        request_timeout=REQUEST_TIMEOUT,
    )
    assert isinstance(client_id, str) and client_id
    assert isinstance(client_secret, str) and client_secret
    return client_id, client_secret


def make_client(base_url: str, app, access_token: Optional[str] = None) -> Mastodon:
    client_id, client_secret = app
    return Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        access_token=access_token,
        api_base_url=base_url,
        request_timeout=REQUEST_TIMEOUT,
        # A test must fail on a 429, not sleep until the window resets.
        ratelimit_method="throw",
    )


@dataclass
class User:
    username: str
    password: str
    email: str
    token: str
    id: str
    api: Mastodon


_counter = itertools.count()
_run = secrets.token_hex(3)


@pytest.fixture(scope="session")
def new_user(base_url, app) -> Callable[..., User]:
    """Registers a fresh account (create_account, agreement=True) and logs it in.

    The registered token is used for the client; logging in with the password grant is
    tested on its own.
    """

    def make(prefix: str = "user") -> User:
        username = f"{prefix}_{_run}_{next(_counter)}"
        email = f"{username}@example.com"
        registrar = make_client(base_url, app)
        token = registrar.create_account(username, PASSWORD, email, agreement=True)
        assert isinstance(token, str) and token, f"create_account returned {token!r}"
        api = make_client(base_url, app, access_token=token)
        me = api.account_verify_credentials()
        assert me["username"] == username
        return User(username, PASSWORD, email, token, str(me["id"]), api)

    return make


@pytest.fixture(scope="session")
def alice(new_user) -> User:
    return new_user("alice")


@pytest.fixture(scope="session")
def bob(new_user) -> User:
    return new_user("bob")


@pytest.fixture(scope="session")
def carol(new_user) -> User:
    return new_user("carol")


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Polls predicate until it returns something truthy, and returns that.

    Fan-out into home timelines is asynchronous, so tests poll with a deadline instead of
    sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}; last value: {last!r}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def wait():
    return wait_until


class Http:
    """Plain requests against the server, for checks of the wire itself."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def request(self, method: str, path: str, token: Optional[str] = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, token: Optional[str] = None, **kwargs) -> requests.Response:
        return self.request("GET", path, token, **kwargs)

    def post(self, path: str, token: Optional[str] = None, **kwargs) -> requests.Response:
        return self.request("POST", path, token, **kwargs)


@pytest.fixture(scope="session")
def http(base_url) -> Http:
    return Http(base_url)


def home_ids(api: Mastodon, limit: int = 40) -> list:
    return [str(s["id"]) for s in api.timeline_home(limit=limit)]


# Fields every Status and Account must carry (MASTODON-API.md, "Entities").
STATUS_FIELDS = {
    "id", "uri", "url", "created_at", "account", "content", "visibility", "sensitive",
    "spoiler_text", "media_attachments", "mentions", "tags", "emojis", "reblogs_count",
    "favourites_count", "replies_count", "in_reply_to_id", "in_reply_to_account_id", "reblog",
    "poll", "card", "language", "edited_at", "favourited", "reblogged", "muted", "bookmarked",
    "pinned",
}
ACCOUNT_FIELDS = {
    "id", "username", "acct", "display_name", "note", "url", "uri", "avatar", "avatar_static",
    "header", "header_static", "locked", "bot", "group", "discoverable", "created_at",
    "last_status_at", "statuses_count", "followers_count", "following_count", "fields", "emojis",
}
RELATIONSHIP_FIELDS = {
    "id", "following", "showing_reblogs", "notifying", "followed_by", "blocking", "blocked_by",
    "muting", "muting_notifications", "requested", "domain_blocking", "endorsed", "note",
    "languages",
}
