//! What an upload is, from its first bytes. The file name and the client's content type
//! are never trusted: a zip renamed `.png` is a zip, an SVG or HTML file is refused.

use starling_schema::media::{MediaKind, kind_of};

/// Bytes needed to recognise every accepted format.
pub const SNIFF_BYTES: usize = 8_192;

/// The accepted content type and kind of a file starting with `head`, or `None`.
pub fn sniff(head: &[u8]) -> Option<(&'static str, MediaKind)> {
    let mime = infer::get(head)?.mime_type();
    // `infer` names some types differently from what we serve them as.
    let mime = match mime {
        "audio/x-flac" => "audio/flac",
        "audio/x-wav" => "audio/wav",
        "audio/m4a" | "audio/x-m4a" => "audio/mp4",
        "video/x-m4v" => "video/mp4",
        other => other,
    };
    kind_of(mime).map(|k| (canonical(mime), k))
}

/// The `&'static str` of an accepted type.
fn canonical(mime: &str) -> &'static str {
    starling_schema::media::ACCEPTED_TYPES
        .iter()
        .find(|(t, _)| *t == mime)
        .map_or("application/octet-stream", |(t, _)| t)
}

/// The file extension a stored file of this type gets (served with the matching type).
pub fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/mp4" => "m4a",
        "audio/webm" => "weba",
        _ => "bin",
    }
}

/// The content type a stored file is served as, from its extension. Only types a browser
/// shows and never runs; anything else is `application/octet-stream`.
pub fn served_type(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, e)| e) {
        Some("jpg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("flac") => "audio/flac",
        Some("m4a") => "audio/mp4",
        Some("weba") => "audio/webm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let cases: &[(&[u8], Option<&str>)] = &[
            (png, Some("image/png")),
            (b"\xff\xd8\xff\xe0\0\x10JFIF\0", Some("image/jpeg")),
            (b"GIF89a\x01\0\x01\0", Some("image/gif")),
            (b"PK\x03\x04\x14\0\0\0", None),
            (b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", None),
            (b"<!DOCTYPE html><html><script>", None),
            (b"", None),
            (b"ID3\x03\0\0\0\0\0\0", Some("audio/mpeg")),
        ];
        for (bytes, want) in cases {
            assert_eq!(sniff(bytes).map(|(t, _)| t), *want, "{bytes:?}");
        }
    }

    #[test]
    fn served_types_never_run() {
        assert_eq!(served_type("abc/original.jpg"), "image/jpeg");
        assert_eq!(served_type("abc/upload"), "application/octet-stream");
        assert_eq!(served_type("abc/x.svg"), "application/octet-stream");
        assert_eq!(served_type("abc/x.html"), "application/octet-stream");
        for (t, _) in starling_schema::media::ACCEPTED_TYPES {
            let ext = extension(t);
            assert_ne!(ext, "bin", "{t}");
            assert!(served_type(&format!("k.{ext}")).split('/').next() == t.split('/').next());
        }
    }
}
