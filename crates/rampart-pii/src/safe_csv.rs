//! CSV-injection neutralisation (OWASP "CSV Injection"): a cell that a spreadsheet would read
//! as a formula — one starting with `=`, `+`, `-`, `@`, a tab or a carriage return — gets a
//! leading `'`, which spreadsheets show as text and never evaluate (`=HYPERLINK(…)`,
//! `+cmd|' /C calc'!A0`, `@SUM(…)` become inert). Plain numbers such as `-5` or `+3.2e4` are
//! left as they are: they are data, and spreadsheets read them as numbers either way. Quoting
//! (for `,`, `"` and line breaks) is the CSV writer's job and happens after.

use std::borrow::Cow;

/// Which outputs are neutralised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SafeCsv {
    /// Outputs meant for people (quarantine, redacted) are neutralised; outputs that are data
    /// (clean rows, revealed values) are written byte for byte.
    #[default]
    Auto,
    /// Every CSV output is neutralised.
    Always,
    /// None is (byte-exact outputs, for tools that read them as data).
    Never,
}

impl SafeCsv {
    /// Parses `auto`, `always` or `never`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "always" => Some(Self::Always),
            "never" => Some(Self::Never),
            _ => None,
        }
    }

    /// For outputs meant for people: quarantine and redacted files.
    #[must_use]
    pub fn for_reports(self) -> bool {
        self != Self::Never
    }

    /// For outputs that are data: clean rows and revealed values.
    #[must_use]
    pub fn for_data(self) -> bool {
        self == Self::Always
    }
}

/// Whether a spreadsheet would take `cell` as a formula.
#[must_use]
pub fn is_formula(cell: &[u8]) -> bool {
    match cell.first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_plain_number(cell),
        _ => false,
    }
}

/// `[+-]?(digits[.digits]|.digits)([eE][+-]?digits)?`
fn is_plain_number(cell: &[u8]) -> bool {
    let mut rest = cell;
    if let Some((b'+' | b'-', tail)) = rest.split_first() {
        rest = tail;
    }
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let int = digits(rest);
    rest = rest.get(int..).unwrap_or_default();
    let mut frac = 0;
    if let Some((b'.', tail)) = rest.split_first() {
        frac = digits(tail);
        rest = tail.get(frac..).unwrap_or_default();
    }
    if int + frac == 0 {
        return false;
    }
    if let Some((b'e' | b'E', tail)) = rest.split_first() {
        let mut t = tail;
        if let Some((b'+' | b'-', tt)) = t.split_first() {
            t = tt;
        }
        let exp = digits(t);
        if exp == 0 {
            return false;
        }
        rest = t.get(exp..).unwrap_or_default();
    }
    rest.is_empty()
}

/// `cell`, with a leading `'` when it would be read as a formula.
#[must_use]
pub fn neutralise(cell: &[u8]) -> Cow<'_, [u8]> {
    if is_formula(cell) {
        let mut out = Vec::with_capacity(cell.len() + 1);
        out.push(b'\'');
        out.extend_from_slice(cell);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_and_text_are_not() {
        for cell in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "\t=1+1",
            "\r=1+1",
            "-",
            "+",
            "-1e",
            "-.e5",
            "-inf",
        ] {
            assert!(is_formula(cell.as_bytes()), "{cell:?}");
            let out = neutralise(cell.as_bytes());
            assert_eq!(out.first(), Some(&b'\''), "{cell:?}");
            assert_eq!(out.get(1..).unwrap(), cell.as_bytes());
        }
        for cell in [
            "-5", "+3.2e4", "-0.5", "-.5", "1e-3", "-7E+2", "", "plain", "a=b", " =1", "12-3",
        ] {
            assert!(!is_formula(cell.as_bytes()), "{cell:?}");
            assert!(matches!(neutralise(cell.as_bytes()), Cow::Borrowed(_)));
        }
        assert_eq!(SafeCsv::parse("auto"), Some(SafeCsv::Auto));
        assert!(SafeCsv::Auto.for_reports() && !SafeCsv::Auto.for_data());
        assert!(SafeCsv::Always.for_data() && !SafeCsv::Never.for_reports());
    }
}
