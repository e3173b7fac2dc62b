//! The rule that keeps an unauthenticated daemon off the network.
//!
//! Invariant: with no `[[tenants]]` there is no authentication at all, so the daemon may listen
//! only on a loopback address; [`check_listen`] is the one place that decides it.

use std::net::SocketAddr;

use crate::tenants::Tenants;

/// A listen address the configuration does not allow, with the reason and the way out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "listen = \"{addr}\" is not a loopback address, and no [[tenants]] are configured: without tenants \
     toolgate has no authentication, so anyone who can reach that address could run tools. Listen on \
     127.0.0.1 or [::1], or configure [[tenants]] with access keys (toolgate token new TENANT)"
)]
pub struct ListenError {
    /// The refused address.
    pub addr: SocketAddr,
}

/// Whether the daemon may listen on `addr` with these tenants: any address with at least one
/// tenant, only loopback (including `::ffff:127.0.0.0/104`) without.
pub fn check_listen(addr: SocketAddr, tenants: &Tenants) -> Result<(), ListenError> {
    if tenants.is_empty() && !addr.ip().to_canonical().is_loopback() {
        return Err(ListenError { addr });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::{GlobalLimits, TenantConfig};

    fn one_tenant() -> Tenants {
        let config = TenantConfig {
            id: "acme".into(),
            display_name: "ACME".into(),
            access_keys: Vec::new(),
            allowed_tools: Vec::new(),
            allowed_dirs: Vec::new(),
            output_root: "/srv/out/acme".into(),
            quotas: Default::default(),
            tools: Default::default(),
            role: Default::default(),
            run_as: None,
        };
        let globals = GlobalLimits {
            timeout_secs: 60,
            memory_bytes: None,
            max_output_bytes: 1,
            max_concurrent_jobs: 1,
            tools: Default::default(),
        };
        Tenants::validate(&[config], &globals).expect("valid")
    }

    #[test]
    fn listen_addresses_allowed_and_denied() {
        let table: &[(&str, bool, bool)] = &[
            // (address, allowed without tenants, allowed with tenants)
            ("127.0.0.1:8888", true, true),
            ("127.9.9.9:8888", true, true),
            ("[::1]:8888", true, true),
            ("[::ffff:127.0.0.1]:8888", true, true),
            ("0.0.0.0:8888", false, true),
            ("[::]:8888", false, true),
            ("192.168.1.10:8888", false, true),
            ("[::ffff:10.0.0.1]:8888", false, true),
        ];
        let with = one_tenant();
        for (addr, without_ok, with_ok) in table {
            let addr: SocketAddr = addr.parse().expect("address");
            assert_eq!(
                check_listen(addr, &Tenants::default()).is_ok(),
                *without_ok,
                "{addr} without tenants"
            );
            assert_eq!(
                check_listen(addr, &with).is_ok(),
                *with_ok,
                "{addr} with tenants"
            );
        }
    }

    #[test]
    fn the_refusal_says_why_and_what_to_do() {
        let error = check_listen("0.0.0.0:8888".parse().expect("addr"), &Tenants::default())
            .expect_err("refused");
        let message = error.to_string();
        for fragment in [
            "0.0.0.0:8888",
            "no [[tenants]]",
            "127.0.0.1",
            "toolgate token new",
        ] {
            assert!(message.contains(fragment), "{message} lacks {fragment}");
        }
    }
}
