//! `supactl up`'s log files: one JSON-lines file per service under `<data dir>/logs/`, chosen by each
//! event's tracing target (the crate that logged it; the access lines go with the gateway's), rotated by
//! size: past `max_bytes` the file becomes `<service>.log.1`, older ones shift up, and only `kept` of
//! them stay, so a service never holds more than `(kept + 1) × max_bytes` on disk. Writes are buffered
//! (one write system call per [`FLUSH_EVERY`] rather than per request line: the access lines are on every
//! request's path); warnings and errors are written at once, and everything at rotation and shutdown.
//!
//! The managed PostgreSQL server writes its own output to `pg/postgres.log` (`pg_ctl -l`, appending);
//! [`copy_postgres_log`] moves it into `logs/postgres.log` under the same rotation and truncates the
//! source past `max_bytes` (as logrotate's `copytruncate`: a line written between the last copy and the
//! truncation can be lost).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The files, by service; a file is created when its service first logs.
pub const SERVICES: [&str; 9] = [
    "gateway",
    "rest",
    "auth",
    "functions",
    "realtime",
    "storage",
    "tenant-manager",
    "postgres",
    "supactl",
];

/// The service whose file an event of `target` goes to (`supactl` for everything shared or unknown:
/// the CLI, the common crate, libraries).
pub fn service_of(target: &str) -> &'static str {
    // the gateway's access lines (runtime/gateway/src/access.rs)
    if target == "supactl::access" {
        return "gateway";
    }
    match target.split("::").next().unwrap_or(target) {
        "gateway" | "dataplane" => "gateway",
        "rest" => "rest",
        "auth" => "auth",
        "functions" => "functions",
        "realtime" => "realtime",
        "storage" => "storage",
        "tenant_manager" | "studio" => "tenant-manager",
        "pgcluster" => "postgres",
        _ => "supactl",
    }
}

/// Size-based rotation of one file.
struct Rotating {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    size: u64,
    max_bytes: u64,
    kept: usize,
}

impl Rotating {
    fn open(path: PathBuf, max_bytes: u64, kept: usize) -> Rotating {
        let mut r = Rotating {
            path,
            file: None,
            size: 0,
            max_bytes,
            kept,
        };
        r.reopen();
        r
    }

    fn reopen(&mut self) {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .ok();
        self.size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        self.file = file.map(|f| BufWriter::with_capacity(BUFFER, f));
    }

    fn flush(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.flush();
        }
    }

    /// `<service>.log` → `.log.1` → … → `.log.<kept>`, the oldest dropped; none kept: truncated.
    fn rotate(&mut self) {
        self.flush();
        self.file = None;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.kept == 0 {
            let _ = fs::remove_file(&self.path);
        } else {
            for n in (1..self.kept).rev() {
                let _ = fs::rename(numbered(n), numbered(n + 1));
            }
            let _ = fs::rename(&self.path, numbered(1));
        }
        self.reopen();
    }

    /// Writes one whole event (the fmt layer hands each formatted line over in one call), rotating
    /// first when it would take the file past the limit; `now` writes it through at once.
    fn write_line(&mut self, buf: &[u8], now: bool) -> std::io::Result<()> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate();
        }
        let Some(f) = self.file.as_mut() else {
            // could not be opened (disk full, removed directory): try again at the next rotation
            return Ok(());
        };
        f.write_all(buf)?;
        self.size += buf.len() as u64;
        if now {
            f.flush()?;
        }
        Ok(())
    }
}

/// The buffer of each file.
const BUFFER: usize = 64 * 1024;
/// How often buffered lines are written out (see [`LogFiles::flush_every`]).
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The log directory's files, the [`tracing_subscriber::fmt::MakeWriter`] of `supactl up`'s file layer.
#[derive(Clone)]
pub struct LogFiles {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    kept: usize,
    files: [OnceLock<Mutex<Rotating>>; SERVICES.len()],
}

impl LogFiles {
    /// Creates `dir` (mode 0700: logs name projects and clients) for files of at most `max_bytes`, with
    /// `kept` rotated ones each.
    pub fn new(dir: &Path, max_bytes: u64, kept: usize) -> std::io::Result<LogFiles> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(LogFiles {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                max_bytes,
                kept,
                files: Default::default(),
            }),
        })
    }

    fn file(&self, service: &'static str) -> &Mutex<Rotating> {
        let i = SERVICES
            .iter()
            .position(|s| *s == service)
            .unwrap_or(SERVICES.len() - 1);
        self.inner.files[i].get_or_init(|| {
            Mutex::new(Rotating::open(
                self.inner.dir.join(format!("{service}.log")),
                self.inner.max_bytes,
                self.inner.kept,
            ))
        })
    }

    fn write(&self, service: &'static str, buf: &[u8], now: bool) -> std::io::Result<()> {
        let mut f = self.file(service).lock().unwrap_or_else(|e| e.into_inner());
        f.write_line(buf, now)
    }

    /// Writes out every file's buffered lines.
    pub fn flush(&self) {
        for f in self.inner.files.iter().filter_map(OnceLock::get) {
            f.lock().unwrap_or_else(|e| e.into_inner()).flush();
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until `stop`, then once more.
    pub async fn flush_every(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => self.flush(),
                _ = stop.cancelled() => break,
            }
        }
        self.flush();
    }
}

/// A writer for one event, bound to its service's file.
pub struct EventWriter {
    files: LogFiles,
    service: &'static str,
    /// A warning or an error: written through at once.
    now: bool,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.files.write(self.service, buf, self.now)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFiles {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            files: self.clone(),
            service: "supactl",
            now: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> EventWriter {
        EventWriter {
            files: self.clone(),
            service: service_of(meta.target()),
            now: *meta.level() <= tracing::Level::WARN,
        }
    }
}

/// How often the PostgreSQL server's output is copied over.
const COPY_EVERY: Duration = Duration::from_millis(500);
/// The most read from the source at once.
const COPY_CHUNK: usize = 256 * 1024;

/// Copies what the managed server appends to `source` into `logs/postgres.log`, whole lines at a time,
/// until `stop` (then once more, for the server's last words); starts at most `max_bytes` from the
/// source's end.
pub async fn copy_postgres_log(
    files: LogFiles,
    source: PathBuf,
    stop: tokio_util::sync::CancellationToken,
) {
    let limit = files.inner.max_bytes;
    let mut offset = fs::metadata(&source)
        .map(|m| m.len().saturating_sub(limit))
        .unwrap_or(0);
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let last = tokio::select! {
            _ = tokio::time::sleep(COPY_EVERY) => false,
            _ = stop.cancelled() => true,
        };
        let (next, truncated) =
            copy_once(&files, &source, offset, limit, &mut partial).unwrap_or((offset, false));
        offset = next;
        if truncated {
            partial.clear();
        }
        if last {
            return;
        }
    }
}

/// One pass: the new bytes from `offset`, written line by line; the source truncated once past
/// `limit` and fully read. Returns the next offset and whether it truncated.
fn copy_once(
    files: &LogFiles,
    source: &Path,
    mut offset: u64,
    limit: u64,
    partial: &mut Vec<u8>,
) -> std::io::Result<(u64, bool)> {
    let mut f = OpenOptions::new().read(true).write(true).open(source)?;
    let len = f.metadata()?.len();
    if len < offset {
        // truncated or replaced by someone else: start over
        offset = 0;
        partial.clear();
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    (&mut f).take(COPY_CHUNK as u64).read_to_end(&mut buf)?;
    offset += buf.len() as u64;
    partial.extend_from_slice(&buf);
    while let Some(end) = partial.iter().position(|b| *b == b'\n') {
        let rest = partial.split_off(end + 1);
        files.write("postgres", partial, false)?;
        *partial = rest;
    }
    // a line longer than a chunk is written as it is
    if partial.len() > COPY_CHUNK {
        files.write("postgres", partial, false)?;
        partial.clear();
    }
    if offset >= len && len > limit {
        f.set_len(0)?;
        return Ok((0, true));
    }
    Ok((offset, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_services() {
        assert_eq!(service_of("supactl::access"), "gateway");
        assert_eq!(service_of("gateway::proxy"), "gateway");
        assert_eq!(service_of("rest::exec"), "rest");
        assert_eq!(service_of("tenant_manager::projects"), "tenant-manager");
        assert_eq!(service_of("supactl_common::directory"), "supactl");
        assert_eq!(service_of("hyper::proto"), "supactl");
        assert_eq!(service_of("supactl::commands::up"), "supactl");
        for s in SERVICES {
            assert!(SERVICES.contains(&s));
        }
    }

    #[test]
    fn files_rotate_at_the_limit_and_keep_at_most_kept() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(&dir.path().join("logs"), 100, 2).unwrap();
        let line = [b'x'; 29].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        for _ in 0..20 {
            files.write("rest", &line, false).unwrap();
        }
        files.flush();
        let logs = dir.path().join("logs");
        let mut names: Vec<String> = fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["rest.log", "rest.log.1", "rest.log.2"]);
        for n in &names {
            let len = fs::metadata(logs.join(n)).unwrap().len();
            assert!(len <= 100, "{n}: {len}");
            assert_eq!(len % 30, 0, "{n}: whole lines only");
        }
        // 20 lines of 30 bytes, 3 per file: the newest 2 in rest.log, then 3 and 3
        assert_eq!(fs::metadata(logs.join("rest.log")).unwrap().len(), 60);
    }

    #[test]
    fn lines_are_buffered_until_a_flush_and_warnings_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(dir.path(), 1 << 20, 1).unwrap();
        let path = dir.path().join("auth.log");
        files.write("auth", b"info\n", false).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        files.write("auth", b"warn\n", true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "info\nwarn\n");
        files.write("auth", b"info\n", false).unwrap();
        files.flush();
        assert_eq!(fs::read_to_string(&path).unwrap(), "info\nwarn\ninfo\n");
    }

    #[test]
    fn postgres_output_is_copied_by_lines_and_the_source_truncated_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(&dir.path().join("logs"), 1000, 1).unwrap();
        let source = dir.path().join("postgres.log");
        fs::write(&source, "LOG:  one\nLOG:  tw").unwrap();
        let mut partial = Vec::new();
        let (off, cut) = copy_once(&files, &source, 0, 1000, &mut partial).unwrap();
        assert_eq!((off, cut), (18, false));
        files.flush();
        let copied = dir.path().join("logs/postgres.log");
        assert_eq!(fs::read_to_string(&copied).unwrap(), "LOG:  one\n");
        let mut f = OpenOptions::new().append(true).open(&source).unwrap();
        f.write_all(b"o\n").unwrap();
        f.write_all(&[b'y'; 1100]).unwrap();
        f.write_all(b"\n").unwrap();
        let (off, cut) = copy_once(&files, &source, off, 1000, &mut partial).unwrap();
        assert_eq!((off, cut), (0, true));
        files.flush();
        assert_eq!(fs::metadata(&source).unwrap().len(), 0);
        // the long line went to a new file, the older lines to postgres.log.1
        assert_eq!(
            fs::read_to_string(dir.path().join("logs/postgres.log.1")).unwrap(),
            "LOG:  one\nLOG:  two\n"
        );
        assert_eq!(fs::metadata(&copied).unwrap().len(), 1101);
    }
}
