//! Parquet datasets, validated with the same rules as CSV.
//!
//! Each value is checked through its text form as Arrow displays it (integers and floats in
//! their shortest round-trip form, dates as `YYYY-MM-DD`, booleans as `true`/`false`,
//! dictionary-encoded strings as their value), so a schema means the same thing for both
//! formats; a Parquet null is the schema's first null text. Clean rows are written as Parquet
//! with the input's Arrow schema (filtered record batches); rejected rows go to the same CSV
//! quarantine as for CSV, their `line` being the row number and their `record` the row as CSV.
//!
//! Parquet keeps its index at the end of the file, so it is read from a seekable file; callers
//! holding an encrypted or streamed dataset spool it to a private temporary file first.

use std::io::Write;

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

use crate::schema::Schema;
use crate::validate::{Batch, Engine, QUARANTINE_HEADER, Report, ValidateError};

/// The magic bytes Parquet files start (and end) with.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Rows per record batch read.
const BATCH_ROWS: usize = 8192;

/// Longest value accepted, as text (the CSV path's default record limit).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Rows are handed to the checker in batches of at most about this many bytes of text.
const CHECK_BATCH_BYTES: usize = 8 << 20;

/// The most text a file may decode to: this many times its size on disk, and at least
/// [`MIN_DECODED_LIMIT`]. Parquet's dictionaries and compression let a small file stand for
/// an enormous table (a decompression bomb); past the ratio the file is refused.
pub const MAX_EXPANSION: u64 = 500;

/// The decoded-text allowance of a small file.
pub const MIN_DECODED_LIMIT: u64 = 64 << 20;

/// Checks the rows gathered in `batch` (quarantining the rejected ones, noting in `keep`
/// which are accepted), then empties it.
fn check(
    engine: &mut Engine,
    batch: &mut Batch,
    keep: &mut Vec<bool>,
    quarantine: &mut Option<&mut dyn Write>,
    safe_csv: bool,
) -> Result<(), ValidateError> {
    engine.process(batch, |batch, v| {
        keep.push(v.violations.is_empty());
        if !v.violations.is_empty()
            && let Some(out) = quarantine.as_deref_mut()
        {
            v.quarantine(out, batch, safe_csv)?;
        }
        Ok(())
    })?;
    batch.clear();
    Ok(())
}

/// A reader builder for `file` that reads strings and bytes as dictionary arrays: a value
/// repeated over many rows then costs its bytes once per batch, not once per row (a small
/// dictionary-encoded file can otherwise decode to gigabytes per batch).
///
/// # Errors
/// When the file's metadata cannot be read.
pub(crate) fn dictionary_builder(
    file: std::fs::File,
) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, parquet::errors::ParquetError> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let plain = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())?;
    let schema = std::sync::Arc::new(dictionary_strings(plain.schema()));
    let meta = ArrowReaderMetadata::try_new(
        plain.metadata().clone(),
        ArrowReaderOptions::new().with_schema(schema),
    )?;
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
        file, meta,
    ))
}

/// `schema` with every dictionary field as its value type (the inverse of
/// [`dictionary_strings`] for the string and binary fields it changed).
fn plain_strings(schema: &arrow_schema::Schema) -> arrow_schema::Schema {
    use arrow_schema::DataType as T;
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            T::Dictionary(_, v) => f.as_ref().clone().with_data_type(v.as_ref().clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    arrow_schema::Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// `schema` with every string and binary field read as a dictionary of that type.
fn dictionary_strings(schema: &arrow_schema::Schema) -> arrow_schema::Schema {
    use arrow_schema::DataType as T;
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            t @ (T::Utf8 | T::LargeUtf8 | T::Binary | T::LargeBinary) => f
                .as_ref()
                .clone()
                .with_data_type(T::Dictionary(Box::new(T::Int32), Box::new(t.clone()))),
            _ => f.as_ref().clone(),
        })
        .collect();
    arrow_schema::Schema::new_with_metadata(fields, schema.metadata().clone())
}

fn format_err(e: impl std::fmt::Display) -> ValidateError {
    ValidateError::Format(format!("not a readable Parquet file: {e}"))
}

/// Validates a Parquet file: clean rows to `clean` as Parquet (zstd-compressed), rejected rows
/// to `quarantine` as CSV.
///
/// # Errors
/// [`ValidateError::Format`] for a file that is not Parquet or cannot be decoded,
/// [`ValidateError::Header`] when its columns do not match the schema, I/O errors.
pub fn validate_parquet(
    file: std::fs::File,
    schema: &Schema,
    clean: Option<&mut (dyn Write + Send)>,
    mut quarantine: Option<&mut dyn Write>,
    safe_csv: bool,
) -> Result<Report, ValidateError> {
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder = dictionary_builder(file).map_err(format_err)?;
    // The clean file keeps the input's own schema (strings as strings): the dictionary
    // columns are cast back batch by batch, after the rows were checked.
    let arrow_schema = std::sync::Arc::new(plain_strings(builder.schema()));
    let decoded_limit = bytes.saturating_mul(MAX_EXPANSION).max(MIN_DECODED_LIMIT);
    let mut decoded = 0u64;
    let header: Vec<String> = arrow_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut engine = Engine::new(&header, schema)?;
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(format_err)?;
    let mut writer = match clean {
        Some(out) => Some(
            ArrowWriter::try_new(
                out,
                arrow_schema.clone(),
                Some(
                    WriterProperties::builder()
                        .set_compression(parquet::basic::Compression::ZSTD(
                            parquet::basic::ZstdLevel::default(),
                        ))
                        .build(),
                ),
            )
            .map_err(format_err)?,
        ),
        None => None,
    };
    if let Some(out) = quarantine.as_deref_mut() {
        out.write_all(QUARANTINE_HEADER.as_bytes())?;
    }
    let null_text = schema.nulls.first().cloned().unwrap_or_default();
    let options = FormatOptions::default().with_null("");
    let mut batch = Batch::default();
    let mut text = String::new();
    let mut values: Vec<(usize, usize)> = Vec::new();
    let mut scratch: Vec<u8> = Vec::new();
    let mut row_number = 0u64;
    let mut keep: Vec<bool> = Vec::new();
    for rb in reader {
        let rb: RecordBatch = rb.map_err(format_err)?;
        let formatters: Vec<ArrayFormatter<'_>> = rb
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(format_err)?;
        batch.clear();
        keep.clear();
        for i in 0..rb.num_rows() {
            row_number += 1;
            scratch.clear();
            values.clear();
            for (c, f) in formatters.iter().enumerate() {
                let start = scratch.len();
                if rb.column(c).is_null(i) {
                    scratch.extend_from_slice(null_text.as_bytes());
                } else {
                    text.clear();
                    use std::fmt::Write as _;
                    let _ = write!(text, "{}", f.value(i));
                    if text.len() > MAX_VALUE_BYTES {
                        return Err(ValidateError::Format(format!(
                            "row {row_number}, column {}: a value of {} bytes; values over {MAX_VALUE_BYTES} bytes are refused",
                            header.get(c).map_or("?", String::as_str),
                            text.len()
                        )));
                    }
                    scratch.extend_from_slice(text.as_bytes());
                }
                values.push((start, scratch.len()));
            }
            decoded += scratch.len() as u64;
            if decoded > decoded_limit {
                return Err(ValidateError::Format(format!(
                    "refused at row {row_number}: its decoded values exceed {decoded_limit} bytes, over {MAX_EXPANSION} times the file's {bytes} bytes (a dictionary or compression bomb); convert it to CSV or split it if it is genuine"
                )));
            }
            let fields: Vec<&[u8]> = values
                .iter()
                .map(|&(a, b)| scratch.get(a..b).unwrap_or_default())
                .collect();
            batch.push_values(row_number, &fields);
            if batch.bytes() >= CHECK_BATCH_BYTES {
                check(
                    &mut engine,
                    &mut batch,
                    &mut keep,
                    &mut quarantine,
                    safe_csv,
                )?;
            }
        }
        check(
            &mut engine,
            &mut batch,
            &mut keep,
            &mut quarantine,
            safe_csv,
        )?;
        if let Some(w) = writer.as_mut() {
            let filtered = arrow_select::filter::filter_record_batch(
                &rb,
                &BooleanArray::from(std::mem::take(&mut keep)),
            )
            .map_err(format_err)?;
            let columns = filtered
                .columns()
                .iter()
                .zip(arrow_schema.fields())
                .map(|(c, f)| arrow_cast::cast(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(format_err)?;
            let accepted =
                RecordBatch::try_new(arrow_schema.clone(), columns).map_err(format_err)?;
            if accepted.num_rows() > 0 {
                w.write(&accepted).map_err(format_err)?;
            }
        }
    }
    if let Some(w) = writer {
        w.close().map_err(format_err)?;
    }
    if let Some(out) = quarantine {
        out.flush()?;
    }
    Ok(engine.finish(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    use super::*;

    fn write_parquet(path: &std::path::Path) {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, false),
            Field::new("plan", DataType::Utf8, false),
            Field::new("day", DataType::Date32, true),
        ]));
        let rb = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 2, 5])),
                Arc::new(Float64Array::from(vec![
                    Some(0.5),
                    None,
                    Some(7.0),
                    Some(0.1),
                    Some(f64::NAN),
                ])),
                Arc::new(BooleanArray::from(vec![true, false, true, true, false])),
                Arc::new(StringArray::from(vec![
                    "free", "pro", "pro", "free", "gold",
                ])),
                Arc::new(Date32Array::from(vec![
                    Some(19_000),
                    Some(19_001),
                    None,
                    Some(0),
                    Some(1),
                ])),
            ],
        )
        .unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
        w.write(&rb).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn parquet_rows_are_checked_like_csv_and_clean_rows_stay_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        write_parquet(&path);
        let schema = Schema::from_toml(
            "version = 1\n\
             [[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n\
             [[columns]]\nname = \"x\"\ntype = \"float\"\nnullable = true\nmax = 1\n\
             [[columns]]\nname = \"ok\"\ntype = \"bool\"\n\
             [[columns]]\nname = \"plan\"\ntype = \"category\"\nallowed = [\"free\", \"pro\"]\n\
             [[columns]]\nname = \"day\"\ntype = \"date\"\nnullable = true\nmin = \"2000-01-01\"\n",
        )
        .unwrap();
        let (report, clean, quarantine) = run(&path, &schema);
        let report = report.unwrap();
        // Row 3: x = 7 > 1. Row 4: day 1970-01-01 < 2000 (so its repeated id 2 is not even
        // looked at). Row 5: NaN, gold, 1970-01-02.
        assert_eq!(
            (report.rows_read, report.accepted, report.rejected),
            (5, 2, 3)
        );
        assert!(report.reconciled);
        assert_eq!(report.by_column["x"]["max"], 1);
        assert_eq!(report.by_column["day"]["min"], 2);
        assert_eq!(report.by_column["x"]["type"], 1);
        assert_eq!(report.by_column["plan"]["allowed"], 1);
        let q = String::from_utf8(quarantine).unwrap();
        assert!(q.contains("\n3,3,x,max,"), "{q}");
        assert!(q.contains("\n5,5,x;plan;day,type;allowed;min,"), "{q}");

        // The clean output is Parquet with rows 1 and 2.
        let back = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(clean))
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        let ids: Vec<i64> = back
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    /// Validates `path` with both outputs: (result, clean Parquet, quarantine CSV).
    fn run(
        path: &std::path::Path,
        schema: &Schema,
    ) -> (Result<Report, ValidateError>, Vec<u8>, Vec<u8>) {
        let mut clean = Vec::new();
        let mut quarantine = Vec::new();
        let report = validate_parquet(
            std::fs::File::open(path).unwrap(),
            schema,
            Some(&mut clean),
            Some(&mut quarantine),
            true,
        );
        (report, clean, quarantine)
    }

    /// Two distinct 230 KB strings repeated over 50 000 rows, dictionary-encoded and zstd:
    /// about 150 KB on disk, 23 GB as values. Refused early with a clear error, in bounded
    /// memory (the 5.8 GB abort of the issue).
    fn write_bomb(path: &std::path::Path) {
        use parquet::basic::{Compression, ZstdLevel};
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            Field::new("a", dict.clone(), false),
            Field::new("b", dict, false),
        ]));
        let big = StringArray::from(vec!["x".repeat(230_000), "y".repeat(230_000)]);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_dictionary_enabled(true)
            .build();
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(path).unwrap(),
            schema.clone(),
            Some(props),
        )
        .unwrap();
        for _ in 0..50 {
            let col = || {
                let keys = arrow_array::Int32Array::from_iter_values((0..1000).map(|i| i % 2));
                Arc::new(
                    arrow_array::DictionaryArray::<arrow_array::types::Int32Type>::try_new(
                        keys,
                        Arc::new(big.clone()),
                    )
                    .unwrap(),
                ) as Arc<dyn Array>
            };
            w.write(&RecordBatch::try_new(schema.clone(), vec![col(), col()]).unwrap())
                .unwrap();
        }
        w.close().unwrap();
    }

    #[test]
    fn a_dictionary_bomb_is_refused_in_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.parquet");
        write_bomb(&path);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 1 << 20, "{size}");
        let schema = Schema::from_toml(
            "version = 1\n[[columns]]\nname = \"a\"\ntype = \"string\"\n[[columns]]\nname = \"b\"\ntype = \"string\"\n",
        )
        .unwrap();
        let (report, clean, quarantine) = run(&path, &schema);
        let err = report.unwrap_err();
        assert!(
            err.to_string().contains("decoded values") && err.to_string().contains("refused"),
            "{err}"
        );
        // What was written before the refusal is bounded too.
        assert!(clean.len() + quarantine.len() < 100 << 20);
        // The whole-table reader (data check, drift) refuses it as well.
        let err = crate::frame::Frame::read_parquet(
            std::fs::File::open(&path).unwrap(),
            &[""],
            crate::frame::FrameLimits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("bomb"), "{err}");
    }

    #[test]
    fn not_parquet_and_wrong_columns_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        std::fs::write(&path, b"PAR1 but not really").unwrap();
        let schema =
            Schema::from_toml("version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\n").unwrap();
        let check = |path: &std::path::Path| {
            validate_parquet(
                std::fs::File::open(path).unwrap(),
                &schema,
                None,
                None,
                true,
            )
            .unwrap_err()
        };
        let err = check(&path);
        assert!(matches!(err, ValidateError::Format(_)), "{err}");
        write_parquet(&path);
        let err = check(&path);
        assert!(err.to_string().contains("not in the schema"), "{err}");
    }
}
