//! libphonenumber's validity check, on the metadata's patterns compiled once.
//!
//! `phonenumber::is_valid` matches a national number against up to eleven of its region's
//! patterns through one regex cache behind a lock, keyed by the pattern's text, and each
//! match searches the whole number rather than anchoring at its start. On a text with numbers
//! of many countries that was a third of the whole scan. Here every region's patterns are
//! compiled on first use, anchored, into regexes of their own, and the region is chosen among
//! those sharing a country code exactly as `phonenumber::validator::source_for` chooses it:
//! the answers are the crate's (a test compares them on numbers of every region).

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
}

impl Region {
    fn new(meta: &'static Metadata) -> Self {
        Self {
            meta,
            leading: OnceLock::new(),
            types: OnceLock::new(),
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
    let national = number.national().to_string();
    let regions = regions(number.code().value());
    match regions {
        [one] => Some(one.types().known(&national)),
        // The first region whose leading digits start the number decides; a region without
        // leading digits is chosen only if the number is valid there.
        many => many.iter().find_map(|r| match r.leading() {
            Some(l) => l.is_match(&national).then(|| r.types().known(&national)),
            None => r.types().known(&national).then_some(true),
        }),
    }
    .unwrap_or(false)
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

    #[test]
    fn validity_is_libphonenumbers_on_numbers_of_every_country_code() {
        // Each region's example numbers (valid by construction) and, around them, numbers
        // with digits changed, dropped and added (mostly invalid): both answers must agree.
        let mut state = 7;
        let (mut checked, mut valid) = (0usize, 0usize);
        for code in 1..1000u16 {
            let Some(metas) = DATABASE.by_code(&code) else {
                continue;
            };
            let examples: Vec<String> = metas
                .iter()
                .flat_map(|m| {
                    let d = m.descriptors();
                    [d.fixed_line(), d.mobile(), d.toll_free(), d.voip(), d.uan()]
                })
                .flatten()
                .filter_map(|d| d.example().map(str::to_owned))
                .collect();
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

    #[test]
    fn a_region_fits_by_length_and_general_pattern() {
        assert!(fits_region(country::Id::GB, "2079460000"));
        assert!(!fits_region(country::Id::GB, "20794600"));
        assert!(fits_region(country::Id::DE, "30123456"));
        assert!(!fits_region(country::Id::JP, "0"));
    }
}
