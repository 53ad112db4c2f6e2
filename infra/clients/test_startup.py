"""Start-up endpoints through Mastodon.py 2.x: preferences, custom emojis, announcements,
read markers, grouped notifications (v2) and unread counts, and filters v2."""

import pytest
from mastodon.errors import MastodonAPIError, MastodonNotFoundError

from conftest import home_ids


def test_preferences_emojis_and_announcements(alice):
    prefs = alice.api.preferences()
    assert prefs["posting:default:visibility"] == "public"
    assert prefs["posting:default:sensitive"] is False
    assert prefs["reading:expand:spoilers"] is False
    assert list(alice.api.custom_emojis()) == []
    assert isinstance(list(alice.api.announcements()), list)


def test_markers_round_trip_and_count_versions(new_user, wait):
    u = new_user("marker")
    assert dict(u.api.markers_get(["home", "notifications"])) == {}
    post = u.api.status_post("where I stopped reading")
    first = u.api.markers_set(["home"], [post["id"]])
    assert str(first["home"]["last_read_id"]) == str(post["id"])
    assert first["home"]["version"] == 1
    second = u.api.markers_set(["home", "notifications"], [post["id"], post["id"]])
    assert second["home"]["version"] == 2
    assert second["notifications"]["version"] == 1
    got = u.api.markers_get(["home", "notifications"])
    assert set(got.keys()) == {"home", "notifications"}
    assert got["home"]["version"] == 2
    # Mastodon.py parses updated_at into a datetime.
    assert got["home"]["updated_at"].year >= 2024


def test_grouped_notifications_group_favourites_and_keep_mentions_apart(new_user, wait):
    author = new_user("author")
    fans = [new_user("fan") for _ in range(3)]
    post = author.api.status_post("please favourite me")
    for f in fans:
        f.api.status_favourite(post["id"])
    fans[0].api.status_post(f"@{author.username} hello")
    wait(lambda: len(author.api.notifications(limit=40)) >= 4, message="notifications")

    grouped = author.api.grouped_notifications(expand_accounts="full")
    groups = grouped["notification_groups"]
    favs = [g for g in groups if g["type"] == "favourite"]
    mentions = [g for g in groups if g["type"] == "mention"]
    assert len(favs) == 1 and len(mentions) == 1, groups
    assert favs[0]["notifications_count"] == 3
    assert sorted(str(i) for i in favs[0]["sample_account_ids"]) == sorted(f.id for f in fans)
    assert str(favs[0]["status_id"]) == str(post["id"])
    assert {str(a["id"]) for a in grouped["accounts"]} >= {f.id for f in fans}
    assert str(post["id"]) in {str(s["id"]) for s in grouped["statuses"]}

    one = author.api.grouped_notification(favs[0]["group_key"])
    assert one["notification_groups"][0]["notifications_count"] == 3
    accounts = author.api.grouped_notification_accounts(favs[0]["group_key"])
    assert len(accounts) == 3

    assert author.api.notifications_unread_count()["count"] == 4
    assert author.api.unread_grouped_notifications_count() == 2
    newest = author.api.notifications(limit=1)[0]
    author.api.markers_set(["notifications"], [newest["id"]])
    assert author.api.notifications_unread_count()["count"] == 0
    assert author.api.unread_grouped_notifications_count() == 0

    author.api.dismiss_grouped_notification(favs[0]["group_key"])
    after = author.api.grouped_notifications()
    assert [g["type"] for g in after["notification_groups"]] == ["mention"]


def test_filters_v2_hide_and_warn_in_home(new_user, wait):
    reader = new_user("reader")
    writer = new_user("writer")
    reader.api.account_follow(writer.id)
    hide = reader.api.create_filter_v2(
        "no spoilers", ["home", "public"], "hide",
        keywords_attributes=[{"keyword": "spoiler", "whole_word": True}],
    )
    warn = reader.api.create_filter_v2(
        "finales", ["home"], "warn",
        keywords_attributes=[{"keyword": "finale", "whole_word": True}],
    )
    assert [k["keyword"] for k in hide["keywords"]] == ["spoiler"]
    assert {f["id"] for f in reader.api.filters_v2()} == {hide["id"], warn["id"]}
    assert reader.api.filter_v2(warn["id"])["filter_action"] == "warn"

    hidden = writer.api.status_post("a SPOILER follows")
    warned = writer.api.status_post("what a finale")
    plain = writer.api.status_post("finales everywhere")
    wait(lambda: str(plain["id"]) in home_ids(reader.api), message="the plain post in home")
    home = {str(s["id"]): s for s in reader.api.timeline_home(limit=40)}
    assert str(hidden["id"]) not in home
    assert home[str(warned["id"])]["filtered"][0]["filter"]["title"] == "finales"
    assert home[str(warned["id"])]["filtered"][0]["keyword_matches"] == ["finale"]
    assert home[str(plain["id"])]["filtered"] == []

    # Keywords and statuses of a filter, through Mastodon's own paths.
    kw = reader.api.add_filter_keyword_v2(warn["id"], "cliffhanger", whole_word=False)
    assert {k["keyword"] for k in reader.api.filter_keywords_v2(warn["id"])} == {"finale", "cliffhanger"}
    reader.api.delete_filter_keyword_v2(kw["id"])
    assert [k["keyword"] for k in reader.api.filter_keywords_v2(warn["id"])] == ["finale"]
    fs = reader.api.add_filter_status_v2(warn["id"], plain["id"])
    assert str(reader.api.filter_status_v2(fs["id"])["status_id"]) == str(plain["id"])
    assert len(reader.api.filter_statuses_v2(warn["id"])) == 1
    home = {str(s["id"]): s for s in reader.api.timeline_home(limit=40)}
    assert home[str(plain["id"])]["filtered"][0]["status_matches"] == [str(fs["id"])]

    updated = reader.api.update_filter_v2(warn["id"], title="endings", filter_action="hide")
    assert updated["title"] == "endings"
    home = home_ids(reader.api)
    assert str(warned["id"]) not in home

    reader.api.delete_filter_v2(hide["id"])
    reader.api.delete_filter_v2(warn["id"])
    assert list(reader.api.filters_v2()) == []
    assert str(hidden["id"]) in home_ids(reader.api)
    with pytest.raises(MastodonNotFoundError):
        reader.api.filter_v2(hide["id"])
    with pytest.raises(MastodonAPIError):
        reader.api.create_filter_v2("bad", ["nowhere"], "warn")
