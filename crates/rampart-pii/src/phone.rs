//! libphonenumber's validity check, on the metadata's patterns compiled once.
//!
//! `phonenumber::is_valid` matches a national number against up to eleven of its region's
//! patterns through one regex cache behind a lock, keyed by the pattern's text, and each
//! match searches the whole number rather than anchoring at its start. On a text with numbers
//! of many countries that was a third of the whole scan. Here every region's patterns are
//! compiled on first use, anchored, into regexes of their own, and the region is chosen among
//! those sharing a country code exactly as `phonenumber::validator::source_for` chooses it:
//! the answers are the crate's (a test compares them on numbers of every region).
//!
//! [`parse`] reads a number written with digits and the usual separators the way
//! `phonenumber::parse` does (RFC 3966 or natural layout, `+` or the region's international
//! prefix, the country code, the national prefix and its transform rule), on the same
//! compiled patterns and without the crate's regex cache, its lock, or its allocations per
//! step. Anything else (letters, extensions, other scripts) is left to the crate.

use std::sync::OnceLock;

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use phonenumber::{PhoneNumber, country};
use regex::Regex;

/// Country calling codes run from 1 to 999.
const CODES: usize = 1000;

/// A descriptor: the national number's lengths and pattern.
struct Desc {
    lengths: Vec<u16>,
    /// `None` if the pattern did not compile (then nothing matches, as in the crate, whose
    /// database would have failed to load).
    pattern: Option<Regex>,
}

impl Desc {
    fn new(d: &Descriptor) -> Self {
        Self {
            lengths: d.possible_length().to_vec(),
            pattern: anchored(d.national_number().as_str()),
        }
    }

    /// `Descriptor::is_match`: a listed length (if any are listed), and a match at the start.
    fn matches(&self, national: &str) -> bool {
        let fits = self.lengths.is_empty()
            || u16::try_from(national.len()).is_ok_and(|n| self.lengths.contains(&n));
        fits && self.pattern.as_ref().is_some_and(|p| p.is_match(national))
    }
}

/// The metadata's patterns span lines (whitespace is not part of them); the crate compiles
/// them ignoring whitespace and takes a match at the start. National numbers are ASCII digits,
/// so the patterns are compiled without Unicode classes (`\d` is `[0-9]`), which compiles
/// several times faster and smaller; a pattern that needs Unicode keeps it.
fn anchored(pattern: &str) -> Option<Regex> {
    let anchored = format!("^(?x:{pattern}\n)");
    regex::RegexBuilder::new(&anchored)
        .unicode(false)
        .build()
        .or_else(|_| Regex::new(&anchored))
        .ok()
}

/// The number types whose patterns make a number valid (short codes, emergency numbers and
/// the rest do not). Fixed line and mobile first: most numbers are one of them.
struct Types {
    general: Desc,
    kinds: Vec<Desc>,
}

impl Types {
    fn new(meta: &Metadata) -> Self {
        let d = meta.descriptors();
        let kinds = [
            d.fixed_line(),
            d.mobile(),
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .map(Desc::new)
        .collect();
        Self {
            general: Desc::new(d.general()),
            kinds,
        }
    }

    /// `number_type(…) != Type::Unknown`.
    fn known(&self, national: &str) -> bool {
        self.general.matches(national) && self.kinds.iter().any(|k| k.matches(national))
    }
}

/// One region of a country code; its patterns are compiled when a number first needs them.
struct Region {
    meta: &'static Metadata,
    leading: OnceLock<Option<Regex>>,
    types: OnceLock<Types>,
    parsing: OnceLock<Parsing>,
}

/// The patterns a region's numbers are parsed with.
struct Parsing {
    /// The international (IDD) prefix, anchored.
    idd: Option<Regex>,
    /// The national prefix for parsing, anchored.
    national: Option<Regex>,
}

impl Region {
    fn new(meta: &'static Metadata) -> Self {
        Self {
            meta,
            leading: OnceLock::new(),
            types: OnceLock::new(),
            parsing: OnceLock::new(),
        }
    }

    fn parsing(&self) -> &Parsing {
        self.parsing.get_or_init(|| Parsing {
            idd: self
                .meta
                .international_prefix()
                .and_then(|p| anchored(p.as_str())),
            national: self
                .meta
                .national_prefix_for_parsing()
                .and_then(|p| anchored(p.as_str())),
        })
    }

    /// libphonenumber's length check of a whole national number (`validator::length` for
    /// an unknown type): whether it is too short for the region.
    fn too_short(&self, national: &str) -> bool {
        let general = self.meta.descriptors().general();
        let (lengths, local) = (general.possible_length(), general.possible_local_length());
        let n = u16::try_from(national.len()).unwrap_or(u16::MAX);
        !local.contains(&n) && lengths.first().is_some_and(|&min| n < min)
    }

    /// `validator::length(..).is_possible()` for an unknown type.
    fn possible_length(&self, national: &str) -> bool {
        let general = self.meta.descriptors().general();
        let (lengths, local) = (general.possible_length(), general.possible_local_length());
        let n = u16::try_from(national.len()).unwrap_or(u16::MAX);
        match (lengths.first(), lengths.last()) {
            (Some(&min), Some(&max)) => {
                local.contains(&n) || n == min || (n > min && n <= max && lengths.contains(&n))
            }
            _ => false,
        }
    }

    /// `helper::national_number`, then the plain national prefix, as `parse` applies them:
    /// the national number with its national (trunk) prefix removed.
    fn strip_national_prefix(&self, national: String) -> String {
        let general = &self.types().general;
        let stripped = match &self.parsing().national {
            None => self.plain_prefix(national),
            Some(re) => match re.captures(&national) {
                None => national,
                Some(c) => {
                    let end = c.get(0).map_or(0, |m| m.end());
                    let last = c.get(c.len().saturating_sub(1));
                    match self.meta.national_prefix_transform_rule() {
                        Some(rule) if last.is_some() => {
                            let mut transformed = String::new();
                            c.expand(rule, &mut transformed);
                            transformed.push_str(national.get(end..).unwrap_or_default());
                            if general.matches(&national) && !general.matches(&transformed) {
                                national
                            } else {
                                transformed
                            }
                        }
                        // The crate strips the matched prefix whether or not what is left
                        // still fits the region (it compares the number with itself).
                        _ => national.get(end..).unwrap_or_default().to_owned(),
                    }
                }
            },
        };
        self.plain_prefix(stripped)
    }

    fn plain_prefix(&self, national: String) -> String {
        match self.meta.national_prefix() {
            Some(p) if !p.is_empty() && national.starts_with(p) => {
                national.get(p.len()..).unwrap_or_default().to_owned()
            }
            _ => national,
        }
    }

    fn types(&self) -> &Types {
        self.types.get_or_init(|| Types::new(self.meta))
    }

    /// The region's leading-digits pattern, if it has one.
    fn leading(&self) -> Option<&Regex> {
        self.leading
            .get_or_init(|| {
                self.meta
                    .leading_digits()
                    .and_then(|l| anchored(l.as_str()))
            })
            .as_ref()
    }
}

/// The regions of each country code, in the database's order.
fn regions(code: u16) -> &'static [Region] {
    static BY_CODE: [OnceLock<Vec<Region>>; CODES] = [const { OnceLock::new() }; CODES];
    let Some(slot) = BY_CODE.get(usize::from(code)) else {
        return &[];
    };
    slot.get_or_init(|| {
        let ids = DATABASE.region(&code).unwrap_or_default();
        match ids.as_slice() {
            // Non-geographic codes share the region "001": their metadata is found by code.
            ["001"] => DATABASE
                .by_code(&code)
                .unwrap_or_default()
                .into_iter()
                .take(1)
                .map(Region::new)
                .collect(),
            _ => ids
                .iter()
                .filter_map(|id| DATABASE.by_id(*id))
                .map(Region::new)
                .collect(),
        }
    })
}

/// `phonenumber::is_valid(number)`.
pub fn is_valid(number: &PhoneNumber) -> bool {
    valid(number.code().value(), &number.national().to_string())
}

/// [`is_valid`] of a country code and a national significant number (with the leading
/// zeros the crate keeps).
pub fn valid(code: u16, national: &str) -> bool {
    match regions(code) {
        [one] => Some(one.types().known(national)),
        // The first region whose leading digits start the number decides; a region without
        // leading digits is chosen only if the number is valid there.
        many => many.iter().find_map(|r| match r.leading() {
            Some(l) => l.is_match(national).then(|| r.types().known(national)),
            None => r.types().known(national).then_some(true),
        }),
    }
    .unwrap_or(false)
}

/// The region `validator::source_for` reads a national number as (the crate's choice among
/// the regions sharing a country code; [`valid`] makes it with the answer).
fn source_for(code: u16, national: &str) -> Option<&'static Region> {
    match regions(code) {
        [one] => Some(one),
        many => many.iter().find(|r| match r.leading() {
            Some(l) => l.is_match(national),
            None => r.types().known(national),
        }),
    }
}

/// The region of a region identifier.
fn region(id: country::Id) -> Option<&'static Region> {
    let meta = DATABASE.by_id(id.as_ref())?;
    regions(meta.country_code())
        .iter()
        .find(|r| r.meta.id() == meta.id())
}

/// What [`parse`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A country code and a national significant number (leading zeros kept).
    Number {
        /// The country calling code.
        code: u16,
        /// The national significant number.
        national: String,
    },
    /// No number: `phonenumber::parse` returns an error.
    NoNumber,
    /// Written with characters [`parse`] leaves to `phonenumber::parse`.
    Unsupported,
}

/// The longest input [`parse`] reads itself.
const MAX_PARSE_BYTES: usize = 64;
/// libphonenumber's bounds on a national significant number.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// Reads `s` (digits, spaces, `.-/()` and `+`) as `phonenumber::parse(region, s)` does.
pub fn parse(region: Option<country::Id>, s: &str) -> Parsed {
    let simple =
        |b: u8| b.is_ascii_digit() || matches!(b, b' ' | b'.' | b'-' | b'/' | b'(' | b')' | b'+');
    if s.len() > MAX_PARSE_BYTES || !s.bytes().all(simple) {
        return Parsed::Unsupported;
    }
    parse_simple(region, s).unwrap_or(Parsed::NoNumber)
}

/// How the country code was written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Plus,
    Idd,
    Default,
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// `helper::extract` on the natural layout: from the first `+` or digit to the last digit.
fn natural(s: &str) -> Option<&str> {
    let start = s.find(|c: char| c == '+' || c.is_ascii_digit())?;
    let rest = s.get(start..)?;
    let end = rest
        .rfind(|c: char| c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    rest.get(..end).filter(|n| !n.is_empty())
}

/// `validator::is_viable`: two digits, or `+`s and then at least three digits among
/// punctuation.
fn viable(n: &str) -> bool {
    if n.len() < MIN_NSN {
        return false;
    }
    if n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let body = n.trim_start_matches('+');
    !body.contains('+') && body.bytes().filter(u8::is_ascii_digit).count() >= 3
}

/// The RFC 3966 reading, which the crate tries first: no space, an optional `+` and country
/// code up to the first separator, then digits and separators to the end.
fn rfc3966(s: &str) -> Option<(Option<&str>, &str)> {
    if s.contains(' ') {
        return None;
    }
    let sep = |c: char| matches!(c, '-' | '.' | '(' | ')');
    let (prefix, national) = match s.strip_prefix('+') {
        Some(r) if !r.is_empty() && !r.starts_with(sep) => {
            let at = r.find(sep).unwrap_or(r.len());
            (r.get(..at), r.get(at..)?)
        }
        _ => (None, s),
    };
    let ok = !national.is_empty() && national.chars().all(|c| c.is_ascii_digit() || sep(c));
    ok.then_some((prefix, national))
}

fn parse_simple(region: Option<country::Id>, s: &str) -> Option<Parsed> {
    let (prefix, written) = match rfc3966(s) {
        Some((prefix, national)) => (prefix, national),
        None => (None, natural(s)?),
    };
    if !viable(written) {
        return None;
    }
    let home = match region {
        Some(id) => Some(self::region(id)?),
        None => None,
    };
    let idd = home.and_then(|r| r.parsing().idd.as_ref());
    // The international prefix: a `+`, or the region's IDD prefix (not followed by a 0).
    let mut source = if prefix.is_some() || written.starts_with('+') {
        Source::Plus
    } else {
        Source::Default
    };
    let mut national = digits_of(written);
    if prefix.is_none()
        && let Some(end) = idd.and_then(|re| re.find(&national)).map(|m| m.end())
        && !national.get(end..).unwrap_or_default().starts_with('0')
    {
        if source != Source::Plus {
            source = Source::Idd;
        }
        national = national.get(end..).unwrap_or_default().to_owned();
    }
    // The country code.
    let code: u16 = match source {
        Source::Plus | Source::Idd => {
            if national.len() <= MIN_NSN {
                return None;
            }
            if let Some(p) = prefix {
                let code: u16 = digits_of(p).parse().ok()?;
                DATABASE.by_code(&code)?;
                code
            } else {
                if national.starts_with('0') {
                    return None;
                }
                let (len, code) = (1..=3).find_map(|len| {
                    let code: u16 = national.get(..len)?.parse().ok()?;
                    DATABASE.by_code(&code).map(|_| (len, code))
                })?;
                national = national.get(len..).unwrap_or_default().to_owned();
                code
            }
        }
        Source::Default => {
            // A number written with its country code but no `+` loses it when it does not
            // fit the region as written.
            let home = home?;
            let code = home.meta.country_code();
            let written_code = code.to_string();
            if national.starts_with(&written_code)
                && (!home.types().general.matches(&national) || !home.possible_length(&national))
            {
                national = national
                    .get(written_code.len()..)
                    .unwrap_or_default()
                    .to_owned();
            }
            code
        }
    };
    // The region, and its national prefix, kept off unless that leaves too few digits.
    let meta = match home {
        Some(r) => Some(r),
        None => source_for(code, national.trim_start_matches('0')),
    };
    if let Some(r) = meta {
        let potential = r.strip_national_prefix(national.clone());
        if !r.too_short(&potential) {
            national = potential;
        }
    }
    if !(MIN_NSN..=MAX_NSN).contains(&national.len()) {
        return None;
    }
    // `NationalNumber`: leading zeros, then a value under 2^56.
    let value: u64 = national.trim_start_matches('0').parse().ok()?;
    (value < 1 << 56).then_some(Parsed::Number { code, national })
}

/// Whether `national` (without a trunk prefix) has one of region `id`'s lengths and fits its
/// general pattern: what libphonenumber checks first, at a few tens of nanoseconds.
pub fn fits_region(id: country::Id, national: &str) -> bool {
    let Some(meta) = DATABASE.by_id(id.as_ref()) else {
        return false;
    };
    regions(meta.country_code())
        .iter()
        .find(|r| r.meta.id() == meta.id())
        .is_some_and(|r| r.types().general.matches(national))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: reproducible numbers without a dependency.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The example numbers libphonenumber's metadata gives for a country code's regions.
    fn examples(code: u16) -> Vec<String> {
        DATABASE
            .by_code(&code)
            .unwrap_or_default()
            .iter()
            .flat_map(|m| {
                let d = m.descriptors();
                [d.fixed_line(), d.mobile(), d.toll_free(), d.voip(), d.uan()]
            })
            .flatten()
            .filter_map(|d| d.example().map(str::to_owned))
            .collect()
    }

    #[test]
    fn validity_is_libphonenumbers_on_numbers_of_every_country_code() {
        // Each region's example numbers (valid by construction) and, around them, numbers
        // with digits changed, dropped and added (mostly invalid): both answers must agree.
        let mut state = 7;
        let (mut checked, mut valid) = (0usize, 0usize);
        for code in 1..1000u16 {
            let examples = examples(code);
            for ex in &examples {
                let mut variants = vec![ex.clone()];
                for _ in 0..12 {
                    let mut v: Vec<u8> = ex.bytes().collect();
                    let r = next(&mut state);
                    let at = usize::try_from(r % 16).unwrap_or(0) % v.len().max(1);
                    let digit = b'0' + u8::try_from((r >> 8) % 10).unwrap_or(0);
                    match (r >> 16) % 3 {
                        0 => {
                            if let Some(b) = v.get_mut(at) {
                                *b = digit;
                            }
                        }
                        1 if v.len() > 2 => {
                            v.remove(at);
                        }
                        _ => v.insert(at, digit),
                    }
                    variants.push(String::from_utf8(v).unwrap_or_default());
                }
                for v in variants {
                    let Ok(n) = phonenumber::parse(None, format!("+{code}{v}")) else {
                        continue;
                    };
                    let theirs = phonenumber::is_valid(&n);
                    assert_eq!(is_valid(&n), theirs, "+{code} {v}");
                    checked += 1;
                    valid += usize::from(theirs);
                }
            }
        }
        // Both kinds of answer were compared, many times over.
        assert!(checked > 5000, "{checked} numbers");
        assert!(
            valid > 1000 && checked - valid > 1000,
            "{valid} of {checked} valid"
        );
    }

    /// `phonenumber::parse`'s answer as a [`Parsed`], or `None` where the crate panics.
    fn theirs(region: Option<country::Id>, s: &str) -> Option<Parsed> {
        let s = s.to_owned();
        std::panic::catch_unwind(move || match phonenumber::parse(region, &s) {
            Ok(n) => Parsed::Number {
                code: n.code().value(),
                national: n.national().to_string(),
            },
            Err(_) => Parsed::NoNumber,
        })
        .ok()
    }

    #[test]
    fn parsing_is_libphonenumbers_on_numbers_written_every_way() {
        use country::Id;
        // Regions with a trunk prefix, a national-prefix transform rule (AR, BR, MX), an
        // international prefix other than 00 (US, JP, AU, RU), several regions per code.
        let regions = [
            None,
            Some(Id::GB),
            Some(Id::DE),
            Some(Id::FR),
            Some(Id::IT),
            Some(Id::ES),
            Some(Id::NL),
            Some(Id::JP),
            Some(Id::IN),
            Some(Id::AU),
            Some(Id::CA),
            Some(Id::US),
            Some(Id::AR),
            Some(Id::BR),
            Some(Id::MX),
            Some(Id::RU),
            Some(Id::KZ),
            Some(Id::HU),
            Some(Id::CN),
            Some(Id::CH),
        ];
        let seps = [" ", "-", ".", "/", "(", ")", " (0) ", "  ", "+"];
        let mut state = 11;
        let (mut checked, mut numbers, mut panics) = (0usize, 0usize, 0usize);
        for code in 1..1000u16 {
            let examples = examples(code);
            for ex in &examples {
                for _ in 0..6 {
                    let r = next(&mut state);
                    // How the number is introduced: +code, 00code, 011code, a trunk 0,
                    // the code without +, or nothing.
                    let head = match r % 7 {
                        0 | 1 => format!("+{code}"),
                        2 => format!("00{code}"),
                        3 => format!("011{code}"),
                        4 => "0".to_owned(),
                        5 => code.to_string(),
                        _ => String::new(),
                    };
                    let mut body = String::new();
                    let mut k = r >> 8;
                    for (i, c) in ex.chars().enumerate() {
                        if i > 0 && k.is_multiple_of(4) {
                            let at = usize::try_from((k >> 2) % 9).unwrap_or(0);
                            body.push_str(seps.get(at).copied().unwrap_or(" "));
                        }
                        k = next(&mut state);
                        body.push(c);
                    }
                    if (r >> 40).is_multiple_of(5) {
                        body.pop();
                    }
                    let gap = if (r >> 44).is_multiple_of(2) {
                        " "
                    } else {
                        "-"
                    };
                    let s = if head.is_empty() {
                        body
                    } else {
                        format!("{head}{gap}{body}")
                    };
                    let region = regions
                        .get(usize::try_from((r >> 48) % 20).unwrap_or(0))
                        .copied()
                        .flatten();
                    let Some(want) = theirs(region, &s) else {
                        panics += 1;
                        continue;
                    };
                    assert_eq!(parse(region, &s), want, "{s:?} in {region:?}");
                    checked += 1;
                    numbers += usize::from(matches!(want, Parsed::Number { .. }));
                }
            }
        }
        assert!(checked > 3000, "{checked} numbers");
        assert!(
            numbers > 1000 && checked - numbers > 300,
            "{numbers} of {checked}"
        );
        assert!(panics < checked / 100, "{panics} panics");
        // Letters and extensions are the crate's.
        assert_eq!(parse(None, "+1 800 FLOWERS"), Parsed::Unsupported);
        assert_eq!(parse(None, "+44 20 7946 0958 ext. 12"), Parsed::Unsupported);
    }

    #[test]
    fn a_region_fits_by_length_and_general_pattern() {
        assert!(fits_region(country::Id::GB, "2079460000"));
        assert!(!fits_region(country::Id::GB, "20794600"));
        assert!(fits_region(country::Id::DE, "30123456"));
        assert!(!fits_region(country::Id::JP, "0"));
    }
}
