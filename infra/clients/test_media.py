"""Media attachments through Mastodon.py: upload (v2 with polling), describe, post with
media, read it back on timelines, fetch the file and decode it; the errors a client sees."""

import io

import pytest
import requests
from mastodon import MastodonAPIError
from PIL import Image

from conftest import home_ids, wait_until


def picture(width: int, height: int, fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", (width, height))
    for x in range(width):
        for y in range(0, height, 7):
            img.putpixel((x, y), (x % 256, y % 256, 120))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def test_media_post_and_status_with_media(alice, bob):
    bob.api.account_follow(alice.id)
    media = alice.api.media_post(
        io.BytesIO(picture(320, 200)),
        mime_type="image/png",
        description="a gradient",
        focus=(0.25, -0.5),
        file_name="gradient.png",
        synchronous=True,
    )
    assert media["type"] == "image"
    assert media["url"] and media["preview_url"]
    assert media["meta"]["original"]["width"] == 320
    assert media["meta"]["original"]["height"] == 200
    assert media["blurhash"]
    assert media["description"] == "a gradient"

    updated = alice.api.media_update(media["id"], description="a blue gradient")
    assert updated["description"] == "a blue gradient"

    status = alice.api.status_post("", media_ids=[media["id"]], sensitive=True)
    assert status["sensitive"] is True
    assert [m["id"] for m in status["media_attachments"]] == [media["id"]]
    assert status["media_attachments"][0]["description"] == "a blue gradient"

    assert wait_until(lambda: status["id"] in home_ids(bob.api), timeout=10)
    home = bob.api.timeline_home()
    shown = next(s for s in home if s["id"] == status["id"])
    assert shown["media_attachments"][0]["url"] == media["url"]
    only = alice.api.account_statuses(alice.id, only_media=True)
    assert [s["id"] for s in only][:1] == [status["id"]]

    # The file itself, fetched back and decoded.
    res = requests.get(media["url"], timeout=30)
    assert res.status_code == 200
    assert res.headers["Content-Type"] == "image/png"
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    img = Image.open(io.BytesIO(res.content))
    img.load()
    assert img.size == (320, 200)
    preview = Image.open(io.BytesIO(requests.get(media["preview_url"], timeout=30).content))
    preview.load()
    assert preview.size[0] <= 640 and preview.size[1] <= 640

    # Deleting the post takes the files with it.
    alice.api.status_delete(status["id"])
    assert wait_until(lambda: requests.get(media["url"], timeout=30).status_code == 404, timeout=10)


def test_media_errors_are_clear(alice, bob):
    with pytest.raises(MastodonAPIError) as err:
        alice.api.media_post(io.BytesIO(b"PK\x03\x04 a zip renamed" * 50), mime_type="image/png",
                             file_name="photo.png")
    assert err.value.args[1] == 415
    theirs = bob.api.media_post(io.BytesIO(picture(8, 8)), mime_type="image/png", synchronous=True)
    with pytest.raises(MastodonAPIError) as err:
        alice.api.status_post("not mine", media_ids=[theirs["id"]])
    assert err.value.args[1] == 422
    with pytest.raises(MastodonAPIError) as err:
        alice.api.status_post("")
    assert err.value.args[1] == 422


def test_account_update_credentials_avatar_and_header(alice):
    me = alice.api.account_update_credentials(
        avatar=io.BytesIO(picture(900, 600)), avatar_mime_type="image/png",
        header=io.BytesIO(picture(2000, 800)), header_mime_type="image/png",
    )
    assert "missing.png" not in me["avatar"]
    avatar = Image.open(io.BytesIO(requests.get(me["avatar"], timeout=30).content))
    assert avatar.size == (400, 400)
    header = Image.open(io.BytesIO(requests.get(me["header_static"], timeout=30).content))
    assert header.size == (1500, 500)
    assert alice.api.account_verify_credentials()["avatar"] == me["avatar"]
