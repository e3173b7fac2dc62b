//! Plugin stdout/stderr: captured per call into a bounded buffer that never traps the guest, then
//! appended to the plugin's bounded log and emitted through `tracing` with the plugin name.
//!
//! Invariant: a plugin can make the host keep at most `log_capacity_bytes` of its output per call
//! and per plugin; writing more silently drops the excess (counted), it does not fail the call.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Largest write the capture announces as possible at once: the guest's stdio writes in chunks of
/// this size, whatever the remaining capacity, so a full buffer never blocks or closes the stream.
const WRITE_CHUNK_BYTES: usize = 64 << 10;
/// Most bytes of one call's output copied into a single tracing event: keeps log lines readable.
const TRACE_EVENT_BYTES: usize = 4 << 10;

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
}

/// One call's stdout or stderr: keeps the first `capacity` bytes, counts the rest.
#[derive(Debug, Clone)]
pub(crate) struct OutputCapture {
    captured: Arc<Mutex<Captured>>,
    capacity: usize,
}

impl OutputCapture {
    pub(crate) fn new(capacity: usize) -> Self {
        OutputCapture {
            captured: Arc::default(),
            capacity,
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.capacity.saturating_sub(captured.bytes.len());
        let kept = bytes.len().min(room);
        captured.bytes.extend_from_slice(&bytes[..kept]);
        captured.dropped += bytes.len() - kept;
    }

    /// The captured text (lossy UTF-8) and how many bytes were dropped.
    fn take(&self) -> (String, usize) {
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        let captured = std::mem::take(&mut *captured);
        (
            String::from_utf8_lossy(&captured.bytes).into_owned(),
            captured.dropped,
        )
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_CHUNK_BYTES)
    }
}

#[async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The stdout and stderr captures of one call.
#[derive(Debug, Clone)]
pub(crate) struct CallOutput {
    pub(crate) stdout: OutputCapture,
    pub(crate) stderr: OutputCapture,
}

impl CallOutput {
    pub(crate) fn new(capacity: usize) -> Self {
        CallOutput {
            stdout: OutputCapture::new(capacity),
            stderr: OutputCapture::new(capacity),
        }
    }
}

/// The most recent output of one plugin, at most `capacity` bytes.
#[derive(Debug)]
pub(crate) struct PluginLog {
    text: Mutex<String>,
    capacity: usize,
}

impl PluginLog {
    pub(crate) fn new(capacity: usize) -> Self {
        PluginLog {
            text: Mutex::new(String::new()),
            capacity,
        }
    }

    pub(crate) fn contents(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Moves a finished call's output into this log and into tracing.
    pub(crate) fn record(&self, plugin: &str, call: &str, output: &CallOutput) {
        for (stream, capture) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let (text, dropped) = capture.take();
            if text.is_empty() && dropped == 0 {
                continue;
            }
            tracing::info!(
                plugin,
                call,
                stream,
                dropped_bytes = dropped,
                output = %head(&text, TRACE_EVENT_BYTES),
                "plugin output"
            );
            let mut entry = text;
            if dropped > 0 {
                entry.push_str(&format!("\n[{dropped} more bytes of {stream} dropped]\n"));
            }
            self.append(&entry);
        }
    }

    fn append(&self, entry: &str) {
        let mut text = self.text.lock().unwrap_or_else(PoisonError::into_inner);
        text.push_str(entry);
        if text.len() > self.capacity {
            let mut cut = text.len() - self.capacity;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
    }
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_first_bytes_and_counts_the_rest() {
        let capture = OutputCapture::new(5);
        capture.push(b"abc");
        capture.push(b"defg");
        assert_eq!(capture.take(), ("abcde".to_string(), 2));
        assert_eq!(capture.take(), (String::new(), 0));
    }

    #[test]
    fn log_keeps_the_most_recent_bytes_at_char_boundaries() {
        let cases: &[(&[&str], usize, &str)] = &[
            (&["hello"], 10, "hello"),
            (&["hello", "world"], 7, "loworld"),
            (&["ééé"], 3, "é"),
            (&["anything"], 0, ""),
        ];
        for (entries, capacity, expected) in cases {
            let log = PluginLog::new(*capacity);
            for entry in *entries {
                log.append(entry);
            }
            assert_eq!(log.contents(), *expected, "{entries:?} into {capacity}");
        }
    }

    #[test]
    fn record_notes_dropped_bytes() {
        let output = CallOutput::new(4);
        output.stderr.push(b"panicked at x");
        let log = PluginLog::new(1024);
        log.record("hostile", "plan", &output);
        assert_eq!(log.contents(), "pani\n[9 more bytes of stderr dropped]\n");
    }

    #[test]
    fn head_cuts_at_char_boundary() {
        assert_eq!(head("aé", 2), "a");
        assert_eq!(head("abc", 10), "abc");
    }
}
