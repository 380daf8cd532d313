//! A strict, streaming RFC 4180 record reader that reports malformed records one by one.
//!
//! General CSV readers repair what they cannot parse (a stray quote becomes data, an
//! unterminated quote swallows the rest of the file). A validator must instead say which record
//! is broken and carry on with the next one, and must never hold more than a bounded window of
//! the file in memory. This reader:
//!
//! * accepts LF and CRLF line ends, a UTF-8 byte-order mark at the start, quoted fields with
//!   `""` escapes and embedded line breaks;
//! * reports, as a [`Malformed`] record with its raw bytes and line number, a quote inside an
//!   unquoted field, a closing quote followed by anything but a delimiter or line end, and a
//!   quoted field that never closes (within [`ReaderOptions::max_record_bytes`]);
//! * after a malformed record resumes at the next line, so one bad quote costs one line, not
//!   the rest of the file;
//! * leaves UTF-8 checking and field counts to the caller (they are rules with columns).
//!
//! Memory is one buffer of `max(1 MiB, 2 × max_record_bytes)`.

use std::io::{self, Read};
use std::ops::Range;

/// Reader limits.
#[derive(Debug, Clone, Copy)]
pub struct ReaderOptions {
    /// The longest record accepted, in bytes; a longer one is reported as malformed.
    pub max_record_bytes: usize,
    /// The field delimiter.
    pub delimiter: u8,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            max_record_bytes: 1 << 20,
            delimiter: b',',
        }
    }
}

const CHUNK: usize = 1 << 20;

/// One field of the current record, as a range of the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    start: usize,
    end: usize,
    /// Quoted with `""` escapes inside: the bytes need unescaping.
    escaped: bool,
}

/// Why a record is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A `"` inside a field that does not start with one.
    QuoteInUnquotedField,
    /// A closing quote followed by something other than a delimiter or a line end.
    TextAfterClosingQuote,
    /// A quoted field that is still open at the end of the file.
    UnterminatedQuote,
    /// The record is longer than the limit.
    TooLong,
}

impl Malformed {
    /// A message for people.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::QuoteInUnquotedField => {
                "a quote inside an unquoted field (quote the whole field and double inner quotes)"
            }
            Self::TextAfterClosingQuote => {
                "text after a closing quote (inner quotes must be doubled)"
            }
            Self::UnterminatedQuote => "a quoted field that never closes",
            Self::TooLong => "the record is longer than the limit (see --max-row-bytes)",
        }
    }
}

/// What [`RecordReader::next_record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A well-formed record; read its fields with [`RecordReader::field`].
    Record,
    /// A malformed record; [`RecordReader::raw`] holds its bytes (up to the line end where
    /// reading resumes).
    Malformed(Malformed),
    /// The end of the input.
    End,
}

/// The reader.
pub struct RecordReader<R> {
    input: R,
    opts: ReaderOptions,
    buf: Vec<u8>,
    /// Start of unconsumed data.
    pos: usize,
    /// End of valid data.
    end: usize,
    eof: bool,
    /// Line number (1-based) where the next record starts.
    next_line: u64,
    /// Line where the current record started.
    record_line: u64,
    /// The current record's raw bytes (without its line terminator).
    raw: Range<usize>,
    fields: Vec<Field>,
    unescaped: Vec<u8>,
    /// Whether the record being parsed has a quoted field with a line break.
    multiline: bool,
    /// The kept prefix of an over-long malformed record.
    spill: Vec<u8>,
    raw_spilled: bool,
    bytes_read: u64,
    started: bool,
}

impl<R: Read> RecordReader<R> {
    /// A reader over `input`.
    pub fn new(input: R, opts: ReaderOptions) -> Self {
        let cap = CHUNK.max(opts.max_record_bytes.saturating_mul(2));
        Self {
            input,
            opts,
            buf: vec![0; cap],
            pos: 0,
            end: 0,
            eof: false,
            next_line: 1,
            record_line: 1,
            raw: 0..0,
            fields: Vec::new(),
            unescaped: Vec::new(),
            spill: Vec::new(),
            raw_spilled: false,
            multiline: false,
            bytes_read: 0,
            started: false,
        }
    }

    /// The line (1-based) on which the current record starts.
    #[must_use]
    pub const fn line(&self) -> u64 {
        self.record_line
    }

    /// Bytes read from the input so far.
    #[must_use]
    pub const fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The current record's bytes, without its line terminator (for an over-long malformed
    /// record: its first `max_record_bytes`).
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        if self.raw_spilled {
            return &self.spill;
        }
        self.buf.get(self.raw.clone()).unwrap_or_default()
    }

    /// The number of fields of the current (well-formed) record.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the current record has no fields (never true after [`Next::Record`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `i` of the current record, unescaped.
    #[must_use]
    pub fn field(&mut self, i: usize) -> &[u8] {
        let Some(f) = self.fields.get(i).copied() else {
            return &[];
        };
        let bytes = self.buf.get(f.start..f.end).unwrap_or_default();
        if !f.escaped {
            return bytes;
        }
        self.unescaped.clear();
        let mut quote = false;
        for &b in bytes {
            if b == b'"' && quote {
                quote = false;
                continue;
            }
            quote = b == b'"';
            self.unescaped.push(b);
        }
        &self.unescaped
    }

    /// Field `i` without unescaping and a flag saying whether it needs it; for callers that
    /// look at many fields of one record.
    #[must_use]
    pub fn field_raw(&self, i: usize) -> (&[u8], bool) {
        self.fields.get(i).map_or((&[][..], false), |f| {
            (self.buf.get(f.start..f.end).unwrap_or_default(), f.escaped)
        })
    }

    /// Field `i`'s byte range within [`RecordReader::raw`], and whether it needs unescaping.
    #[must_use]
    pub fn field_span(&self, i: usize) -> Option<(usize, usize, bool)> {
        let f = self.fields.get(i)?;
        Some((
            f.start.checked_sub(self.raw.start)?,
            f.end.checked_sub(self.raw.start)?,
            f.escaped,
        ))
    }

    /// Reads more input, keeping the bytes from `keep` on (moved to the front). Returns the
    /// shift applied to indices and whether anything was read.
    fn refill(&mut self, keep: usize) -> io::Result<(usize, bool)> {
        if self.eof {
            return Ok((0, false));
        }
        let shift = keep;
        if keep > 0 {
            self.buf.copy_within(keep..self.end, 0);
            self.end -= keep;
            self.pos -= keep.min(self.pos);
        }
        if self.end == self.buf.len() {
            return Ok((shift, false));
        }
        let n = loop {
            match self
                .input
                .read(self.buf.get_mut(self.end..).unwrap_or_default())
            {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        self.bytes_read += n as u64;
        Ok((shift, n > 0))
    }

    /// Reads the next record.
    ///
    /// # Errors
    /// I/O errors of the input only; bad CSV is a [`Next::Malformed`].
    pub fn next_record(&mut self) -> io::Result<Next> {
        if !self.started {
            self.started = true;
            while self.end < 3 && !self.eof {
                self.refill(0)?;
            }
            if self.buf.get(..3) == Some(&b"\xEF\xBB\xBF"[..]) && self.end >= 3 {
                self.pos = 3;
            }
        }
        loop {
            if self.pos == self.end {
                if self.eof {
                    return Ok(Next::End);
                }
                let keep = self.pos;
                self.refill(keep)?;
                continue;
            }
            match self.parse_at(self.pos) {
                Parse::Done { end, .. } if end - self.pos > self.opts.max_record_bytes => {
                    self.malformed(self.pos)?;
                    return Ok(Next::Malformed(Malformed::TooLong));
                }
                Parse::Done { end, next } => {
                    self.finish(self.pos, end, next);
                    return Ok(Next::Record);
                }
                // Whatever the parse concluded, a record whose deciding byte lies beyond the
                // limit is too long: the same verdict however the input was split into reads.
                Parse::Bad { decided, .. } if decided - self.pos > self.opts.max_record_bytes => {
                    self.malformed(self.pos)?;
                    return Ok(Next::Malformed(Malformed::TooLong));
                }
                Parse::Bad { kind, at, .. } => {
                    self.malformed(at)?;
                    return Ok(Next::Malformed(kind));
                }
                Parse::NeedMore { open_quote } => {
                    let start = self.pos;
                    if self.end - start > self.opts.max_record_bytes {
                        self.malformed(start)?;
                        return Ok(Next::Malformed(Malformed::TooLong));
                    }
                    if self.eof {
                        // Resume after the line on which the open quote (or the record) began.
                        self.malformed(open_quote.unwrap_or(start))?;
                        return Ok(Next::Malformed(Malformed::UnterminatedQuote));
                    }
                    self.refill(start)?;
                }
            }
        }
    }

    /// Ends the current record at `end` (its terminator excluded); reading resumes at `next`.
    fn finish(&mut self, start: usize, end: usize, next: usize) {
        self.raw_spilled = false;
        self.record_line = self.next_line;
        let consumed = self.buf.get(start..next).unwrap_or_default();
        // Only a quoted field can hold a line break; most records have one line.
        self.next_line += if self.multiline || self.fields.is_empty() {
            memchr::memchr_iter(b'\n', consumed).count() as u64
        } else {
            u64::from(consumed.last() == Some(&b'\n'))
        };
        self.raw = start..end;
        self.pos = next;
    }

    /// Reports the record starting at `self.pos` as malformed, its extent running to the end of
    /// the line containing `at`, and skips past it (reading more input if the line is long).
    fn malformed(&mut self, at: usize) -> io::Result<()> {
        let mut start = self.pos;
        self.fields.clear();
        let mut at = at;
        loop {
            let hay = self.buf.get(at..self.end).unwrap_or_default();
            if let Some(i) = memchr::memchr(b'\n', hay) {
                let nl = at + i;
                let end = if nl > start && self.buf.get(nl - 1) == Some(&b'\r') {
                    nl - 1
                } else {
                    nl
                };
                if end - start <= self.opts.max_record_bytes {
                    self.finish(start, end, nl + 1);
                    return Ok(());
                }
            }
            if self.eof || self.end - start >= self.opts.max_record_bytes {
                // The line is too long to keep: keep its first max_record_bytes, skip the rest.
                let end = self.end.min(start + self.opts.max_record_bytes);
                self.record_line = self.next_line;
                self.spill.clear();
                self.spill
                    .extend_from_slice(self.buf.get(start..end).unwrap_or_default());
                self.raw_spilled = true;
                return self.skip_line(start);
            }
            // The refill moves the record to the front of the buffer.
            let (shift, _) = self.refill(start)?;
            at -= shift;
            start -= shift;
        }
    }

    /// Discards input from `from` up to and including the next line feed, counting lines.
    fn skip_line(&mut self, from: usize) -> io::Result<()> {
        self.pos = from;
        loop {
            let hay = self.buf.get(self.pos..self.end).unwrap_or_default();
            if let Some(i) = memchr::memchr(b'\n', hay) {
                self.pos += i + 1;
                self.next_line += 1;
                return Ok(());
            }
            self.pos = self.end;
            if self.eof {
                return Ok(());
            }
            let keep = self.pos;
            self.refill(keep)?;
        }
    }

    /// Parses one record starting at `s` within the buffered bytes.
    fn parse_at(&mut self, s: usize) -> Parse {
        self.fields.clear();
        self.multiline = false;
        let d = self.opts.delimiter;
        let buf = self.buf.get(..self.end).unwrap_or_default();
        let mut i = s;
        loop {
            // At the start of a field.
            if buf.get(i) == Some(&b'"') {
                let open = i;
                let mut j = i + 1;
                let mut escaped = false;
                loop {
                    let Some(q) = memchr::memchr(b'"', buf.get(j..).unwrap_or_default()) else {
                        return Parse::NeedMore {
                            open_quote: Some(open),
                        };
                    };
                    let q = j + q;
                    match buf.get(q + 1) {
                        Some(&b'"') => {
                            escaped = true;
                            j = q + 2;
                        }
                        None if !self.eof => {
                            return Parse::NeedMore {
                                open_quote: Some(open),
                            };
                        }
                        next => {
                            self.fields.push(Field {
                                start: open + 1,
                                end: q,
                                escaped,
                            });
                            self.multiline |=
                                memchr::memchr(b'\n', buf.get(open..q).unwrap_or_default())
                                    .is_some();
                            match next {
                                Some(&c) if c == d => {
                                    i = q + 2;
                                    break;
                                }
                                Some(&b'\n') => {
                                    return Parse::Done {
                                        end: q + 1,
                                        next: q + 2,
                                    };
                                }
                                Some(&b'\r') => match buf.get(q + 2) {
                                    Some(&b'\n') => {
                                        return Parse::Done {
                                            end: q + 1,
                                            next: q + 3,
                                        };
                                    }
                                    None if !self.eof => {
                                        return Parse::NeedMore { open_quote: None };
                                    }
                                    _ => return bad_close(buf, open, q),
                                },
                                None => {
                                    return Parse::Done {
                                        end: q + 1,
                                        next: q + 1,
                                    };
                                }
                                Some(_) => return bad_close(buf, open, q),
                            }
                        }
                    }
                }
                continue;
            }
            // An unquoted field.
            let rest = buf.get(i..).unwrap_or_default();
            match memchr::memchr3(d, b'\n', b'"', rest) {
                Some(k) => {
                    let at = i + k;
                    match buf.get(at) {
                        Some(&b'"') => {
                            return Parse::Bad {
                                kind: Malformed::QuoteInUnquotedField,
                                at,
                                decided: at,
                            };
                        }
                        Some(&b'\n') => {
                            let end = if at > i && buf.get(at - 1) == Some(&b'\r') {
                                at - 1
                            } else {
                                at
                            };
                            self.fields.push(Field {
                                start: i,
                                end,
                                escaped: false,
                            });
                            return Parse::Done { end, next: at + 1 };
                        }
                        _ => {
                            self.fields.push(Field {
                                start: i,
                                end: at,
                                escaped: false,
                            });
                            i = at + 1;
                        }
                    }
                }
                None if self.eof => {
                    let end = if buf.last() == Some(&b'\r') && buf.len() > i {
                        buf.len() - 1
                    } else {
                        buf.len()
                    };
                    self.fields.push(Field {
                        start: i,
                        end,
                        escaped: false,
                    });
                    return Parse::Done {
                        end,
                        next: buf.len(),
                    };
                }
                None => return Parse::NeedMore { open_quote: None },
            }
        }
    }
}

/// A closing quote at `q` followed by text. When the quoted field began on an earlier line the
/// opening quote was the mistake (an unbalanced quote that swallowed line ends), so reading
/// resumes after the line where it opened; otherwise after the current line.
fn bad_close(buf: &[u8], open: usize, q: usize) -> Parse {
    let spans_lines = memchr::memchr(b'\n', buf.get(open..q).unwrap_or_default()).is_some();
    Parse::Bad {
        kind: Malformed::TextAfterClosingQuote,
        at: if spans_lines { open } else { q + 1 },
        decided: q + 1,
    }
}

enum Parse {
    Done {
        end: usize,
        next: usize,
    },
    /// `at`: where to resume from (the end of its line); `decided`: the byte that made the
    /// record malformed.
    Bad {
        kind: Malformed,
        at: usize,
        decided: usize,
    },
    NeedMore {
        open_quote: Option<usize>,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// (line, Ok(fields) | Err((kind, raw))) for every record.
    type Rows = Vec<(u64, Result<Vec<String>, (Malformed, String)>)>;

    fn read_with(input: &[u8], opts: ReaderOptions, chunk: usize) -> Rows {
        // A reader that hands out `chunk` bytes at a time, to cross every buffer boundary.
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = RecordReader::new(Dribble(input, chunk), opts);
        let mut out = Vec::new();
        loop {
            match r.next_record().unwrap() {
                Next::End => return out,
                Next::Record => {
                    let fields = (0..r.len())
                        .map(|i| String::from_utf8_lossy(r.field(i)).into_owned())
                        .collect();
                    out.push((r.line(), Ok(fields)));
                }
                Next::Malformed(k) => {
                    out.push((
                        r.line(),
                        Err((k, String::from_utf8_lossy(r.raw()).into_owned())),
                    ));
                }
            }
        }
    }

    fn read(input: &[u8]) -> Rows {
        let all = read_with(input, ReaderOptions::default(), usize::MAX);
        for chunk in [1, 2, 3, 7] {
            assert_eq!(
                read_with(input, ReaderOptions::default(), chunk),
                all,
                "chunk {chunk}"
            );
        }
        all
    }

    fn ok(fields: &[&str]) -> Result<Vec<String>, (Malformed, String)> {
        Ok(fields.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn plain_quoted_crlf_bom_and_multiline() {
        let rows = read(
            b"\xEF\xBB\xBFa,b,c\r\n1,\"x,y\",3\r\n\"he said \"\"hi\"\"\",,\"two\nlines\"\n4,5,6",
        );
        assert_eq!(rows[0], (1, ok(&["a", "b", "c"])));
        assert_eq!(rows[1], (2, ok(&["1", "x,y", "3"])));
        assert_eq!(rows[2], (3, ok(&["he said \"hi\"", "", "two\nlines"])));
        assert_eq!(rows[3], (5, ok(&["4", "5", "6"])));
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn empty_lines_and_trailing_delimiters_are_records() {
        let rows = read(b"a,b\n\n1,\n\"\",\"\"\n");
        assert_eq!(
            rows,
            vec![
                (1, ok(&["a", "b"])),
                (2, ok(&[""])),
                (3, ok(&["1", ""])),
                (4, ok(&["", ""])),
            ]
        );
    }

    #[test]
    fn bad_quotes_cost_one_line() {
        let rows = read(b"a,b\n1,ab\"c\n2,\"x\"y\n3,\"ok\"\r\n4,\"open\n5,z\n");
        assert_eq!(rows[0], (1, ok(&["a", "b"])));
        assert_eq!(
            rows[1],
            (2, Err((Malformed::QuoteInUnquotedField, "1,ab\"c".into())))
        );
        assert_eq!(
            rows[2],
            (
                3,
                Err((Malformed::TextAfterClosingQuote, "2,\"x\"y".into()))
            )
        );
        assert_eq!(rows[3], (4, ok(&["3", "ok"])));
        assert_eq!(
            rows[4],
            (5, Err((Malformed::UnterminatedQuote, "4,\"open".into())))
        );
        assert_eq!(rows[5], (6, ok(&["5", "z"])));
        assert_eq!(rows.len(), 6);
    }

    #[test]
    fn a_bad_last_record_without_a_line_end_keeps_its_bytes() {
        // Found by the csv_validate fuzz target: the refill that discovers the end of the
        // input moves the record, and the record's start must move with it.
        let rows = read(b"a,b\n2,\"x\"y");
        assert_eq!(
            rows[1],
            (
                2,
                Err((Malformed::TextAfterClosingQuote, "2,\"x\"y".into()))
            )
        );
    }

    #[test]
    fn the_length_verdict_does_not_depend_on_read_sizes() {
        // Found by the csv_validate fuzz target: a quoted field that spans lines and then
        // breaks past the limit was "quoting" when read whole and "too long" when read in
        // pieces. Records of exactly the limit pass either way.
        let opts = ReaderOptions {
            max_record_bytes: 16,
            ..ReaderOptions::default()
        };
        let input = b"a,b\n1,\"xxxxxx\nyyyyyyyyyy\"z,2\n0123456789abcdef\n3,4\n\"open,5";
        let whole = read_with(input, opts, usize::MAX);
        for chunk in 1..40 {
            assert_eq!(read_with(input, opts, chunk), whole, "chunk {chunk}");
        }
        assert!(
            matches!(whole[1], (2, Err((Malformed::TooLong, _)))),
            "{whole:?}"
        );
        assert_eq!(whole.iter().filter(|r| r.1.is_ok()).count(), 3, "{whole:?}");
    }

    #[test]
    fn over_long_records_are_reported_and_skipped() {
        let opts = ReaderOptions {
            max_record_bytes: 16,
            ..ReaderOptions::default()
        };
        let mut input = b"a,b\n".to_vec();
        input.extend_from_slice(&[b'x'; 5000]);
        input.extend_from_slice(b",1\n\"");
        input.extend_from_slice(&[b'y'; 5000]);
        input.extend_from_slice(b"\n2,3\n");
        for chunk in [usize::MAX, 1000, 7] {
            let rows = read_with(&input, opts, chunk);
            assert_eq!(rows[0], (1, ok(&["a", "b"])));
            assert!(
                matches!(rows[1], (2, Err((Malformed::TooLong, _)))),
                "{chunk}"
            );
            assert!(
                matches!(rows[2], (3, Err((Malformed::TooLong, _)))),
                "{chunk}"
            );
            assert_eq!(rows[3], (4, ok(&["2", "3"])), "{chunk}");
            assert_eq!(rows.len(), 4);
        }
    }
}
