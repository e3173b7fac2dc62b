//! Capturing stdout and stderr: both drained concurrently (a full pipe would block the tool),
//! each kept up to a cap; bytes beyond the cap are read and discarded so the tool never blocks,
//! and the capture says it was truncated.
//!
//! Invariant: memory per stream is bounded by the cap plus one read chunk.
//!
//! Reads go straight into the kept bytes' spare capacity, grown as output arrives: most tools
//! print little or nothing, and a zeroed 64 KiB buffer per stream and job cost a `memset` and
//! a large `free` (which makes glibc consolidate its free lists) on every job. The discard
//! buffer exists only once the cap is reached.

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// Largest single read from a pipe (the default pipe buffer is 64 KiB).
const READ_CHUNK: usize = 64 * 1024;
/// Spare room made before a read when the kept bytes have less: small outputs stay small.
const MIN_READ: usize = 8 * 1024;

/// What was read from one stream so far.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Reads `pipe` to EOF into `out`, keeping at most `cap` bytes.
pub async fn drain(mut pipe: pipe::Receiver, cap: usize, out: &mut Captured) {
    let mut discard = Vec::new();
    loop {
        let keeping = out.bytes.len() < cap;
        let read = if keeping {
            make_room(&mut out.bytes, cap);
            pipe.read_buf(&mut out.bytes).await
        } else {
            discard.resize(READ_CHUNK, 0);
            pipe.read(&mut discard).await
        };
        match read {
            Ok(0) => return,
            // A read may fill more spare capacity than the cap left: cut it back.
            Ok(_) if keeping => {
                if out.bytes.len() > cap {
                    out.bytes.truncate(cap);
                    out.truncated = true;
                }
            }
            Ok(_) => out.truncated = true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading tool output");
                return;
            }
        }
    }
}

/// Makes spare capacity for the next read: `MIN_READ` bytes (less when the cap is closer),
/// growing geometrically for large outputs but never past the cap plus one chunk.
fn make_room(bytes: &mut Vec<u8>, cap: usize) {
    let wanted = cap.saturating_sub(bytes.len()).min(MIN_READ);
    if bytes.capacity() - bytes.len() >= wanted {
        return;
    }
    let target = bytes
        .capacity()
        .saturating_mul(2)
        .max(bytes.len() + wanted)
        .min(cap.saturating_add(READ_CHUNK));
    bytes.reserve_exact(target - bytes.len());
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::OwnedFd;

    use super::*;

    #[tokio::test]
    async fn cap_table() {
        // (cap, chunks written, expected kept length, truncated)
        let big = 3 * READ_CHUNK;
        let cases: &[(usize, &[usize], usize, bool)] = &[
            (10, &[3, 3], 6, false),
            (10, &[10], 10, false),
            (10, &[11], 10, true),
            (10, &[6, 6, 6], 10, true),
            (0, &[1], 0, true),
            (0, &[], 0, false),
            (100_000, &[big], 100_000, true),
            (big, &[big], big, false),
            (big, &[big, 1], big, true),
            (usize::MAX, &[big], big, false),
        ];
        for (cap, chunks, len, truncated) in cases {
            let (read, mut write) = std::io::pipe().unwrap();
            let written = chunks.to_vec();
            let writer = std::thread::spawn(move || {
                for n in written {
                    write.write_all(&vec![b'x'; n]).unwrap();
                }
            });
            let receiver = pipe::Receiver::from_owned_fd(OwnedFd::from(read)).unwrap();
            let mut out = Captured::default();
            drain(receiver, *cap, &mut out).await;
            writer.join().unwrap();
            assert_eq!(out.bytes.len(), *len, "{cap} {chunks:?}");
            assert_eq!(out.truncated, *truncated, "{cap} {chunks:?}");
            assert!(out.bytes.iter().all(|&b| b == b'x'));
            assert!(
                out.bytes.capacity() <= cap.saturating_add(READ_CHUNK),
                "{cap}: capacity {}",
                out.bytes.capacity()
            );
        }
    }
}
