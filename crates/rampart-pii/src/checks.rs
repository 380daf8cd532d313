//! Validators that turn a pattern match into a finding or reject it as a look-alike: Luhn and
//! issuer prefixes for cards, ISO 13616 mod-97 and country lengths for IBANs, the SSA's
//! never-issued SSN ranges, calendar dates, IPv4 octets, JWT headers and Shannon entropy.

use base64::Engine as _;

/// The Luhn checksum over ASCII digits (other bytes ignored).
#[must_use]
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    let mut n = 0;
    for &b in digits.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
        n += 1;
    }
    n > 0 && sum.is_multiple_of(10)
}

/// The card network whose issuer prefix and length fit `digits` (ASCII digits only).
#[must_use]
pub fn card_network(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    let prefix = |k: usize| -> u32 {
        digits
            .iter()
            .take(k)
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b.wrapping_sub(b'0')))
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    if p1 == 4 && matches!(len, 13 | 16 | 19) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        return Some("mastercard");
    }
    if matches!(p2, 34 | 37) && len == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
        && (16..=19).contains(&len)
    {
        return Some("discover");
    }
    if ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len) {
        return Some("diners");
    }
    // JCB's assigned range is 3528-3589; 35xx is JCB's whole block and issued numbers
    // outside that range are seen, so the block is taken.
    if p2 == 35 && (16..=19).contains(&len) {
        return Some("jcb");
    }
    if matches!(p4, 2131 | 1800) && len == 15 {
        return Some("jcb");
    }
    if p2 == 62 && (16..=19).contains(&len) {
        return Some("unionpay");
    }
    if (matches!(
        p4,
        5018 | 5020 | 5038 | 5893 | 6304 | 6390 | 6759 | 6761 | 6762 | 6763
    ) || (56..=58).contains(&p2))
        && (12..=19).contains(&len)
    {
        return Some("maestro");
    }
    None
}

/// Whether ten digits fit the North American Numbering Plan's shape: area code and exchange
/// both start with 2-9, and the area code is not an N11 service code. (libphonenumber's
/// validity also needs the area code to be assigned; numbers written in a phone layout are
/// still phone numbers when it is not.)
#[must_use]
pub fn nanp_shaped(d: &[u8]) -> bool {
    match d {
        [a, b, c, e, ..] if d.len() == 10 => {
            (b'2'..=b'9').contains(a) && (b'2'..=b'9').contains(e) && !(b == &b'1' && c == &b'1')
        }
        _ => false,
    }
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// Whether `compact` (an IBAN without spaces, upper case) has its country's length and a valid
/// mod-97 check (ISO 7064).
#[must_use]
pub fn iban_valid(compact: &[u8]) -> bool {
    let Some(country) = compact.get(..2) else {
        return false;
    };
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| &c[..] == country) else {
        return false;
    };
    if compact.len() != len || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem = 0u32;
    for &b in tail.iter().chain(head) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Whether nine SSN digits (area, group, serial) could have been issued: area 000, 666 and
/// 900–999, group 00 and serial 0000 never were, nor the numbers known from advertising
/// (078-05-1120, 219-09-9999, 123-45-6789) or all one digit.
#[must_use]
pub fn ssn_valid(d: &[u8]) -> bool {
    if d.len() != 9 || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        d.get(r)
            .unwrap_or_default()
            .iter()
            .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'))
    };
    let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
    let known_invalid = matches!(d, b"078051120" | b"219099999" | b"123456789");
    let one_digit = d.iter().all(|&b| Some(&b) == d.first());
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !known_invalid
        && !one_digit
}

/// Whether (year, month, day) is a real calendar date.
#[must_use]
pub fn date_valid(y: u32, m: u32, d: u32) -> bool {
    days_in_month(y, m)
        .and_then(|days| u32::try_from(days).ok())
        .is_some_and(|days| (1..=days).contains(&d))
        && (1000..=9999).contains(&y)
}

/// Parses a numeric date (`YYYY-MM-DD`, `YYYY/MM/DD`, `MM/DD/YYYY`, `DD/MM/YYYY`, `DD.MM.YYYY`,
/// `MM-DD-YYYY`) into its year when it is a real date.
#[must_use]
pub fn numeric_date_year(s: &str) -> Option<u32> {
    let sep = s.bytes().find(|b| matches!(b, b'-' | b'/' | b'.'))?;
    let parts: Vec<&str> = s.split(char::from(sep)).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    if !parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n = |p: &str| p.parse::<u32>().ok();
    if a.len() == 4 && b.len() <= 2 && c.len() <= 2 {
        let (y, m, d) = (n(a)?, n(b)?, n(c)?);
        return date_valid(y, m, d).then_some(y);
    }
    if c.len() == 4 && a.len() <= 2 && b.len() <= 2 {
        let (x, z, y) = (n(a)?, n(b)?, n(c)?);
        return (date_valid(y, x, z) || date_valid(y, z, x)).then_some(y);
    }
    None
}

/// Whether `s` is a dotted-quad IPv4 address (octets ≤ 255, no leading zeros).
#[must_use]
pub fn ipv4_valid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && !(p.len() > 1 && p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        })
}

/// Whether the first segment of a JWT-shaped token decodes to a JSON header naming `alg`.
#[must_use]
pub fn jwt_header_valid(token: &str) -> bool {
    let Some(head) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v.get("alg").is_some())
}

/// Shannon entropy of `s` in bits per byte.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The number of days in month `m` (1–12) of year `y` (proleptic Gregorian), or `None` for a
/// month out of range.
#[must_use]
pub fn days_in_month(y: u32, m: u32) -> Option<i32> {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_networks() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(luhn(b"378282246310005"));
        assert_eq!(card_network(b"4111111111111111"), Some("visa"));
        assert_eq!(card_network(b"378282246310005"), Some("amex"));
        assert_eq!(card_network(b"5555555555554444"), Some("mastercard"));
        assert_eq!(card_network(b"2223003122003222"), Some("mastercard"));
        assert_eq!(card_network(b"6011111111111117"), Some("discover"));
        assert_eq!(card_network(b"3530111333300000"), Some("jcb"));
        assert_eq!(card_network(b"30569309025904"), Some("diners"));
        assert_eq!(card_network(b"9111111111111111"), None);
        assert_eq!(
            card_network(b"411111111111111"),
            None,
            "visa is never 15 digits"
        );
    }

    #[test]
    fn iban_mod97() {
        assert!(iban_valid(b"GB82WEST12345698765432"));
        assert!(iban_valid(b"DE89370400440532013000"));
        assert!(iban_valid(b"FR1420041010050500013M02606"));
        assert!(!iban_valid(b"GB83WEST12345698765432"), "bad check digits");
        assert!(!iban_valid(b"GB82WEST1234569876543"), "wrong length");
        assert!(!iban_valid(b"ZZ82WEST12345698765432"), "no such country");
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn_valid(b"536221234"));
        for bad in [
            &b"000121234"[..],
            b"666121234",
            b"912121234",
            b"536001234",
            b"536220000",
            b"078051120",
            b"123456789",
            b"111111111",
        ] {
            assert!(!ssn_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn dates_ips_jwts_entropy() {
        assert_eq!(numeric_date_year("1985-03-12"), Some(1985));
        assert_eq!(numeric_date_year("12/31/1990"), Some(1990));
        assert_eq!(numeric_date_year("31.12.1990"), Some(1990));
        assert_eq!(numeric_date_year("1985-02-30"), None);
        assert_eq!(numeric_date_year("1.2.3"), None);
        assert!(ipv4_valid("192.168.1.20"));
        assert!(!ipv4_valid("256.1.1.1"));
        assert!(!ipv4_valid("1.2.3"));
        assert!(!ipv4_valid("01.2.3.4"));
        assert!(jwt_header_valid(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.sig"
        ));
        assert!(!jwt_header_valid("eyJub3RoaW5nIjoxfQ.eyJzdWIiOiIxIn0.sig"));
        assert!(entropy(b"aaaaaaaa") < 0.01);
        assert!(entropy(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") > 4.0);
    }
}
