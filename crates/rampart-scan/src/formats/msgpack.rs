//! MessagePack (`.msgpack`: Flax/JAX `flax.serialization.to_bytes`, and other data dumps). The
//! format holds data only — maps, arrays, numbers, strings, binary, and extension blobs that
//! Flax decodes to NumPy arrays without unpickling — so a file that is one well-formed
//! MessagePack value, end to end, is what it claims to be. The walk streams: payloads are
//! skipped by seeking, nesting and counts are bounded.

use std::io::{self, Read, Seek, SeekFrom};

/// Deepest nesting walked.
pub const MAX_DEPTH: usize = 256;
/// Most values walked.
pub const MAX_VALUES: u64 = 100_000_000;

fn byte(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn be(r: &mut impl Read, n: usize) -> io::Result<u64> {
    let mut b = [0u8; 8];
    let dst = b
        .get_mut(8 - n..)
        .ok_or_else(|| io::Error::other("bad width"))?;
    r.read_exact(dst)?;
    Ok(u64::from_be_bytes(b))
}

/// Whether the reader holds exactly one well-formed MessagePack value of `len` bytes. `Ok(false)`
/// for anything else (truncated, trailing bytes, a reserved type byte, limits exceeded).
///
/// # Errors
/// Only for I/O errors other than end of file.
pub fn is_msgpack<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<bool> {
    // Values still to read at each open level.
    let mut pending: Vec<u64> = vec![1];
    let mut seen = 0u64;
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        seen += 1;
        if seen > MAX_VALUES {
            return Ok(false);
        }
        let b = match byte(r) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        };
        // (bytes to skip, child values to read)
        let step: Result<(u64, u64), io::Error> = (|| {
            Ok(match b {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, u64::from(b & 0x0f) * 2),
                0x90..=0x9f => (0, u64::from(b & 0x0f)),
                0xa0..=0xbf => (u64::from(b & 0x1f), 0),
                0xc4 | 0xd9 => (be(r, 1)?, 0),
                0xc5 | 0xda => (be(r, 2)?, 0),
                0xc6 | 0xdb => (be(r, 4)?, 0),
                0xc7 => (be(r, 1)? + 1, 0),
                0xc8 => (be(r, 2)? + 1, 0),
                0xc9 => (be(r, 4)? + 1, 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, be(r, 2)?),
                0xdd => (0, be(r, 4)?),
                0xde => (0, be(r, 2)? * 2),
                0xdf => (0, be(r, 4)? * 2),
                // 0xc1 is never used.
                _ => return Err(io::Error::other("reserved")),
            })
        })();
        let (skip, children) = match step {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Other => return Ok(false),
            Err(e) => return Err(e),
        };
        if skip > 0 {
            let at = r.stream_position()?;
            if at.checked_add(skip).is_none_or(|end| end > len) {
                return Ok(false);
            }
            r.seek(SeekFrom::Current(i64::try_from(skip).unwrap_or(i64::MAX)))?;
        }
        if children > 0 {
            if pending.len() >= MAX_DEPTH || children > MAX_VALUES {
                return Ok(false);
            }
            pending.push(children);
        }
    }
    Ok(r.stream_position()? == len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(bytes: &[u8]) -> bool {
        is_msgpack(&mut io::Cursor::new(bytes), bytes.len() as u64).unwrap()
    }

    #[test]
    fn well_formed_values_pass_and_anything_else_fails() {
        // {"params": {"kernel": ext(1, 4 bytes)}, "step": 3}
        let flax = [
            0x82, 0xa6, b'p', b'a', b'r', b'a', b'm', b's', 0x81, 0xa6, b'k', b'e', b'r', b'n',
            b'e', b'l', 0xd6, 0x01, 1, 2, 3, 4, 0xa4, b's', b't', b'e', b'p', 0x03,
        ];
        assert!(check(&flax));
        assert!(check(&[0xc4, 0x02, 0xff, 0xfe]));
        assert!(!check(&flax[..flax.len() - 1]), "truncated");
        let mut trailing = flax.to_vec();
        trailing.push(0x00);
        assert!(!check(&trailing), "trailing bytes");
        assert!(!check(&[0xc1]), "reserved byte");
        assert!(
            !check(&[0xc6, 0xff, 0xff, 0xff, 0xff]),
            "a length past the end"
        );
        assert!(
            !check(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            "more values than the limit"
        );
        assert!(!check(&vec![0x91; 300]), "nested too deeply");
        assert!(!check(b"\x80\x04\x95"), "a pickle is not msgpack");
    }
}
