//! Post text: finding `@mentions`, `#hashtags` and links, and rendering Mastodon's HTML
//! (`<p>escaped text</p>` with anchors). Unicode-aware: `#日本語` and `@ærø` work.

/// A piece of post text.
#[derive(Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    /// `@name` or `@name@domain`: the name part.
    Mention(&'a str),
    /// `#tag` without the `#`.
    Hashtag(&'a str),
    Link(&'a str),
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Length in bytes of a username at the start of `s` (letters, digits, `_`, and `.`/`-`
/// between them), per `starling_schema::validate::normalize_username`.
fn name_len(s: &str) -> usize {
    let mut end = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_name_char(c) {
            end = i + c.len_utf8();
        } else if (c == '.' || c == '-')
            && end == i
            && chars.peek().is_some_and(|&(_, n)| is_name_char(n))
        {
            continue;
        } else {
            break;
        }
    }
    end
}

fn tag_len(s: &str) -> usize {
    s.char_indices()
        .take_while(|&(_, c)| is_name_char(c))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0)
}

fn link_len(s: &str) -> usize {
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return 0;
    }
    let end = s
        .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .unwrap_or(s.len());
    // Trailing punctuation belongs to the sentence, not the link.
    let trimmed = s[..end].trim_end_matches(['.', ',', ':', ';', '!', '?', ')', '\'']);
    if trimmed.len() <= "https://".len() {
        0
    } else {
        trimmed.len()
    }
}

/// Split text into segments. A mention or hashtag starts at the beginning or after a
/// character that cannot be part of a word (so `mail@example.org` is not a mention).
pub fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut plain_start = 0;
    let mut i = 0;
    let mut prev: Option<char> = None;
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        let boundary = prev.is_none_or(|p| !is_name_char(p) && p != '@' && p != '#' && p != '/');
        let found = if boundary && c == '@' {
            let n = name_len(&rest[1..]);
            if n > 0 {
                // An optional @domain is part of the mention but not of the name.
                let mut total = 1 + n;
                let after = &rest[total..];
                if let Some(domain) = after.strip_prefix('@') {
                    let d = domain
                        .char_indices()
                        .take_while(|&(_, ch)| ch.is_alphanumeric() || ch == '.' || ch == '-')
                        .map(|(j, ch)| j + ch.len_utf8())
                        .last()
                        .unwrap_or(0);
                    if d > 0 {
                        total += 1 + d;
                    }
                }
                Some((total, Segment::Mention(&rest[1..1 + n])))
            } else {
                None
            }
        } else if boundary && c == '#' {
            let n = tag_len(&rest[1..]);
            // A tag needs at least one non-digit, as on Mastodon ("#1" is not a tag).
            (n > 0 && !rest[1..1 + n].chars().all(|ch| ch.is_ascii_digit()))
                .then(|| (1 + n, Segment::Hashtag(&rest[1..1 + n])))
        } else if boundary && (c == 'h') {
            let n = link_len(rest);
            (n > 0).then(|| (n, Segment::Link(&rest[..n])))
        } else {
            None
        };
        match found {
            Some((len, seg)) => {
                if plain_start < i {
                    out.push(Segment::Text(&text[plain_start..i]));
                }
                out.push(seg);
                i += len;
                plain_start = i;
                prev = text[..i].chars().last();
            }
            None => {
                i += c.len_utf8();
                prev = Some(c);
            }
        }
    }
    if plain_start < text.len() {
        out.push(Segment::Text(&text[plain_start..]));
    }
    out
}

/// The usernames mentioned, in order of first appearance, without repeats (ASCII case
/// ignored). Linear: one set lookup per mention.
pub fn mentions(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for seg in segments(text) {
        if let Segment::Mention(name) = seg
            && seen.insert(name.to_ascii_lowercase())
        {
            out.push(name.to_owned());
        }
    }
    out
}

/// The hashtags, lower-cased, in order of first appearance, without repeats. Linear.
pub fn hashtags(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for seg in segments(text) {
        if let Segment::Hashtag(tag) = seg {
            let tag = tag.to_lowercase();
            if seen.insert(tag.clone()) {
                out.push(tag);
            }
        }
    }
    out
}

/// The links, in order of first appearance, without repeats. Linear.
pub fn links(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in segments(text) {
        if let Segment::Link(url) = seg
            && !out.iter().any(|u| u == url)
        {
            out.push(url.to_owned());
        }
    }
    out
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Render text as Mastodon HTML. `mention_url` resolves a mentioned name to its profile
/// URL; unresolved mentions stay plain text.
pub fn to_html(text: &str, base_url: &str, mention_url: impl Fn(&str) -> Option<String>) -> String {
    let mut html = String::from("<p>");
    for seg in segments(text) {
        match seg {
            Segment::Text(t) => {
                let mut lines = t.split('\n').peekable();
                while let Some(line) = lines.next() {
                    html.push_str(&escape(line));
                    if lines.peek().is_some() {
                        html.push('\n');
                    }
                }
            }
            Segment::Mention(name) => match mention_url(name) {
                Some(url) => html.push_str(&format!(
                    "<span class=\"h-card\"><a href=\"{}\" class=\"u-url mention\">@<span>{}</span></a></span>",
                    escape(&url),
                    escape(name)
                )),
                None => {
                    html.push('@');
                    html.push_str(&escape(name));
                }
            },
            Segment::Hashtag(tag) => html.push_str(&format!(
                "<a href=\"{}/tags/{}\" class=\"mention hashtag\" rel=\"tag\">#<span>{}</span></a>",
                escape(base_url),
                escape(&tag.to_lowercase()),
                escape(tag)
            )),
            Segment::Link(url) => html.push_str(&format!(
                "<a href=\"{0}\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">{0}</a>",
                escape(url)
            )),
        }
    }
    html.push_str("</p>");
    // Paragraphs at blank lines, <br /> at single newlines.
    html.replace("\n\n", "</p><p>").replace('\n', "<br />")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mentions_tags_and_links() {
        let s =
            segments("hi @alice and @Bob@remote.example #Rust #日本語 see https://x.org/a?b=1. #1");
        assert!(s.contains(&Segment::Mention("alice")));
        assert!(s.contains(&Segment::Mention("Bob")));
        assert!(s.contains(&Segment::Hashtag("Rust")));
        assert!(s.contains(&Segment::Hashtag("日本語")));
        assert!(s.contains(&Segment::Link("https://x.org/a?b=1")));
        assert_eq!(
            links("see https://x.org/a?b=1. and https://x.org/a?b=1 or http://y.example/"),
            vec!["https://x.org/a?b=1", "http://y.example/"]
        );
        assert!(!s.contains(&Segment::Hashtag("1")));
        assert_eq!(hashtags("#Rust #rust #RUST"), vec!["rust"]);
        assert_eq!(mentions("@a.b-c. @ærø"), vec!["a.b-c", "ærø"]);
    }

    #[test]
    fn extraction_is_linear_in_the_text() {
        // 20,000 distinct mentions and tags: quadratic de-duplication took tens of seconds.
        let text: String = (0..20_000).map(|i| format!("@u{i} #t{i} ")).collect();
        let start = std::time::Instant::now();
        assert_eq!(mentions(&text).len(), 20_000);
        assert_eq!(hashtags(&text).len(), 20_000);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn email_addresses_and_words_are_not_mentions() {
        assert!(mentions("mail me at me@example.org").is_empty());
        assert!(hashtags("issue#12 and C#").is_empty());
    }

    #[test]
    fn renders_escaped_paragraphs_with_anchors() {
        let html = to_html(
            "<b>hi</b> @alice #Tag\n\nnext\nline",
            "https://s.example",
            |n| (n == "alice").then(|| "https://s.example/@alice".to_string()),
        );
        assert_eq!(
            html,
            "<p>&lt;b&gt;hi&lt;/b&gt; <span class=\"h-card\"><a href=\"https://s.example/@alice\" class=\"u-url mention\">@<span>alice</span></a></span> <a href=\"https://s.example/tags/tag\" class=\"mention hashtag\" rel=\"tag\">#<span>Tag</span></a></p><p>next<br />line</p>"
        );
        assert_eq!(to_html("@nobody", "x", |_| None), "<p>@nobody</p>");
    }
}
