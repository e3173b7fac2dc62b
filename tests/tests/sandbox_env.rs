//! The environment: a secret in the daemon's environment never reaches the tool; the child
//! gets exactly PATH, HOME, TMPDIR, LANG and the passthrough pairs. Its own file because it
//! sets a variable in this process before any thread of the test exists.

mod sandbox_support;

use std::collections::BTreeMap;
use std::time::Duration;

use sandbox_support::*;

const SECRET_NAME: &str = "TOOLGATE_TEST_SECRET";
const SECRET_VALUE: &str = "hunter2-do-not-leak";

#[test]
fn daemon_secrets_stay_out_and_passthrough_gets_in() {
    // SAFETY: set before the runtime (or any other thread of this test binary) starts: this
    // file has a single test.
    unsafe { std::env::set_var(SECRET_NAME, SECRET_VALUE) };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let f = fixture(|_| {});
        let mut run_spec = spec(&fake_tool(), Duration::from_secs(20));
        run_spec.env = vec![("AWS_PROFILE".into(), "scanner".into())];
        let result = f.run_spec(&literals(&["env"]), run_spec).await;
        let out = stdout(&result);
        assert!(!out.contains(SECRET_VALUE), "secret leaked: {out}");
        let env: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
        let names: Vec<&str> = env.keys().copied().collect();
        assert_eq!(names, ["AWS_PROFILE", "HOME", "LANG", "PATH", "TMPDIR"]);
        assert_eq!(env["AWS_PROFILE"], "scanner");
        assert_eq!(env["LANG"], "C.UTF-8");
        assert_eq!(env["PATH"], toolgate_sandbox::DEFAULT_PATH_ENV);
        let jobs_root = f.sandbox.policy().jobs_root.to_str().unwrap().to_string();
        assert!(env["HOME"].starts_with(&jobs_root) && env["HOME"].ends_with("/home"));
        assert!(env["TMPDIR"].starts_with(&jobs_root) && env["TMPDIR"].ends_with("/tmp"));

        // The daemon's initial environment, read back through /proc by the tool, is out of reach
        // too: the daemon is non-dumpable and the (root) tool holds no CAP_SYS_PTRACE.
        let daemon_environ = format!("/proc/{}/environ", std::process::id());
        let result = f
            .run(
                &literals(&["read", &daemon_environ]),
                Duration::from_secs(20),
            )
            .await;
        assert!(
            result.stdout.is_empty(),
            "daemon environ leaked: {}",
            stdout(&result)
        );
        assert_eq!(result.exit_code, Some(1));
        if is_root() {
            assert!(result.protections.capabilities_dropped);
        }

        // Refused passthrough: overriding a fixed variable or a loader variable.
        for (name, value) in [("PATH", "/tmp"), ("LD_PRELOAD", "/tmp/x.so")] {
            let job = f.sandbox.prepare(&job_id(), &literals(&["env"])).unwrap();
            let mut bad = spec(&fake_tool(), Duration::from_secs(20));
            bad.env = vec![(name.into(), value.into())];
            let err = f
                .sandbox
                .run(job, bad, tokio_util::sync::CancellationToken::new())
                .await
                .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    });
}
