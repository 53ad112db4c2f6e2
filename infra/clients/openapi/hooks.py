"""Schemathesis hooks for the openapi stage (loaded through SCHEMATHESIS_HOOKS)."""

import atexit
import os

import schemathesis

checked = {"responses": 0}


@atexit.register
def _write_count():
    path = os.environ.get("OPENAPI_COUNT_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            out.write(str(checked["responses"]))


@schemathesis.check
def error_is_json(ctx, response, case):
    """Every 4xx is JSON with a string `error`, as Mastodon's clients read it."""
    checked["responses"] += 1
    # A HEAD answer has no body by definition.
    if 400 <= response.status_code < 500 and case.method.upper() != "HEAD":
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(
                f"{response.status_code} is not JSON: {response.text[:200]!r}"
            )
        if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
            raise AssertionError(f"{response.status_code} without an `error`: {body!r}")
    return None
