//! Media attachments end to end (issue 12): uploads through the API, processing by the
//! media role, attachments on every status surface, the files as served, every bad input
//! answered with a clear 4xx, deletes removing files, and a media worker killed mid-job.

use std::io::Cursor;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use starling::Role;

use crate::helpers::{TestApp, User, spawn_app, spawn_app_roles};
use crate::streaming::{payload, ws_connect, ws_event};

const BOUNDARY: &str = "starlingtestboundary7MA4YWxkTrZu0gW";

/// A multipart/form-data body with a `file` part and text fields, as apps send it.
fn multipart(file: Option<(&str, &[u8])>, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((filename, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

async fn upload_raw(app: &TestApp, user: &User, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.http
        .post(format!("{}{path}", app.base))
        .bearer_auth(&user.token)
        .header("content-type", content_type())
        .body(body)
        .send()
        .await
        .expect("upload")
}

/// Upload through v2 and poll as masto.js does until processed; returns the attachment.
async fn upload(
    app: &TestApp,
    user: &User,
    name: &str,
    bytes: &[u8],
    fields: &[(&str, &str)],
) -> Value {
    let res = upload_raw(
        app,
        user,
        "/api/v2/media",
        multipart(Some((name, bytes)), fields),
    )
    .await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("json");
    assert!(status == 200 || status == 202, "upload: {status} {body}");
    processed(app, user, body["id"].as_str().expect("id")).await
}

async fn processed(app: &TestApp, user: &User, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = app
            .get_raw(&user.token, &format!("/api/v1/media/{id}"))
            .await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("json");
        if status == 200 {
            return body;
        }
        assert_eq!(status, 206, "while processing: {body}");
        assert!(Instant::now() < deadline, "never processed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 3) as u8, 90]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// A 40×20 JPEG whose EXIF says "rotate 90° clockwise" and carries a GPS-looking tag.
fn jpeg_rotated_with_exif() -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 20, |x, _| {
        image::Rgb([if x < 20 { 250 } else { 10 }, 40, 40])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    let jpeg = out.into_inner();
    // TIFF (big endian): IFD0 with Orientation = 6 and an ImageDescription holding text a
    // stripped file must not keep.
    let secret = b"GPS 48.8584N 2.2945E\0";
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    let desc_at = 8 + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&[0x01, 0x0e, 0, 2]);
    tiff.extend_from_slice(&(secret.len() as u32).to_be_bytes());
    tiff.extend_from_slice(&(desc_at as u32).to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(secret);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A URL the API gave, pointed at this test's node (the public URL is the default one).
fn local(app: &TestApp, url: &str) -> String {
    for dir in ["/system/", "/avatars/", "/headers/"] {
        if let Some((_, rest)) = url.split_once(dir) {
            return format!("{}{dir}{rest}", app.base);
        }
    }
    url.to_owned()
}

/// A PNG whose header declares `w`×`h` pixels (with a valid checksum) and holds one.
fn png_declaring(mut bytes: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let sum = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&sum.to_be_bytes());
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Files in media storage (staging excluded).
fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let root = app.dir().join("media");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for d in dirs.flatten() {
        if d.file_name().to_string_lossy().starts_with('.') {
            // Staging must be empty whenever no upload is streaming.
            let left: Vec<_> = std::fs::read_dir(d.path())
                .map(|r| r.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            out.extend(left);
            continue;
        }
        if let Ok(files) = std::fs::read_dir(d.path()) {
            out.extend(files.flatten().map(|f| f.path()));
        }
    }
    out
}

async fn post_with_media(
    app: &TestApp,
    user: &User,
    text: &str,
    ids: &[&str],
) -> reqwest::Response {
    app.post_json(
        &user.token,
        "/api/v1/statuses",
        json!({ "status": text, "media_ids": ids, "sensitive": true }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_picture_is_processed_attached_and_shown_everywhere() {
    let mut app = spawn_app().await;
    let alice = app.register("media_alice").await;
    let bob = app.register("media_bob").await;
    app.follow(&bob, &alice).await;
    let mut ws = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", bob.token),
    )
    .await;

    // Instance advertises the limits from config.
    let v2 = app.get(&alice.token, "/api/v2/instance").await;
    let limits = &v2["configuration"]["media_attachments"];
    assert_eq!(limits["image_size_limit"], 16 << 20);
    assert!(
        limits["supported_mime_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "image/jpeg")
    );
    let v1 = app.get(&alice.token, "/api/v1/instance").await;
    assert_eq!(v1["configuration"]["statuses"]["max_media_attachments"], 4);

    let original = jpeg_rotated_with_exif();
    assert!(contains(&original, b"GPS 48.8584N"));
    let media = upload(
        &app,
        &alice,
        "cat.png",
        &original,
        &[("description", "a cat"), ("focus", "0.5,-0.25")],
    )
    .await;
    assert_eq!(media["type"], "image");
    assert_eq!(media["description"], "a cat");
    assert_eq!(media["meta"]["focus"]["x"], 0.5);
    // Orientation applied: 40×20 turned upright is 20×40.
    assert_eq!(media["meta"]["original"]["width"], 20);
    assert_eq!(media["meta"]["original"]["height"], 40);
    assert_eq!(
        media["blurhash"].as_str().map(str::len),
        Some(28),
        "4×3 components"
    );
    let id = media["id"].as_str().unwrap().to_owned();

    // Description changes until attached.
    let res = app
        .http
        .put(format!("{}/api/v1/media/{id}", app.base))
        .bearer_auth(&alice.token)
        .form(&[("description", "a black cat")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The file as served: the right type, hardened headers, no metadata, decodable.
    let url = local(&app, media["url"].as_str().unwrap());
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert!(h["cache-control"].to_str().unwrap().contains("max-age"));
    let etag = h["etag"].to_str().unwrap().to_owned();
    let bytes = res.bytes().await.unwrap();
    assert!(!contains(&bytes, b"GPS 48.8584N"), "metadata stripped");
    assert!(!contains(&bytes, b"Exif"), "no EXIF block left");
    let decoded = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!((decoded.width(), decoded.height()), (20, 40));
    let range = app
        .http
        .get(&url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap().len(), 10);
    let again = app
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let preview = app
        .http
        .get(local(&app, media["preview_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 200);
    image::load_from_memory(&preview.bytes().await.unwrap()).expect("preview decodes");
    // The raw upload is never served.
    let raw = url.replace("original.jpg", "upload");
    assert_eq!(app.http.get(&raw).send().await.unwrap().status(), 404);

    // A post of only a picture: empty text is fine with media.
    let res = post_with_media(&app, &alice, "", &[&id]).await;
    let status = res.status();
    let post: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{post}");
    assert_eq!(post["sensitive"], true);
    assert_eq!(post["media_attachments"][0]["id"], id.as_str());
    assert_eq!(post["media_attachments"][0]["description"], "a black cat");
    let post_id = post["id"].as_str().unwrap().to_owned();
    let tagged = post_with_media(&app, &alice, "#cats @media_bob", &[])
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(tagged["media_attachments"].as_array().unwrap().is_empty());
    let second = upload(&app, &alice, "b.png", &png(64, 48), &[]).await;
    let tagged_media = post_with_media(
        &app,
        &alice,
        "more #cats @media_bob",
        &[second["id"].as_str().unwrap()],
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let tagged_id = tagged_media["id"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(
            &bob.token,
            "/api/v1/statuses",
            json!({"status": "nice", "in_reply_to_id": tagged_id}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();

    // Once attached, it can no longer be changed or deleted alone.
    let res = app
        .http
        .put(format!("{}/api/v1/media/{id}", app.base))
        .bearer_auth(&alice.token)
        .form(&[("description", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = app
        .http
        .delete(format!("{}/api/v1/media/{id}", app.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    let has_media = |s: &Value| {
        !s["media_attachments"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    };
    let find = |list: &Value, id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
    };
    // Every surface: the status, home, public, tag, account, only_media, context,
    // notifications, search and the stream.
    assert!(has_media(
        &app.get(&bob.token, &format!("/api/v1/statuses/{post_id}"))
            .await
    ));
    let (ok, _) = app
        .home_until(&bob, Duration::from_secs(10), |ids| ids.contains(&post_id))
        .await;
    assert!(ok);
    let home = app.get(&bob.token, "/api/v1/timelines/home").await;
    assert!(has_media(&find(&home, &post_id).unwrap()));
    let public = app.get(&bob.token, "/api/v1/timelines/public").await;
    assert!(has_media(&find(&public, &post_id).unwrap()));
    let public_media = app
        .get(&bob.token, "/api/v1/timelines/public?only_media=true")
        .await;
    assert!(public_media.as_array().unwrap().iter().all(has_media));
    assert!(find(&public_media, &post_id).is_some());
    assert!(find(&public_media, tagged["id"].as_str().unwrap()).is_none());
    let tag = app
        .get(&bob.token, "/api/v1/timelines/tag/cats?only_media=1")
        .await;
    assert_eq!(tag.as_array().unwrap().len(), 1, "{tag}");
    assert!(has_media(&tag[0]));
    let account = app
        .get(
            &bob.token,
            &format!("/api/v1/accounts/{}/statuses?only_media=true", alice.id),
        )
        .await;
    let ids: Vec<&str> = account
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![tagged_id.as_str(), post_id.as_str()]);
    let context = app
        .get(
            &bob.token,
            &format!("/api/v1/statuses/{}/context", reply["id"].as_str().unwrap()),
        )
        .await;
    assert!(has_media(&context["ancestors"][0]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notes = app
            .get(&bob.token, "/api/v1/notifications?types[]=mention")
            .await;
        if let Some(n) = notes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["status"]["id"] == tagged_id.as_str())
        {
            assert!(has_media(&n["status"]));
            break;
        }
        assert!(Instant::now() < deadline, "no mention notification");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = app
            .get(&bob.token, "/api/v2/search?q=cats&type=statuses")
            .await;
        if let Some(s) = find(&found["statuses"], &tagged_id) {
            assert!(has_media(&s));
            break;
        }
        assert!(Instant::now() < deadline, "not searchable");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = ws_event(
            &mut ws,
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        )
        .await
        .expect("an update on the stream");
        if event["event"] == "update" && payload(&event)["id"] == post_id.as_str() {
            assert!(has_media(&payload(&event)));
            break;
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_and_attachments_get_clear_errors_and_leave_nothing_behind() {
    let mut app = spawn_app().await;
    let alice = app.register("bad_alice").await;
    let bob = app.register("bad_bob").await;
    let check = |status: u16, body: &Value, want: u16, what: &str| {
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
    };
    async fn send(app: &TestApp, user: &User, body: Vec<u8>) -> (u16, Value) {
        let res = upload_raw(app, user, "/api/v2/media", body).await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    // A zip renamed .png.
    let zip = b"PK\x03\x04\x14\0\0\0\x08\0fake zip archive contents".repeat(20);
    let (s, b) = send(&app, &alice, multipart(Some(("photo.png", &zip)), &[])).await;
    check(s, &b, 415, "zip as png");
    // SVG and HTML are never accepted.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let (s, b) = send(&app, &alice, multipart(Some(("x.svg", &svg)), &[])).await;
    check(s, &b, 415, "svg");
    // No file, or not multipart.
    let (s, b) = send(&app, &alice, multipart(None, &[("description", "x")])).await;
    check(s, &b, 422, "no file");
    let res = app
        .post_json(&alice.token, "/api/v2/media", json!({"file": "x"}))
        .await;
    check(
        res.status().as_u16(),
        &res.json().await.unwrap(),
        415,
        "json body",
    );
    // An image bomb: a valid PNG header declaring 60000×60000 pixels, refused unread.
    let bomb = png_declaring(png(1, 1), 60_000, 60_000);
    let started = Instant::now();
    let (s, b) = send(&app, &alice, multipart(Some(("bomb.png", &bomb)), &[])).await;
    check(s, &b, 422, "image bomb");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("declares 60000x60000"),
        "{b}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A truncated picture: accepted by its header, refused by processing (v2 waits for it).
    let mut truncated = png(400, 300);
    truncated.truncate(truncated.len() / 2);
    let (s, b) = send(&app, &alice, multipart(Some(("half.png", &truncated)), &[])).await;
    check(s, &b, 422, "truncated");
    // Bad focus and description.
    let (s, b) = send(
        &app,
        &alice,
        multipart(Some(("a.png", &png(4, 4))), &[("focus", "3,3")]),
    )
    .await;
    check(s, &b, 422, "focus");
    // A declared 10 GB body is refused before it is read.
    let res = app
        .http
        .post(format!("{}/api/v2/media", app.base))
        .bearer_auth(&alice.token)
        .header("content-type", content_type())
        .header("content-length", (10u64 << 30).to_string())
        .body(reqwest::Body::wrap_stream(futures::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1 << 16])),
        )))
        .send()
        .await;
    if let Ok(res) = res {
        check(
            res.status().as_u16(),
            &res.json().await.unwrap_or(Value::Null),
            413,
            "10 GB",
        );
    }
    // An endless chunked body is cut off once past the limit, not read to the end.
    let mut head = multipart(Some(("big.png", &png(8, 8))), &[]);
    head.truncate(head.len() - 40);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let chunks = futures::stream::iter(
        std::iter::once(head).chain(std::iter::repeat_n(vec![7u8; 1 << 20], 10_240)),
    )
    .map(move |c| {
        counter.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::io::Error>(c)
    });
    use futures::StreamExt as _;
    let res = app
        .http
        .post(format!("{}/api/v2/media", app.base))
        .bearer_auth(&alice.token)
        .header("content-type", content_type())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(res) = res {
        check(
            res.status().as_u16(),
            &res.json().await.unwrap_or(Value::Null),
            413,
            "streamed past the limit",
        );
    }
    assert!(
        sent.load(std::sync::atomic::Ordering::Relaxed) < 1 << 30,
        "refused while streaming, not after 10 GB"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        stored_files(&app).is_empty(),
        "nothing half-written: {:?}",
        stored_files(&app)
    );

    // Attachments: more than four, someone else's, already attached, unknown.
    let mut mine = Vec::new();
    for i in 0..5 {
        let m = upload(&app, &alice, &format!("{i}.png"), &png(8 + i, 8), &[]).await;
        mine.push(m["id"].as_str().unwrap().to_owned());
    }
    let bobs = upload(&app, &bob, "bob.png", &png(9, 9), &[]).await;
    let bobs = bobs["id"].as_str().unwrap();
    let all: Vec<&str> = mine.iter().map(String::as_str).collect();
    let res = post_with_media(&app, &alice, "five", &all).await;
    check(
        res.status().as_u16(),
        &res.json().await.unwrap(),
        422,
        "five media",
    );
    let res = post_with_media(&app, &alice, "not mine", &[bobs]).await;
    check(
        res.status().as_u16(),
        &res.json().await.unwrap(),
        422,
        "someone else's",
    );
    let res = post_with_media(&app, &alice, "unknown", &["123456789"]).await;
    check(
        res.status().as_u16(),
        &res.json().await.unwrap(),
        422,
        "unknown",
    );
    let res = post_with_media(&app, &alice, "", &[]).await;
    check(
        res.status().as_u16(),
        &res.json().await.unwrap(),
        422,
        "empty without media",
    );
    assert_eq!(
        post_with_media(&app, &alice, "ok", &all[..4])
            .await
            .status(),
        200
    );
    let res = post_with_media(&app, &alice, "again", &[all[0]]).await;
    check(
        res.status().as_u16(),
        &res.json().await.unwrap(),
        422,
        "attached elsewhere",
    );
    // Someone else's upload is not found at all.
    let res = app
        .get_raw(&alice.token, &format!("/api/v1/media/{bobs}"))
        .await;
    check(
        res.status().as_u16(),
        &res.json().await.unwrap(),
        404,
        "other's media",
    );
    // An unattached upload can be deleted, files and all.
    let before = stored_files(&app).len();
    let res = app
        .http
        .delete(format!("{}/api/v1/media/{}", app.base, all[4]))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        stored_files(&app).len(),
        before - 2,
        "original and preview removed"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_post_removes_its_files() {
    let mut app = spawn_app().await;
    let alice = app.register("del_alice").await;
    let m = upload(&app, &alice, "a.png", &png(30, 30), &[]).await;
    let url = local(&app, m["url"].as_str().unwrap());
    let post: Value = post_with_media(&app, &alice, "bye", &[m["id"].as_str().unwrap()])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored_files(&app).len(), 2);
    let res = app
        .http
        .delete(format!(
            "{}/api/v1/statuses/{}",
            app.base,
            post["id"].as_str().unwrap()
        ))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stored_files(&app).is_empty() {
        assert!(
            Instant::now() < deadline,
            "files left: {:?}",
            stored_files(&app)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), 404);
    let res = app
        .get_raw(
            &alice.token,
            &format!("/api/v1/media/{}", m["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_worker_killed_mid_job_leaves_the_upload_to_the_next_one() {
    // The api node runs no media worker: uploads wait for one.
    let mut app = spawn_app_roles(&[Role::Api, Role::Fanout, Role::Indexer], |_| {}).await;
    let alice = app.register("kill_alice").await;
    let big = png(4000, 3000);
    let res = upload_raw(
        &app,
        &alice,
        "/api/v2/media",
        multipart(Some(("big.png", &big)), &[]),
    )
    .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let worker = app.spawn_role_node(2, &[Role::Media], |_| {}).await;
    // Kill it as soon as it holds the job (delivered, not acked).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = app.node().bus.consumer_stats("media").await;
        if stats.is_ok_and(|s| s.ack_pending > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never took the job");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.kill();
    let res = app
        .get_raw(&alice.token, &format!("/api/v1/media/{id}"))
        .await;
    assert_eq!(res.status(), 206, "killed mid-job, so still processing");

    // Another worker takes it over after the ack wait and finishes it.
    let next = app.spawn_role_node(3, &[Role::Media], |_| {}).await;
    let media = processed(&app, &alice, &id).await;
    assert_eq!(media["meta"]["original"]["width"], 3325);
    let url = local(&app, media["url"].as_str().unwrap());
    let bytes = app
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let img = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!((img.width(), img.height()), (3325, 2494));
    // Exactly the processed files remain: no raw upload, nothing staged.
    let files = stored_files(&app);
    assert_eq!(files.len(), 2, "{files:?}");
    next.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_avatar_and_header_are_served() {
    let mut app = spawn_app().await;
    let alice = app.register("avatar_alice").await;
    let me = app
        .get(&alice.token, "/api/v1/accounts/verify_credentials")
        .await;
    for (field, size) in [
        ("avatar", (400, 400)),
        ("avatar_static", (400, 400)),
        ("header", (1500, 500)),
        ("header_static", (1500, 500)),
    ] {
        let res = app
            .http
            .get(local(&app, me[field].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{field}");
        assert_eq!(res.headers()["content-type"], "image/png");
        let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), size, "{field}");
    }
    app.stop().await;
}

/// A multipart body with files under the given field names.
fn multipart_files(files: &[(&str, &[u8])], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avatars_and_headers_are_cropped_served_and_replaced() {
    let mut app = spawn_app().await;
    let alice = app.register("face_alice").await;
    let patch = |body: Vec<u8>| {
        app.http
            .patch(format!("{}/api/v1/accounts/update_credentials", app.base))
            .bearer_auth(&alice.token)
            .header("content-type", content_type())
            .body(body)
    };
    let res = patch(multipart_files(
        &[("avatar", &png(900, 600)), ("header", &png(3000, 1000))],
        &[],
    ))
    .send()
    .await
    .unwrap();
    let status = res.status();
    let me: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{me}");
    let avatar = me["avatar"].as_str().unwrap().to_owned();
    assert!(!avatar.contains("missing.png"), "{avatar}");
    assert_eq!(me["avatar_static"], avatar.as_str());
    for (url, size) in [
        (avatar.as_str(), (400, 400)),
        (me["header"].as_str().unwrap(), (1500, 500)),
    ] {
        let res = app.http.get(local(&app, url)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), size, "{url}");
    }
    // Other readers see it too (the account's rendering was forgotten).
    let shown = app
        .get(&alice.token, &format!("/api/v1/accounts/{}", alice.id))
        .await;
    assert_eq!(shown["avatar"], avatar.as_str());

    // A new avatar replaces the old file.
    let res = patch(multipart_files(&[("avatar", &png(50, 80))], &[]))
        .send()
        .await
        .unwrap();
    let me: Value = res.json().await.unwrap();
    assert_ne!(me["avatar"], avatar.as_str());
    assert_eq!(
        app.http
            .get(local(&app, &avatar))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Bad input: not a picture. Text parts beside (or without) pictures edit the profile.
    let res = patch(multipart_files(
        &[("avatar", b"PK\x03\x04 zip zip zip zip zip zip".as_slice())],
        &[],
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 415);
    let res = patch(multipart_files(&[], &[("display_name", "Alice")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["display_name"], "Alice");
    let res = app
        .http
        .patch(format!("{}/api/v1/accounts/update_credentials", app.base))
        .bearer_auth(&alice.token)
        .form(&[("note", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["note"], "<p>hi</p>");

    // Back to the default image.
    let res = app
        .http
        .delete(format!("{}/api/v1/profile/avatar", app.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    let me: Value = res.json().await.unwrap();
    assert!(
        me["avatar"]
            .as_str()
            .unwrap()
            .ends_with("/avatars/original/missing.png")
    );
    assert_eq!(stored_files(&app).len(), 1, "only the header is left");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_media_usage_and_orphan_removal() {
    let mut app = spawn_app().await;
    let alice = app.register("adm_alice").await;
    let config = crate::admin::app_config(&app);
    let kept = upload(&app, &alice, "kept.png", &png(20, 20), &[]).await;
    post_with_media(&app, &alice, "kept", &[kept["id"].as_str().unwrap()]).await;
    let loose = upload(&app, &alice, "loose.png", &png(20, 20), &[]).await;
    // A file nothing names (left by a crash, say).
    let stray = app
        .dir()
        .join("media")
        .join("0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("original.png"), b"stray").unwrap();

    let usage = crate::admin::admin_json(&config, &["media", "usage"]).await;
    assert_eq!(usage["uploads"], 2, "{usage}");
    assert_eq!(usage["attached"], 1);
    assert_eq!(
        usage["files"], 5,
        "two uploads of two files each and the stray one"
    );

    // Nothing is older than an hour yet; with --older-than 0 the loose upload and the stray
    // file go, the attached upload stays.
    let none =
        crate::admin::admin_json(&config, &["media", "remove-orphans", "--older-than", "1"]).await;
    assert_eq!(
        (
            none["unattached_uploads"].as_u64(),
            none["orphan_files"].as_u64()
        ),
        (Some(0), Some(0)),
        "{none}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dry = crate::admin::admin_json(
        &config,
        &["media", "remove-orphans", "--older-than", "0", "--dry-run"],
    )
    .await;
    assert_eq!(dry["orphan_files"], 1, "{dry}");
    assert_eq!(stored_files(&app).len(), 5);
    let done =
        crate::admin::admin_json(&config, &["media", "remove-orphans", "--older-than", "0"]).await;
    assert_eq!(
        (
            done["unattached_uploads"].as_u64(),
            done["orphan_files"].as_u64()
        ),
        (Some(1), Some(1)),
        "{done}"
    );
    assert_eq!(
        stored_files(&app).len(),
        2,
        "only the attached upload's files"
    );
    let res = app
        .get_raw(
            &alice.token,
            &format!("/api/v1/media/{}", loose["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(res.status(), 404);
    app.stop().await;
}

/// With `media.backend = "s3"` (when `S3_ENDPOINT` names an S3-compatible server; skipped
/// with a message otherwise): an upload is processed into the bucket, the attachment's and
/// the avatar's URLs point at `media.public_url`, the files are fetched back from there and
/// decoded, and deleting the post removes its objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_s3_storage_files_live_in_the_bucket_and_are_served_from_its_public_url() {
    use starling_schema::settings::{MediaBackend, S3Settings};
    let Some(bucket) = starling_testkit::S3Bucket::from_env("the S3 end-to-end media test") else {
        return;
    };
    let public = bucket.public_url();
    let b = bucket.clone();
    let mut app = crate::helpers::spawn_app_with(move |s| {
        s.media.backend = MediaBackend::S3;
        s.media.public_url = b.public_url();
        s.media.s3 = S3Settings {
            bucket: b.bucket.clone(),
            endpoint: b.endpoint.clone(),
            region: b.region.clone(),
            prefix: b.prefix.clone(),
            access_key_id: Some(b.access_key_id.clone()),
            secret_access_key: Some(b.secret_access_key.clone()),
            ..S3Settings::default()
        };
    })
    .await;
    let alice = app.register("s3_alice").await;
    let media = upload(&app, &alice, "big.png", &png(1200, 900), &[]).await;
    assert_eq!(media["meta"]["original"]["width"], 1200);
    let url = media["url"].as_str().unwrap().to_owned();
    let preview = media["preview_url"].as_str().unwrap().to_owned();
    for u in [&url, &preview] {
        assert!(
            u.starts_with(&format!("{public}/")),
            "{u} is not under {public}"
        );
        // Fetched from the bucket, not from Starling.
        let res = app.http.get(u).send().await.unwrap();
        assert_eq!(res.status(), 200, "{u}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("image/"), "{u}: {ct}");
        let img = image::load_from_memory(&res.bytes().await.unwrap()).expect("decodes");
        let got = (img.width(), img.height());
        if u == &url {
            assert_eq!(got, (1200, 900), "{u}");
        } else {
            assert!(
                got.0 * got.1 <= 640 * 640 && got.0 > got.1,
                "preview {got:?}"
            );
        }
    }
    // Nothing of it is on the local disk but the (empty) staging directory.
    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));

    // Avatars go to the bucket too.
    let res = app
        .http
        .patch(format!("{}/api/v1/accounts/update_credentials", app.base))
        .bearer_auth(&alice.token)
        .header("content-type", content_type())
        .body(multipart_files(&[("avatar", &png(500, 500))], &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    let avatar = me["avatar"].as_str().unwrap();
    assert!(avatar.starts_with(&format!("{public}/")), "{avatar}");
    let res = app.http.get(avatar).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (400, 400));

    // The admin commands see the bucket: usage counts its objects, doctor checks it.
    let config = crate::admin::app_config(&app);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[media]\nbackend = \"s3\"\npath = {:?}\npublic_url = {:?}\n[media.s3]\nbucket = {:?}\n\
         endpoint = {:?}\nregion = {:?}\nprefix = {:?}\naccess_key_id = {:?}\n\
         secret_access_key = {:?}\n",
        app.dir().join("media"),
        public,
        bucket.bucket,
        bucket.endpoint,
        bucket.region,
        bucket.prefix,
        bucket.access_key_id,
        bucket.secret_access_key,
    ));
    std::fs::write(&config, text).unwrap();
    let usage = crate::admin::admin_json(&config, &["media", "usage"]).await;
    assert_eq!(usage["files"], 3, "original, preview and avatar: {usage}");
    let doctor = crate::admin::admin_json(&config, &["doctor"]).await;
    let checks = doctor.to_string();
    assert!(
        checks.contains(&format!("media storage (s3 bucket {}", bucket.bucket)),
        "{checks}"
    );

    // Attached, shown with the bucket's URL, then deleted: the objects go.
    let post: Value = post_with_media(&app, &alice, "from s3", &[media["id"].as_str().unwrap()])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["media_attachments"][0]["url"], url.as_str());
    let res = app
        .http
        .delete(format!(
            "{}/api/v1/statuses/{}",
            app.base,
            post["id"].as_str().unwrap()
        ))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    for u in [&url, &preview] {
        while app.http.get(u).send().await.unwrap().status() != 404 {
            assert!(Instant::now() < deadline, "{u} still served");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app.stop().await;
}
