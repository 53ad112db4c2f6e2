//! Signing in as real apps do: the authorization code flow with PKCE through the login and
//! consent pages, the token endpoint's grants and client authentication, every bad input
//! of issue 11, CORS and discovery. The pages are driven as a browser would (cookies,
//! hidden form fields, no redirects followed) with plain HTTP.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, User, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";
const WEB: &str = "https://app.example/callback";
const IVORY: &str = "com.tapbots.Ivory.19300:/request_token/2f6b1c";
const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-a-long-verifier";

struct Client {
    id: String,
    secret: String,
}

/// A browser: a cookie jar of one cookie, never following redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location ({}): {}", self.status, self.body))
            .to_owned()
    }

    /// The value of the first `<input name="{name}" ... value="...">` on the page.
    fn field(&self, name: &str) -> String {
        let at = self
            .body
            .find(&format!("name=\"{name}\""))
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body));
        let rest = &self.body[at..];
        let v = rest.find("value=\"").expect("value") + 7;
        let end = rest[v..].find('"').expect("end of value");
        unescape(&rest[v..v + end])
    }
}

fn unescape(s: &str) -> String {
    s.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: app.base.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        let res = req.send().await.expect("request");
        if let Some(set) = res.headers().get(header::SET_COOKIE) {
            let set = set.to_str().expect("cookie");
            self.cookie = Some(set.split(';').next().expect("pair").to_owned());
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.expect("body"),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let url = format!("{}{path}", self.base);
        let req = self.http.get(url);
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let url = format!("{}{path}", self.base);
        let req = self.http.post(url).form(form);
        self.send(req).await
    }

    /// Fill in and send the login form of `page`.
    async fn log_in(&mut self, page: &Page, username: &str, password: &str) -> Page {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = page.field("csrf_token");
        let authorize = page.field("authorize");
        self.post(
            "/auth/sign_in",
            &[
                ("csrf_token", &csrf),
                ("authorize", &authorize),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Press a button of the consent form on `page` (`approve` or `deny`).
    async fn decide(&mut self, page: &Page, decision: &str) -> Page {
        assert!(
            page.body.contains("Authorize"),
            "not a consent page: {}",
            page.body
        );
        let mut form: Vec<(String, String)> = vec![("decision".into(), decision.into())];
        for name in [
            "csrf_token",
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        ] {
            if page.body.contains(&format!("name=\"{name}\"")) {
                form.push((name.into(), page.field(name)));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.post("/oauth/authorize", &form).await
    }

    /// From the authorize URL to the consent page: the login page, then signing in (or
    /// straight there when this browser is signed in).
    async fn consent(&mut self, query: &str, user: &User) -> Page {
        let login = self.get(&format!("/oauth/authorize?{query}")).await;
        if login.body.contains("name=\"decision\"") {
            return login;
        }
        let signed = self.log_in(&login, &user.username, PASSWORD).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        let back = signed.location();
        assert!(back.starts_with("/oauth/authorize?"), "{back}");
        self.get(&back).await
    }
}

async fn register_app(app: &TestApp, redirect_uris: &str, scopes: &str) -> Client {
    let v: Value = app
        .http
        .post(format!("{}/api/v1/apps", app.base))
        .form(&[
            ("client_name", "Test App"),
            ("redirect_uris", redirect_uris),
            ("scopes", scopes),
            ("website", "https://app.example"),
        ])
        .send()
        .await
        .expect("app")
        .json()
        .await
        .expect("json");
    Client {
        id: v["client_id"].as_str().expect("id").to_owned(),
        secret: v["client_secret"].as_str().expect("secret").to_owned(),
    }
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query parameters of a redirect `location`, decoded.
fn params_of(location: &str) -> Vec<(String, String)> {
    let q = location.split_once('?').map_or("", |(_, q)| q);
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

fn dec(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let h = u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex");
            out.push(h);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf8")
}

fn param(location: &str, name: &str) -> Option<String> {
    params_of(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn exchange(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .form(form)
        .send()
        .await
        .expect("token");
    let status = res.status();
    (status, res.json().await.expect("json"))
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.get(token, "/api/v1/accounts/verify_credentials").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_with_pkce_s256_signs_in_once() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let client = register_app(&app, WEB, "read write follow push").await;
    let mut browser = Browser::new(&app);

    let q = query(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", WEB),
        ("scope", "read write follow"),
        ("state", "st@te/1"),
        ("code_challenge", &s256(VERIFIER)),
        ("code_challenge_method", "S256"),
    ]);
    let login = browser.get(&format!("/oauth/authorize?{q}")).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("Sign in") && login.body.contains("Test App"));
    let csp = login.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(
        login
            .headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let set_cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");

    // A wrong password and an unknown name get the same page and message.
    let wrong = browser.log_in(&login, "alice", "not the password").await;
    let unknown = browser.log_in(&login, "nobody", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains("Invalid username or password."),
            "{}",
            page.body
        );
    }
    assert_eq!(
        wrong.body.replace("value=\"alice\"", ""),
        unknown.body.replace("value=\"nobody\"", ""),
        "nothing tells which part was wrong"
    );

    let signed = browser.log_in(&login, "alice", PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let consent = browser.get(&signed.location()).await;
    assert_eq!(consent.status, StatusCode::OK);
    assert!(
        consent.body.contains("Authorize Test App?"),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("@alice"));
    for scope in ["read", "write", "follow"] {
        assert!(consent.body.contains(&format!("<strong>{scope}</strong>")));
    }
    let csp = consent.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example"),
        "{csp}"
    );

    let back = browser.decide(&consent, "approve").await;
    assert_eq!(back.status, StatusCode::FOUND);
    let location = back.location();
    assert!(location.starts_with(&format!("{WEB}?code=")), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("st@te/1"));
    let code = param(&location, "code").expect("code");

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEB),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret.as_str()),
        ("code_verifier", VERIFIER),
    ];
    let (status, token) = exchange(&app, &form).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "read write follow");
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(
        me(&app, access).await["id"].as_str(),
        Some(alice.id.as_str())
    );

    // The code is spent.
    let (status, again) = exchange(&app, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
    assert!(again["error_description"].as_str().is_some());

    // Signed in already: straight to the consent page, unless the app forces a login.
    let consent = browser.get(&format!("/oauth/authorize?{q}")).await;
    assert!(consent.body.contains("Authorize Test App?"));
    let forced = browser
        .get(&format!("/oauth/authorize?{q}&force_login=true"))
        .await;
    assert!(forced.body.contains("Sign in") && !forced.body.contains("Authorize Test App?"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_with_the_email_address_in_any_case() {
    let mut app = spawn_app().await;
    let carol = app.register("carol").await; // carol@example.org
    let client = register_app(&app, WEB, "read write").await;
    let mut browser = Browser::new(&app);
    let q = query(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", WEB),
        ("scope", "read"),
        ("code_challenge", &s256(VERIFIER)),
        ("code_challenge_method", "S256"),
    ]);
    let login = browser.get(&format!("/oauth/authorize?{q}")).await;
    assert!(
        login.body.contains("E-mail address or username"),
        "{}",
        login.body
    );

    // A right address with a wrong password, an unknown address: the same page as ever.
    let wrong = browser
        .log_in(&login, "CAROL@Example.org", "not the password")
        .await;
    let unknown = browser.log_in(&login, "nobody@example.org", PASSWORD).await;
    let bad_name = browser.log_in(&login, "nobody", PASSWORD).await;
    for page in [&wrong, &unknown, &bad_name] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains("Invalid username or password."),
            "{}",
            page.body
        );
    }
    assert_eq!(
        wrong.body.replace("value=\"CAROL@Example.org\"", ""),
        unknown.body.replace("value=\"nobody@example.org\"", ""),
        "nothing tells whether the address is known"
    );
    assert_eq!(
        unknown.body.replace("value=\"nobody@example.org\"", ""),
        bad_name.body.replace("value=\"nobody\"", ""),
    );

    let signed = browser
        .log_in(&login, " Carol@EXAMPLE.org ", PASSWORD)
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let consent = browser.get(&signed.location()).await;
    assert!(consent.body.contains("@carol"), "{}", consent.body);
    let back = browser.decide(&consent, "approve").await;
    assert_eq!(back.status, StatusCode::FOUND);
    let code = param(&back.location(), "code").expect("code");
    let (status, token) = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", WEB),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(
        me(&app, access).await["id"].as_str(),
        Some(carol.id.as_str())
    );

    // The password grant takes the address as `username` too, as Mastodon's does.
    let grant = |username: &'static str, password: &'static str| {
        let client = &client;
        let app = &app;
        async move {
            exchange(
                app,
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                    ("client_id", client.id.as_str()),
                    ("client_secret", client.secret.as_str()),
                    ("scope", "read"),
                ],
            )
            .await
        }
    };
    let (status, token) = grant("carol@EXAMPLE.ORG", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(
        me(&app, access).await["id"].as_str(),
        Some(carol.id.as_str())
    );
    let (status, refused) = grant("carol@example.org", "not the password").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");

    // One address, one account: signing up again with it, in another case, is refused.
    let (_, app_token) = exchange(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
            ("scope", "write"),
        ],
    )
    .await;
    let res = app
        .http
        .post(format!("{}/api/v1/accounts", app.base))
        .bearer_auth(app_token["access_token"].as_str().unwrap())
        .form(&[
            ("username", "carol2"),
            ("email", "Carol@Example.org"),
            ("password", PASSWORD),
            ("agreement", "true"),
            ("locale", "en"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        "Validation failed: Email has already been taken"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_plain_with_basic_client_auth_and_wrong_or_missing_verifiers() {
    let mut app = spawn_app().await;
    let bob = app.register("bob").await;
    let client = register_app(&app, WEB, "read write").await;
    let mut browser = Browser::new(&app);
    let plain = "plain-verifier-plain-verifier-plain-verifier-1234";
    let code_for = |method: &'static str, challenge: String| {
        query(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", WEB),
            ("scope", "read"),
            ("state", "x"),
            ("code_challenge", &challenge),
            ("code_challenge_method", method),
        ])
    };
    let consent = browser
        .consent(&code_for("plain", plain.into()), &bob)
        .await;
    let code = param(
        &browser.decide(&consent, "approve").await.location(),
        "code",
    )
    .unwrap();
    let basic = STANDARD.encode(format!("{}:{}", client.id, client.secret));
    let res = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", WEB),
            ("code_verifier", plain),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token: Value = res.json().await.unwrap();
    assert_eq!(token["scope"], "read");
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(me(&app, access).await["username"], "bob");
    // read only: writing is refused.
    let res = app
        .post_json(
            access,
            "/api/v1/statuses",
            serde_json::json!({"status": "hi"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Basic auth with a wrong secret.
    let bad = STANDARD.encode(format!("{}:wrong", client.id));
    let res = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .header(header::AUTHORIZATION, format!("Basic {bad}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    // S256: a wrong verifier and a missing one are refused, and the code is spent after.
    for verifier in [
        Some("wrong-verifier-wrong-verifier-wrong-verifier-00"),
        None,
    ] {
        let consent = browser
            .consent(&code_for("S256", s256(VERIFIER)), &bob)
            .await;
        let code = param(
            &browser.decide(&consent, "approve").await.location(),
            "code",
        )
        .unwrap();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", WEB),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let (status, err) = exchange(&app, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        let expected = if verifier.is_some() {
            "invalid_grant"
        } else {
            "invalid_request"
        };
        assert_eq!(err["error"], expected);
        form.retain(|(k, _)| *k != "code_verifier");
        form.push(("code_verifier", VERIFIER));
        let (status, err) = exchange(&app, &form).await;
        assert_eq!(
            (status, &err["error"]),
            (StatusCode::BAD_REQUEST, &Value::from("invalid_grant"))
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_redirect_uris_custom_schemes_oob_and_deny() {
    let mut app = spawn_app().await;
    let carol = app.register("carol").await;
    let client = register_app(&app, &format!("{WEB}\n{IVORY}\n{OOB}"), "read write follow").await;
    let mut browser = Browser::new(&app);
    let ask = |redirect: &str, state: Option<&str>| {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", redirect),
            ("scope", "read write"),
        ];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        query(&pairs)
    };

    // Ivory's URI is not a strict URL; it is matched and extended as a string.
    let consent = browser.consent(&ask(IVORY, Some("iv")), &carol).await;
    let csp = consent.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("com.tapbots.ivory.19300:"), "{csp}");
    let location = browser.decide(&consent, "approve").await.location();
    assert!(
        location.starts_with(&format!("{IVORY}?code=")),
        "{location}"
    );
    let code = param(&location, "code").unwrap();
    // Named with another registered URI, the code is refused.
    let (status, err) = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(
        (status, &err["error"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_grant"))
    );

    // No state: none comes back (Mastodon does not require one).
    let consent = browser
        .get(&format!("/oauth/authorize?{}", ask(WEB, None)))
        .await;
    let location = browser.decide(&consent, "approve").await.location();
    assert_eq!(param(&location, "state"), None);
    assert!(param(&location, "code").is_some());

    // Deny: back to the app with access_denied and the state.
    let consent = browser
        .get(&format!("/oauth/authorize?{}", ask(WEB, Some("d1"))))
        .await;
    let location = browser.decide(&consent, "deny").await.location();
    assert!(location.starts_with(WEB), "{location}");
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&location, "state").as_deref(), Some("d1"));
    assert_eq!(param(&location, "code"), None);

    // Out of band: the code is on the page.
    let consent = browser
        .get(&format!("/oauth/authorize?{}", ask(OOB, None)))
        .await;
    let page = browser.decide(&consent, "approve").await;
    assert_eq!(page.status, StatusCode::OK);
    let at = page
        .body
        .find("<output id=\"code\" class=\"code\">")
        .expect("code on page")
        + 31;
    let code = &page.body[at..at + page.body[at..].find('<').unwrap()];
    let (status, token) = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", OOB),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(
        me(&app, token["access_token"].as_str().unwrap()).await["username"],
        "carol"
    );

    // Signing out ends the session: the next request shows the login page.
    let consent = browser
        .get(&format!("/oauth/authorize?{}", ask(WEB, None)))
        .await;
    let csrf = consent.field("csrf_token");
    let out = browser
        .post("/auth/sign_out", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::OK);
    let again = browser
        .get(&format!("/oauth/authorize?{}", ask(WEB, None)))
        .await;
    assert!(again.body.contains("Sign in") && !again.body.contains("Authorize Test App?"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_authorization_requests_never_redirect_anywhere_unregistered() {
    let mut app = spawn_app().await;
    let dave = app.register("dave").await;
    let client = register_app(&app, WEB, "read write").await;
    let mut browser = Browser::new(&app);
    let get = |pairs: Vec<(&str, &str)>| format!("/oauth/authorize?{}", query(&pairs));

    // Unknown client and unregistered redirect URI: an error page, no Location.
    let unknown = browser
        .get(&get(vec![
            ("response_type", "code"),
            ("client_id", "nope"),
            ("redirect_uri", WEB),
        ]))
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("invalid_client"));
    assert!(unknown.headers.get(header::LOCATION).is_none());
    for evil in [
        "https://evil.example/cb",
        "https://app.example/callback/../x",
        "https://app.example/callbackX",
    ] {
        let page = browser
            .get(&get(vec![
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", evil),
            ]))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{evil}");
        assert!(page.body.contains("invalid_redirect_uri"));
        assert!(page.headers.get(header::LOCATION).is_none());
    }

    // Errors the app can be told about go back to its registered URI.
    let long = "a".repeat(43);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", "code"), ("scope", "read telepathy")],
            "invalid_scope",
        ),
        (
            vec![("response_type", "code"), ("scope", "follow")],
            "invalid_scope",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &long),
                ("code_challenge_method", "S512"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "code"), ("code_challenge", "short")],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let mut pairs = vec![
            ("client_id", client.id.as_str()),
            ("redirect_uri", WEB),
            ("state", "s"),
        ];
        pairs.extend(extra);
        let page = browser.get(&get(pairs)).await;
        assert_eq!(page.status, StatusCode::FOUND, "{error}: {}", page.body);
        let location = page.location();
        assert!(location.starts_with(&format!("{WEB}?")), "{location}");
        assert_eq!(
            param(&location, "error").as_deref(),
            Some(error),
            "{location}"
        );
        assert_eq!(param(&location, "state").as_deref(), Some("s"));
    }

    // A forged or missing CSRF token, and a consent form without a session.
    let ok = get(vec![
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", WEB),
    ]);
    let login = browser.get(&ok).await;
    let forged = browser
        .post(
            "/auth/sign_in",
            &[
                ("csrf_token", "forged"),
                ("authorize", ""),
                ("username", "dave"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    let consent = browser.consent(&ok[17..], &dave).await;
    let mut stranger = Browser::new(&app);
    let blind = stranger
        .post(
            "/oauth/authorize",
            &[
                ("csrf_token", &consent.field("csrf_token")),
                ("decision", "approve"),
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", WEB),
            ],
        )
        .await;
    assert_eq!(blind.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blind.headers.get(header::LOCATION).is_none());
    // The consent form re-checks what it carries: a swapped redirect URI goes nowhere.
    let swapped = browser
        .post(
            "/oauth/authorize",
            &[
                ("csrf_token", &consent.field("csrf_token")),
                ("decision", "approve"),
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", "https://evil.example/cb"),
            ],
        )
        .await;
    assert_eq!(swapped.status, StatusCode::BAD_REQUEST);
    assert!(swapped.headers.get(header::LOCATION).is_none());

    // An oversized form.
    let big = "x".repeat(64 * 1024);
    let huge = browser
        .post(
            "/auth/sign_in",
            &[
                ("csrf_token", &login.field("csrf_token")),
                ("username", &big),
            ],
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);

    // The token endpoint's bad input: JSON errors with Doorkeeper's statuses.
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("grant_type", "implicit"),
                ("client_id", &client.id),
                ("client_secret", &client.secret),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", &client.id), ("client_secret", &client.secret)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", &client.id),
                ("client_secret", "wrong"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "not-a-code"),
                ("redirect_uri", WEB),
                ("client_id", &client.id),
                ("client_secret", &client.secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &client.id),
                ("client_secret", &client.secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", "dave"),
                ("password", "wrong"),
                ("client_id", &client.id),
                ("client_secret", &client.secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "admin"),
                ("client_id", &client.id),
                ("client_secret", &client.secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
    ];
    for (form, status, error) in cases {
        let (got, body) = exchange(&app, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {body}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    // A code issued to one client is refused to another.
    let other = register_app(&app, WEB, "read write").await;
    let consent = browser.get(&ok).await;
    let code = param(
        &browser.decide(&consent, "approve").await.location(),
        "code",
    )
    .unwrap();
    let (status, body) = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB),
            ("client_id", &other.id),
            ("client_secret", &other.secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_discovery_and_app_credentials() {
    let mut app = spawn_app_with(|s| s.api.public_url = "https://social.example".into()).await;
    let erin = app.register("erin").await;
    let origin = "http://127.0.0.1:5555";

    let pre = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/timelines/home", app.base),
        )
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::OK);
    let h = pre.headers();
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("idempotency-key")
    );
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());

    let res = app
        .http
        .get(format!("{}/api/v1/timelines/home", app.base))
        .header(header::ORIGIN, origin)
        .bearer_auth(&erin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(
        res.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap()
            .contains("Link")
    );
    // Errors carry it too, so a page can read them.
    let res = app
        .http
        .get(format!("{}/api/v1/timelines/home", app.base))
        .header(header::ORIGIN, origin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    for path in ["/oauth/token", "/.well-known/nodeinfo"] {
        let res = app
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{path}"
        );
    }
    let page = app
        .http
        .get(format!("{}/oauth/authorize?client_id=x", app.base))
        .header(header::ORIGIN, origin)
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    // Secure session cookies behind https.
    let set = page
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(set, None, "an error page starts no session");
    let client = register_app(&app, WEB, "read").await;
    let login = reqwest::get(format!(
        "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}",
        app.base,
        client.id,
        enc(WEB)
    ))
    .await
    .unwrap();
    let cookie = login.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");

    let meta: Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        app.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(meta["issuer"], "https://social.example/");
    assert_eq!(
        meta["authorization_endpoint"],
        "https://social.example/oauth/authorize"
    );
    assert_eq!(meta["token_endpoint"], "https://social.example/oauth/token");
    for grant in ["authorization_code", "password", "client_credentials"] {
        assert!(
            meta["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&Value::from(grant))
        );
    }
    assert!(
        meta["code_challenge_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("S256"))
    );
    assert!(
        meta["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("push")),
        "push works (Web Push, issue 18), so it is advertised"
    );

    let links: Value = reqwest::get(format!("{}/.well-known/nodeinfo", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        links["links"][0]["href"],
        "https://social.example/nodeinfo/2.0"
    );
    app.status(&erin, "counted").await;
    let info: Value = reqwest::get(format!("{}/nodeinfo/2.0", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["software"]["name"], "starling");
    assert_eq!(info["metadata"]["upstream"]["name"], "mastodon");
    assert_eq!(info["usage"]["users"]["total"], 1);
    assert_eq!(info["usage"]["localPosts"], 1);
    assert_eq!(info["openRegistrations"], true);
    let v1: Value = reqwest::get(format!("{}/api/v1/instance", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v1["stats"]["user_count"], 1);
    assert_eq!(v1["stats"]["status_count"], 1);

    let verified = app
        .get(&erin.token, "/api/v1/apps/verify_credentials")
        .await;
    assert_eq!(verified["name"], "tests");
    assert!(verified.get("client_secret").is_none());
    let who = app.get(&erin.token, "/oauth/userinfo").await;
    assert_eq!(who["preferred_username"], "erin");
    let res = app
        .get_raw("nonsense", "/api/v1/apps/verify_credentials")
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
