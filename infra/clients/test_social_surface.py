"""Mastodon.py against the social surface of issue 13: profile edits (update_credentials),
locked accounts and follow requests.
"""

import secrets
import time

import pytest
from mastodon import MastodonAPIError, MastodonNotFoundError

from conftest import home_ids, wait_until


def status_code(err: MastodonAPIError) -> int:
    return err.args[1]


def unique(text: str) -> str:
    return f"{text} {secrets.token_hex(4)}"


def test_update_credentials_edits_the_profile(new_user, http):
    me = new_user("profile")
    name = f"Edited {secrets.token_hex(3)}"
    edited = me.api.account_update_credentials(
        display_name=name,
        note="I edit my profile",
        bot=True,
        discoverable=False,
        fields=[("site", "https://example.org"), ("pronouns", "they/them")],
    )
    assert edited["display_name"] == name
    assert edited["bot"] is True
    assert edited["discoverable"] is False
    assert [f["name"] for f in edited["fields"]] == ["site", "pronouns"]
    assert "https://example.org" in edited["fields"][0]["value"]
    assert edited["source"]["note"] == "I edit my profile"
    assert [f["value"] for f in edited["source"]["fields"]] == ["https://example.org", "they/them"]
    again = me.api.account_verify_credentials()
    assert again["display_name"] == name
    assert me.api.account(me.id)["fields"][1]["value"] == "they/them"
    # The post defaults, as Mastodon's web settings send them.
    resp = http.request(
        "PATCH",
        "/api/v1/accounts/update_credentials",
        me.token,
        data={"source[privacy]": "private", "source[sensitive]": "true", "source[language]": "fr"},
    )
    assert resp.status_code == 200, resp.text
    source = me.api.account_verify_credentials()["source"]
    assert (source["privacy"], source["sensitive"], source["language"]) == ("private", True, "fr")


def test_update_credentials_refuses_bad_input(new_user):
    me = new_user("badprofile")
    for kwargs in (
        {"display_name": "x" * 31},
        {"note": "y" * 501},
        {"fields": [("n", "z" * 256)]},
    ):
        with pytest.raises(MastodonAPIError) as err:
            me.api.account_update_credentials(**kwargs)
        assert status_code(err.value) == 422, kwargs
        assert err.value.args[3]
    assert me.api.account_verify_credentials()["display_name"] == ""


def test_locked_account_takes_follow_requests(new_user):
    owner, asker, other = new_user("locked"), new_user("asker"), new_user("other")
    assert owner.api.account_update_credentials(locked=True)["locked"] is True
    secret = owner.api.status_post(unique("followers only"), visibility="private")

    rel = asker.api.account_follow(owner.id)
    assert rel["requested"] is True and rel["following"] is False
    requests = owner.api.follow_requests()
    assert [a["id"] for a in requests] == [asker.id]
    notes = wait_until(
        lambda: owner.api.notifications(types=["follow_request"]), message="a follow_request notification"
    )
    assert notes[0]["type"] == "follow_request"
    assert notes[0]["account"]["id"] == asker.id
    with pytest.raises(MastodonNotFoundError):
        asker.api.status(secret["id"])

    # Only the locked account decides, and only what is pending.
    with pytest.raises(MastodonNotFoundError):
        other.api.follow_request_authorize(asker.id)
    rel = owner.api.follow_request_authorize(asker.id)
    assert rel["followed_by"] is True
    with pytest.raises(MastodonNotFoundError):
        owner.api.follow_request_reject(asker.id)
    assert asker.api.status(secret["id"])["id"] == secret["id"]
    wait_until(lambda: secret["id"] in home_ids(asker.api), message="the private post in home")
    assert owner.api.follow_requests() == []

    # A rejected request leaves no follow.
    other.api.account_follow(owner.id)
    owner.api.follow_request_reject(other.id)
    rel = other.api.account_relationships(owner.id)[0]
    assert rel["following"] is False and rel["requested"] is False


def test_muting_a_conversation(new_user):
    me, other = new_user("muter"), new_user("talker")
    root = me.api.status_post(unique("a thread"))
    reply = other.api.status_post(f"@{me.username} first reply", in_reply_to_id=root["id"])
    wait_until(lambda: me.api.notifications(types=["mention"]), message="the first mention")
    muted = me.api.status_mute(reply["id"])
    assert muted["muted"] is True
    assert me.api.status(root["id"])["muted"] is True
    deeper = other.api.status_post(f"@{me.username} muted reply", in_reply_to_id=reply["id"])
    control = new_user("control")
    control.api.status_post(f"@{me.username} not in the thread")
    wait_until(
        lambda: [n for n in me.api.notifications() if n["account"]["id"] == control.id],
        message="the control mention",
    )
    time.sleep(0.3)
    statuses = [n["status"]["id"] for n in me.api.notifications(types=["mention"])]
    assert deeper["id"] not in statuses
    assert me.api.status_unmute(root["id"])["muted"] is False
    with pytest.raises(MastodonNotFoundError):
        me.api.status_mute("12345")
