//! Quarantine files: every row that could not be accepted, as it was, with the reason.
//! They hold personal data, so they are created readable by their owner only.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `quarantine/<table>.csv` (UTF-8 with BOM, so that Excel shows Chinese).
pub struct QuarantineWriter {
    path: PathBuf,
    header: Vec<String>,
    out: Option<csv::Writer<BufWriter<File>>>,
    pub rows: u64,
}

impl QuarantineWriter {
    /// Nothing is created until the first row arrives.
    pub fn new(path: PathBuf) -> Self {
        QuarantineWriter { path, header: Vec::new(), out: None, rows: 0 }
    }

    /// The header of the rows that follow (the source file's own column names).
    pub fn set_header(&mut self, header: &[String]) {
        if self.header.is_empty() {
            self.header = header.to_vec();
        }
    }

    /// Writes one rejected row: the reason, the source file and the line (CSV) or row number
    /// (Parquet) in it, then the row's cells unchanged (first, so that a row with too few or
    /// too many cells does not shift the reason out of its column).
    pub fn write(&mut self, cells: &[String], reason: &str, source: &Path, line: u64) -> Result<()> {
        if self.out.is_none() {
            let f = create_private(&self.path)?;
            let mut w = BufWriter::new(f);
            w.write_all(b"\xEF\xBB\xBF").map_err(|e| Error::io("writing", &self.path, e))?;
            let mut csvw = csv::WriterBuilder::new().flexible(true).from_writer(w);
            let mut head =
                vec!["reject_reason".to_string(), "source_file".to_string(), "source_line".to_string()];
            head.extend(self.header.iter().cloned());
            csvw.write_record(&head).map_err(|e| Error::arrow("writing quarantine", e))?;
            self.out = Some(csvw);
        }
        let w = self.out.as_mut().expect("opened above");
        let file = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let line = line.to_string();
        let rec = [reason, file.as_str(), line.as_str()].into_iter().chain(cells.iter().map(String::as_str));
        w.write_record(rec).map_err(|e| Error::arrow(format!("writing {}", self.path.display()), e))?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes the file, if one was written.
    pub fn finish(self) -> Result<u64> {
        if let Some(w) = self.out {
            let mut inner =
                w.into_inner().map_err(|e| Error::arrow(format!("writing {}", self.path.display()), e))?;
            inner.flush().map_err(|e| Error::io("writing", &self.path, e))?;
        }
        Ok(self.rows)
    }
}

/// Creates a file readable and writable by its owner only.
pub fn create_private(path: &Path) -> Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(|e| Error::io("creating", path, e))
}
