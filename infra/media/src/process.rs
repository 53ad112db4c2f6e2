//! Turning an upload into the files that are served. Pure: bytes in, bytes out.
//!
//! Images (JPEG, PNG, WebP) are decoded with the `image` crate after their header is
//! checked ([`starling_schema::media::check_declared_size`]: an image bomb is refused
//! before a pixel is decoded, and the decoder runs under allocation limits), turned upright
//! by their EXIF orientation, scaled to at most
//! [`ORIGINAL_MAX_PIXELS`](starling_schema::media::ORIGINAL_MAX_PIXELS) and re-encoded,
//! which drops every metadata block (EXIF, GPS, XMP, ICC, comments). A JPEG preview of at
//! most [`PREVIEW_MAX_PIXELS`](starling_schema::media::PREVIEW_MAX_PIXELS) and a blurhash
//! are made from the same pixels. An animated GIF is kept as uploaded with a preview of
//! its first frame. Video and audio are kept as uploaded: no tool to transcode or probe
//! them is assumed (Mastodon uses `ffmpeg`), so their `meta` has no duration.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use starling_schema::media::{
    DECODE_MAX_SIDE, Dimensions, MediaKind, MediaMeta, ORIGINAL_MAX_PIXELS, PREVIEW_MAX_PIXELS,
    check_declared_size, fit_pixels,
};

use crate::sniff::extension;
use crate::{MediaError, Result};

/// Most memory one decode may allocate.
const DECODE_MAX_ALLOC: u64 = 512 << 20;
/// JPEG quality of re-encoded originals and previews.
const JPEG_QUALITY: u8 = 85;
const PREVIEW_QUALITY: u8 = 80;
/// Blurhash components (Mastodon's 4×3) and the side of the image it is computed from.
const BLURHASH_X: u32 = 4;
const BLURHASH_Y: u32 = 3;
const BLURHASH_SIDE: u32 = 32;

/// What processing makes of an upload.
#[derive(Debug)]
pub struct Processed {
    /// The file to serve as `url`, its content type and file extension.
    pub file: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
    /// The preview (`preview_url`), a JPEG, when there is a picture to show.
    pub preview: Option<Vec<u8>>,
    pub meta: MediaMeta,
    pub blurhash: Option<String>,
}

fn rejected(what: impl std::fmt::Display) -> MediaError {
    MediaError::Rejected(what.to_string())
}

fn format_of(content_type: &str) -> Option<ImageFormat> {
    Some(match content_type {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        "image/webp" => ImageFormat::WebP,
        "image/gif" => ImageFormat::Gif,
        _ => return None,
    })
}

/// The width and height an image declares in its header, read without decoding pixels.
pub fn declared_size(bytes: &[u8], content_type: &str) -> Result<(u32, u32)> {
    let format = format_of(content_type).ok_or_else(|| rejected("file is not an image"))?;
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader
        .into_dimensions()
        .map_err(|e| rejected(format!("file is not a readable image: {e}")))
}

/// [`declared_size`] of a file on disk: reads only as far as the header.
pub fn declared_size_of_file(path: &std::path::Path, content_type: &str) -> Result<(u32, u32)> {
    let format = format_of(content_type).ok_or_else(|| rejected("file is not an image"))?;
    let file = std::fs::File::open(path).map_err(MediaError::io("reading an upload"))?;
    let reader = ImageReader::with_format(std::io::BufReader::new(file), format);
    reader
        .into_dimensions()
        .map_err(|e| rejected(format!("file is not a readable image: {e}")))
}

/// Decode `bytes` after checking the header, upright.
fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(DECODE_MAX_ALLOC);
    reader.limits(limits.clone());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| rejected(format!("file is not a readable image: {e}")))?;
    let (w, h) = decoder.dimensions();
    check_declared_size(w, h).map_err(|e| rejected(e.reason))?;
    // The decoder itself holds to the same bounds while it decodes.
    limits.max_image_width = Some(DECODE_MAX_SIDE);
    limits.max_image_height = Some(DECODE_MAX_SIDE);
    decoder
        .set_limits(limits)
        .map_err(|e| rejected(format!("image is too large to decode: {e}")))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| rejected(format!("image is corrupt or truncated: {e}")))?;
    img.apply_orientation(orientation);
    Ok(img)
}

fn jpeg(img: &DynamicImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let rgb = img.to_rgb8();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    rgb.write_with_encoder(encoder)
        .map_err(|e| rejected(format!("could not encode the image: {e}")))?;
    Ok(out)
}

fn png(img: &DynamicImage) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| rejected(format!("could not encode the image: {e}")))?;
    Ok(out.into_inner())
}

fn dims(img: &DynamicImage) -> Dimensions {
    Dimensions {
        width: img.width(),
        height: img.height(),
    }
}

/// A preview no larger than [`PREVIEW_MAX_PIXELS`], and the blurhash of the picture.
fn preview_and_hash(img: &DynamicImage) -> Result<(DynamicImage, Vec<u8>, Option<String>)> {
    let (pw, ph) = fit_pixels(img.width(), img.height(), PREVIEW_MAX_PIXELS);
    let small = if (pw, ph) == (img.width(), img.height()) {
        img.clone()
    } else {
        img.thumbnail_exact(pw, ph)
    };
    let preview = jpeg(&small, PREVIEW_QUALITY)?;
    let tiny = small.thumbnail(BLURHASH_SIDE, BLURHASH_SIDE).to_rgba8();
    let hash = blurhash::encode(
        BLURHASH_X,
        BLURHASH_Y,
        tiny.width(),
        tiny.height(),
        tiny.as_raw(),
    )
    .ok();
    Ok((small, preview, hash))
}

/// Process an upload of `kind` and sniffed `content_type`. CPU-bound: run it on a
/// blocking thread. A [`MediaError::Rejected`] says why the file cannot be used.
pub fn process(bytes: &[u8], kind: MediaKind, content_type: &str) -> Result<Processed> {
    match kind {
        MediaKind::Image => {
            let format = format_of(content_type).ok_or_else(|| rejected("file is not an image"))?;
            let mut img = decode(bytes, format)?;
            let (w, h) = fit_pixels(img.width(), img.height(), ORIGINAL_MAX_PIXELS);
            if (w, h) != (img.width(), img.height()) {
                img = img.thumbnail_exact(w, h);
            }
            let (file, content_type) = match format {
                ImageFormat::Jpeg => (jpeg(&img, JPEG_QUALITY)?, "image/jpeg"),
                _ => (png(&img)?, "image/png"),
            };
            let (small, preview, blurhash) = preview_and_hash(&img)?;
            Ok(Processed {
                file,
                content_type,
                extension: extension(content_type),
                preview: Some(preview),
                meta: MediaMeta {
                    original: Some(dims(&img)),
                    small: Some(dims(&small)),
                    duration_secs: None,
                },
                blurhash,
            })
        }
        MediaKind::Gifv => {
            // The first frame shows what it is; the animation is served as uploaded.
            let first = decode(bytes, ImageFormat::Gif)?;
            let (small, preview, blurhash) = preview_and_hash(&first)?;
            Ok(Processed {
                file: bytes.to_vec(),
                content_type: "image/gif",
                extension: "gif",
                preview: Some(preview),
                meta: MediaMeta {
                    original: Some(dims(&first)),
                    small: Some(dims(&small)),
                    duration_secs: None,
                },
                blurhash,
            })
        }
        MediaKind::Video | MediaKind::Audio => {
            let content_type = starling_schema::media::ACCEPTED_TYPES
                .iter()
                .find(|(t, _)| *t == content_type)
                .map(|(t, _)| *t)
                .ok_or_else(|| rejected("file type is not supported"))?;
            Ok(Processed {
                file: bytes.to_vec(),
                content_type,
                extension: extension(content_type),
                preview: None,
                meta: MediaMeta::default(),
                blurhash: None,
            })
        }
    }
}

/// An avatar or header: the picture (first frame of a GIF) turned upright, cropped to the
/// aspect of `target` around its centre, scaled down to fit `target`, re-encoded (PNG from
/// PNG, WebP and GIF; JPEG from JPEG) without metadata. Returns the bytes and extension.
pub fn profile_image(
    bytes: &[u8],
    content_type: &str,
    target: (u32, u32),
) -> Result<(Vec<u8>, &'static str)> {
    let format = format_of(content_type)
        .ok_or_else(|| rejected("must be a JPEG, PNG, WebP or GIF picture"))?;
    let img = decode(bytes, format)?;
    let (x, y, w, h) = starling_schema::media::cover_crop(img.width(), img.height(), target);
    let mut img = img.crop_imm(x, y, w, h);
    if w > target.0 || h > target.1 {
        img = img.thumbnail_exact(target.0, target.1);
    }
    Ok(match format {
        ImageFormat::Jpeg => (jpeg(&img, JPEG_QUALITY)?, "jpg"),
        _ => (png(&img)?, "png"),
    })
}

/// A plain PNG of one colour: the default avatar and header, so no account points at a
/// missing file.
pub fn placeholder_png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb(rgb)));
    png(&img).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn png_of(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }));
        png(&img).unwrap()
    }

    #[test]
    fn images_are_scaled_previewed_and_hashed() {
        let out = process(&png_of(1200, 800), MediaKind::Image, "image/png").unwrap();
        assert_eq!(out.content_type, "image/png");
        let original = out.meta.original.unwrap();
        assert_eq!((original.width, original.height), (1200, 800));
        let small = out.meta.small.unwrap();
        assert!(u64::from(small.width) * u64::from(small.height) <= PREVIEW_MAX_PIXELS);
        assert_eq!(out.blurhash.as_deref().map(str::len), Some(28));
        let preview = image::load_from_memory(out.preview.as_deref().unwrap()).unwrap();
        assert_eq!(
            (preview.width(), preview.height()),
            (small.width, small.height)
        );
    }

    #[test]
    fn profile_images_are_cropped_to_their_shape() {
        let (bytes, ext) = profile_image(&png_of(900, 600), "image/png", (400, 400)).unwrap();
        assert_eq!(ext, "png");
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (400, 400));
        let (bytes, _) = profile_image(&png_of(300, 300), "image/png", (1500, 500)).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (300, 100),
            "small pictures are not enlarged"
        );
    }

    #[test]
    fn truncated_and_foreign_files_are_rejected() {
        let mut bytes = png_of(300, 300);
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(
            process(&bytes, MediaKind::Image, "image/png"),
            Err(MediaError::Rejected(_))
        ));
        assert!(matches!(
            process(b"PK\x03\x04 not an image", MediaKind::Image, "image/png"),
            Err(MediaError::Rejected(_))
        ));
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

    #[test]
    fn a_bomb_is_refused_by_its_header() {
        // A valid PNG header declaring 60000×60000 pixels and nothing else.
        let bytes = png_declaring(png_of(1, 1), 60_000, 60_000);
        assert_eq!(
            declared_size(&bytes, "image/png").unwrap(),
            (60_000, 60_000)
        );
        let err = process(&bytes, MediaKind::Image, "image/png").unwrap_err();
        assert!(
            matches!(&err, MediaError::Rejected(r) if r.contains("declares 60000x60000")),
            "{err:?}"
        );
    }
}
