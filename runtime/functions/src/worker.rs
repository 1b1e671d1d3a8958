//! One Deno process serving one version of one function of one project, on a Unix socket in its private
//! directory ([`crate::bundle`]), under the sandbox of [`crate::sandbox`].
//!
//! Its stdout and stderr are read line by line (bounded) into the function's log: console calls arrive as
//! records tagged with their invocation (see `js/bootstrap.mjs`), anything else as raw lines. A V8 heap
//! exhaustion is recognised on stderr, so the exit can be reported as such.

use crate::bundle::WorkerDir;
use crate::config::SupervisorConfig;
use crate::logs::{FunctionKey, LogRecord, Logs, MAX_LINE_BYTES};
use crate::sandbox;
use crate::store::{Bundle, ProjectEnv};
use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::UnixStream;
use tokio::process::Child;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

/// Idle connections kept per worker for the next requests.
const MAX_IDLE_CONNECTIONS: usize = 32;
/// How long the exit of a process whose output is still open may take to be observed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// What V8 prints on stderr when a heap limit is reached ("Fatal JavaScript out of memory: Reached heap
/// limit", "JavaScript heap out of memory").
const OOM_MARKER: &str = "out of memory";

/// How a worker's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The supervisor stopped it.
    Stopped,
    /// V8 reached the heap limit.
    OutOfMemory,
    /// Anything else: an exit code, or the signal that killed it.
    Crashed {
        code: Option<i32>,
        signal: Option<i32>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not prepare the worker: {0}")]
    Io(#[from] io::Error),
    /// The module did not load or did not call `Deno.serve`; its output is in the function's log.
    #[error("the function did not start ({0:?})")]
    Exited(Exit),
    #[error("the function did not start within {0:?}")]
    Timeout(Duration),
}

/// A running worker. Dropping it (or [`Worker::retire`]) stops the process and removes its directory.
pub struct Worker {
    pub key: FunctionKey,
    pub version: u64,
    pub env_revision: u64,
    dir: WorkerDir,
    stop: CancellationToken,
    exit: watch::Receiver<Option<Exit>>,
    in_flight: AtomicUsize,
    last_used: Mutex<Instant>,
    idle: Mutex<Vec<SendRequest<Body>>>,
    permits: Mutex<Vec<OwnedSemaphorePermit>>,
}

/// What a worker is started from.
pub struct Spec<'a> {
    pub key: FunctionKey,
    pub version: u64,
    pub env_revision: u64,
    pub bundle: Bundle,
    pub env: &'a ProjectEnv,
    /// Capacity the worker holds until it is retired.
    pub permits: Vec<OwnedSemaphorePermit>,
}

impl Worker {
    /// Writes the bundle, starts Deno and waits until the function listens.
    pub async fn start(
        config: &SupervisorConfig,
        spec: Spec<'_>,
        logs: Arc<Logs>,
    ) -> Result<Worker, StartError> {
        let work_dir = config.work_dir.join("workers");
        let bundle = spec.bundle;
        let dir = tokio::task::spawn_blocking(move || WorkerDir::create(&work_dir, &bundle))
            .await
            .map_err(io::Error::other)??;
        let mut child = sandbox::command(config, &dir, spec.env).spawn()?;
        let (ready_tx, ready_rx) = oneshot::channel();
        let oom = Arc::new(AtomicBool::new(false));
        let out = Output {
            logs,
            key: spec.key.clone(),
        };
        let readers = [
            tokio::spawn(out.clone().stdout(child.stdout.take(), ready_tx)),
            tokio::spawn(out.clone().stderr(child.stderr.take(), oom.clone())),
        ];
        let stop = CancellationToken::new();
        let (exit_tx, mut exit) = watch::channel(None);
        tokio::spawn(wait(child, stop.clone(), readers, oom, exit_tx, out));
        let worker = Worker {
            key: spec.key,
            version: spec.version,
            env_revision: spec.env_revision,
            dir,
            stop,
            exit: exit.clone(),
            in_flight: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            idle: Mutex::default(),
            permits: Mutex::new(spec.permits),
        };
        tokio::select! {
            Ok(()) = ready_rx => Ok(worker),
            Ok(e) = exit.wait_for(Option::is_some) => Err(StartError::Exited(e.unwrap_or(Exit::Stopped))),
            _ = tokio::time::sleep(config.start_timeout) => Err(StartError::Timeout(config.start_timeout)),
        }
    }

    /// Whether the process is still running.
    pub fn alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// How the process ended, waiting up to [`EXIT_GRACE`] for it to end (None: still running).
    pub async fn exited(&self) -> Option<Exit> {
        let mut exit = self.exit.clone();
        let ended = tokio::time::timeout(EXIT_GRACE, exit.wait_for(Option::is_some)).await;
        ended.map_or(None, |r| r.map_or(None, |e| *e))
    }

    /// Counts a request in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Idle since when, or None while requests are in flight.
    pub fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| *self.last_used.lock().expect("worker lock"))
    }

    /// Stops the process and gives its capacity back, now (requests in flight fail).
    pub fn retire(&self) {
        self.stop.cancel();
        self.release_capacity();
    }

    /// Gives the worker's capacity back while it keeps running (it is being replaced).
    pub fn release_capacity(&self) {
        self.permits.lock().expect("worker lock").clear();
    }

    /// Sends one request to the function; the response's body streams from the worker.
    pub async fn send(self: &Arc<Self>, mut req: Request<Body>) -> io::Result<Response<Incoming>> {
        // An idle connection may have been closed by the worker meanwhile: hyper then gives the request
        // back unsent, and it goes on the next connection.
        while let Some(mut sender) = self.idle_connection() {
            match sender.try_send_request(req).await {
                Ok(res) => {
                    self.recycle(sender);
                    return Ok(res);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(io::Error::other(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let res = sender.send_request(req).await.map_err(io::Error::other)?;
        self.recycle(sender);
        Ok(res)
    }

    /// Keeps the connection for a later request once this response's body has been read.
    fn recycle(self: &Arc<Self>, mut sender: SendRequest<Body>) {
        let worker = Arc::downgrade(self);
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                keep_idle(worker, sender);
            }
        });
    }

    fn idle_connection(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().expect("worker lock");
        while let Some(s) = idle.pop() {
            if s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    async fn connect(&self) -> io::Result<SendRequest<Body>> {
        let stream = UnixStream::connect(self.dir.socket()).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "worker connection ended with an error");
            }
        });
        Ok(sender)
    }
}

fn keep_idle(worker: Weak<Worker>, sender: SendRequest<Body>) {
    if let Some(w) = worker.upgrade() {
        let mut idle = w.idle.lock().expect("worker lock");
        if idle.len() < MAX_IDLE_CONNECTIONS && w.alive() {
            idle.push(sender);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A request in flight on a worker.
pub struct Busy(Arc<Worker>);

impl Busy {
    pub fn worker(&self) -> &Arc<Worker> {
        &self.0
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last_used.lock().expect("worker lock") = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits for the process to end (or stops it), then records how it ended.
async fn wait(
    mut child: Child,
    stop: CancellationToken,
    readers: [tokio::task::JoinHandle<()>; 2],
    oom: Arc<AtomicBool>,
    exit_tx: watch::Sender<Option<Exit>>,
    out: Output,
) {
    // `Child::wait` closes stdin, the worker's lifeline: keep it open while the process runs
    let lifeline = child.stdin.take();
    let (status, stopped) = tokio::select! {
        s = child.wait() => (s, false),
        _ = stop.cancelled() => {
            let _ = child.start_kill();
            (child.wait().await, true)
        }
    };
    drop(lifeline);
    // the output ends with the process; read it all before judging (the heap message comes last)
    for r in readers {
        let _ = tokio::time::timeout(EXIT_GRACE, r).await;
    }
    let exit = if stopped {
        Exit::Stopped
    } else if oom.load(Ordering::Acquire) {
        Exit::OutOfMemory
    } else {
        use std::os::unix::process::ExitStatusExt;
        let status = status.ok();
        Exit::Crashed {
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
        }
    };
    let message = match exit {
        Exit::Stopped => "worker stopped".to_string(),
        Exit::OutOfMemory => "worker ran out of memory and was stopped".to_string(),
        Exit::Crashed { code, signal } => {
            format!("worker exited (code {code:?}, signal {signal:?})")
        }
    };
    out.push(LogRecord::new(None, "worker", &message));
    let _ = exit_tx.send(Some(exit));
}

/// Where a worker's output goes.
#[derive(Clone)]
struct Output {
    logs: Arc<Logs>,
    key: FunctionKey,
}

/// A record of the bootstrap (after its `\x1e` marker).
#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    ready: bool,
    /// The invocation id the supervisor sent (a decimal string), or null outside a request.
    i: Option<String>,
    l: Option<String>,
    m: Option<String>,
}

const LEVELS: [&str; 6] = ["log", "info", "warn", "error", "debug", "trace"];

impl Output {
    fn push(&self, record: LogRecord) {
        self.logs.push(&self.key, record);
    }

    async fn stdout(self, out: Option<impl AsyncRead + Unpin>, ready: oneshot::Sender<()>) {
        let mut ready = Some(ready);
        read_lines(out, |line| {
            let Some(rec) = line.strip_prefix(b"\x1e") else {
                return self.push(LogRecord::new(
                    None,
                    "stdout",
                    &String::from_utf8_lossy(line),
                ));
            };
            match serde_json::from_slice::<Record>(rec) {
                Ok(r) if r.ready => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(r) => {
                    let level =
                        r.l.as_deref()
                            .filter(|l| LEVELS.contains(l))
                            .unwrap_or("log");
                    let invocation = r.i.and_then(|i| i.parse().ok());
                    self.push(LogRecord::new(
                        invocation,
                        level,
                        r.m.as_deref().unwrap_or(""),
                    ));
                }
                Err(_) => self.push(LogRecord::new(
                    None,
                    "stdout",
                    &String::from_utf8_lossy(rec),
                )),
            }
        })
        .await;
    }

    async fn stderr(self, err: Option<impl AsyncRead + Unpin>, oom: Arc<AtomicBool>) {
        read_lines(err, |line| {
            let text = String::from_utf8_lossy(line);
            if text.contains(OOM_MARKER) {
                oom.store(true, Ordering::Release);
            }
            self.push(LogRecord::new(None, "stderr", &text));
        })
        .await;
    }
}

/// Calls `f` with each line of `r` (without its newline), keeping at most 4 × [`MAX_LINE_BYTES`] of a line.
async fn read_lines(r: Option<impl AsyncRead + Unpin>, mut f: impl FnMut(&[u8])) {
    let Some(r) = r else { return };
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(b) => b,
        };
        let (chunk, used, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = (4 * MAX_LINE_BYTES).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        r.consume(used);
        if end {
            f(&line);
            line.clear();
        }
    }
    if !line.is_empty() {
        f(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let long = vec![b'x'; 10 * MAX_LINE_BYTES];
        let mut input = b"one\ntwo\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nlast");
        let mut got: Vec<Vec<u8>> = Vec::new();
        read_lines(Some(&input[..]), |l| got.push(l.to_vec())).await;
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], b"one");
        assert_eq!(got[2].len(), 4 * MAX_LINE_BYTES);
        assert_eq!(got[3], b"last");
    }
}
