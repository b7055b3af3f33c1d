//! `ImportLog`'s first phase: the client's records are checked as they
//! arrive (chain, record against its event, every rule of an import) and
//! spooled to an unnamed file beside the data, so that memory stays
//! bounded and nothing reaches the log before the whole export passed.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use accord_store::{ImportSource, RawRecord, StoreError};

/// Records spooled to disk: `[position u64 LE][length u32 LE][record]` each.
pub(crate) struct Spool {
    file: BufWriter<File>,
    records: u64,
}

impl Spool {
    /// An empty spool in `dir`; the file is gone once the spool is dropped.
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            file: BufWriter::new(tempfile::tempfile_in(dir)?),
            records: 0,
        })
    }

    /// Adds a checked record.
    pub(crate) fn push(&mut self, record: &RawRecord) -> io::Result<()> {
        let length = u32::try_from(record.bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record over 4 GiB"))?;
        self.file.write_all(&record.position.to_le_bytes())?;
        self.file.write_all(&length.to_le_bytes())?;
        self.file.write_all(&record.bytes)?;
        self.records += 1;
        Ok(())
    }

    /// Records spooled so far.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The spooled records as chunks of `chunk` for the log.
    pub(crate) fn into_source(self, chunk: usize) -> io::Result<SpoolSource> {
        let mut file = self.file.into_inner().map_err(|error| error.into_error())?;
        file.rewind()?;
        Ok(SpoolSource {
            file: BufReader::new(file),
            chunk: chunk.max(1),
        })
    }
}

/// Reads a [`Spool`] back, chunk by chunk.
pub(crate) struct SpoolSource {
    file: BufReader<File>,
    chunk: usize,
}

impl SpoolSource {
    fn read_record(&mut self) -> io::Result<Option<RawRecord>> {
        let mut position = [0u8; 8];
        match self.file.read_exact(&mut position) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        let mut length = [0u8; 4];
        self.file.read_exact(&mut length)?;
        let mut bytes = vec![0; u32::from_le_bytes(length) as usize];
        self.file.read_exact(&mut bytes)?;
        Ok(Some(RawRecord {
            position: u64::from_le_bytes(position),
            bytes: bytes.into(),
        }))
    }
}

impl ImportSource for SpoolSource {
    fn next_chunk(&mut self) -> Result<Option<Vec<RawRecord>>, StoreError> {
        let spool_error = |error: io::Error| StoreError::failed("reading the import spool", error);
        let mut chunk = Vec::new();
        while chunk.len() < self.chunk {
            match self.read_record().map_err(spool_error)? {
                Some(record) => chunk.push(record),
                None => break,
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    fn rewind(&mut self) -> Result<(), StoreError> {
        self.file
            .rewind()
            .map_err(|error| StoreError::failed("rewinding the import spool", error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_gives_back_its_records_in_chunks_and_again_after_a_rewind() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spool = Spool::create(dir.path()).expect("spool");
        for position in 1..=5 {
            spool
                .push(&RawRecord {
                    position,
                    bytes: vec![position as u8; position as usize * 100].into(),
                })
                .expect("spooled");
        }
        assert_eq!(spool.records(), 5);
        let mut source = spool.into_source(2).expect("source");
        let mut read = || {
            let mut sizes = Vec::new();
            while let Some(chunk) = source.next_chunk().expect("reads") {
                sizes.push(
                    chunk
                        .iter()
                        .map(|record| record.position)
                        .collect::<Vec<_>>(),
                );
            }
            sizes
        };
        let expected = vec![vec![1, 2], vec![3, 4], vec![5]];
        assert_eq!(read(), expected);
        source.rewind().expect("rewinds");
        let mut again = Vec::new();
        while let Some(chunk) = source.next_chunk().expect("reads") {
            again.push(
                chunk
                    .iter()
                    .map(|record| record.position)
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(again, expected);
    }
}
