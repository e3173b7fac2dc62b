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
    assert_eq!(config.log_format, LogFormat::Human);
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
        ("listen = ", "."),
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
fn unknown_key_error_names_the_key_itself() {
    let base = base_with_examples();
    let error = load_in("[sandbox]\ntimeout = 3", base.path()).expect_err("unknown key");
    let text = error.to_string();
    assert!(text.contains("timeout"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let base = base_with_examples();
    let keys = problem_keys(load_in(
        "listen = \"0.0.0.0:1\"\n[limits]\nmax_concurrent_jobs = 0\n[sandbox]\ntimeout_secs = 0",
        base.path(),
    ));
    assert_eq!(
        keys,
        vec![
            "listen",
            "limits.max_concurrent_jobs",
            "sandbox.timeout_secs"
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
