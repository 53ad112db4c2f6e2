"""The openapi stage: schemathesis fuzzes every operation of /api/openapi.json.

Each operation gets generated paths, query strings and bodies, valid and invalid, sent with a
user token of every scope. A response must never be a 5xx or hang (10 s), must have a status
and content type that the document declares and a body matching its schema, and every 4xx
must be JSON with an `error`. Prints `openapi: P passed, F failed, R requests` (operations)
and fails when the document is not valid OpenAPI 3.1 (openapi-spec-validator), an operation
failed, or fewer than OPENAPI_MIN_REQUESTS responses were checked.

Usage: python fuzz.py BASE_URL REPORT_DIR
"""

import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET

import requests
from openapi_spec_validator import validate

TIMEOUT = 10
# Browser pages (HTML forms with CSRF tokens) and long-lived streams belong to the browser
# and streaming tests, not to a fuzzer that waits for each answer.
EXCLUDED = (
    r"^/(oauth/authorize|auth/|oauth/style\.css"
    r"|api/v1/streaming$|api/v1/streaming/$|api/v1/streaming/\{stream\})"
)


def register(base: str) -> tuple[str, str]:
    """A new user's (token of every scope, account id)."""
    app = requests.post(
        f"{base}/api/v1/apps",
        data={
            "client_name": "openapi fuzz",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write follow push profile",
        },
        timeout=TIMEOUT,
    ).json()
    app_token = requests.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write follow push profile",
        },
        timeout=TIMEOUT,
    ).json()["access_token"]
    name = "fuzz" + secrets.token_hex(4)
    res = requests.post(
        f"{base}/api/v1/accounts",
        headers={"Authorization": f"Bearer {app_token}"},
        data={
            "username": name,
            "email": f"{name}@example.org",
            "password": "correct horse battery staple",
            "agreement": "true",
        },
        timeout=TIMEOUT,
    )
    res.raise_for_status()
    token = res.json()["access_token"]
    me = requests.get(
        f"{base}/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    ).json()
    return token, me["id"]


def config(base: str, path: str) -> str:
    """The fuzzing user's token; writes a schemathesis config at `path` that gives the
    operations on one status or one account the ids of another user's real ones, so that they
    reach past the 404 of an unknown id (other parameters stay generated)."""
    token, _ = register(base)
    other, other_id = register(base)
    post = requests.post(
        f"{base}/api/v1/statuses",
        headers={"Authorization": f"Bearer {other}"},
        data={"status": "hello #fuzz"},
        timeout=TIMEOUT,
    ).json()
    with open(path, "w", encoding="utf-8") as out:
        for prefix, value in (("statuses", post["id"]), ("accounts", other_id)):
            out.write(
                "[[operations]]\n"
                f'include-path-regex = "^/api/v1/{prefix}/\\\\{{id\\\\}}"\n'
                f'parameters = {{ "path.id" = "{value}" }}\n\n'
            )
    return token


def main() -> int:
    base, reports = sys.argv[1].rstrip("/"), sys.argv[2]
    os.makedirs(reports, exist_ok=True)
    junit = os.path.join(reports, "openapi-junit.xml")
    count_file = os.path.join(reports, "openapi-responses.txt")
    examples = os.environ.get("OPENAPI_EXAMPLES", "80")
    minimum = int(os.environ.get("OPENAPI_MIN_REQUESTS", "5000"))
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(
        os.environ,
        SCHEMATHESIS_HOOKS="hooks",
        PYTHONPATH=here,
        OPENAPI_COUNT_FILE=count_file,
    )
    # The document itself must be valid OpenAPI 3.1 before anything is fuzzed from it.
    validate(requests.get(f"{base}/api/openapi.json", timeout=TIMEOUT).json())
    print("openapi: the document validates (openapi-spec-validator)")
    st = os.path.join(os.path.dirname(sys.executable), "st")
    settings = os.path.join(reports, "schemathesis.toml")
    token = config(base, settings)
    command = [
        st, "--config-file", settings, "run", f"{base}/api/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance,error_is_json",
        "--exclude-path-regex", EXCLUDED,
        "--max-examples", examples,
        "--seed", os.environ.get("OPENAPI_SEED", "1"),
        "--request-timeout", str(TIMEOUT),
        "--max-redirects", "0",
        "--workers", "2",
        "--report", "junit", "--report-junit-path", junit,
        "--no-color",
    ]
    code = subprocess.run(command, env=env, check=False).returncode
    cases = ET.parse(junit).getroot().iter("testcase") if os.path.exists(junit) else []
    passed = failed = 0
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None:
            passed += 1
    with open(count_file, encoding="utf-8") if os.path.exists(count_file) else open(os.devnull) as f:
        responses = int(f.read().strip() or 0)
    print(f"openapi: {passed} passed, {failed} failed, {responses} requests")
    if responses < minimum:
        print(f"openapi: fewer than {minimum} responses were checked", file=sys.stderr)
        return 1
    return 1 if code != 0 or failed else 0


if __name__ == "__main__":
    sys.exit(main())
