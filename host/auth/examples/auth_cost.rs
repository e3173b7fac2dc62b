//! What authenticating one request costs, per credential form, for the budget
//! ("authentication adds at most 5% to the 32-client synchronous throughput").
//!
//! Run: `cargo run --release -p toolgate-auth --example auth_cost`. Prints the median of
//! [`ROUNDS`] rounds of [`CALLS`] calls each, in nanoseconds per call (parsing the header
//! value included).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use toolgate_auth::{
    Authenticator, Credential, FailedAttempts, GlobalLimits, TenantId, TenantRateLimiter, Tenants,
    TokenSigner, new_access_key, tenants::AccessKeyConfig, tenants::TenantConfig,
};

/// Calls per round: enough for a round to last milliseconds, so timer resolution is noise.
const CALLS: u32 = 20_000;
/// Rounds; the median resists a neighbour process stealing the CPU for one of them.
const ROUNDS: usize = 9;

fn median_ns(mut call: impl FnMut()) -> u128 {
    let mut rounds: Vec<u128> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..CALLS {
                call();
            }
            start.elapsed().as_nanos() / u128::from(CALLS)
        })
        .collect();
    rounds.sort_unstable();
    rounds[ROUNDS / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 100 tenants with 10 keys each: a lookup among 1,000 keys.
    let mut configs = Vec::new();
    let mut keys = Vec::new();
    for t in 0..100 {
        let id = format!("tenant-{t}");
        let mut access_keys = Vec::new();
        for _ in 0..10 {
            let key = new_access_key(&id)?;
            access_keys.push(AccessKeyConfig {
                id: key.id.to_string(),
                secret_sha256: key.secret_sha256.to_hex(),
            });
            keys.push(key);
        }
        configs.push(TenantConfig {
            id: id.clone(),
            display_name: id.clone(),
            access_keys,
            allowed_tools: Vec::new(),
            allowed_dirs: Vec::new(),
            output_root: format!("/out/{id}").into(),
            quotas: toolgate_auth::tenants::QuotasConfig {
                requests_per_second: Some(1_000_000),
                ..Default::default()
            },
            tools: Default::default(),
            role: Default::default(),
            run_as: None,
        });
    }
    let globals = GlobalLimits {
        timeout_secs: 60,
        memory_bytes: None,
        max_output_bytes: 1,
        max_concurrent_jobs: 1,
        tools: Default::default(),
    };
    let tenants = Tenants::validate(&configs, &globals)?;
    let auth = Authenticator::new(&tenants, TokenSigner::from_key(&[7; 32])?);
    let key = &keys[500];
    let bearer = format!("Bearer {}:{}", key.id, key.secret.expose());
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", key.id, key.secret.expose()))
    );
    let login = toolgate_auth::LoginRequest {
        username: key.id.to_string(),
        password: key.secret.clone(),
        customer_name: None,
        prisma_id: None,
    };
    let token = auth.login(&login, SystemTime::now())?.token;
    let now = SystemTime::now();

    let forms: [(&str, Option<&str>, Option<&str>); 3] = [
        ("Bearer KEYID:SECRET", Some(&bearer), None),
        ("Basic", Some(&basic), None),
        ("x-redlock-auth JWT", None, Some(&token)),
    ];
    for (name, authorization, redlock) in forms {
        let ns = median_ns(|| {
            let credential = Credential::from_headers(
                authorization.map(str::as_bytes),
                redlock.map(str::as_bytes),
            );
            let principal = credential.and_then(|c| auth.authenticate_at(&c, now));
            assert!(black_box(principal).is_ok());
        });
        println!("{name:<22} {ns:>6} ns/request");
    }
    let failures = FailedAttempts::default();
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    println!(
        "{:<22} {:>6} ns/request",
        "FailedAttempts::check",
        median_ns(|| {
            let _ = black_box(failures.check(ip));
        })
    );
    let rates = TenantRateLimiter::new(&tenants);
    let tenant = TenantId::parse("tenant-50")?;
    println!(
        "{:<22} {:>6} ns/request",
        "TenantRateLimiter",
        median_ns(|| {
            let _ = black_box(rates.check(&tenant));
        })
    );
    Ok(())
}
