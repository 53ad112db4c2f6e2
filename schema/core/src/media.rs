//! Media attachments: what an upload is, the rules for attaching it to a post, and the
//! sizes Mastodon resizes images to. Plain data and pure functions; the media crate does the
//! decoding and storing, the store keeps the records.

use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::Id;

/// Most attachments on one post (Mastodon's limit).
pub const MAX_ATTACHMENTS: usize = 4;
/// Longest description (alt text), in characters (Mastodon: 1,500).
pub const MAX_DESCRIPTION_CHARS: usize = 1_500;
/// Largest processed original: 3840×2160 pixels' worth (Mastodon's `pixels: 8_294_400`).
pub const ORIGINAL_MAX_PIXELS: u64 = 8_294_400;
/// Largest preview (`small`): 640×640 pixels' worth.
pub const PREVIEW_MAX_PIXELS: u64 = 409_600;
/// Most pixels an uploaded image may declare in its header before anything is decoded: a
/// few bytes that claim more are an image bomb and refused unread. 64 megapixels, well
/// above any camera that people post from.
pub const DECODE_MAX_PIXELS: u64 = 64_000_000;
/// Longest side an uploaded image may declare.
pub const DECODE_MAX_SIDE: u32 = 16_384;
/// Avatars are cropped to this square, headers to this banner (Mastodon's sizes).
pub const AVATAR_SIZE: (u32, u32) = (400, 400);
pub const HEADER_SIZE: (u32, u32) = (1500, 500);
/// How long an upload may stay unattached before it is removed.
pub const UNATTACHED_TTL_MS: u64 = 24 * 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    /// An animated GIF (Mastodon converts those to silent video; stored as the GIF here).
    Gifv,
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Gifv => "gifv",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

/// Where an upload is in its processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    /// Stored as uploaded; a media worker has not finished with it yet.
    Processing,
    /// Processed: its files and meta are final.
    Ready,
    /// Processing refused it (corrupt, an image bomb); `error` says why.
    Failed,
}

/// The content types accepted, the kind each becomes, and the largest size class it
/// falls in (`false`: image limit, `true`: video limit).
pub const ACCEPTED_TYPES: &[(&str, MediaKind)] = &[
    ("image/jpeg", MediaKind::Image),
    ("image/png", MediaKind::Image),
    ("image/webp", MediaKind::Image),
    ("image/gif", MediaKind::Gifv),
    ("video/mp4", MediaKind::Video),
    ("video/quicktime", MediaKind::Video),
    ("video/webm", MediaKind::Video),
    ("audio/mpeg", MediaKind::Audio),
    ("audio/ogg", MediaKind::Audio),
    ("audio/wav", MediaKind::Audio),
    ("audio/x-wav", MediaKind::Audio),
    ("audio/flac", MediaKind::Audio),
    ("audio/x-flac", MediaKind::Audio),
    ("audio/mp4", MediaKind::Audio),
    ("audio/webm", MediaKind::Audio),
];

/// The kind of media a (sniffed) content type is, or `None` if it is not accepted.
pub fn kind_of(content_type: &str) -> Option<MediaKind> {
    ACCEPTED_TYPES
        .iter()
        .find(|(t, _)| *t == content_type)
        .map(|(_, k)| *k)
}

/// Whether `kind` is bound by the image size limit (images and GIFs) rather than the
/// video one (video and audio).
pub fn uses_image_limit(kind: MediaKind) -> bool {
    matches!(kind, MediaKind::Image | MediaKind::Gifv)
}

/// Width and height of a stored image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

/// What processing learnt about a file (`meta` in the Attachment entity).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaMeta {
    pub original: Option<Dimensions>,
    pub small: Option<Dimensions>,
    /// Length of a video or audio file, in seconds, where it could be read.
    pub duration_secs: Option<f64>,
}

/// Where in an image the important part is, from -1.0 to 1.0 on each axis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Focus {
    pub x: f64,
    pub y: f64,
}

/// An upload: its record in the store. The files are in media storage under its keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaAttachment {
    pub id: Id,
    /// Who uploaded it: only they may change, delete or attach it.
    pub account_id: Id,
    pub kind: MediaKind,
    pub state: MediaState,
    /// Content type of the file under `file_key`, sniffed from its bytes.
    pub content_type: String,
    /// The bytes as uploaded, until processing replaces them.
    pub upload_key: Option<String>,
    /// The processed file (metadata stripped), served as `url`.
    pub file_key: Option<String>,
    /// The preview image, served as `preview_url`.
    pub preview_key: Option<String>,
    pub description: Option<String>,
    pub focus: Option<Focus>,
    pub meta: MediaMeta,
    pub blurhash: Option<String>,
    /// Bytes as uploaded.
    pub size_bytes: u64,
    /// Why processing refused it.
    pub error: Option<String>,
    /// The post it is attached to, once attached (then it never changes again).
    pub post_id: Option<Id>,
    pub created_at_ms: u64,
}

impl MediaAttachment {
    /// Every storage key this upload owns.
    pub fn keys(&self) -> Vec<&str> {
        [&self.upload_key, &self.file_key, &self.preview_key]
            .into_iter()
            .filter_map(|k| k.as_deref())
            .collect()
    }
}

/// What an upload supplies; the store assigns the id and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMedia {
    pub account_id: Id,
    pub kind: MediaKind,
    pub content_type: String,
    pub upload_key: String,
    pub description: Option<String>,
    pub focus: Option<Focus>,
    pub size_bytes: u64,
}

/// An account's avatar and header, as storage keys of processed images (`None`: the
/// default image).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileImages {
    pub avatar_key: Option<String>,
    pub header_key: Option<String>,
}

/// The centred region of a `width`×`height` image with the aspect ratio of `target`, as
/// `(x, y, w, h)`: what is cropped before scaling to an avatar or header size.
pub fn cover_crop(width: u32, height: u32, target: (u32, u32)) -> (u32, u32, u32, u32) {
    let (tw, th) = (u64::from(target.0.max(1)), u64::from(target.1.max(1)));
    let (w, h) = (u64::from(width), u64::from(height));
    if w * th > h * tw {
        // Too wide: keep the full height.
        let cw = (h * tw / th).max(1);
        let x = (w - cw) / 2;
        (x as u32, 0, cw as u32, height)
    } else {
        let ch = (w * th / tw).max(1);
        let y = (h - ch) / 2;
        (0, y as u32, width, ch as u32)
    }
}

impl NewMedia {
    /// The record of a new upload, waiting for processing.
    pub fn into_record(self, id: Id, created_at_ms: u64) -> MediaAttachment {
        MediaAttachment {
            id,
            account_id: self.account_id,
            kind: self.kind,
            state: MediaState::Processing,
            content_type: self.content_type,
            upload_key: Some(self.upload_key),
            file_key: None,
            preview_key: None,
            description: self.description,
            focus: self.focus,
            meta: MediaMeta::default(),
            blurhash: None,
            size_bytes: self.size_bytes,
            error: None,
            post_id: None,
            created_at_ms,
        }
    }
}

/// Why an upload may not be attached to a post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachRefusal {
    #[error("media not found")]
    NotFound,
    #[error("media belongs to another account")]
    NotOwner,
    #[error("media is already attached to another post")]
    AttachedElsewhere,
    #[error("media has not finished processing")]
    Processing,
    #[error("media could not be processed")]
    Failed,
}

/// Whether `account` may attach `media` to `post`. Attaching to the post it is already
/// attached to is allowed (a retried request).
pub fn check_attach(
    media: Option<&MediaAttachment>,
    account: Id,
    post: Id,
) -> Result<(), AttachRefusal> {
    let m = media.ok_or(AttachRefusal::NotFound)?;
    if m.account_id != account {
        return Err(AttachRefusal::NotOwner);
    }
    match m.post_id {
        Some(p) if p != post => return Err(AttachRefusal::AttachedElsewhere),
        _ => {}
    }
    match m.state {
        MediaState::Ready => Ok(()),
        MediaState::Processing => Err(AttachRefusal::Processing),
        MediaState::Failed => Err(AttachRefusal::Failed),
    }
}

/// The ids of `media_ids[]` on a new post: at most [`MAX_ATTACHMENTS`], duplicates dropped
/// (order kept).
pub fn media_ids(ids: &[Id]) -> Result<Vec<Id>, Invalid> {
    let mut out: Vec<Id> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    if out.len() > MAX_ATTACHMENTS {
        return Err(Invalid::new(
            "media_ids",
            format!("at most {MAX_ATTACHMENTS} attachments per post"),
        ));
    }
    Ok(out)
}

/// A description as given, trimmed; too long is refused.
pub fn description(text: &str) -> Result<Option<String>, Invalid> {
    let t = text.trim();
    if t.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Invalid::new(
            "description",
            format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

/// `focus` as Mastodon sends it: `"x,y"`, each from -1.0 to 1.0.
pub fn focus(text: &str) -> Result<Option<Focus>, Invalid> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || Invalid::new("focus", "must be two numbers from -1.0 to 1.0, as \"x,y\"");
    let (x, y) = t.split_once(',').ok_or_else(bad)?;
    let x: f64 = x.trim().parse().map_err(|_| bad())?;
    let y: f64 = y.trim().parse().map_err(|_| bad())?;
    if !(-1.0..=1.0).contains(&x) || !(-1.0..=1.0).contains(&y) {
        return Err(bad());
    }
    Ok(Some(Focus { x, y }))
}

/// Refuse an image whose header declares more than we will decode (an image bomb).
pub fn check_declared_size(width: u32, height: u32) -> Result<(), Invalid> {
    if width == 0 || height == 0 {
        return Err(Invalid::new("file", "is an image without pixels"));
    }
    if width > DECODE_MAX_SIDE
        || height > DECODE_MAX_SIDE
        || u64::from(width) * u64::from(height) > DECODE_MAX_PIXELS
    {
        return Err(Invalid::new(
            "file",
            format!(
                "declares {width}x{height} pixels; at most {DECODE_MAX_PIXELS} pixels and {DECODE_MAX_SIDE} per side are accepted"
            ),
        ));
    }
    Ok(())
}

/// The size to scale `width`×`height` down to so it holds at most `max_pixels`, keeping
/// the aspect ratio; unchanged if it already fits. Never smaller than 1×1.
pub fn fit_pixels(width: u32, height: u32, max_pixels: u64) -> (u32, u32) {
    let pixels = u64::from(width) * u64::from(height);
    if pixels <= max_pixels || pixels == 0 {
        return (width, height);
    }
    #[allow(clippy::cast_precision_loss)]
    let scale = (max_pixels as f64 / pixels as f64).sqrt();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let shrink = |v: u32| ((f64::from(v) * scale).floor() as u32).max(1);
    let (mut w, mut h) = (shrink(width), shrink(height));
    // A side clamped to one pixel leaves the other to fit alone.
    let cap = |other: u32| {
        u32::try_from(max_pixels / u64::from(other))
            .unwrap_or(u32::MAX)
            .max(1)
    };
    if u64::from(w) * u64::from(h) > max_pixels {
        if w >= h {
            w = w.min(cap(h));
        } else {
            h = h.min(cap(w));
        }
    }
    (w, h)
}

/// The aspect ratio Mastodon reports (`width / height`).
pub fn aspect(d: Dimensions) -> f64 {
    if d.height == 0 {
        0.0
    } else {
        f64::from(d.width) / f64::from(d.height)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn media(owner: u64, post: Option<u64>, state: MediaState) -> MediaAttachment {
        MediaAttachment {
            id: Id(1),
            account_id: Id(owner),
            kind: MediaKind::Image,
            state,
            content_type: "image/png".into(),
            upload_key: None,
            file_key: Some("k".into()),
            preview_key: None,
            description: None,
            focus: None,
            meta: MediaMeta::default(),
            blurhash: None,
            size_bytes: 1,
            error: None,
            post_id: post.map(Id),
            created_at_ms: 0,
        }
    }

    #[test]
    fn attach_rules() {
        use AttachRefusal::*;
        let cases: &[(Option<MediaAttachment>, Result<(), AttachRefusal>)] = &[
            (None, Err(NotFound)),
            (Some(media(2, None, MediaState::Ready)), Err(NotOwner)),
            (
                Some(media(1, Some(9), MediaState::Ready)),
                Err(AttachedElsewhere),
            ),
            (Some(media(1, Some(5), MediaState::Ready)), Ok(())),
            (Some(media(1, None, MediaState::Ready)), Ok(())),
            (
                Some(media(1, None, MediaState::Processing)),
                Err(Processing),
            ),
            (Some(media(1, None, MediaState::Failed)), Err(Failed)),
        ];
        for (m, want) in cases {
            assert_eq!(check_attach(m.as_ref(), Id(1), Id(5)), *want, "{m:?}");
        }
    }

    #[test]
    fn media_ids_dedup_and_cap() {
        let ids: Vec<Id> = [1, 2, 1, 3, 4].map(Id).to_vec();
        assert_eq!(media_ids(&ids).unwrap(), [1, 2, 3, 4].map(Id).to_vec());
        assert!(media_ids(&[1, 2, 3, 4, 5].map(Id)).is_err());
        assert!(media_ids(&[]).unwrap().is_empty());
    }

    #[test]
    fn fitting_keeps_aspect_and_bounds() {
        let cases = [
            ((4000, 3000), ORIGINAL_MAX_PIXELS, (3325, 2494)),
            ((1000, 1000), ORIGINAL_MAX_PIXELS, (1000, 1000)),
            ((1000, 1000), PREVIEW_MAX_PIXELS, (640, 640)),
            ((100_000, 1), 10, (10, 1)),
        ];
        for ((w, h), max, want) in cases {
            let got = fit_pixels(w, h, max);
            assert_eq!(got, want, "{w}x{h} into {max}");
            assert!(u64::from(got.0) * u64::from(got.1) <= max || got == (w, h));
        }
    }

    #[test]
    fn focus_and_description() {
        assert_eq!(focus("0.5,-1").unwrap(), Some(Focus { x: 0.5, y: -1.0 }));
        assert_eq!(focus("").unwrap(), None);
        for bad in ["2,0", "x,y", "0.5", "0.1,0.2,0.3"] {
            assert!(focus(bad).is_err(), "{bad}");
        }
        assert_eq!(description("  a cat ").unwrap().as_deref(), Some("a cat"));
        assert_eq!(description(" ").unwrap(), None);
        assert!(description(&"x".repeat(1501)).is_err());
    }

    #[test]
    fn crops_cover_the_target_aspect() {
        let cases = [
            ((1000, 500), AVATAR_SIZE, (250, 0, 500, 500)),
            ((500, 1000), AVATAR_SIZE, (0, 250, 500, 500)),
            ((3000, 2000), HEADER_SIZE, (0, 500, 3000, 1000)),
            ((400, 400), AVATAR_SIZE, (0, 0, 400, 400)),
            ((1, 1), HEADER_SIZE, (0, 0, 1, 1)),
        ];
        for ((w, h), target, want) in cases {
            assert_eq!(cover_crop(w, h, target), want, "{w}x{h}");
        }
    }

    #[test]
    fn declared_sizes() {
        assert!(check_declared_size(4000, 3000).is_ok());
        assert!(check_declared_size(0, 10).is_err());
        assert!(check_declared_size(65_535, 65_535).is_err());
        assert!(check_declared_size(16_000, 16_000).is_err());
    }

    #[test]
    fn kinds_by_type() {
        assert_eq!(kind_of("image/png"), Some(MediaKind::Image));
        assert_eq!(kind_of("image/gif"), Some(MediaKind::Gifv));
        assert_eq!(kind_of("video/mp4"), Some(MediaKind::Video));
        assert_eq!(kind_of("application/zip"), None);
        assert_eq!(kind_of("image/svg+xml"), None);
        assert!(uses_image_limit(MediaKind::Gifv));
        assert!(!uses_image_limit(MediaKind::Audio));
    }
}
