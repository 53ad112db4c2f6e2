"""toot (PyPI), the command-line client, against a running Starling.

toot keeps its apps and logins in $XDG_CONFIG_HOME/toot/config.json (toot/__init__.py,
get_config_dir; toot/config.py): {"apps": {INSTANCE: App}, "users": {"USER@INSTANCE": User},
"active_user": "USER@INSTANCE"}, where App is {instance, base_url, client_id, client_secret}
and User is {instance, username, access_token}. Each test writes that file for a registered
user and runs the venv's `toot` in a subprocess. toot sends JSON bodies and an
Idempotency-Key with every post (toot/api.py, post_status).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import home_ids, wait_until

TOOT_TIMEOUT = 60


def toot_executable() -> str:
    venv = os.environ.get("STARLING_CLIENTS_VENV")
    candidates = [Path(venv) / "bin" / "toot"] if venv else []
    candidates.append(Path(sys.executable).parent / "toot")
    for c in candidates:
        if c.exists():
            return str(c)
    pytest.fail(f"no toot executable in {[str(c) for c in candidates]}", pytrace=False)


class Toot:
    def __init__(self, home: Path, base_url: str):
        self.home = home
        self.base_url = base_url
        self.instance = urlparse(base_url).netloc
        self.exe = toot_executable()

    def login(self, app, user) -> None:
        client_id, client_secret = app
        user_key = f"{user.username}@{self.instance}"
        config = {
            "apps": {
                self.instance: {
                    "instance": self.instance,
                    "base_url": self.base_url,
                    "client_id": client_id,
                    "client_secret": client_secret,
                }
            },
            "users": {
                user_key: {
                    "instance": self.instance,
                    "username": user.username,
                    "access_token": user.token,
                }
            },
            "active_user": user_key,
        }
        path = self.home / "config" / "toot" / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=1))
        path.chmod(0o600)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("TOOT_", "XDG_"))
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_CACHE_HOME=str(self.home / "cache"),
            XDG_STATE_HOME=str(self.home / "state"),
            XDG_DATA_HOME=str(self.home / "data"),
            COLUMNS="200",
            NO_COLOR="1",
        )
        proc = subprocess.run(
            [self.exe, "--no-color", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TOOT_TIMEOUT,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"toot {' '.join(args)} exited {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc


@pytest.fixture
def toot(tmp_path, base_url, app, new_user):
    """A toot logged in (through its config file) as a fresh user: (Toot, User)."""
    user = new_user("tooter")
    t = Toot(tmp_path, base_url)
    t.login(app, user)
    return t, user


def test_toot_login_cli(tmp_path, base_url, new_user):
    # `toot login_cli` registers its own app (POST /api/v1/apps, JSON), names the instance
    # after GET /api/v1/instance's `uri`, and logs in with the password grant, sending the
    # --email value as `username`.
    user = new_user("tootlogin")
    t = Toot(tmp_path, base_url)
    t.run("login_cli", "--instance", base_url, "--email", user.username, "--password", user.password)
    config = json.loads((tmp_path / "config" / "toot" / "config.json").read_text())
    assert config["active_user"] == f"{user.username}@{t.instance}"
    assert f"ID: {user.id}" in t.run("whoami").stdout


def test_toot_whoami(toot):
    t, user = toot
    out = t.run("whoami").stdout
    assert f"@{user.username}" in out
    assert f"ID: {user.id}" in out


def test_toot_whoami_json(toot):
    t, user = toot
    data = json.loads(t.run("whoami", "--json").stdout)
    assert data["id"] == user.id
    assert data["username"] == user.username


def test_toot_instance(toot, base_url):
    t, _ = toot
    out = t.run("instance").stdout
    assert "running Mastodon" in out


def test_toot_post(toot):
    t, user = toot
    text = f"hello from toot {secrets.token_hex(4)}"
    out = t.run("post", text).stdout
    assert "Toot posted:" in out, out
    posted = [s for s in user.api.account_statuses(user.id) if s["content"] == f"<p>{text}</p>"]
    assert len(posted) == 1, "exactly one status with the posted text"
    assert posted[0]["url"] in out
    assert posted[0]["visibility"] == "public"


def test_toot_post_json_with_visibility(toot):
    t, user = toot
    text = f"unlisted from toot {secrets.token_hex(4)}"
    status = json.loads(t.run("post", "--visibility", "unlisted", "--json", text).stdout)
    assert status["visibility"] == "unlisted"
    assert status["account"]["id"] == user.id
    assert user.api.status(status["id"])["content"] == f"<p>{text}</p>"


def test_toot_status_and_delete(toot):
    t, user = toot
    text = f"show then delete {secrets.token_hex(4)}"
    st = user.api.status_post(text)
    assert text in t.run("status", st["id"]).stdout
    t.run("delete", st["id"])
    proc = t.run("status", st["id"], check=False)
    assert proc.returncode != 0


def test_toot_timeline_shows_a_followees_post(toot, new_user):
    t, user = toot
    author = new_user("tootee")
    user.api.account_follow(author.id)
    text = f"for toot readers {secrets.token_hex(4)}"
    st = author.api.status_post(text)
    wait_until(lambda: st["id"] in home_ids(user.api), message="the followee's post in home")

    out = t.run("timeline", "--once").stdout
    assert text in out, out
    assert author.username in out


def test_toot_timelines_home(toot, new_user):
    t, user = toot
    author = new_user("tootee")
    user.api.account_follow(author.id)
    text = f"for toot timelines {secrets.token_hex(4)}"
    st = author.api.status_post(text)
    wait_until(lambda: st["id"] in home_ids(user.api), message="the followee's post in home")

    out = t.run("timelines", "home", "--no-pager", "--no-clear").stdout
    assert text in out, out
    data = json.loads(t.run("timelines", "home", "--json").stdout)
    assert st["id"] in [s["id"] for s in data]


def test_toot_timelines_account(toot, new_user):
    # lookup by acct, then /accounts/:id/statuses
    t, _ = toot
    author = new_user("tootee")
    text = f"on my profile {secrets.token_hex(4)}"
    author.api.status_post(text)
    out = t.run("timelines", "account", author.username, "--no-pager", "--no-clear").stdout
    assert text in out, out


def test_toot_search(toot):
    # `toot search` calls GET /api/v2/search and prints accounts, hashtags and status urls.
    t, user = toot
    word = f"zt{secrets.token_hex(4)}"
    tag = f"tt{secrets.token_hex(3)}"
    st = user.api.status_post(f"findable {word} #{tag}")
    wait_until(
        lambda: st["id"] in t.run("search", word, "--type", "statuses").stdout,
        timeout=3.0,
        message="the post in toot search",
    )
    out = t.run("search", word).stdout
    assert "Statuses:" in out and st["id"] in out, out
    data = json.loads(t.run("search", f"#{tag}", "--json").stdout)
    assert [s["id"] for s in data["statuses"]] == [st["id"]]
    assert [h["name"] for h in data["hashtags"]] == [tag]
    out = t.run("search", user.username, "--type", "accounts").stdout
    assert "Accounts:" in out and user.username in out, out


def test_toot_follow(toot, new_user):
    # `toot follow` finds the account through GET /api/v2/search?q=USER&type=accounts
    # &resolve=true (toot/api.py, find_account), then POST /api/v1/accounts/:id/follow.
    t, user = toot
    other = new_user("tootee")
    t.run("follow", other.username)
    assert user.api.account_relationships(other.id)[0]["following"] is True
