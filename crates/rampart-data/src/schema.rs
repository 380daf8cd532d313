//! Dataset schemas: a TOML file naming every column with its type and rules.
//!
//! ```toml
//! version = 1
//! nulls = ["", "NA"]          # field texts that mean "no value" (default: the empty field)
//!
//! [label]                     # optional: the training label and its allowed classes
//! column = "churned"
//! classes = ["yes", "no"]
//!
//! [[columns]]
//! name = "id"
//! type = "int"                # int, float, bool, string, category, date
//! unique = true
//!
//! [[columns]]
//! name = "email"
//! type = "string"
//! nullable = true
//! regex = "[^@ ]+@[^@ ]+"      # must match the whole value
//! max_length = 254
//!
//! [[columns]]
//! name = "plan"
//! type = "category"
//! allowed = ["free", "pro"]
//!
//! [[columns]]
//! name = "signup"
//! type = "date"               # YYYY-MM-DD
//! min = "2000-01-01"
//! ```
//!
//! Unknown keys are errors, as are rules that cannot apply to a column's type.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The schema file format version this code reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// A 64-bit signed integer.
    Int,
    /// A finite 64-bit float.
    Float,
    /// `true`/`false` (any case) or `1`/`0`.
    Bool,
    /// Any UTF-8 text.
    String,
    /// Text from a fixed set (`allowed`).
    Category,
    /// An ISO 8601 calendar date, `YYYY-MM-DD`.
    Date,
}

impl ColumnType {
    /// The name as written in schemas.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Float => "float",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Category => "category",
            Self::Date => "date",
        }
    }
}

/// A bound: a number for int and float columns, a `YYYY-MM-DD` text for dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bound {
    /// An integer bound.
    Int(i64),
    /// A float bound.
    Float(f64),
    /// A date bound.
    Text(String),
}

/// One column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The header name, exactly.
    pub name: String,
    /// The type.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Whether null values are allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nullable: bool,
    /// Smallest allowed value (int, float, date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Bound>,
    /// Largest allowed value (int, float, date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Bound>,
    /// The allowed values (category: required; string, int: optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// A regular expression the whole value must match (string, category).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Shortest allowed text, in characters (string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Longest allowed text, in characters (string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// No two rows may share a value (nulls excepted).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// Personal data (a name, an email, an SSN): validated like any column, but not a
    /// feature: the poisoning checks leave it out, and `rampart pipeline` does not train on it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub personal: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
const fn is_false(b: &bool) -> bool {
    !*b
}

/// The label column and its classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// The column holding the label.
    pub column: String,
    /// The allowed classes (as the values are written).
    pub classes: Vec<String>,
}

/// A dataset schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Format version ([`SCHEMA_VERSION`]).
    pub version: u32,
    /// Field texts that mean "no value".
    #[serde(default = "default_nulls")]
    pub nulls: Vec<String>,
    /// The label, for training data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    /// The columns.
    pub columns: Vec<Column>,
}

fn default_nulls() -> Vec<String> {
    vec![String::new()]
}

/// A schema that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// Not valid TOML, or keys that do not belong.
    #[error("not a valid schema: {0}")]
    Parse(String),
    /// A rule that is wrong for its column.
    #[error("column `{column}`: {message}")]
    Column {
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// Something wrong with the schema as a whole.
    #[error("{0}")]
    Invalid(String),
}

fn col_err(column: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Column {
        column: column.to_owned(),
        message: message.into(),
    }
}

impl Schema {
    /// Parses and checks a schema file's text.
    ///
    /// # Errors
    /// [`SchemaError`] naming the column and the problem.
    pub fn from_toml(text: &str) -> Result<Self, SchemaError> {
        let schema: Self = toml::from_str(text).map_err(|e| SchemaError::Parse(e.to_string()))?;
        schema.check()?;
        Ok(schema)
    }

    /// The schema as TOML.
    ///
    /// # Errors
    /// Never for schemas built by this crate.
    pub fn to_toml(&self) -> Result<String, SchemaError> {
        toml::to_string_pretty(self).map_err(|e| SchemaError::Parse(e.to_string()))
    }

    /// The column called `name`.
    #[must_use]
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Checks that every rule fits its column.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<(), SchemaError> {
        if self.version != SCHEMA_VERSION {
            return Err(SchemaError::Invalid(format!(
                "schema version {} is not supported (this rampart reads version {SCHEMA_VERSION})",
                self.version
            )));
        }
        if self.columns.is_empty() {
            return Err(SchemaError::Invalid("the schema has no columns".into()));
        }
        let mut names = BTreeSet::new();
        for c in &self.columns {
            if !names.insert(c.name.as_str()) {
                return Err(col_err(&c.name, "listed twice"));
            }
            check_column(c)?;
        }
        if let Some(label) = &self.label {
            if self.column(&label.column).is_none() {
                return Err(SchemaError::Invalid(format!(
                    "the label column `{}` is not among the columns",
                    label.column
                )));
            }
            if label.classes.is_empty() {
                return Err(col_err(&label.column, "the label has no classes"));
            }
        }
        Ok(())
    }
}

fn check_column(c: &Column) -> Result<(), SchemaError> {
    let t = c.kind;
    let name = &c.name;
    let numeric = matches!(t, ColumnType::Int | ColumnType::Float);
    for (which, bound) in [("min", &c.min), ("max", &c.max)] {
        match (bound, t) {
            (None, _) => {}
            (Some(Bound::Int(_)), ColumnType::Int | ColumnType::Float)
            | (Some(Bound::Float(_)), ColumnType::Float) => {}
            (Some(Bound::Text(d)), ColumnType::Date) => {
                if parse_date(d.as_bytes()).is_none() {
                    return Err(col_err(
                        name,
                        format!("{which} `{d}` is not a YYYY-MM-DD date"),
                    ));
                }
            }
            (Some(b), _) => {
                let want = if numeric {
                    if t == ColumnType::Int {
                        "an integer"
                    } else {
                        "a number"
                    }
                } else if t == ColumnType::Date {
                    "a \"YYYY-MM-DD\" text"
                } else {
                    return Err(col_err(
                        name,
                        format!(
                            "{which} applies to int, float and date columns, not {}",
                            t.name()
                        ),
                    ));
                };
                return Err(col_err(name, format!("{which} {b:?} must be {want}")));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (&c.min, &c.max) {
        let inverted = match (lo, hi) {
            (Bound::Text(a), Bound::Text(b)) => a > b,
            _ => bound_f64(lo) > bound_f64(hi),
        };
        if inverted {
            return Err(col_err(name, "min is greater than max"));
        }
    }
    if c.regex.is_some() && !matches!(t, ColumnType::String | ColumnType::Category) {
        return Err(col_err(
            name,
            "regex applies to string and category columns",
        ));
    }
    if let Some(r) = &c.regex {
        full_match_regex(r).map_err(|e| col_err(name, format!("regex does not compile: {e}")))?;
    }
    if (c.min_length.is_some() || c.max_length.is_some()) && t != ColumnType::String {
        return Err(col_err(
            name,
            "min_length/max_length apply to string columns",
        ));
    }
    if let (Some(lo), Some(hi)) = (c.min_length, c.max_length)
        && lo > hi
    {
        return Err(col_err(name, "min_length is greater than max_length"));
    }
    match (&c.allowed, t) {
        (None, ColumnType::Category) => {
            return Err(col_err(name, "a category column needs its allowed values"));
        }
        (Some(a), _) if a.is_empty() => return Err(col_err(name, "allowed is empty")),
        (Some(_), ColumnType::Float | ColumnType::Bool | ColumnType::Date) => {
            return Err(col_err(
                name,
                "allowed applies to category, string and int columns",
            ));
        }
        (Some(a), ColumnType::Int) => {
            if let Some(v) = a.iter().find(|v| v.parse::<i64>().is_err()) {
                return Err(col_err(
                    name,
                    format!("allowed value `{v}` is not an integer"),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn bound_f64(b: &Bound) -> f64 {
    match b {
        Bound::Int(i) => *i as f64,
        Bound::Float(f) => *f,
        Bound::Text(_) => f64::NAN,
    }
}

/// Compiles `pattern` so that it must match a whole value.
///
/// # Errors
/// When the pattern is not a valid regular expression.
pub fn full_match_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
}

pub use rampart_pii::checks::days_in_month;

/// Days since 1970-01-01 of a strict `YYYY-MM-DD` date, or `None`.
#[must_use]
pub fn parse_date(s: &[u8]) -> Option<i32> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *s else {
        return None;
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| i32::from(c - b'0'));
    let y = digit(y0)? * 1000 + digit(y1)? * 100 + digit(y2)? * 10 + digit(y3)?;
    let m = digit(m0)? * 10 + digit(m1)?;
    let d = digit(d0)? * 10 + digit(d1)?;
    let (Ok(yu), Ok(mu)) = (u32::try_from(y), u32::try_from(m)) else {
        return None;
    };
    if d < 1 || d > days_in_month(yu, mu)? {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_are_strict_and_count_days() {
        assert_eq!(parse_date(b"1970-01-01"), Some(0));
        assert_eq!(parse_date(b"2000-03-01"), Some(11017));
        assert_eq!(parse_date(b"2024-02-29"), Some(19782));
        assert_eq!(parse_date(b"2023-02-29"), None);
        assert_eq!(parse_date(b"1900-02-29"), None);
        assert_eq!(parse_date(b"2000-02-29"), Some(11016));
        assert_eq!(parse_date(b"2024-13-01"), None);
        assert_eq!(parse_date(b"2024-1-01"), None);
        assert_eq!(parse_date(b"2024-01-01T00:00"), None);
    }

    fn err(text: &str) -> String {
        Schema::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn rules_must_fit_their_columns() {
        let base = "version = 1\n[[columns]]\nname = \"a\"\n";
        assert!(Schema::from_toml(&format!("{base}type = \"int\"\nmin = 0\nmax = 5\n")).is_ok());
        assert!(
            err(&format!("{base}type = \"int\"\nmin = 5\nmax = 0\n")).contains("min is greater")
        );
        assert!(err(&format!("{base}type = \"string\"\nmin = 1\n")).contains("min applies"));
        assert!(err(&format!("{base}type = \"int\"\nregex = \"x\"\n")).contains("regex applies"));
        assert!(
            err(&format!("{base}type = \"string\"\nregex = \"(\"\n")).contains("does not compile")
        );
        assert!(err(&format!("{base}type = \"category\"\n")).contains("needs its allowed"));
        assert!(
            err(&format!("{base}type = \"date\"\nmin = \"2024-02-30\"\n")).contains("not a YYYY")
        );
        assert!(
            err(&format!("{base}type = \"int\"\nallowed = [\"x\"]\n")).contains("not an integer")
        );
        assert!(err(&format!("{base}type = \"int\"\nunqiue = true\n")).contains("unknown field"));
        assert!(err(&format!("{base}type = \"integer\"\n")).contains("unknown variant"));
        assert!(err("version = 2\ncolumns = []\n").contains("version 2"));
        assert!(
            err(&format!(
                "{base}type = \"int\"\n[[columns]]\nname = \"a\"\ntype = \"int\"\n"
            ))
            .contains("listed twice")
        );
        assert!(
            err(&format!(
                "{base}type = \"int\"\n[label]\ncolumn = \"b\"\nclasses = [\"1\"]\n"
            ))
            .contains("not among")
        );
    }

    #[test]
    fn round_trips_through_toml() {
        let text = "version = 1\nnulls = [\"\", \"NA\"]\n[label]\ncolumn = \"y\"\nclasses = [\"0\", \"1\"]\n[[columns]]\nname = \"y\"\ntype = \"int\"\n[[columns]]\nname = \"x\"\ntype = \"float\"\nnullable = true\nmin = -1.5\nmax = 2\n";
        let s = Schema::from_toml(text).unwrap();
        let back = Schema::from_toml(&s.to_toml().unwrap()).unwrap();
        assert_eq!(s, back);
        assert_eq!(s.column("x").unwrap().max, Some(Bound::Int(2)));
    }
}
