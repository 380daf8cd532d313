//! Personal data and secrets: detection, validation, redaction and pseudonymisation of text.
//!
//! A crate of its own so that what needs PII handling without datasets (the guard's output
//! rail) does not pull in the columnar stack; `rampart-data` applies it to CSV, Parquet and
//! text files (`rampart_data::pii::table`) and re-exports it as `rampart_data::pii`.
//!
//! [`Detector::scan`] finds [`Finding`]s in a text: entity type, byte span, confidence and the
//! rule that fired. Patterns find candidates; validators ([`checks`]) reject look-alikes
//! (Luhn and issuer prefixes for cards, mod-97 for IBANs, the never-issued SSN ranges, real
//! calendar dates, libphonenumber's number plans for phones); context words in the 48 bytes
//! before a candidate, or the column's name, raise confidence, and words that make a number an
//! identifier of something else (order, invoice, version, …) lower it. People's names are
//! also found without a context word by a learned token classifier over name gazetteers
//! ([`person`]). Findings under
//! [`DetectorOptions::min_confidence`] are dropped; overlapping findings keep the most
//! confident.
//!
//! [`redact`] turns findings into redacted text with one [`Operator`] per entity or column;
//! reports never hold a raw value (samples are masked by [`mask_sample`]). [`safe_csv`]
//! neutralises cells a spreadsheet would run as formulas.

mod address;
pub mod checks;
mod lexicon;
pub mod national;
pub mod person;
mod phone;
pub mod redact;
pub mod safe_csv;
mod secrets;

use rustc_hash::{FxHashMap, FxHashSet as HashSet};
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use redact::{Operator, Redactor};

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Entity {
    /// An email address.
    Email,
    /// A phone number (E.164 or a national format libphonenumber accepts).
    Phone,
    /// A US social security number.
    UsSsn,
    /// A payment card number.
    CreditCard,
    /// An international bank account number.
    Iban,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A URL.
    Url,
    /// A date with birth context.
    DateOfBirth,
    /// A person's name.
    Person,
    /// A street address.
    Address,
    /// An AWS access key id.
    AwsAccessKey,
    /// A PEM private key block.
    PrivateKey,
    /// A JSON Web Token.
    Jwt,
    /// A GitHub, Slack or Stripe-style API token.
    ApiToken,
    /// A high-entropy value assigned to a key, secret, token or password.
    Secret,
    /// A UK National Insurance number.
    UkNino,
    /// A UK NHS number (mod-11 check digit).
    UkNhs,
    /// A German tax identification number (Steuer-ID).
    DeTaxId,
    /// A German identity card (Personalausweis) number.
    DeIdCard,
    /// A French social security number (NIR, numéro INSEE).
    FrNir,
    /// A Spanish DNI/NIF of a person.
    EsNif,
    /// A Spanish foreigner's number (NIE).
    EsNie,
    /// An Italian codice fiscale.
    ItFiscalCode,
    /// A Dutch citizen service number (BSN).
    NlBsn,
    /// An Indian Aadhaar number (Verhoeff check digit).
    InAadhaar,
    /// An Indian Permanent Account Number (PAN).
    InPan,
    /// A Canadian Social Insurance Number.
    CaSin,
    /// An Australian Tax File Number.
    AuTfn,
    /// An Australian Medicare card number.
    AuMedicare,
    /// A US Individual Taxpayer Identification Number.
    UsItin,
    /// A US Employer Identification Number.
    UsEin,
    /// A passport number (with a passport word before it).
    Passport,
    /// A medical record number (with a record word before it).
    MedicalRecord,
    /// A health condition named with medical context.
    HealthCondition,
    /// A value of a column a schema marks personal, of no entity the detector recognises.
    PersonalData,
}

/// Every entity, in report order.
pub const ENTITIES: &[Entity] = &[
    Entity::Email,
    Entity::Phone,
    Entity::UsSsn,
    Entity::CreditCard,
    Entity::Iban,
    Entity::IpAddress,
    Entity::Url,
    Entity::DateOfBirth,
    Entity::Person,
    Entity::Address,
    Entity::UkNino,
    Entity::UkNhs,
    Entity::DeTaxId,
    Entity::DeIdCard,
    Entity::FrNir,
    Entity::EsNif,
    Entity::EsNie,
    Entity::ItFiscalCode,
    Entity::NlBsn,
    Entity::InAadhaar,
    Entity::InPan,
    Entity::CaSin,
    Entity::AuTfn,
    Entity::AuMedicare,
    Entity::UsItin,
    Entity::UsEin,
    Entity::Passport,
    Entity::MedicalRecord,
    Entity::HealthCondition,
    Entity::AwsAccessKey,
    Entity::PrivateKey,
    Entity::Jwt,
    Entity::ApiToken,
    Entity::Secret,
    Entity::PersonalData,
];

impl Entity {
    /// The entity's name as reports, policies and `<TYPE>` replacements spell it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::UsSsn => "US_SSN",
            Self::CreditCard => "CREDIT_CARD",
            Self::Iban => "IBAN",
            Self::IpAddress => "IP_ADDRESS",
            Self::Url => "URL",
            Self::DateOfBirth => "DATE_OF_BIRTH",
            Self::Person => "PERSON",
            Self::Address => "ADDRESS",
            Self::AwsAccessKey => "AWS_ACCESS_KEY",
            Self::PrivateKey => "PRIVATE_KEY",
            Self::Jwt => "JWT",
            Self::ApiToken => "API_TOKEN",
            Self::Secret => "SECRET",
            Self::UkNino => "UK_NINO",
            Self::UkNhs => "UK_NHS",
            Self::DeTaxId => "DE_TAX_ID",
            Self::DeIdCard => "DE_ID_CARD",
            Self::FrNir => "FR_NIR",
            Self::EsNif => "ES_NIF",
            Self::EsNie => "ES_NIE",
            Self::ItFiscalCode => "IT_FISCAL_CODE",
            Self::NlBsn => "NL_BSN",
            Self::InAadhaar => "IN_AADHAAR",
            Self::InPan => "IN_PAN",
            Self::CaSin => "CA_SIN",
            Self::AuTfn => "AU_TFN",
            Self::AuMedicare => "AU_MEDICARE",
            Self::UsItin => "US_ITIN",
            Self::UsEin => "US_EIN",
            Self::Passport => "PASSPORT",
            Self::MedicalRecord => "MEDICAL_RECORD",
            Self::HealthCondition => "HEALTH_CONDITION",
            Self::PersonalData => "PERSONAL_DATA",
        }
    }

    /// Whether this entity is a credential rather than personal data.
    #[must_use]
    pub const fn is_secret(self) -> bool {
        matches!(
            self,
            Self::AwsAccessKey | Self::PrivateKey | Self::Jwt | Self::ApiToken | Self::Secret
        )
    }

    /// Whether a word like "order" or "invoice" just before a number of this entity makes it
    /// an identifier of something else.
    const fn takes_negative_context(self) -> bool {
        matches!(
            self,
            Self::Phone
                | Self::UsSsn
                | Self::CreditCard
                | Self::IpAddress
                | Self::UkNhs
                | Self::DeTaxId
                | Self::FrNir
                | Self::NlBsn
                | Self::InAadhaar
                | Self::CaSin
                | Self::AuTfn
                | Self::AuMedicare
                | Self::UsItin
                | Self::UsEin
        )
    }

    /// Context words that make this entity more likely.
    const fn context(self) -> &'static [&'static str] {
        match self {
            Self::Email => &["email", "e-mail", "mail", "contact"],
            Self::Phone => &[
                "phone",
                "tel",
                "telephone",
                "mobile",
                "cell",
                "call",
                "ring",
                "fax",
                "contact",
                "whatsapp",
                "sms",
                "text",
                "telefon",
                "telefonnummer",
                "handy",
                "mobil",
                "rufen",
                "anrufen",
                "téléphone",
                "tél",
                "portable",
                "appelez",
                "appeler",
                "teléfono",
                "telefono",
                "móvil",
                "movil",
                "llame",
                "llámeme",
                "llamar",
                "cellulare",
                "chiami",
                "chiamare",
                "telefoon",
                "telefoonnummer",
                "mobiel",
                "bel",
                "bellen",
                "gsm",
                // Portuguese, Latin American Spanish, Polish, Danish and Norwegian, Czech,
                // Greek: the languages of the plans without a trunk prefix.
                "telefone",
                "telemóvel",
                "telemovel",
                "celular",
                "ligue",
                "llámame",
                "llamame",
                "komórka",
                "komórkowy",
                "zadzwoń",
                "tlf",
                "volejte",
                "τηλέφωνο",
                "τηλ",
                "κινητό",
                "電話",
                "携帯",
            ],
            Self::UsSsn => &["ssn", "social", "security", "ss#", "tin", "taxpayer"],
            Self::CreditCard => &[
                "card",
                "credit",
                "debit",
                "visa",
                "mastercard",
                "amex",
                "cc",
                "payment",
                "pan",
                "discover",
            ],
            Self::Iban => &[
                "iban",
                "bank",
                "account",
                "transfer",
                "sepa",
                "acct",
                "konto",
                "kontonummer",
                "bankverbindung",
                "compte",
                "virement",
                "cuenta",
                "conto",
                "bonifico",
                "rekening",
                "口座",
            ],
            Self::IpAddress => &["ip", "host", "server", "client", "addr", "ipv4", "ipv6"],
            Self::DateOfBirth => &[
                "born",
                "birth",
                "dob",
                "birthday",
                "birthdate",
                "bday",
                "b-day",
                "d.o.b",
            ],
            Self::Person => &[
                "name", "person", "patient", "customer", "contact", "employee",
            ],
            Self::Address => &[
                "address",
                "street",
                "addr",
                "residence",
                "lives",
                "live",
                "located",
                "ship",
                "deliver",
                "delivery",
                "mailing",
                "adresse",
                "anschrift",
                "wohnt",
                "wohne",
                "wohnhaft",
                "wohnort",
                "habite",
                "domicile",
                "livrer",
                "livraison",
                "dirección",
                "direccion",
                "domicilio",
                "vive",
                "vivo",
                "reside",
                "enviar",
                "indirizzo",
                "abita",
                "abito",
                "residente",
                "adres",
                "woont",
                "woon",
                "woonadres",
                "bezorgen",
            ],
            Self::UkNino => &["national", "insurance", "nino", "ni", "nin"],
            Self::UkNhs => &["nhs", "health", "patient"],
            Self::DeTaxId => &[
                "steuer-id",
                "steuerid",
                "steueridentifikationsnummer",
                "identifikationsnummer",
                "steuernummer",
                "idnr",
                "tin",
                "tax",
            ],
            Self::DeIdCard => &[
                "personalausweis",
                "ausweis",
                "ausweisnummer",
                "personalausweisnummer",
                "id",
                "identity",
            ],
            Self::FrNir => &[
                "nir",
                "insee",
                "sécurité",
                "securite",
                "sociale",
                "social",
                "ssn",
            ],
            Self::EsNif => &["dni", "nif", "documento", "identidad", "id"],
            Self::EsNie => &["nie", "extranjero", "extranjería", "identidad", "id"],
            Self::ItFiscalCode => &["codice", "fiscale", "cf", "tax"],
            Self::NlBsn => &[
                "bsn",
                "burgerservicenummer",
                "sofinummer",
                "sofi",
                "citizen",
            ],
            Self::InAadhaar => &["aadhaar", "aadhar", "uid", "uidai", "आधार"],
            Self::InPan => &["pan", "permanent", "income", "tax"],
            Self::CaSin => &["sin", "social", "insurance", "nas"],
            Self::AuTfn => &["tfn", "tax", "file"],
            Self::AuMedicare => &["medicare"],
            Self::UsItin => &["itin", "taxpayer", "tin", "tax"],
            Self::UsEin => &["ein", "fein", "employer", "tax", "federal"],
            Self::Passport | Self::MedicalRecord => &[],
            Self::HealthCondition => lexicon::HEALTH_CONTEXT,
            Self::PersonalData => &[],
            _ => &["key", "secret", "token", "password", "credential"],
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`Entity`]'s; its message lists them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity {0:?} (one of {names})", names = entity_names())]
pub struct UnknownEntity(pub String);

fn entity_names() -> String {
    ENTITIES
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Entity {
    type Err = UnknownEntity;
    fn from_str(s: &str) -> Result<Self, UnknownEntity> {
        ENTITIES
            .iter()
            .copied()
            .find(|e| e.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownEntity(s.to_owned()))
    }
}

/// Every rule id a finding can carry (stable; users write policies against them).
pub const RULES: &[&str] = &[
    "email",
    "phone-international",
    "phone-national",
    "phone-digits",
    "phone-vanity",
    "us-ssn-dashed",
    "us-ssn-spaced",
    "us-ssn-digits",
    "credit-card-luhn",
    "iban-mod97",
    "ipv4",
    "ipv6",
    "url",
    "date-of-birth-context",
    "date-of-birth-column",
    "person-context",
    "person-given-name",
    "person-model",
    "person-column",
    "address-street",
    "address-postcode",
    "address-column",
    "uk-nino",
    "uk-nhs-mod11",
    "de-tax-id-mod11",
    "de-id-card-check",
    "fr-nir-mod97",
    "es-nif-letter",
    "es-nie-letter",
    "it-fiscal-code-check",
    "nl-bsn-elfproef",
    "in-aadhaar-verhoeff",
    "in-pan",
    "ca-sin-luhn",
    "au-tfn-mod11",
    "au-medicare-check",
    "us-itin",
    "us-ein",
    "passport-context",
    "medical-record-context",
    "health-condition-context",
    "aws-access-key",
    "aws-secret-key",
    "private-key-block",
    "private-key-body",
    "jwt",
    "github-token",
    "npm-token",
    "slack-token",
    "stripe-key",
    "openai-key",
    "anthropic-key",
    "openai-style-key",
    "google-api-key",
    "google-oauth",
    "gitlab-token",
    "sendgrid-key",
    "twilio-api-key",
    "huggingface-token",
    "azure-key",
    "azure-sas-signature",
    "discord-webhook",
    "azure-client-secret",
    "url-credentials",
    "connection-string-password",
    "secret-assignment",
    "secret-high-entropy",
    "secret-column",
    "personal-column",
];

/// One piece of personal data or one secret found in a text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What it is.
    pub entity: Entity,
    /// Byte offset of its start in the scanned text.
    pub start: usize,
    /// Byte offset just past its end.
    pub end: usize,
    /// How sure the detector is, 0 to 1.
    pub confidence: f32,
    /// The rule that fired (one of [`RULES`]).
    pub rule: &'static str,
}

/// What a column's name says about its values.
#[derive(Debug, Clone, Default)]
pub struct ColumnHint {
    /// Entities the name suggests (its words are those entities' context words).
    pub entities: Vec<Entity>,
}

impl ColumnHint {
    /// The hint for a column called `name` (`customer_email`, `DateOfBirth`, `ssn`, …).
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        let words = name_words(name);
        let has = |w: &[&str]| words.iter().any(|x| w.contains(&x.as_str()));
        let joined = words.join("_");
        let mut entities = Vec::new();
        let mut add = |e: Entity, yes: bool| {
            if yes {
                entities.push(e);
            }
        };
        add(Entity::Email, has(&["email", "mail"]));
        add(
            Entity::Phone,
            has(&["phone", "tel", "telephone", "mobile", "cell", "fax"]),
        );
        add(Entity::UsSsn, has(&["ssn", "social"]));
        add(Entity::CreditCard, has(&["card", "cc", "pan", "credit"]));
        add(Entity::Iban, has(&["iban", "bank", "account"]));
        add(Entity::IpAddress, has(&["ip", "ipv4", "ipv6", "host"]));
        add(
            Entity::DateOfBirth,
            has(&["dob", "birth", "birthday", "birthdate", "born"]),
        );
        add(
            Entity::Person,
            has(&[
                "name",
                "firstname",
                "lastname",
                "surname",
                "fullname",
                "forename",
                "person",
            ]) && !has(&[
                "user", "file", "host", "product", "company", "model", "domain",
            ]),
        );
        add(
            Entity::Address,
            (has(&["address", "street", "addr", "residence"]) && !has(&["ip", "email", "mail"]))
                || joined.contains("address_line"),
        );
        add(
            Entity::Secret,
            has(&["password", "passwd", "pwd", "secret", "token", "apikey"])
                || joined.contains("api_key"),
        );
        Self { entities }
    }

    fn has(&self, e: Entity) -> bool {
        self.entities.contains(&e)
    }
}

/// Lower-case words of an identifier: `customerEmail`, `date_of_birth`, `Phone Number`.
fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Detector settings.
#[derive(Debug, Clone)]
pub struct DetectorOptions {
    /// Findings below this confidence are dropped.
    pub min_confidence: f32,
    /// Only these entities are reported (empty: all).
    pub entities: Vec<Entity>,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            entities: Vec::new(),
        }
    }
}

/// The default reporting threshold.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.5;

/// How far before a candidate context words are looked for, in bytes.
const CONTEXT_WINDOW: usize = 48;
/// Confidence added by a context word (or a column name) of the candidate's entity.
const CONTEXT_BOOST: f32 = 0.35;
/// Confidence removed by a word that makes a number an identifier of something else.
const NEGATIVE_PENALTY: f32 = 0.4;
/// The longest email address (RFC 5321's path limit).
const MAX_EMAIL_BYTES: usize = 254;
/// URLs are cut at this length.
const MAX_URL_BYTES: usize = 2048;
/// The longest token or secret value taken as one finding.
const MAX_TOKEN_BYTES: usize = 256;
/// A run of numbers longer than this is only tried piece by piece.
const MAX_WHOLE_RUN: usize = 64;
/// The most space-separated pieces of a run of numbers tried as one candidate.
const MAX_RUN_TOKENS: usize = 6;
/// The longest private key block taken in as one finding.
const MAX_KEY_BLOCK: usize = 16 << 10;

/// Errors building a detector (never expected: the patterns are fixed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PiiError {
    /// A built-in pattern failed to compile.
    #[error("internal: a PII pattern failed to compile")]
    Pattern(#[source] regex::Error),
    /// The built-in word lists failed to compile.
    #[error("internal: the PII word lists failed to compile")]
    Lexicon(#[source] aho_corasick::BuildError),
    /// The shipped name gazetteers or model cannot be read.
    #[error("internal: {0}")]
    Model(String),
    /// An operator or policy entry is malformed.
    #[error("{0}")]
    Config(String),
    /// Encryption or decryption of a pseudonymised value failed.
    #[error("age: {0}")]
    Crypto(String),
    /// Reading or writing data failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A Parquet file (or one of its record batches) cannot be read.
    #[error("{0}")]
    Format(String),
    /// The CSV input is malformed at a line.
    #[error("line {line}: {reason}")]
    Csv {
        /// The 1-based line where the record starts.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

struct Patterns {
    email: Regex,
    url: Regex,
    iban: Regex,
    prefixed: Regex,
    url_password: Regex,
    assignment: Regex,
    person_context: Regex,
    surname_after: Regex,
    text_date: Regex,
    month: Regex,
    day_year_after: Regex,
    year_after: Regex,
    ssn_dashed: Regex,
    ssn_spaced: Regex,
    phone_international: Regex,
    phone_us: Regex,
    phone_other: Regex,
    column_name: Regex,
}

impl Patterns {
    fn new() -> Result<Self, regex::Error> {
        Ok(Self {
            email: Regex::new(
                r"(?i-u)[a-z0-9][a-z0-9._%+\-]*@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,24}",
            )?,
            url: Regex::new(r#"(?i)(?:(?:https?|ftp)://|www\.)[^\s<>"'`]{2,}"#)?,
            iban: Regex::new(
                r"(?-u)^[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            )?,
            // Stripe's test-mode keys reach no real account, and its publishable keys are
            // public by design: only live secret and restricted keys are leaks.
            prefixed: Regex::new(&format!(
                "{}{}",
                concat!(
                    r"(?-u)(?:A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)[A-Z0-9]{16})",
                    r"|(?:-----BEGIN [A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----)",
                    r"|(?:eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})",
                    r"|(?:gh[pousr]_[A-Za-z0-9]{36,})|(?:github_pat_[A-Za-z0-9_]{60,})",
                    r"|(?:xox[abposr]-[A-Za-z0-9\-]{10,})",
                    r"|(?:(?:sk|rk)_live_[A-Za-z0-9]{16,})",
                ),
                secrets::PATTERN
            ))?,
            url_password: Regex::new(secrets::URL_PASSWORD)?,
            assignment: Regex::new(concat!(
                r#"(?i)(api[_\-]?key|apikey|secret|token|passw(?:or)?d|pwd|access[_\-]?key|"#,
                r#"private[_\-]?key|auth|credentials?|client[_\-]?secret|passphrase|"#,
                r#"[a-z0-9][_\-](?:key|pass|salt|pat)(?-u:\b))[a-z_\-]{0,20}["']?"#,
                r#"[ \t]{0,3}(?:[:=]|=>|(?-u:\b)is(?-u:\b))[ \t]{0,3}["']?([^\s"',;]{6,})"#,
            ))?,
            person_context: Regex::new(concat!(
                r"(?:(?-u:\b)(?:[Mm]y name is|[Nn]ame:|[Nn]amed|[Cc]alled|Mr\.?|Mrs\.?|Ms\.?|Miss|Dr\.?|Prof\.?|",
                r"Dear|[Ss]incerely,|[Rr]egards,|[Pp]atient:?|[Cc]ustomer:?|[Cc]ontact:?|[Aa]ttn:?)[ \t]+)",
                r"([A-Z][a-z]+(?:[\-'][A-Z][a-z]+)?(?:[ \t]+[A-Z]\.)?(?:[ \t]+[A-Z][a-z]+(?:[\-'][A-Z][a-z]+)?){0,2})",
            ))?,
            surname_after: Regex::new(
                r"(?-u)^(?: [A-Z]\.)? [A-Z][a-z]{1,20}(?:[\-'][A-Z][a-z]+)?\b",
            )?,
            text_date: Regex::new(concat!(
                r"(?-u)\b(?:(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]{0,6}\.? [0-9]{1,2}(?:st|nd|rd|th)?,? [0-9]{4}",
                r"|[0-9]{1,2}(?:st|nd|rd|th)? (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]{0,6}\.?,? [0-9]{4})\b",
            ))?,
            month: Regex::new(
                r"(?-u)\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.?",
            )?,
            day_year_after: Regex::new(r"(?-u)^ [0-9]{1,2}(?:st|nd|rd|th)?,? [0-9]{4}\b")?,
            year_after: Regex::new(r"(?-u)^,? [0-9]{4}\b")?,
            ssn_dashed: Regex::new(r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$")?,
            ssn_spaced: Regex::new(r"^[0-9]{3} [0-9]{2} [0-9]{4}$")?,
            phone_international: Regex::new(
                r"^(?:\+|00)[0-9](?:[ .\-/]?(?:\([0-9]{1,4}\)|[0-9]{1,8})){1,8}$",
            )?,
            phone_us: Regex::new(
                r"^(?:1[ .\-]?)?(?:\([0-9]{3}\)[ .\-]?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}$",
            )?,
            phone_other: Regex::new(
                r"^(?:\(0[0-9]{1,4}\)[ .\-]?|0[0-9]{1,4}[ .\-/])[0-9]{2,4}(?:[ .\-]?[0-9]{2,4}){0,3}$",
            )?,
            column_name: Regex::new(r"^[\p{L}][\p{L}'\-.]*(?: [\p{L}][\p{L}'\-.]*){0,4}$")?,
        })
    }
}

/// The PII and secrets detector. Build it once ([`Detector::new`]) and share it: scanning
/// takes `&self`.
pub struct Detector {
    p: Patterns,
    opts: DetectorOptions,
    given_names: HashSet<&'static str>,
    street_suffixes: HashSet<&'static str>,
    triggers: national::Triggers,
    addresses: address::Addresses,
    person: &'static person::Tagger,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("opts", &self.opts)
            .finish()
    }
}

/// Regexes libphonenumber's metadata may keep compiled at once.
const PHONE_REGEX_CACHE: usize = 8192;

/// The `phonenumber` crate compiles its metadata's patterns on first use into one LRU cache
/// of 100 regexes shared by all regions. Text with numbers of more than a couple of regions
/// evicts and recompiles patterns on nearly every check (more than half of the scan's time on
/// a ten-country corpus); a cache that holds every pattern the scan meets compiles each once.
fn widen_phone_regex_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(PHONE_REGEX_CACHE);
        }
    });
}

/// A candidate before context is applied.
struct Candidate {
    entity: Entity,
    start: usize,
    end: usize,
    base: f32,
    rule: &'static str,
    /// Whether this rule already is context (a column name, a "my name is"): no boost.
    contextual: bool,
}

impl Detector {
    /// Compiles the detector.
    ///
    /// # Errors
    /// [`PiiError::Pattern`], which would be a bug in rampart.
    pub fn new(opts: DetectorOptions) -> Result<Self, PiiError> {
        widen_phone_regex_cache();
        Ok(Self {
            p: Patterns::new().map_err(PiiError::Pattern)?,
            opts,
            given_names: lexicon::GIVEN_NAMES.iter().copied().collect(),
            street_suffixes: lexicon::STREET_SUFFIXES.iter().copied().collect(),
            triggers: national::Triggers::new().map_err(PiiError::Lexicon)?,
            addresses: address::Addresses::new()
                .map_err(|e| PiiError::Model(format!("address patterns: {e}")))?,
            person: person::shipped().map_err(PiiError::Model)?,
        })
    }

    /// The options the detector was built with.
    #[must_use]
    pub const fn options(&self) -> &DetectorOptions {
        &self.opts
    }

    /// Finds personal data and secrets in free text.
    #[must_use]
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        self.scan_with(text, None)
    }

    /// Finds personal data and secrets in a value of a column whose name gave `hint`.
    #[must_use]
    pub fn scan_with(&self, text: &str, hint: Option<&ColumnHint>) -> Vec<Finding> {
        let mut cands = Vec::new();
        if let Some(h) = hint {
            self.column_candidates(text, h, &mut cands);
        }
        let bytes = text.as_bytes();
        let has_digit = bytes.iter().any(u8::is_ascii_digit);
        // IBANs first: their digit groups are not numbers of their own.
        let mut ibans: Vec<(usize, usize)> = Vec::new();
        if has_digit {
            // Two capitals and two digits after a word boundary start every IBAN; the pattern
            // runs only there.
            for i in (0..bytes.len().saturating_sub(3)).filter(|&i| {
                matches!(bytes.get(i..i + 4), Some([a, b, c, d]) if a.is_ascii_uppercase()
                    && b.is_ascii_uppercase() && c.is_ascii_digit() && d.is_ascii_digit())
                    && boundary_before(bytes, i)
            }) {
                let window = text.get(i..window_end(text, i, 48));
                let Some(m) = window.and_then(|w| self.p.iban.find(w)) else {
                    continue;
                };
                let compact: Vec<u8> = m.as_str().bytes().filter(|b| *b != b' ').collect();
                if checks::iban_valid(&compact) {
                    cands.push(cand(Entity::Iban, i, i + m.end(), 0.85, "iban-mod97"));
                    ibans.push((i, i + m.end()));
                }
            }
        }
        if has_digit {
            self.numeric_candidates(text, &ibans, &mut cands);
        }
        self.addresses.candidates(text, &mut cands);
        if memchr::memchr(b'@', bytes).is_some() {
            for m in self.p.email.find_iter(text) {
                if boundary_before(bytes, m.start())
                    && !bytes_at(bytes, m.end()).is_some_and(is_word)
                    && m.len() <= MAX_EMAIL_BYTES
                    && !secrets::after_url_user(bytes, m.start())
                {
                    cands.push(cand(Entity::Email, m.start(), m.end(), 0.9, "email"));
                }
            }
        }
        for m in self.p.url.find_iter(text) {
            let end = m.start() + trim_url(m.as_str()).min(MAX_URL_BYTES);
            if boundary_before(bytes, m.start()) && end > m.start() + 4 {
                cands.push(cand(Entity::Url, m.start(), end, 0.6, "url"));
            }
        }
        Self::ipv6_candidates(text, &mut cands);
        national::alnum_ids(text, &mut cands);
        self.triggers.scan(text, &mut cands);
        self.secret_candidates(text, &mut cands);
        self.person_candidates(text, &mut cands);
        if has_digit {
            self.text_dates(text, &mut cands);
        }
        self.finish(text, hint, cands)
    }

    /// Applies context, thresholds, the entity filter, and resolves overlaps.
    fn finish(&self, text: &str, hint: Option<&ColumnHint>, cands: Vec<Candidate>) -> Vec<Finding> {
        // The context lists found before a start (whole window, last two words): readings of
        // one run share their start, so the last one is kept.
        let mut seen: Option<(usize, u64, u64)> = None;
        let found: Vec<Finding> = cands
            .into_iter()
            .filter(|c| self.opts.entities.is_empty() || self.opts.entities.contains(&c.entity))
            .filter_map(|c| {
                let mut conf = c.base;
                if !c.contextual {
                    let (window, near) = match seen {
                        Some((at, w, n)) if at == c.start => (w, n),
                        _ => {
                            let window = context_window(text, c.start);
                            let masks = context_masks(window);
                            seen = Some((c.start, masks.0, masks.1));
                            masks
                        }
                    };
                    let own = context_list(c.entity);
                    let column = hint.is_some_and(|h| h.has(c.entity));
                    let boost = if c.entity == Entity::DateOfBirth {
                        0.6
                    } else {
                        CONTEXT_BOOST
                    };
                    // A number that is only phone-shaped, right after another identifier's
                    // name, is that identifier (or nothing), not a phone.
                    let other_id = c.entity == Entity::Phone
                        && c.base < 0.5
                        && near & IDENTIFIER_LIST != 0
                        && near & own == 0;
                    if column || (window & own != 0 && !other_id) {
                        conf += boost;
                    }
                    // A card-valid number the line calls another identifier (`Aadhaar
                    // 573403649656`, a Luhn check digit by chance or by a generator's
                    // choice): that identifier or nothing, not a card.
                    if c.entity == Entity::CreditCard
                        && near & IDENTIFIER_LIST != 0
                        && near & own == 0
                    {
                        conf -= NEGATIVE_PENALTY;
                    }
                    if c.entity.takes_negative_context() && near & NEGATIVE_LIST != 0 {
                        conf -= NEGATIVE_PENALTY;
                    }
                }
                let conf = conf.clamp(0.0, 1.0);
                (conf >= self.opts.min_confidence).then_some(Finding {
                    entity: c.entity,
                    start: c.start,
                    end: c.end,
                    confidence: (conf * 100.0).round() / 100.0,
                    rule: c.rule,
                })
            })
            .collect();
        resolve_overlaps(found)
    }

    fn column_candidates(&self, text: &str, h: &ColumnHint, out: &mut Vec<Candidate>) {
        let t = text.trim();
        if t.is_empty() {
            return;
        }
        let start = text.len() - text.trim_start().len();
        let end = start + t.len();
        let mut push = |e: Entity, conf: f32, rule: &'static str| {
            out.push(Candidate {
                entity: e,
                start,
                end,
                base: conf,
                rule,
                contextual: true,
            });
        };
        if h.has(Entity::Person)
            && t.chars().count() <= 80
            && self.p.column_name.is_match(t)
            && t.chars().next().is_some_and(char::is_uppercase)
        {
            push(Entity::Person, 0.85, "person-column");
        }
        if h.has(Entity::Address)
            && t.len() >= 5
            && t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes().any(|b| b.is_ascii_alphabetic())
        {
            push(Entity::Address, 0.8, "address-column");
        }
        if h.has(Entity::DateOfBirth)
            && (checks::numeric_date_year(t).is_some() || self.p.text_date.is_match(t))
        {
            push(Entity::DateOfBirth, 0.9, "date-of-birth-column");
        }
        if h.has(Entity::Secret) && t.len() >= 6 && !t.contains(char::is_whitespace) {
            push(Entity::Secret, 0.8, "secret-column");
        }
    }

    fn numeric_candidates(&self, text: &str, skip: &[(usize, usize)], out: &mut Vec<Candidate>) {
        let bytes = text.as_bytes();
        let mut next_skip = 0;
        for (ms, me) in numeric_runs(bytes) {
            // The part of a run inside an IBAN is the IBAN's; the rest is looked at.
            let mut ms = ms;
            while let Some(&(s0, e0)) = skip.get(next_skip) {
                if e0 <= ms {
                    next_skip += 1;
                } else if s0 < me {
                    ms = e0;
                    next_skip += 1;
                } else {
                    break;
                }
            }
            while ms < me
                && bytes_at(bytes, ms)
                    .is_some_and(|b| !b.is_ascii_digit() && b != b'+' && b != b'(')
            {
                ms += 1;
            }
            if ms >= me {
                continue;
            }
            // A run glued to a word on either side loses its pieces up to the nearest space.
            let (mut s, mut e) = (ms, me);
            if !boundary_before(bytes, s) {
                let Some(sp) = text.get(ms..me).and_then(|r| r.find(' ')) else {
                    continue;
                };
                s += sp + 1;
            } else if s > 0 && bytes_at(bytes, s - 1) == Some(b':') {
                // The seconds of a time (`10:13:02.414915`) or a port.
                continue;
            }
            if bytes_at(bytes, e).is_some_and(is_word) {
                let Some(sp) = text.get(s..e).and_then(|r| r.rfind(' ')) else {
                    continue;
                };
                e = s + sp;
            }
            let Some(run) = text.get(s..e) else { continue };
            if run.is_empty() {
                continue;
            }
            if let Some(end) = Self::vanity_after(text, run, e) {
                out.push(cand(Entity::Phone, s, end, 0.7, "phone-vanity"));
                continue;
            }
            if run.len() <= MAX_WHOLE_RUN && self.classify_numeric(run, s, out) {
                continue;
            }
            // Not one thing as a whole: try its space-separated pieces, longest first.
            let tokens: Vec<(usize, usize)> = token_spans(run);
            if tokens.len() < 2 {
                continue;
            }
            let mut i = 0;
            while i < tokens.len() {
                let mut matched = None;
                for j in (i..tokens.len().min(i + MAX_RUN_TOKENS)).rev() {
                    let (Some(&(a, _)), Some(&(_, b))) = (tokens.get(i), tokens.get(j)) else {
                        break;
                    };
                    let Some(piece) = run.get(a..b) else { break };
                    if self.classify_numeric(piece, s + a, out) {
                        matched = Some(j);
                        break;
                    }
                }
                match matched {
                    Some(j) => i = j + 1,
                    None => i += 1,
                }
            }
        }
    }

    /// What a run of digits and separators is, if anything: its candidates go to `out` (one
    /// per reading that fits: a 3-3-3 number can be a SIN and a TFN, and context decides).
    /// Returns whether there was one.
    fn classify_numeric(&self, run: &str, at: usize, out: &mut Vec<Candidate>) -> bool {
        let run = run.trim_matches(|c: char| matches!(c, ' ' | '.' | '-' | '/'));
        let run = if run.starts_with('(') && !run.contains(')') {
            run.get(1..).unwrap_or_default()
        } else {
            run
        };
        let digits = run_digits(run);
        let national =
            matches!(digits.len(), 9..=12 | 15) && national::numeric_ids(run, &digits, at, out);
        match self.classify_common(run, &digits, at) {
            Some(c) => {
                // Nine bare digits valid as an SSN and as a national phone number: both
                // readings, and the context word decides.
                let also_phone = c.rule == "us-ssn-digits" && open_plan_valid(run);
                out.push(c);
                if also_phone {
                    out.push(cand(Entity::Phone, at, at + run.len(), 0.3, "phone-digits"));
                }
                true
            }
            None => national,
        }
    }

    /// The readings of a run that are not national identifiers: IPv4, dates, SSN, card,
    /// phone; at most one.
    fn classify_common(&self, run: &str, digits: &[u8], at: usize) -> Option<Candidate> {
        let n = digits.len();
        let mk = |e: Entity, base: f32, rule: &'static str| {
            Some(cand(e, at, at + run.len(), base, rule))
        };
        if run.bytes().all(|b| b.is_ascii_digit() || b == b'.') && checks::ipv4_valid(run) {
            return mk(Entity::IpAddress, 0.75, "ipv4");
        }
        if (6..=8).contains(&n) && checks::numeric_date_year(run).is_some() {
            return mk(Entity::DateOfBirth, 0.2, "date-of-birth-context");
        }
        if n == 9 {
            let (rule, base) = if self.p.ssn_dashed.is_match(run) {
                ("us-ssn-dashed", 0.85)
            } else if self.p.ssn_spaced.is_match(run) {
                ("us-ssn-spaced", 0.6)
            } else if run.len() == 9 {
                ("us-ssn-digits", 0.25)
            } else {
                ("", 0.0)
            };
            // Nine bare digits that are no SSN may still be a national phone number
            // (`612345678` in Spain): the phone readings below decide.
            let bare = rule == "us-ssn-digits";
            if !rule.is_empty() && (!bare || checks::ssn_valid(digits)) {
                return checks::ssn_valid(digits)
                    .then(|| cand(Entity::UsSsn, at, at + run.len(), base, rule));
            }
        }
        if (12..=19).contains(&n) && card_grouping(run) && checks::card_network(digits).is_some() {
            if checks::luhn(digits) {
                let base = if run.len() == n { 0.8 } else { 0.85 };
                return mk(Entity::CreditCard, base, "credit-card-luhn");
            }
            // A card-shaped number failing Luhn is a look-alike, never a phone.
            if n >= 15 {
                return None;
            }
        }
        let (core, _ext) = split_extension(run);
        let core_digits = core.bytes().filter(u8::is_ascii_digit).count();
        if (7..=15).contains(&core_digits) {
            // North American numbers are checked by the plan's shape (area code and exchange
            // start with 2-9, no N11 area code), which is cheap; libphonenumber's number plans
            // (which also want the area code assigned) serve the rest of the world.
            let national: Vec<u8> = core.bytes().filter(u8::is_ascii_digit).collect();
            if self.p.phone_international.is_match(core) {
                // `+`, then the digits alone: the parser takes some groupings (`+31915-…`)
                // for a bad country code; a trunk `(0)` after the country code is dropped.
                let body = core
                    .strip_prefix("00")
                    .or_else(|| core.strip_prefix('+'))
                    .unwrap_or(core);
                let normalised: String = std::iter::once('+')
                    .chain(
                        body.replacen("(0)", "", 1)
                            .chars()
                            .filter(char::is_ascii_digit),
                    )
                    .collect();
                let nanp = national
                    .strip_prefix(b"001")
                    .or_else(|| national.strip_prefix(b"1"));
                if normalised.starts_with("+1") {
                    if nanp.is_some_and(checks::nanp_shaped) {
                        return mk(Entity::Phone, 0.85, "phone-international");
                    }
                    // Written as a North American number, but an area code or exchange the
                    // plan never gives out: a phone number only with a phone word.
                    if nanp.is_some_and(|d| d.len() == 10) {
                        return mk(Entity::Phone, 0.3, "phone-international");
                    }
                } else {
                    match phone_check(&normalised, None) {
                        PhoneCheck::Valid => {
                            return mk(Entity::Phone, 0.85, "phone-international");
                        }
                        // A known country code and a plausible length, but no number the
                        // plan assigns: a phone number with a phone word before it.
                        PhoneCheck::Plausible => {
                            return mk(Entity::Phone, 0.45, "phone-international");
                        }
                        PhoneCheck::No => {}
                    }
                }
            } else if core
                .strip_prefix("011")
                .map(|r| r.trim_start_matches([' ', '-', '.']))
                .filter(|r| !r.starts_with('1'))
                .filter(|r| {
                    let normalised = format!("+{r}");
                    self.p.phone_international.is_match(&normalised)
                        && phone_valid(&normalised, None)
                })
                .is_some()
            {
                // Dialled from North America: 011 is its international prefix. (Otherwise
                // `011…` is a British area code: `0115 496 0670`, read below.)
                return mk(Entity::Phone, 0.8, "phone-international");
            } else if self.p.phone_us.is_match(core) {
                let ten = national
                    .strip_prefix(b"1")
                    .filter(|d| d.len() == 10)
                    .unwrap_or(&national);
                if checks::nanp_shaped(ten) {
                    return mk(Entity::Phone, 0.75, "phone-national");
                }
                // The layout of a phone number, with numbers the plan does not give out
                // (`(136) 618-4441`): only with a phone word.
                return mk(Entity::Phone, 0.3, "phone-national");
            } else if (10..=12).contains(&national.len()) && self.p.phone_other.is_match(core) {
                if trunk_zero_valid(core) {
                    return mk(Entity::Phone, 0.65, "phone-national");
                }
                // A trunk-0 national layout that no plan assigns (`0115 496 0670`, a range
                // kept for fiction): only with a phone word.
                return mk(Entity::Phone, 0.3, "phone-national");
            } else if (9..=12).contains(&core.len())
                && core.starts_with('0')
                && !core.starts_with("00")
                && core.bytes().all(|b| b.is_ascii_digit())
                && trunk_zero_valid(core)
            {
                // A national number written as bare digits: only with context.
                return mk(Entity::Phone, 0.3, "phone-digits");
            } else if core.len() == 10
                && core.bytes().all(|b| b.is_ascii_digit())
                && checks::nanp_shaped(core.as_bytes())
            {
                // Ten bare digits are a phone number only with context (a column name, or
                // "phone", "call", … before them).
                return mk(Entity::Phone, 0.3, "phone-digits");
            } else if (10..=15).contains(&national.len()) && country_code_layout(core) {
                // An international number written without its `+` (`44 20 7946 0958`): only
                // with context, as a phone word or a phone column gives.
                if phone_valid(&format!("+{core}"), None) {
                    return mk(Entity::Phone, 0.3, "phone-international");
                }
            }
            // Ten to twelve bare digits that are nothing else (an Italian mobile
            // `3516878360` has no trunk 0): a phone number only with a phone word.
            if (10..=12).contains(&core.len())
                && !core.starts_with("00")
                && core.bytes().all(|b| b.is_ascii_digit())
            {
                return mk(Entity::Phone, 0.3, "phone-digits");
            }
            // Eight to twelve digits in two to four groups (`6834 6008`, `63-2301-1642`,
            // `(07).1965.9322`), no pair of years: a phone number only with a phone word.
            if (8..=12).contains(&core_digits) && phone_grouping(core) {
                return mk(Entity::Phone, 0.3, "phone-national");
            }
            // A number of a plan without a trunk prefix, as its country groups it (`612 34 56
            // 78`, `91 234 56 78`) or bare: only with a phone word.
            if (8..=10).contains(&core_digits) && small_groups(core) && open_plan_valid(core) {
                let rule = if core.len() == core_digits {
                    "phone-digits"
                } else {
                    "phone-national"
                };
                return mk(Entity::Phone, 0.3, rule);
            }
        }
        None
    }

    /// A vanity number after a run of digits that ends in a toll-free area code
    /// (`1-800-FLOWERS`, `(888) GOT-JUNK`): the area code's run is `run` (from `s` to `e`),
    /// the letters and digits after it spell seven to ten keypad digits, three or more of
    /// them letters. Returns the end of the number.
    fn vanity_after(text: &str, run: &str, e: usize) -> Option<usize> {
        let digits = run_digits(run);
        let area = match digits.as_slice() {
            [b'1', rest @ ..] | rest => rest,
        };
        if !matches!(
            area,
            b"800" | b"833" | b"844" | b"855" | b"866" | b"877" | b"888"
        ) {
            return None;
        }
        let bytes = text.as_bytes();
        let mut i = e;
        if bytes.get(i) == Some(&b')') {
            i += 1;
        }
        if matches!(bytes.get(i), Some(b'-' | b' ' | b'.')) {
            i += 1;
        }
        let (mut chars, mut letters, mut end) = (0, 0, i);
        while let Some(&b) = bytes.get(i) {
            if b.is_ascii_uppercase() {
                letters += 1;
            } else if !b.is_ascii_digit() {
                if matches!(b, b'-' | b'.')
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
                {
                    i += 1;
                    continue;
                }
                break;
            }
            chars += 1;
            i += 1;
            end = i;
            if chars > 10 {
                return None;
            }
        }
        let bounded = !bytes.get(end).is_some_and(|&b| is_word(b));
        ((7..=10).contains(&chars) && letters >= 3 && bounded).then_some(end)
    }

    /// IPv6 candidates: runs of hex digits, colons and dots around each colon (a memchr pass
    /// instead of a pattern over the whole text), checked by the standard library's parser.
    /// Dates written with a month name (`March 3, 1985`, `3rd March 1985`): the month names
    /// are found by literal search, then the day and year around them are checked.
    fn text_dates(&self, text: &str, out: &mut Vec<Candidate>) {
        let bytes = text.as_bytes();
        for m in self.p.month.find_iter(text) {
            let tail = text
                .get(m.end()..window_end(text, m.end(), 16))
                .unwrap_or_default();
            if let Some(d) = self.p.day_year_after.find(tail) {
                out.push(cand(
                    Entity::DateOfBirth,
                    m.start(),
                    m.end() + d.end(),
                    0.2,
                    "date-of-birth-context",
                ));
                continue;
            }
            let Some(y) = self.p.year_after.find(tail) else {
                continue;
            };
            // `DD[st|nd|rd|th] ` before the month.
            let mut k = m.start();
            if k == 0 || bytes_at(bytes, k - 1) != Some(b' ') {
                continue;
            }
            k -= 1;
            if k >= 2 && matches!(bytes.get(k - 2..k), Some(b"st" | b"nd" | b"rd" | b"th")) {
                k -= 2;
            }
            let digits_end = k;
            while k > 0
                && digits_end - k < 2
                && bytes_at(bytes, k - 1).is_some_and(|b| b.is_ascii_digit())
            {
                k -= 1;
            }
            if k < digits_end && boundary_before(bytes, k) {
                out.push(cand(
                    Entity::DateOfBirth,
                    k,
                    m.end() + y.end(),
                    0.2,
                    "date-of-birth-context",
                ));
            }
        }
    }

    fn ipv6_candidates(text: &str, out: &mut Vec<Candidate>) {
        let bytes = text.as_bytes();
        let part = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
        let mut done = 0;
        for colon in memchr::memchr_iter(b':', bytes) {
            if colon < done {
                continue;
            }
            let mut start = colon;
            while start > 0 && colon - start < 40 && bytes_at(bytes, start - 1).is_some_and(part) {
                start -= 1;
            }
            let mut end = colon + 1;
            while end - start < 46 && bytes_at(bytes, end).is_some_and(part) {
                end += 1;
            }
            done = end;
            // Trailing dots end a sentence, not an address.
            while end > colon + 1 && bytes_at(bytes, end - 1) == Some(b'.') {
                end -= 1;
            }
            if !boundary_before(bytes, start) || bytes_at(bytes, end).is_some_and(is_word) {
                continue;
            }
            let Some(s) = text.get(start..end) else {
                continue;
            };
            let groups = s.split(':').filter(|g| !g.is_empty()).count();
            if (groups < 3 && !s.contains("::")) || s.len() < 6 {
                continue;
            }
            if s.parse::<std::net::Ipv6Addr>().is_ok() {
                out.push(cand(Entity::IpAddress, start, end, 0.75, "ipv6"));
            }
        }
    }

    fn secret_candidates(&self, text: &str, out: &mut Vec<Candidate>) {
        let bytes = text.as_bytes();
        // Keys and tokens are found by their own structure, wherever they start: a word
        // glued before or after one (`key_AKIA…`, `x-----BEGIN …`, `AKIA…abc`) hides nothing.
        for m in self.p.prefixed.find_iter(text) {
            let s = m.as_str();
            let (mut start, mut end) = (m.start(), m.end());
            let glued = !boundary_before(bytes, start);
            let (entity, rule, base) = if s.starts_with("-----BEGIN") {
                // Take the whole block when its END line is near.
                let tail = text.get(end..).unwrap_or_default();
                let limit = tail.len().min(MAX_KEY_BLOCK);
                if let Some(i) = tail.get(..limit).and_then(|t| t.find("-----END ")) {
                    let close = tail
                        .get(i + 9..)
                        .and_then(|t| t.find("-----"))
                        .map(|j| i + 9 + j + 5);
                    end += close.unwrap_or(i);
                }
                (Entity::PrivateKey, "private-key-block", 0.95)
            } else if s.len() == 20 && s.starts_with('A') {
                // A template's key id (`AKIAXXXXXXXXXXXXXXXX`). AWS's own documentation key
                // (`AKIAIOSFODNN7EXAMPLE`) is still reported: it is what a leak looks like in
                // every example, and a rail that let it through would be tested by nothing.
                if s.contains("XXXX") {
                    continue;
                }
                (Entity::AwsAccessKey, "aws-access-key", 0.9)
            } else if s.starts_with("eyJ") {
                if !checks::jwt_header_valid(s) {
                    continue;
                }
                (Entity::Jwt, "jwt", 0.9)
            } else {
                let Some((entity, rule, base, len)) = secrets::classify(s, glued) else {
                    continue;
                };
                end = start + len;
                // A layout of fixed length with more of the token after it is another token.
                if bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
                    continue;
                }
                // An Azure key is the value after its name.
                if rule == "azure-key" || rule == "azure-sas-signature" {
                    start += s.find('=').map_or(0, |i| i + 1);
                }
                (entity, rule, base)
            };
            out.push(cand(entity, start, end, base, rule));
        }
        Self::key_bodies(text, out);
        aws_secret_keys(text, out);
        secrets::url_passwords(&self.p.url_password, text, out);
        secrets::entra_secrets(text, out);
        if !has_assignment_word(bytes) {
            return;
        }
        // Find first (the lazy DFA), then capture inside the match only: capture groups over
        // a whole line cost a backtracker pass over all of it.
        for m in self.p.assignment.find_iter(text) {
            let Some(caps) = self.p.assignment.captures(m.as_str()) else {
                continue;
            };
            let (Some(key), Some(value)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            let value_start = m.start() + value.start();
            let v = value.as_str().as_bytes();
            if v.len() > MAX_TOKEN_BYTES {
                continue;
            }
            // An environment name ending `_KEY`, `_PASS`, `_SALT` or `_PAT` (`MASTER_KEY=`,
            // `DB_PASS=`): only a random value is a secret, and public keys are none.
            let k = key.as_str().to_ascii_lowercase();
            let passwordish =
                k.starts_with("pass") || k.get(1..) == Some("_pass") || k.get(1..) == Some("-pass");
            let suffix_word = matches!(k.as_bytes().get(1), Some(b'_' | b'-'));
            if suffix_word {
                let name_start = bytes.get(..m.start() + key.start()).map_or(0, |h| {
                    h.iter()
                        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')))
                        .map_or(0, |i| i + 1)
                });
                let name = text
                    .get(name_start..m.start() + key.end())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if name.contains("public") || name.contains("publishable") || name.contains("pub_")
                {
                    continue;
                }
                if !passwordish && (v.len() < 16 || checks::entropy(v) < 3.5 || char_classes(v) < 2)
                {
                    continue;
                }
            }
            if v.iter().all(u8::is_ascii_alphabetic) && v.len() < 12 && !passwordish {
                continue;
            }
            if is_placeholder(value.as_str()) || secrets::test_or_public_key(value.as_str()) {
                continue;
            }
            let classes = char_classes(v);
            let entropy = checks::entropy(v);
            let (rule, base) = if v.len() >= 16 && entropy >= 3.5 && classes >= 2 {
                ("secret-high-entropy", 0.85)
            } else if passwordish || key.as_str().eq_ignore_ascii_case("pwd") {
                if classes < 2 && v.len() < 10 {
                    continue;
                }
                ("secret-assignment", 0.7)
            } else if v.len() >= 10 && entropy >= 3.0 && classes >= 2 {
                ("secret-assignment", 0.65)
            } else {
                continue;
            };
            out.push(Candidate {
                entity: Entity::Secret,
                start: value_start,
                end: value_start + value.len(),
                base,
                rule,
                contextual: true,
            });
        }
    }

    /// Private-key bodies without their `-----BEGIN` line: base64 of a DER sequence whose
    /// first element is the version integer 0 or 1 (PKCS #1 and #8 keys, SEC 1 EC keys), which
    /// public keys (a sequence first) and certificates never start with.
    fn key_bodies(text: &str, out: &mut Vec<Candidate>) {
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(i) = memchr::memchr(b'M', bytes.get(from..).unwrap_or_default()) {
            let at = from + i;
            from = at + 1;
            let Some(head) = bytes.get(at..at + 12) else {
                break;
            };
            if !is_der_private_key(head) {
                continue;
            }
            let (end, chars) = base64_block(bytes, at);
            // The smallest key (Ed25519, PKCS #8) is 64 base64 characters.
            if chars >= 64 {
                out.push(cand(Entity::PrivateKey, at, end, 0.9, "private-key-body"));
                from = end.max(from);
            }
        }
    }

    fn person_candidates(&self, text: &str, out: &mut Vec<Candidate>) {
        // Capitals and CJK both sit outside ASCII lower case; text without either has no slot.
        if !text.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
            return;
        }
        for n in self.person.names(text) {
            // At most 0.7 on its own, so that a street or place named after someone stays
            // part of the longer address; a context word adds the usual boost.
            let base = 0.45 + 0.25 * n.probability;
            out.push(cand(Entity::Person, n.start, n.end, base, "person-model"));
        }
        if !text.bytes().any(|b| b.is_ascii_uppercase()) {
            return;
        }
        for whole in self.p.person_context.find_iter(text) {
            let Some(m) = self
                .p
                .person_context
                .captures(whole.as_str())
                .and_then(|c| c.get(1))
            else {
                continue;
            };
            {
                let last = m.as_str().rsplit(' ').next().unwrap_or_default();
                if self.street_suffixes.contains(last) || COMMON_CAPITALISED.contains(&m.as_str()) {
                    continue;
                }
                out.push(Candidate {
                    entity: Entity::Person,
                    start: whole.start() + m.start(),
                    end: whole.start() + m.end(),
                    base: 0.75,
                    rule: "person-context",
                    contextual: true,
                });
            }
        }
        // "First Last" where First is a frequent given name: capitalised words are found by a
        // byte loop and looked up, and only then is the surname pattern tried after them.
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !bytes_at(bytes, i).is_some_and(|b| b.is_ascii_uppercase())
                || !boundary_before(bytes, i)
            {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while bytes_at(bytes, j).is_some_and(|b| b.is_ascii_lowercase()) {
                j += 1;
            }
            let first = text.get(i..j).unwrap_or_default();
            if !(2..=16).contains(&first.len()) || !self.given_names.contains(first) {
                i = j;
                continue;
            }
            let tail = text.get(j..window_end(text, j, 48)).unwrap_or_default();
            let Some(m) = self.p.surname_after.find(tail) else {
                i = j;
                continue;
            };
            let last = m.as_str().rsplit(' ').next().unwrap_or_default();
            if !self.street_suffixes.contains(last) && !COMMON_CAPITALISED.contains(&last) {
                out.push(cand(
                    Entity::Person,
                    i,
                    j + m.end(),
                    0.6,
                    "person-given-name",
                ));
            }
            i = j + m.end();
        }
    }
}

/// Keeps, among overlapping findings, the most confident, then the longest, then the first,
/// then by entity and rule name (greedily, so a kept finding never overlaps another).
/// Findings are sorted by start and cut into clusters of transitively overlapping ones; only
/// a cluster of two or more needs the greedy choice, which gives the same result as running
/// it over all findings at once.
fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_unstable_by_key(|f| (f.start, f.end));
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    let mut rest = found.as_slice();
    while let Some(first) = rest.first() {
        let mut end = first.end;
        let mut n = 1;
        while let Some(f) = rest.get(n).filter(|f| f.start < end) {
            end = end.max(f.end);
            n += 1;
        }
        let (cluster, tail) = rest.split_at(n);
        rest = tail;
        if let [only] = cluster {
            kept.push(only.clone());
            continue;
        }
        let mut order: Vec<&Finding> = cluster.iter().collect();
        order.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then((b.end - b.start).cmp(&(a.end - a.start)))
                .then(a.start.cmp(&b.start))
                // Equal readings of one span by two rules: the same one wins whatever order
                // the candidates came in (a block and its lines scanned alone agree).
                .then(a.entity.cmp(&b.entity))
                .then(a.rule.cmp(b.rule))
        });
        let from = kept.len();
        for f in order {
            let clash = kept
                .get(from..)
                .unwrap_or_default()
                .iter()
                .any(|k| f.start < k.end && k.start < f.end);
            if !clash {
                kept.push(f.clone());
            }
        }
        if let Some(mine) = kept.get_mut(from..) {
            mine.sort_by_key(|f| f.start);
        }
    }
    kept
}

/// Capitalised words that follow a name-like word without being a surname.
const COMMON_CAPITALISED: &[&str] = &[
    "The",
    "This",
    "That",
    "These",
    "Those",
    "And",
    "But",
    "Or",
    "If",
    "When",
    "Then",
    "There",
    "Here",
    "What",
    "Who",
    "How",
    "Why",
    "Where",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Street",
    "Road",
    "Avenue",
    "Inc",
    "Ltd",
    "Company",
    "University",
    "Hospital",
    "Bank",
    "Team",
    "Support",
    "Please",
    "Thanks",
    "Thank",
    "Hello",
    "Hi",
    "Dear",
    "Yes",
    "No",
];

fn cand(entity: Entity, start: usize, end: usize, base: f32, rule: &'static str) -> Candidate {
    Candidate {
        entity,
        start,
        end,
        base,
        rule,
        contextual: false,
    }
}

const fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn bytes_at(bytes: &[u8], i: usize) -> Option<u8> {
    bytes.get(i).copied()
}

/// Whether position `i` starts a token: the byte before it is not a letter, digit or `_`.
fn boundary_before(bytes: &[u8], i: usize) -> bool {
    i == 0 || bytes.get(i - 1).is_none_or(|&b| !is_word(b))
}

/// Runs of digits and phone/date punctuation, as `[+(]?[0-9][0-9 ()./-]+[0-9]` with an optional
/// `x123` / `ext. 123` extension would find them (leftmost, longest), by a byte loop: one pass
/// with no per-match setup, where a regex paid a reverse search per match.
fn numeric_runs(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let class = |b: u8| b.is_ascii_digit() || matches!(b, b' ' | b'(' | b')' | b'.' | b'/' | b'-');
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let start = i;
            let first = match bytes.get(i) {
                Some(b'+' | b'(') if digit(i + 1) => i + 1,
                Some(b) if b.is_ascii_digit() => i,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let mut j = first + 1;
            let mut last_digit = None;
            while let Some(&b) = bytes.get(j) {
                if !class(b) {
                    break;
                }
                if b.is_ascii_digit() {
                    last_digit = Some(j);
                }
                j += 1;
            }
            let Some(k) = last_digit.filter(|&k| k >= first + 2) else {
                i += 1;
                continue;
            };
            let mut end = k + 1;
            // An extension: `x123`, ` x123`, `ext123`, ` ext. 123`.
            for prefix in [
                &b"x"[..],
                b" extension ",
                b" ext: ",
                b" x",
                b"ext. ",
                b"ext.",
                b"ext ",
                b"ext",
                b" ext. ",
                b" ext.",
                b" ext ",
                b" ext",
            ] {
                if bytes.get(end..end + prefix.len()) == Some(prefix) {
                    let d = end + prefix.len();
                    let n = bytes.get(d..).map_or(0, |t| {
                        t.iter().take(5).take_while(|b| b.is_ascii_digit()).count()
                    });
                    if n > 0 {
                        end = d + n;
                        break;
                    }
                }
            }
            i = end;
            return Some((start, end));
        }
        None
    })
}

/// The ASCII digits of a run.
fn run_digits(run: &str) -> Vec<u8> {
    run.bytes().filter(u8::is_ascii_digit).collect()
}

/// Byte spans of the space-separated pieces of a run.
fn token_spans(run: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, b) in run.bytes().enumerate() {
        match (b == b' ', start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, run.len()));
    }
    spans
}

/// Whether a card-length run is grouped as cards are printed: no separators, or one kind of
/// separator between groups of four (the last shorter), 4-6-5 or 4-6-4.
fn card_grouping(run: &str) -> bool {
    if run.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let sep = if run.contains(' ') { ' ' } else { '-' };
    if run.bytes().any(|b| !b.is_ascii_digit() && b != sep as u8) {
        return false;
    }
    let groups: Vec<usize> = run.split(sep).map(str::len).collect();
    match groups.as_slice() {
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => {
            init.len() >= 2 && init.iter().all(|&g| g == 4) && (1..=4).contains(last)
        }
        [] => false,
    }
}

/// Whether a run is laid out as a country code and a national number: three or more groups,
/// the first of one to three digits.
fn country_code_layout(core: &str) -> bool {
    let mut groups = core.split([' ', '-', '.']);
    let first = groups.next().unwrap_or_default();
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && !first.starts_with('0')
        && groups.count() >= 2
}

/// Whether `core` is two to four groups of digits (the first may be in brackets) joined by
/// one space, dash or dot each, with the same joiner throughout, every group after the first
/// of three or four digits, and not two years (`2024-2025`).
fn phone_grouping(core: &str) -> bool {
    let body = core
        .replacen(").", " ", 1)
        .replacen(") ", " ", 1)
        .replacen(')', " ", 1);
    let body = body.strip_prefix('(').unwrap_or(&body);
    let Some(sep) = body.bytes().find(|b| !b.is_ascii_digit()) else {
        return false;
    };
    if !matches!(sep, b' ' | b'-' | b'.') {
        return false;
    }
    let groups: Vec<&str> = body.split(char::from(sep)).collect();
    (2..=4).contains(&groups.len()) && digit_groups(&groups, 3)
}

/// A phone candidate without its `x123` / `ext. 123` extension.
fn split_extension(run: &str) -> (&str, &str) {
    match run.find(['x', 'e']) {
        Some(i) => (
            run.get(..i).unwrap_or(run).trim_end(),
            run.get(i..).unwrap_or_default(),
        ),
        None => (run, ""),
    }
}

/// The regions whose national numbers are written with a trunk 0, most populous first: a
/// national layout says nothing of its country, so each is tried.
const TRUNK_ZERO_REGIONS: &[phonenumber::country::Id] = {
    use phonenumber::country::Id;
    &[
        Id::IN,
        Id::JP,
        Id::DE,
        Id::GB,
        Id::FR,
        Id::IT,
        Id::ES,
        Id::AU,
        Id::NL,
        Id::BE,
        Id::CH,
        Id::AT,
        Id::SE,
        Id::IE,
        Id::NZ,
        Id::ZA,
        Id::KR,
    ]
};

/// Regions whose national numbers are written without a trunk prefix, as subscribers dial
/// them (`612 34 56 78` in Spain, `601 234 567` in Poland).
const OPEN_PLAN_REGIONS: &[phonenumber::country::Id] = {
    use phonenumber::country::Id;
    &[
        Id::ES,
        Id::PT,
        Id::PL,
        Id::IT,
        Id::DK,
        Id::NO,
        Id::CZ,
        Id::GR,
    ]
};

/// Whether `core` (digits and separators, no trunk 0) is a valid number of one of the
/// [`OPEN_PLAN_REGIONS`]: the plan's lengths and general pattern first, then its parser.
fn open_plan_valid(core: &str) -> bool {
    if core.starts_with('0') {
        return false;
    }
    let digits: String = core.chars().filter(char::is_ascii_digit).collect();
    OPEN_PLAN_REGIONS
        .iter()
        .any(|&id| phone::fits_region(id, &digits) && phone_valid(core, Some(id)))
}

/// Digits in groups of two to four (the first of one to four) split by one kind of
/// separator, or bare digits.
fn small_groups(core: &str) -> bool {
    let Some(sep) = core.bytes().find(|b| !b.is_ascii_digit()) else {
        return true;
    };
    let groups: Vec<&str> = core.split(char::from(sep)).collect();
    matches!(sep, b' ' | b'-' | b'.') && digit_groups(&groups, 2)
}

/// Groups of digits: the first of one to four, the others of `min` to four, and not a pair
/// of years.
fn digit_groups(groups: &[&str], min: usize) -> bool {
    !two_years(groups)
        && groups.iter().enumerate().all(|(k, g)| {
            let lengths = if k == 0 { 1..=4 } else { min..=4 };
            g.bytes().all(|b| b.is_ascii_digit()) && lengths.contains(&g.len())
        })
}

/// A pair of years (`2024-2025`, `1998 2004`), not a number.
fn two_years(groups: &[&str]) -> bool {
    groups.len() == 2
        && groups
            .iter()
            .all(|g| g.len() == 4 && (g.starts_with("19") || g.starts_with("20")))
}

/// Whether `core`, a national number written with a trunk 0, is valid in one of the
/// [`TRUNK_ZERO_REGIONS`]. Parsing costs about a microsecond per region, so a region is tried
/// only if its plan's lengths and general pattern (which libphonenumber checks first) fit the
/// number without its trunk 0, a check of tens of nanoseconds.
fn trunk_zero_valid(core: &str) -> bool {
    static TRUNK: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    let trunk = TRUNK.get_or_init(|| {
        TRUNK_ZERO_REGIONS
            .iter()
            .map(|id| {
                phonenumber::metadata::DATABASE
                    .by_id(id.as_ref())
                    .is_some_and(|m| m.national_prefix() == Some("0"))
            })
            .collect()
    });
    let digits: String = core.chars().filter(char::is_ascii_digit).collect();
    TRUNK_ZERO_REGIONS.iter().zip(trunk).any(|(&id, &trunk)| {
        let national = if trunk {
            digits.strip_prefix('0').unwrap_or(&digits)
        } else {
            &digits
        };
        phone::fits_region(id, national) && phone_valid(core, Some(id))
    })
}

fn phone_valid(s: &str, region: Option<phonenumber::country::Id>) -> bool {
    phone_check(s, region) == PhoneCheck::Valid
}

/// What libphonenumber makes of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhoneCheck {
    /// A number the plan of its country assigns.
    Valid,
    /// A known country code and a national number of 7 to 12 digits, which the plan does not
    /// assign (or the metadata does not know yet).
    Plausible,
    /// Not a phone number.
    No,
}

fn phone_check(s: &str, region: Option<phonenumber::country::Id>) -> PhoneCheck {
    let plausible = |national: u64| (1_000_000..1_000_000_000_000).contains(&national);
    match phone::parse(region, s) {
        phone::Parsed::Number { code, national } => {
            if phone::valid(code, &national) {
                PhoneCheck::Valid
            } else if national
                .trim_start_matches('0')
                .parse()
                .is_ok_and(plausible)
            {
                PhoneCheck::Plausible
            } else {
                PhoneCheck::No
            }
        }
        phone::Parsed::NoNumber => PhoneCheck::No,
        phone::Parsed::Unsupported => match phonenumber::parse(region, s) {
            Ok(n) if phone::is_valid(&n) => PhoneCheck::Valid,
            Ok(n) if plausible(n.national().value()) => PhoneCheck::Plausible,
            _ => PhoneCheck::No,
        },
    }
}

/// The context window before `start` (char-boundary safe), cut at the last sentence end so
/// that one sentence's words do not colour the next. Words are compared without regard to
/// case by [`context_mask`], so nothing is copied.
fn context_window(text: &str, start: usize) -> &str {
    let window = text
        .get(window_start(text, start, CONTEXT_WINDOW)..start)
        .unwrap_or_default();
    let bytes = window.as_bytes();
    let mut cut = 0;
    for i in (0..bytes.len()).rev() {
        match (bytes.get(i), bytes.get(i + 1)) {
            (Some(b'\n'), _) => cut = i + 1,
            // A full stop after a short word is an abbreviation's (`tel.`, `tél.`, `No.`).
            (Some(b'.'), Some(b' ')) if abbreviation_before(window, i) => continue,
            (Some(b'.' | b'!' | b'?' | b';'), Some(b' ')) => cut = i + 2,
            _ => continue,
        }
        break;
    }
    window.get(cut..).unwrap_or(window)
}

/// A char boundary at most `len` bytes after `at`.
pub(crate) fn window_end(text: &str, at: usize, len: usize) -> usize {
    let mut e = (at + len).min(text.len());
    while e > at && !text.is_char_boundary(e) {
        e -= 1;
    }
    e
}

/// A char boundary at most `len` bytes before `at`.
pub(crate) fn window_start(text: &str, at: usize, len: usize) -> usize {
    let mut s = at.saturating_sub(len);
    while s < at && !text.is_char_boundary(s) {
        s += 1;
    }
    s
}

/// Whether the full stop at `dot` ends a word of one to four letters (`tel.`, `tél.`, `Nr.`)
/// that starts after a space, a line break or a bracket, or at the start of the window.
fn abbreviation_before(window: &str, dot: usize) -> bool {
    let Some(head) = window.get(..dot) else {
        return false;
    };
    let word: Vec<char> = head
        .chars()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .take(5)
        .collect();
    let start = head.len() - word.iter().map(|c| c.len_utf8()).sum::<usize>();
    (1..=4).contains(&word.len())
        && (start == 0
            || head
                .get(..start)
                .is_some_and(|h| h.ends_with([' ', '\t', '\n', '\r', '('])))
}

/// The last `n` words of a window (what says a number is an order number: `Order #…`,
/// `invoice …`, `version …`).
fn last_words_start(window: &str, n: usize) -> usize {
    let trimmed = window.trim_end();
    let bytes = trimmed.as_bytes();
    let mut seen = 0;
    let mut i = bytes.len();
    while i > 0 {
        // The start of the word that ends at `i`.
        while i > 0 && bytes.get(i - 1).is_some_and(|b| !b.is_ascii_whitespace()) {
            i -= 1;
        }
        seen += 1;
        if seen == n {
            break;
        }
        while i > 0 && bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace) {
            i -= 1;
        }
    }
    i
}

/// The context lists a word can be looked up in: bit `entity as u32` for an entity's own
/// words, and these two.
const IDENTIFIER_LIST: u64 = 1 << 62;
const NEGATIVE_LIST: u64 = 1 << 63;
const _: () = assert!(ENTITIES.len() < 62);

/// The context list of `entity`.
const fn context_list(entity: Entity) -> u64 {
    1 << (entity as u32)
}

/// Every context word, with the lists it is in.
struct ContextIndex {
    words: FxHashMap<String, u64>,
    /// For each lower-case ASCII first byte, bit `n` set when an entry of `n` bytes starts
    /// with it: most words of a text are no entry, and this says so without hashing them.
    ascii_lengths: [u64; 128],
    /// Entries in scripts written without spaces, found inside runs (`電話番号は`).
    inside: Vec<(&'static str, u64)>,
}

fn context_index() -> &'static ContextIndex {
    static INDEX: std::sync::OnceLock<ContextIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut words: FxHashMap<String, u64> = FxHashMap::default();
        let mut inside = Vec::new();
        let lists = ENTITIES
            .iter()
            .map(|&e| (e.context(), context_list(e)))
            .chain([
                (lexicon::IDENTIFIER_WORDS, IDENTIFIER_LIST),
                (lexicon::NEGATIVE_CONTEXT, NEGATIVE_LIST),
            ]);
        for (list, bit) in lists {
            for &w in list {
                *words.entry(w.to_lowercase()).or_default() |= bit;
                if w.chars().next().is_some_and(|c| c >= '\u{3000}') {
                    inside.push((w, bit));
                }
            }
        }
        let mut ascii_lengths = [0u64; 128];
        for w in words.keys().filter(|w| w.is_ascii() && w.len() < 64) {
            if let Some(slot) = w
                .bytes()
                .next()
                .and_then(|b| ascii_lengths.get_mut(usize::from(b)))
            {
                *slot |= 1 << w.len();
            }
        }
        ContextIndex {
            words,
            ascii_lengths,
            inside,
        }
    })
}

/// The context lists (bits as in [`context_list`]) of one word (as the text splits it: it
/// may keep inner `#`, `-` and `.`), in any case.
fn word_lists(index: &ContextIndex, word: &str) -> u64 {
    let lists = |w: &str| -> u64 {
        if w.is_empty() {
            return 0;
        }
        if w.is_ascii() {
            // Context words are short: a longer word is none, and a short one is lowered on
            // the stack.
            let first = w.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
            let lengths = index
                .ascii_lengths
                .get(usize::from(first))
                .copied()
                .unwrap_or(0);
            if w.len() >= 64 || lengths & (1 << w.len()) == 0 {
                return 0;
            }
            let mut buf = [0u8; 64];
            let Some(lower) = buf.get_mut(..w.len()) else {
                return 0;
            };
            lower.copy_from_slice(w.as_bytes());
            lower.make_ascii_lowercase();
            return std::str::from_utf8(lower)
                .ok()
                .and_then(|l| index.words.get(l))
                .copied()
                .unwrap_or(0);
        }
        let lower = w.to_lowercase();
        let whole = index.words.get(lower.as_str()).copied().unwrap_or(0);
        index
            .inside
            .iter()
            .filter(|(e, _)| lower.contains(e))
            .fold(whole, |m, (_, bit)| m | bit)
    };
    // Every entry is one word; a hyphenated word also counts by its parts (`Appelez-moi`).
    let w = word.trim_matches(|c: char| c == '.' || c == '-');
    let parts = if w.contains('-') {
        w.split('-').fold(0, |m, p| m | lists(p))
    } else {
        0
    };
    lists(w) | parts
}

/// Whether `c` belongs to a word for the context lists: words keep inner `#`, `-` and `.`
/// (`ss#`, `e-mail`, `d.o.b`).
fn context_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '#' || c == '-' || c == '.'
}

/// The context lists (bits as in [`context_list`]) with a word in `window`, in any case.
pub(crate) fn context_mask(window: &str) -> u64 {
    context_masks(window).0
}

/// [`context_mask`] of `window` and of its last two words (cut at ASCII whitespace), in one
/// pass: the words of the last two are the window's words that start where they start.
fn context_masks(window: &str) -> (u64, u64) {
    let index = context_index();
    let near_from = last_words_start(window, 2);
    let (mut all, mut near) = (0, 0);
    let mut start = None;
    for (i, c) in window
        .char_indices()
        .chain(std::iter::once((window.len(), ' ')))
    {
        match (context_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                start = None;
                let m = word_lists(index, window.get(s..i).unwrap_or_default());
                all |= m;
                if s >= near_from {
                    near |= m;
                }
            }
            _ => {}
        }
    }
    (all, near)
}

/// The end of the base64 block starting at `at`, and its number of base64 characters: lines
/// of one width, the last one shorter. A short line that does not look random (`thanks` on
/// the line after a key) is not part of it.
fn base64_block(bytes: &[u8], at: usize) -> (usize, usize) {
    let b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    let (mut pos, mut end, mut chars, mut width) = (at, at, 0usize, None);
    while pos - at < MAX_KEY_BLOCK {
        let start = pos;
        while bytes.get(pos).copied().is_some_and(b64) {
            pos += 1;
        }
        let line = bytes.get(start..pos).unwrap_or_default();
        let full = width.is_none_or(|w| line.len() == w);
        let random = char_classes(line) >= 2 || line.contains(&b'=');
        if line.is_empty() || (!full && !random) {
            break;
        }
        end = pos;
        chars += line.len();
        if !full || !matches!(bytes.get(pos), Some(b'\n' | b'\r')) {
            break;
        }
        width.get_or_insert(line.len());
        // Line breaks, and the indentation of a key pasted into YAML or a code block.
        while matches!(bytes.get(pos), Some(b'\n' | b'\r' | b' ' | b'\t')) {
            pos += 1;
        }
    }
    (end, chars)
}

/// Whether twelve base64 characters decode to the start of a DER private key: a sequence
/// (short or long length) whose first element is the integer 0 or 1.
fn is_der_private_key(head: &[u8]) -> bool {
    use base64::Engine as _;
    let Ok(der) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(head) else {
        return false;
    };
    let rest = match der.as_slice() {
        [0x30, 0x81, _, rest @ ..] => rest,
        [0x30, 0x82, _, _, rest @ ..] => rest,
        [0x30, 0x83, _, _, _, rest @ ..] => rest,
        [0x30, len, rest @ ..] if *len < 0x80 => rest,
        _ => return false,
    };
    matches!(rest, [0x02, 0x01, 0x00 | 0x01, ..])
}

/// AWS secret access keys written alone: exactly 40 characters of base64's alphabet without
/// padding, with upper and lower case and digits, at most two `/` or `+`, and the entropy of
/// random text. Next to an access key id they are certain; alone, likely.
fn aws_secret_keys(text: &str, out: &mut Vec<Candidate>) {
    const LEN: usize = 40;
    let bytes = text.as_bytes();
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'/' || b == b'+';
    let mut i = 0;
    while i < bytes.len() {
        if !bytes.get(i).copied().is_some_and(alphabet) {
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).copied().is_some_and(alphabet) {
            i += 1;
        }
        let run = bytes.get(start..i).unwrap_or_default();
        let glued = bytes
            .get(i)
            .is_some_and(|&b| b == b'=' || b == b'_' || b == b'-')
            || (start > 0
                && bytes
                    .get(start - 1)
                    .is_some_and(|&b| b == b'_' || b == b'-'));
        if run.len() != LEN || glued {
            continue;
        }
        let symbols = run.iter().filter(|&&b| b == b'/' || b == b'+').count();
        let random = run.iter().any(u8::is_ascii_uppercase)
            && run.iter().any(u8::is_ascii_lowercase)
            && run.iter().any(u8::is_ascii_digit)
            && symbols <= 2
            && checks::entropy(run) >= 4.3;
        let placeholder = text.get(start..i).is_some_and(is_placeholder);
        if !random || placeholder {
            continue;
        }
        let near = window_start(text, start, 120);
        let paired = text
            .get(near..window_end(text, i, 120))
            .is_some_and(|w| w.contains("AKIA") || w.contains("ASIA"));
        let base = if paired { 0.95 } else { 0.75 };
        out.push(cand(Entity::Secret, start, i, base, "aws-secret-key"));
    }
}

/// A URL's length without trailing punctuation that belongs to the sentence.
fn trim_url(url: &str) -> usize {
    url.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '\'', '"'])
        .len()
}

fn has_assignment_word(bytes: &[u8]) -> bool {
    const STARTS: &[[u8; 3]] = &[
        *b"key", *b"sec", *b"tok", *b"pas", *b"pwd", *b"aut", *b"cre",
    ];
    bytes.windows(3).any(|w| match w {
        [a, b, c] => {
            let lower = [
                a.to_ascii_lowercase(),
                b.to_ascii_lowercase(),
                c.to_ascii_lowercase(),
            ];
            STARTS.contains(&lower)
        }
        _ => false,
    })
}

fn char_classes(v: &[u8]) -> usize {
    [
        v.iter().any(u8::is_ascii_lowercase),
        v.iter().any(u8::is_ascii_uppercase),
        v.iter().any(u8::is_ascii_digit),
        v.iter().any(u8::is_ascii_punctuation),
    ]
    .iter()
    .filter(|&&x| x)
    .count()
}

fn is_placeholder(v: &str) -> bool {
    let l = v.to_ascii_lowercase();
    l.starts_with('<')
        || l.starts_with("${")
        || l.starts_with("{{")
        || l.contains("redacted")
        || l.contains("example")
        || l.contains("xxxx")
        || l.contains("****")
        || l == "none"
        || l == "null"
}

/// A value as reports may show it: letters and digits masked but the last two, punctuation
/// kept, at most 24 characters.
#[must_use]
pub fn mask_sample(value: &str) -> String {
    let alnum = value.chars().filter(|c| c.is_alphanumeric()).count();
    let keep_from = alnum
        .saturating_sub(2)
        .max(alnum / 2 + usize::from(alnum > 0));
    let mut seen = 0;
    let masked: String = value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen > keep_from { c } else { '*' }
            } else {
                c
            }
        })
        .collect();
    let count = masked.chars().count();
    if count > 24 {
        let tail: String = masked.chars().skip(count - 23).collect();
        format!("…{tail}")
    } else {
        masked
    }
}

#[cfg(test)]
mod tests;
