//! Capturing stdout and stderr: both drained concurrently (a full pipe would block the tool),
//! each kept up to a cap; bytes beyond the cap are read and discarded so the tool never blocks,
//! and the capture says it was truncated.
//!
//! Invariant: memory per stream is bounded by the cap plus one read chunk.

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// Size of one read from a pipe (the default pipe buffer is 64 KiB).
const READ_CHUNK: usize = 64 * 1024;

/// What was read from one stream so far.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Reads `pipe` to EOF into `out`, keeping at most `cap` bytes.
pub async fn drain(mut pipe: pipe::Receiver, cap: usize, out: &mut Captured) {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) => return,
            Ok(n) => keep(out, &chunk[..n], cap),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading tool output");
                return;
            }
        }
    }
}

fn keep(out: &mut Captured, data: &[u8], cap: usize) {
    let room = cap.saturating_sub(out.bytes.len());
    let kept = data.len().min(room);
    out.bytes.extend_from_slice(&data[..kept]);
    if kept < data.len() {
        out.truncated = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_table() {
        // (cap, chunks, expected kept length, truncated)
        let cases: &[(usize, &[usize], usize, bool)] = &[
            (10, &[3, 3], 6, false),
            (10, &[10], 10, false),
            (10, &[11], 10, true),
            (10, &[6, 6, 6], 10, true),
            (0, &[1], 0, true),
            (0, &[], 0, false),
        ];
        for (cap, chunks, len, truncated) in cases {
            let mut out = Captured::default();
            for n in *chunks {
                keep(&mut out, &vec![b'x'; *n], *cap);
            }
            assert_eq!(out.bytes.len(), *len, "{cap} {chunks:?}");
            assert_eq!(out.truncated, *truncated, "{cap} {chunks:?}");
        }
    }
}
