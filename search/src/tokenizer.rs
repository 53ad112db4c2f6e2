//! The text analyzer: Latin and other alphabetic scripts split into words, lower-cased,
//! English stop words dropped and English stems taken; CJK (Han, Kana, Hangul), which has no
//! spaces between words, indexed as single characters plus overlapping pairs, so any word
//! of one or two characters and any longer one (all of its pairs) is found without a
//! dictionary.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token,
    TokenStream, Tokenizer,
};

/// The name the text field's analyzer is registered under.
pub const TEXT_TOKENIZER: &str = "starling_text";

/// The analyzer for post text: [`ScriptTokenizer`] then lower-casing, stop words, stems.
pub fn text_analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(ScriptTokenizer)
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => builder
            .filter(stop)
            .filter(Stemmer::new(Language::English))
            .build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

/// Whether `c` belongs to a script written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F  // Extensions B and later
    )
}

/// Splits text into words (runs of letters and digits) and CJK runs into unigrams and bigrams.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScriptTokenizer;

pub struct ScriptTokenStream {
    current: Token,
    rest: std::vec::IntoIter<Token>,
}

impl Tokenizer for ScriptTokenizer {
    type TokenStream<'a> = ScriptTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ScriptTokenStream {
        ScriptTokenStream {
            current: Token::default(),
            rest: tokenize(text).into_iter(),
        }
    }
}

impl TokenStream for ScriptTokenStream {
    fn advance(&mut self) -> bool {
        match self.rest.next() {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut position = 0;
    let mut push = |out: &mut Vec<Token>, from: usize, to: usize| {
        out.push(Token {
            offset_from: from,
            offset_to: to,
            position,
            text: text[from..to].to_owned(),
            position_length: 1,
        });
        position += 1;
    };
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if is_cjk(c) {
            // The run of CJK characters starting here.
            let mut run = vec![(start, c)];
            while let Some(&(i, d)) = chars.peek() {
                if !is_cjk(d) {
                    break;
                }
                run.push((i, d));
                chars.next();
            }
            for (k, &(i, d)) in run.iter().enumerate() {
                push(&mut out, i, i + d.len_utf8());
                if let Some(&(j, e)) = run.get(k + 1) {
                    push(&mut out, i, j + e.len_utf8());
                }
            }
        } else if c.is_alphanumeric() {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if !d.is_alphanumeric() || is_cjk(d) {
                    break;
                }
                end = i + d.len_utf8();
                chars.next();
            }
            push(&mut out, start, end);
        }
    }
    out
}

/// The terms `analyzer` makes of `text`, in order, without repeats.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out: Vec<String> = Vec::new();
    while stream.advance() {
        let t = &stream.token().text;
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        terms(&mut text_analyzer(), text)
    }

    #[test]
    fn english_words_are_lowered_stemmed_and_stop_words_dropped() {
        assert_eq!(all("The Running dogs, jumped!"), ["run", "dog", "jump"]);
    }

    #[test]
    fn cjk_runs_become_unigrams_and_bigrams() {
        assert_eq!(
            all("東京タワー"),
            ["東", "東京", "京", "京タ", "タ", "タワ", "ワ", "ワー", "ー"]
        );
        assert_eq!(all("hello世界"), ["hello", "世", "世界", "界"]);
    }

    #[test]
    fn hashtags_and_mentions_keep_their_word() {
        assert_eq!(all("#Rustlang @alice"), ["rustlang", "alic"]);
    }

    #[test]
    fn empty_and_punctuation_give_nothing() {
        assert!(all("").is_empty());
        assert!(all("!!! ...").is_empty());
    }
}
