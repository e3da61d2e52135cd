//! Embedded durable log: one append-only file per stream (single partition 0), for zero-setup
//! single-node deployments. Invariants: an append is acknowledged only after `sync_data`; the
//! in-memory offset index only ever covers fsynced, checksum-verified frames; readers never see more.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Mutex};
use tracing::{debug, warn};

use crate::frame::{self, FrameError, FILE_MAGIC, FRAME_HEADER_LEN, FRAME_MAGIC};
use crate::{blocking, Delivered, EventLog, LogConsumer, LogError, Record, Stream};

/// Read budget per poll; bounds memory per poll even when `max` is large. At least one record is
/// always returned, whatever its size.
const MAX_READ_BYTES: u64 = 8 * 1024 * 1024;
/// How long ingestion should back off after a failed write (e.g. a full disk).
const WRITE_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Chunk size for the corruption scan on open.
const SCAN_CHUNK: usize = 1024 * 1024;
const LOCK_FILE: &str = "LOCK";

/// The embedded log. [`EmbeddedLog::open`] returns it in an `Arc` because it is shared between
/// ingestion and projectors; consumers keep their stream alive on their own.
pub struct EmbeddedLog {
    events: Arc<Partition>,
    dead_letter: Arc<Partition>,
    // Held for the lifetime of the log: the OS lock on it keeps a second process out.
    _lock: File,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("events", &self.events.path)
            .field("dead_letter", &self.dead_letter.path)
            .finish()
    }
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`: `events.log` and `dead-letter.log`.
    ///
    /// Scans both files to rebuild the offset index, so this does blocking IO proportional to the log
    /// size; call it from `spawn_blocking` (or before starting the runtime) in async code. A torn
    /// tail left by a crash mid-append is truncated with a warning; corruption followed by valid
    /// data is refused with [`LogError::Fatal`], because truncating there would drop acknowledged
    /// records. Fails with `Fatal` if another process holds the directory.
    pub fn open(dir: &Path) -> Result<Arc<Self>, LogError> {
        let fatal = |what: &str, e: io::Error| {
            LogError::Fatal(format!("embedded log {}: {what}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| fatal("cannot create directory", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| fatal("cannot open lock file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LogError::Fatal(format!(
                    "embedded log directory {} is in use by another process",
                    dir.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fatal("cannot lock directory", e)),
        }
        let events = Partition::open(&dir.join(format!("{}.log", Stream::Events.name())))?;
        let dead_letter = Partition::open(&dir.join(format!("{}.log", Stream::DeadLetter.name())))?;
        // A newly created file is only durable once its directory entry is.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fatal("cannot sync directory", e))?;
        Ok(Arc::new(EmbeddedLog {
            events: Arc::new(events),
            dead_letter: Arc::new(dead_letter),
            _lock: lock,
        }))
    }

    fn partition(&self, stream: Stream) -> &Arc<Partition> {
        match stream {
            Stream::Events => &self.events,
            Stream::DeadLetter => &self.dead_letter,
        }
    }
}

#[async_trait::async_trait]
impl EventLog for EmbeddedLog {
    async fn append(&self, stream: Stream, records: Vec<Record>) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let part = Arc::clone(self.partition(stream));
        // The guard moves into the blocking task: if this future is dropped mid-write, the next
        // append still waits for the write (and its fsync) to finish before touching the file.
        let writer = Arc::clone(&part.writer).lock_owned().await;
        blocking("embedded append", move || {
            let mut writer = writer;
            part.write_batch(&mut writer, &records)
        })
        .await
    }

    async fn end_offsets(&self, stream: Stream) -> Result<Vec<(i32, i64)>, LogError> {
        let end = *self.partition(stream).end_tx.borrow();
        Ok(vec![(0, to_offset(end))])
    }

    async fn consumer(
        &self,
        _group: &str,
        stream: Stream,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        let part = Arc::clone(self.partition(stream));
        let end_rx = part.end_tx.subscribe();
        Ok(Box::new(EmbeddedConsumer {
            part,
            end_rx,
            next: 0,
        }))
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

fn to_offset(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

struct Writer {
    /// File position where the next frame goes. Writes are positional, so bytes of a failed write
    /// past this point are simply overwritten by the next one.
    end_pos: u64,
    /// Set when fsync failed: the kernel may have dropped dirty pages, so nothing about the file
    /// can be trusted until a restart re-verifies it.
    poisoned: Option<String>,
}

struct Index {
    /// File position of every record, by offset.
    starts: Vec<u64>,
    /// End of the last complete frame; bounds the last record's read span.
    end_pos: u64,
}

struct Partition {
    path: PathBuf,
    file: File,
    writer: Arc<Mutex<Writer>>,
    index: RwLock<Index>,
    /// Number of durable records; consumers wait on it instead of polling the file.
    end_tx: watch::Sender<u64>,
}

impl Partition {
    fn open(path: &Path) -> Result<Partition, LogError> {
        let fatal = |what: &str, e: &dyn std::fmt::Display| {
            LogError::Fatal(format!("embedded log file {}: {what}: {e}", path.display()))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| fatal("cannot open", &e))?;
        let len = file.metadata().map_err(|e| fatal("cannot stat", &e))?.len();
        if len < FILE_MAGIC.len() as u64 {
            // Empty, or a crash while the header of a brand-new file was being written.
            let mut head = vec![0; len as usize];
            file.read_exact_at(&mut head, 0)
                .map_err(|e| fatal("cannot read header", &e))?;
            if !FILE_MAGIC.starts_with(&head) {
                return Err(fatal("not a liandong log file", &"unknown header"));
            }
            file.write_all_at(FILE_MAGIC, 0)
                .and_then(|()| file.sync_all())
                .map_err(|e| fatal("cannot initialise", &e))?;
        } else {
            let mut head = [0; FILE_MAGIC.len()];
            file.read_exact_at(&mut head, 0)
                .map_err(|e| fatal("cannot read header", &e))?;
            if &head != FILE_MAGIC {
                return Err(fatal(
                    "not a liandong log file (or an unsupported format version)",
                    &"header mismatch",
                ));
            }
        }
        let len = len.max(FILE_MAGIC.len() as u64);
        let (starts, end_pos) = scan(&file, len).map_err(|e| fatal("cannot read", &e))?;
        let end_pos = match end_pos {
            Ok(end) => end,
            Err((bad_at, why)) => {
                recover_tail(path, &file, len, bad_at, &why)?;
                bad_at
            }
        };
        debug!(path = %path.display(), records = starts.len(), bytes = end_pos, "embedded log opened");
        let count = starts.len() as u64;
        Ok(Partition {
            path: path.to_owned(),
            file,
            writer: Arc::new(Mutex::new(Writer {
                end_pos,
                poisoned: None,
            })),
            index: RwLock::new(Index { starts, end_pos }),
            end_tx: watch::Sender::new(count),
        })
    }

    fn write_batch(&self, writer: &mut Writer, records: &[Record]) -> Result<(), LogError> {
        if let Some(why) = &writer.poisoned {
            return Err(LogError::Fatal(why.clone()));
        }
        let (frame, rel_starts) = frame::encode_frame(records).map_err(LogError::Fatal)?;
        let pos = writer.end_pos;
        if let Err(e) = self.file.write_all_at(&frame, pos) {
            // Cut off what may have been written so a retry, or a restart, sees a clean end.
            return match self.file.set_len(pos) {
                Ok(()) => Err(LogError::unavailable(
                    format!("write to {} failed: {e}", self.path.display()),
                    WRITE_RETRY_AFTER,
                )),
                Err(e2) => {
                    let why = format!(
                        "write to {} failed ({e}) and the partial write could not be removed ({e2}); restart required",
                        self.path.display()
                    );
                    writer.poisoned = Some(why.clone());
                    Err(LogError::Fatal(why))
                }
            };
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the page cache may already have dropped the data while
            // reporting it clean, so retrying fsync proves nothing (the "fsyncgate" lesson).
            let why = format!(
                "fsync of {} failed ({e}); the log refuses further appends until restarted",
                self.path.display()
            );
            writer.poisoned = Some(why.clone());
            return Err(LogError::Fatal(why));
        }
        writer.end_pos = pos + frame.len() as u64;
        let count = {
            let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
            index.starts.extend(rel_starts.iter().map(|r| pos + r));
            index.end_pos = writer.end_pos;
            index.starts.len() as u64
        };
        self.end_tx.send_replace(count);
        Ok(())
    }

    /// Reads up to `max` records starting at offset `from` (which must be below the end).
    fn read(&self, from: u64, max: usize) -> Result<Vec<Delivered>, LogError> {
        let (first, starts, span_end) = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            let from_idx = usize::try_from(from).unwrap_or(usize::MAX);
            let Some(&first) = index.starts.get(from_idx) else {
                return Ok(Vec::new());
            };
            let avail = &index.starts[from_idx..];
            let mut n = avail.len().min(max);
            // Stay within the read budget, but always make progress by at least one record.
            let over_budget = avail[1..n].partition_point(|&s| s - first <= MAX_READ_BYTES);
            n = n.min(over_budget + 1);
            let span_end = avail.get(n).copied().unwrap_or(index.end_pos);
            (first, avail[..n].to_vec(), span_end)
        };
        let mut buf = vec![0; (span_end - first) as usize];
        self.file
            .read_exact_at(&mut buf, first)
            .map_err(|e| LogError::Fatal(format!("read of {} failed: {e}", self.path.display())))?;
        let corrupt = |offset: u64, why: &dyn std::fmt::Display| {
            LogError::Fatal(format!(
                "record {offset} of {} is corrupt: {why}",
                self.path.display()
            ))
        };
        let mut out = Vec::with_capacity(starts.len());
        for (i, start) in starts.iter().enumerate() {
            let offset = from + i as u64;
            let (raw, _) = frame::decode_record(&buf[(start - first) as usize..])
                .map_err(|e| corrupt(offset, &e))?;
            out.push(Delivered {
                partition: 0,
                offset: to_offset(offset),
                key: String::from_utf8(raw.key.to_vec()).map_err(|e| corrupt(offset, &e))?,
                event_id: String::from_utf8(raw.event_id.to_vec())
                    .map_err(|e| corrupt(offset, &e))?,
                payload: raw.payload.to_vec(),
            });
        }
        Ok(out)
    }
}

/// Reads and verifies the frame at `pos`. The outer error is IO, the inner one invalid data.
fn read_frame(file: &File, pos: u64, len: u64) -> io::Result<Result<(Vec<u64>, u64), FrameError>> {
    let avail = len - pos;
    let mut header = [0; FRAME_HEADER_LEN];
    let n = avail.min(FRAME_HEADER_LEN as u64) as usize;
    file.read_exact_at(&mut header[..n], pos)?;
    let (body_len, crc) = match frame::parse_header(&header[..n], avail) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    let mut body = vec![0; body_len];
    file.read_exact_at(&mut body, pos + FRAME_HEADER_LEN as u64)?;
    let body_pos = pos + FRAME_HEADER_LEN as u64;
    Ok(frame::verify_body(&body, crc).map(|rel| {
        let abs = rel.into_iter().map(|r| body_pos + r).collect();
        (abs, (FRAME_HEADER_LEN + body_len) as u64)
    }))
}

type ScanEnd = Result<u64, (u64, FrameError)>;

/// Walks the frames of a file of `len` bytes. Returns the record positions and either the end of
/// the last frame, or the position of the first invalid frame and why it is invalid.
fn scan(file: &File, len: u64) -> io::Result<(Vec<u64>, ScanEnd)> {
    let mut starts = Vec::new();
    let mut pos = FILE_MAGIC.len() as u64;
    while pos < len {
        match read_frame(file, pos, len)? {
            Ok((frame_starts, frame_len)) => {
                starts.extend(frame_starts);
                pos += frame_len;
            }
            Err(why) => return Ok((starts, Err((pos, why)))),
        }
    }
    Ok((starts, Ok(pos)))
}

/// Handles an invalid frame at `bad_at`. Since each append is one frame written after the previous
/// one was fsynced, a crash can only damage the last frame: if no valid frame follows, the tail is
/// an unacknowledged write and is cut off; otherwise acknowledged data is damaged and we stop.
fn recover_tail(
    path: &Path,
    file: &File,
    len: u64,
    bad_at: u64,
    why: &FrameError,
) -> Result<(), LogError> {
    let fatal = |e: io::Error| {
        LogError::Fatal(format!(
            "embedded log file {}: recovery failed: {e}",
            path.display()
        ))
    };
    if let Some(valid_at) = find_valid_frame(file, bad_at + 1, len).map_err(fatal)? {
        return Err(LogError::Fatal(format!(
            "embedded log file {} is corrupt at byte {bad_at} ({why}) but holds valid records at byte {valid_at}; \
             refusing to truncate acknowledged data, restore it from a backup",
            path.display()
        )));
    }
    warn!(
        path = %path.display(),
        at = bad_at,
        dropped_bytes = len - bad_at,
        reason = %why,
        "truncating torn tail of embedded log (a crash interrupted an unacknowledged append)"
    );
    file.set_len(bad_at)
        .and_then(|()| file.sync_all())
        .map_err(fatal)
}

fn find_valid_frame(file: &File, from: u64, len: u64) -> io::Result<Option<u64>> {
    let mut chunk = vec![0; SCAN_CHUNK];
    let mut off = from;
    while off + FRAME_MAGIC.len() as u64 <= len {
        let n = (len - off).min(SCAN_CHUNK as u64) as usize;
        file.read_exact_at(&mut chunk[..n], off)?;
        for (i, window) in chunk[..n].windows(FRAME_MAGIC.len()).enumerate() {
            if window == FRAME_MAGIC {
                let at = off + i as u64;
                if read_frame(file, at, len)?.is_ok() {
                    return Ok(Some(at));
                }
            }
        }
        // Overlap by magic-1 bytes so a magic straddling two chunks is still seen, exactly once.
        off += (n - (FRAME_MAGIC.len() - 1)) as u64;
    }
    Ok(None)
}

struct EmbeddedConsumer {
    part: Arc<Partition>,
    end_rx: watch::Receiver<u64>,
    next: u64,
}

#[async_trait::async_trait]
impl LogConsumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let end = *self.end_rx.borrow_and_update();
            if self.next < end {
                let (part, from) = (Arc::clone(&self.part), self.next);
                let records = blocking("embedded read", move || part.read(from, max)).await?;
                self.next += records.len() as u64;
                return Ok(records);
            }
            match tokio::time::timeout_at(deadline, self.end_rx.changed()).await {
                Err(_elapsed) => return Ok(Vec::new()),
                Ok(Ok(())) => {}
                // The sender lives in the partition we hold, so this cannot happen; if it ever
                // does, nothing will be appended anymore.
                Ok(Err(_)) => return Err(LogError::Fatal("embedded log closed".into())),
            }
        }
    }

    async fn seek(&mut self, partition: i32, offset: i64) -> Result<(), LogError> {
        if partition != 0 {
            return Err(LogError::Fatal(format!(
                "embedded log has only partition 0, cannot seek partition {partition}"
            )));
        }
        let end = *self.end_rx.borrow();
        // Positions come from the projector's database and are never past what it has read, so
        // an offset past the end means the log directory was replaced or lost data.
        match u64::try_from(offset) {
            Ok(o) if o <= end => {
                self.next = o;
                Ok(())
            }
            _ => Err(LogError::Fatal(format!(
                "seek to offset {offset} outside 0..={end} of {}; was the log directory replaced?",
                self.part.path.display()
            ))),
        }
    }

    fn generation(&self) -> u64 {
        1
    }

    async fn commit_hint(&mut self, _positions: &[(i32, i64)]) {}
}
