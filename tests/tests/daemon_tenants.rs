//! Black-box tests of multi-tenant authentication (issue #16): the real daemon with
//! `[[tenants]]`, keys made by `toolgate token new`, and every way a credential can be wrong.
//!
//! Each daemon here sees at most 9 failures from 127.0.0.1 unless the test is about the
//! failure limit (10 failures per address, then 429), so one test's refusals never turn into
//! another's 429.

use std::process::Command;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use toolgate_auth::{KeyId, Principal, Role, TenantId, TokenSigner, load_or_create_key};
mod tenants_support;

use tenants_support::{
    Key, call, create_scan, finished_scan, initiate, json, new_key, tenant, upload,
};
use toolgate_tests::{
    Daemon, EnvOptions, Response, SlowTool, TestEnv, install_fake_tool, install_slow_tool,
    read_response, request_with, send_only_with, toolgate_binary, wait_for,
};

fn start(env: &TestEnv, tenants: String) -> Daemon {
    env.start(&EnvOptions {
        tenants,
        ..EnvOptions::default()
    })
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

/// A daemon with the fake terrascan as the default scanner and these tenants.
fn start_scanning(env: &TestEnv, tenants: String) -> Daemon {
    let options = EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        tenants,
        ..EnvOptions::default()
    };
    let config = env.write_config_edited(&options, |text| {
        format!("{text}\n[scans]\ndefault_tool = \"terrascan\"\n")
    });
    Daemon::start(&config, env.port, &env.root.join("daemon.log"))
}

/// Creates and uploads a scan as `auth` whose fake terrascan sleeps `secs`; returns its id.
fn uploaded_slow_scan(daemon: &Daemon, auth: &str, secs: u32) -> String {
    let (id, path) = create_scan(daemon, auth);
    let template = format!("# toolgate-fake-terrascan: sleep {secs}\nresource \"x\" \"y\" {{}}\n");
    let uploaded = request_with(daemon.port, "PUT", &path, &[], Some(&template));
    assert_eq!(uploaded.status, 200, "upload: {}", uploaded.body);
    id
}

/// The JSON:API error detail with the scan id replaced, to compare a foreign scan's answer with
/// a missing one's.
fn detail_without(response: &Response, id: &str) -> String {
    json(response)["errors"][0]["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no errors[0].detail: {}", response.body))
        .replace(id, "X")
}

#[test]
fn a_tenant_never_sees_or_touches_another_tenants_iac_scans_and_only_admins_reload() {
    let env = TestEnv::new("tenants-iac");
    let acme = new_key("acme");
    let beta = new_key("beta");
    let root = new_key("root");
    let tenants = tenant(&env, "acme", &[&acme], "")
        + &tenant(&env, "beta", &[&beta], "")
        + &tenant(&env, "root", &[&root], "role = \"admin\"");
    let daemon = start_scanning(&env, tenants);
    let (a, b) = (acme.bearer(), beta.bearer());
    let as_beta = [("Authorization", b.as_str())];

    // A URL is bound to its tenant's scan: beta's own signed query on acme's scan is refused,
    // and beta sending its credential to acme's URL is told the scan does not exist.
    let (pending, pending_path) = create_scan(&daemon, &a);
    let (_, beta_path) = create_scan(&daemon, &b);
    let beta_query = &beta_path[beta_path.find('?').expect("query")..];
    let moved = upload(
        &daemon,
        &format!("/iac/v2/uploads/{pending}{beta_query}"),
        &[],
    );
    assert_eq!(moved.status, 403, "{}", moved.body);
    let foreign_upload = upload(&daemon, &pending_path, &as_beta);
    assert_eq!(foreign_upload.status, 404, "{}", foreign_upload.body);
    let foreign_initiate = initiate(&daemon, &pending, &b);
    assert_eq!(foreign_initiate.status, 404, "{}", foreign_initiate.body);

    let id = finished_scan(&daemon, &a);
    let missing = "00000000-0000-4000-8000-000000000000";
    for suffix in ["status", "results", "results/sarif"] {
        let foreign = call(
            &daemon,
            "GET",
            &format!("/iac/v2/scans/{id}/{suffix}"),
            &as_beta,
        );
        assert_eq!(foreign.status, 404, "beta {suffix}: {}", foreign.body);
        let unknown = call(
            &daemon,
            "GET",
            &format!("/iac/v2/scans/{missing}/{suffix}"),
            &as_beta,
        );
        assert_eq!(unknown.status, 404, "{}", unknown.body);
        assert_eq!(
            detail_without(&foreign, &id),
            detail_without(&unknown, missing),
            "a foreign scan's {suffix} reads exactly like a missing one"
        );
        let own = call(
            &daemon,
            "GET",
            &format!("/iac/v2/scans/{id}/{suffix}"),
            &[("Authorization", &a)],
        );
        assert_eq!(own.status, 200, "acme {suffix}: {}", own.body);
    }
    let again = initiate(&daemon, &id, &b);
    assert_eq!(again.status, 404, "{}", again.body);
    let listed = json(&call(&daemon, "GET", "/iac/v2/scans", &as_beta));
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .expect("data[]")
        .iter()
        .filter_map(|scan| scan["id"].as_str())
        .collect();
    assert!(
        !ids.contains(&id.as_str()) && !ids.contains(&pending.as_str()),
        "{listed}"
    );
    let acme_list = json(&call(
        &daemon,
        "GET",
        "/iac/v2/scans",
        &[("Authorization", &a)],
    ));
    assert_eq!(
        acme_list["data"].as_array().map(Vec::len),
        Some(2),
        "{acme_list}"
    );
    let export = call(&daemon, "GET", "/iac/v2/scans/export?fmt=csv", &as_beta);
    assert_eq!(export.status, 200, "{}", export.body);
    assert!(
        !export.body.contains(&id) && !export.body.contains(&pending),
        "{}",
        export.body
    );
    let acme_export = call(
        &daemon,
        "GET",
        "/iac/v2/scans/export?fmt=csv",
        &[("Authorization", &a)],
    );
    assert!(acme_export.body.contains(&id), "{}", acme_export.body);

    let reload = "/admin/plugins/reload";
    let refused = call(&daemon, "POST", reload, &as_beta);
    assert_eq!(refused.status, 403, "a user tenant: {}", refused.body);
    let anonymous = call(&daemon, "POST", reload, &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let reloaded = call(
        &daemon,
        "POST",
        reload,
        &[("Authorization", &root.bearer())],
    );
    assert_eq!(reloaded.status, 200, "an admin tenant: {}", reloaded.body);
}

/// The audit trail's records of `action` (as the admin `auth` reads them).
fn audit_records(daemon: &Daemon, auth: &str, query: &str) -> Vec<Value> {
    let page = call(
        daemon,
        "GET",
        &format!("/api/audit?{query}"),
        &[("Authorization", auth)],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    json(&page)["records"]
        .as_array()
        .expect("records[]")
        .clone()
}

fn audit_verify(env: &TestEnv) -> std::process::Output {
    Command::new(toolgate_binary())
        .args(["audit", "verify", "--config"])
        .arg(env.root.join("toolgate.toml"))
        .output()
        .expect("run toolgate audit verify")
}

#[test]
fn login_run_cancel_upload_initiate_and_results_each_leave_exactly_one_audit_record() {
    let env = TestEnv::new("tenants-audit");
    let acme = new_key("acme");
    let root = new_key("root");
    let tenants =
        tenant(&env, "acme", &[&acme], "") + &tenant(&env, "root", &[&root], "role = \"admin\"");
    let daemon = start_scanning(&env, tenants);
    let (a, admin) = (acme.bearer(), root.bearer());
    let as_acme = [("Authorization", a.as_str())];

    login(&daemon, &acme);
    let ran = request_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_acme,
        Some("{\"iac_dir\": \"terraform\"}"),
    );
    assert_eq!(ran.status, 200, "{}", ran.body);
    let jobs = json(&call(&daemon, "GET", "/api/jobs", &as_acme));
    let job = jobs["jobs"][0]["id"].as_str().expect("a job").to_string();
    // Cancelling an ended job is refused, and the refusal is recorded too.
    let cancel = call(
        &daemon,
        "POST",
        &format!("/api/jobs/{job}/cancel"),
        &as_acme,
    );
    assert_eq!(cancel.status, 409, "{}", cancel.body);
    let scan = finished_scan(&daemon, &a);
    let results = call(
        &daemon,
        "GET",
        &format!("/iac/v2/scans/{scan}/results"),
        &as_acme,
    );
    assert_eq!(results.status, 200, "{}", results.body);

    let user = call(&daemon, "GET", "/api/audit", &as_acme);
    assert_eq!(
        user.status, 404,
        "a user tenant does not see the trail: {}",
        user.body
    );
    let records = audit_records(&daemon, &admin, "tenant=acme&limit=1000");
    for (action, count) in [
        ("login", 1),
        ("run", 1),
        ("cancel", 1),
        ("create_scan", 1),
        ("upload", 1),
        ("initiate", 1),
        ("read_results", 1),
    ] {
        let found: Vec<&Value> = records.iter().filter(|r| r["action"] == action).collect();
        assert_eq!(found.len(), count, "{action}: {records:#?}");
        assert_eq!(found[0]["tenant"], "acme", "{action}");
        assert!(
            found[0]["hash"].as_str().is_some_and(|h| h.len() == 64),
            "{action}"
        );
    }
    let run = records.iter().find(|r| r["action"] == "run").expect("run");
    assert_eq!(run["tool"], "terrascan", "{run}");
    assert_eq!(run["decision"], "allowed", "{run}");
    assert!(
        run["argv"].as_array().is_some_and(|argv| !argv.is_empty()),
        "{run}"
    );
    assert_eq!(run["key_id"], acme.id.as_str(), "{run}");
    let cancel = records
        .iter()
        .find(|r| r["action"] == "cancel")
        .expect("cancel");
    assert_eq!(cancel["decision"], "denied", "{cancel}");
    // Filters and paging.
    let logins = audit_records(&daemon, &admin, "action=login");
    assert!(logins.iter().all(|r| r["action"] == "login") && logins.len() == 1);
    let first = audit_records(&daemon, &admin, "limit=1");
    let second = audit_records(
        &daemon,
        &admin,
        &format!("limit=1&after={}", first[0]["id"]),
    );
    assert_eq!(
        second[0]["id"].as_u64(),
        first[0]["id"].as_u64().map(|id| id + 1)
    );
    let future = audit_records(&daemon, &admin, "since=2999-01-01T00:00:00Z");
    assert!(future.is_empty(), "{future:?}");
    let bad = call(
        &daemon,
        "GET",
        "/api/audit?action=steal",
        &[("Authorization", &admin)],
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        daemon.log().contains("\"target\":\"audit\""),
        "each record is a log event too"
    );

    let verified = audit_verify(&env);
    assert!(verified.status.success(), "{verified:?}");
}

#[test]
fn audit_verify_names_the_first_record_edited_in_the_database() {
    let env = TestEnv::new("tenants-tamper");
    let acme = new_key("acme");
    let mut daemon = start(&env, tenant(&env, "acme", &[&acme], ""));
    for _ in 0..4 {
        login(&daemon, &acme);
    }
    daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    let verified = audit_verify(&env);
    assert!(verified.status.success(), "{verified:?}");
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("4 record(s)"),
        "{verified:?}"
    );

    // Someone with the file drops the guard and rewrites one record's outcome.
    let db = rusqlite::Connection::open(env.data_dir().join("toolgate.sqlite3")).expect("open");
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET outcome = 'nothing happened' WHERE id = 3;",
    )
    .expect("tamper");
    drop(db);
    let broken = audit_verify(&env);
    assert!(!broken.status.success(), "{broken:?}");
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("audit record 3 "), "{stderr}");
}

#[test]
fn a_tenant_over_its_concurrent_jobs_waits_queued_and_a_full_queue_answers_429() {
    let env = TestEnv::new("tenants-quota");
    let slow = install_slow_tool(&env.tools_dir(), "terrascan", 30, SlowTool::Child);
    let acme = new_key("acme");
    let beta = new_key("beta");
    let tenants = tenant(
        &env,
        "acme",
        &[&acme],
        "[tenants.quotas]\nmax_concurrent_jobs = 1",
    ) + &tenant(&env, "beta", &[&beta], "");
    let daemon = env.start(&EnvOptions {
        terrascan: Some(slow),
        limits: "max_concurrent_jobs = 2\nmax_queued_jobs = 1".into(),
        tenants,
        ..EnvOptions::default()
    });
    let (a, b) = (acme.bearer(), beta.bearer());
    let as_acme = [("Authorization", a.as_str())];
    let as_beta = [("Authorization", b.as_str())];
    let params = Some("{\"iac_dir\": \"terraform\"}");
    let statuses = |auth: &[(&str, &str)]| -> Vec<String> {
        let list = json(&call(&daemon, "GET", "/api/jobs", auth));
        let mut found: Vec<String> = list["jobs"]
            .as_array()
            .expect("jobs[]")
            .iter()
            .filter_map(|job| job["status"].as_str().map(str::to_string))
            .collect();
        found.sort();
        found
    };
    let mut open = vec![send_only_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_acme,
        params,
    )];
    wait_for(Duration::from_secs(30), "acme's first job running", || {
        (statuses(&as_acme) == ["running"]).then_some(())
    });
    // acme's second job waits for acme's one slot although a global slot is free...
    open.push(send_only_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_acme,
        params,
    ));
    wait_for(Duration::from_secs(30), "acme's second job queued", || {
        (statuses(&as_acme) == ["queued", "running"]).then_some(())
    });
    // ...which beta's job takes at once.
    open.push(send_only_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_beta,
        params,
    ));
    wait_for(Duration::from_secs(30), "beta's job running", || {
        (statuses(&as_beta) == ["running"]).then_some(())
    });
    assert_eq!(statuses(&as_acme), ["queued", "running"]);
    // Two running and one queued: the queue is full, and the answer says when to retry.
    let refused = request_with(
        daemon.port,
        "POST",
        "/api/tools/terrascan",
        &as_acme,
        params,
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused
            .header("retry-after")
            .is_some_and(|secs| secs.parse::<u64>().is_ok_and(|secs| secs > 0)),
        "{:?}",
        refused.headers
    );
    for auth in [&as_acme, &as_beta] {
        let processes = json(&call(&daemon, "GET", "/api/processes/list", auth));
        for pid in processes["active_processes"]
            .as_object()
            .expect("active_processes")
            .values()
            .filter_map(|job| job["pid"].as_u64())
        {
            call(
                &daemon,
                "POST",
                &format!("/api/processes/terminate/{pid}"),
                auth,
            );
        }
    }
    drop(open);
}

#[test]
fn a_tenant_over_its_queued_scans_gets_429_with_retry_after_and_another_does_not() {
    let env = TestEnv::new("tenants-scan-quota");
    let acme = new_key("acme");
    let beta = new_key("beta");
    let tenants = tenant(
        &env,
        "acme",
        &[&acme],
        "[tenants.quotas]\nmax_queued_scans = 1",
    ) + &tenant(&env, "beta", &[&beta], "");
    let options = EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        tenants,
        ..EnvOptions::default()
    };
    // One worker: the first scan runs, the next ones wait queued.
    let config = env.write_config_edited(&options, |text| {
        format!("{text}\n[scans]\ndefault_tool = \"terrascan\"\nworkers = 1\n")
    });
    let daemon = Daemon::start(&config, env.port, &env.root.join("daemon.log"));
    let (a, b) = (acme.bearer(), beta.bearer());
    let running = uploaded_slow_scan(&daemon, &a, 30);
    assert_eq!(initiate(&daemon, &running, &a).status, 200);
    wait_for(Duration::from_secs(30), "the first scan to start", || {
        let status = call(
            &daemon,
            "GET",
            &format!("/iac/v2/scans/{running}/status"),
            &[("Authorization", &a)],
        );
        (json(&status)["data"]["attributes"]["state"] == "running").then_some(())
    });
    let queued = uploaded_slow_scan(&daemon, &a, 1);
    let first = initiate(&daemon, &queued, &a);
    assert_eq!(first.status, 200, "{}", first.body);
    let over = uploaded_slow_scan(&daemon, &a, 1);
    let refused = initiate(&daemon, &over, &a);
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body.contains("max_queued_scans"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .header("retry-after")
            .is_some_and(|secs| secs.parse::<u64>().is_ok_and(|secs| secs > 0)),
        "{:?}",
        refused.headers
    );
    // Another tenant's queue is its own.
    let other = uploaded_slow_scan(&daemon, &b, 1);
    let accepted = initiate(&daemon, &other, &b);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
}

/// `sha256sum FILE`'s hex digest.
fn sha256_of(path: &std::path::Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

#[test]
fn a_plugin_pinned_to_another_sha256_is_refused_at_load_and_a_matching_one_loads() {
    let env = TestEnv::new("tenants-pinning");
    let terrascan = toolgate_tests::plugins_dir().join("terrascan.wasm");
    let pins = |prowler: &str| {
        format!(
            "\n[plugins.pinned_sha256]\n\"terrascan.wasm\" = \"{}\"\n\"prowler.wasm\" = \"{prowler}\"\n",
            sha256_of(&terrascan)
        )
    };
    let check = |pinned: String| {
        let config = env.write_config_edited(&EnvOptions::default(), |text| text + &pinned);
        Command::new(toolgate_binary())
            .args(["plugin", "list", "--config"])
            .arg(&config)
            .output()
            .expect("run toolgate plugin list")
    };
    let mismatch = check(pins(&"0".repeat(64)));
    assert!(!mismatch.status.success(), "{mismatch:?}");
    let stderr = String::from_utf8_lossy(&mismatch.stderr);
    assert!(
        stderr.contains("prowler.wasm") && stderr.contains("pinned_sha256"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("terrascan.wasm"),
        "terrascan matches its pin: {stderr}"
    );

    let prowler = toolgate_tests::plugins_dir().join("prowler.wasm");
    let matching = check(pins(&sha256_of(&prowler)));
    assert!(matching.status.success(), "{matching:?}");
    let listed = String::from_utf8_lossy(&matching.stdout);
    assert!(
        listed.contains("prowler") && listed.contains("terrascan"),
        "{listed}"
    );

    let malformed = check(pins("not-a-hash"));
    assert!(!malformed.status.success(), "{malformed:?}");
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert!(stderr.contains("pinned_sha256"), "{stderr}");
    assert!(stderr.contains("not-a-hash"), "{stderr}");
}
