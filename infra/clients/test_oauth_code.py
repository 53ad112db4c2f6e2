"""Mastodon.py signs in through the authorization code flow: `auth_request_url`, the
server's login and consent pages (driven here with plain HTTP, as a browser would send the
forms), then `log_in(code=...)`."""

import html
import re
import secrets
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from mastodon import Mastodon
from mastodon.errors import MastodonIllegalArgumentError

from conftest import PASSWORD, REQUEST_TIMEOUT, make_client

OOB = "urn:ietf:wg:oauth:2.0:oob"
SCOPES = ["read", "write", "follow"]


def form_fields(page: str, action: str) -> dict:
    start = page.index(f'action="{action}"')
    form = page[start:page.index("</form>", start)]
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form):
        name = re.search(r'\bname="([^"]*)"', tag)
        value = re.search(r'\bvalue="([^"]*)"', tag)
        if name:
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1) if value else "")
    return fields


def authorize(url: str, username: str, password: str = PASSWORD, decision: str = "approve"):
    """Open `url` in a cookie-keeping session, sign in, press Authorize or Deny. Returns the
    final response (a redirect to the app, or the page with the out-of-band code)."""
    s = requests.Session()
    page = s.get(url, timeout=REQUEST_TIMEOUT, allow_redirects=False)
    assert page.status_code == 200, page.text
    assert 'action="/auth/sign_in"' in page.text
    fields = form_fields(page.text, "/auth/sign_in")
    fields.update(username=username, password=password)
    signed = s.post(urljoin(url, "/auth/sign_in"), data=fields, timeout=REQUEST_TIMEOUT,
                    allow_redirects=False)
    assert signed.status_code == 303, signed.text
    consent = s.get(urljoin(url, signed.headers["Location"]), timeout=REQUEST_TIMEOUT,
                    allow_redirects=False)
    assert consent.status_code == 200 and "Authorize" in consent.text, consent.text
    fields = form_fields(consent.text, "/oauth/authorize")
    fields["decision"] = decision
    return s.post(urljoin(url, "/oauth/authorize"), data=fields, timeout=REQUEST_TIMEOUT,
                  allow_redirects=False)


def test_log_in_with_a_code_out_of_band(base_url, app, alice):
    m = make_client(base_url, app)
    url = m.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True)
    assert url.startswith(f"{base_url}/oauth/authorize?")
    answer = authorize(url, alice.username)
    assert answer.status_code == 200, answer.text
    code = re.search(r'<output id="code" class="code">([^<]+)</output>', answer.text).group(1)
    token = m.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    assert token and token != alice.token
    assert m.account_verify_credentials()["id"] == alice.id
    # The code is used up.
    with pytest.raises(MastodonIllegalArgumentError):
        make_client(base_url, app).log_in(code=code, redirect_uri=OOB, scopes=SCOPES,
                                          allow_http=True)


def test_log_in_with_a_code_through_a_web_redirect_with_state(base_url, bob):
    redirect = "http://127.0.0.1:9/mastodon-py/callback"
    client_id, client_secret = Mastodon.create_app(
        "code flow app", api_base_url=base_url, redirect_uris=redirect, scopes=SCOPES,
        request_timeout=REQUEST_TIMEOUT)
    m = make_client(base_url, (client_id, client_secret))
    state = secrets.token_urlsafe(12)
    url = m.auth_request_url(redirect_uris=redirect, scopes=SCOPES, state=state, allow_http=True)
    answer = authorize(url, bob.username)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(redirect + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    token = m.log_in(code=query["code"][0], redirect_uri=redirect, scopes=SCOPES, allow_http=True)
    assert token
    assert m.account_verify_credentials()["id"] == bob.id
    assert m.app_verify_credentials()["name"] == "code flow app"


def test_denied_authorization_redirects_with_access_denied(base_url, carol):
    redirect = "http://127.0.0.1:9/mastodon-py/denied"
    client_id, client_secret = Mastodon.create_app(
        "denied app", api_base_url=base_url, redirect_uris=redirect, scopes=SCOPES,
        request_timeout=REQUEST_TIMEOUT)
    m = make_client(base_url, (client_id, client_secret))
    url = m.auth_request_url(redirect_uris=redirect, scopes=SCOPES, state="s1", allow_http=True)
    answer = authorize(url, carol.username, decision="deny")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s1"]
    assert "code" not in query


def test_oauth_server_info_advertises_what_works(base_url, app):
    info = make_client(base_url, app).oauth_authorization_server_info()
    assert "authorization_code" in info["grant_types_supported"]
    assert "password" in info["grant_types_supported"]
    assert "S256" in info["code_challenge_methods_supported"]
    assert info["authorization_endpoint"] == f"{base_url}/oauth/authorize"
