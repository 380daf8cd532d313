//! A zip walker for scanning, not extracting: it reads the central directory *and* walks the
//! local headers, so an entry that only one of them lists is still scanned. Misleading flag
//! bits, CRC mismatches, name mismatches and duplicate names are reported, never trusted; every
//! copy of a duplicated name is scanned.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};

/// Most entries read from one archive.
pub const MAX_ENTRIES: usize = 200_000;
/// The most central-directory bytes read into memory (200,000 entries need far less).
pub const MAX_CENTRAL_BYTES: u64 = 32 << 20;
/// Longest entry name.
const MAX_NAME: usize = 65_535;

/// One entry as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name used for reporting (the central directory's when both exist).
    pub name: String,
    /// The local header's name, if a local header was read.
    pub local_name: Option<String>,
    /// Offset of the local header.
    pub header_offset: u64,
    /// Offset of the data.
    pub data_offset: u64,
    /// Compressed size.
    pub compressed: u64,
    /// Uncompressed size (as declared).
    pub uncompressed: u64,
    /// Compression method.
    pub method: u16,
    /// General purpose flags.
    pub flags: u16,
    /// Declared CRC-32.
    pub crc: u32,
    /// Listed in the central directory.
    pub in_central: bool,
    /// Found by walking local headers.
    pub in_local: bool,
}

/// A structural problem (the caller turns these into findings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirk {
    /// Rule id.
    pub rule: &'static str,
    /// Message.
    pub message: String,
}

/// The entries of an archive and its quirks.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every entry found, in file order.
    pub entries: Vec<Entry>,
    /// Problems found while listing.
    pub quirks: Vec<Quirk>,
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([*b.get(at).unwrap_or(&0), *b.get(at + 1).unwrap_or(&0)])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from(u16le(b, at)) | (u32::from(u16le(b, at + 2)) << 16)
}

fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from(u32le(b, at)) | (u64::from(u32le(b, at + 4)) << 32)
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, n: usize) -> std::io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(n.min(1 << 20));
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Applies the zip64 extra field (0x0001) to sizes/offset that were 0xFFFFFFFF.
fn zip64(extra: &[u8], usize_: &mut u64, csize: &mut u64, offset: &mut u64) {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = u16le(extra, i);
        let len = usize::from(u16le(extra, i + 2));
        let body = extra.get(i + 4..i + 4 + len).unwrap_or_default();
        if id == 1 {
            let mut j = 0;
            for field in [usize_, csize, offset] {
                if *field == 0xFFFF_FFFF && j + 8 <= body.len() {
                    *field = u64le(body, j);
                    j += 8;
                }
            }
            return;
        }
        i += 4 + len;
    }
}

/// Lists an archive of `len` bytes.
///
/// # Errors
/// I/O errors only; structural problems become quirks.
pub fn list<R: Read + Seek>(r: &mut R, len: u64) -> std::io::Result<Listing> {
    let mut out = Listing::default();
    let central = read_central(r, len, &mut out.quirks)?;
    let mut by_offset: HashMap<u64, usize> = HashMap::new();
    for (i, e) in central.iter().enumerate() {
        by_offset.insert(e.header_offset, i);
    }
    let cd_start = central_start(r, len)?.unwrap_or(len);
    let mut entries: Vec<Entry> = central;

    // Walk the local headers in sequence from the start.
    let mut pos = 0u64;
    let mut walked = 0usize;
    while pos + 30 <= cd_start && walked < MAX_ENTRIES {
        let head = read_at(r, pos, 30)?;
        if u32le(&head, 0) != 0x0403_4b50 {
            // Not a local header where one should be: look for the next one in the gap.
            match find_signature(r, pos + 1, cd_start)? {
                Some(next) => {
                    pos = next;
                    continue;
                }
                None => break,
            }
        }
        walked += 1;
        let flags = u16le(&head, 6);
        let method = u16le(&head, 8);
        let crc = u32le(&head, 14);
        let mut csize = u64::from(u32le(&head, 18));
        let mut usize_ = u64::from(u32le(&head, 22));
        let name_len = usize::from(u16le(&head, 26));
        let extra_len = usize::from(u16le(&head, 28));
        let name_bytes = read_at(r, pos + 30, name_len.min(MAX_NAME))?;
        let extra = read_at(r, pos + 30 + name_len as u64, extra_len)?;
        let mut dummy = 0;
        zip64(&extra, &mut usize_, &mut csize, &mut dummy);
        let local_name = String::from_utf8_lossy(&name_bytes).into_owned();
        let data_offset = pos + 30 + name_len as u64 + extra_len as u64;
        let known = by_offset.get(&pos).copied();
        let size = match known.and_then(|i| entries.get(i)) {
            Some(e) => e.compressed,
            None if flags & 0x08 != 0 && csize == 0 => {
                // Sizes follow the data: find where the next record begins.
                find_signature(r, data_offset, cd_start)?
                    .unwrap_or(cd_start)
                    .saturating_sub(data_offset)
            }
            None => csize,
        };
        if let Some(e) = known.and_then(|i| entries.get_mut(i)) {
            e.in_local = true;
            e.data_offset = data_offset;
            e.local_name = Some(local_name.clone());
            if local_name != e.name {
                out.quirks.push(Quirk {
                    rule: "zip-name-mismatch",
                    message: format!("entry at offset {pos} is {:?} in the central directory but {local_name:?} in its local header", e.name),
                });
            }
        } else {
            out.quirks.push(Quirk {
                rule: "zip-entry-hidden",
                message: format!("entry {local_name:?} at offset {pos} is not in the central directory (most tools will not show it; some loaders use it)"),
            });
            entries.push(Entry {
                name: local_name.clone(),
                local_name: Some(local_name),
                header_offset: pos,
                data_offset,
                compressed: size,
                uncompressed: usize_,
                method,
                flags,
                crc,
                in_central: false,
                in_local: true,
            });
        }
        let mut next = data_offset.saturating_add(size);
        if flags & 0x08 != 0 {
            // Optional data descriptor (with or without its signature).
            let dd = read_at(r, next, 4)?;
            next += if u32le(&dd, 0) == 0x0807_4b50 { 16 } else { 12 };
            if let Some(found) = find_signature(r, next.saturating_sub(16), cd_start)?
                && found >= next.saturating_sub(16)
                && found <= next + 8
            {
                next = found;
            }
        }
        if next <= pos {
            break;
        }
        pos = next;
    }
    // Central entries whose local header the walk never reached (overlapping or out of order).
    for e in &mut entries {
        if e.in_central && !e.in_local {
            let head = read_at(r, e.header_offset, 30)?;
            if u32le(&head, 0) == 0x0403_4b50 {
                let name_len = u64::from(u16le(&head, 26));
                let extra_len = u64::from(u16le(&head, 28));
                e.data_offset = e.header_offset + 30 + name_len + extra_len;
                let name = read_at(
                    r,
                    e.header_offset + 30,
                    usize::try_from(name_len).unwrap_or(0),
                )?;
                let local = String::from_utf8_lossy(&name).into_owned();
                if local != e.name {
                    out.quirks.push(Quirk {
                        rule: "zip-name-mismatch",
                        message: format!("entry {:?}: local header says {local:?}", e.name),
                    });
                }
                e.local_name = Some(local);
            } else {
                out.quirks.push(Quirk {
                    rule: "zip-entry-hidden",
                    message: format!(
                        "entry {:?} points at offset {} where there is no local header",
                        e.name, e.header_offset
                    ),
                });
            }
        }
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &entries {
        *seen.entry(e.name.as_str()).or_default() += 1;
    }
    for (name, n) in seen {
        if n > 1 {
            out.quirks.push(Quirk {
                rule: "zip-duplicate-entry",
                message: format!("{n} entries are named {name:?}; every copy was scanned"),
            });
        }
    }
    for e in &entries {
        if e.name.starts_with('/')
            || e.name.split(['/', '\\']).any(|c| c == "..")
            || e.name.contains('\0')
        {
            out.quirks.push(Quirk {
                rule: "zip-path-traversal",
                message: format!("entry name {:?} escapes the archive", e.name),
            });
        }
    }
    entries.sort_by_key(|e| e.header_offset);
    out.entries = entries;
    Ok(out)
}

fn find_eocd<R: Read + Seek>(r: &mut R, len: u64) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let window = len.min(65_557);
    let tail = read_at(r, len - window, usize::try_from(window).unwrap_or(0))?;
    let Some(i) = tail.windows(4).rposition(|w| w == [0x50, 0x4b, 0x05, 0x06]) else {
        return Ok(None);
    };
    Ok(Some((
        len - window + i as u64,
        tail.get(i..).unwrap_or_default().to_vec(),
    )))
}

fn central_start<R: Read + Seek>(r: &mut R, len: u64) -> std::io::Result<Option<u64>> {
    Ok(central_bounds(r, len)?.map(|(start, _, _)| start))
}

/// (central directory offset, size, entry count), zip64-aware.
fn central_bounds<R: Read + Seek>(r: &mut R, len: u64) -> std::io::Result<Option<(u64, u64, u64)>> {
    let Some((eocd_at, eocd)) = find_eocd(r, len)? else {
        return Ok(None);
    };
    let mut count = u64::from(u16le(&eocd, 10));
    let mut size = u64::from(u32le(&eocd, 12));
    let mut offset = u64::from(u32le(&eocd, 16));
    if (offset == 0xFFFF_FFFF || count == 0xFFFF || size == 0xFFFF_FFFF) && eocd_at >= 20 {
        let loc = read_at(r, eocd_at - 20, 20)?;
        if u32le(&loc, 0) == 0x0706_4b50 {
            let rec = read_at(r, u64le(&loc, 8), 56)?;
            if u32le(&rec, 0) == 0x0606_4b50 {
                count = u64le(&rec, 32);
                size = u64le(&rec, 40);
                offset = u64le(&rec, 48);
            }
        }
    }
    Ok(Some((offset.min(len), size, count)))
}

fn read_central<R: Read + Seek>(
    r: &mut R,
    len: u64,
    quirks: &mut Vec<Quirk>,
) -> std::io::Result<Vec<Entry>> {
    let Some((offset, size, count)) = central_bounds(r, len)? else {
        quirks.push(Quirk {
            rule: "zip-entry-hidden",
            message: "no central directory: entries were found from local headers only".into(),
        });
        return Ok(Vec::new());
    };
    if size > MAX_CENTRAL_BYTES {
        quirks.push(Quirk {
            rule: "zip-entry-hidden",
            message: format!("the central directory claims {size} bytes; only the first {MAX_CENTRAL_BYTES} were read (the local-header walk still finds every entry)"),
        });
    }
    let cd = read_at(
        r,
        offset,
        usize::try_from(size.min(MAX_CENTRAL_BYTES)).unwrap_or(0),
    )?;
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + 46 <= cd.len() && out.len() < MAX_ENTRIES && (out.len() as u64) < count.max(1) * 2 {
        if u32le(&cd, i) != 0x0201_4b50 {
            break;
        }
        let flags = u16le(&cd, i + 8);
        let method = u16le(&cd, i + 10);
        let crc = u32le(&cd, i + 16);
        let mut csize = u64::from(u32le(&cd, i + 20));
        let mut usize_ = u64::from(u32le(&cd, i + 24));
        let name_len = usize::from(u16le(&cd, i + 28));
        let extra_len = usize::from(u16le(&cd, i + 30));
        let comment_len = usize::from(u16le(&cd, i + 32));
        let mut header_offset = u64::from(u32le(&cd, i + 42));
        let name = String::from_utf8_lossy(cd.get(i + 46..i + 46 + name_len).unwrap_or_default())
            .into_owned();
        let extra = cd
            .get(i + 46 + name_len..i + 46 + name_len + extra_len)
            .unwrap_or_default();
        zip64(extra, &mut usize_, &mut csize, &mut header_offset);
        out.push(Entry {
            name,
            local_name: None,
            header_offset,
            data_offset: 0,
            compressed: csize,
            uncompressed: usize_,
            method,
            flags,
            crc,
            in_central: true,
            in_local: false,
        });
        i += 46 + name_len + extra_len + comment_len;
    }
    if (out.len() as u64) != count {
        quirks.push(Quirk {
            rule: "zip-entry-hidden",
            message: format!(
                "the end record announces {count} entries but the central directory lists {}",
                out.len()
            ),
        });
    }
    Ok(out)
}

/// The next local-header signature at or after `from`, before `end`.
fn find_signature<R: Read + Seek>(r: &mut R, from: u64, end: u64) -> std::io::Result<Option<u64>> {
    let mut pos = from;
    while pos < end {
        let n = usize::try_from((end - pos).min(1 << 20)).unwrap_or(1 << 20);
        let buf = read_at(r, pos, n + 3)?;
        if let Some(i) = buf.windows(4).position(|w| w == [0x50, 0x4b, 0x03, 0x04]) {
            let at = pos + i as u64;
            return Ok((at < end).then_some(at));
        }
        if buf.len() < 4 {
            return Ok(None);
        }
        pos += n as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_central_directory_is_capped_and_reported() {
        // 33 MiB of padding, then an end record claiming all of it as central directory.
        let size = MAX_CENTRAL_BYTES + (1 << 20);
        let mut data = vec![0u8; usize::try_from(size).unwrap()];
        data.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
        data.extend_from_slice(&u32::try_from(size).unwrap().to_le_bytes());
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        let len = data.len() as u64;
        let listing = list(&mut std::io::Cursor::new(data), len).unwrap();
        assert!(
            listing
                .quirks
                .iter()
                .any(|q| q.message.contains("only the first")),
            "{:?}",
            listing.quirks
        );
        assert!(listing.entries.is_empty());
    }
}
