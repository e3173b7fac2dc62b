//! Every way a credential is accepted or refused, through the [`Authenticator`].

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::error::PUBLIC_MESSAGE;
use crate::keyfile::KEY_BYTES;
use crate::keygen::{NewKey, new_access_key};
use crate::tenants::{GlobalLimits, TenantConfig};

/// The header Python `requests` 2.34.2 prepared for
/// `http://tgk_0123456789abcdef:tgs_abab…ab@127.0.0.1:8888/api/tools` (the HexStrike client's
/// `--server` form), captured with `requests.Request('GET', url).prepare()`.
const REQUESTS_BASIC: &str = "Basic dGdrXzAxMjM0NTY3ODlhYmNkZWY6dGdzX2FiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWI=";
const REQUESTS_KEY_ID: &str = "tgk_0123456789abcdef";

#[derive(Deserialize)]
struct Document {
    tenants: Vec<TenantConfig>,
}

fn globals() -> GlobalLimits {
    GlobalLimits {
        timeout_secs: 600,
        memory_bytes: None,
        max_output_bytes: 1 << 20,
        max_concurrent_jobs: 4,
        tools: ["terrascan".to_owned()].into(),
    }
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

const NOW: u64 = 2_000_000_000;
const TOKEN_KEY: [u8; KEY_BYTES] = [9; KEY_BYTES];

/// Two tenants whose keys were made by `new_access_key` and pasted as its snippet says (at
/// the end of each entry), plus the HexStrike key whose Basic header was captured above.
struct World {
    acme: NewKey,
    globex: NewKey,
    config: String,
}

impl World {
    fn new() -> Self {
        let acme = new_access_key("acme").expect("acme key");
        let globex = new_access_key("globex").expect("globex key");
        let hexstrike_hash = Secret::new(format!("tgs_{}", "ab".repeat(32)))
            .sha256()
            .to_hex();
        let config = format!(
            "[[tenants]]\nid = \"acme\"\ndisplay_name = \"ACME\"\noutput_root = \"/out/acme\"\nrole = \"admin\"\n\
             [tenants.tools.terrascan]\ntimeout_secs = 60\n\
             [[tenants.access_keys]]\nid = \"{REQUESTS_KEY_ID}\"\nsecret_sha256 = \"{hexstrike_hash}\"\n\
             {}\n\
             [[tenants]]\nid = \"globex\"\ndisplay_name = \"Globex\"\noutput_root = \"/out/globex\"\n{}",
            acme.config_snippet, globex.config_snippet
        )
        .replace("display_name = \"ACME\"", "display_name = \"ACME\"\nallowed_tools = [\"terrascan\"]");
        Self {
            acme,
            globex,
            config,
        }
    }

    fn authenticator_for(config: &str) -> Authenticator {
        let document: Document = toml::from_str(config).expect("the pasted snippets parse");
        let tenants = Tenants::validate(&document.tenants, &globals()).expect("valid");
        Authenticator::new(&tenants, TokenSigner::from_key(&TOKEN_KEY).expect("signer"))
    }

    fn authenticator(&self) -> Authenticator {
        Self::authenticator_for(&self.config)
    }

    /// The configuration with `key`'s lines deleted: how an operator revokes it.
    fn without(&self, key: &NewKey) -> String {
        let revoked = self.config.replace(&key.config_snippet, "");
        assert_ne!(revoked, self.config);
        revoked
    }
}

fn bearer(key: &NewKey) -> String {
    format!("Bearer {}:{}", key.id, key.secret.expose())
}

fn check(
    auth: &Authenticator,
    authorization: Option<&str>,
    redlock: Option<&str>,
) -> Result<Principal, AuthError> {
    let credential =
        Credential::from_headers(authorization.map(str::as_bytes), redlock.map(str::as_bytes))?;
    auth.authenticate_at(&credential, at(NOW))
}

fn login(auth: &Authenticator, key: &NewKey, now: u64) -> String {
    let body = json!({"username": key.id.as_str(), "password": key.secret.expose(), "customerName": "whatever"});
    let request: LoginRequest = serde_json::from_value(body).expect("body");
    auth.login(&request, at(now)).expect("login").token
}

#[test]
fn every_accepted_form_names_the_tenant_key_and_role() {
    let world = World::new();
    let auth = world.authenticator();
    let acme = Principal {
        tenant_id: TenantId::parse("acme").expect("id"),
        key_id: world.acme.id.clone(),
        role: Role::Admin,
    };
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", world.acme.id, world.acme.secret.expose()))
    );
    let token = login(&auth, &world.acme, NOW);
    let bearer_token = format!("Bearer {token}");
    let table: &[(Option<&str>, Option<&str>)] = &[
        (Some(&bearer(&world.acme)), None),
        (Some(&basic), None),
        (Some(&bearer_token), None),
        (None, Some(&token)),
    ];
    for (authorization, redlock) in table {
        assert_eq!(
            check(&auth, *authorization, *redlock).as_ref(),
            Ok(&acme),
            "{authorization:?} {redlock:?}"
        );
    }
    let globex = check(&auth, Some(&bearer(&world.globex)), None).expect("globex");
    assert_eq!(
        (globex.tenant_id.as_str(), globex.role),
        ("globex", Role::User)
    );
}

#[test]
fn the_header_python_requests_sends_for_credentials_in_the_url_is_accepted() {
    let auth = World::new().authenticator();
    let principal = check(&auth, Some(REQUESTS_BASIC), None).expect("requests' Basic header");
    assert_eq!(
        (principal.key_id.as_str(), principal.tenant_id.as_str()),
        (REQUESTS_KEY_ID, "acme")
    );
}

#[test]
fn login_answers_upstreams_shape_and_extend_renews() {
    let world = World::new();
    let auth = world.authenticator();
    let body =
        json!({"username": world.globex.id.as_str(), "password": world.globex.secret.expose()});
    let response = auth
        .login(&serde_json::from_value(body).expect("body"), at(NOW))
        .expect("login");
    assert_eq!(response.message, "login_successful");
    assert_eq!(
        response.customer_names,
        [CustomerName {
            customer_name: "Globex".into(),
            prisma_id: "globex".into(),
            tos_accepted: true
        }]
    );
    let credential = Credential::from_redlock_auth(response.token.as_bytes()).expect("token");
    let extended = auth.extend(&credential, at(NOW + 500)).expect("extend");
    let renewed = Credential::from_redlock_auth(extended.token.as_bytes()).expect("renewed");
    assert!(
        auth.authenticate_at(&renewed, at(NOW + 1000)).is_ok(),
        "valid past the first token's expiry"
    );
    assert!(auth.authenticate_at(&credential, at(NOW + 1000)).is_err());
    let key = Credential::from_authorization(bearer(&world.globex).as_bytes()).expect("key");
    assert!(
        matches!(auth.extend(&key, at(NOW)), Err(LoginError::Refused(_))),
        "extend needs a token"
    );
}

/// A JWT over `claims`, signed by hand (HS256/HS512 with any key, or `alg: none`).
fn forged(header: serde_json::Value, claims: serde_json::Value, key: Option<&[u8]>) -> String {
    match key {
        Some(key) => {
            let algorithm = if header["alg"] == "HS512" {
                Algorithm::HS512
            } else {
                Algorithm::HS256
            };
            let key = EncodingKey::from_secret(key).expect("key");
            jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).expect("encode")
        }
        None => format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode("x")
        ),
    }
}

#[test]
fn every_failure_mode_is_refused_with_the_same_public_message() {
    let world = World::new();
    let auth = world.authenticator();
    let acme = &world.acme;
    let claims = json!({"iss": "toolgate", "sub": acme.id.as_str(), "tenant": "acme", "iat": NOW, "exp": NOW + 600});
    let expired_token = login(&auth, acme, NOW - 600);
    let other_key_token = forged(
        json!({"alg": "HS256"}),
        claims.clone(),
        Some(&[1; KEY_BYTES]),
    );
    let hs512_token = forged(json!({"alg": "HS512"}), claims.clone(), Some(&TOKEN_KEY));
    let none_token = forged(json!({"alg": "none", "typ": "JWT"}), claims.clone(), None);
    let wrong_secret = format!("Bearer {}:tgs_{}", acme.id, "00".repeat(32));
    let unknown_id = format!("Bearer tgk_ffffffffffffffff:{}", acme.secret.expose());
    let swapped = format!("Bearer {}:{}", world.globex.id, acme.secret.expose());
    let malformed_basic = format!("Basic {}", STANDARD.encode("admin:admin"));

    type Expect = fn(&FailureReason) -> bool;
    let table: Vec<(&str, Option<String>, Option<String>, Expect)> = vec![
        ("missing", None, None, |r| *r == FailureReason::Missing),
        ("garbage", Some("Bearer".into()), None, |r| {
            matches!(r, FailureReason::Malformed(_))
        }),
        ("user:password Basic", Some(malformed_basic), None, |r| {
            matches!(r, FailureReason::Malformed(_))
        }),
        ("wrong secret", Some(wrong_secret), None, |r| {
            matches!(r, FailureReason::WrongSecret(_))
        }),
        ("another key's secret", Some(swapped), None, |r| {
            matches!(r, FailureReason::WrongSecret(_))
        }),
        ("unknown id", Some(unknown_id), None, |r| {
            matches!(r, FailureReason::UnknownKey(_))
        }),
        ("expired JWT", None, Some(expired_token), |r| {
            matches!(r, FailureReason::Token(TokenError::Expired { .. }))
        }),
        (
            "JWT signed with another key",
            None,
            Some(other_key_token),
            |r| *r == FailureReason::Token(TokenError::BadSignature),
        ),
        ("HS512 JWT", None, Some(hs512_token), |r| {
            *r == FailureReason::Token(TokenError::Algorithm)
        }),
        ("alg none JWT", None, Some(none_token.clone()), |r| {
            matches!(r, FailureReason::Token(_))
        }),
        (
            "alg none JWT as Bearer",
            Some(format!("Bearer {none_token}")),
            None,
            |r| matches!(r, FailureReason::Token(_)),
        ),
    ];
    for (what, authorization, redlock, expected) in table {
        let error = check(&auth, authorization.as_deref(), redlock.as_deref()).expect_err(what);
        assert_eq!(error.to_string(), PUBLIC_MESSAGE, "{what}");
        assert!(expected(error.reason()), "{what}: {:?}", error.reason());
        let logged = error.reason().to_string();
        assert!(!logged.contains(acme.secret.expose()), "{what}: {logged}");
    }
}

#[test]
fn a_revoked_key_and_its_tokens_are_refused_after_a_restart() {
    let world = World::new();
    let token = login(&world.authenticator(), &world.acme, NOW);
    let restarted = World::authenticator_for(&world.without(&world.acme));
    let key = check(&restarted, Some(&bearer(&world.acme)), None).expect_err("revoked key");
    assert!(
        matches!(key.reason(), FailureReason::UnknownKey(_)),
        "{:?}",
        key.reason()
    );
    let jwt = check(&restarted, None, Some(&token)).expect_err("revoked key's token");
    assert_eq!(jwt.reason(), &FailureReason::Revoked(world.acme.id.clone()));
    assert_eq!(jwt.to_string(), PUBLIC_MESSAGE);
    assert!(
        check(&restarted, Some(&bearer(&world.globex)), None).is_ok(),
        "other keys unaffected"
    );
}

#[test]
fn a_token_follows_the_configuration_not_its_own_claims() {
    let world = World::new();
    let token = login(&world.authenticator(), &world.acme, NOW);
    // The operator moves the key to globex: the old token named acme, so it is refused.
    let moved = world.without(&world.acme) + &world.acme.config_snippet;
    let error = check(&World::authenticator_for(&moved), None, Some(&token)).expect_err("moved");
    assert!(
        matches!(error.reason(), FailureReason::TenantChanged { .. }),
        "{:?}",
        error.reason()
    );
    // The operator demotes acme: the role comes from the configuration, not the token.
    let demoted =
        World::authenticator_for(&world.config.replace("role = \"admin\"", "role = \"user\""));
    assert_eq!(
        check(&demoted, None, Some(&token)).expect("valid").role,
        Role::User
    );
}

#[test]
fn a_refused_login_is_refused_not_internal() {
    let world = World::new();
    let auth = world.authenticator();
    let body =
        json!({"username": world.acme.id.as_str(), "password": format!("tgs_{}", "11".repeat(32))});
    let error = auth
        .login(&serde_json::from_value(body).expect("body"), at(NOW))
        .expect_err("wrong");
    assert!(matches!(error, LoginError::Refused(_)));
    assert_eq!(error.to_string(), PUBLIC_MESSAGE);
}
