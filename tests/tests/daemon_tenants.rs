//! Black-box tests of multi-tenant authentication (issue #16): the real daemon with
//! `[[tenants]]`, keys made by `toolgate token new`, and every way a credential can be wrong.
//!
//! Each daemon here sees at most 9 failures from 127.0.0.1 unless the test is about the
//! failure limit (10 failures per address, then 429), so one test's refusals never turn into
//! another's 429.

use std::process::Command;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use toolgate_auth::{KeyId, Principal, Role, TenantId, TokenSigner, load_or_create_key};
use toolgate_tests::{
    Daemon, EnvOptions, Response, SlowTool, TestEnv, install_slow_tool, read_response,
    request_with, send_only_with, toolgate_binary, wait_for,
};

/// A key printed by `toolgate token new`.
struct Key {
    id: String,
    secret: String,
    snippet: String,
}

impl Key {
    fn bearer(&self) -> String {
        format!("Bearer {}:{}", self.id, self.secret)
    }

    fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.id, self.secret))
        )
    }
}

/// Runs `toolgate token new TENANT` and reads the id, the secret and the lines to paste.
fn new_key(tenant: &str) -> Key {
    let output = Command::new(toolgate_binary())
        .args(["token", "new", tenant])
        .output()
        .expect("run toolgate token new");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let field = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("no {label:?} in {text}"))
    };
    let snippet_start = text.find("# access key").expect("config lines");
    Key {
        id: field("access key id:"),
        secret: field("secret:"),
        snippet: text[snippet_start..].to_string(),
    }
}

/// One `[[tenants]]` entry for `id` with these keys and extra lines (e.g. quotas).
fn tenant(env: &TestEnv, id: &str, keys: &[&Key], extra: &str) -> String {
    let keys: String = keys.iter().map(|key| key.snippet.clone()).collect();
    format!(
        "[[tenants]]\nid = \"{id}\"\ndisplay_name = \"Team {id}\"\n\
         allowed_tools = [\"terrascan\", \"prowler\"]\nallowed_dirs = [{dir:?}]\n\
         output_root = {out:?}\n{extra}\n{keys}\n",
        dir = env.workspace().display().to_string(),
        out = env.root.join(format!("out/{id}")).display().to_string(),
    )
}

fn start(env: &TestEnv, tenants: String) -> Daemon {
    env.start(&EnvOptions {
        tenants,
        ..EnvOptions::default()
    })
}

fn call(daemon: &Daemon, method: &str, path: &str, auth: &[(&str, &str)]) -> Response {
    request_with(daemon.port, method, path, auth, None)
}

fn json(response: &Response) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.body))
}

/// Logs in with `key` and returns the token.
fn login(daemon: &Daemon, key: &Key) -> String {
    let body = format!(
        "{{\"username\": \"{}\", \"password\": \"{}\"}}",
        key.id, key.secret
    );
    let response = request_with(daemon.port, "POST", "/login", &[], Some(&body));
    assert_eq!(response.status, 200, "{}", response.body);
    let answer = json(&response);
    assert_eq!(answer["message"], "login_successful", "{answer}");
    answer["token"].as_str().expect("token").to_string()
}

/// A token the daemon would issue for `key` of `tenant` at `when`, signed with `signing_key`.
fn token_at(signing_key: &[u8; 32], key: &Key, tenant: &str, when: SystemTime) -> String {
    let principal = Principal {
        tenant_id: TenantId::parse(tenant).expect("tenant id"),
        key_id: KeyId::parse(&key.id).expect("key id"),
        role: Role::User,
    };
    TokenSigner::from_key(signing_key)
        .expect("signer")
        .issue(&principal, when)
        .expect("token")
}

/// The daemon's own login key, read as an attacker with a copy of the data directory would.
fn daemon_signing_key(env: &TestEnv) -> [u8; 32] {
    *load_or_create_key(&env.data_dir().join("secrets/login-jwt.key")).expect("login key")
}

/// `alg: none` with claims that would otherwise be valid, and a dummy third part.
fn unsigned_token(key: &Key, tenant: &str) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"toolgate","sub":"{}","tenant":"{tenant}","iat":{now},"exp":{}}}"#,
        key.id,
        now + 600
    ));
    format!("{header}.{claims}.AAAA")
}

#[test]
fn every_bad_credential_gets_the_same_401_and_good_ones_pass() {
    let env = TestEnv::new("tenants-credentials");
    let key = new_key("acme");
    let daemon = start(&env, tenant(&env, "acme", &[&key], ""));

    let health = call(&daemon, "GET", "/health", &[]);
    assert_eq!(health.status, 200, "/health needs no credential");
    assert!(!health.body.contains("acme"), "{}", health.body);

    let bearer = key.bearer();
    let ok = call(&daemon, "GET", "/api/jobs", &[("Authorization", &bearer)]);
    assert_eq!(ok.status, 200, "{}", ok.body);

    let token = login(&daemon, &key);
    for header in ["x-redlock-auth", "Authorization"] {
        let value = if header == "Authorization" {
            format!("Bearer {token}")
        } else {
            token.clone()
        };
        let ok = call(&daemon, "GET", "/api/jobs", &[(header, &value)]);
        assert_eq!(ok.status, 200, "{header}: {}", ok.body);
    }
    let extended = call(
        &daemon,
        "GET",
        "/auth_token/extend",
        &[("x-redlock-auth", &token)],
    );
    assert_eq!(extended.status, 200, "{}", extended.body);
    assert!(json(&extended)["token"].is_string());

    let signing_key = daemon_signing_key(&env);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let expired = token_at(&signing_key, &key, "acme", hour_ago);
    let foreign = token_at(&[7; 32], &key, "acme", SystemTime::now());
    let wrong_secret = format!("Bearer {}:tgs_{}", key.id, "0".repeat(64));
    let unknown_key = format!("Bearer tgk_0000000000000000:{}", key.secret);
    let table: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("missing", vec![]),
        ("wrong secret", vec![("Authorization", wrong_secret)]),
        ("unknown key", vec![("Authorization", unknown_key)]),
        (
            "malformed",
            vec![("Authorization", "Bearer nonsense".into())],
        ),
        ("expired token", vec![("x-redlock-auth", expired)]),
        (
            "token signed with another key",
            vec![("x-redlock-auth", foreign)],
        ),
        (
            "alg none",
            vec![("x-redlock-auth", unsigned_token(&key, "acme"))],
        ),
    ];
    let mut bodies = Vec::new();
    for (what, headers) in &table {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = call(&daemon, "GET", "/api/jobs", &headers);
        assert_eq!(refused.status, 401, "{what}: {}", refused.body);
        bodies.push(refused.body);
    }
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "every refusal has the same body: {bodies:?}"
    );
    assert!(!bodies[0].contains("acme") && !bodies[0].contains(&key.id));
    let log = daemon.log();
    assert!(
        !log.contains(&key.secret),
        "the secret never reaches the log"
    );
}

#[test]
fn a_removed_key_and_its_tokens_are_refused_after_a_restart() {
    let env = TestEnv::new("tenants-revoked");
    let kept = new_key("acme");
    let revoked = new_key("acme");
    let daemon = start(&env, tenant(&env, "acme", &[&kept, &revoked], ""));
    let token = login(&daemon, &revoked);
    let ok = call(&daemon, "GET", "/api/jobs", &[("x-redlock-auth", &token)]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    drop(daemon);

    let daemon = start(&env, tenant(&env, "acme", &[&kept], ""));
    let bearer = revoked.bearer();
    for (header, value) in [
        ("x-redlock-auth", token.as_str()),
        ("Authorization", &bearer),
    ] {
        let refused = call(&daemon, "GET", "/api/jobs", &[(header, value)]);
        assert_eq!(refused.status, 401, "{header}: {}", refused.body);
    }
    let bearer = kept.bearer();
    let ok = call(&daemon, "GET", "/api/jobs", &[("Authorization", &bearer)]);
    assert_eq!(ok.status, 200, "the kept key still works: {}", ok.body);
}

#[test]
fn basic_is_accepted_on_api_only_and_mcp_needs_a_credential() {
    let env = TestEnv::new("tenants-basic");
    let key = new_key("acme");
    let daemon = start(&env, tenant(&env, "acme", &[&key], ""));
    let basic = key.basic();
    let api = call(&daemon, "GET", "/api/jobs", &[("Authorization", &basic)]);
    assert_eq!(api.status, 200, "Basic on /api/*: {}", api.body);
    for path in ["/openapi.json", "/auth_token/extend"] {
        let refused = call(&daemon, "GET", path, &[("Authorization", &basic)]);
        assert_eq!(refused.status, 401, "Basic on {path}: {}", refused.body);
    }
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let accept = ("Accept", "application/json, text/event-stream");
    let refused = request_with(daemon.port, "POST", "/mcp", &[accept], Some(initialize));
    assert_eq!(
        refused.status, 401,
        "/mcp without a credential: {}",
        refused.body
    );
    let bearer = key.bearer();
    let allowed = request_with(
        daemon.port,
        "POST",
        "/mcp",
        &[accept, ("Authorization", &bearer)],
        Some(initialize),
    );
    assert_eq!(allowed.status, 200, "/mcp with a key: {}", allowed.body);
}

#[test]
fn guessing_from_one_address_is_cut_off_with_429_and_retry_after() {
    let env = TestEnv::new("tenants-brute-force");
    let key = new_key("acme");
    let daemon = start(&env, tenant(&env, "acme", &[&key], ""));
    let mut statuses = Vec::new();
    for guess in 0..15 {
        let wrong = format!("Bearer {}:tgs_{:064x}", key.id, guess);
        let response = call(&daemon, "GET", "/api/jobs", &[("Authorization", &wrong)]);
        if response.status == 429 {
            let wait: u64 = response
                .header("retry-after")
                .and_then(|value| value.parse().ok())
                .expect("Retry-After in seconds");
            assert!(wait >= 1, "{wait}");
        }
        statuses.push(response.status);
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right key waits: the address is cut off, not the guess.
    let bearer = key.bearer();
    let blocked = call(&daemon, "GET", "/api/jobs", &[("Authorization", &bearer)]);
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    // Logging in is guessing too.
    let body = format!("{{\"username\": \"{}\", \"password\": \"x\"}}", key.id);
    let login = request_with(daemon.port, "POST", "/login", &[], Some(&body));
    assert_eq!(login.status, 429, "{}", login.body);
}

#[test]
fn a_tenant_over_its_request_rate_gets_429_and_another_does_not() {
    let env = TestEnv::new("tenants-rate");
    let busy = new_key("busy");
    let calm = new_key("calm");
    let tenants = tenant(
        &env,
        "busy",
        &[&busy],
        "[tenants.quotas]\nrequests_per_second = 2",
    ) + &tenant(&env, "calm", &[&calm], "");
    let daemon = start(&env, tenants);
    let bearer = busy.bearer();
    let statuses: Vec<u16> = (0..6)
        .map(|_| call(&daemon, "GET", "/api/jobs", &[("Authorization", &bearer)]).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let over = call(&daemon, "GET", "/api/jobs", &[("Authorization", &bearer)]);
    if over.status == 429 {
        assert!(over.header("retry-after").is_some(), "{:?}", over.headers);
    }
    let bearer = calm.bearer();
    let other = call(&daemon, "GET", "/api/jobs", &[("Authorization", &bearer)]);
    assert_eq!(
        other.status, 200,
        "another tenant is not limited: {}",
        other.body
    );
}

#[test]
fn a_non_loopback_listen_without_tenants_refuses_to_start_and_says_why() {
    let env = TestEnv::new("tenants-listen");
    let config = env.write_config_edited(&EnvOptions::default(), |text| {
        text.replace("listen = \"127.0.0.1:", "listen = \"0.0.0.0:")
    });
    let output = Command::new(toolgate_binary())
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run toolgate serve");
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("listen") && stderr.contains("[[tenants]]"),
        "{stderr}"
    );
}

#[test]
fn a_tenant_never_sees_or_touches_another_tenants_jobs_and_processes() {
    let env = TestEnv::new("tenants-isolation");
    let slow = install_slow_tool(&env.tools_dir(), "terrascan", 30, SlowTool::Child);
    let acme = new_key("acme");
    let beta = new_key("beta");
    let tenants = tenant(&env, "acme", &[&acme], "") + &tenant(&env, "beta", &[&beta], "");
    let daemon = env.start(&EnvOptions {
        terrascan: Some(slow),
        tenants,
        ..EnvOptions::default()
    });
    let (a, b) = (acme.bearer(), beta.bearer());
    let as_acme = [("Authorization", a.as_str())];
    let as_beta = [("Authorization", b.as_str())];
    let running = send_only_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_acme,
        Some("{\"iac_dir\": \"terraform\"}"),
    );
    let (job_id, pid) = wait_for(Duration::from_secs(30), "acme's job running", || {
        let list = json(&call(&daemon, "GET", "/api/processes/list", &as_acme));
        let (id, job) = list["active_processes"].as_object()?.iter().next()?;
        Some((id.clone(), job["pid"].as_u64()?))
    });
    let beta_list = json(&call(&daemon, "GET", "/api/processes/list", &as_beta));
    assert_eq!(beta_list["total_count"], 0, "{beta_list}");
    let jobs = json(&call(&daemon, "GET", "/api/jobs", &as_beta));
    assert_eq!(jobs["count"], 0, "{jobs}");
    let foreign = [
        ("GET", format!("/api/jobs/{job_id}")),
        ("POST", format!("/api/jobs/{job_id}/cancel")),
        ("GET", format!("/api/processes/status/{job_id}")),
        ("GET", format!("/api/processes/status/{pid}")),
        ("POST", format!("/api/processes/terminate/{pid}")),
        ("POST", format!("/api/processes/terminate/{job_id}")),
    ];
    for (method, path) in &foreign {
        let response = call(&daemon, method, path, &as_beta);
        assert_eq!(
            response.status, 404,
            "beta {method} {path}: {}",
            response.body
        );
    }
    let unknown = call(&daemon, "GET", "/api/jobs/no-such-job", &as_beta);
    let foreign_job = call(&daemon, "GET", &format!("/api/jobs/{job_id}"), &as_beta);
    assert_eq!(
        json(&unknown)["error"]
            .as_str()
            .map(|e| e.replace("no-such-job", "X")),
        json(&foreign_job)["error"]
            .as_str()
            .map(|e| e.replace(&job_id, "X")),
        "a foreign job reads exactly like a missing one"
    );
    let own = call(&daemon, "GET", &format!("/api/jobs/{job_id}"), &as_acme);
    assert_eq!(own.status, 200, "{}", own.body);
    let stopped = call(
        &daemon,
        "POST",
        &format!("/api/processes/terminate/{pid}"),
        &as_acme,
    );
    assert_eq!(
        stopped.status, 200,
        "acme terminates its own job: {}",
        stopped.body
    );
    let answer = read_response(running).expect("acme's answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let listed = json(&call(&daemon, "GET", "/api/jobs", &as_acme));
    assert_eq!(listed["count"], 1, "{listed}");
    let after = call(&daemon, "GET", &format!("/api/jobs/{job_id}"), &as_beta);
    assert_eq!(after.status, 404, "{}", after.body);
}
