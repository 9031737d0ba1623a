//! Full-text search over request summaries, case references, comments and evidence file names,
//! in English and Chinese, for both storage backends.
//!
//! Neither SQLite FTS5 (tokenizer `unicode61 remove_diacritics 2`) nor PostgreSQL
//! (`to_tsvector('simple', …)`) splits Chinese into words, so the text is tokenized here, in
//! Rust, and the database indexes the result of [`index_terms`]: the tokens joined by single
//! spaces. Every token is made only of letters, digits and CJK characters, so both backends
//! split that string exactly at the spaces and nowhere else.
//!
//! The tokenizer:
//!
//! - folds to lower case and maps full-width ASCII forms (`Ａ`, `１`, `＂`) to plain ASCII;
//! - makes one token of each run of letters and digits (`example.com` gives `example`, `com`);
//! - makes overlapping bigrams of each run of CJK characters, followed by the run's last
//!   character alone (`诈骗集团` gives `诈骗 骗集 集团 团`), so that a one-character search can
//!   still find any position through a prefix match.
//!
//! A search typed by an officer is parsed by [`parse_query`] with the same tokenizer and
//! rendered for each backend by [`Query::to_fts5`] and [`Query::to_tsquery`]. Each search term
//! becomes a phrase: its tokens must appear at consecutive positions of the indexed text.
//! [`snippet`] finds the same matches in the original text and cuts a highlighted excerpt.

/// At most this many tokens of one text are indexed; the rest of a longer text is not searchable.
pub const MAX_INDEXED_TOKENS: usize = 20_000;

/// At most this many bytes of index terms are produced for one text (space separators
/// included). PostgreSQL refuses a `tsvector` over 1 MB; this bound keeps hostile text (many
/// distinct long words) well under it. Ordinary text reaches [`MAX_INDEXED_TOKENS`] first.
pub const MAX_INDEXED_BYTES: usize = 256 * 1024;

/// A token longer than this many characters is cut to its first `MAX_TOKEN_CHARS` characters.
pub const MAX_TOKEN_CHARS: usize = 64;

/// The longest search accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;

/// The most terms (words or quoted phrases, excluded ones included) one search may have.
pub const MAX_QUERY_TERMS: usize = 16;

/// One token of a text, as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The folded token: lower case, full-width forms made ASCII; letters, digits or CJK only.
    pub text: String,
    /// Byte offset in the original text where the token starts.
    pub start: usize,
    /// Byte offset in the original text where the token ends (exclusive). For a word cut to
    /// [`MAX_TOKEN_CHARS`], the range still covers the whole word.
    pub end: usize,
    /// True for the single character that ends a run of two or more CJK characters (it follows
    /// the run's bigrams). Searches only ever match it through a one-character prefix.
    pub cjk_unigram: bool,
}

/// How the tokenizer treats one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A letter or digit outside the CJK ranges.
    Word,
    /// An ideograph, kana or Hangul syllable.
    Cjk,
    /// A combining diacritical mark: dropped, but it does not split the word it follows.
    Mark,
    /// Anything else: punctuation, spaces, symbols, controls.
    Sep,
}

/// Maps the full-width ASCII forms U+FF01..U+FF5E to ASCII.
fn fold_width(c: char) -> char {
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
    } else {
        c
    }
}

/// Whether `c` lies in one of the CJK blocks that are bigrammed (any code point, assigned or not).
fn in_cjk_ranges(c: char) -> bool {
    matches!(
        c,
        '\u{4E00}'..='\u{9FFF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{20000}'..='\u{2FA1F}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{3040}'..='\u{309F}'
            | '\u{30A0}'..='\u{30FF}'
            | '\u{AC00}'..='\u{D7AF}'
    )
}

/// Combining diacritical marks (as in decomposed `e` + U+0301). Text written in decomposed form,
/// such as file names from macOS, keeps its words whole: `Cafe\u{301}s` gives `cafes`.
fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// Symbols that Unicode counts as alphabetic (circled and squared letters such as `Ⓐ`) but that
/// SQLite's tokenizer treats as separators: they are separators here too.
fn is_letter_symbol(c: char) -> bool {
    matches!(
        c,
        '\u{24B6}'..='\u{24E9}' | '\u{1F130}'..='\u{1F149}' | '\u{1F150}'..='\u{1F169}' | '\u{1F170}'..='\u{1F189}'
    )
}

fn classify(c: char) -> Class {
    let c = fold_width(c);
    if is_combining_mark(c) {
        Class::Mark
    } else if !c.is_alphanumeric() {
        // Also excludes unassigned code points and the punctuation inside the kana blocks
        // (`・`, `゠`, the spacing sound marks).
        Class::Sep
    } else if in_cjk_ranges(c) {
        Class::Cjk
    } else if is_letter_symbol(c) {
        Class::Sep
    } else {
        Class::Word
    }
}

fn is_cjk_char(c: char) -> bool {
    classify(c) == Class::Cjk
}

/// Whether a token is a CJK token (bigram or single character) rather than a word.
fn is_cjk_token(t: &str) -> bool {
    t.chars().next().is_some_and(is_cjk_char)
}

/// Whether a token is exactly one CJK character.
fn is_single_cjk(t: &str) -> bool {
    let mut cs = t.chars();
    cs.next().is_some_and(is_cjk_char) && cs.next().is_none()
}

/// The tokenizer's state while it walks a text.
struct Scanner {
    out: Vec<Token>,
    limit: usize,
    word: String,
    word_chars: usize,
    /// Start and end (bytes, original text) of the word being read.
    word_span: Option<(usize, usize)>,
    /// The last CJK character of the run being read, with its byte range.
    cjk_last: Option<(char, usize, usize)>,
    cjk_run: usize,
}

impl Scanner {
    fn full(&self) -> bool {
        self.out.len() >= self.limit
    }

    fn push(&mut self, t: Token) {
        if !self.full() {
            self.out.push(t);
        }
    }

    fn end_word(&mut self) {
        if let Some((start, end)) = self.word_span.take()
            && !self.word.is_empty()
        {
            let text = std::mem::take(&mut self.word);
            self.push(Token {
                text,
                start,
                end,
                cjk_unigram: false,
            });
        }
        self.word.clear();
        self.word_chars = 0;
    }

    fn end_cjk(&mut self) {
        if let Some((c, start, end)) = self.cjk_last.take() {
            let cjk_unigram = self.cjk_run >= 2;
            self.push(Token {
                text: c.to_string(),
                start,
                end,
                cjk_unigram,
            });
        }
        self.cjk_run = 0;
    }
}

/// Tokenizes `text`, stopping after `limit` tokens.
fn scan(text: &str, limit: usize) -> Vec<Token> {
    let mut sc = Scanner {
        out: Vec::new(),
        limit,
        word: String::new(),
        word_chars: 0,
        word_span: None,
        cjk_last: None,
        cjk_run: 0,
    };
    for (i, c) in text.char_indices() {
        if sc.full() {
            break;
        }
        let end = i + c.len_utf8();
        match classify(c) {
            Class::Word => {
                sc.end_cjk();
                let span = sc.word_span.get_or_insert((i, end));
                span.1 = end;
                for lc in fold_width(c).to_lowercase() {
                    // Lower-casing may add combining marks (`İ` gives `i` + U+0307): drop them.
                    if sc.word_chars < MAX_TOKEN_CHARS && lc.is_alphanumeric() && !in_cjk_ranges(lc) {
                        sc.word.push(lc);
                        sc.word_chars += 1;
                    }
                }
            }
            Class::Mark => match sc.word_span.as_mut() {
                Some(span) => span.1 = end,
                None => sc.end_cjk(),
            },
            Class::Cjk => {
                sc.end_word();
                if let Some((prev, prev_start, _)) = sc.cjk_last {
                    let mut text = String::with_capacity(8);
                    text.push(prev);
                    text.push(c);
                    sc.push(Token {
                        text,
                        start: prev_start,
                        end,
                        cjk_unigram: false,
                    });
                }
                sc.cjk_last = Some((c, i, end));
                sc.cjk_run += 1;
            }
            Class::Sep => {
                sc.end_word();
                sc.end_cjk();
            }
        }
    }
    sc.end_word();
    sc.end_cjk();
    sc.out
}

/// Splits `text` into tokens, in order of position: one token per run of letters and digits
/// (lower-cased, at most [`MAX_TOKEN_CHARS`] characters), and for each run of CJK characters
/// its overlapping bigrams followed by its last character alone (a run of one character gives
/// just that character). Works on any input; the offsets always fall on character boundaries.
pub fn tokens(text: &str) -> Vec<Token> {
    scan(text, usize::MAX)
}

/// The string to store in the full-text index for `text`: its tokens joined by single spaces,
/// at most [`MAX_INDEXED_TOKENS`] tokens and [`MAX_INDEXED_BYTES`] bytes.
pub fn index_terms(text: &str) -> String {
    let mut out = String::new();
    for t in scan(text, MAX_INDEXED_TOKENS) {
        let sep = usize::from(!out.is_empty());
        if out.len() + sep + t.text.len() > MAX_INDEXED_BYTES {
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(&t.text);
    }
    out
}

/// A search that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing but spaces was typed.
    #[error("the search is empty: type at least one word to look for")]
    Empty,
    /// Only punctuation or symbols were typed, which are never indexed.
    #[error("the search has no words to look for, only punctuation or symbols")]
    NoWords,
    /// The search is longer than [`MAX_QUERY_CHARS`].
    #[error("the search is {chars} characters long; at most 500 are allowed")]
    TooLong {
        /// The length of the search, in characters.
        chars: usize,
    },
    /// The search has more than [`MAX_QUERY_TERMS`] terms.
    #[error("the search has {terms} terms (words or quoted phrases); at most 16 are allowed")]
    TooManyTerms {
        /// The number of terms found.
        terms: usize,
    },
    /// Every term is excluded with `-`.
    #[error("a search needs at least one word that is not excluded (a term starting with '-' only excludes)")]
    OnlyExcluded,
}

/// A parsed search: every positive term must match, no negated term may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The terms, in the order typed.
    pub terms: Vec<Term>,
}

/// One search term: a phrase of tokens that must appear at consecutive positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The term's tokens, as the tokenizer folds them.
    pub tokens: Vec<String>,
    /// Whether the last token matches any indexed token it starts (`phish` finds `phishing`).
    pub last_is_prefix: bool,
    /// Whether the term excludes (`-spam`) rather than requires.
    pub negated: bool,
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{FF02}')
}

fn is_minus(c: char) -> bool {
    matches!(c, '-' | '\u{FF0D}')
}

/// Builds a term from the text of one typed term; `None` when it has no tokens.
fn make_term(raw: &str, quoted: bool, negated: bool) -> Option<Term> {
    let mut toks = tokens(raw);
    // The trailing single character of the last CJK run would come after the bigrams in the
    // index only when the indexed run ends there too: drop it, the bigrams are enough. A
    // trailing single character inside the term is kept, since the indexed text has it at that
    // position as well (`号码123` is indexed as `号码 码 123`).
    if toks.last().is_some_and(|t| t.cjk_unigram) {
        toks.pop();
    }
    let last = toks.last()?;
    let last_is_prefix = is_single_cjk(&last.text) || (!quoted && !is_cjk_token(&last.text));
    Some(Term {
        tokens: toks.into_iter().map(|t| t.text).collect(),
        last_is_prefix,
        negated,
    })
}

/// Parses what an officer typed into a search.
///
/// - Whitespace separates terms; all positive terms must match.
/// - Text in double quotes (`"…"`, `“…”` or `＂…＂`) is one phrase term; a missing closing quote
///   closes at the end.
/// - A term starting with `-` (outside quotes, followed by something) excludes: `-spam`,
///   `-"bulk mail"`. This also makes `-5` an exclusion, not a negative number.
/// - Each term is tokenized like indexed text, except that a CJK run of two or more characters at
///   the end of a term gives only its bigrams (`诈骗集团` gives `诈骗 骗集 集团`).
/// - In an unquoted term the last token is a prefix when it is a word (`phish` finds `phishing`)
///   or a single CJK character (`骗` finds `骗集`). Quoted phrases match exactly, except that a
///   phrase ending in a single CJK character keeps that character as a prefix: on its own, a
///   single character is indexed only at the end of a CJK run, so an exact match would miss it
///   everywhere else.
/// - A term with no letters, digits or CJK characters is ignored.
pub fn parse_query(q: &str) -> Result<Query, QueryError> {
    let len = q.chars().count();
    if len > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong { chars: len });
    }
    if q.trim().is_empty() {
        return Err(QueryError::Empty);
    }
    let chars: Vec<char> = q.chars().collect();
    let mut terms = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let mut negated = false;
        if is_minus(c) && chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) {
            negated = true;
            i += 1;
        }
        let quoted = chars.get(i).copied().is_some_and(is_quote);
        let start;
        let end;
        if quoted {
            start = i + 1;
            i = start;
            while chars.get(i).is_some_and(|c| !is_quote(*c)) {
                i += 1;
            }
            end = i;
            i += 1; // the closing quote, if any
        } else {
            start = i;
            while chars.get(i).is_some_and(|c| !c.is_whitespace() && !is_quote(*c)) {
                i += 1;
            }
            end = i;
        }
        let raw: String = chars.get(start..end).unwrap_or(&[]).iter().collect();
        if let Some(term) = make_term(&raw, quoted, negated) {
            terms.push(term);
        }
    }
    if terms.is_empty() {
        return Err(QueryError::NoWords);
    }
    if terms.len() > MAX_QUERY_TERMS {
        return Err(QueryError::TooManyTerms { terms: terms.len() });
    }
    if terms.iter().all(|t| t.negated) {
        return Err(QueryError::OnlyExcluded);
    }
    Ok(Query { terms })
}

impl Query {
    fn positive(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| !t.negated && !t.tokens.is_empty())
    }

    fn negative(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| t.negated && !t.tokens.is_empty())
    }

    /// The prefix tokens of the query: the last token of every term that matches by its
    /// beginning. A store can look up the indexed words each one starts and pass them to
    /// [`Query::to_fts5_with`] and [`Query::to_tsquery_with`] (an index reads the lists of a
    /// few named words faster than it gathers every word under a prefix).
    pub fn prefixes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .terms
            .iter()
            .filter(|t| t.last_is_prefix)
            .filter_map(|t| t.tokens.last().map(String::as_str))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The search as an SQLite FTS5 `MATCH` expression, for a column holding [`index_terms`]:
    /// each term a quoted phrase (`"t1 t2"`, with `*` after it when the last token is a prefix),
    /// positive terms joined by ` AND `, excluded ones appended as ` NOT "…"`. Pass it as a bound
    /// parameter. A query from [`parse_query`] always has a positive term; for one built by hand
    /// without, the result is not a valid expression.
    pub fn to_fts5(&self) -> String {
        self.to_fts5_with(&Expansions::new())
    }

    /// [`Query::to_fts5`] with the prefixes found in `words` replaced by the indexed words they
    /// start: `"t1 t2"*` becomes `("t1 w1" OR "t1 w2")`. A prefix mapped to no word is left as a
    /// prefix (the caller decides what a word that matches nothing means).
    pub fn to_fts5_with(&self, words: &Expansions) -> String {
        fn quoted(out: &mut String, toks: &[String], last: &str) {
            out.push('"');
            for (i, tok) in toks.iter().map(String::as_str).chain(std::iter::once(last)).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                // Tokens from the tokenizer never hold a quote; escape anyway for hand-built terms.
                out.push_str(&tok.replace('"', "\"\""));
            }
            out.push('"');
        }
        fn phrase(out: &mut String, t: &Term, words: &Expansions) {
            let Some((last, rest)) = t.tokens.split_last() else {
                return;
            };
            match words.get(last.as_str()).filter(|w| t.last_is_prefix && !w.is_empty()) {
                Some(alts) => {
                    out.push('(');
                    for (i, w) in alts.iter().enumerate() {
                        if i > 0 {
                            out.push_str(" OR ");
                        }
                        quoted(out, rest, w);
                    }
                    out.push(')');
                }
                None => {
                    quoted(out, rest, last);
                    if t.last_is_prefix {
                        out.push('*');
                    }
                }
            }
        }
        let mut out = String::new();
        for (i, t) in self.positive().enumerate() {
            if i > 0 {
                out.push_str(" AND ");
            }
            phrase(&mut out, t, words);
        }
        for t in self.negative() {
            out.push_str(" NOT ");
            phrase(&mut out, t, words);
        }
        out
    }

    /// The search as a PostgreSQL `tsquery`, for `to_tsquery('simple', $1)` against
    /// `to_tsvector('simple', …)` of [`index_terms`]: each token quoted (`'tok'`, with `:*` on a
    /// prefix), the tokens of a term joined by ` <-> ` in parentheses, terms joined by ` & `,
    /// excluded terms as `!( … )`.
    pub fn to_tsquery(&self) -> String {
        self.to_tsquery_with(&Expansions::new())
    }

    /// [`Query::to_tsquery`] with the prefixes found in `words` replaced by the indexed words
    /// they start: `('t1' <-> 't2':*)` becomes `('t1' <-> ('w1' | 'w2'))`.
    pub fn to_tsquery_with(&self, words: &Expansions) -> String {
        fn lexeme(out: &mut String, tok: &str) {
            out.push('\'');
            // Never needed for tokenizer output; keeps hand-built terms well formed.
            out.push_str(&tok.replace('\\', "\\\\").replace('\'', "''"));
            out.push('\'');
        }
        fn group(out: &mut String, t: &Term, words: &Expansions) {
            out.push('(');
            let n = t.tokens.len();
            for (i, tok) in t.tokens.iter().enumerate() {
                if i > 0 {
                    out.push_str(" <-> ");
                }
                let last = i + 1 == n;
                match words
                    .get(tok.as_str())
                    .filter(|w| last && t.last_is_prefix && !w.is_empty())
                {
                    Some(alts) => {
                        out.push('(');
                        for (j, w) in alts.iter().enumerate() {
                            if j > 0 {
                                out.push_str(" | ");
                            }
                            lexeme(out, w);
                        }
                        out.push(')');
                    }
                    None => {
                        lexeme(out, tok);
                        if t.last_is_prefix && last {
                            out.push_str(":*");
                        }
                    }
                }
            }
            out.push(')');
        }
        let mut out = String::new();
        for t in self.positive() {
            if !out.is_empty() {
                out.push_str(" & ");
            }
            group(&mut out, t, words);
        }
        for t in self.negative() {
            if !out.is_empty() {
                out.push_str(" & ");
            }
            out.push('!');
            group(&mut out, t, words);
        }
        out
    }
}

/// For some prefix tokens of a query, the indexed words each one starts (see
/// [`Query::prefixes`]).
pub type Expansions = std::collections::BTreeMap<String, Vec<String>>;

/// A highlighted excerpt of a text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snippet {
    /// The excerpt, whitespace runs collapsed to one space, with `…` where it was cut.
    pub text: String,
    /// Byte ranges of `text` to highlight: sorted, neither overlapping nor touching.
    pub marks: Vec<(usize, usize)>,
}

/// The KMP failure table of a token sequence.
fn kmp_table(p: &[String]) -> Vec<usize> {
    let mut f = vec![0; p.len()];
    let mut k = 0;
    for i in 1..p.len() {
        while k > 0 && p[i] != p[k] {
            k = f[k - 1];
        }
        if p[i] == p[k] {
            k += 1;
        }
        f[i] = k;
    }
    f
}

/// Where a prefix match on `tok` ends: a single CJK character matching a bigram highlights just
/// that character, anything else the whole token.
fn prefix_end(text: &str, tok: &Token, prefix: &str) -> usize {
    if is_single_cjk(prefix) && tok.text.chars().count() > 1 {
        text.get(tok.start..)
            .and_then(|s| s.chars().next())
            .map_or(tok.end, |c| tok.start + c.len_utf8())
    } else {
        tok.end
    }
}

/// Adds to `out` the original byte range of every match of `term` in `toks`. Linear in the
/// number of tokens (KMP over the exact part of the term).
fn find_term(text: &str, toks: &[Token], term: &Term, out: &mut Vec<(usize, usize)>) {
    let (exact, prefix) = match term.tokens.split_last() {
        None => return,
        Some((last, rest)) if term.last_is_prefix => (rest, Some(last.as_str())),
        Some(_) => (term.tokens.as_slice(), None),
    };
    if exact.is_empty() {
        if let Some(p) = prefix {
            for t in toks.iter().filter(|t| t.text.starts_with(p)) {
                out.push((t.start, prefix_end(text, t, p)));
            }
        }
        return;
    }
    let fail = kmp_table(exact);
    let k = exact.len();
    let mut m = 0;
    for (i, t) in toks.iter().enumerate() {
        while m > 0 && t.text != exact[m] {
            m = fail[m - 1];
        }
        if t.text == exact[m] {
            m += 1;
        }
        if m == k {
            let start = toks[i + 1 - k].start;
            match prefix {
                None => out.push((start, t.end)),
                Some(p) => {
                    if let Some(next) = toks.get(i + 1)
                        && next.text.starts_with(p)
                    {
                        out.push((start, prefix_end(text, next, p)));
                    }
                }
            }
            m = fail[k - 1];
        }
    }
}

/// The merged byte ranges of `text` where the positive terms of `q` match.
///
/// Matching follows the database: a term's tokens must equal consecutive tokens of the text (the
/// trailing CJK single characters included, as they are indexed), the last one as a prefix when
/// the term says so.
fn match_ranges(text: &str, q: &Query) -> Vec<(usize, usize)> {
    if q.positive().next().is_none() {
        return Vec::new();
    }
    let toks = tokens(text);
    let mut ranges = Vec::new();
    for term in q.positive() {
        find_term(text, &toks, term, &mut ranges);
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Characters in `s` once whitespace runs are collapsed, counting no further than `cap`.
fn collapsed_len(s: &str, cap: usize) -> usize {
    let mut n = 0;
    let mut prev_ws = false;
    for c in s.chars() {
        if n >= cap {
            break;
        }
        let ws = c.is_whitespace();
        if !(ws && prev_ws) {
            n += 1;
        }
        prev_ws = ws;
    }
    n
}

/// Where the excerpt around the mark `(ms, me)` starts: some context before the mark (more when
/// the text ends soon after it), moved forward to the start of a word or to a CJK character.
fn window_start(text: &str, (ms, me): (usize, usize), max_chars: usize) -> usize {
    let mark_chars = collapsed_len(text.get(ms..me).unwrap_or(""), max_chars);
    let after = collapsed_len(text.get(ms..).unwrap_or(""), max_chars);
    let mut lead = (max_chars / 4).min(max_chars.saturating_sub(mark_chars));
    if after < max_chars {
        lead = lead.max(max_chars - after);
    }
    let before = text.get(..ms).unwrap_or("");
    let mut cand = ms;
    let mut count = 0;
    let mut prev_ws = false;
    for (i, c) in before.char_indices().rev() {
        let ws = c.is_whitespace();
        if !(ws && prev_ws) {
            if count == lead {
                break;
            }
            count += 1;
        }
        prev_ws = ws;
        cand = i;
    }
    if cand == 0 {
        return 0;
    }
    let mut in_word = before
        .get(..cand)
        .and_then(|s| s.chars().next_back())
        .is_some_and(|c| matches!(classify(c), Class::Word | Class::Mark));
    for (off, c) in before.get(cand..).unwrap_or("").char_indices() {
        match classify(c) {
            Class::Cjk => return cand + off,
            Class::Word if !in_word => return cand + off,
            Class::Word => {}
            Class::Mark => continue,
            Class::Sep => {
                in_word = false;
                continue;
            }
        }
        in_word = true;
    }
    ms
}

/// Renders the excerpt of `text` from byte `start`, at most `max_chars` characters (ellipses not
/// counted), mapping `marks` (original byte ranges, sorted) onto it.
fn render(text: &str, start: usize, marks: &[(usize, usize)], max_chars: usize) -> Snippet {
    let mut out = String::new();
    let mut out_marks: Vec<(usize, usize)> = Vec::new();
    let Some(body) = text.get(start..) else {
        return Snippet::default();
    };
    if max_chars == 0 {
        return Snippet::default();
    }
    if text.get(..start).is_some_and(|s| s.chars().any(|c| !c.is_whitespace())) {
        out.push('…');
    }
    let mut mi = 0;
    let mut emit = |out: &mut String, c: char, at: usize| {
        while marks.get(mi).is_some_and(|m| m.1 <= at) {
            mi += 1;
        }
        let from = out.len();
        out.push(c);
        if marks.get(mi).is_some_and(|m| m.0 <= at) {
            match out_marks.last_mut() {
                Some(last) if last.1 == from => last.1 = out.len(),
                _ => out_marks.push((from, out.len())),
            }
        }
    };
    let lead_len = out.len();
    let mut count = 0;
    let mut pending_space: Option<usize> = None;
    let mut cut_end = false;
    let mut mid_word = false;
    let mut prev_wordish = false;
    // Length of `out` at the last place where a word started (or a space was put).
    let mut safe_cut = lead_len;
    for (off, c) in body.char_indices() {
        let at = start + off;
        if c.is_whitespace() {
            if count > 0 && pending_space.is_none() {
                pending_space = Some(at);
            }
            continue;
        }
        let wordish = matches!(classify(c), Class::Word | Class::Mark);
        let need = 1 + usize::from(pending_space.is_some());
        if count + need > max_chars {
            cut_end = true;
            mid_word = pending_space.is_none() && wordish && prev_wordish;
            break;
        }
        if pending_space.is_some() || !(wordish && prev_wordish) {
            safe_cut = out.len();
        }
        if let Some(sp) = pending_space.take() {
            emit(&mut out, ' ', sp);
            count += 1;
        }
        emit(&mut out, c, at);
        count += 1;
        prev_wordish = wordish;
    }
    // Rather than cut a word in two, end before it, unless that would lose the first mark or
    // leave nothing.
    let keep = out_marks.first().map_or(lead_len + 1, |m| m.1);
    if mid_word && safe_cut >= keep {
        out.truncate(safe_cut);
        out_marks.retain(|m| m.0 < safe_cut);
        if let Some(last) = out_marks.last_mut() {
            last.1 = last.1.min(safe_cut);
        }
    }
    if cut_end {
        out.push('…');
    }
    Snippet {
        text: out,
        marks: out_marks,
    }
}

/// A highlighted excerpt of `text` for the search `q`: a window of at most `max_chars`
/// characters (plus `…` at each end where the text was cut) starting a little before the first
/// place a positive term matches, at the start of a word or at a CJK character where possible.
/// Whitespace runs, newlines included, become one space. `marks` covers every match inside the
/// window: from the first matched token's start to the last one's end (a single CJK character
/// found as the prefix of a bigram marks that character only). When nothing matches (the match
/// was in another field), the excerpt is the start of the text with no marks.
///
/// Safe on any input; linear in the length of the text times the number of terms.
pub fn snippet(text: &str, q: &Query, max_chars: usize) -> Snippet {
    let marks = match_ranges(text, q);
    let start = match marks.first() {
        Some(&first) => window_start(text, first, max_chars),
        None => 0,
    };
    render(text, start, &marks, max_chars)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokens(s).into_iter().map(|t| t.text).collect()
    }

    fn q(s: &str) -> Query {
        parse_query(s).unwrap()
    }

    /// The highlighted parts of a snippet, for readable assertions.
    fn marked(s: &Snippet) -> Vec<&str> {
        s.marks.iter().map(|&(a, b)| &s.text[a..b]).collect()
    }

    #[test]
    fn english_words_are_lowercased_and_split_at_punctuation() {
        assert_eq!(
            texts("Phishing e-mail, SENT to O'Brien!"),
            ["phishing", "e", "mail", "sent", "to", "o", "brien"]
        );
        let t = tokens("  Hello world");
        assert_eq!((t[0].start, t[0].end, t[1].start, t[1].end), (2, 7, 8, 13));
        assert_eq!(index_terms("Straße ÉCOLE İstanbul"), "straße école istanbul");
    }

    #[test]
    fn words_are_prefixes_unless_quoted() {
        let query = q("phish");
        assert_eq!(
            query.terms,
            [Term {
                tokens: vec!["phish".into()],
                last_is_prefix: true,
                negated: false
            }]
        );
        let s = snippet("Report of a Phishing campaign", &query, 100);
        assert_eq!(marked(&s), ["Phishing"]);
        let exact = q("\"phish\"");
        assert!(!exact.terms[0].last_is_prefix);
        assert!(snippet("Report of a Phishing campaign", &exact, 100).marks.is_empty());
        assert_eq!(marked(&snippet("a phish here", &exact, 100)), ["phish"]);
    }

    #[test]
    fn full_width_forms_fold_to_ascii() {
        let t = tokens("ＡＢＣ１２３　ｘＹ");
        assert_eq!(t.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["abc123", "xy"]);
        assert_eq!((t[0].start, t[0].end), (0, 18));
        assert_eq!(t[1].start, 21);
        assert_eq!(index_terms("ＱＱ＂号码＂"), "qq 号码 码");
        let s = snippet("联系人ＱＱ：１２３４５", &q("qq 12345"), 100);
        assert_eq!(marked(&s), ["ＱＱ", "１２３４５"]);
    }

    #[test]
    fn combining_marks_do_not_split_words_and_long_words_are_cut() {
        let t = tokens("Cafe\u{301}s x");
        assert_eq!(t[0].text, "cafes");
        assert_eq!((t[0].start, t[0].end), (0, 7));
        let long = "a".repeat(100);
        let t = tokens(&format!("{long} b"));
        assert_eq!(t[0].text, "a".repeat(64));
        assert_eq!((t[0].start, t[0].end), (0, 100));
        assert_eq!(t[1].text, "b");
        // Circled letters are symbols to SQLite: separators here too.
        assert_eq!(texts("aⓐb"), ["a", "b"]);
    }

    #[test]
    fn domains_and_addresses_are_phrases() {
        assert_eq!(
            index_terms("Visit Example.COM from 203.0.113.5"),
            "visit example com from 203 0 113 5"
        );
        let query = q("example.com");
        assert_eq!(query.terms[0].tokens, ["example", "com"]);
        assert_eq!(query.to_fts5(), "\"example com\"*");
        assert_eq!(query.to_tsquery(), "('example' <-> 'com':*)");
        let s = snippet("Mail from evil.example.com today", &query, 100);
        assert_eq!(marked(&s), ["example.com"]);
        // The words in another order or apart do not match.
        assert!(snippet("com example", &query, 100).marks.is_empty());

        let ip = q("\"203.0.113.5\"");
        assert_eq!(ip.to_fts5(), "\"203 0 113 5\"");
        assert_eq!(ip.to_tsquery(), "('203' <-> '0' <-> '113' <-> '5')");
        let s = snippet("Login from 203.0.113.5, then 203.0.113.50", &ip, 100);
        assert_eq!(s.marks, [(11, 22)]);
        assert_eq!(&s.text[11..22], "203.0.113.5");
    }

    #[test]
    fn chinese_is_indexed_as_bigrams_and_a_last_character() {
        assert_eq!(index_terms("诈骗集团成员"), "诈骗 骗集 集团 团成 成员 员");
        let t = tokens("诈骗集团成员");
        assert_eq!((t[1].start, t[1].end, t[1].cjk_unigram), (3, 9, false));
        assert_eq!(
            (t[5].text.as_str(), t[5].start, t[5].end, t[5].cjk_unigram),
            ("员", 15, 18, true)
        );
        // A lone character is a token of its own, not a trailing unigram.
        let t = tokens("a诈b");
        assert_eq!(t[1].text, "诈");
        assert!(!t[1].cjk_unigram);
        // CJK punctuation separates runs.
        assert_eq!(index_terms("诈骗，集团。"), "诈骗 骗 集团 团");
        // Kana and Hangul are bigrammed too; the katakana middle dot separates.
        assert_eq!(index_terms("カード・한국어"), "カー ード ド 한국 국어 어");
    }

    #[test]
    fn chinese_queries_use_bigrams() {
        let query = q("诈骗");
        assert_eq!(
            query.terms,
            [Term {
                tokens: vec!["诈骗".into()],
                last_is_prefix: false,
                negated: false
            }]
        );
        let query = q("诈骗集团");
        assert_eq!(query.terms[0].tokens, ["诈骗", "骗集", "集团"]);
        assert_eq!(query.to_fts5(), "\"诈骗 骗集 集团\"");
        assert_eq!(query.to_tsquery(), "('诈骗' <-> '骗集' <-> '集团')");

        let s = snippet("诈骗集团成员", &q("集团"), 100);
        assert_eq!(s.marks, [(6, 12)]);
        assert_eq!(marked(&s), ["集团"]);
        assert_eq!(marked(&snippet("某诈骗集团成员", &q("诈骗集团"), 100)), ["诈骗集团"]);
        assert!(snippet("诈骗与集团", &q("诈骗集团"), 100).marks.is_empty());
    }

    #[test]
    fn one_chinese_character_is_a_prefix() {
        let query = q("骗");
        assert_eq!(
            query.terms,
            [Term {
                tokens: vec!["骗".into()],
                last_is_prefix: true,
                negated: false
            }]
        );
        assert_eq!(query.to_fts5(), "\"骗\"*");
        assert_eq!(query.to_tsquery(), "('骗':*)");
        // It matches the bigram starting with it and the trailing character, marking just it.
        let s = snippet("诈骗集团被骗", &query, 100);
        assert_eq!(s.marks, [(3, 6), (15, 18)]);
        // Quoted, it stays a prefix: otherwise it would only match at the end of a run.
        assert!(q("\"骗\"").terms[0].last_is_prefix);
        assert!(!q("\"诈骗\"").terms[0].last_is_prefix);
    }

    #[test]
    fn mixed_latin_and_chinese() {
        let t = tokens("QQ号码");
        let got: Vec<_> = t
            .iter()
            .map(|t| (t.text.as_str(), t.start, t.end, t.cjk_unigram))
            .collect();
        assert_eq!(got, [("qq", 0, 2, false), ("号码", 2, 8, false), ("码", 5, 8, true)]);
        let query = q("QQ号码");
        assert_eq!(query.terms[0].tokens, ["qq", "号码"]);
        assert!(!query.terms[0].last_is_prefix);
        assert_eq!(query.to_fts5(), "\"qq 号码\"");
        assert_eq!(marked(&snippet("他的QQ号码是12345", &query, 100)), ["QQ号码"]);
        assert_eq!(marked(&snippet("他的qq号码牌", &q("qq号"), 100)), ["qq号"]);

        // A CJK run inside a term keeps its trailing character, which the index has there too.
        let query = q("号码123");
        assert_eq!(query.terms[0].tokens, ["号码", "码", "123"]);
        assert_eq!(index_terms("号码123"), "号码 码 123");
        assert_eq!(marked(&snippet("QQ号码12345", &query, 100)), ["号码12345"]);
        assert_eq!(q("2024年3月").terms[0].tokens, ["2024", "年", "3", "月"]);
    }

    #[test]
    fn backend_syntax() {
        let query = q("phish -spam \"example.com\"");
        assert_eq!(query.to_fts5(), "\"phish\"* AND \"example com\" NOT \"spam\"*");
        assert_eq!(query.to_tsquery(), "('phish':*) & ('example' <-> 'com') & !('spam':*)");

        let query = q("诈骗集团 -“测试数据” 成员");
        assert_eq!(
            query.to_fts5(),
            "\"诈骗 骗集 集团\" AND \"成员\" NOT \"测试 试数 数据\""
        );
        assert_eq!(
            query.to_tsquery(),
            "('诈骗' <-> '骗集' <-> '集团') & ('成员') & !('测试' <-> '试数' <-> '数据')"
        );
        // Inside a phrase, a CJK run keeps its last character where the index has it.
        assert_eq!(q("\"测试 数据\"").to_fts5(), "\"测试 试 数据\"");

        // A missing closing quote closes at the end; quotes may follow a word directly.
        let query = q("wire\"money mule");
        assert_eq!(query.to_fts5(), "\"wire\"* AND \"money mule\"");
        // A lone '-' and pure punctuation are ignored; "--x" excludes x.
        let query = q("a - ... --x");
        assert_eq!(query.to_fts5(), "\"a\"* NOT \"x\"*");
        assert_eq!(query.to_tsquery(), "('a':*) & !('x':*)");
        // Hand-built terms are escaped, not trusted.
        let odd = Query {
            terms: vec![Term {
                tokens: vec!["it's \"x\\".into()],
                last_is_prefix: false,
                negated: false,
            }],
        };
        assert_eq!(odd.to_fts5(), "\"it's \"\"x\\\"");
        assert_eq!(odd.to_tsquery(), "('it''s \"x\\\\')");
    }

    #[test]
    fn bad_queries_are_explained() {
        assert_eq!(parse_query(""), Err(QueryError::Empty));
        assert_eq!(parse_query(" \n\u{3000}"), Err(QueryError::Empty));
        assert_eq!(parse_query("... ?! \"\" ，。"), Err(QueryError::NoWords));
        assert_eq!(parse_query("-spam -ham"), Err(QueryError::OnlyExcluded));
        let long = "a".repeat(501);
        let e = parse_query(&long).unwrap_err();
        assert_eq!(e, QueryError::TooLong { chars: 501 });
        assert!(e.to_string().contains("501 characters"), "{e}");
        assert!(parse_query(&"诈".repeat(500)).is_ok());
        let many = (0..17).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let e = parse_query(&many).unwrap_err();
        assert_eq!(e, QueryError::TooManyTerms { terms: 17 });
        assert!(e.to_string().contains("17 terms"), "{e}");
        assert!(parse_query(&many[..many.rfind(' ').unwrap()]).is_ok());
        assert!(QueryError::OnlyExcluded.to_string().contains("not excluded"));
    }

    #[test]
    fn snippets_cut_a_window_around_the_first_match() {
        let text =
            "The quick brown fox jumps over the lazy dog and then the phishing report arrives late in the evening";
        let s = snippet(text, &q("phishing"), 30);
        assert_eq!(s.text, "…the phishing report arrives…");
        assert_eq!(marked(&s), ["phishing"]);
        assert_eq!(s.marks, [(7, 15)]);

        // A match near the end gets more context before it.
        let s = snippet(text, &q("evening"), 30);
        assert_eq!(s.text, "…arrives late in the evening");
        assert_eq!(marked(&s), ["evening"]);

        // No match: the start of the text.
        let s = snippet(text, &q("zebra"), 15);
        assert_eq!(s.text, "The quick brown…");
        assert!(s.marks.is_empty());

        // Chinese: the window may start at any character.
        let zh = "本案涉及一个跨境电信网络诈骗集团，其成员分布在多个国家和地区。";
        let s = snippet(zh, &q("诈骗集团"), 12);
        assert_eq!(s.text, "…信网络诈骗集团，其成员分…");
        assert_eq!(marked(&s), ["诈骗集团"]);
        assert_eq!(s.marks, [(12, 24)]);
        // A single word longer than the window is cut inside rather than dropped.
        let s = snippet("see abcdefghijklmnop here", &q("abc"), 6);
        assert_eq!(s.text, "…abcdef…");
        assert_eq!(s.marks, [(3, 9)]);

        assert_eq!(snippet(text, &q("fox"), 0), Snippet::default());
    }

    #[test]
    fn snippets_collapse_whitespace_and_keep_marks_right() {
        let text = "  Subject:\n\n   wire   transfer\t\tto\r\n  mule account  ";
        let s = snippet(text, &q("\"transfer to\" mule"), 100);
        assert_eq!(s.text, "Subject: wire transfer to mule account");
        assert_eq!(marked(&s), ["transfer to", "mule"]);
        // Touching matches merge; matches apart stay apart.
        let s = snippet("ab ab", &q("\"ab\""), 100);
        assert_eq!(s.marks, [(0, 2), (3, 5)]);
        let s = snippet("example.com", &q("example com"), 100);
        assert_eq!(s.marks, [(0, 7), (8, 11)]);
        let s = snippet("号码", &q("号 码"), 100);
        assert_eq!(s.marks, [(0, 6)]);
    }

    #[test]
    fn index_terms_are_bounded() {
        let text = "a ".repeat(MAX_INDEXED_TOKENS + 5_000);
        let terms = index_terms(&text);
        assert_eq!(terms.split(' ').count(), MAX_INDEXED_TOKENS);
        let chinese = "诈骗".repeat(30_000);
        assert_eq!(index_terms(&chinese).split(' ').count(), MAX_INDEXED_TOKENS);
        // Long distinct words hit the byte bound first.
        let wide: String = (0..20_000).map(|i| format!("{i:0>64} ")).collect();
        let terms = index_terms(&wide);
        assert!(terms.len() <= MAX_INDEXED_BYTES);
        assert!(terms.split(' ').all(|t| t.len() == 64));
    }

    /// A small xorshift generator, enough for property tests without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u32) -> u32 {
            (self.next() % u64::from(n)) as u32
        }

        fn range(&mut self, lo: u32, hi: u32) -> char {
            char::from_u32(lo + self.below(hi - lo + 1)).unwrap_or('?')
        }

        fn char(&mut self) -> char {
            match self.below(16) {
                0 => self.range(0x20, 0x7E),
                1 => *b"\"'\\:*&|!()<>-. \t\n,;@#"
                    .get(self.below(22) as usize)
                    .unwrap_or(&b'"') as char,
                2 => self.range(0x00, 0x1F),
                3 => self.range(0x7F, 0x9F),
                4 => self.range(0x4E00, 0x9FFF),
                5 => self.range(0x3040, 0x30FF),
                6 => self.range(0xAC00, 0xD7AF),
                7 => self.range(0x1F300, 0x1FAFF),
                8 => ['\u{200D}', '\u{FE0F}', '\u{200B}', '\u{FEFF}', '\u{3000}', '\u{2028}'][self.below(6) as usize],
                9 => self.range(0x0300, 0x036F),
                10 => self.range(0xFF01, 0xFF5E),
                11 => [
                    '“', '”', '＂', '，', '。', '、', '「', '」', '・', 'İ', 'ß', 'ﬁ', 'Ⓐ', '①',
                ][self.below(14) as usize],
                12 => self.range(0x20000, 0x2FA1F),
                13 => self.range(0x0370, 0x052F),
                _ => loop {
                    if let Some(c) = char::from_u32(self.below(0x11_0000)) {
                        break c;
                    }
                },
            }
        }

        fn string(&mut self, max: u32) -> String {
            let n = self.below(max + 1);
            (0..n).map(|_| self.char()).collect()
        }
    }

    fn check_tokens(text: &str) {
        let toks = tokens(text);
        let mut last_start = 0;
        for t in &toks {
            assert!(!t.text.is_empty(), "{text:?}");
            assert!(t.text.chars().count() <= MAX_TOKEN_CHARS, "{text:?}");
            for c in t.text.chars() {
                assert!(c.is_alphanumeric(), "{c:?} in {:?} from {text:?}", t.text);
                assert!(!c.is_whitespace() && !c.is_control(), "{c:?} in {:?}", t.text);
                assert!(!"\"'\\:*&|!()<>-".contains(c), "{c:?} in {:?}", t.text);
                assert!(!is_combining_mark(c) && !is_letter_symbol(c), "{c:?} in {:?}", t.text);
            }
            assert!(t.start < t.end && t.end <= text.len());
            assert!(text.is_char_boundary(t.start) && text.is_char_boundary(t.end));
            assert!(t.start >= last_start);
            last_start = t.start;
            // A token is all CJK or all word characters.
            let cjk = t.text.chars().filter(|&c| is_cjk_char(c)).count();
            assert!(cjk == 0 || cjk == t.text.chars().count(), "{:?}", t.text);
            assert!(cjk <= 2);
        }
        let indexed = index_terms(text);
        let expected: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
        if indexed.is_empty() {
            assert!(expected.is_empty());
        } else {
            assert_eq!(indexed.split(' ').collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn tokens_never_hold_special_characters() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3_000 {
            let text = rng.string(60);
            check_tokens(&text);
        }
    }

    #[test]
    fn hostile_queries_and_snippets_stay_well_formed() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for round in 0..3_000 {
            let text = rng.string(120);
            // Queries: random text, or pieces of the text so that some match.
            let query_text = if round % 2 == 0 {
                rng.string(30)
            } else {
                let cs: Vec<char> = text.chars().collect();
                let a = rng.below(cs.len() as u32 + 1) as usize;
                let b = (a + rng.below(12) as usize).min(cs.len());
                cs[a..b].iter().collect()
            };
            let Ok(query) = parse_query(&query_text) else { continue };
            assert!(!query.terms.is_empty() && query.terms.iter().any(|t| !t.negated));
            for term in &query.terms {
                assert!(!term.tokens.is_empty());
                for tok in &term.tokens {
                    check_tokens(tok);
                    assert_eq!(texts(tok).first(), Some(tok), "{query_text:?}");
                }
            }
            let fts = query.to_fts5();
            assert_eq!(fts.matches('"').count() % 2, 0, "{fts}");
            assert!(!query.to_tsquery().contains("''"));
            for max in [0, 1, 5, 40, 500] {
                let s = snippet(&text, &query, max);
                let body = s.text.trim_start_matches('…').trim_end_matches('…');
                assert!(body.chars().count() <= max, "{s:?}");
                assert!(!body.contains(['\n', '\t']) && !body.contains("  "), "{s:?}");
                let mut prev_end = None;
                for &(a, b) in &s.marks {
                    assert!(a < b && b <= s.text.len());
                    assert!(s.text.is_char_boundary(a) && s.text.is_char_boundary(b));
                    assert!(prev_end.is_none_or(|p| p < a), "{s:?}");
                    prev_end = Some(b);
                }
            }
        }
    }

    #[test]
    fn matching_text_is_found_by_its_own_words() {
        // Any word-like piece of a text, searched for, is marked in that text.
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut found = 0;
        for _ in 0..2_000 {
            let text = rng.string(80);
            let cs: Vec<char> = text.chars().collect();
            let a = rng.below(cs.len() as u32 + 1) as usize;
            let b = (a + 1 + rng.below(8) as usize).min(cs.len());
            let piece: String = cs[a..b].iter().filter(|c| !is_quote(**c)).collect();
            let Ok(query) = parse_query(&format!("\"{piece}\"")) else {
                continue;
            };
            // A quoted piece cut in the middle of a word or run may legitimately not match; one
            // that covers whole tokens must.
            let whole = |i: usize| {
                if i == 0 || i == cs.len() {
                    return true;
                }
                let (l, r) = (classify(cs[i - 1]), classify(cs[i]));
                l != Class::Mark && r != Class::Mark && (l == Class::Sep || r == Class::Sep || l != r)
            };
            if whole(a) && whole(b) && piece.chars().count() == b - a {
                assert!(!snippet(&text, &query, 1_000).marks.is_empty(), "{piece:?} in {text:?}");
                found += 1;
            }
        }
        assert!(found > 100, "{found}");
    }

    #[test]
    fn prefixes_are_replaced_by_the_words_they_start() {
        let query = q("phish \"money mu\" e-mai 诈骗 -spa");
        assert_eq!(query.prefixes(), ["mai", "phish", "spa"]);
        let mut words = Expansions::new();
        words.insert("phish".into(), vec!["phish".into(), "phishing".into()]);
        words.insert("mai".into(), vec!["mail".into()]);
        words.insert("spa".into(), vec!["spam".into(), "spain".into()]);
        assert_eq!(
            query.to_fts5_with(&words),
            "(\"phish\" OR \"phishing\") AND \"money mu\" AND (\"e mail\") AND \"诈骗\" NOT (\"spam\" OR \"spain\")"
        );
        assert_eq!(
            query.to_tsquery_with(&words),
            "(('phish' | 'phishing')) & ('money' <-> 'mu') & ('e' <-> ('mail')) & ('诈骗') & !(('spam' | 'spain'))"
        );
        // Without expansions (or with none found) a prefix stays a prefix.
        assert_eq!(query.to_fts5_with(&Expansions::new()), query.to_fts5());
        words.insert("phish".into(), vec![]);
        assert!(query.to_tsquery_with(&words).starts_with("('phish':*)"));
    }
}
