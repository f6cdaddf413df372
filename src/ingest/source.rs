//! Finding the files of a table in an input folder, detecting their text encoding, and
//! reading them as a stream of chunks (CSV records or Arrow batches) while hashing them.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Text encodings of CSV input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Utf8,
    Gb18030,
}

/// `--encoding`: detect, or force one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingChoice {
    #[default]
    Auto,
    Force(Encoding),
}

/// The file format of one input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
}

/// One input file of a table.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub format: Format,
}

/// Finds the files of a table: `<stem>.csv`, `<stem>.parquet` or a folder `<stem>/` of such
/// files (sorted by name), for each stem the table may have. File names match without regard
/// to case. More than one candidate is an error: the engine never guesses which is meant.
pub fn discover(input: &Path, table: &str, stems: &[String]) -> Result<Vec<SourceFile>> {
    let entries: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(|e| Error::io("reading input folder", input, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let mut found: Vec<Vec<SourceFile>> = Vec::new();
    for path in &entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        for stem in stems {
            let stem = stem.to_ascii_lowercase();
            if path.is_dir() && name == stem {
                let mut parts: Vec<SourceFile> = std::fs::read_dir(path)
                    .map_err(|e| Error::io("reading table folder", path, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter_map(|p| format_of(&p).map(|format| SourceFile { path: p, format }))
                    .collect();
                parts.sort_by(|a, b| a.path.cmp(&b.path));
                if parts.is_empty() {
                    return Err(crate::input_err!(
                        "{}: the folder of table `{table}` holds no .csv or .parquet file",
                        path.display()
                    ));
                }
                found.push(parts);
            } else if path.is_file()
                && name.strip_suffix(".csv").or(name.strip_suffix(".parquet")) == Some(&stem)
                && let Some(format) = format_of(path)
            {
                found.push(vec![SourceFile { path: path.clone(), format }]);
            }
        }
    }
    match found.len() {
        0 => Ok(Vec::new()),
        1 => Ok(found.remove(0)),
        _ => Err(crate::input_err!(
            "{}: table `{table}` is given more than once ({}); keep one",
            input.display(),
            found.iter().flatten().map(|s| s.path.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn format_of(p: &Path) -> Option<Format> {
    match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "csv" => Some(Format::Csv),
        "parquet" => Some(Format::Parquet),
        _ => None,
    }
}

/// Decides the encoding of a CSV file: a UTF-8 BOM or valid UTF-8 throughout means UTF-8,
/// anything else GB18030 (a superset of GBK and GB2312).
pub fn detect_encoding(path: &Path) -> Result<Encoding> {
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            // Bytes left over at the end are an incomplete sequence: not UTF-8.
            return Ok(if carry.is_empty() { Encoding::Utf8 } else { Encoding::Gb18030 });
        }
        let mut chunk = std::mem::take(&mut carry);
        chunk.extend_from_slice(&buf[..n]);
        if first && chunk.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Ok(Encoding::Utf8);
        }
        first = false;
        match std::str::from_utf8(&chunk) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => carry = chunk[e.valid_up_to()..].to_vec(),
            Err(_) => return Ok(Encoding::Gb18030),
        }
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pub bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), bytes: 0 }
    }
    pub fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a whole file.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut r = HashingReader::new(BufReader::with_capacity(1 << 20, f));
    std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| Error::io("reading", path, e))?;
    let bytes = r.bytes;
    Ok((r.finish(), bytes))
}

/// A chunk of rows as read from a file, before parsing.
pub enum RawChunk {
    /// CSV records with the 1-based line number of each.
    Csv { records: Vec<csv::ByteRecord>, lines: Vec<u64> },
    /// A batch of a Parquet file with the 1-based row number of its first row.
    Arrow { batch: RecordBatch, first_row: u64 },
    /// Rows of a Parquet file not decoded yet: the worker that parses them decodes them
    /// ([`RawChunk::load`]), so that decompression and decoding run on every core.
    Parquet(ParquetSlice),
}

/// `len` rows from row `offset` of one row group of a Parquet file.
pub struct ParquetSlice {
    path: std::sync::Arc<Path>,
    meta: ArrowReaderMetadata,
    row_group: usize,
    offset: usize,
    len: usize,
    /// 1-based row number of the first row in the file.
    first_row: u64,
}

impl RawChunk {
    pub fn len(&self) -> usize {
        match self {
            RawChunk::Csv { records, .. } => records.len(),
            RawChunk::Arrow { batch, .. } => batch.num_rows(),
            RawChunk::Parquet(s) => s.len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes a [`RawChunk::Parquet`] slice into a [`RawChunk::Arrow`] batch; other chunks
    /// are returned as they are.
    pub fn load(self) -> Result<RawChunk> {
        let RawChunk::Parquet(s) = self else { return Ok(self) };
        let path: &Path = &s.path;
        let bad =
            |e: &dyn std::fmt::Display| crate::input_err!("{}: cannot read Parquet: {e}", path.display());
        let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let mut selectors = Vec::with_capacity(2);
        if s.offset > 0 {
            selectors.push(RowSelector::skip(s.offset));
        }
        selectors.push(RowSelector::select(s.len));
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(f, s.meta.clone())
            .with_row_groups(vec![s.row_group])
            .with_row_selection(RowSelection::from(selectors))
            .with_batch_size(s.len.max(1))
            .build()
            .map_err(|e| bad(&e))?;
        let batches: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>().map_err(|e| bad(&e))?;
        let batch = match batches.len() {
            1 => {
                batches.into_iter().next().unwrap_or_else(|| RecordBatch::new_empty(s.meta.schema().clone()))
            }
            _ => arrow::compute::concat_batches(s.meta.schema(), &batches).map_err(|e| bad(&e))?,
        };
        if batch.num_rows() != s.len {
            return Err(crate::input_err!(
                "{}: row group {} has fewer rows than its metadata says",
                path.display(),
                s.row_group
            ));
        }
        Ok(RawChunk::Arrow { batch, first_row: s.first_row })
    }
}

/// What a file reader found: its header (column names as in the file) and hash.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub header: Vec<String>,
    pub sha256: String,
    pub bytes: u64,
    pub encoding: Option<Encoding>,
}

/// Reads the header of a CSV file.
pub fn csv_header(path: &Path, encoding: Encoding) -> Result<Vec<String>> {
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut rdr = csv_reader(BufReader::new(f), encoding);
    let mut rec = csv::ByteRecord::new();
    let ok = rdr.read_byte_record(&mut rec).map_err(|e| crate::input_err!("{}: {e}", path.display()))?;
    if !ok {
        return Err(crate::input_err!("{}: the file is empty (no header row)", path.display()));
    }
    Ok(rec
        .iter()
        .map(|c| String::from_utf8_lossy(c).trim().trim_start_matches('\u{feff}').to_string())
        .collect())
}

fn csv_reader<R: Read + 'static>(r: R, encoding: Encoding) -> csv::Reader<Box<dyn Read>> {
    let boxed: Box<dyn Read> = match encoding {
        Encoding::Utf8 => Box::new(SkipBom { inner: r, start: Vec::new(), checked: false }),
        Encoding::Gb18030 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::GB18030))
                .bom_sniffing(true)
                .build(r),
        ),
    };
    csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(1 << 20).from_reader(boxed)
}

/// Streams a CSV file as chunks of `chunk_rows` records (after the header) to `send`,
/// which answers false to stop.
/// Returns the file's hash and size.
pub fn stream_csv(
    path: &Path,
    encoding: Encoding,
    chunk_rows: usize,
    send: &mut dyn FnMut(RawChunk) -> bool,
) -> Result<FileInfo> {
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    // The hashing reader sits under the decoder, so the hash is of the file's own bytes.
    let hashing = std::sync::Arc::new(std::sync::Mutex::new(None::<(String, u64)>));
    let reader = FinishOnEof {
        inner: Some(HashingReader::new(BufReader::with_capacity(1 << 20, f))),
        out: hashing.clone(),
    };
    let mut rdr = csv_reader(reader, encoding);
    let mut rec = csv::ByteRecord::new();
    let mut header = Vec::new();
    let mut records = Vec::with_capacity(chunk_rows);
    let mut lines = Vec::with_capacity(chunk_rows);
    let mut first = true;
    loop {
        let more = match rdr.read_byte_record(&mut rec) {
            Ok(m) => m,
            Err(e) => {
                return Err(crate::input_err!(
                    "{}: cannot read CSV at line {}: {e}",
                    path.display(),
                    e.position().map_or(0, |p| p.line())
                ));
            }
        };
        if !more {
            break;
        }
        if first {
            header = rec.iter().map(|c| String::from_utf8_lossy(c).trim().to_string()).collect();
            first = false;
            continue;
        }
        // A blank line is no row.
        if rec.len() == 1 && rec[0].is_empty() {
            continue;
        }
        lines.push(rec.position().map_or(0, |p| p.line()));
        records.push(std::mem::take(&mut rec));
        if records.len() == chunk_rows {
            let chunk = RawChunk::Csv {
                records: std::mem::replace(&mut records, Vec::with_capacity(chunk_rows)),
                lines: std::mem::replace(&mut lines, Vec::with_capacity(chunk_rows)),
            };
            if !send(chunk) {
                return Err(crate::other_err!("ingest of {} was stopped", path.display()));
            }
        }
    }
    if !records.is_empty() {
        send(RawChunk::Csv { records, lines });
    }
    drop(rdr);
    let (sha256, bytes) = hashing.lock().ok().and_then(|g| g.clone()).unwrap_or_default();
    Ok(FileInfo { header, sha256, bytes, encoding: Some(encoding) })
}

/// Hands the hash out when the reader is dropped (the csv reader owns it).
struct FinishOnEof<R: Read> {
    inner: Option<HashingReader<R>>,
    out: std::sync::Arc<std::sync::Mutex<Option<(String, u64)>>>,
}

impl<R: Read> Read for FinishOnEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            Some(r) => r.read(buf),
            None => Ok(0),
        }
    }
}

impl<R: Read> Drop for FinishOnEof<R> {
    fn drop(&mut self) {
        if let Some(r) = self.inner.take() {
            let bytes = r.bytes;
            if let Ok(mut g) = self.out.lock() {
                *g = Some((r.finish(), bytes));
            }
        }
    }
}

/// Streams a Parquet file as slices of `chunk_rows` rows to `send`, to be decoded by the
/// workers ([`RawChunk::load`]); the file is hashed meanwhile on a thread of its own. A file
/// without a page index (which lets a slice skip the pages before it) is sent a row group
/// at a time.
pub fn stream_parquet(
    path: &Path,
    chunk_rows: usize,
    send: &mut dyn FnMut(RawChunk) -> bool,
) -> Result<FileInfo> {
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let meta = ArrowReaderMetadata::load(
        &f,
        ArrowReaderOptions::new().with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional),
    )
    .map_err(|e| crate::input_err!("{}: not a readable Parquet file: {e}", path.display()))?;
    let header = meta.schema().fields().iter().map(|f| f.name().clone()).collect();
    let shared: std::sync::Arc<Path> = path.into();
    let has_offsets = meta.metadata().offset_index().is_some();
    std::thread::scope(|scope| -> Result<FileInfo> {
        let hasher = scope.spawn(|| sha256_file(path));
        let mut row = 1u64;
        for rg in 0..meta.metadata().num_row_groups() {
            let n = usize::try_from(meta.metadata().row_group(rg).num_rows()).unwrap_or(0);
            let step = if has_offsets { chunk_rows.max(1) } else { n.max(1) };
            let mut offset = 0;
            while offset < n {
                let len = step.min(n - offset);
                let slice = ParquetSlice {
                    path: shared.clone(),
                    meta: meta.clone(),
                    row_group: rg,
                    offset,
                    len,
                    first_row: row,
                };
                if !send(RawChunk::Parquet(slice)) {
                    return Err(crate::other_err!("ingest of {} was stopped", path.display()));
                }
                offset += len;
                row += len as u64;
            }
        }
        let (sha256, bytes) =
            hasher.join().map_err(|_| crate::other_err!("hashing {} failed", path.display()))??;
        Ok(FileInfo { header, sha256, bytes, encoding: None })
    })
}

/// Passes UTF-8 through, without a leading byte-order mark.
struct SkipBom<R> {
    inner: R,
    start: Vec<u8>,
    checked: bool,
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            self.checked = true;
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                let k = self.inner.read(&mut head[n..])?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            if head[..n] != [0xEF, 0xBB, 0xBF] {
                self.start = head[..n].to_vec();
            }
        }
        if !self.start.is_empty() {
            let k = self.start.len().min(buf.len());
            buf[..k].copy_from_slice(&self.start[..k]);
            self.start.drain(..k);
            return Ok(k);
        }
        self.inner.read(buf)
    }
}
