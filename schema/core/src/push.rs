//! Web Push subscriptions (Mastodon's push API) and the rules the api and the push worker
//! share: which alerts a subscription takes, which senders its policy lets through, what a
//! subscription's endpoint and keys must look like, and which addresses an endpoint may
//! never reach (the feature must not become a way to probe the internal network).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::ids::Id;

/// The alert names Mastodon knows, in its order. Each is a notification type.
pub const ALERTS: &[&str] = &[
    "mention",
    "status",
    "reblog",
    "follow",
    "follow_request",
    "favourite",
    "poll",
    "update",
    "admin.sign_up",
    "admin.report",
];

/// Which notification types a subscription is pushed, by alert name (a subset of
/// [`ALERTS`], sorted, without repeats).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Alerts(Vec<String>);

impl Alerts {
    /// From `(name, on)` pairs as a request gives them; an unknown name is refused.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> Result<Alerts, Invalid> {
        let mut on = Vec::new();
        for (name, enabled) in pairs {
            let Some(known) = ALERTS.iter().find(|a| **a == name) else {
                return Err(Invalid::new(
                    "data[alerts]",
                    format!("unknown alert {name:?} (known: {})", ALERTS.join(", ")),
                ));
            };
            if enabled {
                on.push((*known).to_owned());
            }
        }
        Ok(Alerts::from_names(on))
    }

    fn from_names(mut names: Vec<String>) -> Alerts {
        names.sort_by_key(|n| ALERTS.iter().position(|a| a == n));
        names.dedup();
        Alerts(names)
    }

    /// These alerts with `changes` applied (PUT changes only the alerts it names).
    pub fn merged(&self, changes: &Alerts, named: &[String]) -> Alerts {
        let mut names: Vec<String> = self
            .0
            .iter()
            .filter(|n| !named.contains(n))
            .cloned()
            .collect();
        names.extend(changes.0.iter().cloned());
        Alerts::from_names(names)
    }

    /// Whether a notification of this type (its Mastodon name) is pushed.
    pub fn allows(&self, notification_type: &str) -> bool {
        self.0.iter().any(|a| a == notification_type)
    }

    /// Every known alert with whether it is on, as Mastodon answers them.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, bool)> + '_ {
        ALERTS.iter().map(|a| (*a, self.allows(a)))
    }
}

/// Whose notifications a subscription is pushed (`data[policy]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushPolicy {
    #[default]
    All,
    /// Only from accounts the recipient follows.
    Followed,
    /// Only from accounts that follow the recipient.
    Follower,
    None,
}

impl PushPolicy {
    pub fn parse(s: &str) -> Result<PushPolicy, Invalid> {
        Ok(match s {
            "all" => PushPolicy::All,
            "followed" => PushPolicy::Followed,
            "follower" => PushPolicy::Follower,
            "none" => PushPolicy::None,
            other => {
                return Err(Invalid::new(
                    "data[policy]",
                    format!("unknown policy {other:?} (known: all, followed, follower, none)"),
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PushPolicy::All => "all",
            PushPolicy::Followed => "followed",
            PushPolicy::Follower => "follower",
            PushPolicy::None => "none",
        }
    }

    /// Whether a notification caused by an actor is pushed, given whether the recipient
    /// follows the actor and the actor follows the recipient.
    pub fn allows(self, recipient_follows_actor: bool, actor_follows_recipient: bool) -> bool {
        match self {
            PushPolicy::All => true,
            PushPolicy::Followed => recipient_follows_actor,
            PushPolicy::Follower => actor_follows_recipient,
            PushPolicy::None => false,
        }
    }

    /// Whether deciding needs the relationship between recipient and actor.
    pub fn needs_relationship(self) -> bool {
        matches!(self, PushPolicy::Followed | PushPolicy::Follower)
    }
}

/// One access token's Web Push subscription. Kept under the token's digest, never the
/// token; the token itself (which Mastodon puts in every payload) only sealed under a key
/// of the server's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub id: Id,
    pub account_id: Id,
    /// Hex SHA-256 of the access token that made it.
    pub token_hash: String,
    pub endpoint: String,
    /// The user agent's P-256 public key, 65 bytes uncompressed, base64url without padding.
    pub p256dh: String,
    /// The user agent's 16-byte auth secret, base64url without padding.
    pub auth: String,
    pub alerts: Alerts,
    pub policy: PushPolicy,
    /// RFC 8291 `aes128gcm` (Mastodon 4.4's `subscription[standard]`); otherwise the legacy
    /// `aesgcm` draft encoding.
    #[serde(default)]
    pub standard: bool,
    /// The access token, encrypted under a key derived from the server's VAPID key.
    pub sealed_token: String,
    pub created_at_ms: u64,
}

/// The message a push carries, as Mastodon's web push payload names its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPayload {
    pub access_token: String,
    pub preferred_locale: String,
    pub notification_id: String,
    pub notification_type: String,
    pub icon: String,
    pub title: String,
    pub body: String,
}

/// Longest body a push carries, in characters (Mastodon truncates at 140).
pub const BODY_CHARS: usize = 140;

/// The title of a push for a notification of this type caused by `actor` (a display name,
/// or the username when it has none), in Mastodon's English wording.
pub fn title(notification_type: &str, actor: &str) -> String {
    match notification_type {
        "mention" => format!("You were mentioned by {actor}"),
        "follow" => format!("{actor} is now following you"),
        "follow_request" => format!("New follow request: {actor}"),
        "favourite" => format!("{actor} favorited your post"),
        "reblog" => format!("{actor} boosted your post"),
        "status" => format!("{actor} just posted"),
        "update" => format!("{actor} edited a post"),
        "poll" => "A poll has ended".to_owned(),
        _ => format!("New notification from {actor}"),
    }
}

/// The body of a push: the post's content warning when it has one, else its text, on one
/// line, cut to [`BODY_CHARS`] characters with an ellipsis.
pub fn body(spoiler_text: &str, text: &str) -> String {
    let source = if spoiler_text.trim().is_empty() {
        text
    } else {
        spoiler_text
    };
    let flat = source.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= BODY_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(BODY_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Decode a key sent as base64 (URL-safe or standard alphabet, padded or not), as clients
/// send them.
pub fn decode_key(field: &'static str, raw: &str, len: usize) -> Result<Vec<u8>, Invalid> {
    let bytes = decode_base64(raw.trim())
        .ok_or_else(|| Invalid::new(field, "is not valid base64 or base64url"))?;
    if bytes.len() != len {
        return Err(Invalid::new(
            field,
            format!("must be {len} bytes, got {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// The subscription keys, checked: a 65-byte uncompressed P-256 point and a 16-byte secret.
/// Returns them decoded. (Whether the point lies on the curve is checked by the caller that
/// has the curve arithmetic.)
pub fn decode_keys(p256dh: &str, auth: &str) -> Result<(Vec<u8>, Vec<u8>), Invalid> {
    let public = decode_key("subscription[keys][p256dh]", p256dh, 65)?;
    if public[0] != 0x04 {
        return Err(Invalid::new(
            "subscription[keys][p256dh]",
            "must be an uncompressed P-256 point (starting with 0x04)",
        ));
    }
    let secret = decode_key("subscription[keys][auth]", auth, 16)?;
    Ok((public, secret))
}

fn decode_base64(raw: &str) -> Option<Vec<u8>> {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let raw = raw.trim_end_matches('=');
    let mut out = Vec::with_capacity(raw.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in raw.bytes() {
        let v = match c {
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            c => u32::try_from(CHARS.iter().position(|x| *x == c)?).ok()?,
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    // Leftover bits must be zero padding of a valid length (2 or 4 bits).
    if bits >= 6 || acc & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

/// Check a push endpoint as a user gives it: an absolute `https` URL without credentials,
/// or `http` to a loopback host when `allow_private` (development and tests). A host that
/// is an address must be public unless `allow_private`; names are checked again when they
/// are resolved.
pub fn check_endpoint(raw: &str, allow_private: bool) -> Result<(), Invalid> {
    const FIELD: &str = "subscription[endpoint]";
    if raw.len() > 2048 {
        return Err(Invalid::new(FIELD, "is longer than 2048 characters"));
    }
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| Invalid::new(FIELD, "must be an absolute https URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(Invalid::new(FIELD, "must not carry credentials"));
    }
    let host = host_of(authority).ok_or_else(|| Invalid::new(FIELD, "has no host"))?;
    if host.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(FIELD, "is not a valid URL"));
    }
    let address = host.parse::<IpAddr>().ok();
    let loopback =
        address.is_some_and(|a| a.is_loopback()) || host.eq_ignore_ascii_case("localhost");
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if allow_private && loopback => {}
        "http" => {
            return Err(Invalid::new(
                FIELD,
                "must use https (http only to a loopback host in development)",
            ));
        }
        _ => return Err(Invalid::new(FIELD, "must be an https URL")),
    }
    if !allow_private && (loopback || address.is_some_and(|a| !is_public(a))) {
        return Err(Invalid::new(
            FIELD,
            "must not point at a private, loopback or link-local address",
        ));
    }
    Ok(())
}

/// The host of a URL authority (`host`, `host:port`, `[v6]:port`), brackets removed.
pub fn host_of(authority: &str) -> Option<&str> {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| h);
    }
    Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h))
}

/// Whether an address may be reached by a push request in production: not loopback,
/// private, link-local, shared (CGNAT), unspecified, broadcast, multicast, documentation,
/// benchmarking or otherwise reserved, in IPv4 or IPv6 (IPv4-mapped ones as IPv4).
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o1, o2, o3, _] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o1 == 0
        || (o1 == 100 && (64..128).contains(&o2))
        || (o1 == 192 && o2 == 0 && o3 == 0)
        || (o1 == 198 && (o2 == 18 || o2 == 19))
        || o1 >= 240)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let first = a.segments()[0];
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || first == 0x2001 && a.segments()[1] == 0x0db8
        || first == 0x0064 && a.segments()[1] == 0xff9b
        || a.segments()[..6] == [0; 6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_take_known_names_only() {
        let a = Alerts::from_pairs([("favourite", true), ("mention", true), ("follow", false)])
            .unwrap_or_default();
        assert_eq!(a, Alerts(vec!["mention".into(), "favourite".into()]));
        assert!(a.allows("mention") && !a.allows("follow") && !a.allows("reblog"));
        let e = Alerts::from_pairs([("mentions", true)]).err();
        assert_eq!(e.map(|e| e.field), Some("data[alerts]"));
        let merged = a.merged(
            &Alerts(vec!["follow".into()]),
            &["follow".into(), "mention".into()],
        );
        assert_eq!(merged, Alerts(vec!["follow".into(), "favourite".into()]));
    }

    #[test]
    fn policies_let_through_as_mastodon_does() {
        // (policy, recipient follows actor, actor follows recipient, pushed)
        let cases = [
            ("all", false, false, true),
            ("followed", true, false, true),
            ("followed", false, true, false),
            ("follower", false, true, true),
            ("follower", true, false, false),
            ("none", true, true, false),
        ];
        for (name, follows, followed_by, want) in cases {
            let p = PushPolicy::parse(name).expect("known");
            assert_eq!(
                p.allows(follows, followed_by),
                want,
                "{name} {follows} {followed_by}"
            );
            assert_eq!(p.as_str(), name);
        }
        assert!(PushPolicy::parse("friends").is_err());
    }

    #[test]
    fn titles_and_bodies_read_as_mastodon_writes_them() {
        assert_eq!(title("mention", "Alice"), "You were mentioned by Alice");
        assert_eq!(title("favourite", "Bo"), "Bo favorited your post");
        assert_eq!(title("reblog", "Bo"), "Bo boosted your post");
        assert_eq!(title("follow", "Bo"), "Bo is now following you");
        // (spoiler, text, body)
        let long = "word ".repeat(40);
        let cases = [
            ("", "hello\n  world", "hello world".to_owned()),
            ("cw: food", "the text", "cw: food".to_owned()),
            ("", long.as_str(), format!("{}…", &long.trim_end()[..139])),
        ];
        for (spoiler, text, want) in cases {
            assert_eq!(body(spoiler, text), want);
        }
        assert_eq!(body("", &long).chars().count(), BODY_CHARS);
    }

    #[test]
    fn keys_are_checked_for_length_and_encoding() {
        let point = format!("BA{}", "A".repeat(85)); // 0x04 then zeros: 65 bytes
        let auth = "AAAAAAAAAAAAAAAAAAAAAA"; // 16 bytes
        assert!(decode_keys(&point, auth).is_ok());
        assert!(decode_keys(&format!("{point}="), &format!("{auth}==")).is_ok());
        let cases = [
            (point.as_str(), "AAAA", "subscription[keys][auth]"),
            ("BAAA", auth, "subscription[keys][p256dh]"),
            (
                &point[..point.len() - 1],
                auth,
                "subscription[keys][p256dh]",
            ),
            ("not base64!", auth, "subscription[keys][p256dh]"),
        ];
        for (p, a, field) in cases {
            assert_eq!(
                decode_keys(p, a).err().map(|e| e.field),
                Some(field),
                "{p} {a}"
            );
        }
        let compressed = format!("Ag{}", "A".repeat(85));
        assert!(decode_keys(&compressed, auth).is_err());
        assert_eq!(decode_base64("_-8"), Some(vec![0xff, 0xef]));
        assert_eq!(decode_base64("/+8="), Some(vec![0xff, 0xef]));
    }

    #[test]
    fn endpoints_must_be_https_and_public() {
        // (endpoint, allow private, accepted)
        let cases = [
            ("https://push.example.com/send/abc", false, true),
            ("https://push.example.com:8443/x", false, true),
            ("http://push.example.com/x", false, false),
            ("http://push.example.com/x", true, false),
            ("http://127.0.0.1:9000/x", true, true),
            ("http://localhost:9000/x", true, true),
            ("http://127.0.0.1:9000/x", false, false),
            ("https://127.0.0.1/x", false, false),
            ("https://10.1.2.3/x", false, false),
            ("https://[::1]/x", false, false),
            ("https://[fe80::1]/x", false, false),
            ("https://169.254.169.254/latest", false, false),
            ("https://[::ffff:192.168.1.1]/x", false, false),
            ("https://93.184.216.34/x", false, true),
            ("https://user:pw@push.example.com/x", false, false),
            ("ftp://push.example.com/x", false, false),
            ("push.example.com/x", false, false),
            ("https:///x", false, false),
        ];
        for (url, allow, want) in cases {
            assert_eq!(
                check_endpoint(url, allow).is_ok(),
                want,
                "{url} allow={allow}"
            );
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        let cases = [
            ("8.8.8.8", true),
            ("2606:4700::1111", true),
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("172.16.5.4", false),
            ("192.168.0.1", false),
            ("169.254.1.1", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::a00:1", false),
        ];
        for (ip, want) in cases {
            let ip: IpAddr = ip.parse().expect("address");
            assert_eq!(is_public(ip), want, "{ip}");
        }
    }
}
