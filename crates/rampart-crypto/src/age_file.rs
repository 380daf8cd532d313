//! Encryption at rest in the age format (<https://age-encryption.org/v1>), streaming.
//!
//! Files written here decrypt with the `age` command-line tool and files it writes (binary or
//! ASCII-armored, X25519 or passphrase) decrypt here. Memory is bounded whatever the file size:
//! age encrypts in 64 KiB chunks and every copy loop here uses a fixed buffer.
//!
//! A passphrase-encrypted file is protected by scrypt; decryption refuses work factors above
//! [`MAX_SCRYPT_LOG_N`] so a hostile file cannot make us burn minutes of CPU and gigabytes of
//! memory.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::str::FromStr as _;

pub use age::secrecy::SecretString;

use crate::{Digest, Sha256Hasher};

/// The largest scrypt work factor (log2 N) accepted when decrypting: 2^22 × r=8 is 4 GiB of
/// memory, beyond that a file is an attack, not a passphrase.
pub const MAX_SCRYPT_LOG_N: u8 = 22;

/// Copy buffer size for the streaming loops.
const BUFFER: usize = 1 << 20;

/// Most stanzas accepted in a header. age writes one per recipient (plus, from some writers, a
/// random "grease" stanza); a header with more is refused rather than parsed.
pub const MAX_STANZAS: usize = 1024;

/// Largest stanza body accepted (decoded base64 text, bytes). X25519 and scrypt bodies are 43
/// characters; plugin stanzas are larger but far below this.
pub const MAX_STANZA_BODY: usize = 16 * 1024;

/// Longest header line other than body lines (the version line, `-> ` argument lines, the MAC).
const MAX_HEADER_LINE: usize = 4096;

/// What went wrong with an age file. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgeError {
    /// A recipient string is not an age X25519 recipient.
    #[error("`{0}` is not an age recipient (expected age1…)")]
    BadRecipient(String),
    /// No recipients to encrypt to.
    #[error("no recipients: give at least one age1… recipient or a passphrase")]
    NoRecipients,
    /// An identity file could not be parsed.
    #[error("not an age identity file: {0}")]
    BadIdentity(String),
    /// The input is not an age file.
    #[error("not an age file (no valid age header): {0}")]
    NotAge(String),
    /// None of the identities (or the passphrase) can open the file.
    #[error("none of the given identities can decrypt this file")]
    NoMatchingKey,
    /// The file is passphrase-encrypted but no passphrase was given, or the reverse.
    #[error("{0}")]
    WrongMode(&'static str),
    /// The passphrase is wrong.
    #[error("the passphrase does not decrypt this file")]
    BadPassphrase,
    /// The scrypt work factor exceeds [`MAX_SCRYPT_LOG_N`].
    #[error("the file asks for scrypt work factor 2^{0}, above the limit 2^{MAX_SCRYPT_LOG_N}")]
    ExcessiveWork(u8),
    /// Ciphertext was modified or truncated.
    #[error("the encrypted data is corrupt or truncated: {0}")]
    Corrupt(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Whom a file is encrypted to.
pub enum Recipients {
    /// X25519 recipients (`age1…`).
    Keys(Vec<age::x25519::Recipient>),
    /// One passphrase (scrypt).
    Passphrase(SecretString),
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keys(k) => f
                .debug_tuple("Keys")
                .field(&k.iter().map(ToString::to_string).collect::<Vec<_>>())
                .finish(),
            Self::Passphrase(_) => f.write_str("Passphrase(…)"),
        }
    }
}

impl Recipients {
    /// Parses `age1…` recipient strings.
    ///
    /// # Errors
    /// [`AgeError::BadRecipient`] naming the first bad one; [`AgeError::NoRecipients`] when empty.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, AgeError> {
        if list.is_empty() {
            return Err(AgeError::NoRecipients);
        }
        list.iter()
            .map(|s| {
                let s = s.as_ref().trim();
                age::x25519::Recipient::from_str(s).map_err(|_| AgeError::BadRecipient(s.into()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Keys)
    }

    /// Parses a recipients file as `age -R` reads it: one recipient per line, `#` comments and
    /// blank lines ignored.
    ///
    /// # Errors
    /// As [`Recipients::parse`].
    pub fn parse_file(text: &str) -> Result<Vec<String>, AgeError> {
        let list: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Self::parse(&list)?;
        Ok(list)
    }

    /// The recipient strings (never the passphrase).
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        match self {
            Self::Keys(k) => k.iter().map(ToString::to_string).collect(),
            Self::Passphrase(_) => vec!["passphrase (scrypt)".into()],
        }
    }
}

/// The keys at hand to open a file: identities for files encrypted to recipients, a passphrase
/// for passphrase files. Which one is used is decided by the file's header.
#[derive(Default)]
pub struct Unlock {
    /// X25519 identities (from identity files or the home).
    pub identities: Vec<age::x25519::Identity>,
    /// A passphrase, if one was given.
    pub passphrase: Option<SecretString>,
}

impl fmt::Debug for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Unlock({} identities, passphrase: {})",
            self.identities.len(),
            self.passphrase.is_some()
        )
    }
}

impl Unlock {
    /// Just these identities.
    #[must_use]
    pub fn identities(identities: Vec<age::x25519::Identity>) -> Self {
        Self {
            identities,
            passphrase: None,
        }
    }

    /// Just a passphrase.
    #[must_use]
    pub fn passphrase(passphrase: SecretString) -> Self {
        Self {
            identities: Vec::new(),
            passphrase: Some(passphrase),
        }
    }

    /// Whether any identity here opens a file encrypted to `recipient`.
    #[must_use]
    pub fn holds(&self, recipient: &str) -> bool {
        self.identities
            .iter()
            .any(|i| i.to_public().to_string() == recipient)
    }
}

/// Parses an identity file as `age -i` reads it (`age-keygen` output: comments and one or more
/// `AGE-SECRET-KEY-1…` lines).
///
/// # Errors
/// [`AgeError::BadIdentity`] naming the line number (never its content).
pub fn parse_identities(text: &str) -> Result<Vec<age::x25519::Identity>, AgeError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(
            age::x25519::Identity::from_str(line)
                .map_err(|_| AgeError::BadIdentity(format!("line {} is not an identity", n + 1)))?,
        );
    }
    if out.is_empty() {
        return Err(AgeError::BadIdentity("no AGE-SECRET-KEY-1 line".into()));
    }
    Ok(out)
}

/// A writer producing an age file: what is written to it is encrypted into the inner writer.
/// [`EncryptingWriter::finish`] must be called to write the final chunk; without it the file
/// is truncated and will not decrypt.
pub struct EncryptingWriter<W: Write> {
    inner: age::stream::StreamWriter<age::armor::ArmoredWriter<W>>,
}

impl<W: Write> EncryptingWriter<W> {
    /// Starts an age file to `to` in `output` (ASCII-armored when `armor`).
    ///
    /// # Errors
    /// [`AgeError::NoRecipients`], or I/O errors writing the header.
    pub fn new(output: W, to: &Recipients, armor: bool) -> Result<Self, AgeError> {
        let encryptor = match to {
            Recipients::Keys(keys) if keys.is_empty() => return Err(AgeError::NoRecipients),
            Recipients::Keys(keys) => {
                age::Encryptor::with_recipients(keys.iter().map(|k| k as &dyn age::Recipient))
                    .map_err(|_| AgeError::NoRecipients)?
            }
            Recipients::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
        };
        let format = if armor {
            age::armor::Format::AsciiArmor
        } else {
            age::armor::Format::Binary
        };
        let armored = age::armor::ArmoredWriter::wrap_output(output, format)?;
        Ok(Self {
            inner: encryptor.wrap_output(armored)?,
        })
    }

    /// Writes the last chunk (and the armor's end line); returns the inner writer, flushed.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(self) -> io::Result<W> {
        let mut out = self.inner.finish()?.finish()?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// Does nothing: flushing age's armored writer mid-stream breaks its line layout, and
    /// [`EncryptingWriter::finish`] flushes everything.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypts `input` to `to`, writing the age file to `output` (ASCII-armored when `armor`).
/// Returns the plaintext byte count and its SHA-256.
///
/// # Errors
/// I/O errors of either side.
pub fn encrypt<W: Write>(
    input: &mut dyn Read,
    output: W,
    to: &Recipients,
    armor: bool,
) -> Result<(u64, Digest), AgeError> {
    let mut writer = EncryptingWriter::new(output, to, armor)?;
    let (n, digest) = copy_hashing(input, &mut writer)?;
    writer.finish()?;
    Ok((n, digest))
}

/// Whether the file behind `input` is passphrase-encrypted, read from its header.
///
/// # Errors
/// [`AgeError::NotAge`] when there is no age header.
pub fn is_passphrase_file<R: Read + Send>(input: R) -> Result<bool, AgeError> {
    let d = checked_decryptor(BufReader::new(age::armor::ArmoredReader::new(input)))?;
    Ok(d.is_scrypt())
}

/// An age decryptor over `input`, after the header was read and checked in one linear pass with
/// bounds ([`MAX_STANZAS`], [`MAX_STANZA_BODY`], [`MAX_HEADER_LINE`]). The age crate's own
/// header parser retries from the start as more bytes arrive, which is quadratic in the header
/// size: 16 000 stanzas took 49 s. Only a header that passes here is handed to it, from memory.
fn checked_decryptor<'a, R: BufRead + Send + 'a>(
    mut input: R,
) -> Result<age::Decryptor<Box<dyn BufRead + Send + 'a>>, AgeError> {
    let header = read_header(&mut input)?;
    let chained: Box<dyn BufRead + Send + 'a> = Box::new(io::Cursor::new(header).chain(input));
    age::Decryptor::new_buffered(chained).map_err(header_error)
}

/// Reads an age v1 header (through its `---` MAC line) and checks its shape, in time linear in
/// its size and memory bounded by the limits. The bytes read are returned, to be parsed again
/// by the age crate.
fn read_header<R: BufRead>(input: &mut R) -> Result<Vec<u8>, AgeError> {
    let bad = |what: String| AgeError::NotAge(what);
    let mut header = Vec::new();
    let version = read_line(input, &mut header, MAX_HEADER_LINE)?;
    if version != b"age-encryption.org/v1".as_slice() {
        return Err(bad("the first line is not `age-encryption.org/v1`".into()));
    }
    let mut stanzas = 0usize;
    loop {
        let line = read_line(input, &mut header, MAX_HEADER_LINE)?;
        if line.starts_with(b"--- ") {
            return Ok(header);
        }
        if !line.starts_with(b"-> ") {
            return Err(bad(format!(
                "header line {} is neither a stanza (`-> `) nor the MAC (`--- `)",
                header.iter().filter(|&&b| b == b'\n').count()
            )));
        }
        stanzas += 1;
        if stanzas > MAX_STANZAS {
            return Err(bad(format!(
                "the header has more than {MAX_STANZAS} recipient stanzas; refused unparsed"
            )));
        }
        // The body: full 64-column lines, ended by a shorter one (possibly empty).
        let mut body = 0usize;
        loop {
            let line = read_line(input, &mut header, 64)?;
            body += line.len();
            if body > MAX_STANZA_BODY {
                return Err(bad(format!(
                    "stanza {stanzas} has a body over {MAX_STANZA_BODY} bytes; refused unparsed"
                )));
            }
            if line.len() < 64 {
                break;
            }
        }
    }
}

/// Appends one `\n`-terminated line (at most `max` bytes before the newline) to `header` and
/// returns its length without the newline. Reads at most `max + 1` bytes.
fn read_line<'h, R: BufRead>(
    input: &mut R,
    header: &'h mut Vec<u8>,
    max: usize,
) -> Result<&'h [u8], AgeError> {
    let start = header.len();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    input.by_ref().take(limit).read_until(b'\n', header)?;
    match header.last() {
        Some(b'\n') if header.len() > start => {
            let end = header.len() - 1;
            Ok(header.get(start..end).unwrap_or_default())
        }
        _ if header.len() == start => Err(AgeError::NotAge("the header ends early".into())),
        _ if header.len() - start > max => Err(AgeError::NotAge(format!(
            "a header line is longer than {max} bytes; refused unparsed"
        ))),
        _ => Err(AgeError::NotAge("the header ends early".into())),
    }
}

/// A reader of the plaintext of an age file (binary or armored). Reading it authenticates each
/// 64 KiB chunk; a modified or truncated file fails with an I/O error of kind `InvalidData`.
///
/// # Errors
/// [`AgeError::NotAge`], [`AgeError::NoMatchingKey`], [`AgeError::BadPassphrase`],
/// [`AgeError::WrongMode`], [`AgeError::ExcessiveWork`].
pub fn decrypting_reader<'a, R: Read + Send + 'a>(
    input: R,
    with: &Unlock,
) -> Result<Box<dyn Read + Send + 'a>, AgeError> {
    // Binary files skip the armor layer: it costs a copy of every byte.
    let mut buffered = BufReader::with_capacity(BUFFER, input);
    let armored = buffered
        .fill_buf()
        .map(|h| h.starts_with(b"-----BEGIN"))
        .map_err(AgeError::Io)?;
    let d = if armored {
        checked_decryptor(BufReader::with_capacity(
            BUFFER,
            age::armor::ArmoredReader::new(buffered),
        ))?
    } else {
        checked_decryptor(buffered)?
    };
    Ok(Box::new(open_with(d, with)?))
}

fn open_with<R: Read>(
    decryptor: age::Decryptor<R>,
    with: &Unlock,
) -> Result<age::stream::StreamReader<R>, AgeError> {
    if decryptor.is_scrypt() {
        let Some(p) = &with.passphrase else {
            return Err(AgeError::WrongMode(
                "this file is passphrase-encrypted: give the passphrase",
            ));
        };
        let mut id = age::scrypt::Identity::new(p.clone());
        id.set_max_work_factor(MAX_SCRYPT_LOG_N);
        decryptor
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .map_err(|e| match open_error(e) {
                AgeError::NoMatchingKey => AgeError::BadPassphrase,
                other => other,
            })
    } else {
        if with.identities.is_empty() {
            return Err(AgeError::WrongMode(
                "this file is encrypted to recipients, not a passphrase: give an identity",
            ));
        }
        decryptor
            .decrypt(with.identities.iter().map(|i| i as &dyn age::Identity))
            .map_err(open_error)
    }
}

/// Decrypts `input` into `output`. Returns the plaintext byte count and its SHA-256.
///
/// # Errors
/// As [`decrypting_reader`], plus [`AgeError::Corrupt`] for modified or truncated ciphertext.
pub fn decrypt<R: Read + Send>(
    input: R,
    output: &mut dyn Write,
    with: &Unlock,
) -> Result<(u64, Digest), AgeError> {
    let mut reader = decrypting_reader(input, with)?;
    let done = copy_hashing(&mut reader, output).and_then(|d| {
        output.flush()?;
        Ok(d)
    });
    done.map_err(|e| match e {
        AgeError::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
            AgeError::Corrupt(io.to_string())
        }
        AgeError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            AgeError::Corrupt("the file ends before its last chunk".into())
        }
        other => other,
    })
}

/// Streams `input` to `output` in fixed-size chunks, hashing what passes. The hashing runs on
/// a second thread so that SHA-256 does not slow the copy (it cost a third of the time of an
/// encryption when done inline); at most four chunks are in flight.
fn copy_hashing(input: &mut dyn Read, output: &mut dyn Write) -> Result<(u64, Digest), AgeError> {
    use std::sync::Arc;
    use std::sync::mpsc::sync_channel;
    const IN_FLIGHT: usize = 4;
    std::thread::scope(|scope| {
        let (to_hasher, chunks) = sync_channel::<(Arc<Vec<u8>>, usize)>(IN_FLIGHT);
        let (give_back, spare) = sync_channel::<Arc<Vec<u8>>>(IN_FLIGHT + 1);
        let hasher = scope.spawn(move || {
            let mut hasher = Sha256Hasher::new();
            for (chunk, n) in chunks {
                hasher.update(chunk.get(..n).unwrap_or_default());
                // The copier may have stopped; a full or closed return channel is fine.
                let _ = give_back.try_send(chunk);
            }
            hasher.finish()
        });
        let mut total = 0u64;
        let copied = (|| -> Result<(), AgeError> {
            loop {
                // Buffers keep their full length between uses: no zeroing per chunk.
                let mut buf = spare
                    .try_recv()
                    .ok()
                    .and_then(|a| Arc::try_unwrap(a).ok())
                    .unwrap_or_else(|| vec![0; BUFFER]);
                let n = loop {
                    match input.read(&mut buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                };
                if n == 0 {
                    return Ok(());
                }
                output.write_all(buf.get(..n).unwrap_or_default())?;
                total += n as u64;
                if to_hasher.send((Arc::new(buf), n)).is_err() {
                    return Err(AgeError::Io(io::Error::other("the hashing thread stopped")));
                }
            }
        })();
        drop(to_hasher);
        let digest = hasher
            .join()
            .map_err(|_| AgeError::Io(io::Error::other("the hashing thread panicked")))?;
        copied.map(|()| (total, digest))
    })
    // No flush here: flushing age's armored writer mid-stream breaks its line layout; the
    // callers finish (encrypt) or flush (decrypt) themselves.
}

fn header_error(e: age::DecryptError) -> AgeError {
    match e {
        age::DecryptError::Io(io) => AgeError::NotAge(io.to_string()),
        other => AgeError::NotAge(other.to_string()),
    }
}

fn open_error(e: age::DecryptError) -> AgeError {
    match e {
        age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => {
            AgeError::NoMatchingKey
        }
        age::DecryptError::ExcessiveWork { required, .. } => AgeError::ExcessiveWork(required),
        age::DecryptError::Io(io) => AgeError::Io(io),
        other => AgeError::NotAge(other.to_string()),
    }
}

/// Whether `reader` starts like an age file (binary or armored), peeking without consuming.
///
/// # Errors
/// I/O errors.
pub fn looks_like_age<R: BufRead>(reader: &mut R) -> io::Result<bool> {
    let head = reader.fill_buf()?;
    Ok(head.starts_with(b"age-encryption.org/")
        || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"))
}

/// A buffered reader sized for the copy loops.
pub fn buffered<R: Read>(r: R) -> BufReader<R> {
    BufReader::with_capacity(BUFFER, r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    /// A header the age crate would take seconds to minutes to parse is refused unparsed, with
    /// the limit it broke; one at the limits still decrypts.
    #[test]
    fn hostile_headers_are_refused_in_one_pass() {
        let id = age::x25519::Identity::generate();
        let right = Unlock::identities(vec![id.clone()]);
        let stanza = "-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
        let mut many = String::from("age-encryption.org/v1\n");
        for _ in 0..16_000 {
            many.push_str(stanza);
        }
        many.push_str("--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        let err = decrypt(many.as_bytes(), &mut Vec::new(), &right).unwrap_err();
        assert!(
            err.to_string().contains("more than 1024 recipient stanzas"),
            "{err}"
        );
        assert!(is_passphrase_file(many.as_bytes()).is_err());

        let mut big = String::from("age-encryption.org/v1\n-> X25519 AAAA\n");
        for _ in 0..(1 << 20) / 64 {
            big.push_str(&"A".repeat(64));
            big.push('\n');
        }
        let err = decrypt(big.as_bytes(), &mut Vec::new(), &right).unwrap_err();
        assert!(
            err.to_string()
                .contains("stanza 1 has a body over 16384 bytes"),
            "{err}"
        );

        let long = format!("age-encryption.org/v1\n-> X25519 {}", "A".repeat(1 << 20));
        let err = decrypt(long.as_bytes(), &mut Vec::new(), &right).unwrap_err();
        assert!(err.to_string().contains("longer than 4096 bytes"), "{err}");

        // The same header armored is checked after the armor is removed.
        let mut armored = Vec::new();
        {
            let mut w = age::armor::ArmoredWriter::wrap_output(
                &mut armored,
                age::armor::Format::AsciiArmor,
            )
            .unwrap();
            w.write_all(many.as_bytes()).unwrap();
            w.finish().unwrap();
        }
        let err = decrypt(armored.as_slice(), &mut Vec::new(), &right).unwrap_err();
        assert!(err.to_string().contains("recipient stanzas"), "{err}");

        // 256 recipients still decrypt.
        let mut keys: Vec<String> = (0..255)
            .map(|_| age::x25519::Identity::generate().to_public().to_string())
            .collect();
        keys.push(id.to_public().to_string());
        let to = Recipients::parse(&keys).unwrap();
        let mut ct = Vec::new();
        encrypt(&mut &b"shared"[..], &mut ct, &to, false).unwrap();
        let mut out = Vec::new();
        decrypt(ct.as_slice(), &mut out, &right).unwrap();
        assert_eq!(out, b"shared");
    }

    #[test]
    fn round_trip_keys_binary_and_armored() {
        let id = age::x25519::Identity::generate();
        let to = Recipients::parse(&[id.to_public().to_string()]).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for armor in [false, true] {
            let mut ct = Vec::new();
            let (n, d) = encrypt(&mut data.as_slice(), &mut ct, &to, armor).unwrap();
            assert_eq!(n, data.len() as u64);
            assert_eq!(ct.starts_with(b"-----BEGIN AGE"), armor);
            let mut pt = Vec::new();
            let unlock = Unlock::identities(vec![id.clone()]);
            let (m, d2) = decrypt(ct.as_slice(), &mut pt, &unlock).unwrap();
            assert_eq!((m, d2), (n, d));
            assert_eq!(pt, data);
        }
    }

    #[test]
    fn wrong_key_tamper_truncation_and_mode_are_errors() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let to = Recipients::parse(&[id.to_public().to_string()]).unwrap();
        let data = vec![7u8; 150_000];
        let mut ct = Vec::new();
        encrypt(&mut data.as_slice(), &mut ct, &to, false).unwrap();
        let mut sink = Vec::new();
        let wrong = Unlock::identities(vec![other]);
        assert!(matches!(
            decrypt(ct.as_slice(), &mut sink, &wrong),
            Err(AgeError::NoMatchingKey)
        ));
        let right = Unlock::identities(vec![id]);
        let mut bad = ct.clone();
        let last = bad.len() - 10;
        bad[last] ^= 1;
        assert!(matches!(
            decrypt(bad.as_slice(), &mut Vec::new(), &right),
            Err(AgeError::Corrupt(_))
        ));
        let cut = &ct[..ct.len() - 70_000];
        assert!(matches!(
            decrypt(cut, &mut Vec::new(), &right),
            Err(AgeError::Corrupt(_))
        ));
        assert!(matches!(
            decrypt(&b"hello world"[..], &mut Vec::new(), &right),
            Err(AgeError::NotAge(_))
        ));
        assert!(matches!(
            decrypt(
                ct.as_slice(),
                &mut Vec::new(),
                &Unlock::passphrase(pass("x"))
            ),
            Err(AgeError::WrongMode(_))
        ));
        assert!(!is_passphrase_file(ct.as_slice()).unwrap());
    }

    #[test]
    fn recipients_and_identities_parse_strictly() {
        assert!(matches!(
            Recipients::parse::<&str>(&[]),
            Err(AgeError::NoRecipients)
        ));
        assert!(matches!(
            Recipients::parse(&["age1nope"]),
            Err(AgeError::BadRecipient(_))
        ));
        let id = age::x25519::Identity::generate();
        let file = format!("# comment\n\n{}\n", id.to_public());
        assert_eq!(Recipients::parse_file(&file).unwrap().len(), 1);
        let Err(err) = parse_identities("# c\nAGE-SECRET-KEY-1XYZ\n") else {
            panic!("a bad identity line parsed")
        };
        assert!(err.to_string().contains("line 2"));
        assert!(!err.to_string().contains("XYZ"));
    }

    #[test]
    fn passphrase_round_trip() {
        let data = b"secret rows\n".repeat(1000);
        let mut ct = Vec::new();
        encrypt(
            &mut data.as_slice(),
            &mut ct,
            &Recipients::Passphrase(pass("correct horse")),
            false,
        )
        .unwrap();
        assert!(is_passphrase_file(ct.as_slice()).unwrap());
        let mut pt = Vec::new();
        decrypt(
            ct.as_slice(),
            &mut pt,
            &Unlock::passphrase(pass("correct horse")),
        )
        .unwrap();
        assert_eq!(pt, data);
        assert!(matches!(
            decrypt(
                ct.as_slice(),
                &mut Vec::new(),
                &Unlock::passphrase(pass("wrong"))
            ),
            Err(AgeError::BadPassphrase)
        ));
    }
}
