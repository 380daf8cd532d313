//! Postal addresses in the layouts of many countries.
//!
//! An address is assembled from *segments* found around its numbers:
//!
//! - **streets** with a house number, strong on their own:
//!   number first (`221B Baker Street`, `47, rue de la Paix`, `06/461, Ram Marg`),
//!   name first with a Romance street word (`Calle Mayor 5`, `Via Roma, 10`),
//!   Germanic compounds (`Wendestr. 86/79`, `Kikiweg 460`, `Berliner Straße 5`), and Japanese
//!   addresses from a prefecture to their block numbers (`東京都千代田区千代田1丁目1番1号`);
//! - **postcodes** validated per country: medium on their own where the layout is distinctive
//!   (UK and Canadian postcodes, `NSW 2000`, `, DC 20500`, `〒100-0001`), weak where it is only
//!   digits (`75002 Paris`, `1012 LG`, `Mumbai 400001`);
//!
//! and segments separated only by commas, dashes and place names (`, Segovia, `) become one
//! address. A group with a street scores 0.7 (0.8 with a postcode), a postcode with its town
//! 0.55, and digits that only look like a postcode 0.3, which a context word ("lives",
//! "Adresse", "ship to") must lift over the threshold.

use aho_corasick::AhoCorasick;
use regex::Regex;

use crate::{Candidate, Entity, boundary_before, cand, window_end, window_start};

/// Words that name a street and come before its name (Romance languages; some English).
const STREET_WORDS: &[&str] = &[
    // Spanish
    "calle",
    "c/",
    "avenida",
    "avda.",
    "avda",
    "av.",
    "paseo",
    "plaza",
    "pza.",
    "camino",
    "carretera",
    "ctra.",
    "ronda",
    "travesía",
    "travesia",
    "glorieta",
    "urbanización",
    "urbanizacion",
    "pasaje",
    "callejón",
    "callejon",
    "cuesta",
    "alameda",
    "rambla",
    "vía",
    "c.",
    "carrer",
    "vial",
    "acceso",
    "pasadizo",
    "cañada",
    "ramal",
    "bulevar",
    "senda",
    "vereda",
    "polígono",
    "poligono",
    "barrio",
    "muelle",
    "subida",
    "bajada",
    // Italian
    "via",
    "viale",
    "v.le",
    "piazza",
    "p.za",
    "p.zza",
    "piazzale",
    "corso",
    "largo",
    "vicolo",
    "strada",
    "contrada",
    "borgo",
    "stretto",
    "salita",
    "lungomare",
    "vico",
    "rotonda",
    "incrocio",
    "traversa",
    "vicoletto",
    "piazzetta",
    "circonvallazione",
    "località",
    "loc.",
    "frazione",
    "fraz.",
    "lungolago",
    "lungotevere",
    "lungarno",
    "fondamenta",
    "rione",
    "stradone",
    "passaggio",
    // Portuguese
    "rua",
    "travessa",
    // French
    "rue",
    "avenue",
    "boulevard",
    "bd",
    "bd.",
    "place",
    "chemin",
    "allée",
    "allee",
    "impasse",
    "quai",
    "cours",
    "route",
    "square",
    "passage",
    "voie",
    "sentier",
    "faubourg",
    "esplanade",
    "promenade",
    "ruelle",
    "cité",
    "rond-point",
];

/// Street words that are also ordinary English: they start a street only when capitalised.
const AMBIGUOUS_STREET_WORDS: &[&str] = &[
    "via",
    "place",
    "route",
    "square",
    "passage",
    "cours",
    "corso",
    "largo",
    "borgo",
    "strada",
    "stretto",
    "promenade",
    "esplanade",
    "avenue",
    "boulevard",
    "plaza",
];

/// Endings of German, Dutch and Scandinavian street names written as one word (`Putzgasse`,
/// `Kikiweg`, `Vesterbrogade`).
const COMPOUND_ENDINGS: &[&str] = &[
    "straße",
    "strasse",
    "str.",
    "weg",
    "gasse",
    "platz",
    "allee",
    "damm",
    "ufer",
    "chaussee",
    "pfad",
    "steig",
    "markt",
    "graben",
    "stieg",
    "twiete",
    "promenade",
    "straat",
    "laan",
    "plein",
    "gracht",
    "kade",
    "singel",
    "dijk",
    "dreef",
    "steeg",
    "baan",
    "boulevard",
    "pad",
    "hof",
    "ring",
    // Danish, Norwegian, Swedish.
    "gade",
    "vej",
    "stræde",
    "plads",
    "veien",
    "vegen",
    "gatan",
    "vägen",
    "torget",
];

/// Street names ending in `ring` written as one word (`Kaiserring`) share their ending with
/// English words (`Engineering 101`): they are streets only when a postcode follows.
const RING: &str = "ring";

/// German street words written apart (`Berliner Straße`, `Am Alten Markt`).
const GERMANIC_STREET_WORDS: &[&str] = &[
    "Straße", "Strasse", "Str.", "Weg", "Platz", "Allee", "Gasse", "Ring", "Damm", "Ufer",
    "Chaussee", "Markt", "Steig", "Pfad", "Graben",
];

/// Lower-case words inside street and place names.
const PARTICLES: &[&str] = &[
    "de", "del", "della", "delle", "dello", "degli", "dei", "di", "da", "das", "dos", "do", "du",
    "des", "la", "las", "los", "le", "les", "el", "lo", "y", "e", "et", "van", "von", "der", "den",
    "am", "an", "im", "zum", "zur", "sur", "sous", "en", "upon", "on", "in", "of", "the",
];

/// US states, districts and territories, and the military "states".
const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP", "AA", "AE", "AP",
];

/// Australian states and territories.
const AU_STATES: &[&str] = &[
    "NSW", "VIC", "QLD", "SA", "WA", "TAS", "NT", "ACT", "Vic", "Qld", "Tas",
];

/// Canadian provinces and territories.
const CA_PROVINCES: &[&str] = &[
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
];

/// Royal Mail's postcode areas.
const UK_AREAS: &[&str] = &[
    "AB", "AL", "B", "BA", "BB", "BD", "BF", "BH", "BL", "BN", "BR", "BS", "BT", "BX", "CA", "CB",
    "CF", "CH", "CM", "CO", "CR", "CT", "CV", "CW", "DA", "DD", "DE", "DG", "DH", "DL", "DN", "DT",
    "DY", "E", "EC", "EH", "EN", "EX", "FK", "FY", "G", "GL", "GU", "GY", "HA", "HD", "HG", "HP",
    "HR", "HS", "HU", "HX", "IG", "IM", "IP", "IV", "JE", "KA", "KT", "KW", "KY", "L", "LA", "LD",
    "LE", "LL", "LN", "LS", "LU", "M", "ME", "MK", "ML", "N", "NE", "NG", "NN", "NP", "NR", "NW",
    "OL", "OX", "PA", "PE", "PH", "PL", "PO", "PR", "RG", "RH", "RM", "S", "SA", "SE", "SG", "SK",
    "SL", "SM", "SN", "SO", "SP", "SR", "SS", "ST", "SW", "SY", "TA", "TD", "TF", "TN", "TQ", "TR",
    "TS", "TW", "UB", "W", "WA", "WC", "WD", "WF", "WN", "WR", "WS", "WV", "YO", "ZE",
];

/// Japan's 47 prefectures.
const PREFECTURES: &[&str] = &[
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// How strong a segment is on its own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Strength {
    /// Digits in a postcode's layout: an address only beside a street or a context word.
    Weak,
    /// A postcode whose layout is distinctive, with its town or state.
    Medium,
    /// A street with its house number.
    Strong,
}

#[derive(Clone, Copy, Debug)]
struct Segment {
    start: usize,
    end: usize,
    strength: Strength,
}

/// The longest gap (in bytes) of commas, dashes and place names between two segments of one
/// address.
const MAX_GAP: usize = 64;
/// Place-name words a gap may hold.
const MAX_GAP_WORDS: usize = 4;
/// How far before a house number its street name is looked for, in words.
const MAX_NAME_WORDS: usize = 6;

pub(crate) struct Addresses {
    number_first: Regex,
    after_number: Regex,
    unit_before: Regex,
    uk: Regex,
    canada: Regex,
    locality_after: Regex,
    nl_letters: Regex,
    japan_rest: Regex,
    japan_postcode_before: Regex,
    prefectures: AhoCorasick,
}

impl Addresses {
    pub(crate) fn new() -> Result<Self, String> {
        let name = r"\p{Lu}[\p{L}'’]*";
        let particles = PARTICLES.join("|");
        let romance = STREET_WORDS
            .iter()
            .map(|w| regex::escape(w))
            .collect::<Vec<_>>()
            .join("|");
        let suffixes = crate::lexicon::STREET_SUFFIXES.join("|");
        let number_first = format!(
            concat!(
                r"^[0-9]{{1,5}}[A-Za-z]?(?:[/\-][0-9]{{1,5}}[A-Za-z]?)?(?:[ \t]?(?:bis|ter))?,?[ \t]+",
                r"(?:(?i:{romance})[ \t]+(?:(?:{particles})[ \t]+|[dlDL]['’])*{name}",
                r"(?:(?:[ \t]+|-)(?:(?:{particles})[ \t]+|[dlDL]['’])*{name}){{0,3}}",
                r"|(?:{name}(?:-{name})?\.?[ \t]+){{1,3}}(?:{suffixes})\b\.?)",
                r"(?:,?[ \t]+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|\#)[ \t]*[A-Za-z0-9\-]{{1,8}})?",
            ),
            romance = romance,
            particles = particles,
            name = name,
            suffixes = suffixes,
        );
        let build = |p: &str| Regex::new(p).map_err(|e| e.to_string());
        let prefectures = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(PREFECTURES)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            number_first: build(&number_first)?,
            after_number: build(concat!(
                r"^[A-Za-z]?(?:[/\-][0-9]{1,5}[A-Za-z]?)?",
                r"(?:,?[ \t]+(?:Puerta|Pta\.|Piso|Planta|Esc\.|Escalera|Bajo|Interno|Int\.|Scala|",
                r"Piano|Apt\.?|Stiege|Tür|Top|bus|hs)[ \t]*[0-9A-Za-z]{1,4}\.?[ºª°]?){0,3}",
            ))?,
            unit_before: build(concat!(
                r"(?:Flat|Studio|Unit|Apartment|Apt\.?|Suite|Room|Maisonette|Level|",
                r"(?:H|House|Plot|Flat|Door)\.? ?No\.?)[ \t]+",
                r"(?:[0-9]{1,5}[A-Za-z]?,?[ \t]+)?$",
            ))?,
            uk: build(r"^([A-Z]{1,2})[0-9][A-Z0-9]?[ \t]?[0-9][ABD-HJLNP-UW-Z]{2}\b")?,
            canada: build(
                r"^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z][ \t\-]?[0-9][ABCEGHJ-NPRSTV-Z][0-9]\b",
            )?,
            locality_after: build(&format!(
                r"^,?[ \t]+{name}\b(?:(?:[ \t]+|-)(?:(?:{particles})[ \t]+)?{name}\b){{0,2}}(?:[ \t]+(?:\([A-Z]{{2}}\)|[A-Z]{{2}}\b))?",
            ))?,
            nl_letters: build(r"^[ \t]?([A-Z]{2})\b")?,
            japan_rest: build(concat!(
                r"^[\p{Han}\p{Hiragana}\p{Katakana}ー々ヶ]{1,30}?",
                r"[0-9０-９一二三四五六七八九十]{1,4}(?:丁目|番地|番|号|[-－‐−])",
                r"(?:[0-9０-９一二三四五六七八九十]{1,4}(?:丁目|番地|番|号|[-－‐−])?){0,3}",
                r"(?:[ 　]?[\p{Katakana}\p{Han}ー]{1,20}[0-9０-９]{1,4}(?:号室)?)?",
            ))?,
            japan_postcode_before: build(r"〒?[ 　]?[0-9]{3}[-－][0-9]{4}[ 　]*$")?,
            prefectures,
        })
    }

    /// Finds addresses in `text`.
    pub(crate) fn candidates(&self, text: &str, out: &mut Vec<Candidate>) {
        let mut segs: Vec<Segment> = Vec::new();
        let bytes = text.as_bytes();
        if bytes.iter().any(u8::is_ascii_digit) {
            self.around_numbers(text, &mut segs);
        }
        // Prefectures are written in kanji: three-byte UTF-8 starting 0xE4..=0xE9.
        if bytes.iter().any(|&b| (0xE4..=0xE9).contains(&b)) {
            self.japanese(text, &mut segs);
        }
        if segs.is_empty() {
            return;
        }
        segs.sort_unstable_by_key(|s| (s.start, s.end));
        let mut groups: Vec<(Segment, usize)> = Vec::new();
        for s in segs {
            if let Some((g, n)) = groups.last_mut() {
                let touching = s.start <= g.end || text.get(g.end..s.start).is_some_and(joinable);
                if touching {
                    g.end = g.end.max(s.end);
                    g.strength = g.strength.max(s.strength);
                    *n += 1;
                    continue;
                }
            }
            groups.push((s, 1));
        }
        for (g, n) in groups {
            let (base, rule) = match (g.strength, n > 1) {
                (Strength::Strong, false) => (0.7, "address-street"),
                (Strength::Strong, true) => (0.8, "address-street"),
                (Strength::Medium, false) => (0.55, "address-postcode"),
                (Strength::Medium, true) => (0.6, "address-postcode"),
                (Strength::Weak, _) => (0.3, "address-postcode"),
            };
            out.push(cand(Entity::Address, g.start, g.end, base, rule));
        }
    }

    /// Streets and postcodes around each run of ASCII digits.
    fn around_numbers(&self, text: &str, segs: &mut Vec<Segment>) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
                continue;
            }
            let mut j = i;
            while bytes.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            let before_letter = i > 0 && bytes.get(i - 1).is_some_and(u8::is_ascii_uppercase);
            if before_letter {
                self.letter_postcode(text, i, segs);
            } else if boundary_before(bytes, i) {
                // A street's own numbers (`86/79`) need no second look.
                if let Some(end) = self.digit_run(text, i, j, segs) {
                    i = end.max(j);
                    continue;
                }
            }
            i = j;
        }
    }

    /// A digit run that starts a token: a house number or a postcode. Returns the end of the
    /// street it numbers, if it does.
    fn digit_run(&self, text: &str, i: usize, j: usize, segs: &mut Vec<Segment>) -> Option<usize> {
        let bytes = text.as_bytes();
        let len = j - i;
        // House number first: "221B Baker Street", "47, rue de la Paix".
        if len <= 5
            && may_name_a_street(bytes, j)
            && let Some(m) = text
                .get(i..window_end(text, i, 200))
                .and_then(|w| self.number_first.find(w))
        {
            let from = window_start(text, i, 40);
            let start = text
                .get(from..i)
                .and_then(|w| self.unit_before.find(w))
                .map_or(i, |u| from + u.start());
            segs.push(Segment {
                start,
                end: i + m.end(),
                strength: Strength::Strong,
            });
            return Some(i + m.end());
        }
        // House number after the street's name: "Calle Mayor 5", "Kikiweg 460".
        if len <= 4
            && let Some(start) = street_before(text, i)
            && (!ring_compound(text.get(start..i).unwrap_or_default()) || postcode_after(text, j))
        {
            let extra = text
                .get(j..window_end(text, j, 80))
                .and_then(|w| self.after_number.find(w))
                .map_or(0, |m| m.end());
            segs.push(Segment {
                start,
                end: j + extra,
                strength: Strength::Strong,
            });
            return Some(j + extra);
        }
        let next = bytes.get(j).copied();
        let continues = |k: usize| {
            matches!(bytes.get(k), Some(b'.' | b',' | b':' | b'/' | b'-'))
                && bytes.get(k + 1).is_some_and(u8::is_ascii_digit)
        };
        if next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let digits = text.get(i..j).unwrap_or_default();
        match len {
            5 => {
                // ZIP+4 continues with a dash; other continuations are decimals and dates.
                let mut end = j;
                if bytes.get(j) == Some(&b'-')
                    && bytes
                        .get(j + 1..j + 5)
                        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                    && !bytes.get(j + 5).is_some_and(u8::is_ascii_alphanumeric)
                {
                    end = j + 5;
                } else if continues(j) || digits == "00000" {
                    return None;
                }
                if let Some(s) = state_before(text, i, US_STATES, true) {
                    segs.push(Segment {
                        start: s,
                        end,
                        strength: Strength::Medium,
                    });
                    return None;
                }
                let town = self.locality(text, end);
                if town > end {
                    segs.push(Segment {
                        start: i,
                        end: town,
                        strength: Strength::Weak,
                    });
                } else if has_locality_before(text, i) {
                    segs.push(Segment {
                        start: i,
                        end,
                        strength: Strength::Weak,
                    });
                }
            }
            4 if !continues(j) => {
                let first = bytes.get(i).copied().unwrap_or(b'0');
                let second = bytes.get(i + 1).copied().unwrap_or(b'0');
                // Australian postcodes start 1-9, or 02/08/09 (ACT and the NT).
                let australian = first != b'0' || matches!(second, b'2' | b'8' | b'9');
                if australian
                    && let Some(s) = state_before(text, i, AU_STATES, false)
                    && has_locality_before(text, s)
                {
                    segs.push(Segment {
                        start: s,
                        end: j,
                        strength: Strength::Medium,
                    });
                    return None;
                }
                // Dutch: 1000-9999 and two letters other than SA, SD and SS.
                if first != b'0'
                    && let Some(c) = text
                        .get(j..window_end(text, j, 8))
                        .and_then(|w| self.nl_letters.captures(w))
                    && let Some(letters) = c.get(1)
                    && !matches!(letters.as_str(), "SA" | "SD" | "SS")
                {
                    let end = j + c.get(0).map_or(0, |m| m.end());
                    let town = self.locality(text, end);
                    if town > end || has_locality_before(text, i) {
                        segs.push(Segment {
                            start: i,
                            end: town,
                            strength: Strength::Weak,
                        });
                    }
                } else if first != b'0' {
                    // Belgium, Switzerland, Austria, Denmark, Norway: four digits and the town
                    // (`1000 Bruxelles`), an address beside a street or a context word.
                    let town = self.locality(text, j);
                    if town > j {
                        segs.push(Segment {
                            start: i,
                            end: town,
                            strength: Strength::Weak,
                        });
                    }
                }
            }
            // Indian PIN codes start 1-9; the town comes before ("Mumbai - 400001").
            6 if !continues(j)
                && bytes.get(i).is_some_and(|&b| b != b'0')
                && has_locality_before(text, i) =>
            {
                segs.push(Segment {
                    start: i,
                    end: j,
                    strength: Strength::Weak,
                });
            }
            3 => {
                // Japanese postcode: 〒123-4567.
                let marked = text
                    .get(..i)
                    .is_some_and(|t| t.trim_end_matches([' ', '　']).ends_with('〒'));
                if marked
                    && bytes.get(j) == Some(&b'-')
                    && bytes
                        .get(j + 1..j + 5)
                        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                    && !bytes.get(j + 5).is_some_and(u8::is_ascii_digit)
                {
                    let mark = text.get(..i).and_then(|t| t.rfind('〒')).unwrap_or(i);
                    segs.push(Segment {
                        start: mark,
                        end: j + 5,
                        strength: Strength::Medium,
                    });
                }
            }
            _ => {}
        }
        None
    }

    /// UK and Canadian postcodes, whose first digit follows one or two capitals.
    fn letter_postcode(&self, text: &str, i: usize, segs: &mut Vec<Segment>) {
        let bytes = text.as_bytes();
        let two = i >= 2 && bytes.get(i - 2).is_some_and(u8::is_ascii_uppercase);
        let k = if two { i - 2 } else { i - 1 };
        if !boundary_before(bytes, k) {
            return;
        }
        let window = text.get(k..window_end(text, k, 10)).unwrap_or_default();
        let found = if let Some(c) = self.uk.captures(window) {
            let area = c.get(1).map_or("", |a| a.as_str());
            UK_AREAS
                .contains(&area)
                .then(|| c.get(0).map_or(0, |m| m.end()))
        } else if !two {
            self.canada.find(window).map(|m| m.end())
        } else {
            None
        };
        let Some(len) = found else { return };
        let end = k + len;
        if bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            return;
        }
        // A postcode alone is an area, not an address: it needs its town or province.
        let (start, strength) = match state_before(text, k, CA_PROVINCES, false) {
            Some(s) => (s, Strength::Medium),
            None if has_locality_before(text, k) => (k, Strength::Medium),
            None => (k, Strength::Weak),
        };
        segs.push(Segment {
            start,
            end,
            strength,
        });
    }

    /// The end of a town's name after `at` (`, Badia Polesine (RO)`), or `at` if none. A word
    /// that introduces something else (`Konto`, `Tel.`, `IBAN`: a context word of any entity)
    /// ends the town before it.
    fn locality(&self, text: &str, at: usize) -> usize {
        let Some(town) = text
            .get(at..window_end(text, at, 80))
            .and_then(|w| self.locality_after.find(w))
            .map(|m| m.as_str())
        else {
            return at;
        };
        let mut pos = 0;
        for word in town.split([' ', '\t', '-']) {
            let start = pos;
            pos += word.len() + 1;
            let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
            if !bare.is_empty() && crate::context_mask(bare) != 0 {
                let kept = town.get(..start).unwrap_or_default();
                let kept = kept.trim_end_matches([' ', '\t', '-', ',']);
                return if kept.contains(char::is_alphanumeric) {
                    at + kept.len()
                } else {
                    at
                };
            }
        }
        at + town.len()
    }

    /// Japanese addresses: a prefecture, its city, ward and town, and block numbers.
    fn japanese(&self, text: &str, segs: &mut Vec<Segment>) {
        for m in self.prefectures.find_iter(text) {
            let Some(rest) = text
                .get(m.end()..window_end(text, m.end(), 240))
                .and_then(|w| self.japan_rest.find(w))
            else {
                continue;
            };
            let from = window_start(text, m.start(), 16);
            // A postcode right before the prefecture, not the tail of a phone number.
            let start = text
                .get(from..m.start())
                .and_then(|w| self.japan_postcode_before.find(w))
                .map(|p| from + p.start())
                .filter(|&s| {
                    !s.checked_sub(1)
                        .and_then(|k| text.as_bytes().get(k))
                        .is_some_and(|b| b.is_ascii_digit() || *b == b'-')
                })
                .unwrap_or(m.start());
            segs.push(Segment {
                start,
                end: m.end() + rest.end(),
                strength: Strength::Strong,
            });
        }
    }
}

/// The start of a street name that ends right before the house number at `i` (with at most a
/// comma between): a Germanic compound, or place-name words after a Romance street word.
fn street_before(text: &str, i: usize) -> Option<usize> {
    let mut p = skip_back(text, i, true);
    let mut names = 0;
    for k in 0..MAX_NAME_WORDS {
        let (ws, we) = word_before(text, p)?;
        let w = text.get(ws..we)?;
        if k == 0 {
            if is_compound_street(w) {
                return Some(ws);
            }
            if GERMANIC_STREET_WORDS.contains(&w) {
                // Up to three capitalised words before it ("Am Alten Markt").
                let mut start = None;
                let mut q = skip_back(text, ws, false);
                for _ in 0..3 {
                    match word_before(text, q) {
                        Some((s, e))
                            if text
                                .get(s..e)
                                .is_some_and(|x| capitalised(x) || x == "am" || x == "an") =>
                        {
                            start = Some(s);
                            q = skip_back(text, s, false);
                        }
                        _ => break,
                    }
                }
                return start;
            }
        }
        if names > 0 && is_street_word(w) {
            // "47, rue de la Paix, 75002": the street's number came first, so this is not it.
            let q = skip_back(text, ws, true);
            let numbered = q < ws
                && q.checked_sub(1)
                    .and_then(|k| text.as_bytes().get(k))
                    .is_some_and(u8::is_ascii_digit);
            return (!numbered).then_some(ws);
        }
        if capitalised(w) || elided_name(w) {
            names += 1;
        } else if names == 0 || !PARTICLES.contains(&w.to_lowercase().as_str()) {
            return None;
        }
        p = skip_back(text, ws, false);
    }
    None
}

/// A capitalised word behind an elided article or preposition (`l'Église`, `d'Alésia`,
/// `dell'Orso`).
fn elided_name(w: &str) -> bool {
    let Some((article, rest)) = w.split_once(['\'', '’']) else {
        return false;
    };
    matches!(
        article.to_lowercase().as_str(),
        "l" | "d" | "dell" | "all" | "nell" | "sull" | "dall" | "s"
    ) && capitalised(rest)
}

/// Whether the street before a house number is one word ending in `ring` (`Kaiserring`), not
/// `-ring` (`Konrad-Adenauer-Ring`, a street whatever follows).
fn ring_compound(street: &str) -> bool {
    let w = street.trim_end();
    !w.contains([' ', '-']) && w.to_lowercase().ends_with(RING)
}

/// Whether a four- or five-digit postcode and a capitalised town follow `j` (`, 68161
/// Mannheim`).
fn postcode_after(text: &str, j: usize) -> bool {
    let rest = text.get(j..).unwrap_or_default();
    let rest = rest
        .strip_prefix(',')
        .unwrap_or(rest)
        .trim_start_matches([' ', '\t']);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (4..=5).contains(&digits)
        && rest
            .get(digits..)
            .and_then(|r| r.strip_prefix(' '))
            .is_some_and(capitalised)
}

/// Whether `w` begins a Romance street name (`Calle`, `via`, `rue`).
fn is_street_word(w: &str) -> bool {
    let lower = w.to_lowercase();
    STREET_WORDS.contains(&lower.as_str())
        && (capitalised(w) || !AMBIGUOUS_STREET_WORDS.contains(&lower.as_str()))
}

/// Whether the house number ending at `j` can be followed by its street as `number_first`
/// reads it: a short suffix (`B`, `/2`, `bis`, `,`), a space, then a letter. Most digit runs
/// of a text are not, and this says so without the pattern's search (about a tenth of a
/// whole scan when every run was tried).
fn may_name_a_street(bytes: &[u8], j: usize) -> bool {
    let suffix = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b',');
    // The pattern's suffix is at most 12 bytes (`B/12345C bis,`); a longer run is no suffix.
    let mut k = j;
    while k - j <= 16 && bytes.get(k).is_some_and(suffix) {
        k += 1;
    }
    if !matches!(bytes.get(k), Some(b' ' | b'\t')) {
        return false;
    }
    while matches!(bytes.get(k), Some(b' ' | b'\t')) {
        k += 1;
    }
    bytes
        .get(k)
        .is_some_and(|&b| b.is_ascii_alphabetic() || b >= 0x80)
}

/// Whether `w` is a German or Dutch street written as one word (`Putzgasse`, `Wendestr.`).
fn is_compound_street(w: &str) -> bool {
    if !capitalised(w) {
        return false;
    }
    let lower = w.to_lowercase();
    COMPOUND_ENDINGS.iter().any(|e| {
        lower.ends_with(e)
            && lower
                .get(..lower.len() - e.len())
                .is_some_and(|stem| stem.chars().filter(|c| c.is_alphabetic()).count() >= 2)
    })
}

fn capitalised(w: &str) -> bool {
    w.chars().next().is_some_and(char::is_uppercase)
}

/// Whether `c` can be part of a word of a street or place name.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '\'' | '’' | '-' | '.' | '/')
}

/// The word that ends at `end`, if one does.
fn word_before(text: &str, end: usize) -> Option<(usize, usize)> {
    let head = text.get(..end)?;
    let start = head
        .char_indices()
        .rev()
        .take_while(|&(_, c)| word_char(c))
        .last()
        .map(|(s, _)| s)?;
    Some((start, end))
}

/// Moves back over spaces and tabs (and one comma, when `comma`).
fn skip_back(text: &str, mut p: usize, comma: bool) -> usize {
    let bytes = text.as_bytes();
    let mut commas = 0;
    while p > 0 {
        match bytes.get(p - 1) {
            Some(b' ' | b'\t') => p -= 1,
            Some(b',') if comma && commas == 0 => {
                commas += 1;
                p -= 1;
            }
            _ => break,
        }
    }
    p
}

/// The start of a state or province code before position `i` (`NSW 2000`, `, DC 20500`).
fn state_before(text: &str, i: usize, codes: &[&str], comma_first: bool) -> Option<usize> {
    let p = skip_back(text, i, !comma_first);
    if p == i {
        return None;
    }
    let (ws, we) = word_before(text, p)?;
    let code = text.get(ws..we)?;
    if !codes.contains(&code) {
        return None;
    }
    if comma_first {
        let q = skip_back(text, ws, false);
        if q == ws || text.as_bytes().get(q.checked_sub(1)?) != Some(&b',') {
            return None;
        }
    }
    Some(ws)
}

/// Whether a capitalised place name ends right before `i` (`Mumbai - `, `Segovia, `).
fn has_locality_before(text: &str, i: usize) -> bool {
    let bytes = text.as_bytes();
    let mut p = i;
    while p > 0 && matches!(bytes.get(p - 1), Some(b' ' | b'\t' | b',' | b'-')) {
        p -= 1;
    }
    p < i
        && word_before(text, p)
            .and_then(|(s, e)| text.get(s..e))
            .is_some_and(|w| capitalised(w) && w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
}

/// Whether the text between two segments keeps them one address: separators and at most a
/// few place-name words, on one line.
fn joinable(gap: &str) -> bool {
    // Lines are records of their own (a text scan reports findings per line, and a block of
    // lines must read as each line alone): an address never runs on into the next line.
    if gap.len() > MAX_GAP || gap.contains(['\n', '\r']) {
        return false;
    }
    let mut words = 0;
    for token in gap.split([' ', '\t', ',', '-', '–', '\n', '\r', '　']) {
        if token.is_empty() {
            continue;
        }
        words += 1;
        let place = capitalised(token) && token.chars().all(word_char);
        let paren = token.len() == 4
            && token.starts_with('(')
            && token.ends_with(')')
            && token.bytes().filter(u8::is_ascii_uppercase).count() == 2;
        if words > MAX_GAP_WORDS || !(place || paren || PARTICLES.contains(&token)) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte check before `number_first` never turns away what the pattern reads.
    #[test]
    fn the_street_check_passes_every_house_number_the_pattern_reads() {
        let a = Addresses::new().unwrap();
        let mut read = 0;
        for number in ["221", "47", "12", "5", "10", "7", "12345"] {
            for suffix in [
                "", "B", "b", "/2", "-14", "/3a", " bis", "bis", " ter", ",", "B,", " bis,",
            ] {
                for gap in [" ", "  ", "\t", ", ", " \t"] {
                    for street in [
                        "Baker Street",
                        "rue de la Paix",
                        "Calle Mayor",
                        "Via dell'Orso",
                        "Élysée Avenue",
                        "main st",
                    ] {
                        let text = format!("{number}{suffix}{gap}{street}, somewhere");
                        if a.number_first.is_match(&text) {
                            read += 1;
                            assert!(may_name_a_street(text.as_bytes(), number.len()), "{text:?}");
                        }
                    }
                }
            }
        }
        assert!(read > 300, "the pattern read only {read} of the cases");
        for (text, at) in [
            ("12:30 today", 2),
            ("5.5 km", 1),
            ("100% sure", 3),
            ("2024\n", 4),
        ] {
            assert!(!may_name_a_street(text.as_bytes(), at), "{text:?}");
        }
    }
}
