//! Format detection by content, never by file name.

/// What some bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A zip archive (PyTorch, Keras v3, NumPy `.npz`, plain zip).
    Zip,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// The legacy "LZMA alone" container (`.lzma`; joblib's `compress='lzma'`).
    Lzma,
    /// An LZ4 frame (joblib's `compress='lz4'`).
    Lz4,
    /// zstd.
    Zstd,
    /// A raw zlib stream (joblib's `compress=` default).
    Zlib,
    /// 7-Zip.
    SevenZ,
    /// A POSIX tar archive (legacy PyTorch's tar layout).
    Tar,
    /// A pickle (any protocol), possibly several back to back.
    Pickle,
    /// A NumPy `.npy` array.
    Numpy,
    /// safetensors.
    Safetensors,
    /// GGUF.
    Gguf,
    /// HDF5 (legacy Keras `.h5`).
    Hdf5,
    /// ONNX (a protobuf `ModelProto`).
    Onnx,
    /// Anything else.
    Unknown,
}

impl Kind {
    /// The name used in reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Zip => "zip",
            Self::Gzip => "gzip",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
            Self::Lzma => "lzma",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
            Self::Zlib => "zlib",
            Self::SevenZ => "7z",
            Self::Tar => "tar",
            Self::Pickle => "pickle",
            Self::Numpy => "numpy",
            Self::Safetensors => "safetensors",
            Self::Gguf => "gguf",
            Self::Hdf5 => "hdf5",
            Self::Onnx => "onnx",
            Self::Unknown => "unknown",
        }
    }
}

/// Classifies content from its first bytes (up to 64 KiB) and its total length.
#[must_use]
pub fn sniff(head: &[u8], len: u64) -> Kind {
    match head {
        [0x50, 0x4b, 0x03, 0x04, ..] | [0x50, 0x4b, 0x05, 0x06, ..] => return Kind::Zip,
        [0x1f, 0x8b, ..] => return Kind::Gzip,
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => return Kind::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => return Kind::Xz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => return Kind::Zstd,
        [0x04, 0x22, 0x4d, 0x18, ..] => return Kind::Lz4,
        [b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, ..] => return Kind::SevenZ,
        [0x93, b'N', b'U', b'M', b'P', b'Y', ..] => return Kind::Numpy,
        [b'G', b'G', b'U', b'F', ..] => return Kind::Gguf,
        [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n', ..] => return Kind::Hdf5,
        _ => {}
    }
    if head.get(257..262) == Some(b"ustar") {
        return Kind::Tar;
    }
    if looks_like_lzma_alone(head) {
        return Kind::Lzma;
    }
    if let [a, b, c, d, e, f, g, h, rest @ ..] = head {
        let n = u64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]);
        // The length is validated by the safetensors check (a lying length is a finding there),
        // so recognise the layout by the JSON object that must start at byte 8.
        let _ = len;
        if n >= 2 && rest.first() == Some(&b'{') {
            return Kind::Safetensors;
        }
    }
    // zlib: CMF 0x78 with a valid FCHECK.
    if let [0x78, flg, ..] = head
        && (0x7800u16 | u16::from(*flg)).is_multiple_of(31)
    {
        return Kind::Zlib;
    }
    if crate::formats::onnx::looks_like_onnx(head) {
        return Kind::Onnx;
    }
    if crate::pickle::looks_like_pickle(head) {
        return Kind::Pickle;
    }
    Kind::Unknown
}

/// The 13-byte "LZMA alone" header: properties (lc/lp/pb, below 225; encoders write 0x5D), a
/// dictionary size of 4 KiB to 1.5 GiB that is 2^n or 2^n + 2^(n-1) (what encoders write), and
/// an uncompressed size that is unknown (all ones) or below 2^48.
fn looks_like_lzma_alone(head: &[u8]) -> bool {
    let (Some(&props), Some(dict), Some(size)) = (head.first(), head.get(1..5), head.get(5..13))
    else {
        return false;
    };
    let dict = u32::from_le_bytes(dict.try_into().unwrap_or([0; 4]));
    let size = u64::from_le_bytes(size.try_into().unwrap_or([0; 8]));
    let standard_dict = (12..=30).any(|n| dict == 1 << n || dict == (1 << n) + (1 << (n - 1)));
    props == 0x5d && standard_dict && (size == u64::MAX || size < 1 << 48)
}
