//! Black-box tests of what confines one tenant's jobs (issue #16): each tenant reads only its
//! own `allowed_dirs`, gets its outputs under its own `output_root`, runs within its per-tool
//! limits and (root only) as its own uid, and a tenant flooding the daemon does not hold back
//! another tenant's job.

mod tenants_support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tenants_support::{call, finished_scan, json, new_key, run_tool, tenant_reading};
use toolgate_tests::{
    Daemon, EnvOptions, SlowTool, TestEnv, install_fake_tool, install_slow_tool, read_response,
    send_only_with, wait_for,
};

/// A directory under the test root holding a copy of the workspace's Terraform sample.
fn iac_dir(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let dir = env.root.join(name);
    std::fs::create_dir_all(dir.join("terraform")).expect("mkdir");
    std::fs::copy(
        env.workspace().join("terraform/main.tf"),
        dir.join("terraform/main.tf"),
    )
    .expect("copy sample");
    dir
}

fn body_of(path: &Path) -> String {
    serde_json::json!({ "iac_dir": path.join("terraform").display().to_string() }).to_string()
}

#[test]
fn each_tenant_reads_only_its_own_directories_and_writes_under_its_own_output_root() {
    let env = TestEnv::new("tenant-dirs");
    let acme_dir = iac_dir(&env, "acme-iac");
    let beta_dir = iac_dir(&env, "beta-iac");
    let (acme, beta, gamma) = (new_key("acme"), new_key("beta"), new_key("gamma"));
    let tenants = tenant_reading(&env, "acme", &[&acme], std::slice::from_ref(&acme_dir), "")
        + &tenant_reading(&env, "beta", &[&beta], std::slice::from_ref(&beta_dir), "")
        + &tenant_reading(&env, "gamma", &[&gamma], &[], "");
    let daemon = env.start(&EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        tenants,
        ..EnvOptions::default()
    });
    let (a, b, g) = (acme.bearer(), beta.bearer(), gamma.bearer());
    let as_acme = [("Authorization", a.as_str())];
    let as_beta = [("Authorization", b.as_str())];
    let as_gamma = [("Authorization", g.as_str())];

    // Its own directory, absolute or relative to its workspace (its first allowed directory).
    for body in [body_of(&acme_dir), "{\"iac_dir\": \"terraform\"}".into()] {
        let own = run_tool(&daemon, "terrascan", &as_acme, &body);
        assert_eq!(own.status, 200, "{body}: {}", own.body);
        assert_eq!(json(&own)["findings"][0]["rule_id"], "AC_AWS_0001");
    }
    // Another tenant's directory, and the daemon-wide workspace, are outside acme's.
    for outside in [&beta_dir, &env.workspace()] {
        let refused = run_tool(&daemon, "terrascan", &as_acme, &body_of(outside));
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.body.contains("iac_dir") && refused.body.contains("outside the allowed"),
            "{}",
            refused.body
        );
    }
    let beta_own = run_tool(&daemon, "terrascan", &as_beta, &body_of(&beta_dir));
    assert_eq!(beta_own.status, 200, "{}", beta_own.body);
    // A tenant with no allowed_dirs reads no directory of the host.
    let nothing = run_tool(
        &daemon,
        "terrascan",
        &as_gamma,
        "{\"iac_dir\": \"terraform\"}",
    );
    assert_eq!(nothing.status, 400, "{}", nothing.body);
    assert!(nothing.body.contains("iac_dir"), "{}", nothing.body);

    // Outputs go under the tenant's own root.
    for (tenant, header) in [("acme", &as_acme), ("beta", &as_beta)] {
        let ran = run_tool(&daemon, "prowler", header, "{}");
        assert_eq!(ran.status, 200, "{}", ran.body);
        let answer = json(&ran);
        let output = answer["output_directory"]
            .as_str()
            .expect("output_directory");
        let root = env
            .root
            .join("out")
            .join(tenant)
            .canonicalize()
            .expect("root");
        assert!(
            Path::new(output).starts_with(&root),
            "{tenant}'s output {output} is under {}",
            root.display()
        );
        assert!(
            std::fs::read_dir(output)
                .expect("output dir")
                .next()
                .is_some(),
            "prowler wrote its report there"
        );
    }
    let default_root = env.output_root();
    let leaked = std::fs::read_dir(&default_root).map_or(0, |dir| dir.count());
    assert_eq!(leaked, 0, "nothing in {}", default_root.display());
}

#[test]
fn a_tenants_per_tool_limits_tighten_the_global_ones() {
    let env = TestEnv::new("tenant-limits");
    let (acme, beta) = (new_key("acme"), new_key("beta"));
    let workspace = [env.workspace()];
    let tenants = tenant_reading(
        &env,
        "acme",
        &[&acme],
        &workspace,
        "[tenants.tools.terrascan]\ntimeout_secs = 1\n\
         [tenants.tools.prowler]\nmax_output_bytes = 64",
    ) + &tenant_reading(&env, "beta", &[&beta], &workspace, "");
    let daemon = env.start(&EnvOptions {
        terrascan: Some(install_slow_tool(
            &env.tools_dir(),
            "terrascan",
            5,
            SlowTool::Exec,
        )),
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        tenants,
        ..EnvOptions::default()
    });
    let (a, b) = (acme.bearer(), beta.bearer());
    let as_acme = [("Authorization", a.as_str())];
    let as_beta = [("Authorization", b.as_str())];
    let body = "{\"iac_dir\": \"terraform\"}";

    let cut = json(&run_tool(&daemon, "terrascan", &as_acme, body));
    assert_eq!(cut["timed_out"], true, "acme's 1 s timeout: {cut}");
    let cpu = cut["sandbox"]["rlimits"]["limits"]
        .as_array()
        .and_then(|limits| limits.iter().find(|limit| limit["name"] == "cpu_secs"))
        .cloned()
        .unwrap_or(Value::Null);
    let global_cpu = json(&run_tool(&daemon, "terrascan", &as_beta, body));
    assert_eq!(
        global_cpu["timed_out"], false,
        "beta's run finishes: {global_cpu}"
    );
    let beta_cpu = global_cpu["sandbox"]["rlimits"]["limits"]
        .as_array()
        .and_then(|limits| limits.iter().find(|limit| limit["name"] == "cpu_secs"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        cpu["value"].as_u64() < beta_cpu["value"].as_u64(),
        "acme's CPU limit follows its timeout: {cpu} vs {beta_cpu}"
    );

    // prowler's stdout is longer than acme's 64-byte cap, not than the global one.
    let capped = json(&run_tool(&daemon, "prowler", &as_acme, "{}"));
    assert_eq!(capped["truncated"], true, "{capped}");
    assert!(capped["stdout"].as_str().is_some_and(|out| out.len() <= 64));
    let whole = json(&run_tool(&daemon, "prowler", &as_beta, "{}"));
    assert_eq!(whole["truncated"], false, "{whole}");
}

#[test]
fn a_tenant_flooding_the_daemon_does_not_hold_back_another_tenants_job() {
    let env = TestEnv::new("tenant-fair");
    let (acme, beta) = (new_key("acme"), new_key("beta"));
    let workspace = [env.workspace()];
    let tenants = tenant_reading(&env, "acme", &[&acme], &workspace, "")
        + &tenant_reading(&env, "beta", &[&beta], &workspace, "");
    let daemon = env.start(&EnvOptions {
        terrascan: Some(install_slow_tool(
            &env.tools_dir(),
            "terrascan",
            1,
            SlowTool::Exec,
        )),
        limits: "max_concurrent_jobs = 1\nmax_queued_jobs = 16".into(),
        tenants,
        ..EnvOptions::default()
    });
    let (a, b) = (acme.bearer(), beta.bearer());
    let as_acme = [("Authorization", a.as_str())];
    let as_beta = [("Authorization", b.as_str())];
    let body = Some("{\"iac_dir\": \"terraform\"}");
    let queued = |header: &[(&str, &str)], expected: usize| {
        wait_for(Duration::from_secs(30), "jobs recorded", || {
            let list = json(&call(&daemon, "GET", "/api/jobs", header));
            (list["count"].as_u64() == Some(expected as u64)).then_some(())
        });
    };
    // acme floods: one running, five waiting...
    let mut open = Vec::new();
    for submitted in 1..=6 {
        open.push(send_only_with(
            daemon.port,
            "POST",
            "/api/tools/terrascan",
            &as_acme,
            body,
        ));
        queued(&as_acme, submitted);
    }
    // ...then beta asks once.
    open.push(send_only_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_beta,
        body,
    ));
    queued(&as_beta, 1);
    for stream in open {
        let answer = read_response(stream).expect("answer");
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let started = |header: &[(&str, &str)]| -> Vec<String> {
        let list = json(&call(&daemon, "GET", "/api/jobs", header));
        let mut times: Vec<String> = list["jobs"]
            .as_array()
            .expect("jobs[]")
            .iter()
            .map(|job| job["started_at"].as_str().expect("started").to_string())
            .collect();
        times.sort();
        times
    };
    let (acme_starts, beta_starts) = (started(&as_acme), started(&as_beta));
    // With one slot, beta's job runs as soon as acme's first ends: before the rest of acme's.
    assert!(
        beta_starts[0] > acme_starts[0] && beta_starts[0] < acme_starts[1],
        "beta {beta_starts:?} runs second among acme {acme_starts:?}"
    );
}

/// Root only: each tenant's tools run as its own uid, so one tenant's tool can neither signal
/// another tenant's tool nor read its outputs, and RLIMIT_NPROC counts per tenant.
#[test]
fn with_its_own_uid_a_tenants_tool_cannot_signal_or_read_another_tenants() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs a root daemon to run tools as per-tenant uids");
        return;
    }
    const ACME_UID: u32 = 64_301;
    const BETA_UID: u32 = 64_302;
    let env = TestEnv::new("tenant-uids");
    // The tool prints its uid, then tries to signal the pid and read the file it is told of
    // (files in its workspace the test writes), then sleeps if asked.
    let tool = env.tools_dir().join("terrascan");
    std::fs::write(
        &tool,
        "#!/bin/sh\ncase \"$1\" in version) echo 1.0; exit 0;; esac\n\
         echo \"uid=$(id -u)\"\n\
         if [ -f victim.pid ]; then kill -TERM \"$(cat victim.pid)\" 2>/dev/null; echo \"kill=$?\"; fi\n\
         if [ -f victim.path ]; then cat \"$(cat victim.path)\" >/dev/null 2>&1; echo \"read=$?\"; fi\n\
         if [ -f sleep ]; then sleep 30; fi\n",
    )
    .expect("write tool");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (acme, beta) = (new_key("acme"), new_key("beta"));
    let acme_dir = iac_dir(&env, "acme-iac");
    let beta_dir = iac_dir(&env, "beta-iac");
    std::fs::write(beta_dir.join("sleep"), "").expect("beta sleeps");
    let tenants = tenant_reading(
        &env,
        "acme",
        &[&acme],
        std::slice::from_ref(&acme_dir),
        &format!("run_as = {{ uid = {ACME_UID}, gid = {ACME_UID} }}"),
    ) + &tenant_reading(
        &env,
        "beta",
        &[&beta],
        std::slice::from_ref(&beta_dir),
        &format!("run_as = {{ uid = {BETA_UID}, gid = {BETA_UID} }}"),
    );
    let daemon = env.start(&EnvOptions {
        terrascan: Some(tool),
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        tenants,
        ..EnvOptions::default()
    });
    let (a, b) = (acme.bearer(), beta.bearer());
    let as_acme = [("Authorization", a.as_str())];
    let as_beta = [("Authorization", b.as_str())];
    // beta's prowler report, then beta's sleeping tool.
    let report = json(&run_tool(&daemon, "prowler", &as_beta, "{}"));
    let beta_output = report["output_directory"]
        .as_str()
        .expect("output")
        .to_string();
    let beta_report = std::fs::read_dir(&beta_output)
        .expect("beta's output")
        .next()
        .expect("a report")
        .expect("entry")
        .path();
    let sleeping = send_only_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_beta,
        Some("{\"iac_dir\": \"terraform\"}"),
    );
    let beta_pid = wait_for(Duration::from_secs(30), "beta's tool running", || {
        let list = json(&call(&daemon, "GET", "/api/processes/list", &as_beta));
        list["active_processes"].as_object()?.values().next()?["pid"].as_u64()
    });
    std::fs::write(acme_dir.join("victim.pid"), beta_pid.to_string()).expect("pid");
    std::fs::write(
        acme_dir.join("victim.path"),
        beta_report.display().to_string(),
    )
    .expect("path");

    let attack = json(&run_tool(
        &daemon,
        "terrascan",
        &as_acme,
        "{\"iac_dir\": \"terraform\"}",
    ));
    let stdout = attack["stdout"].as_str().unwrap_or_default();
    assert!(stdout.contains(&format!("uid={ACME_UID}")), "{attack}");
    assert!(
        stdout.contains("kill=1"),
        "acme cannot signal beta's tool: {stdout}"
    );
    assert!(
        stdout.contains("read=1"),
        "acme cannot read beta's report: {stdout}"
    );
    let limits = attack["sandbox"]["rlimits"]["limits"].to_string();
    assert!(
        limits.contains("processes"),
        "RLIMIT_NPROC binds acme's uid: {limits}"
    );
    assert_eq!(attack["sandbox"]["run_as"]["uid"], ACME_UID);
    // beta's tool is still running, as beta's uid, until beta stops it.
    let status = json(&call(
        &daemon,
        "GET",
        &format!("/api/processes/status/{beta_pid}"),
        &as_beta,
    ));
    assert_eq!(status["success"], true, "{status}");
    let stopped = call(
        &daemon,
        "POST",
        &format!("/api/processes/terminate/{beta_pid}"),
        &as_beta,
    );
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    let answer = json(&read_response(sleeping).expect("beta's answer"));
    assert!(
        answer["stdout"]
            .as_str()
            .is_some_and(|out| out.contains(&format!("uid={BETA_UID}"))),
        "{answer}"
    );
}

/// Root only: a tenant whose tools run as its own uid can scan what it uploads: the scan's
/// extracted tree is handed to that uid (the tool reads every file of it, or the scan fails)
/// and closed to every other uid.
#[test]
fn a_tenant_with_its_own_uid_scans_its_own_uploads() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs a root daemon to run tools as per-tenant uids");
        return;
    }
    const ACME_UID: u32 = 64_311;
    let env = TestEnv::new("tenant-uid-scan");
    // A terrascan that reads every file it is given before it reports nothing found.
    let tool = env.tools_dir().join("terrascan");
    std::fs::write(
        &tool,
        "#!/bin/sh\ncase \"$1\" in version) echo 'version: v1.19.9'; exit 0;; esac\n\
         for f in $(find . -type f); do cat \"$f\" >/dev/null || { echo \"cannot read $f as $(id -u)\" >&2; exit 9; }; done\n\
         echo '{\"results\":{\"violations\":[],\"skipped_violations\":null,\"scan_summary\":\
         {\"file/folder\":\"/x\",\"iac_type\":\"terraform\",\"scanned_at\":\"2026-01-01 00:00:00.000000 +0000 UTC\",\
         \"policies_validated\":1,\"violated_policies\":0,\"low\":0,\"medium\":0,\"high\":0}}}'\n",
    )
    .expect("write tool");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let acme = new_key("acme");
    let tenants = tenant_reading(
        &env,
        "acme",
        &[&acme],
        &[],
        &format!("run_as = {{ uid = {ACME_UID}, gid = {ACME_UID} }}"),
    );
    let config = env.write_config_edited(
        &EnvOptions {
            terrascan: Some(tool),
            tenants,
            ..EnvOptions::default()
        },
        |text| format!("{text}\n[scans]\ndefault_tool = \"terrascan\"\n"),
    );
    let daemon = Daemon::start(&config, env.port, &env.root.join("daemon.log"));
    let a = acme.bearer();
    let id = finished_scan(&daemon, &a);
    let status = json(&call(
        &daemon,
        "GET",
        &format!("/iac/v2/scans/{id}/status"),
        &[("Authorization", a.as_str())],
    ));
    let results = call(
        &daemon,
        "GET",
        &format!("/iac/v2/scans/{id}/results"),
        &[("Authorization", a.as_str())],
    );
    assert_eq!(
        status["data"]["attributes"]["status"], "passed",
        "{status} {}",
        results.body
    );
    let jobs = json(&call(
        &daemon,
        "GET",
        "/api/jobs",
        &[("Authorization", a.as_str())],
    ));
    let job_id = jobs["jobs"][0]["id"].as_str().expect("the scan's job");
    let job = json(&call(
        &daemon,
        "GET",
        &format!("/api/jobs/{job_id}"),
        &[("Authorization", a.as_str())],
    ));
    assert_eq!(job["sandbox"]["run_as"]["uid"], ACME_UID, "{job}");
    // The tree is the tenant's alone: owned by its uid, closed to every other uid.
    use std::os::unix::fs::MetadataExt;
    let tree = env.data_dir().join("scans").join(&id).join("tree");
    let meta = std::fs::metadata(&tree).expect("the scan's tree");
    assert_eq!(meta.uid(), ACME_UID, "{}", tree.display());
    assert_eq!(meta.mode() & 0o777, 0o700, "{}", tree.display());
}
