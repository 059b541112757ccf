//! `iobox export`: every event table as one file per table for BI tools, CSV or Parquet.
//!
//! The files hold the raw, anonymous rows (see `store::export`): random per-run track ids, zone and line
//! names, times in ms since the Unix epoch, counts, heatmap cells. They are **not** k-suppressed: they are
//! for the store's own analysis, not for publication, and every file says so (CSV: its first line, a `#`
//! comment; Parquet: the file's key-value metadata `iobox.rows`).
//!
//! `--k-anonymous` ([`export_k_anonymous`]) writes instead what the reports show: one CSV per report
//! section, over the period snapped to whole buckets, every row behind the same k rule.
//!
//! CSV: a `#` comment line, a header line of column names, RFC 4180 quoting, empty for NULL. Parquet: one row group per
//! [`ROW_GROUP`] rows, snappy-compressed, times as `TIMESTAMP(MILLIS, UTC)`, text as `STRING`, NULLs as
//! optional columns.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde::Serialize;

use super::JobError;
use crate::store::export::{Column, Kind, TABLES, Table, Value, for_each_row};
use crate::store::query::Period;

/// Rows per Parquet row group.
pub const ROW_GROUP: usize = 128 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Parquet,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Parquet => "parquet",
        }
    }
}

/// One file written.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedTable {
    pub table: &'static str,
    pub path: PathBuf,
    pub rows: u64,
}

fn output_error(path: &Path) -> impl Fn(String) -> JobError + '_ {
    move |message| JobError::Output { path: path.to_path_buf(), message }
}

/// What every per-event file says about itself.
pub const PER_EVENT_NOTE: &str = "iobox export: per-event rows (one row per event, with per-run random track ids); \
     NOT k-anonymous: for the store's own analysis, never for publication (iobox export --k-anonymous writes \
     the reports' suppressed buckets instead)";

/// Writes the report over `options` as `DIR/<section>.csv`, one file per section (entries_exits,
/// footfall_per_hour, dwell, funnel, queues, interactions, mood, top_journeys): the same fixed, snapped,
/// suppressed buckets and rows as `iobox report --format csv`, each file headed by a `#` line saying so.
pub fn export_k_anonymous(options: &super::report::ReportOptions, out: &Path) -> Result<Vec<ExportedTable>, JobError> {
    let report = super::report::build(options)?;
    std::fs::create_dir_all(out).map_err(|e| output_error(out)(e.to_string()))?;
    let mut written = Vec::new();
    for (key, title, csv, rows) in super::report::csv_sections(&report) {
        let path = out.join(format!("{key}.csv"));
        let text = format!(
            "# iobox k-anonymous export: {title}; {} to {} ({}); k = {}: rows about 1 to k-1 people have empty \
             figures and suppressed = true\n{csv}",
            report.from.as_deref().unwrap_or("the beginning"),
            report.to.as_deref().unwrap_or("the latest event"),
            super::report::snapped_note(&report.snapped),
            report.k
        );
        std::fs::write(&path, text).map_err(|e| output_error(&path)(e.to_string()))?;
        written.push(ExportedTable { table: key, path, rows });
    }
    Ok(written)
}

/// Writes `DIR/<table>.<csv|parquet>` for every table of `store::export::TABLES`, rows in `period`.
pub fn export(db: &Path, period: Period, format: ExportFormat, out: &Path) -> Result<Vec<ExportedTable>, JobError> {
    let conn = crate::store::open_ro(db)?;
    std::fs::create_dir_all(out).map_err(|e| output_error(out)(e.to_string()))?;
    let mut written = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let path = out.join(format!("{}.{}", table.name, format.extension()));
        let rows = match format {
            ExportFormat::Csv => {
                let mut sink = CsvSink::create(table, &path)?;
                let rows = for_each_row(&conn, table, period, |values| sink.row(values))?;
                sink.finish()?;
                rows
            }
            ExportFormat::Parquet => {
                let mut sink = ParquetSink::create(table, &path)?;
                let rows = for_each_row(&conn, table, period, |values| sink.row(values))?;
                sink.finish()?;
                rows
            }
        };
        tracing::debug!(table = table.name, rows, path = %path.display(), "exported");
        written.push(ExportedTable { table: table.name, path, rows });
    }
    Ok(written)
}

fn csv_field(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    if s.contains([',', '"', '\n', '\r']) {
        write!(w, "\"{}\"", s.replace('"', "\"\""))
    } else {
        w.write_all(s.as_bytes())
    }
}

struct CsvSink {
    path: PathBuf,
    w: BufWriter<File>,
}

impl CsvSink {
    fn create(table: &Table, path: &Path) -> Result<Self, JobError> {
        let io = |e: std::io::Error| output_error(path)(e.to_string());
        let mut w = BufWriter::new(File::create(path).map_err(io)?);
        writeln!(w, "# {PER_EVENT_NOTE}").map_err(io)?;
        let header: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        writeln!(w, "{}", header.join(",")).map_err(io)?;
        Ok(Self { path: path.to_path_buf(), w })
    }

    fn write_row(&mut self, values: &[Value<'_>]) -> std::io::Result<()> {
        let w = &mut self.w;
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            match v {
                Value::Null => {}
                Value::Int(x) => write!(w, "{x}")?,
                Value::Real(x) => write!(w, "{x}")?,
                Value::Text(s) => csv_field(w, s)?,
            }
        }
        w.write_all(b"\n")
    }

    fn row(&mut self, values: &[Value<'_>]) -> Result<(), JobError> {
        self.write_row(values).map_err(|e| output_error(&self.path)(e.to_string()))
    }

    fn finish(mut self) -> Result<(), JobError> {
        self.w.flush().map_err(|e| output_error(&self.path)(e.to_string()))
    }
}

/// The Parquet schema of a table.
fn parquet_schema(table: &Table) -> parquet::errors::Result<Type> {
    let fields = table
        .columns
        .iter()
        .map(|c| {
            let (physical, logical) = match c.kind {
                Kind::Int if c.time => (PhysicalType::INT64, Some(LogicalType::timestamp(true, TimeUnit::MILLIS))),
                Kind::Int => (PhysicalType::INT64, None),
                Kind::Real => (PhysicalType::DOUBLE, None),
                Kind::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
            };
            let repetition = if c.nullable { Repetition::OPTIONAL } else { Repetition::REQUIRED };
            Type::primitive_type_builder(c.name, physical)
                .with_repetition(repetition)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    Type::group_type_builder(table.name).with_fields(fields).build()
}

/// One column's values of the row group being filled; `defs` only for nullable columns.
enum Buffer {
    Int(Vec<i64>),
    Real(Vec<f64>),
    Text(Vec<ByteArray>),
}

struct ColumnBuffer {
    values: Buffer,
    defs: Option<Vec<i16>>,
}

impl ColumnBuffer {
    fn new(c: &Column) -> Self {
        let values = match c.kind {
            Kind::Int => Buffer::Int(Vec::new()),
            Kind::Real => Buffer::Real(Vec::new()),
            Kind::Text => Buffer::Text(Vec::new()),
        };
        Self { values, defs: c.nullable.then(Vec::new) }
    }

    fn push(&mut self, v: &Value<'_>) {
        let present = !matches!(v, Value::Null);
        if let Some(defs) = &mut self.defs {
            defs.push(i16::from(present));
        }
        if !present && self.defs.is_some() {
            return;
        }
        // A NULL in a required column (the schema forbids it) becomes 0 / empty.
        match (&mut self.values, v) {
            (Buffer::Int(b), Value::Int(x)) => b.push(*x),
            (Buffer::Int(b), Value::Real(x)) => b.push(*x as i64),
            (Buffer::Int(b), _) => b.push(0),
            (Buffer::Real(b), Value::Real(x)) => b.push(*x),
            (Buffer::Real(b), Value::Int(x)) => b.push(*x as f64),
            (Buffer::Real(b), _) => b.push(0.0),
            (Buffer::Text(b), Value::Text(s)) => b.push(ByteArray::from(*s)),
            (Buffer::Text(b), Value::Int(x)) => b.push(ByteArray::from(x.to_string().as_str())),
            (Buffer::Text(b), Value::Real(x)) => b.push(ByteArray::from(x.to_string().as_str())),
            (Buffer::Text(b), Value::Null) => b.push(ByteArray::from("")),
        }
    }

    fn clear(&mut self) {
        match &mut self.values {
            Buffer::Int(b) => b.clear(),
            Buffer::Real(b) => b.clear(),
            Buffer::Text(b) => b.clear(),
        }
        if let Some(d) = &mut self.defs {
            d.clear();
        }
    }
}

fn flush_row_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    columns: &mut [ColumnBuffer],
) -> parquet::errors::Result<()> {
    let mut group = writer.next_row_group()?;
    for buffer in columns.iter_mut() {
        let mut col = group.next_column()?.expect("one column writer per schema column");
        let defs = buffer.defs.as_deref();
        match &buffer.values {
            Buffer::Int(v) => col.typed::<Int64Type>().write_batch(v, defs, None)?,
            Buffer::Real(v) => col.typed::<DoubleType>().write_batch(v, defs, None)?,
            Buffer::Text(v) => col.typed::<ByteArrayType>().write_batch(v, defs, None)?,
        };
        col.close()?;
        buffer.clear();
    }
    group.close()?;
    Ok(())
}

struct ParquetSink {
    path: PathBuf,
    writer: SerializedFileWriter<BufWriter<File>>,
    columns: Vec<ColumnBuffer>,
    buffered: usize,
}

impl ParquetSink {
    fn create(table: &Table, path: &Path) -> Result<Self, JobError> {
        let fail = output_error(path);
        let file = File::create(path).map_err(|e| fail(e.to_string()))?;
        let note = vec![
            parquet::file::metadata::KeyValue::new("iobox.rows".to_string(), "per-event".to_string()),
            parquet::file::metadata::KeyValue::new("iobox.note".to_string(), PER_EVENT_NOTE.to_string()),
        ];
        let props = Arc::new(
            WriterProperties::builder().set_compression(Compression::SNAPPY).set_key_value_metadata(Some(note)).build(),
        );
        let schema = Arc::new(parquet_schema(table).map_err(|e| fail(e.to_string()))?);
        let writer = SerializedFileWriter::new(BufWriter::new(file), schema, props).map_err(|e| fail(e.to_string()))?;
        let columns = table.columns.iter().map(ColumnBuffer::new).collect();
        Ok(Self { path: path.to_path_buf(), writer, columns, buffered: 0 })
    }

    fn row(&mut self, values: &[Value<'_>]) -> Result<(), JobError> {
        for (buffer, v) in self.columns.iter_mut().zip(values) {
            buffer.push(v);
        }
        self.buffered += 1;
        if self.buffered == ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), JobError> {
        self.buffered = 0;
        flush_row_group(&mut self.writer, &mut self.columns).map_err(|e| output_error(&self.path)(e.to_string()))
    }

    fn finish(mut self) -> Result<(), JobError> {
        if self.buffered > 0 {
            self.flush()?;
        }
        let path = self.path;
        self.writer.close().map(|_| ()).map_err(|e| output_error(&path)(e.to_string()))
    }
}
