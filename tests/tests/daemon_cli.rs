//! Black-box tests of the `toolgate` command line: `serve` on the embedded default, `config
//! check`, the listen refusal, and the `plugin` inspection commands (which never run a tool).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use toolgate_tests::{
    Daemon, EnvOptions, TestEnv, install_fake_tool, plugins_dir, repo_root, toolgate_binary,
};

fn toolgate(args: &[&str]) -> Output {
    Command::new(toolgate_binary())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run toolgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `config check` on `path`, which must fail naming each of `keys`; its stderr.
fn check_names_each_key(path: &Path, keys: &[&str]) -> String {
    let output = toolgate(&["config", "check", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    for key in keys {
        assert!(
            stderr.contains(&format!("error at `{key}`")),
            "{key}: {stderr}"
        );
    }
    stderr
}

#[test]
fn config_check_accepts_a_good_file_and_explains_each_bad_key() {
    let env = TestEnv::new("cli-check");
    let good = env.write_config(&EnvOptions::default());
    let output = toolgate(&["config", "check", good.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("OK"));

    let table = [
        ("listen = \"127.0.0.1:1\"\nbogus_key = 1\n", "bogus_key"),
        ("[sandbox]\ntimeout = 3\n", "timeout"),
        (
            "[limits]\nmax_concurrent_jobs = \"many\"\n",
            "limits.max_concurrent_jobs",
        ),
        (
            "listen = \"0.0.0.0:8888\"\n",
            "no [[tenants]] are configured",
        ),
        ("[sandbox]\nlandlock = \"sometimes\"\n", "sandbox.landlock"),
        (
            "[tools.terascan]\ntimeout_secs = 60\n",
            "error at `tools.terascan`: no loaded plugin provides the tool \"terascan\"",
        ),
        (
            "[tools.prowler]\nenv_passthrough = [\"AWS_PROFILE\", \"LD_PRELOAD\"]\n",
            "error at `tools.prowler.env_passthrough[1]`: \"LD_PRELOAD\" is not declared",
        ),
    ];
    for (content, needle) in table {
        let path = env.root.join("bad.toml");
        std::fs::write(&path, content).expect("write");
        let output = toolgate(&["config", "check", path.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(1), "{content:?} should fail");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(needle),
            "{content:?}: {stderr:?} lacks {needle:?}"
        );
    }
}

#[test]
fn config_check_reports_every_bad_key_in_one_run() {
    let env = TestEnv::new("cli-check-all");
    let path = env.root.join("typos.toml");
    std::fs::write(
        &path,
        "lisen = \"127.0.0.1:1\"\n[sandbox]\ntimeout = 3\nlandlok = \"auto\"\n[limits]\nmax_queued = 1\n",
    )
    .expect("write");
    let stderr = check_names_each_key(
        &path,
        &[
            "lisen",
            "sandbox.timeout",
            "sandbox.landlok",
            "limits.max_queued",
        ],
    );
    assert!(stderr.contains("4 problem(s)"), "{stderr}");
}

#[test]
fn config_check_reports_the_files_the_hosts_and_the_plugins_problems_in_one_run() {
    let env = TestEnv::new("cli-check-stages");
    // A bad listen address and an unknown key (the file), a tool no plugin provides and an
    // undeclared variable (the plugins).
    let config = env.write_config_edited(&EnvOptions::default(), |generated| {
        generated.replace("listen = ", "lisen = \"x\"\nlisten = \"0.0.0.0:1\"\n# ")
            + "[tools.nmap]\nenv_passthrough = [\"FOO\"]\n"
    });
    check_names_each_key(&config, &["lisen", "listen", "tools.nmap"]);
}

#[test]
fn serve_refuses_a_tool_section_no_plugin_provides() {
    let env = TestEnv::new("cli-unknown-tool");
    let config = env.write_config_edited(&EnvOptions::default(), |text| {
        text + "\n[tools.terascan]\ntimeout_secs = 60\n"
    });
    let output = toolgate(&["serve", "--config", config.to_str().expect("utf-8")]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("tools.terascan") && stderr.contains("loaded: prowler, terrascan"),
        "{stderr}"
    );
}

#[test]
fn serve_without_a_config_file_runs_on_the_embedded_default_in_its_working_directory() {
    let env = TestEnv::new("cli-default");
    // Shaped like the repository root `just serve` runs in: target/plugins and examples/.
    let root = env.root.join("repo");
    let sample = root.join("examples/terraform/aws_ami");
    std::fs::create_dir_all(&sample).expect("mkdir");
    std::fs::create_dir_all(root.join("target")).expect("mkdir");
    std::os::unix::fs::symlink(plugins_dir(), root.join("target/plugins")).expect("symlink");
    std::fs::copy(
        repo_root().join("examples/terraform/aws_ami/main.tf"),
        sample.join("main.tf"),
    )
    .expect("copy sample");
    // A scanner installed where the operator's shell finds it, not on the sandbox's PATH.
    let bin = env.root.join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    install_fake_tool(&bin, "terrascan");
    let mut serve = Command::new(toolgate_binary());
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{}", env.port)])
        .current_dir(&root)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    let daemon = Daemon::spawn(serve, env.port, &env.root.join("daemon.log"));
    let health: Value = serde_json::from_str(&daemon.get("/health").body).expect("json");
    assert_eq!(health["tools_status"]["terrascan"], true, "{health}");
    let answer = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some("{\"iac_dir\": \"terraform/aws_ami\"}"),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).expect("json");
    // The allowed directory is ./examples, and the tool is the one found on the daemon's PATH.
    let command = body["command"].as_str().expect("command");
    assert!(
        command.contains(&format!("{}/examples/terraform/aws_ami", root.display()))
            && command.contains(&bin.join("terrascan").display().to_string()),
        "{command}"
    );
    assert!(body["summary"]["total"].as_u64() > Some(0), "{body}");
    // The store is ./data's.
    assert!(root.join("data/toolgate.sqlite3").is_file());
    // Outside ./examples is refused.
    let refused = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some("{\"iac_dir\": \"../target\"}"),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
}

#[test]
fn serve_refuses_a_non_loopback_listen_address() {
    let env = TestEnv::new("cli-listen");
    let config = env.write_config(&EnvOptions::default());
    let output = toolgate(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
        "--listen",
        "0.0.0.0:18888",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("no [[tenants]] are configured"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn plugin_commands_list_describe_and_dry_run_without_running_anything() {
    let env = TestEnv::new("cli-plugin");
    let config = env.write_config(&EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        ..EnvOptions::default()
    });
    let config = config.to_str().expect("utf-8");

    let list = toolgate(&["plugin", "list", "--config", config]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert!(
        listed.contains("terrascan") && listed.contains("prowler"),
        "{listed}"
    );
    assert!(
        listed.contains("UNAVAILABLE"),
        "prowler's binary is not installed: {listed}"
    );

    let describe = toolgate(&["plugin", "describe", "terrascan", "--config", config]);
    assert!(describe.status.success(), "{}", text(&describe.stderr));
    let description: Value = serde_json::from_slice(&describe.stdout).expect("JSON");
    assert_eq!(description["name"], "terrascan");
    assert!(description["params_schema"].is_object());

    let dry = toolgate(&[
        "plugin",
        "dry-run",
        "terrascan",
        "{\"iac_dir\": \"terraform\", \"severity\": \"high\"}",
        "--config",
        config,
    ]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let plan: Value = serde_json::from_slice(&dry.stdout).expect("JSON");
    let argv: Vec<&str> = plan["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(argv[0].ends_with("/terrascan"), "{argv:?}");
    assert!(argv.contains(&"scan") && argv.contains(&"high"), "{argv:?}");
    let workspace = env.workspace().canonicalize().expect("workspace");
    assert!(
        argv.contains(&workspace.join("terraform").to_str().expect("utf-8")),
        "{argv:?}"
    );

    let invalid = toolgate(&[
        "plugin",
        "dry-run",
        "terrascan",
        "{\"scan_type\": \"everything\"}",
        "--config",
        config,
    ]);
    assert_eq!(invalid.status.code(), Some(2), "{}", text(&invalid.stdout));
    let errors: Value = serde_json::from_slice(&invalid.stdout).expect("JSON");
    assert_eq!(errors["errors"][0]["field"], "scan_type", "{errors}");

    let outside = toolgate(&[
        "plugin",
        "dry-run",
        "terrascan",
        "{\"iac_dir\": \"/etc\"}",
        "--config",
        config,
    ]);
    assert_eq!(outside.status.code(), Some(2), "{}", text(&outside.stdout));

    let unknown = toolgate(&["plugin", "describe", "nmap", "--config", config]);
    assert!(!unknown.status.success());
}

/// Every entry below `dir`, sorted, each with its kind, size and mode: what a command must leave
/// as it found it.
fn tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, base: &Path, into: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let name = path
                .strip_prefix(base)
                .expect("below")
                .display()
                .to_string();
            into.push(format!("{name} {:o} {}", meta.mode(), meta.len()));
            if meta.is_dir() {
                walk(&path, base, into);
            }
        }
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries);
    entries.sort();
    entries
}

/// `plugin dry-run` is documented to run nothing; it must also create nothing. Run in an empty
/// working directory whose configuration puts data_dir (so the store, the plugin cache, the
/// jobs root and the output root) and the allowed directory inside it, every plan, accepted or
/// refused by the plugin or by the host's path checks, leaves the tree entry for entry as it
/// was (the old dry run left `data/` with the plugin cache, `jobs/` and `output/` behind).
#[test]
fn plugin_dry_run_creates_nothing_on_disk_whether_the_plan_is_accepted_or_refused() {
    let env = TestEnv::new("cli-dry-run-nothing");
    let cwd = env.root.join("cwd");
    std::fs::create_dir_all(cwd.join("examples/terraform")).expect("mkdir");
    std::fs::copy(
        repo_root().join("examples/terraform/aws_ami/main.tf"),
        cwd.join("examples/terraform/main.tf"),
    )
    .expect("copy sample");
    std::fs::write(
        cwd.join("toolgate.toml"),
        format!(
            "data_dir = \"data\"\nplugins_dir = {:?}\n[sandbox]\nallowed_dirs = [\"examples\"]\n",
            plugins_dir().display().to_string()
        ),
    )
    .expect("write config");
    let output_root = cwd.canonicalize().expect("canonical").join("data/output");
    let root = output_root.to_str().expect("utf-8");
    let before = tree(&cwd);
    // (tool, params, exit code, what stdout must contain)
    let table = [
        (
            "terrascan",
            "{\"iac_dir\": \"terraform\"}".to_string(),
            0,
            "\"argv\"",
        ),
        (
            "prowler",
            format!("{{\"output_dir\": \"{root}/reports\"}}"),
            0,
            "/data/output/reports\"",
        ),
        ("prowler", "{}".to_string(), 0, "/data/output/dry-run-"),
        // Refused by the plugin.
        (
            "terrascan",
            "{\"scan_type\": \"everything\"}".to_string(),
            2,
            "scan_type",
        ),
        // Refused by the host's path checks.
        (
            "terrascan",
            "{\"iac_dir\": \"/etc\"}".to_string(),
            2,
            "iac_dir",
        ),
        (
            "prowler",
            format!("{{\"output_dir\": \"{root}/a/b\"}}"),
            2,
            "output_dir",
        ),
    ];
    for (tool, params, code, needle) in table {
        let output = Command::new(toolgate_binary())
            .args([
                "plugin",
                "dry-run",
                tool,
                &params,
                "--config",
                "toolgate.toml",
            ])
            .current_dir(&cwd)
            .output()
            .expect("run toolgate");
        let stdout = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{tool} {params}: {stdout}{}",
            text(&output.stderr)
        );
        assert!(stdout.contains(needle), "{tool} {params}: {stdout}");
        assert_eq!(tree(&cwd), before, "{tool} {params} changed the tree");
    }
}

/// The documented example configuration (every key) must stay valid as the schema evolves.
#[test]
fn the_example_and_demo_configurations_in_the_repository_are_valid() {
    for file in ["toolgate.example.toml", "toolgate.demo.toml"] {
        let output = toolgate(&["config", "check", file]);
        assert!(
            output.status.success(),
            "{file} is invalid: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains("OK"));
    }
}

#[test]
fn config_check_asks_the_host_for_the_hardening_the_file_requires() {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run `config check` as an unprivileged user");
        return;
    }
    let path =
        std::env::temp_dir().join(format!("toolgate-host-check-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[sandbox]\nlandlock = \"required\"\nnetwork_isolation = \"required\"\nrun_as_uid = 1000\nrun_as_gid = 1000\n\
         [tools.terascan]\ntimeout_secs = 1\n",
    )
    .expect("write");
    // As root, this host offers all three: only the tool section no plugin provides is wrong.
    let output = toolgate(&["config", "check", path.to_str().expect("utf-8")]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("1 problem(s)"), "{stderr}");
    assert!(stderr.contains("error at `tools.terascan`"), "{stderr}");
    // As nobody, a network namespace and a change of identity are out of reach; Landlock is not.
    let output = Command::new(toolgate_binary())
        .args(["config", "check", path.to_str().expect("utf-8")])
        .current_dir(repo_root())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run toolgate as nobody");
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
    assert!(stderr.contains("error at `tools.terascan`"), "{stderr}");
    assert!(
        stderr.contains("error at `sandbox.network_isolation`"),
        "{stderr}"
    );
    assert!(stderr.contains("error at `sandbox.run_as_uid`"), "{stderr}");
    assert!(!stderr.contains("sandbox.landlock"), "{stderr}");
}

/// `config check` shows, per tool, the binary, what it may read beyond the system paths (worked
/// out from the binary, and `read_paths`), each with why, and its probe; a missing tool is
/// listed unavailable with its key, and a `read_paths` entry that would expose the daemon's
/// state is a problem naming the key.
#[test]
fn config_check_shows_what_each_tool_may_read_and_why() {
    let env = TestEnv::new("cli-reads");
    // A script whose `#!` interpreter is installed outside every system path.
    let prefix = env.root.join("opt-tool");
    std::fs::create_dir_all(prefix.join("bin")).expect("mkdir");
    std::fs::create_dir_all(env.root.join("extra")).expect("mkdir");
    std::fs::copy("/bin/sh", prefix.join("bin/sh")).expect("copy sh");
    let terrascan = env.tools_dir().join("terrascan");
    std::fs::write(&terrascan, format!("#!{}/bin/sh\n", prefix.display())).expect("script");
    std::fs::set_permissions(
        &terrascan,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let options = EnvOptions {
        terrascan: Some(terrascan.clone()),
        terrascan_extra: format!(
            "read_paths = [{:?}]",
            env.root.join("extra").display().to_string()
        ),
        ..EnvOptions::default()
    };
    let path = env.write_config(&options);
    let output = toolgate(&["config", "check", path.to_str().expect("utf-8")]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let root = env.root.canonicalize().expect("canonical");
    for line in [
        format!(
            "  terrascan: {} (probe passed:",
            root.join("tools/terrascan").display()
        ),
        format!(
            "    reads {} (install prefix of the interpreter {}/bin/sh)",
            root.join("opt-tool").display(),
            root.join("opt-tool").display()
        ),
        format!(
            "    reads {} (tools.terrascan.read_paths[0])",
            root.join("extra").display()
        ),
        "  prowler: UNAVAILABLE: ".to_string(),
    ] {
        assert!(stdout.contains(&line), "{line:?} in:\n{stdout}");
    }

    let exposing = env.write_config(&EnvOptions {
        terrascan_extra: format!("read_paths = [{:?}]", env.data_dir().display().to_string()),
        ..options
    });
    let stderr = check_names_each_key(&exposing, &["tools.terrascan.read_paths[0]"]);
    assert!(stderr.contains("own state"), "{stderr}");
}
