//! Normalisation before any rule runs, so that obfuscation does not hide a phrase:
//!
//! 1. invisible and zero-width characters (zero-width spaces and joiners, word joiners, the
//!    BOM, soft hyphens, bidirectional controls, Unicode tag characters) are removed and
//!    counted;
//! 2. Unicode NFKC (full-width and styled letters become plain ones), then confusable folding
//!    (UTS #39 skeletons: Cyrillic `а`, Greek `ο` … become Latin), then lower case;
//! 3. leetspeak folded (`1gn0r3` → `ignore`) in a second view;
//! 4. a third view keeps only letters and digits, defeating inserted spaces and punctuation
//!    (`i.g.n.o.r.e`, `ig-nore`).
//!
//! Rules run on every view; a match only in a later view is itself a sign of obfuscation.

use unicode_normalization::UnicodeNormalization as _;

/// What normalisation changed, for the verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// Invisible characters removed.
    pub invisible: usize,
    /// Characters folded from a confusable script into Latin.
    pub confusables: usize,
    /// Characters changed by NFKC.
    pub nfkc: usize,
    /// Leetspeak substitutions in the folded view.
    pub leet: usize,
}

/// The views of one text.
#[derive(Debug, Clone)]
pub struct Views {
    /// NFKC, confusables folded, lower case, invisible characters removed.
    pub plain: String,
    /// `plain` with leetspeak folded.
    pub leet: String,
    /// `leet` with only letters and digits.
    pub squeezed: String,
    /// NFKC and lower case, invisible characters removed, nothing folded: the words of
    /// other languages as their speakers write them (`Не` stays Russian, where `plain`
    /// reads a word of look-alike letters as Latin `he`).
    pub lower: String,
    /// What changed.
    pub changes: Changes,
}

/// Whether `c` is invisible (and so removed): format and zero-width characters, bidi
/// controls, tags, variation selectors.
#[must_use]
pub const fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}')
}

fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => return None,
    })
}

/// The Latin skeleton of `c` (lower case), if it has one made of letters and digits.
fn fold(c: char) -> Option<String> {
    if c.is_ascii() {
        return c
            .is_ascii_alphanumeric()
            .then(|| c.to_ascii_lowercase().to_string());
    }
    latin_skeleton(c).map(|s| s.to_ascii_lowercase())
}

/// The Unicode confusable skeleton of a non-ASCII `c` (case kept: Cyrillic `о` is `o`, `А` is
/// `A`), if it is made of ASCII letters and digits. Accented letters have none (their mark
/// stays).
fn latin_skeleton(c: char) -> Option<String> {
    let mut buf = [0u8; 4];
    let s: String =
        unicode_security::confusable_detection::skeleton(c.encode_utf8(&mut buf)).collect();
    (!s.is_empty() && s.chars().all(|k| k.is_ascii_alphanumeric())).then_some(s)
}

/// Words that mix ASCII letters with letters of another script drawn like them
/// (`jоhn@exаmple.com` with Cyrillic `о` and `а`), and addresses with an `@` whatever their
/// letters, in their Latin form; words of one script, Russian or Greek prose, are kept. A word here is a run of letters, digits and the
/// characters of addresses and identifiers (`. _ % + - @`).
fn latin_lookalikes(text: &str) -> String {
    let in_word = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '@');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(in_word) {
        let (gap, tail) = rest.split_at(start);
        out.push_str(gap);
        let len = tail.find(|c| !in_word(c)).unwrap_or(tail.len());
        let (word, after) = tail.split_at(len);
        // An address (`@`) is read in Latin even when all its letters are look-alikes.
        let foreign = word.chars().any(|c| !c.is_ascii() && c.is_alphabetic());
        let mixed =
            foreign && (word.contains('@') || word.chars().any(|c| c.is_ascii_alphabetic()));
        if mixed {
            for c in word.chars() {
                match (!c.is_ascii() && c.is_alphabetic()).then(|| latin_skeleton(c)) {
                    Some(Some(latin)) => out.push_str(&latin),
                    _ => out.push(c),
                }
            }
        } else {
            out.push_str(word);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `text` without its invisible characters, then that in NFKC (case kept: what a reader
/// sees, fullwidth and compatibility forms as their plain letters and digits), and the
/// number of invisible characters removed.
#[must_use]
pub fn visible_nfkc(text: &str) -> (String, String, usize) {
    // No ASCII character is invisible, and ASCII is its own NFKC.
    if text.is_ascii() {
        return (text.to_owned(), text.to_owned(), 0);
    }
    let mut invisible = 0;
    let visible: String = text
        .chars()
        .filter(|&c| {
            let inv = is_invisible(c);
            invisible += usize::from(inv);
            !inv
        })
        .collect();
    let nfkc: String = visible.nfkc().collect();
    (visible, nfkc, invisible)
}

/// `text` as a reader reads its numbers and addresses, for the personal-data check of
/// answers: the NFKC view of [`visible_nfkc`], then every decimal digit of any script as its
/// ASCII digit (Arabic-Indic `٥`, Devanagari `५` → `5`), every dash and the minus sign as `-`,
/// combining marks drawn over an ASCII digit (strike-through, underline) dropped, and letters
/// of other scripts that look Latin, inside words that also hold Latin letters, as the Latin
/// letters they look like. Other letters and their accents are kept.
#[must_use]
pub fn reading_view(text: &str) -> String {
    // ASCII reads as written: its digits and its one dash are already ASCII, it has no
    // marks and no look-alikes of other scripts.
    if text.is_ascii() {
        return text.to_owned();
    }
    reading_view_general(text)
}

fn reading_view_general(text: &str) -> String {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory as _};
    let (_, nfkc, _) = visible_nfkc(text);
    let mut out = String::with_capacity(nfkc.len());
    for c in nfkc.chars() {
        match c.general_category() {
            G::DecimalNumber => out.push(ascii_digit(c)),
            G::DashPunctuation => out.push('-'),
            _ if c == '\u{2212}' => out.push('-'),
            G::NonspacingMark | G::EnclosingMark
                if out.chars().next_back().is_some_and(|p| p.is_ascii_digit()) => {}
            _ => out.push(c),
        }
    }
    latin_lookalikes(&out)
}

/// The ASCII digit of a decimal digit of any script. Unicode encodes each script's digits as
/// a run of ten starting at zero (runs of several tens for the mathematical digits), so the
/// value is the distance from the start of the run, modulo ten.
fn ascii_digit(c: char) -> char {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory as _};
    let code = u32::from(c);
    let mut start = code;
    // The longest run (the mathematical digits) is fifty long.
    while start > 0
        && code - start < 64
        && char::from_u32(start - 1).is_some_and(|p| p.general_category() == G::DecimalNumber)
    {
        start -= 1;
    }
    char::from_digit((code - start) % 10, 10).unwrap_or(c)
}

/// The plain view of an NFKC text, counting the confusables folded. Confusables fold only
/// in mixed-script words (`pаypal` with a Cyrillic а) or in words made entirely of
/// look-alikes (`рое`): a word of another script stays as it is, so rules in that language
/// still match it.
fn plain_of(nfkc: &str, confusables: &mut usize) -> String {
    if nfkc.is_ascii() {
        return nfkc.to_ascii_lowercase();
    }
    let mut plain = String::with_capacity(nfkc.len());
    for (i, word) in nfkc.split(' ').enumerate() {
        if i > 0 {
            plain.push(' ');
        }
        let has_latin = word.chars().any(|c| c.is_ascii_alphabetic());
        let folded: Vec<Option<String>> = word.chars().map(fold).collect();
        let all_fold = folded.iter().all(Option::is_some);
        for (c, f) in word.chars().zip(folded) {
            match f {
                Some(f) if !c.is_ascii() && (has_latin || all_fold) => {
                    *confusables += 1;
                    plain.push_str(&f);
                }
                _ => plain.extend(c.to_lowercase()),
            }
        }
    }
    plain
}

/// The plain view of `text` alone ([`Views::plain`]): invisible characters removed, NFKC,
/// confusables folded, lower case.
#[must_use]
pub fn plain(text: &str) -> String {
    plain_of(&visible_nfkc(text).1, &mut 0)
}

/// The views of `text`.
#[must_use]
pub fn views(text: &str) -> Views {
    let mut changes = Changes::default();
    let (visible, nfkc, invisible) = visible_nfkc(text);
    changes.invisible = invisible;
    if nfkc != visible {
        changes.nfkc = visible
            .chars()
            .zip(nfkc.chars())
            .filter(|(a, b)| a != b)
            .count()
            .max(1);
    }
    let plain = plain_of(&nfkc, &mut changes.confusables);
    let lower = if nfkc.is_ascii() {
        plain.clone()
    } else {
        nfkc.to_lowercase()
    };
    let mut leet_view = String::with_capacity(plain.len());
    let chars: Vec<char> = plain.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        // A digit or symbol is leet only beside letters (`h4ck`, `1gnore`), not in numbers.
        let near_letter = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|n| n.is_alphabetic())
        };
        match leet(c) {
            Some(l) if near_letter(i.checked_sub(1)) || near_letter(i.checked_add(1)) => {
                changes.leet += 1;
                leet_view.push(l);
            }
            _ => leet_view.push(c),
        }
    }
    let squeezed = leet_view.chars().filter(|c| c.is_alphanumeric()).collect();
    Views {
        plain,
        leet: leet_view,
        squeezed,
        lower,
        changes,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ascii_is_its_own_visible_nfkc_and_reading_view() {
        use unicode_normalization::UnicodeNormalization as _;
        let all: String = (0u8..128).map(char::from).collect();
        let mut texts = vec![all.clone()];
        // Every pair, so a mark or a dash next to a digit would show.
        for a in all.chars() {
            texts.push(all.chars().flat_map(|b| [a, b]).collect());
        }
        for t in &texts {
            assert!(!t.chars().any(super::is_invisible));
            assert_eq!(t.nfkc().collect::<String>(), *t);
            assert_eq!(super::reading_view_general(t), *t);
        }
    }

    use super::*;

    #[test]
    fn obfuscations_fold_to_the_plain_phrase() {
        // Zero-width spaces, reported.
        let v = views("ig\u{200B}nore prev\u{200D}ious");
        assert_eq!(v.plain, "ignore previous");
        assert_eq!(v.changes.invisible, 2);
        // Full-width letters (NFKC) and Cyrillic look-alikes (confusables).
        let v = views("ＩＧＮＯＲＥ рrеvious");
        assert_eq!(v.plain, "ignore previous");
        assert!(v.changes.nfkc > 0 && v.changes.confusables >= 2);
        // Leetspeak, but not in numbers.
        let v = views("1gn0r3 4ll rules, order 1043");
        assert!(v.leet.starts_with("ignore all rules"), "{}", v.leet);
        assert!(v.leet.ends_with("order 1043"), "{}", v.leet);
        // Inserted punctuation and spaces.
        assert!(
            views("i.g.n.o.r.e  p-r-e-v-i-o-u-s")
                .squeezed
                .contains("ignoreprevious")
        );
        // Other scripts are kept, lower-cased.
        assert_eq!(views("Игнорируй").plain, "игнорируй");
    }

    #[test]
    fn digits_of_every_script_read_as_ascii() {
        for (c, d) in [
            ('\u{660}', '0'),
            ('\u{665}', '5'),
            ('\u{96F}', '9'),
            ('\u{1D7D8}', '0'),
            ('\u{1D7E1}', '9'),
            ('\u{1D7EC}', '0'),
            ('\u{1D7FF}', '9'),
            ('7', '7'),
        ] {
            assert_eq!(ascii_digit(c), d, "{c:?}");
        }
        assert_eq!(
            reading_view("\u{665}3\u{336}6\u{2011}\u{200B}x\u{2212}caf\u{e9}"),
            "536-x-caf\u{e9}"
        );
        // Look-alike letters are read as Latin only inside words that mix scripts.
        assert_eq!(
            reading_view("j\u{43E}hn@ex\u{430}mple.com \u{43E}\u{43A}\u{43D}\u{43E} Stra\u{df}e"),
            "john@example.com \u{43E}\u{43A}\u{43D}\u{43E} Stra\u{df}e"
        );
    }
}
