//! Writing result tables: Parquet for machines, CSV with a UTF-8 BOM for people (Excel shows
//! Chinese text only with the BOM).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;

use crate::error::{Error, Result};

/// Writes batches as one Parquet file (an empty file with the schema when there are none).
pub fn write_parquet(path: &Path, schema: SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    let mut w = ArrowWriter::try_new(f, schema, None)
        .map_err(|e| Error::arrow(format!("writing {}", path.display()), e))?;
    for b in batches {
        w.write(b).map_err(|e| Error::arrow(format!("writing {}", path.display()), e))?;
    }
    w.close().map_err(|e| Error::arrow(format!("writing {}", path.display()), e))?;
    Ok(())
}

/// Writes batches as CSV in UTF-8 with a BOM, header first.
pub fn write_csv(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    write_csv_to(BufWriter::new(f), schema, batches)
        .map_err(|e| crate::other_err!("writing {}: {e}", path.display()))
}

/// Writes CSV (with BOM) to any writer.
pub fn write_csv_to<W: Write>(
    mut w: W,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::result::Result<(), String> {
    w.write_all(b"\xEF\xBB\xBF").map_err(|e| e.to_string())?;
    let mut c = csv::Writer::from_writer(w);
    c.write_record(schema.fields().iter().map(|f| f.name().as_str())).map_err(|e| e.to_string())?;
    let opts = FormatOptions::default().with_null("");
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &opts))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let mut row: Vec<String> = Vec::with_capacity(fmts.len());
        for r in 0..b.num_rows() {
            row.clear();
            row.extend(fmts.iter().map(|f| f.value(r).to_string()));
            c.write_record(&row).map_err(|e| e.to_string())?;
        }
    }
    c.flush().map_err(|e| e.to_string())
}

/// Concatenates batches and sorts them by the named columns (ascending), for outputs that
/// are the same whatever order the work was done in.
pub fn sorted(schema: &SchemaRef, batches: &[RecordBatch], by: &[&str]) -> Result<Option<RecordBatch>> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(None);
    }
    let all =
        arrow::compute::concat_batches(schema, batches).map_err(|e| Error::arrow("collecting results", e))?;
    let cols: Vec<arrow::compute::SortColumn> = by
        .iter()
        .filter_map(|n| all.column_by_name(n))
        .map(|c| arrow::compute::SortColumn { values: c.clone(), options: None })
        .collect();
    let idx =
        arrow::compute::lexsort_to_indices(&cols, None).map_err(|e| Error::arrow("sorting results", e))?;
    let cols = all
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c.as_ref(), &idx, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::arrow("sorting results", e))?;
    Ok(Some(RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::arrow("sorting results", e))?))
}

/// Reads a whole Parquet file.
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| Error::arrow(format!("reading {}", path.display()), e))?;
    r.collect::<Result<Vec<_>, _>>().map_err(|e| Error::arrow(format!("reading {}", path.display()), e))
}
