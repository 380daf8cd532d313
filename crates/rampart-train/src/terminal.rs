//! Bytes a trainer controls, made safe for a terminal.
//!
//! A trainer's output is relayed to the operator's terminal, and its file names are printed
//! by `train`, `model register` and `model show`. Raw, they could set the window title,
//! write the clipboard (OSC 52), or erase a line and print a fake "verified OK". Here every
//! control character but newline and tab is shown as an escape (`\x1b`, `\u{9b}`), a
//! carriage return not followed by a newline becomes a newline (progress bars stay readable,
//! nothing is overwritten), and invalid UTF-8 is shown as `\xNN`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character escaped (newlines too: a name is one line).
#[must_use]
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape_in_line) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c, true);
    }
    Cow::Owned(out)
}

/// `text` with every control character escaped but newlines and tabs: for messages made of
/// lines, whose untrusted parts were escaped with [`escape`] already.
#[must_use]
pub fn escape_text(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c != '\n' && c != '\t' && needs_escape_in_line(c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c, false);
    }
    Cow::Owned(out)
}

fn needs_escape_in_line(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Bidirectional overrides and isolates reorder what follows them on screen.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

fn push_char(out: &mut String, c: char, in_line: bool) {
    match c {
        '\n' if !in_line => out.push('\n'),
        '\t' => out.push('\t'),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() || is_bidi_control(c) => {
            let n = u32::from(c);
            if n < 0x80 {
                let _ = write!(out, "\\x{n:02x}");
            } else {
                let _ = write!(out, "\\u{{{n:x}}}");
            }
        }
        c => out.push(c),
    }
}

/// A stream filter: feed it chunks as they arrive, get text safe to write to a terminal.
/// UTF-8 sequences split across chunks are kept whole.
#[derive(Debug, Default)]
pub struct Sanitizer {
    pending: Vec<u8>,
    carriage: bool,
}

impl Sanitizer {
    /// A new filter.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters one chunk.
    #[must_use]
    pub fn feed(&mut self, chunk: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(chunk);
        let mut out = String::with_capacity(bytes.len());
        let mut rest: &[u8] = &bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.push_str(&mut out, s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    self.push_str(&mut out, std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete at the end: wait for the next chunk.
                        None => {
                            self.pending = bad.to_vec();
                            break;
                        }
                        Some(n) => {
                            for b in bad.iter().take(n) {
                                let _ = write!(out, "\\x{b:02x}");
                            }
                            rest = bad.get(n..).unwrap_or_default();
                        }
                    }
                }
            }
        }
        out
    }

    /// What is left at the end of the stream.
    #[must_use]
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        for b in std::mem::take(&mut self.pending) {
            let _ = write!(out, "\\x{b:02x}");
        }
        if self.carriage {
            out.push('\n');
            self.carriage = false;
        }
        out
    }

    fn push_str(&mut self, out: &mut String, s: &str) {
        for c in s.chars() {
            if self.carriage {
                self.carriage = false;
                if c == '\n' {
                    out.push('\n');
                    continue;
                }
                // A lone carriage return would let the next text overwrite this line.
                out.push('\n');
            }
            if c == '\r' {
                self.carriage = true;
                continue;
            }
            push_char(out, c, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_every_control_character() {
        assert_eq!(escape("model.safetensors"), "model.safetensors");
        assert_eq!(
            escape("a\nverified OK\x1b[2K\u{9b}31m\u{202e}.onnx"),
            "a\\nverified OK\\x1b[2K\\u{9b}31m\\u{202e}.onnx"
        );
    }

    #[test]
    fn text_keeps_its_lines() {
        assert_eq!(escape_text("a\n\tb\x1b[2K\r"), "a\n\tb\\x1b[2K\\r");
    }

    #[test]
    fn streams_keep_lines_and_lose_escapes() {
        let mut s = Sanitizer::new();
        let mut out =
            s.feed(b"epoch 1\r\x1b[2Ktraining OK\r\n\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07");
        // A multi-byte character split across chunks.
        out.push_str(&s.feed(b"caf\xc3"));
        out.push_str(&s.feed(b"\xa9 \xff\tdone\r"));
        out.push_str(&s.finish());
        assert_eq!(
            out,
            "epoch 1\n\\x1b[2Ktraining OK\n\\x1b]0;pwned\\x07\\x1b]52;c;ZXZpbA==\\x07café \\xff\tdone\n"
        );
        assert!(!out.contains('\x1b') && !out.contains('\r'));
    }
}
