//! NumPy `.npy` headers: `\x93NUMPY`, version, header length, then a Python dict literal
//! `{'descr': …, 'fortran_order': …, 'shape': …}`. An object dtype means the data is a pickle.

/// The longest header accepted.
pub const MAX_HEADER: usize = 1 << 20;

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Offset of the array data (or the pickle, for object arrays).
    pub data_offset: u64,
    /// The `descr` value as written.
    pub descr: String,
    /// Whether the dtype holds Python objects.
    pub object: bool,
}

/// Parses the header at the start of `bytes` (which must hold at least the header).
///
/// # Errors
/// A [`super::FormatError`] saying what is wrong.
pub fn parse(bytes: &[u8]) -> Result<Header, super::FormatError> {
    let major = *bytes.get(6).ok_or("truncated magic")?;
    let (len, start) = match major {
        1 => (
            usize::from(u16::from_le_bytes([
                *bytes.get(8).ok_or("truncated")?,
                *bytes.get(9).ok_or("truncated")?,
            ])),
            10,
        ),
        2 | 3 => {
            let b: [u8; 4] = bytes
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .ok_or("truncated")?;
            (
                usize::try_from(u32::from_le_bytes(b)).unwrap_or(usize::MAX),
                12,
            )
        }
        v => return Err(format!("unknown .npy version {v}").into()),
    };
    if len > MAX_HEADER {
        return Err(format!("header of {len} bytes").into());
    }
    let text = bytes
        .get(start..start + len)
        .ok_or("header longer than the file")?;
    let text = std::str::from_utf8(text).map_err(|_| "header is not text")?;
    let descr_at = text
        .find("'descr'")
        .or_else(|| text.find("\"descr\""))
        .ok_or("no 'descr' in the header")?;
    let rest = text.get(descr_at + 7..).unwrap_or_default();
    let rest = rest
        .trim_start()
        .strip_prefix(':')
        .ok_or("malformed 'descr'")?
        .trim_start();
    // The value runs to the next top-level key.
    let end = [
        "'fortran_order'",
        "'shape'",
        "\"fortran_order\"",
        "\"shape\"",
    ]
    .iter()
    .filter_map(|k| rest.find(k))
    .min()
    .unwrap_or(rest.len());
    let descr = rest
        .get(..end)
        .unwrap_or(rest)
        .trim()
        .trim_end_matches(',')
        .trim()
        .to_owned();
    let object = descr.contains("|O")
        || descr.contains("'O'")
        || descr.contains("\"O\"")
        || descr.contains("<O")
        || descr.contains(">O");
    Ok(Header {
        data_offset: (start + len) as u64,
        descr,
        object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out
    }

    #[test]
    fn object_and_plain_headers() {
        let h = parse(&npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n",
        ))
        .unwrap();
        assert!(h.object);
        assert_eq!(h.data_offset, 10 + 57);
        let h = parse(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n",
        ))
        .unwrap();
        assert!(!h.object);
        let h = parse(&npy(
            "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }",
        ))
        .unwrap();
        assert!(h.object);
        assert!(parse(b"\x93NUMPY\x09\x00").is_err());
        assert!(parse(&npy("{'shape': (1,)}")).is_err());
    }
}
