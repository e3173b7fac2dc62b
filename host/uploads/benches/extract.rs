//! Extraction speed against `unzip`: builds a ~100 MB zip of 10,000 files (mixed compressible
//! text and incompressible noise, in 100 directories), then extracts it with our `extract` and
//! with `unzip -q`, alternating which goes first, at least 5 rounds each, in one run. Prints the
//! medians and the ratio (target: ours at most 2x unzip's time). Removing the trees between
//! rounds, and the `sync` before each run, are not timed.
//!
//! Run: `cargo bench -p toolgate-uploads --bench extract` (needs `unzip` on PATH).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use toolgate_uploads::{ExtractLimits, extract};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

const FILES: usize = 10_000;
const DIRECTORIES: usize = 100;
const ROUNDS: usize = 9;

fn main() {
    if Command::new("unzip").arg("-v").output().is_err() {
        eprintln!("unzip is not installed (apt-get install -y unzip); nothing to compare against");
        std::process::exit(1);
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let zip_path = scratch.path().join("bench.zip");
    let started = Instant::now();
    let uncompressed = build_zip(&zip_path);
    let zip_len = std::fs::metadata(&zip_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {} : {FILES} files in {DIRECTORIES} directories, {:.1} MB zip, {:.1} MB uncompressed ({:.1?})",
        zip_path.display(),
        zip_len as f64 / 1e6,
        uncompressed as f64 / 1e6,
        started.elapsed()
    );

    let limits = ExtractLimits::default();
    let hwm_before = vm_hwm_kib();
    let (mut ours, mut unzip) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let ours_first = round % 2 == 0;
        for turn in 0..2 {
            let dest = scratch.path().join("tree");
            // Start each run with no dirty pages from the previous one's files or removal, so
            // neither tool pays for the other's writeback.
            let _ = Command::new("sync").status();
            if (turn == 0) == ours_first {
                let start = Instant::now();
                let tree = extract(&zip_path, &dest, &limits).expect("our extract");
                ours.push(start.elapsed());
                assert_eq!(tree.files as usize, FILES);
            } else {
                let start = Instant::now();
                let status = Command::new("unzip")
                    .arg("-q")
                    .arg(&zip_path)
                    .arg("-d")
                    .arg(&dest)
                    .status()
                    .expect("run unzip");
                unzip.push(start.elapsed());
                assert!(status.success(), "unzip failed");
            }
            std::fs::remove_dir_all(&dest).expect("remove tree");
        }
        println!(
            "round {round}: ours {:>8.1?}  unzip {:>8.1?}",
            ours[round], unzip[round]
        );
    }
    let hwm_after = vm_hwm_kib();
    let (ours_median, unzip_median) = (median(&mut ours), median(&mut unzip));
    println!(
        "extract median {ours_median:.1?}, unzip -q median {unzip_median:.1?}, ratio {:.2}x (target <= 2x)",
        ours_median.as_secs_f64() / unzip_median.as_secs_f64()
    );
    println!(
        "our peak RSS (VmHWM) grew {:.1} MB over all extract rounds",
        hwm_after.saturating_sub(hwm_before) as f64 * 1024.0 / 1e6
    );
}

/// Peak resident set size of this process so far, in KiB (0 if /proc is unavailable).
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Writes the benchmark zip and returns its uncompressed size. Even files are noise (1-36 KB,
/// incompressible), odd files Terraform-like text (0-16 KB, compresses ~8:1).
fn build_zip(path: &Path) -> u64 {
    let file = std::fs::File::create(path).expect("create zip");
    let mut writer = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    for index in 0..FILES {
        let name = format!("dir{:03}/file{index:05}.tf", index % DIRECTORIES);
        let content = if index % 2 == 0 {
            let len = 1_000 + random.below(35_000);
            (0..len).map(|_| random.next() as u8).collect::<Vec<u8>>()
        } else {
            text(random.below(16_000), &mut random)
        };
        total += content.len() as u64;
        writer.start_file(name, options).expect("start_file");
        writer.write_all(&content).expect("write");
    }
    writer.finish().expect("finish").flush().expect("flush");
    total
}

fn text(len: usize, random: &mut XorShift) -> Vec<u8> {
    let mut out = String::with_capacity(len + 128);
    while out.len() < len {
        let id = random.below(1_000_000);
        out.push_str(&format!(
            "resource \"aws_s3_bucket\" \"b{id}\" {{\n  bucket = \"logs-{id}\"\n  acl    = \"private\"\n}}\n"
        ));
    }
    out.truncate(len);
    out.into_bytes()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}
