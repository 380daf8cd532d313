//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rampart_data::safe_csv::SafeCsv;
use rampart_ml::hyper::{Hyper, Kind};

/// A secure machine-learning pipeline: verified data in, signed models out, every step audited.
#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The rampart home (default: $RAMPART_HOME, else ./.rampart).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Output format for results.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Format of diagnostic logs on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Result output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for people.
    Human,
    /// JSON for programs.
    Json,
    /// SARIF 2.1.0 (where a command reports findings: scan).
    Sarif,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text for people.
    Human,
    /// JSON Lines.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a rampart home: policy, signing key, age identity, audit log.
    Init(InitArgs),
    /// Show or export the home's public keys.
    Keys(KeysArgs),
    /// Manage the public keys rampart trusts (stored in rampart.toml).
    Trust(TrustArgs),
    /// Verify or read the tamper-evident audit log.
    Audit(AuditArgs),
    /// Sign a model or dataset (file or directory) in the OpenSSF model-signing format.
    Sign(SignArgs),
    /// Verify a model or dataset against its OpenSSF model-signing signature.
    Verify(VerifyArgs),
    /// Verify signed attestations (in-toto / SLSA provenance).
    Attest(AttestArgs),
    /// Scan model files for code-execution risks, without running anything.
    Scan(ScanArgs),
    /// Convert a PyTorch checkpoint to safetensors without running anything from it.
    Convert(ConvertArgs),
    /// Encrypt a file at rest in the age format (default recipient: the home's identity).
    Encrypt(EncryptArgs),
    /// Decrypt an age file (with the home's identity, -i files, or a passphrase).
    Decrypt(DecryptArgs),
    /// Re-encrypt an age file to new recipients; the old file is replaced only after the new
    /// one is written and proven to decrypt to the same bytes.
    Rekey(RekeyArgs),
    /// Datasets: authorised locations.
    Data(DataArgs),
    /// Built-in machine learning tools.
    Ml(MlArgs),
    /// Train a model in the sandbox (no network, no secrets, reads only the dataset, writes
    /// only its output), then sign it and its SLSA provenance.
    #[command(after_help = "Examples:\n  \
rampart train --data sha256:<hex> --label default --model random-forest --trees 200\n  \
rampart train --data data/credit.csv --exec -- python3 train.py --epochs 3\n  \
rampart train --config train.toml --timeout 600\n\n\
An external trainer finds the read-only dataset in $RAMPART_DATA and writes safetensors or ONNX \
files (and optionally metrics.json) into $RAMPART_OUTPUT. Exit status: 0 trained and signed, \
1 the trainer failed, broke a sandbox rule or left something that may not leave the sandbox, \
2 bad usage or a machine that cannot enforce the sandbox.")]
    Train(Box<rampart_train::flags::TrainFlags>),
    /// The model registry: register, promote through gates, approve, roll back, export.
    Model(ModelArgs),
    /// Serve registry models over HTTP (Open Inference Protocol / KServe V2), authenticated,
    /// rate-limited and validated.
    Serve(Box<rampart_serve::config::ServeConfig>),
    /// API keys for `rampart serve`: create (shown once), list, revoke.
    Apikey(ApikeyArgs),
    /// LLM guardrails: check prompts (prompt injection, jailbreaks, denied topics) or answers
    /// (PII and secrets, canaries, banned words, links).
    Guard(GuardArgs),
    /// The end-to-end pipeline from pipeline.toml: ingest → train in the sandbox → verify →
    /// register → promote, each step recorded by digest, reused only after re-verification.
    Pipeline(PipelineArgs),
    /// The built-in trainer as it runs inside the sandbox (internal).
    #[command(name = "__train-builtin", hide = true)]
    TrainBuiltin(BuiltinTrainArgs),
    /// One ONNX model's worker, started by `rampart serve` with a socket on its standard
    /// input (internal).
    #[command(name = rampart_serve::onnx::worker::COMMAND, hide = true)]
    OnnxWorker,
    /// Where the registry and the gateway's shared state live (`[storage]`), and whether
    /// each part can be reached and written.
    Storage(StorageArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    #[command(subcommand)]
    pub command: StorageCommand,
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Say which backend each part uses, connect, and check that it can be read and written;
    /// exit 3 with the reason when one cannot.
    Check,
}

#[derive(Debug, Args)]
pub struct InitArgs {}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub command: PipelineCommand,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run a pipeline (creating the home if there is none): each step whose inputs are
    /// unchanged is reused after its outputs are re-hashed and re-verified; a changed output
    /// stops the run. Writes report.html and report.json in HOME/pipelines/NAME/.
    Run(PipelineRunArgs),
    /// What each step of a pipeline last did: when, from which inputs, which files.
    Status {
        /// The pipeline's spec file or its name.
        #[arg(value_name = "PIPELINE")]
        pipeline: String,
    },
}

#[derive(Debug, Args)]
pub struct PipelineRunArgs {
    /// The pipeline spec (see examples/credit-risk/pipeline.toml).
    #[arg(value_name = "PIPELINE.toml")]
    pub spec: PathBuf,
    /// Run this step and every later one again, even when their inputs are unchanged:
    /// ingest, train, verify, register or promote.
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Fingerprints and locations of the home's keys (never private material).
    Show,
    /// Print (or write) the public signing key in PEM, or the age recipient with --age.
    ExportPublic {
        /// Export the age recipient (age1…) instead of the signing key.
        #[arg(long)]
        age: bool,
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    pub command: TrustCommand,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust an ECDSA public key (PEM; P-256, P-384 or P-521) for verifying signatures,
    /// checkpoints and approvals — or, given a certificate (PEM), a certificate authority for
    /// models and datasets signed with the certificate method.
    Add {
        /// The public key file (SubjectPublicKeyInfo PEM), or a CA certificate (PEM).
        pubkey: PathBuf,
        /// A name for it (default: the file name without extension).
        #[arg(long)]
        name: Option<String>,
    },
    /// Trust a Sigstore signer: models and datasets signed with Sigstore verify when the Fulcio
    /// certificate was issued to IDENTITY by ISSUER (checked offline against the Sigstore
    /// trusted root, with the Rekor entry's proof).
    AddIdentity {
        /// The certificate's identity, exactly: an email address, or a URI such as a CI
        /// workflow (`https://github.com/ORG/REPO/.github/workflows/F.yml@refs/heads/main`).
        #[arg(long, value_name = "ID")]
        identity: String,
        /// The OIDC issuer, exactly (`https://accounts.google.com`,
        /// `https://token.actions.githubusercontent.com`, …).
        #[arg(long, alias = "identity-provider", value_name = "URL")]
        issuer: String,
        /// A name for it (default: the identity).
        #[arg(long)]
        name: Option<String>,
    },
    /// Install a Sigstore trusted_root.json for this home (after Sigstore rotates keys, or for
    /// a private Sigstore); without it the public-good root built into rampart is used.
    SigstoreRoot {
        /// The trusted_root.json.
        file: PathBuf,
    },
    /// List trusted keys, certificate authorities and Sigstore identities.
    List,
    /// Stop trusting a key, certificate authority or Sigstore identity, by name or fingerprint
    /// (or identity).
    Remove {
        /// Name or fingerprint (sha256:…).
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and the signed checkpoints; exit 1 naming the first bad seq.
    Verify {
        /// Also compare the log with every checkpoint anchored under this home's key
        /// (`[storage] audit_anchor`): a log cut back or rewritten after one fails.
        #[arg(long)]
        anchor: bool,
    },
    /// Print records (JSON Lines with --format json).
    Show {
        /// Only this action, or actions under it (`trust` matches `trust.add`).
        #[arg(long)]
        action: Option<String>,
        /// Only records at or after this time (RFC 3339, or a date YYYY-MM-DD, UTC).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Recipients of an encryption, as `age` takes them.
#[derive(Debug, Args)]
pub struct RecipientArgs {
    /// Encrypt to this age recipient (age1…), repeatable.
    #[arg(short, long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Encrypt to the recipients listed in this file (one per line), repeatable.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
    /// Encrypt with a passphrase (scrypt) instead, read from --passphrase-file or
    /// $RAMPART_AGE_PASSPHRASE (for rekey: --new-passphrase-file or $RAMPART_AGE_NEW_PASSPHRASE).
    #[arg(short, long, conflicts_with_all = ["recipients", "recipients_files"])]
    pub passphrase: bool,
    /// Write ASCII armor (PEM-like text) instead of binary.
    #[arg(short, long)]
    pub armor: bool,
}

/// Ways to open an age file.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// An identity file (age-keygen format), repeatable; the home's identity is always tried.
    #[arg(short, long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Read the passphrase of a passphrase-encrypted file from this file (mode 0600) instead
    /// of $RAMPART_AGE_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The file to encrypt (- for standard input).
    pub path: PathBuf,
    #[command(flatten)]
    pub to: RecipientArgs,
    /// Read the passphrase from this file (mode 0600) instead of $RAMPART_AGE_PASSPHRASE.
    #[arg(long, value_name = "FILE", requires = "passphrase")]
    pub passphrase_file: Option<PathBuf>,
    /// Where to write (default: FILE.age; - for standard output).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The age file (- for standard input).
    pub path: PathBuf,
    #[command(flatten)]
    pub unlock: UnlockArgs,
    /// Where to write the plaintext (default: FILE without .age; - for standard output).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// The age file to re-encrypt in place.
    pub path: PathBuf,
    #[command(flatten)]
    pub unlock: UnlockArgs,
    #[command(flatten)]
    pub to: RecipientArgs,
    /// With --passphrase: read the new passphrase from this file (mode 0600) instead of
    /// $RAMPART_AGE_NEW_PASSPHRASE.
    #[arg(long, value_name = "FILE", requires = "passphrase")]
    pub new_passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The file or directory to sign.
    pub path: PathBuf,
    /// The private key (PEM, mode 0600); default: the home's signing key.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Where to write the signature (default: DIR/model.sig, or FILE.sig).
    #[arg(long, value_name = "OUT")]
    pub sig: Option<PathBuf>,
    /// Sign with the certificate method (model_signing `sign certificate`): the signing
    /// certificate (PEM) for --key's key.
    #[arg(long, value_name = "CERT.pem", requires = "key")]
    pub cert: Option<PathBuf>,
    /// With --cert: the certificates above it, to carry in the bundle (PEM, repeatable).
    #[arg(long = "cert-chain", value_name = "CHAIN.pem", requires = "cert")]
    pub cert_chain: Vec<PathBuf>,
    /// Leave this path out of the signature (repeatable; relative to the working directory
    /// or, failing that, to the model).
    #[arg(long = "ignore", alias = "ignore-paths", value_name = "PATH")]
    pub ignore: Vec<PathBuf>,
    /// Sign the top-level .git, .github, .gitignore and .gitattributes too.
    #[arg(long)]
    pub no_ignore_git: bool,
    /// Follow symlinks (hashing their targets) instead of refusing them.
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Hash fixed-size shards in parallel (faster on large files; verifiable by rampart and
    /// the model_signing API, not by the model_signing CLI).
    #[arg(long)]
    pub sharded: bool,
    /// Shard size in bytes, with --sharded.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 1_000_000_000,
        requires = "sharded"
    )]
    pub shard_size: u64,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The file or directory to verify.
    pub path: PathBuf,
    /// The signature (default: DIR/model.sig, or FILE.sig).
    #[arg(long, value_name = "FILE")]
    pub sig: Option<PathBuf>,
    /// A public key (PEM) to verify with (repeatable); default: the keys trusted in rampart.toml.
    #[arg(long, value_name = "PUB.pem")]
    pub key: Vec<PathBuf>,
    /// For a bundle signed with a certificate (model_signing's certificate method): trusted
    /// root certificates (PEM, repeatable; a file may hold several). The bundle's chain must
    /// lead to one of them.
    #[arg(long = "cert-chain", value_name = "CA.pem", conflicts_with = "key")]
    pub cert_chain: Vec<PathBuf>,
    /// The bundle is a Sigstore bundle (model_signing's sigstore method): verify it offline
    /// against the Sigstore trusted root — Fulcio chain, certificate transparency, the Rekor
    /// entry's promise and inclusion proof — and accept only a certificate issued to
    /// --identity by --issuer.
    #[arg(
        long,
        requires_all = ["identity", "issuer"],
        conflicts_with_all = ["key", "cert_chain"]
    )]
    pub sigstore: bool,
    /// With --sigstore: the signer's identity (the certificate's email or URI), exactly.
    #[arg(long, value_name = "ID", requires = "sigstore")]
    pub identity: Option<String>,
    /// With --sigstore: the OIDC issuer that vouched for the identity, exactly.
    #[arg(
        long,
        alias = "identity-provider",
        value_name = "URL",
        requires = "sigstore"
    )]
    pub issuer: Option<String>,
    /// With --sigstore: a Sigstore trusted_root.json to verify against instead of the pinned
    /// public-good root (for a private Sigstore deployment).
    #[arg(long, value_name = "FILE", requires = "sigstore")]
    pub trusted_root: Option<PathBuf>,
    /// Leave this path out of the check (repeatable).
    #[arg(long = "ignore-paths", alias = "ignore", value_name = "PATH")]
    pub ignore: Vec<PathBuf>,
    /// Tolerate files the signature does not cover.
    #[arg(long)]
    pub ignore_unsigned_files: bool,
    /// Check the top-level git paths too.
    #[arg(long)]
    pub no_ignore_git: bool,
    /// Follow symlinks even if the signer did not.
    #[arg(long)]
    pub allow_symlinks: bool,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    #[command(subcommand)]
    pub command: AttestCommand,
}

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Verify a signed attestation; exit 1 if it does not verify.
    Verify {
        /// The attestation bundle.
        file: PathBuf,
        /// A public key (PEM) to verify with (repeatable); default: the trusted keys.
        #[arg(long, value_name = "PUB.pem")]
        key: Vec<PathBuf>,
        /// Also require that this file's SHA-256 is one of the attestation's subjects.
        #[arg(long, value_name = "FILE")]
        subject: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories (directories are walked).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The lowest severity that fails the scan (default: the policy's, else medium — anything
    /// not allowlisted).
    #[arg(long, value_name = "SEVERITY", value_parser = scan_severities())]
    pub fail_on: Option<rampart_scan::Severity>,
    /// Allow an import (module.name or module.*) beyond the allowlist; repeatable.
    /// Dangerous imports cannot be allowed.
    #[arg(long, value_name = "MODULE.NAME")]
    pub allow: Vec<String>,
    /// List every import (safe ones too) in the human output.
    #[arg(long)]
    pub imports: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The checkpoint (PyTorch zip or legacy layout).
    pub input: PathBuf,
    /// The safetensors file to write.
    #[arg(short, long, value_name = "OUT.safetensors")]
    pub output: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Manage the directories datasets may be read from (`data.roots` in rampart.toml).
    Roots(RootsArgs),
    /// Check that a path is an authorised dataset location (after resolving `..` and
    /// symlinks, on the opened file); with --schema, also run the poisoning checks on it
    /// (label distribution, duplicates with conflicting labels, floods of near-identical rows,
    /// per-class outliers, shift against --reference, backdoor triggers). Exit 1 when a check
    /// at or above --fail-on fires.
    Check(CheckArgs),
    /// Find personal data and secrets in a CSV or text file (scan), write a redacted copy
    /// (redact), or decrypt values pseudonymised with the encrypt operator (reveal).
    Pii(PiiArgs),
    /// Per-column drift of CURRENT against REFERENCE: PSI (decile bins of the reference, or
    /// --bins equal-width:N) and the two-sample KS test; categories get PSI over categories.
    Drift(DriftArgs),
    /// Propose a schema (TOML) from a sample of a CSV file; review it before use.
    InferSchema(InferSchemaArgs),
    /// Check every row of a CSV file against a schema: clean rows to -o, rejected rows (with
    /// row, line, column, rule and reason) to --quarantine. Exit 1 when any row is rejected.
    Validate(ValidateArgs),
    /// Ingest a dataset: authorised location, signature or pinned digest checked on the bytes
    /// read, .age decrypted in memory, every row validated; the clean rows are stored encrypted
    /// in the home's content-addressed store with a manifest, the rejected rows beside them.
    Ingest(IngestArgs),
    /// Pin a dataset file's SHA-256 in rampart.toml (`data.pins`): that exact content may be
    /// ingested without a signature.
    Pin {
        /// The dataset file.
        path: PathBuf,
    },
    /// Remove a pinned digest (`sha256:…`, or the file whose digest it is).
    Unpin {
        /// The digest or the file.
        what: String,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// File or directory.
    pub path: PathBuf,
    /// Run the poisoning checks on the file under this schema (its label column is the label).
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<PathBuf>,
    /// A trusted dataset of the same schema to compare with (label distribution, shift).
    #[arg(long, value_name = "TRUSTED", requires = "schema")]
    pub reference: Option<PathBuf>,
    /// The lowest severity that fails (low, medium, high; default data.checks.fail_on).
    #[arg(long, value_name = "SEVERITY", requires = "schema")]
    pub fail_on: Option<rampart_data::poison::Severity>,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Debug, Args)]
pub struct PiiArgs {
    #[command(subcommand)]
    pub command: PiiCommand,
}

#[derive(Debug, Subcommand)]
pub enum PiiCommand {
    /// Report personal data and secrets per column and entity (samples masked). Exit 1 when
    /// anything is found.
    Scan(PiiScanArgs),
    /// Write a redacted copy: operators per entity (--entity EMAIL=hash) or per column
    /// (--column notes=replace), defaults from `[data.pii]` in rampart.toml.
    Redact(PiiRedactArgs),
    /// Decrypt the `<TYPE:age:…>` values written by the encrypt operator.
    Reveal(PiiRevealArgs),
}

#[derive(Debug, Args)]
pub struct PiiInputArgs {
    /// The file: CSV with a header row (.age files are decrypted in memory), or text with --text.
    pub path: PathBuf,
    /// Read the file as free text, line by line, instead of CSV.
    #[arg(long)]
    pub text: bool,
    /// Ignore findings under this confidence (default data.pii.min_confidence, 0.5).
    #[arg(long, value_name = "C")]
    pub min_confidence: Option<f32>,
    /// Only these entities (repeatable or comma-separated: EMAIL,PHONE,…).
    #[arg(long = "only", value_name = "ENTITY", value_delimiter = ',')]
    pub only: Vec<rampart_data::pii::Entity>,
    /// Longest CSV record in bytes.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_row_bytes: usize,
    /// The file's schema: its `personal = true` columns are reported and redacted whole,
    /// whether or not each value is recognised.
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Debug, Args)]
pub struct PiiScanArgs {
    #[command(flatten)]
    pub input: PiiInputArgs,
    /// Also write every finding as a JSON line (row, column, entity, byte span, confidence,
    /// rule; never the value) to this file (mode 0600, replaced if it exists).
    #[arg(long, value_name = "OUT.jsonl")]
    pub findings: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PiiRedactArgs {
    #[command(flatten)]
    pub input: PiiInputArgs,
    /// Where to write the redacted data (mode 0600; - for standard output).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// The operator for entities without one: replace, mask, mask:N, remove, hash, encrypt, keep.
    #[arg(long = "default", value_name = "OP")]
    pub default_op: Option<String>,
    /// An operator for one entity, ENTITY=OP (repeatable).
    #[arg(long = "entity", value_name = "ENTITY=OP")]
    pub entity_ops: Vec<String>,
    /// An operator for every finding in one column, COLUMN=OP (repeatable).
    #[arg(long = "column", value_name = "COLUMN=OP")]
    pub column_ops: Vec<String>,
    /// Recipients for the encrypt operator (default: the home's age identity).
    #[arg(short, long = "recipient", value_name = "age1…")]
    pub recipients: Vec<String>,
    /// CSV-injection neutralisation (a leading ' on cells starting with = + - @ tab CR that
    /// are not plain numbers): auto (quarantine and redacted outputs), always (every CSV
    /// output), never (byte-exact outputs). See SECURITY.md.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = safe_csv_values())]
    pub safe_csv: SafeCsv,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PiiRevealArgs {
    /// A file redacted with the encrypt operator.
    pub path: PathBuf,
    /// Where to write the revealed data (mode 0600; - for standard output).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// CSV-injection neutralisation (a leading ' on cells starting with = + - @ tab CR that
    /// are not plain numbers): auto (quarantine and redacted outputs), always (every CSV
    /// output), never (byte-exact outputs). See SECURITY.md.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = safe_csv_values())]
    pub safe_csv: SafeCsv,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The reference (trusted, training-time) CSV.
    pub reference: PathBuf,
    /// The current CSV (same columns).
    pub current: PathBuf,
    /// Binning for numeric PSI: deciles (the reference's, numpy's linear method) or
    /// equal-width:N.
    #[arg(long, default_value = "deciles", value_name = "BINS")]
    pub bins: rampart_data::drift::Binning,
    /// PSI at or above this is drift.
    #[arg(long, default_value_t = 0.2, value_name = "PSI")]
    pub threshold: f64,
    /// Columns to leave out (repeatable).
    #[arg(long, value_name = "COL")]
    pub ignore: Vec<String>,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The dataset file: CSV, or CSV encrypted with age.
    pub path: PathBuf,
    /// The schema (TOML).
    #[arg(long, value_name = "SCHEMA")]
    pub schema: PathBuf,
    /// The dataset's OMS signature (default: FILE.sig).
    #[arg(long, value_name = "SIG")]
    pub sig: Option<PathBuf>,
    /// Ingest even without a signature or a pinned digest (warned about and audited).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Refuse the dataset (nothing stored, exit 1) when more than this fraction of rows is
    /// rejected.
    #[arg(long, value_name = "FRACTION", default_value_t = 1.0)]
    pub max_reject_rate: f64,
    /// Longest accepted record in bytes; longer ones are rejected.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_row_bytes: usize,
    /// Run the poisoning checks against this trusted dataset (also without
    /// data.checks.on_ingest); a check at or above data.checks.fail_on refuses the dataset.
    #[arg(long, value_name = "TRUSTED")]
    pub reference: Option<PathBuf>,
    /// Accept the file when its SHA-256 is this digest (a pin for this run only, as a
    /// pipeline spec gives one); a signature beside the file still takes precedence.
    #[arg(long, value_name = "sha256:HEX")]
    pub expect_sha256: Option<String>,
    /// Redact personal data in the clean rows before they are stored (as
    /// `[data.pii] on_ingest`), with the policy's operators unless overridden below.
    #[arg(long)]
    pub redact: bool,
    /// The redaction operator for anything not named otherwise.
    #[arg(long, value_name = "OP", requires = "redact")]
    pub redact_default: Option<String>,
    /// An operator for one entity (repeatable), e.g. EMAIL=hash.
    #[arg(long, value_name = "ENTITY=OP", requires = "redact")]
    pub redact_entity: Vec<String>,
    /// An operator for every finding in one column (repeatable), e.g. ssn=remove.
    #[arg(long, value_name = "COLUMN=OP", requires = "redact")]
    pub redact_column: Vec<String>,
    /// Run the poisoning checks (as `[data.checks] on_ingest`).
    #[arg(long)]
    pub checks: bool,
    /// The check severity that refuses the dataset (default `data.checks.fail_on`).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<rampart_data::poison::Severity>,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Debug, Args)]
pub struct InferSchemaArgs {
    /// The CSV file (.age files are decrypted in memory).
    pub path: PathBuf,
    /// How many data rows to sample.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub rows: u64,
    /// The label column (its classes become the distinct values seen).
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,
    /// Write the schema here instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The CSV file (.age files are decrypted in memory).
    pub path: PathBuf,
    /// The schema (TOML).
    #[arg(long, value_name = "SCHEMA")]
    pub schema: PathBuf,
    /// Write the accepted rows here (CSV, mode 0600).
    #[arg(short, long, value_name = "CLEAN")]
    pub output: Option<PathBuf>,
    /// Write the rejected rows here (CSV: row,line,columns,rules,reasons,record; mode 0600).
    #[arg(long, value_name = "REJECTS")]
    pub quarantine: Option<PathBuf>,
    /// CSV-injection neutralisation (a leading ' on cells starting with = + - @ tab CR that
    /// are not plain numbers): auto (quarantine and redacted outputs), always (every CSV
    /// output), never (byte-exact outputs). See SECURITY.md.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = safe_csv_values())]
    pub safe_csv: SafeCsv,
    /// Longest accepted record in bytes; longer ones are rejected.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_row_bytes: usize,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Debug, Args)]
pub struct RootsArgs {
    #[command(subcommand)]
    pub command: RootsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RootsCommand {
    /// Authorise a directory (stored as its real, absolute path).
    Add {
        /// An existing directory.
        dir: PathBuf,
    },
    /// List the authorised directories.
    List,
    /// Stop authorising a directory.
    Remove {
        /// A listed directory.
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct MlArgs {
    #[command(subcommand)]
    pub command: MlCommand,
}

#[derive(Debug, Subcommand)]
pub enum MlCommand {
    /// Differential privacy of DP-SGD: ε for a noise level, or the noise for a target ε
    /// (RDP accountant for the sampled Gaussian mechanism).
    Privacy(PrivacyArgs),
    /// Train a model on a CSV file and write it as safetensors.
    Train(Box<TrainArgs>),
    /// Score a model on a labelled CSV file.
    Eval(EvalArgs),
    /// Predict every row of a CSV file.
    Predict(PredictArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: CSV with a header row; every column but the label (and --ignore) is a
    /// numeric feature.
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    /// The label column (required for classifiers; for the isolation forest it is left out
    /// of the features).
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// Columns to leave out of the features (ids, free text).
    #[arg(long, value_name = "COL")]
    pub ignore: Vec<String>,
    /// Model kind.
    #[arg(long = "model", value_enum)]
    pub kind: Kind,
    /// Where to write the model.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Hyperparameters of the built-in models.
    #[command(flatten, next_help_heading = "Model settings")]
    pub hyper: Hyper,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    /// Labelled CSV with the model's feature columns.
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    /// The label column.
    #[arg(long, value_name = "COL")]
    pub label: String,
    /// Isolation forest: the label value that marks an anomaly.
    #[arg(long, value_name = "VALUE", default_value = "1")]
    pub anomaly_label: String,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    /// CSV with the model's feature columns (others are passed through).
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    /// Output CSV (`-` for standard output): the input rows plus the predictions.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PrivacyArgs {
    /// Poisson sampling rate q (batch size / dataset size).
    #[arg(long, value_name = "Q")]
    pub sample_rate: f64,
    /// Noise multiplier σ (noise std / clipping norm).
    #[arg(
        long,
        value_name = "S",
        required_unless_present = "target_epsilon",
        conflicts_with = "target_epsilon"
    )]
    pub noise: Option<f64>,
    /// Print the noise multiplier that reaches this ε instead.
    #[arg(long, value_name = "E")]
    pub target_epsilon: Option<f64>,
    /// Number of steps (iterations).
    #[arg(long, value_name = "T")]
    pub steps: u64,
    /// δ.
    #[arg(long, value_name = "D")]
    pub delta: f64,
}

#[derive(Debug, Args)]
pub struct BuiltinTrainArgs {
    /// The CSV file.
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    #[arg(long, value_name = "COL")]
    pub ignore: Vec<String>,
    #[arg(long = "model", value_enum)]
    pub kind: Kind,
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    pub holdout: f64,
    /// The model file to write.
    #[arg(long, value_name = "PATH")]
    pub output: PathBuf,
    /// The metrics file to write.
    #[arg(long, value_name = "PATH")]
    pub metrics: PathBuf,
    /// The hyperparameters given, as JSON (`rampart_ml::hyper::Hyper`).
    #[arg(long, value_name = "JSON")]
    pub hyper: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Store a signed model as the next version of NAME: its signature must verify with a
    /// trusted key, every file must scan clean, its provenance must name its digests.
    Register {
        /// A `rampart train` run directory, a model directory (signature DIR/model.sig) or a
        /// model file (signature FILE.sig).
        path: PathBuf,
        /// The model's name in the registry.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The OMS signature (default: found beside the model).
        #[arg(long, value_name = "FILE")]
        sig: Option<PathBuf>,
        /// Signed provenance (default: provenance.json of a run directory).
        #[arg(long, value_name = "FILE")]
        provenance: Option<PathBuf>,
        /// Metrics JSON (default: metrics.json of a run directory, or the provenance's).
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
    },
    /// Move NAME@VERSION into staging or production if every gate in rampart.toml passes.
    Promote {
        /// NAME@VERSION (or NAME@staging).
        reference: String,
        /// The target stage.
        #[arg(long, value_enum)]
        to: TargetStage,
    },
    /// Sign an approval of NAME@VERSION with your own key (counted by the production gate).
    Approve {
        /// NAME@VERSION.
        reference: String,
        /// Your private key (PEM, 0600; default: the home's signing key).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The stage approved for.
        #[arg(long, value_enum, default_value_t = TargetStage::Production)]
        stage: TargetStage,
    },
    /// Put the previous production version of NAME back into production.
    Rollback {
        /// The model name.
        name: String,
    },
    /// Every model and the versions in staging and production.
    List,
    /// One version: digests, files, signer, metrics, lineage, stage, approvals.
    Show {
        /// NAME, NAME@VERSION, NAME@staging or NAME@production.
        reference: String,
    },
    /// Write a version's files (each verified against its digest), its signature and its
    /// provenance into a new directory: the way to load a model from the registry.
    Checkout {
        /// The version (NAME@production, NAME@3, …).
        reference: String,
        /// A new or empty directory.
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
    },
    /// Every stage change of a model.
    History {
        /// The model name.
        name: String,
    },
    /// Write a version as a signed archive, for moving it into another (air-gapped) home.
    Export {
        /// The version.
        reference: String,
        /// The archive to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Read an exported archive: the exporting home's key must be trusted here; every blob,
    /// the model's signature, scan and provenance are checked again.
    Import {
        /// The archive.
        archive: PathBuf,
        /// Store it under this name (default: the exported name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetStage {
    Staging,
    Production,
}

#[derive(Debug, Args)]
pub struct GuardArgs {
    #[command(subcommand)]
    pub command: GuardCommand,
}

#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Check one text (an argument, or `-` for stdin) or a JSONL batch; exit 1 when anything
    /// is blocked.
    Check {
        /// The text, or `-` to read it from stdin.
        #[arg(value_name = "TEXT", conflicts_with = "jsonl")]
        text: Option<String>,
        /// A JSONL file (`-`: stdin): each line a JSON string or {"id": …, "text": …}; one
        /// verdict line per item.
        #[arg(long, value_name = "FILE")]
        jsonl: Option<String>,
        /// Check it as a model's answer (output rails) instead of a prompt.
        #[arg(long)]
        output: bool,
        /// The canary token planted in the system prompt (with --output).
        #[arg(long, value_name = "TOKEN", requires = "output")]
        canary: Option<String>,
        /// A file holding the system prompt the answer must not restate, copied, encoded,
        /// paraphrased or translated (with --output).
        #[arg(long, value_name = "FILE", requires = "output")]
        system_prompt: Option<std::path::PathBuf>,
        /// Whose text it is (input rail): a user's prompt, a document or tool result handed
        /// to the model (instructions planted for the model block), or the deployment's own
        /// instructions (no classifier, no topics).
        #[arg(long = "as", value_enum, default_value_t = TextRole::User, conflicts_with = "output")]
        role: TextRole,
    },
}

/// `rampart guard check --as`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextRole {
    User,
    Document,
    Instructions,
}

#[derive(Debug, Args)]
pub struct ApikeyArgs {
    #[command(subcommand)]
    pub command: ApikeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key; its token is printed once and stored only as a hash.
    Create {
        /// What it may do.
        #[arg(long, value_enum, default_value_t = KeyRole::Predict)]
        role: KeyRole,
        /// Limit it to one model.
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// Requests per second.
        #[arg(long, value_name = "R", default_value_t = 50)]
        rate: u32,
        /// Burst.
        #[arg(long, value_name = "B", default_value_t = 100)]
        burst: u32,
        /// Expiry: a number of days, or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        /// A label for people.
        #[arg(long, value_name = "TEXT", default_value = "")]
        label: String,
    },
    /// The keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key id (the hex part after `rk_`).
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyRole {
    Predict,
    Admin,
}

/// `--safe-csv auto|always|never`, listed in the help.
fn safe_csv_values() -> impl clap::builder::TypedValueParser<Value = SafeCsv> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["auto", "always", "never"])
        .map(|s: String| SafeCsv::parse(&s).unwrap_or_default())
}

/// `--fail-on` of `rampart scan`, its names listed in the help.
fn scan_severities() -> impl clap::builder::TypedValueParser<Value = rampart_scan::Severity> {
    use clap::builder::TypedValueParser as _;
    let names = [
        "info",
        "low",
        "medium",
        "unknown",
        "high",
        "critical",
        "dangerous",
    ];
    clap::builder::PossibleValuesParser::new(names)
        .try_map(|s: String| rampart_scan::Severity::parse(&s).ok_or("not a severity"))
}
