//! The services' log lines on stderr. Off a terminal (JSON lines into a file, a pipe, CloudWatch) the lines
//! gather in a buffer written out every [`FLUSH_EVERY`] or once [`BUFFER`] bytes wait: one write system
//! call per flush instead of one per line, and the gateway writes an access line per request (a write
//! per request was about a tenth of the gateway's CPU per request in `bench/gateway.sh`). Warnings and
//! errors go out at once, with whatever is buffered before them, so the order holds. On a terminal every
//! line is written at once. [`flush`] runs at exit; a crash can lose at most the last interval's lines.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How often buffered lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Buffered bytes past which the buffer is written out before the interval ends.
pub const BUFFER: usize = 64 * 1024;

/// Lines waiting for `out`.
pub struct Buffered<W: Write> {
    inner: Mutex<(Vec<u8>, W)>,
    /// Every line written through at once (a terminal).
    unbuffered: bool,
}

impl<W: Write> Buffered<W> {
    pub fn new(out: W, unbuffered: bool) -> Buffered<W> {
        Buffered {
            inner: Mutex::new((Vec::with_capacity(BUFFER), out)),
            unbuffered,
        }
    }

    /// Takes one whole line (the fmt layer hands each formatted event over in one call).
    fn line(&self, line: &[u8], now: bool) -> std::io::Result<()> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (buf, out) = &mut *guard;
        buf.extend_from_slice(line);
        if now || self.unbuffered || buf.len() >= BUFFER {
            return write_out(buf, out);
        }
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&self) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (buf, out) = &mut *guard;
        let _ = write_out(buf, out);
    }
}

fn write_out<W: Write>(buf: &mut Vec<u8>, out: &mut W) -> std::io::Result<()> {
    let written = out.write_all(buf).and_then(|()| out.flush());
    // a line that cannot be written (stderr closed) is dropped rather than kept growing
    buf.clear();
    written
}

/// A writer for one event.
pub struct EventWriter<'a, W: Write> {
    to: &'a Buffered<W>,
    /// A warning or an error: written out at once.
    now: bool,
}

impl<W: Write> Write for EventWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.to.line(buf, self.now)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write + 'static> tracing_subscriber::fmt::MakeWriter<'_> for &'static Buffered<W> {
    type Writer = EventWriter<'static, W>;

    fn make_writer(&self) -> Self::Writer {
        EventWriter {
            to: self,
            now: true,
        }
    }

    fn make_writer_for(&self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EventWriter {
            to: self,
            now: *meta.level() <= tracing::Level::WARN,
        }
    }
}

static STDERR: OnceLock<Buffered<std::io::Stderr>> = OnceLock::new();

/// The process's stderr for log lines (buffered unless `terminal`); the first call decides, and starts
/// the thread that writes the buffer out every [`FLUSH_EVERY`].
pub fn stderr(terminal: bool) -> &'static Buffered<std::io::Stderr> {
    STDERR.get_or_init(|| {
        if !terminal {
            let _ = std::thread::Builder::new()
                .name("log-flush".into())
                .spawn(|| loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                });
        }
        Buffered::new(std::io::stderr(), terminal)
    })
}

/// Writes out the buffered log lines (at exit).
pub fn flush() {
    if let Some(s) = STDERR.get() {
        s.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(b: &Buffered<Vec<u8>>) -> String {
        String::from_utf8(b.inner.lock().unwrap().1.clone()).unwrap()
    }

    #[test]
    fn lines_wait_for_a_flush_and_a_warning_takes_them_out_in_order() {
        let b = Buffered::new(Vec::new(), false);
        b.line(b"one\n", false).unwrap();
        b.line(b"two\n", false).unwrap();
        assert_eq!(written(&b), "");
        b.line(b"three\n", true).unwrap();
        assert_eq!(written(&b), "one\ntwo\nthree\n");
        b.line(b"four\n", false).unwrap();
        b.flush();
        assert_eq!(written(&b), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn a_full_buffer_is_written_out_and_a_terminal_gets_every_line_at_once() {
        let b = Buffered::new(Vec::new(), false);
        let line = vec![b'x'; 1000];
        for _ in 0..BUFFER / 1000 {
            b.line(&line, false).unwrap();
        }
        assert_eq!(written(&b), "");
        b.line(&line, false).unwrap();
        assert_eq!(written(&b).len(), (BUFFER / 1000 + 1) * 1000);

        let t = Buffered::new(Vec::new(), true);
        t.line(b"now\n", false).unwrap();
        assert_eq!(written(&t), "now\n");
    }
}
