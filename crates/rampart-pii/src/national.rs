//! National identifiers and their check digits: UK National Insurance and NHS numbers, the
//! German tax ID and identity card number, the French NIR, the Spanish DNI/NIF and NIE, the
//! Italian codice fiscale, the Dutch BSN, the Indian Aadhaar (Verhoeff) and PAN, the Canadian
//! SIN, the Australian TFN and Medicare number, the US ITIN and EIN.
//!
//! Each validator takes the identifier compacted (separators removed, ASCII) and says whether
//! it is well formed and its check digit (where it has one) is right. A number with a check
//! digit that fails it is a look-alike and is never reported.

/// The longest run of digits a validator looks at (identifiers have at most 18).
const MAX_ID_DIGITS: usize = 24;

/// A value's digits as numbers, on the stack.
struct DigitValues {
    v: [u32; MAX_ID_DIGITS],
    n: usize,
}

impl std::ops::Deref for DigitValues {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        self.v.get(..self.n).unwrap_or_default()
    }
}

/// A value's digits as numbers (`None` when a byte is not an ASCII digit, or there are more
/// than [`MAX_ID_DIGITS`]: no identifier is that long).
fn digit_values(d: &[u8]) -> Option<DigitValues> {
    let mut out = DigitValues {
        v: [0; MAX_ID_DIGITS],
        n: d.len(),
    };
    let slots = out.v.get_mut(..d.len())?;
    for (slot, b) in slots.iter_mut().zip(d) {
        *slot = u32::from(b.checked_sub(b'0').filter(|x| *x <= 9)?);
    }
    Some(out)
}

/// Whether every digit is the same (`000000000`, `111111111`): never issued, and every
/// weighted checksum passes some of them.
fn all_same(d: &[u8]) -> bool {
    d.first().is_some_and(|f| d.iter().all(|b| b == f))
}

/// A weighted sum of digits.
fn weighted(v: &[u32], weights: &[u32]) -> u32 {
    v.iter().zip(weights).map(|(a, b)| a * b).sum()
}

/// UK NHS number: ten digits, mod-11 check digit over weights 10..2 (a remainder giving 10 is
/// never issued).
#[must_use]
pub fn uk_nhs_valid(d: &[u8]) -> bool {
    let Some(v) = digit_values(d).filter(|v| v.len() == 10) else {
        return false;
    };
    if all_same(d) {
        return false;
    }
    let sum = weighted(&v, &[10, 9, 8, 7, 6, 5, 4, 3, 2]);
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    v.get(9) == Some(&check)
}

/// UK National Insurance number: two prefix letters (neither D, F, I, Q, U or V, the second
/// not O, and not BG, GB, KN, NK, NT, TN or ZZ), six digits, and a suffix A-D (`suffix` says
/// whether it must be there; it is often left off).
#[must_use]
pub fn uk_nino_valid(s: &[u8], suffix: bool) -> bool {
    let (prefix, rest) = s.split_at(s.len().min(2));
    let [a, b] = prefix else { return false };
    let first_ok = a.is_ascii_uppercase() && !b"DFIQUV".contains(a);
    let second_ok = b.is_ascii_uppercase() && !b"DFIOQUV".contains(b);
    if !first_ok || !second_ok {
        return false;
    }
    if [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"]
        .iter()
        .any(|p| p.as_slice() == prefix)
    {
        return false;
    }
    match (rest.len(), suffix) {
        (7, true) => {
            rest.iter().take(6).all(u8::is_ascii_digit)
                && rest.get(6).is_some_and(|c| (b'A'..=b'D').contains(c))
        }
        (6, false) => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// German tax identification number (Steuer-ID): eleven digits, the first not 0; in the first
/// ten exactly one digit occurs twice or three times (never three in a row) and the others at
/// most once; the last is the ISO 7064 MOD 11,10 check digit.
#[must_use]
pub fn de_tax_id_valid(d: &[u8]) -> bool {
    let Some(v) = digit_values(d).filter(|v| v.len() == 11) else {
        return false;
    };
    let (body, check) = v.split_at(10);
    if body.first() == Some(&0) {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in body {
        if let Some(c) = counts.get_mut(x as usize) {
            *c += 1;
        }
    }
    let repeated: Vec<u8> = counts.iter().copied().filter(|&c| c > 1).collect();
    if !matches!(repeated.as_slice(), [2] | [3]) {
        return false;
    }
    if body
        .windows(3)
        .any(|w| matches!(w, [a, b, c] if a == b && b == c))
    {
        return false;
    }
    let mut product = 10;
    for &x in body {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let expected = match 11 - product {
        10 => 0,
        c => c,
    };
    check.first() == Some(&expected)
}

/// The letters the German identity card's serial number is written in (no vowels, no B, D,
/// Q or S, which read like digits).
const DE_ID_LETTERS: &[u8] = b"CFGHJKLMNPRTVWXYZ";

/// The ICAO 9303 check digit (weights 7, 3, 1; letters A=10 … Z=35).
fn icao_check(s: &[u8]) -> Option<u32> {
    let mut sum = 0u32;
    for (i, &c) in s.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            b'<' => 0,
            _ => return None,
        };
        sum += v * [7, 3, 1].get(i % 3).copied().unwrap_or(1);
    }
    Some(sum % 10)
}

/// German identity card (Personalausweis, since 2010) number: nine characters from its
/// alphabet (the first a letter), with the ICAO check digit as a tenth when `check` is set.
#[must_use]
pub fn de_id_card_valid(s: &[u8], check: bool) -> bool {
    let body_len = 9;
    if s.len() != body_len + usize::from(check) {
        return false;
    }
    let (body, digit) = s.split_at(body_len);
    let shaped = body.first().is_some_and(|c| DE_ID_LETTERS.contains(c))
        && body
            .iter()
            .all(|c| c.is_ascii_digit() || DE_ID_LETTERS.contains(c))
        && body.iter().filter(|c| c.is_ascii_digit()).count() >= 3;
    if !shaped {
        return false;
    }
    if !check {
        return true;
    }
    matches!(digit, [d] if d.is_ascii_digit() && icao_check(body) == Some(u32::from(d - b'0')))
}

/// French social security number (NIR / numéro INSEE): sex (1, 2, or 3, 4, 7, 8 for temporary
/// numbers), year, month (01-12, or 20-42 and 50-99 when unknown), département (two digits,
/// or 2A / 2B for Corsica), commune and order number, then a key of 97 minus the number mod 97
/// (Corsica's 2A and 2B counted as 19 and 18).
#[must_use]
pub fn fr_nir_valid(s: &[u8]) -> bool {
    if s.len() != 15 {
        return false;
    }
    let (number, key) = s.split_at(13);
    let corsica = match number.get(5..7) {
        Some(b"2A") => Some(19u64),
        Some(b"2B") => Some(18),
        _ => None,
    };
    let all_digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    let digits_ok = match corsica {
        Some(_) => {
            number.get(..5).is_some_and(all_digits) && number.get(7..).is_some_and(all_digits)
        }
        None => all_digits(number),
    };
    if !digits_ok || !all_digits(key) {
        return false;
    }
    if !number.first().is_some_and(|c| b"123478".contains(c)) {
        return false;
    }
    let two = |r: Option<&[u8]>| {
        r.and_then(|r| std::str::from_utf8(r).ok())
            .and_then(|t| t.parse::<u32>().ok())
    };
    let month = two(number.get(3..5)).unwrap_or(0);
    if !((1..=12).contains(&month) || (20..=42).contains(&month) || month >= 50) {
        return false;
    }
    let mut n: u64 = 0;
    for (i, &c) in number.iter().enumerate() {
        if corsica.is_some() && i == 5 {
            n = n * 100 + corsica.unwrap_or(0);
            continue;
        }
        if corsica.is_some() && i == 6 {
            continue;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    let key = two(Some(key)).unwrap_or(0);
    (1..=97).contains(&key) && u64::from(key) == 97 - n % 97
}

/// The Spanish DNI's check letters, by the number mod 23.
const ES_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spanish DNI / NIF of a person: eight digits and the check letter.
#[must_use]
pub fn es_nif_valid(s: &[u8]) -> bool {
    let [digits @ .., letter] = s else {
        return false;
    };
    digits.len() == 8 && es_letter(digits) == Some(*letter)
}

/// Spanish NIE (foreigners' number): X, Y or Z (counting as 0, 1, 2), seven digits, and the
/// check letter.
#[must_use]
pub fn es_nie_valid(s: &[u8]) -> bool {
    let [first, digits @ .., letter] = s else {
        return false;
    };
    let lead = match first {
        b'X' => b'0',
        b'Y' => b'1',
        b'Z' => b'2',
        _ => return false,
    };
    if digits.len() != 7 {
        return false;
    }
    let mut all = vec![lead];
    all.extend_from_slice(digits);
    es_letter(&all) == Some(*letter)
}

fn es_letter(digits: &[u8]) -> Option<u8> {
    let v = digit_values(digits)?;
    let n = v.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d));
    ES_LETTERS.get(usize::try_from(n % 23).ok()?).copied()
}

/// The codice fiscale's values of a character in an odd (1st, 3rd, …) position, for digits
/// 0-9 and letters A-Z alike (a digit counts as the letter at its index).
const IT_ODD: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];
/// Letters that stand for digits in a codice fiscale changed for a homonym (omocodia).
const IT_OMOCODE: &[u8] = b"LMNPQRSTUV";
/// Month letters of the codice fiscale.
const IT_MONTHS: &[u8] = b"ABCDEHLMPRST";

/// Italian codice fiscale of a person: six letters (surname and name), year, month letter,
/// day (41-71 for women), the municipality's code (a letter and three digits), and a check
/// letter; digits may be replaced by the omocodia letters L-V.
#[must_use]
pub fn it_fiscal_code_valid(s: &[u8]) -> bool {
    if s.len() != 16 {
        return false;
    }
    let digitish = |c: &u8| c.is_ascii_digit() || IT_OMOCODE.contains(c);
    let letter = |c: &u8| c.is_ascii_uppercase();
    let shaped = s.iter().enumerate().all(|(i, c)| match i {
        0..=5 | 11 | 15 => letter(c),
        8 => IT_MONTHS.contains(c),
        _ => digitish(c),
    });
    if !shaped {
        return false;
    }
    // The day (with women's +40), read through the omocodia letters.
    let value = |c: u8| -> u32 {
        if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            IT_OMOCODE
                .iter()
                .position(|&x| x == c)
                .map_or(0, |p| u32::try_from(p).unwrap_or(0))
        }
    };
    let day = match (s.get(9), s.get(10)) {
        (Some(&a), Some(&b)) => value(a) * 10 + value(b),
        _ => return false,
    };
    let day = if day > 40 { day - 40 } else { day };
    let year = match (s.get(6), s.get(7)) {
        (Some(&a), Some(&b)) => value(a) * 10 + value(b),
        _ => return false,
    };
    let month = s
        .get(8)
        .and_then(|m| IT_MONTHS.iter().position(|x| x == m))
        .and_then(|p| u32::try_from(p + 1).ok())
        .unwrap_or(0);
    // The century is not written: 2000 + the year makes February 29th stand in every
    // fourth year, whichever century it was.
    let days = crate::checks::days_in_month(2000 + year, month).unwrap_or(0);
    if !(1..=days).contains(&i32::try_from(day).unwrap_or(0)) {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in s.iter().take(15).enumerate() {
        let idx = if c.is_ascii_digit() {
            usize::from(c - b'0')
        } else {
            usize::from(c - b'A')
        };
        sum += if i % 2 == 0 {
            IT_ODD.get(idx).copied().unwrap_or(0)
        } else {
            u32::try_from(idx).unwrap_or(0)
        };
    }
    s.get(15).copied() == u8::try_from(sum % 26).ok().map(|r| b'A' + r)
}

/// Dutch citizen service number (BSN): nine digits passing the "elfproef" (9·d1 + 8·d2 + … +
/// 2·d8 − d9 divisible by 11).
#[must_use]
pub fn nl_bsn_valid(d: &[u8]) -> bool {
    let Some(v) = digit_values(d).filter(|v| v.len() == 9) else {
        return false;
    };
    if all_same(d) {
        return false;
    }
    let sum = weighted(&v, &[9, 8, 7, 6, 5, 4, 3, 2]);
    let last = v.get(8).copied().unwrap_or(0);
    sum >= last && (sum - last).is_multiple_of(11)
}

/// Verhoeff's dihedral-group multiplication table.
const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
/// Verhoeff's permutation table.
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// Verhoeff's checksum over ASCII digits (the last is the check digit).
#[must_use]
pub fn verhoeff(d: &[u8]) -> bool {
    let mut c = 0u8;
    for (i, b) in d.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let p = VERHOEFF_P
            .get(i % 8)
            .and_then(|row| row.get(usize::from(b - b'0')))
            .copied()
            .unwrap_or(0);
        c = VERHOEFF_D
            .get(usize::from(c))
            .and_then(|row| row.get(usize::from(p)))
            .copied()
            .unwrap_or(0);
    }
    !d.is_empty() && c == 0
}

/// Indian Aadhaar number: twelve digits, the first 2-9, Verhoeff check digit.
#[must_use]
pub fn in_aadhaar_valid(d: &[u8]) -> bool {
    d.len() == 12
        && d.first().is_some_and(|c| (b'2'..=b'9').contains(c))
        && !all_same(d)
        && verhoeff(d)
}

/// Indian Permanent Account Number (PAN): five letters (the fourth the holder's type: P for
/// a person, C company, H Hindu undivided family, F firm, A association, T trust, B body of
/// individuals, L local authority, J juridical person, G government, K the discontinued
/// "Krish" trusts), four digits (not 0000)
/// and a letter.
#[must_use]
pub fn in_pan_valid(s: &[u8]) -> bool {
    s.len() == 10
        && s.iter().enumerate().all(|(i, c)| match i {
            0..=4 | 9 => c.is_ascii_uppercase(),
            _ => c.is_ascii_digit(),
        })
        && s.get(3).is_some_and(|c| b"ABCFGHJKLPT".contains(c))
        && s.get(5..9) != Some(b"0000")
}

/// Canadian Social Insurance Number: nine digits, Luhn, the first digit a province's or a
/// temporary resident's (never 0 or 8).
#[must_use]
pub fn ca_sin_valid(d: &[u8]) -> bool {
    d.len() == 9
        && d.iter().all(u8::is_ascii_digit)
        && !matches!(d.first(), Some(b'0' | b'8'))
        && !all_same(d)
        && crate::checks::luhn(d)
}

/// Australian Tax File Number: nine (or, for old numbers, eight) digits whose weighted sum is
/// divisible by 11.
#[must_use]
pub fn au_tfn_valid(d: &[u8]) -> bool {
    let Some(v) = digit_values(d) else {
        return false;
    };
    let weights: &[u32] = match v.len() {
        9 => &[1, 4, 3, 7, 5, 8, 6, 9, 10],
        8 => &[10, 7, 8, 4, 6, 3, 5, 1],
        _ => return false,
    };
    !all_same(d) && weighted(&v, weights).is_multiple_of(11)
}

/// Australian Medicare card number: ten digits (an eleventh is the person's position on the
/// card), the first 2-6, the ninth a check digit over weights 1, 3, 7, 9, the tenth the
/// card's issue number (never 0).
#[must_use]
pub fn au_medicare_valid(d: &[u8]) -> bool {
    let Some(v) = digit_values(d).filter(|v| v.len() == 10 || v.len() == 11) else {
        return false;
    };
    if !v.first().is_some_and(|f| (2..=6).contains(f)) || v.get(9) == Some(&0) {
        return false;
    }
    let sum = weighted(&v, &[1, 3, 7, 9, 1, 3, 7, 9]);
    v.get(8) == Some(&(sum % 10))
}

/// US Individual Taxpayer Identification Number: nine digits starting with 9, whose fourth
/// and fifth are in 50-65, 70-88, 90-92 or 94-99.
#[must_use]
pub fn us_itin_valid(d: &[u8]) -> bool {
    let Some(v) = digit_values(d).filter(|v| v.len() == 9) else {
        return false;
    };
    let group = v.get(3).copied().unwrap_or(0) * 10 + v.get(4).copied().unwrap_or(0);
    v.first() == Some(&9)
        && matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
        && v.get(5..).is_some_and(|s| s.iter().any(|&x| x != 0))
}

/// US Employer Identification Number: nine digits whose first two are a prefix the IRS
/// assigns.
#[must_use]
pub fn us_ein_valid(d: &[u8]) -> bool {
    let Some(v) = digit_values(d).filter(|v| v.len() == 9) else {
        return false;
    };
    let prefix = v.first().copied().unwrap_or(0) * 10 + v.get(1).copied().unwrap_or(0);
    matches!(
        prefix,
        1..=6 | 10..=16 | 20..=27 | 30..=48 | 50..=68 | 71..=77 | 80..=88 | 90..=95 | 98 | 99
    ) && !all_same(d.get(2..).unwrap_or_default())
}

/// How a run of digits is written: its separator (`None` when it is bare digits) and the
/// lengths of its groups; `None` when it mixes separators.
fn layout(run: &str) -> Option<(Option<u8>, Vec<usize>)> {
    let sep = run.bytes().find(|b| !b.is_ascii_digit());
    let groups: Vec<usize> = match sep {
        None => vec![run.len()],
        Some(s) => {
            if !matches!(s, b' ' | b'-' | b'.') {
                return None;
            }
            let g: Vec<usize> = run.split(char::from(s)).map(str::len).collect();
            if g.contains(&0) || run.bytes().any(|b| !b.is_ascii_digit() && b != s) {
                return None;
            }
            g
        }
    };
    Some((sep, groups))
}

/// National identifiers made only of digits, in a run the numeric pass found (its ASCII
/// digits in `digits`): one candidate per identifier whose check digit and layout fit. A
/// well-known layout (the NHS's 3-3-4, the Steuer-ID's 2-3-3-3) is worth more than bare
/// digits, which need a context word to be reported.
pub(crate) fn numeric_ids(
    run: &str,
    digits: &[u8],
    at: usize,
    out: &mut Vec<crate::Candidate>,
) -> bool {
    use crate::Entity as E;
    let Some((sep, groups)) = layout(run) else {
        return false;
    };
    let before = out.len();
    let bare = sep.is_none();
    let g = groups.as_slice();
    let spaced_or_dashed = matches!(sep, Some(b' ' | b'-'));
    let mut push = |e: E, base: f32, rule: &'static str| {
        out.push(crate::cand(e, at, at + run.len(), base, rule));
    };
    match digits.len() {
        9 => {
            if us_itin_valid(digits) {
                let base = match (sep, g) {
                    (Some(b'-'), [3, 2, 4]) => 0.8,
                    (Some(b' '), [3, 2, 4]) => 0.55,
                    (None, _) => 0.25,
                    _ => 0.0,
                };
                if base > 0.0 {
                    push(E::UsItin, base, "us-itin");
                }
            }
            if us_ein_valid(digits) {
                match (sep, g) {
                    (Some(b'-'), [2, 7]) => push(E::UsEin, 0.45, "us-ein"),
                    (None, _) => push(E::UsEin, 0.15, "us-ein"),
                    _ => {}
                }
            }
            let three_by_three = spaced_or_dashed && g == [3, 3, 3];
            if ca_sin_valid(digits) && (bare || three_by_three) {
                push(E::CaSin, if bare { 0.2 } else { 0.35 }, "ca-sin-luhn");
            }
            if au_tfn_valid(digits) && (bare || three_by_three) {
                push(E::AuTfn, if bare { 0.2 } else { 0.3 }, "au-tfn-mod11");
            }
            if nl_bsn_valid(digits)
                && (bare || three_by_three || (sep == Some(b'.') && g == [4, 2, 3]))
            {
                let base = if sep == Some(b'.') { 0.45 } else { 0.2 };
                push(E::NlBsn, base, "nl-bsn-elfproef");
            }
        }
        10 => {
            if uk_nhs_valid(digits) {
                match (spaced_or_dashed, g) {
                    (true, [3, 3, 4]) => push(E::UkNhs, 0.45, "uk-nhs-mod11"),
                    (false, [10]) => push(E::UkNhs, 0.25, "uk-nhs-mod11"),
                    _ => {}
                }
            }
            if au_medicare_valid(digits) {
                match (spaced_or_dashed, g) {
                    (true, [4, 5, 1]) => push(E::AuMedicare, 0.55, "au-medicare-check"),
                    (false, [10]) => push(E::AuMedicare, 0.25, "au-medicare-check"),
                    _ => {}
                }
            }
        }
        11 => {
            if de_tax_id_valid(digits) {
                match (spaced_or_dashed, g) {
                    (true, [2, 3, 3, 3]) => push(E::DeTaxId, 0.6, "de-tax-id-mod11"),
                    (false, [11]) => push(E::DeTaxId, 0.35, "de-tax-id-mod11"),
                    _ => {}
                }
            }
            if au_medicare_valid(digits) && spaced_or_dashed && g == [4, 5, 1, 1] {
                push(E::AuMedicare, 0.55, "au-medicare-check");
            }
        }
        12 if in_aadhaar_valid(digits) => match (spaced_or_dashed, g) {
            (true, [4, 4, 4]) => push(E::InAadhaar, 0.55, "in-aadhaar-verhoeff"),
            (false, [12]) => push(E::InAadhaar, 0.3, "in-aadhaar-verhoeff"),
            _ => {}
        },
        15 if fr_nir_valid(digits) => match (sep, g) {
            (Some(b' ' | b'.' | b'-'), [1, 2, 2, 2, 3, 3, 2]) => {
                push(E::FrNir, 0.75, "fr-nir-mod97");
            }
            (Some(b' '), [13, 2] | [1, 2, 2, 5, 3, 2]) => push(E::FrNir, 0.7, "fr-nir-mod97"),
            (None, _) => push(E::FrNir, 0.55, "fr-nir-mod97"),
            _ => {}
        },
        _ => {}
    }
    out.len() > before
}

/// A stretch of letters and digits with single separators (space, `-`, `.`) between them,
/// read from a token start: its characters without separators, its groups' lengths, and the
/// byte offset just past each character.
struct Compact {
    chars: Vec<u8>,
    groups: Vec<usize>,
    ends: Vec<usize>,
}

impl Compact {
    /// Reads at most `max` characters from `start`.
    fn read(bytes: &[u8], start: usize, max: usize) -> Self {
        let mut c = Self {
            chars: Vec::with_capacity(max),
            groups: Vec::with_capacity(4),
            ends: Vec::with_capacity(max),
        };
        let mut i = start;
        let mut group = 0;
        while c.chars.len() < max {
            match bytes.get(i) {
                Some(&b) if b.is_ascii_alphanumeric() => {
                    c.chars.push(b);
                    group += 1;
                    i += 1;
                    c.ends.push(i);
                }
                Some(b' ' | b'-' | b'.')
                    if group > 0 && bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) =>
                {
                    c.groups.push(group);
                    group = 0;
                    i += 1;
                }
                _ => break,
            }
        }
        if group > 0 {
            c.groups.push(group);
        }
        c
    }

    /// The byte span of the first `len` characters when they end exactly at a group's end
    /// and before no letter or digit (so an identifier is never cut out of a longer token,
    /// even one [`Compact::read`] stopped reading), in one of `layouts`.
    fn prefix(
        &self,
        bytes: &[u8],
        start: usize,
        len: usize,
        layouts: &[&[usize]],
    ) -> Option<(usize, usize)> {
        let mut total = 0;
        let mut k = 0;
        while total < len {
            total += self.groups.get(k)?;
            k += 1;
        }
        let groups = self.groups.get(..k)?;
        if total != len || !layouts.contains(&groups) {
            return None;
        }
        let end = *self.ends.get(len.checked_sub(1)?)?;
        if bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        Some((start, end))
    }
}

/// An identifier with letters in it, as [`alnum_ids`] looks for it: its length without
/// separators, the groupings it is written in, its validator and what a match is worth.
struct LetterId {
    len: usize,
    layouts: &'static [&'static [usize]],
    valid: fn(&[u8]) -> bool,
    entity: crate::Entity,
    base: f32,
    rule: &'static str,
}

/// A French NIR of Corsica (2A or 2B for the département): the others are digits only, and
/// the numeric pass takes them.
fn fr_nir_corsica(s: &[u8]) -> bool {
    s.get(6).is_some_and(u8::is_ascii_uppercase) && fr_nir_valid(s)
}

/// The letter-bearing identifiers, tried in this order (the first that fits wins).
const LETTER_IDS: &[LetterId] = {
    use crate::Entity as E;
    &[
        LetterId {
            len: 16,
            layouts: &[&[16]],
            valid: it_fiscal_code_valid,
            entity: E::ItFiscalCode,
            base: 0.75,
            rule: "it-fiscal-code-check",
        },
        LetterId {
            len: 15,
            layouts: &[&[15], &[1, 2, 2, 2, 3, 3, 2], &[13, 2]],
            valid: fr_nir_corsica,
            entity: E::FrNir,
            base: 0.7,
            rule: "fr-nir-mod97",
        },
        LetterId {
            len: 10,
            layouts: &[&[10]],
            valid: in_pan_valid,
            entity: E::InPan,
            base: 0.6,
            rule: "in-pan",
        },
        LetterId {
            len: 10,
            layouts: &[&[10]],
            valid: |s| de_id_card_valid(s, true),
            entity: E::DeIdCard,
            base: 0.45,
            rule: "de-id-card-check",
        },
        LetterId {
            len: 9,
            layouts: &[&[9], &[2, 2, 2, 2, 1], &[2, 6, 1]],
            valid: |s| uk_nino_valid(s, true),
            entity: E::UkNino,
            base: 0.65,
            rule: "uk-nino",
        },
        LetterId {
            len: 9,
            layouts: &[&[9], &[8, 1], &[2, 3, 3, 1]],
            valid: es_nif_valid,
            entity: E::EsNif,
            base: 0.7,
            rule: "es-nif-letter",
        },
        LetterId {
            len: 9,
            layouts: &[&[9], &[1, 7, 1], &[8, 1]],
            valid: es_nie_valid,
            entity: E::EsNie,
            base: 0.7,
            rule: "es-nie-letter",
        },
        LetterId {
            len: 9,
            layouts: &[&[9]],
            valid: |s| de_id_card_valid(s, false),
            entity: E::DeIdCard,
            base: 0.2,
            rule: "de-id-card-check",
        },
        LetterId {
            len: 8,
            layouts: &[&[8], &[2, 2, 2, 2], &[2, 6]],
            valid: |s| uk_nino_valid(s, false),
            entity: E::UkNino,
            base: 0.3,
            rule: "uk-nino",
        },
    ]
};

/// National identifiers with letters in them (UK NINO, Spanish DNI and NIE, codice fiscale,
/// PAN, German identity card, French NIR of Corsica), found by a byte loop over the tokens
/// that start with a capital or a digit; only a first token of a length some identifier
/// starts with is read further.
pub(crate) fn alnum_ids(text: &str, out: &mut Vec<crate::Candidate>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // The next capital or digit; one inside a word starts nothing: the rest of the word
        // is skipped.
        match bytes.get(i..).and_then(|rest| {
            rest.iter()
                .position(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        }) {
            Some(k) => i += k,
            None => break,
        }
        // Inside a word, or a capitalised word (identifiers have no lower case): skip it.
        if !crate::boundary_before(bytes, i) || bytes.get(i + 1).is_some_and(u8::is_ascii_lowercase)
        {
            while bytes.get(i).is_some_and(|&c| crate::is_word(c)) {
                i += 1;
            }
            continue;
        }
        let mut j = i;
        let mut letters = 0;
        let mut lower = false;
        while let Some(&c) = bytes.get(j) {
            if c.is_ascii_uppercase() {
                letters += 1;
            } else if c.is_ascii_lowercase() {
                lower = true;
            } else if !c.is_ascii_digit() {
                break;
            }
            j += 1;
        }
        let len = j - i;
        let digits = len - letters;
        // Letters after a non-ASCII letter (`É…`) or lower case: a word, not an identifier.
        let next_is_word = bytes.get(j).is_some_and(|&c| c >= 0x80);
        let worth = !lower
            && !next_is_word
            && match len {
                1 | 2 => {
                    matches!(bytes.get(j), Some(b' ' | b'-' | b'.'))
                        && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
                }
                8..=10 | 15 | 16 => {
                    digits >= 3
                        && (letters > 0
                            || bytes.get(j) == Some(&b'-')
                            || bytes.get(j) == Some(&b' '))
                }
                _ => false,
            };
        if !worth {
            i = j.max(i + 1);
            continue;
        }
        let c = Compact::read(bytes, i, 16);
        if let Some(spec) = LETTER_IDS
            .iter()
            .find(|spec| c.chars.get(..spec.len).is_some_and(spec.valid))
            && let Some((s, e)) = c.prefix(bytes, i, spec.len, spec.layouts)
        {
            out.push(crate::cand(spec.entity, s, e, spec.base, spec.rule));
        }
        i = j.max(i + 1);
    }
}

/// What a phrase of the [`Triggers`] automaton is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Passport,
    Record,
    Condition,
}

/// One pass of an Aho-Corasick automaton (ASCII case-insensitive, leftmost-longest) over a
/// text finds the words that introduce a passport or a medical record number and the names
/// of health conditions.
pub(crate) struct Triggers {
    automaton: aho_corasick::AhoCorasick,
    kinds: Vec<Trigger>,
}

/// The longest passport or record number taken.
const MAX_DOCUMENT_NUMBER: usize = 15;

impl Triggers {
    pub(crate) fn new() -> Result<Self, aho_corasick::BuildError> {
        let mut phrases: Vec<&str> = Vec::new();
        let mut kinds = Vec::new();
        for (list, kind) in [
            (crate::lexicon::PASSPORT_WORDS, Trigger::Passport),
            (crate::lexicon::RECORD_WORDS, Trigger::Record),
            (crate::lexicon::CONDITIONS, Trigger::Condition),
        ] {
            phrases.extend_from_slice(list);
            kinds.extend(std::iter::repeat_n(kind, list.len()));
        }
        // A full DFA: a few hundred KiB built once, and the fastest of the automata per byte
        // on text with no literal rare enough to prefilter on.
        let automaton = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&phrases)?;
        Ok(Self { automaton, kinds })
    }

    /// Passport and record numbers after their words, and conditions (whose context is
    /// judged with the other entities': a word like "diagnosed" before them).
    pub(crate) fn scan(&self, text: &str, out: &mut Vec<crate::Candidate>) {
        let bytes = text.as_bytes();
        for m in self.automaton.find_iter(text) {
            let whole_word = crate::boundary_before(bytes, m.start())
                && !bytes
                    .get(m.end())
                    .is_some_and(|&b| crate::is_word(b) || b >= 0x80)
                && !(m.start() > 0 && bytes.get(m.start() - 1).is_some_and(|&b| b >= 0x80));
            if !whole_word {
                continue;
            }
            match self.kinds.get(m.pattern().as_usize()) {
                Some(Trigger::Condition) => out.push(crate::cand(
                    crate::Entity::HealthCondition,
                    m.start(),
                    m.end(),
                    0.2,
                    "health-condition-context",
                )),
                Some(kind @ (Trigger::Passport | Trigger::Record)) => {
                    if let Some((s, e)) = number_after(text, m.end(), *kind) {
                        let (entity, rule) = if *kind == Trigger::Passport {
                            (crate::Entity::Passport, "passport-context")
                        } else {
                            (crate::Entity::MedicalRecord, "medical-record-context")
                        };
                        out.push(crate::Candidate {
                            entity,
                            start: s,
                            end: e,
                            base: 0.75,
                            rule,
                            contextual: true,
                        });
                    }
                }
                None => {}
            }
        }
    }
}

/// The document number after a passport or record word: past separators and filler words
/// (`no.`, `number`, `#`, `:`), a token of capitals and digits (a record number may also hold
/// dashes) with enough digits to be a number.
fn number_after(text: &str, from: usize, kind: Trigger) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut i = from;
    let limit = (from + 40).min(bytes.len());
    loop {
        while i < limit
            && bytes.get(i).is_some_and(|b| {
                matches!(b, b' ' | b'\t' | b':' | b'.' | b'#' | b'=' | b'-' | b'(')
            })
        {
            i += 1;
        }
        if i >= limit {
            return None;
        }
        let word_end = (i..bytes.len())
            .find(|&k| {
                bytes
                    .get(k)
                    .is_none_or(|&b| !(b.is_ascii_alphanumeric() || b >= 0x80 || b == b'#'))
            })
            .unwrap_or(bytes.len());
        let word = text.get(i..word_end)?;
        if crate::lexicon::NUMBER_FILLERS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(word))
        {
            i = word_end;
            continue;
        }
        break;
    }
    let mut end = i;
    let mut digits = 0;
    let mut letters = 0;
    while let Some(&b) = bytes.get(end) {
        if b.is_ascii_digit() {
            digits += 1;
        } else if b.is_ascii_uppercase() {
            letters += 1;
        } else if !(kind == Trigger::Record
            && b == b'-'
            && bytes.get(end + 1).is_some_and(u8::is_ascii_alphanumeric))
        {
            break;
        }
        end += 1;
        if end - i > MAX_DOCUMENT_NUMBER {
            return None;
        }
    }
    if bytes
        .get(end)
        .is_some_and(|&b| crate::is_word(b) || b >= 0x80)
    {
        return None;
    }
    let len = end - i;
    let ok = match kind {
        Trigger::Passport => (6..=9).contains(&len) && digits >= 5 && letters <= 3,
        Trigger::Record => (4..=MAX_DOCUMENT_NUMBER).contains(&len) && digits >= 4,
        Trigger::Condition => false,
    };
    ok.then_some((i, end))
}
