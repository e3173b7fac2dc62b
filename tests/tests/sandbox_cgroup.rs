//! cgroup mode: with a delegated cgroup v2 directory, each job runs in its own cgroup, escaped
//! descendants are killed through it, and the job cgroup is removed afterwards. Needs root and
//! a cgroup v2 mount; the test creates (and removes) its own directory under that mount. A
//! cgroup_root or a limit that cannot be applied stops the sandbox from starting (no root needed).

mod sandbox_support;

use std::path::PathBuf;
use std::time::Duration;

use sandbox_support::*;
use toolgate_sandbox::{Containment, Sandbox, SandboxPolicy};

/// The cgroup v2 mount point, from /proc/self/mounts.
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, mount, kind) = (fields.next()?, fields.next()?, fields.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(mount))
    })
}

/// Removes the delegated directory even when an assertion fails.
struct DelegatedDir(PathBuf);

impl Drop for DelegatedDir {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_mode_contains_escaped_descendants() {
    let Some(mount) = cgroup2_mount().filter(|_| is_root()) else {
        eprintln!("skipped: needs root and a cgroup v2 mount");
        return;
    };
    let delegated = DelegatedDir(mount.join(format!("toolgate-test-{}", std::process::id())));
    std::fs::create_dir(&delegated.0).unwrap();
    // Limits only for the controllers this host delegates: one it cannot apply is refused.
    let offered = std::fs::read_to_string(delegated.0.join("cgroup.controllers")).unwrap();
    let offers = |name: &str| offered.split_whitespace().any(|c| c == name);
    let f = fixture(|p| {
        p.cgroup_root = Some(delegated.0.clone());
        p.memory_max_bytes = offers("memory").then_some(512 * 1024 * 1024);
        p.pids_max = offers("pids").then_some(64);
    });
    let support = f
        .sandbox
        .capabilities()
        .cgroup
        .clone()
        .expect("cgroup detected");

    let (result, pid) = f.run_double_fork().await;
    assert_eq!(result.protections.containment, Containment::Cgroup);
    // Limits are recorded only when the controller is really there.
    assert_eq!(
        result.protections.memory_max_bytes.is_some(),
        support.memory_controller
    );
    assert_eq!(
        result.protections.pids_max.is_some(),
        support.pids_controller
    );
    assert!(!PathBuf::from(format!("/proc/{pid}")).exists());

    // The job's cgroup is gone; a normal job still runs.
    let leftovers: Vec<_> = std::fs::read_dir(&delegated.0)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let result = f
        .run(&literals(&["exit", "4"]), Duration::from_secs(20))
        .await;
    assert_eq!(result.exit_code, Some(4));

    // The tool really runs inside its job cgroup (joined before exec).
    let result = f
        .run(
            &literals(&["read", "/proc/self/cgroup"]),
            Duration::from_secs(20),
        )
        .await;
    let delegated_name = delegated
        .0
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let v2_line = stdout(&result)
        .lines()
        .find(|l| l.starts_with("0::"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        v2_line.starts_with(&format!("0::/{delegated_name}/job-")),
        "{v2_line:?}"
    );
    assert!(support.kill_file, "cgroup.kill exists on Linux >= 5.14");
}

#[test]
fn cgroup_settings_that_cannot_be_applied_refuse_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = tmp.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    let not_a_cgroup = tmp.path().to_path_buf();
    type Edit = fn(&mut SandboxPolicy, &std::path::Path);
    let table: &[(&str, Edit, Option<&str>)] = &[
        ("nothing set", |_, _| {}, None),
        (
            "memory limit without cgroup_root",
            |p, _| p.memory_max_bytes = Some(1 << 30),
            Some("memory_max_bytes"),
        ),
        (
            "pids limit without cgroup_root",
            |p, _| p.pids_max = Some(64),
            Some("pids_max"),
        ),
        (
            "cgroup_root that is not a cgroup",
            |p, dir| p.cgroup_root = Some(dir.to_path_buf()),
            Some("cgroup"),
        ),
    ];
    for (case, edit, refused) in table {
        let mut policy = SandboxPolicy {
            allowed_dirs: vec![workspace.clone()],
            output_root: tmp.path().join("output"),
            jobs_root: tmp.path().join("jobs"),
            ..SandboxPolicy::default()
        };
        edit(&mut policy, &not_a_cgroup);
        let shortfalls: Vec<String> = toolgate_sandbox::host_shortfalls(&policy)
            .iter()
            .map(ToString::to_string)
            .collect();
        let started = Sandbox::new(policy);
        match refused {
            None => {
                assert!(started.is_ok(), "{case}: {:?}", started.err());
                assert!(shortfalls.is_empty(), "{case}: {shortfalls:?}");
            }
            Some(what) => {
                let error = started.err().map(|e| e.to_string()).unwrap_or_default();
                assert!(error.contains(what), "{case}: {error:?}");
                assert!(
                    shortfalls.iter().any(|s| s.contains(what)),
                    "{case}: {shortfalls:?}"
                );
            }
        }
    }
}
