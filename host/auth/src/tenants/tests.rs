//! Allow/deny tables for `[[tenants]]`, written as the TOML an operator would write.

use serde::Deserialize;

use super::*;

const HASH_A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const HASH_B: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    tenants: Vec<TenantConfig>,
}

fn parse(text: &str) -> Result<Vec<TenantConfig>, toml::de::Error> {
    toml::from_str::<Document>(text).map(|document| document.tenants)
}

fn globals() -> GlobalLimits {
    GlobalLimits {
        timeout_secs: 3600,
        memory_bytes: Some(2 << 30),
        max_output_bytes: 16 << 20,
        max_concurrent_jobs: 8,
        tools: ["checkov", "prowler", "terrascan"].map(String::from).into(),
    }
}

/// Two valid tenants; each deny case below edits one line of it.
const VALID: &str = r#"
[[tenants]]
id = "acme"
display_name = "ACME platform team"
access_keys = [{ id = "tgk_0123456789abcdef", secret_sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" }]
allowed_tools = ["terrascan", "prowler"]
allowed_dirs = ["/srv/acme/repos"]
output_root = "/srv/toolgate/out/acme"
role = "admin"
run_as = { uid = 1001, gid = 1001 }
quotas = { max_concurrent_jobs = 2, max_queued_scans = 10, requests_per_second = 20 }
[tenants.tools.prowler]
timeout_secs = 1800
memory_bytes = 1073741824
max_output_bytes = 1048576

[[tenants]]
id = "globex"
display_name = "Globex"
access_keys = [{ id = "tgk_fedcba9876543210", secret_sha256 = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d" }]
allowed_tools = ["checkov"]
allowed_dirs = ["/srv/globex"]
output_root = "/srv/toolgate/out/globex"
"#;

#[test]
fn a_valid_configuration_is_accepted_with_every_field() {
    let configs = parse(VALID).expect("valid TOML");
    let tenants = Tenants::validate(&configs, &globals()).expect("valid tenants");
    assert_eq!(tenants.len(), 2);
    let acme = tenants
        .get(&TenantId::parse("acme").expect("id"))
        .expect("acme");
    assert_eq!(acme.role, Role::Admin);
    assert_eq!(
        acme.run_as,
        Some(RunAs {
            uid: 1001,
            gid: 1001
        })
    );
    assert_eq!(acme.access_keys[0].secret_sha256.to_hex(), HASH_A);
    assert_eq!(
        acme.quotas.requests_per_second.map(NonZeroU32::get),
        Some(20)
    );
    assert_eq!(acme.limits_for("prowler").timeout_secs, Some(1800));
    assert_eq!(acme.limits_for("terrascan"), ToolLimits::default());
    let globex = tenants.iter().nth(1).expect("globex");
    assert_eq!(globex.role, Role::User, "role defaults to user");
    assert_eq!(globex.quotas, Quotas::default());
    assert!(Tenants::validate(&[], &globals()).expect("none").is_empty());
}

#[test]
fn unknown_or_mistyped_keys_are_refused_by_the_parser() {
    let table: &[(&str, &str)] = &[
        ("role = \"admin\"", "role = \"root\""),
        ("role = \"admin\"", "roles = \"admin\""),
        ("max_output_bytes = 1048576", "max_output_byte = 1048576"),
        ("requests_per_second = 20", "requests_per_second = -1"),
        (
            "run_as = { uid = 1001, gid = 1001 }",
            "run_as = { uid = 1001 }",
        ),
        (
            "run_as = { uid = 1001, gid = 1001 }",
            "run_as = { uid = 1001, gid = 1001, groups = [] }",
        ),
        (
            "secret_sha256 = \"ba78",
            "secret = \"x\", secret_sha256 = \"ba78",
        ),
        ("output_root = \"/srv/toolgate/out/globex\"", ""),
    ];
    for (from, to) in table {
        let edited = VALID.replacen(from, to, 1);
        assert_ne!(edited, VALID, "{from:?} must be in the fixture");
        assert!(parse(&edited).is_err(), "{to:?} must be refused");
    }
}

#[test]
fn each_problem_names_its_key_and_says_what_is_allowed() {
    let table: &[(&str, &str, &str, &str)] = &[
        (
            "id = \"acme\"",
            "id = \"ACME\"",
            "tenants[0].id",
            "a-z, 0-9",
        ),
        (
            "id = \"globex\"",
            "id = \"acme\"",
            "tenants[1].id",
            "also tenants[0]'s id",
        ),
        (
            "display_name = \"Globex\"",
            "display_name = \"\"",
            "tenants[1].display_name",
            "1 to 128",
        ),
        (
            "display_name = \"Globex\"",
            "display_name = \"a\\nb\"",
            "tenants[1].display_name",
            "control",
        ),
        (
            "tgk_fedcba9876543210",
            "tgk_0123456789abcdef",
            "tenants[1].access_keys[0].id",
            "also tenants[0].access_keys[0]'s id",
        ),
        (
            "tgk_fedcba9876543210",
            "key-1",
            "tenants[1].access_keys[0].id",
            "tgk_",
        ),
        (
            HASH_B,
            HASH_A,
            "tenants[1].access_keys[0].secret_sha256",
            "same as tenants[0].access_keys[0]'s",
        ),
        (
            HASH_B,
            &HASH_B[..63],
            "tenants[1].access_keys[0].secret_sha256",
            "this value has 63 characters",
        ),
        (
            HASH_B,
            &HASH_B.replace('e', "z"),
            "tenants[1].access_keys[0].secret_sha256",
            "some not hex",
        ),
        (
            HASH_B,
            "tgs_3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
            "tenants[1].access_keys[0].secret_sha256",
            "holds a secret",
        ),
        (
            "allowed_tools = [\"checkov\"]",
            "allowed_tools = [\"nmap\"]",
            "tenants[1].allowed_tools[0]",
            "configured: checkov, prowler, terrascan",
        ),
        (
            "allowed_dirs = [\"/srv/globex\"]",
            "allowed_dirs = [\"/srv/../etc\"]",
            "tenants[1].allowed_dirs[0]",
            "'..'",
        ),
        (
            "allowed_dirs = [\"/srv/globex\"]",
            "allowed_dirs = [\"\"]",
            "tenants[1].allowed_dirs[0]",
            "empty",
        ),
        (
            "out/globex\"",
            "out/acme\"",
            "tenants[1].output_root",
            "overlaps tenants[0].output_root",
        ),
        (
            "out/globex\"",
            "out\"",
            "tenants[1].output_root",
            "overlaps tenants[0].output_root",
        ),
        (
            "allowed_dirs = [\"/srv/globex\"]",
            "allowed_dirs = [\"/srv/toolgate/out\"]",
            "tenants[0].output_root",
            "overlaps tenants[1].allowed_dirs[0]",
        ),
        (
            "max_concurrent_jobs = 2",
            "max_concurrent_jobs = 9",
            "tenants[0].quotas.max_concurrent_jobs",
            "= 9 exceeds the global 8",
        ),
        (
            "max_concurrent_jobs = 2",
            "max_concurrent_jobs = 0",
            "tenants[0].quotas.max_concurrent_jobs",
            "= 0",
        ),
        (
            "max_queued_scans = 10",
            "max_queued_scans = 0",
            "tenants[0].quotas.max_queued_scans",
            "= 0",
        ),
        (
            "requests_per_second = 20",
            "requests_per_second = 0",
            "tenants[0].quotas.requests_per_second",
            "= 0",
        ),
        (
            "timeout_secs = 1800",
            "timeout_secs = 9000",
            "tenants[0].tools.prowler.timeout_secs",
            "= 9000 exceeds the global 3600",
        ),
        (
            "timeout_secs = 1800",
            "timeout_secs = 0",
            "tenants[0].tools.prowler.timeout_secs",
            "= 0",
        ),
        (
            "memory_bytes = 1073741824",
            "memory_bytes = 4294967296",
            "tenants[0].tools.prowler.memory_bytes",
            "exceeds the global 2147483648",
        ),
        (
            "max_output_bytes = 1048576",
            "max_output_bytes = 99999999",
            "tenants[0].tools.prowler.max_output_bytes",
            "exceeds the global 16777216",
        ),
        (
            "[tenants.tools.prowler]",
            "[tenants.tools.checkov]",
            "tenants[0].tools.checkov",
            "not in tenants[0].allowed_tools",
        ),
        (
            "uid = 1001",
            "uid = 0",
            "tenants[0].run_as.uid",
            "never run as root",
        ),
        (
            "gid = 1001 }",
            "gid = 0 }",
            "tenants[0].run_as.gid",
            "root group",
        ),
        (
            "output_root = \"/srv/toolgate/out/globex\"",
            "output_root = \"/srv/toolgate/out/globex\"\nrun_as = { uid = 1001, gid = 2002 }",
            "tenants[1].run_as.uid",
            "also tenants[0]'s",
        ),
    ];
    for (from, to, key, fragment) in table {
        let edited = VALID.replacen(from, to, 1);
        assert_ne!(edited, VALID, "{from:?} must be in the fixture");
        let configs = parse(&edited).unwrap_or_else(|error| panic!("{to:?} parses: {error}"));
        let error = Tenants::validate(&configs, &globals()).expect_err(to);
        let problem = error
            .problems
            .iter()
            .find(|problem| &problem.key == key)
            .unwrap_or_else(|| panic!("{to:?}: no problem at {key}, got {error}"));
        let line = problem.to_string();
        assert!(
            line.contains(fragment),
            "{to:?}: {line:?} lacks {fragment:?}"
        );
    }
}

#[test]
fn the_looser_timeout_message_reads_as_in_the_issue() {
    let edited = VALID.replacen("timeout_secs = 1800", "timeout_secs = 9000", 1);
    let error = Tenants::validate(&parse(&edited).expect("toml"), &globals()).expect_err("looser");
    assert!(
        error
            .to_string()
            .starts_with("tenants[0].tools.prowler.timeout_secs = 9000 exceeds the global 3600"),
        "{error}"
    );
}

/// A tenant's memory limit is applied as a cgroup `memory.max`, which needs the daemon's own
/// (`sandbox.memory_max_bytes`): without it the key is refused at load, not at the first run.
#[test]
fn a_memory_override_needs_the_daemons_memory_cap() {
    let uncapped = GlobalLimits {
        memory_bytes: None,
        ..globals()
    };
    let error = Tenants::validate(&parse(VALID).expect("toml"), &uncapped).expect_err("refused");
    assert_eq!(error.problems.len(), 1, "{error}");
    assert_eq!(
        error.problems[0].key,
        "tenants[0].tools.prowler.memory_bytes"
    );
    assert!(
        error.problems[0]
            .message
            .contains("sandbox.memory_max_bytes"),
        "{error}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let edited = VALID
        .replacen("id = \"acme\"", "id = \"A\"", 1)
        .replacen("timeout_secs = 1800", "timeout_secs = 9000", 1)
        .replacen("uid = 1001", "uid = 0", 1);
    let error = Tenants::validate(&parse(&edited).expect("toml"), &globals()).expect_err("three");
    let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "tenants[0].id",
            "tenants[0].tools.prowler.timeout_secs",
            "tenants[0].run_as.uid"
        ]
    );
}

#[test]
fn a_pasted_secret_is_never_quoted_back() {
    let secret = "tgs_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let edited = VALID.replacen(HASH_B, secret, 1);
    let error = Tenants::validate(&parse(&edited).expect("toml"), &globals()).expect_err("secret");
    assert!(!error.to_string().contains("00112233"), "{error}");
}
