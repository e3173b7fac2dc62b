//! Config tests: defaults, accepted and refused documents (each refusal names its key).

use std::path::Path;

use super::*;

fn load_in(text: &str, base: &Path) -> Result<Config, ConfigError> {
    Config::from_toml_in(text, base)
}

fn base_with_examples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("examples")).expect("mkdir examples");
    dir
}

/// The error `text` is refused with, as the operator reads it.
fn refusal(text: &str) -> String {
    let base = base_with_examples();
    load_in(text, base.path())
        .expect_err("a refused document")
        .to_string()
}

fn problem_keys(result: Result<Config, ConfigError>) -> Vec<String> {
    match result {
        Err(ConfigError::Invalid { problems }) => problems.into_iter().map(|p| p.key).collect(),
        Err(other) => panic!("unexpected error kind: {other}"),
        Ok(_) => Vec::new(),
    }
}

#[test]
fn empty_document_yields_the_documented_defaults() {
    let base = base_with_examples();
    let config = load_in("", base.path()).expect("defaults are valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8888");
    assert_eq!(config.data_dir, base.path().join("./data"));
    assert_eq!(config.plugins_dir, base.path().join("target/plugins"));
    assert_eq!(
        config.sandbox.allowed_dirs,
        vec![base.path().join("./examples")]
    );
    assert_eq!(config.limits.max_concurrent_jobs, 4);
    assert_eq!(config.limits.max_queued_jobs, 32);
    assert_eq!(config.limits.max_body_bytes, 1024 * 1024);
    assert!(config.limits.cancel_on_disconnect);
    assert_eq!(config.scans.workers, 4);
    assert_eq!(config.scans.max_attempts, 3);
    assert_eq!(config.scans.default_tool, None);
    assert_eq!(config.public_base_url(), "http://127.0.0.1:8888");
    assert_eq!(config.uploads.max_upload_bytes, 300_000_000);
    assert_eq!(config.uploads.url_lifetime_secs, 3600);
    assert_eq!(config.log_format, LogFormat::Human);
    assert_eq!(config.http.max_connections, 512);
    assert_eq!(config.http.idle_timeout_secs, 5);
    assert_eq!(config.http.header_read_timeout_secs, 5);
    assert_eq!(config.http.body_read_timeout_secs, 10);
}

#[test]
fn accepted_documents() {
    let base = base_with_examples();
    let table = [
        "listen = \"127.0.0.1:9000\"",
        "listen = \"[::1]:9000\"",
        "log_format = \"json\"",
        "[tools.terrascan]\nbinary = \"/opt/terrascan\"\ntimeout_secs = 60\nenv_passthrough = [\"AWS_PROFILE\"]",
        "[limits]\nmax_concurrent_jobs = 1\nmax_queued_jobs = 0",
        "[sandbox]\nlandlock = \"required\"\nnetwork_isolation = \"off\"\nrun_as_uid = 1000\nrun_as_gid = 1000",
        "[http]\nshutdown_grace_secs = 0",
        "[http]\nmax_connections = 1\nidle_timeout_secs = 1\nheader_read_timeout_secs = 1\nbody_read_timeout_secs = 1",
        "[http]\nmax_connections = 1048576\nidle_timeout_secs = 3600\nheader_read_timeout_secs = 3600\nbody_read_timeout_secs = 3600",
        "[tools.terrascan]\nhome = \"examples\"",
        "[scans]\nworkers = 1\nmax_attempts = 1",
        "[scans]\nworkers = 256\nmax_attempts = 100",
        "[scans]\ndefault_tool = \"prowler\"\npublic_base_url = \"https://toolgate.example.com/\"",
        "[uploads]\nmax_upload_bytes = 1\nurl_lifetime_secs = 60\n[uploads.extract]\nmax_files = 1",
    ];
    for text in table {
        if let Err(error) = load_in(text, base.path()) {
            panic!("{text:?} should be accepted: {error}");
        }
    }
}

#[test]
fn refused_documents_name_the_key() {
    let base = base_with_examples();
    let table: &[(&str, &str)] = &[
        ("bogus = 1", "bogus"),
        ("[sandbox]\ntimeout = 3", "sandbox.timeout"),
        (
            "[limits]\nmax_concurrent_jobs = \"four\"",
            "limits.max_concurrent_jobs",
        ),
        (
            "[tools.terrascan]\nbinnary = \"/x\"",
            "tools.terrascan.binnary",
        ),
        (
            "[plugins]\nnot_a_runtime_key = 1",
            "plugins.not_a_runtime_key",
        ),
        ("listen = \"0.0.0.0:8888\"", "listen"),
        ("listen = \"10.1.2.3:80\"", "listen"),
        ("log_format = \"xml\"", "log_format"),
        ("[sandbox]\nlandlock = \"maybe\"", "sandbox.landlock"),
        ("[plugins]\nplan_timeout_ms = 0", "plugins.plan_timeout_ms"),
        (
            "[limits]\nmax_concurrent_jobs = 0",
            "limits.max_concurrent_jobs",
        ),
        ("[sandbox]\ntimeout_secs = 0", "sandbox.timeout_secs"),
        ("[scans]\nworkers = 0", "scans.workers"),
        ("[scans]\nworkers = 257", "scans.workers"),
        ("[scans]\nmax_attempts = 0", "scans.max_attempts"),
        ("[scans]\ndefault_tool = \"nmap\"", "scans.default_tool"),
        (
            "[scans]\npublic_base_url = \"ftp://example.com\"",
            "scans.public_base_url",
        ),
        (
            "[scans]\npublic_base_url = \"https://example.com/?x=1\"",
            "scans.public_base_url",
        ),
        ("[scans]\nretention_days = 0", "scans.retention_days"),
        (
            "[uploads]\nmax_upload_bytes = 0",
            "uploads.max_upload_bytes",
        ),
        (
            "[uploads.extract]\nmax_ratio = 0",
            "uploads.extract.max_ratio",
        ),
        ("[uploads]\nmax_bytes = 10", "uploads.max_bytes"),
        ("[scans]\nretries = 2", "scans.retries"),
        ("[sandbox]\nallowed_dirs = []", "sandbox.allowed_dirs"),
        (
            "[sandbox]\nallowed_dirs = [\"/does/not/exist\"]",
            "sandbox.allowed_dirs[0]",
        ),
        ("[sandbox]\nrun_as_uid = 1000", "sandbox.run_as_uid"),
        ("[tools.Bad]\nbinary = \"/x\"", "tools.Bad"),
        (
            "[tools.x]\nenv_passthrough = [\"A=B\"]",
            "tools.x.env_passthrough[0]",
        ),
        ("[tools.x]\ntimeout_secs = 0", "tools.x.timeout_secs"),
        ("[tools.x]\nhome = \"/does/not/exist\"", "tools.x.home"),
        ("listen = ", "."),
        ("[http]\nmax_connections = 0", "http.max_connections"),
        ("[http]\nmax_connections = 1048577", "http.max_connections"),
        ("[http]\nmax_connections = -1", "http.max_connections"),
        ("[http]\nidle_timeout_secs = 0", "http.idle_timeout_secs"),
        ("[http]\nidle_timeout_secs = 3601", "http.idle_timeout_secs"),
        (
            "[http]\nheader_read_timeout_secs = 0",
            "http.header_read_timeout_secs",
        ),
        (
            "[http]\nheader_read_timeout_secs = 3601",
            "http.header_read_timeout_secs",
        ),
        (
            "[http]\nbody_read_timeout_secs = 0",
            "http.body_read_timeout_secs",
        ),
        (
            "[http]\nbody_read_timeout_secs = 86400",
            "http.body_read_timeout_secs",
        ),
        (
            "[http]\nheader_timeout_secs = 5",
            "http.header_timeout_secs",
        ),
    ];
    for (text, key) in table {
        let keys = problem_keys(load_in(text, base.path()));
        assert!(
            keys.iter().any(|k| k == key),
            "{text:?}: expected a problem at {key:?}, got {keys:?}"
        );
    }
}

#[test]
fn out_of_range_http_keys_are_all_reported_with_what_is_allowed() {
    let text = refusal(
        "[http]\nmax_connections = 0\nidle_timeout_secs = 0\nheader_read_timeout_secs = 0\n\
         body_read_timeout_secs = 3601",
    );
    for expected in [
        "http.max_connections: 0 is out of range; allowed: 1 to 1048576",
        "http.idle_timeout_secs: 0 is out of range; allowed: 1 to 3600 seconds",
        "http.header_read_timeout_secs: 0 is out of range; allowed: 1 to 3600 seconds",
        "http.body_read_timeout_secs: 3601 is out of range; allowed: 1 to 3600 seconds",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn unknown_key_error_names_the_key_itself() {
    let text = refusal("[sandbox]\ntimeout = 3");
    assert!(text.contains("timeout"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let base = base_with_examples();
    let keys = problem_keys(load_in(
        "listen = \"0.0.0.0:1\"\n[limits]\nmax_concurrent_jobs = 0\n[sandbox]\ntimeout_secs = 0\n\
         [plugins]\nplan_timeout_ms = 0\nmax_instances = 0",
        base.path(),
    ));
    assert_eq!(
        keys,
        vec![
            "listen",
            "limits.max_concurrent_jobs",
            "sandbox.timeout_secs",
            "plugins.plan_timeout_ms",
            "plugins.max_instances"
        ]
    );
}

#[test]
fn absolute_paths_are_kept() {
    let base = base_with_examples();
    let examples = base.path().join("examples");
    let text = format!(
        "data_dir = \"/var/lib/toolgate\"\n[sandbox]\nallowed_dirs = [{:?}]",
        examples.display().to_string()
    );
    let config = load_in(&text, base.path()).expect("valid");
    assert_eq!(config.data_dir, Path::new("/var/lib/toolgate"));
    assert_eq!(
        config.database_path(),
        Path::new("/var/lib/toolgate/toolgate.sqlite3")
    );
    assert_eq!(config.sandbox.allowed_dirs, vec![examples]);
    assert_eq!(
        config.sandbox.output_root(),
        Path::new("/var/lib/toolgate/output")
    );
}

#[test]
fn every_schema_problem_is_reported_at_once_with_the_semantic_ones() {
    let base = base_with_examples();
    let mut keys = problem_keys(load_in(
        "bogus = 1\nlisten = \"0.0.0.0:1\"\n[sandbox]\ntimeout = 3\nlandlok = \"auto\"\n\
         [limits]\nmax_concurrent_jobs = \"four\"\n[tools.terrascan]\nbinnary = \"/x\"\n\
         timeout_secs = -1",
        base.path(),
    ));
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "bogus",
            "limits.max_concurrent_jobs",
            "listen",
            "sandbox.landlok",
            "sandbox.timeout",
            "tools.terrascan.binnary",
            "tools.terrascan.timeout_secs",
        ]
    );
}

#[test]
fn a_bad_key_is_reported_once_not_again_by_the_semantic_checks() {
    let base = base_with_examples();
    let table: &[(&str, &[&str])] = &[
        // Left at its default, `allowed_dirs` would also be "not an existing directory".
        ("[sandbox]\nallowed_dirs = 5", &["sandbox.allowed_dirs"]),
        (
            "[sandbox]\nallowed_dirs = [\"/tmp\", 5]",
            &["sandbox.allowed_dirs[1]"],
        ),
        ("[tools]\nterrascan = 5", &["tools.terrascan"]),
        ("sandbox = 5", &["sandbox"]),
    ];
    for (text, expected) in table {
        let keys = problem_keys(load_in(text, base.path()));
        assert_eq!(&keys, expected, "{text:?}");
    }
}

#[test]
fn schema_problems_keep_their_source_line() {
    let text = refusal("[limits]\nmax_queued_jobs = 1\n\n[sandbox]\ntimeout = 3\nkill_grace = 1");
    assert!(text.contains("line 5"), "{text}");
    assert!(text.contains("line 6"), "{text}");
}

#[test]
fn type_errors_say_what_toml_value_is_expected_not_the_rust_type() {
    let text =
        refusal("[limits]\nmax_concurrent_jobs = -1\n[sandbox]\ntimeout_secs = \"five minutes\"");
    assert_eq!(
        text.matches("expected a whole number of 0 or more").count(),
        2,
        "{text}"
    );
    assert!(!text.contains("usize") && !text.contains("u64"), "{text}");
}

fn plugin(name: &str, env_vars: &[&str]) -> toolgate_plugin_runtime::ToolDescription {
    toolgate_plugin_runtime::ToolDescription {
        name: name.into(),
        version: "0.1.0".into(),
        summary: "test".into(),
        executable: name.into(),
        default_timeout_secs: 60,
        needs_network: false,
        env_vars: env_vars.iter().map(ToString::to_string).collect(),
        params_schema: serde_json::json!({"type": "object"}),
        contract: toolgate_plugin_runtime::ContractVersion::V0_2_0,
        scan_template_types: Vec::new(),
        version_args: Vec::new(),
    }
}

#[test]
fn tool_sections_must_match_a_loaded_plugin_and_its_declared_environment() {
    let base = base_with_examples();
    let loaded = [
        plugin("terrascan", &[]),
        plugin("prowler", &["AWS_PROFILE"]),
    ];
    // (document, plugin files that failed to load, expected (key, message excerpt) problems)
    type Case<'a> = (&'a str, usize, &'a [(&'a str, &'a str)]);
    let table: &[Case] = &[
        ("", 0, &[]),
        ("[tools.terrascan]\ntimeout_secs = 5", 0, &[]),
        (
            "[tools.prowler]\nenv_passthrough = [\"AWS_PROFILE\"]",
            0,
            &[],
        ),
        (
            "[tools.terascan]\ntimeout_secs = 5",
            0,
            &[("tools.terascan", "loaded: terrascan, prowler")],
        ),
        (
            "[tools.checkov]\nbinary = \"/x\"",
            2,
            &[("tools.checkov", "2 plugin file(s) failed to load")],
        ),
        (
            "[tools.prowler]\nenv_passthrough = [\"AWS_PROFILE\", \"AWS_SECRET_ACCESS_KEY\"]",
            0,
            &[(
                "tools.prowler.env_passthrough[1]",
                "\"AWS_SECRET_ACCESS_KEY\" is not declared by the prowler plugin",
            )],
        ),
        (
            "[tools.terrascan]\nenv_passthrough = [\"HOME\"]",
            0,
            &[(
                "tools.terrascan.env_passthrough[0]",
                "the plugin declares: none",
            )],
        ),
    ];
    for (text, skipped, expected) in table {
        let config = load_in(text, base.path()).expect("valid on its own");
        let problems = tool_problems(&config, &loaded, *skipped);
        assert_eq!(problems.len(), expected.len(), "{text:?}: {problems:?}");
        for (problem, (key, needle)) in problems.iter().zip(expected.iter()) {
            assert_eq!(problem.key, *key, "{text:?}");
            assert!(problem.message.contains(needle), "{text:?}: {problem}");
        }
    }
}

/// One valid `[[tenants]]` entry with a key, for the tenant tables below.
const TENANT: &str = "[[tenants]]\nid = \"acme\"\ndisplay_name = \"ACME\"\n\
    allowed_tools = [\"terrascan\"]\noutput_root = \"/srv/out/acme\"\n\
    [[tenants.access_keys]]\nid = \"tgk_0123456789abcdef\"\n\
    secret_sha256 = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n";

#[test]
fn tenants_allow_a_non_loopback_listen_and_are_validated_with_their_keys() {
    let base = base_with_examples();
    let beyond = format!("listen = \"0.0.0.0:8888\"\n{TENANT}");
    let config = load_in(&beyond, base.path()).expect("tenants allow any address");
    let tenants = config.tenants().expect("valid tenants");
    assert_eq!(tenants.len(), 1);
    let table: &[(&str, &str)] = &[
        (
            "[tenants.tools.terrascan]\ntimeout_secs = 999999",
            "tenants[0].tools.terrascan.timeout_secs",
        ),
        (
            "[tenants.tools.prowler]\ntimeout_secs = 1",
            "tenants[0].tools.prowler",
        ),
        (
            "[tenants.quotas]\nmax_concurrent_jobs = 0",
            "tenants[0].quotas.max_concurrent_jobs",
        ),
    ];
    for (extra, key) in table {
        let keys = problem_keys(load_in(&format!("{TENANT}{extra}"), base.path()));
        assert!(keys.iter().any(|k| k.starts_with(key)), "{extra}: {keys:?}");
    }
    let missing_dir = TENANT.replace(
        "output_root",
        "allowed_dirs = [\"examples\", \"no-such-dir\"]\noutput_root",
    );
    let keys = problem_keys(load_in(&missing_dir, base.path()));
    assert_eq!(
        keys,
        ["tenants[0].allowed_dirs[1]"],
        "a read directory must exist"
    );
    let unknown = problem_keys(load_in(&format!("{TENANT}colour = 1"), base.path()));
    assert!(
        unknown.iter().any(|k| k.starts_with("tenants")),
        "{unknown:?}"
    );
}

#[test]
fn without_tenants_a_non_loopback_listen_is_refused_naming_the_way_out() {
    let message = refusal("listen = \"0.0.0.0:8888\"");
    assert!(message.contains("listen"), "{message}");
    assert!(message.contains("[[tenants]]"), "{message}");
}

/// `[tools.<name>] read_paths`: (document, refused key or "" when accepted, the message says).
#[test]
fn read_paths_must_exist_and_never_hold_the_daemons_state_table() {
    let base = base_with_examples();
    std::fs::create_dir(base.path().join("opt")).expect("mkdir");
    let table: &[(&str, &str, &str)] = &[
        ("[tools.x]\nread_paths = [\"opt\", \"/usr/share\"]", "", ""),
        (
            "[tools.x]\nread_paths = [\"opt\", \"missing\"]",
            "tools.x.read_paths[1]",
            "does not exist",
        ),
        // The data directory (jobs, outputs, the database) and its ancestors.
        (
            "[tools.x]\nread_paths = [\"data\"]",
            "tools.x.read_paths[0]",
            "own state",
        ),
        (
            "[tools.x]\nread_paths = [\"/\"]",
            "tools.x.read_paths[0]",
            "own state",
        ),
        (
            "[tools.x]\nread_paths = [\".\"]",
            "tools.x.read_paths[0]",
            "own state",
        ),
        (
            "[tools.x]\nread_paths = \"opt\"",
            "tools.x.read_paths",
            "expected a sequence",
        ),
    ];
    std::fs::create_dir_all(base.path().join("data/output")).expect("mkdir");
    for (text, key, says) in table {
        let result = load_in(text, base.path());
        if key.is_empty() {
            let config = result.unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                config.tools["x"].read_paths,
                [base.path().join("opt"), PathBuf::from("/usr/share")],
                "relative paths resolve against the base"
            );
            continue;
        }
        let message = match result {
            Err(error) => error.to_string(),
            Ok(_) => panic!("{text}: accepted"),
        };
        assert!(
            message.contains(key) && message.contains(says),
            "{text}: {message}"
        );
    }
}

#[test]
fn store_urls_are_checked_and_their_passwords_never_shown() {
    let table = [
        (
            "postgres://app:s3cret@db:5432/toolgate",
            "postgres://app:***@db:5432/toolgate",
        ),
        (
            "postgresql://app@db/toolgate",
            "postgresql://app@db/toolgate",
        ),
        ("postgres://db/toolgate", "postgres://db/toolgate"),
        ("no scheme at all", "***"),
    ];
    for (url, shown) in table {
        assert_eq!(super::redacted_url(url), shown, "{url}");
    }
    let base = base_with_examples();
    let keys = problem_keys(load_in("[store]\nurl = \"mysql://u:pw@h/db\"", base.path()));
    assert_eq!(keys, ["store.url"]);
    let refused = load_in("[store]\nurl = \"mysql://u:pw@h/db\"", base.path())
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        !refused.contains("pw"),
        "the password is not echoed: {refused}"
    );
    for lease in ["2", "601"] {
        let keys = problem_keys(load_in(
            &format!("[store]\nlease_secs = {lease}"),
            base.path(),
        ));
        assert_eq!(keys, ["store.lease_secs"], "lease {lease}");
    }
    let unknown = problem_keys(load_in("[store]\npath = \"x\"", base.path()));
    assert!(
        unknown.iter().any(|key| key.starts_with("store")),
        "{unknown:?}"
    );
    let accepted = load_in(
        "[store]\nurl = \"postgres://u:pw@h/db\"\ndaemon_id = \"eu-1\"",
        base.path(),
    )
    .expect("a PostgreSQL store");
    assert_eq!(accepted.daemon_id(), "eu-1");
    assert!(
        accepted.jobs_dir().ends_with("jobs/eu-1"),
        "{}",
        accepted.jobs_dir().display()
    );
}
