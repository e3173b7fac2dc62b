//! `toolgate plugin parse TOOL --exit-code N --stdout FILE [--stderr FILE] [--output-dir DIR]`:
//! builds the `Outcome` a run with that captured output would hand to `parse`.
//!
//! Invariants: the outcome is built exactly as the daemon builds it from a real run: output
//! files are the regular files under the directory (names relative to it, sorted, symlinks not
//! followed), each cut at `MAX_CAPTURED_FILE_BYTES` with `truncated` set, and stdout/stderr cut
//! at `MAX_CAPTURED_STREAM_BYTES` with `output_truncated` set; so an author sees here what the
//! plugin would see in production.

use std::path::{Path, PathBuf};

use toolgate_plugin_runtime::{Outcome, OutputFile};

/// Largest stdout or stderr handed to `parse`, as the daemon's default output cap.
pub const MAX_CAPTURED_STREAM_BYTES: usize = 64 << 20;
/// Largest output file handed to `parse`, as the daemon's default output-file cap.
pub const MAX_CAPTURED_FILE_BYTES: usize = 64 << 20;
/// Most output files read: a report directory holds a handful.
pub const MAX_CAPTURED_FILES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ParseRunError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{dir} holds more than {MAX_CAPTURED_FILES} files; point --output-dir at the run's own output directory"
    )]
    TooManyFiles { dir: PathBuf },
}

/// The outcome of a run that exited with `exit_code` and printed `stdout`/`stderr` (files), with
/// the files under `output_dir`.
pub fn captured_outcome(
    exit_code: Option<i32>,
    stdout: &Path,
    stderr: Option<&Path>,
    output_dir: Option<&Path>,
) -> Result<Outcome, ParseRunError> {
    let (stdout, stdout_cut) = read_capped(stdout, MAX_CAPTURED_STREAM_BYTES)?;
    let (stderr, stderr_cut) = match stderr {
        Some(path) => read_capped(path, MAX_CAPTURED_STREAM_BYTES)?,
        None => (Vec::new(), false),
    };
    let mut files = Vec::new();
    if let Some(dir) = output_dir {
        let mut paths = Vec::new();
        collect_files(dir, dir, &mut paths)?;
        paths.sort();
        for (name, path) in paths {
            let (content, truncated) = read_capped(&path, MAX_CAPTURED_FILE_BYTES)?;
            files.push(OutputFile {
                name,
                content,
                truncated,
            });
        }
    }
    Ok(Outcome {
        exit_code,
        timed_out: false,
        stdout,
        stderr,
        output_truncated: stdout_cut || stderr_cut,
        files,
    })
}

fn read_capped(path: &Path, max: usize) -> Result<(Vec<u8>, bool), ParseRunError> {
    let mut bytes = std::fs::read(path).map_err(|source| ParseRunError::Read {
        path: path.to_owned(),
        source,
    })?;
    let cut = bytes.len() > max;
    bytes.truncate(max);
    Ok((bytes, cut))
}

fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), ParseRunError> {
    let read_error = |source| ParseRunError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let kind = entry.file_type().map_err(read_error)?;
        let path = entry.path();
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if kind.is_file() {
            if out.len() >= MAX_CAPTURED_FILES {
                return Err(ParseRunError::TooManyFiles {
                    dir: root.to_owned(),
                });
            }
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((name, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_relative_sorted_and_links_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("sub")).expect("mkdir");
        std::fs::write(out.join("b.json"), b"B").expect("write");
        std::fs::write(out.join("sub/a.json"), b"A").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", out.join("link")).expect("symlink");
        let stdout = dir.path().join("stdout");
        std::fs::write(&stdout, b"report").expect("write");
        let outcome = captured_outcome(Some(3), &stdout, None, Some(&out)).expect("outcome");
        let names: Vec<&str> = outcome.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b.json", "sub/a.json"]);
        assert_eq!(outcome.exit_code, Some(3));
        assert_eq!(outcome.stdout, b"report");
        assert!(!outcome.output_truncated);
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let error = captured_outcome(Some(0), Path::new("/nonexistent/stdout"), None, None)
            .expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with("cannot read /nonexistent/stdout"),
            "{error}"
        );
    }
}
