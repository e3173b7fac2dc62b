//! The bodies of the Prisma IaC API's `POST /login` and `GET /auth_token/extend`, as serde types.
//!
//! Invariants: the request tolerates fields this daemon does not use (`customerName`,
//! `prismaId`, and any later upstream addition), because its clients send them and must keep
//! working unchanged; the password is held in a [`Secret`] and never printed; a response's token
//! is never printed by `Debug`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::secret::Secret;

/// The `message` of a successful login or extension, as upstream sends it.
pub const LOGIN_SUCCESSFUL: &str = "login_successful";

/// `POST /login`'s body: `{"username": <access key id>, "password": <secret>, "customerName"?}`.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// The access key id.
    pub username: String,
    /// The access key's secret.
    #[serde(deserialize_with = "secret")]
    pub password: Secret,
    /// Upstream's tenant selector for multi-tenant users; ignored here (a key belongs to exactly
    /// one tenant), accepted so clients that send it keep working.
    #[serde(rename = "customerName", default)]
    pub customer_name: Option<String>,
    /// Upstream's other tenant selector; ignored for the same reason.
    #[serde(rename = "prismaId", default)]
    pub prisma_id: Option<String>,
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
    String::deserialize(deserializer).map(Secret::new)
}

/// One entry of `customerNames`: the tenant the token is for, in upstream's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerName {
    /// The tenant's display name.
    #[serde(rename = "customerName")]
    pub customer_name: String,
    /// The tenant's id.
    #[serde(rename = "prismaId")]
    pub prisma_id: String,
    /// Always true: there are no terms of service to accept here.
    #[serde(rename = "tosAccepted")]
    pub tos_accepted: bool,
}

/// The answer to a successful `POST /login` or `GET /auth_token/extend`:
/// `{"token", "message": "login_successful", "customerNames": [...]}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The login token, for `x-redlock-auth`.
    pub token: String,
    /// Always [`LOGIN_SUCCESSFUL`].
    pub message: String,
    /// The one tenant the token is for.
    #[serde(rename = "customerNames")]
    pub customer_names: Vec<CustomerName>,
}

impl fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &"<redacted>")
            .field("message", &self.message)
            .field("customer_names", &self.customer_names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_bodies_allowed_and_denied() {
        let table: &[(&str, bool)] = &[
            (
                r#"{"username":"tgk_0123456789abcdef","password":"tgs_x"}"#,
                true,
            ),
            (
                r#"{"username":"u","password":"p","customerName":"ACME"}"#,
                true,
            ),
            (
                r#"{"username":"u","password":"p","prismaId":"123","customerName":"ACME"}"#,
                true,
            ),
            (r#"{"username":"u","password":"p","somethingNew":1}"#, true),
            (r#"{"username":"u"}"#, false),
            (r#"{"password":"p"}"#, false),
            (r#"{"username":1,"password":"p"}"#, false),
            (r#"{"username":"u","password":null}"#, false),
            (r#"[]"#, false),
        ];
        for (body, allowed) in table {
            assert_eq!(
                serde_json::from_str::<LoginRequest>(body).is_ok(),
                *allowed,
                "{body}"
            );
        }
    }

    #[test]
    fn a_login_body_never_prints_its_password() {
        let request: LoginRequest =
            serde_json::from_str(r#"{"username":"u","password":"hunter2"}"#).expect("body");
        assert_eq!(request.password.expose(), "hunter2");
        assert!(!format!("{request:?}").contains("hunter2"));
    }

    #[test]
    fn the_response_has_upstreams_field_names() {
        let response = LoginResponse {
            token: "a.b.c".into(),
            message: LOGIN_SUCCESSFUL.into(),
            customer_names: vec![CustomerName {
                customer_name: "ACME".into(),
                prisma_id: "acme".into(),
                tos_accepted: true,
            }],
        };
        let value = serde_json::to_value(&response).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"token": "a.b.c", "message": "login_successful",
                "customerNames": [{"customerName": "ACME", "prismaId": "acme", "tosAccepted": true}]})
        );
        assert!(!format!("{response:?}").contains("a.b.c"));
    }
}
