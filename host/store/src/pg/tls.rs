//! TLS to PostgreSQL: what a `[store] url` asks for, and the connector that gives it.
//!
//! The URL takes libpq's parameters for it, so an operator writes what they already know:
//! - `sslmode=verify-full` (or `require`): TLS, with the server's certificate chain verified
//!   against `sslrootcert` (a PEM file of CA certificates) or, without it, the system's CA
//!   certificates, and the server's host name checked against it. Both modes verify: libpq's
//!   `require` checks nothing, and a connection that does not know whom it talks to hides the
//!   password and the audit trail from no one on the path.
//! - no `sslmode`, or `sslmode=disable`: no TLS (a Unix socket, or a private network).
//! - `prefer` and `allow` are refused: they fall back to plain text without saying so.
//!   `verify-ca` is refused too: the host name is always checked, so `verify-full` is the
//!   mode this gives.
//!
//! Invariants: `sslrootcert` is taken out of the URL before tokio-postgres parses it (it does
//! not know it), and is refused without a verifying mode; no error here repeats the URL (it
//! may hold the password), only the parameter and value at fault.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// Where to connect and how: the URL's settings for tokio-postgres and the TLS they need.
pub(super) struct Target {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: Tls,
}

/// The transport a connection uses.
#[derive(Clone)]
pub(super) enum Tls {
    /// No TLS (no `sslmode`, or `sslmode=disable`).
    Plain,
    /// TLS with the server's certificate and host name verified.
    Verified(MakeRustlsConnect),
}

/// What the URL's `sslmode` asks for, once the libpq-only values are mapped.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Plain,
    Verified,
}

/// Reads `url` (`postgres://...` or key=value) into its settings and transport.
pub(super) fn target(url: &str) -> Result<Target, StoreError> {
    let (url, mode, root_file) = take_tls_parameters(url)?;
    let config: tokio_postgres::Config = url.parse()?;
    let tls = match mode {
        Mode::Plain => Tls::Plain,
        Mode::Verified => Tls::Verified(MakeRustlsConnect::new(client_config(root_file)?)),
    };
    Ok(Target { config, tls })
}

/// `url` without `sslrootcert` and with `sslmode` as tokio-postgres knows it, what `sslmode`
/// asked for and the `sslrootcert` file, if any.
fn take_tls_parameters(url: &str) -> Result<(String, Mode, Option<PathBuf>), StoreError> {
    let url_form = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (head, parameters, separator) = if url_form {
        let Some((head, query)) = url.split_once('?') else {
            return Ok((url.to_string(), Mode::Plain, None));
        };
        let mut parameters = Vec::new();
        for raw in query.split('&') {
            let (key, value) = raw.split_once('=').unwrap_or((raw, ""));
            // Only the values read here are decoded; the rest go on as written.
            let value = match key {
                "sslrootcert" | "sslmode" => percent_decoded(key, value)?,
                _ => String::new(),
            };
            parameters.push(Parameter { key, value, raw });
        }
        (format!("{head}?"), parameters, "&")
    } else {
        match key_value_parameters(url) {
            Some(parameters) => (String::new(), parameters, " "),
            // Not key=value as libpq writes it: tokio-postgres says why. Nothing here asks
            // for TLS then, and an `sslmode=require` it reads fails without a TLS connector
            // rather than connecting in plain text.
            None => return Ok((url.to_string(), Mode::Plain, None)),
        }
    };
    let mut kept = Vec::with_capacity(parameters.len());
    let mut mode = Mode::Plain;
    let mut root_file = None;
    for parameter in parameters {
        match parameter.key {
            "sslrootcert" => root_file = Some(PathBuf::from(parameter.value)),
            "sslmode" => {
                mode = ssl_mode(&parameter.value)?;
                kept.push(match mode {
                    Mode::Plain => "sslmode=disable",
                    Mode::Verified => "sslmode=require",
                });
            }
            _ => kept.push(parameter.raw),
        }
    }
    if root_file.is_some() && mode != Mode::Verified {
        return Err(settings(
            "sslrootcert is given but sslmode is not verify-full (or require): \
             add sslmode=verify-full to [store] url",
        ));
    }
    Ok((format!("{head}{}", kept.join(separator)), mode, root_file))
}

/// One `key=value` of a connection string: its key, its value as meant (decoded, unquoted)
/// and its text as written, which is what is passed on when it is kept.
struct Parameter<'a> {
    key: &'a str,
    value: String,
    raw: &'a str,
}

/// The `key=value` pairs of libpq's key=value form (spaces around `=` allowed; a value in
/// single quotes may hold spaces, `\'` and `\\`), each with its text as written so that a
/// kept one (a password) is passed on unchanged; `None` when `text` is not of that form.
fn key_value_parameters(text: &str) -> Option<Vec<Parameter<'_>>> {
    let bytes = text.as_bytes();
    let skip_spaces = |mut at: usize| {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    let mut parameters = Vec::new();
    let mut at = skip_spaces(0);
    while at < bytes.len() {
        let start = at;
        while at < bytes.len() && bytes[at] != b'=' && !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let key = &text[start..at];
        at = skip_spaces(at);
        if key.is_empty() || bytes.get(at) != Some(&b'=') {
            return None;
        }
        at = skip_spaces(at + 1);
        let mut value = Vec::new();
        if bytes.get(at) == Some(&b'\'') {
            at += 1;
            loop {
                match bytes.get(at)? {
                    b'\\' => {
                        value.push(*bytes.get(at + 1)?);
                        at += 2;
                    }
                    b'\'' => {
                        at += 1;
                        break;
                    }
                    byte => {
                        value.push(*byte);
                        at += 1;
                    }
                }
            }
        } else {
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                value.push(bytes[at]);
                at += 1;
            }
        }
        parameters.push(Parameter {
            key,
            value: String::from_utf8(value).ok()?,
            raw: &text[start..at],
        });
        at = skip_spaces(at);
    }
    Some(parameters)
}

fn ssl_mode(value: &str) -> Result<Mode, StoreError> {
    match value {
        "disable" => Ok(Mode::Plain),
        "require" | "verify-full" => Ok(Mode::Verified),
        "verify-ca" => Err(settings(
            "sslmode=verify-ca is not offered: toolgate always checks the server's host name \
             too; use sslmode=verify-full",
        )),
        "prefer" | "allow" => Err(settings(&format!(
            "sslmode={value} falls back to plain text without saying so; use \
             sslmode=verify-full (TLS, the server verified) or sslmode=disable"
        ))),
        other => Err(settings(&format!(
            "sslmode={other:?} is not a mode; expected verify-full, require or disable"
        ))),
    }
}

/// The URL query value of `key` with its `%XX` escapes decoded.
fn percent_decoded(key: &str, value: &str) -> Result<String, StoreError> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = value
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    settings(&format!("{key} has a % not followed by two hex digits"))
                })?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| settings(&format!("{key} is not UTF-8 once decoded")))
}

/// A rustls client trusting the certificates in `root_file`, or the system's.
fn client_config(root_file: Option<PathBuf>) -> Result<rustls::ClientConfig, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match root_file {
        Some(path) => {
            let unreadable = |error: &dyn std::fmt::Display| {
                settings(&format!("sslrootcert {}: {error}", path.display()))
            };
            let certificates = CertificateDer::pem_file_iter(&path)
                .map_err(|error| unreadable(&error))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| unreadable(&error))?;
            if certificates.is_empty() {
                return Err(unreadable(&"holds no PEM certificate"));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|error| unreadable(&error))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(settings(
                    "sslmode asks to verify the server, but this machine has no CA \
                     certificates (install ca-certificates) and [store] url gives no \
                     sslrootcert",
                ));
            }
        }
    }
    // ring, not rustls's default aws-lc-rs: tokio-postgres-rustls builds ring in anyway, and a
    // second C crypto library would add minutes to every clean build for post-quantum key
    // exchange, which rustls 0.23.48 deprecated ring's provider over.
    #[expect(
        deprecated,
        reason = "see above: ring is already linked, aws-lc-rs is not"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| settings(&error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn settings(detail: &str) -> StoreError {
    StoreError::PostgresSettings(format!("[store] url: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URL in, URL for tokio-postgres out, with the mode and CA file it asked for.
    #[test]
    fn tls_parameters_are_read_from_both_url_forms() {
        let table: &[(&str, &str, Mode, Option<&str>)] = &[
            (
                "postgres://u:p@db:5432/toolgate",
                "postgres://u:p@db:5432/toolgate",
                Mode::Plain,
                None,
            ),
            (
                "postgres://u@db/t?sslmode=disable&connect_timeout=3",
                "postgres://u@db/t?sslmode=disable&connect_timeout=3",
                Mode::Plain,
                None,
            ),
            (
                "postgres://u@db/t?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem",
                "postgres://u@db/t?sslmode=require",
                Mode::Verified,
                Some("/etc/ca x.pem"),
            ),
            (
                "postgresql://u@db/t?sslrootcert=/ca.pem&sslmode=require",
                "postgresql://u@db/t?sslmode=require",
                Mode::Verified,
                Some("/ca.pem"),
            ),
            (
                "host=db user=u sslmode=verify-full sslrootcert=/ca.pem",
                "host=db user=u sslmode=require",
                Mode::Verified,
                Some("/ca.pem"),
            ),
            ("host=db user=u", "host=db user=u", Mode::Plain, None),
            (
                "postgres://u@db/t?application_name=a%20b&sslmode=disable",
                "postgres://u@db/t?application_name=a%20b&sslmode=disable",
                Mode::Plain,
                None,
            ),
            (
                "host=db password='a  b\\'c' sslmode = verify-full sslrootcert='/etc/my ca.pem'",
                "host=db password='a  b\\'c' sslmode=require",
                Mode::Verified,
                Some("/etc/my ca.pem"),
            ),
            (
                "host=db password='unterminated sslmode=verify-full",
                "host=db password='unterminated sslmode=verify-full",
                Mode::Plain,
                None,
            ),
        ];
        for (url, expected, mode, root) in table {
            let (rewritten, got_mode, got_root) = take_tls_parameters(url).expect(url);
            assert_eq!(&rewritten, expected, "{url}");
            assert_eq!(&got_mode, mode, "{url}");
            assert_eq!(got_root.as_deref(), root.map(std::path::Path::new), "{url}");
        }
        // A kept value is passed on as written: the quoted password reaches tokio-postgres
        // with its two spaces and its escaped quote.
        let (kept, _, _) = take_tls_parameters(table[7].0).expect("quoted");
        let config: tokio_postgres::Config = kept.parse().expect("tokio-postgres reads it");
        assert_eq!(config.get_password(), Some(&b"a  b'c"[..]));
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    /// Modes that would not verify the server, or fall back to plain text, are refused with
    /// the parameter named and without the URL (its password) in the message.
    #[test]
    fn modes_that_do_not_verify_are_refused_without_echoing_the_url() {
        let table = [
            ("postgres://u:secret@db/t?sslmode=prefer", "sslmode=prefer"),
            ("postgres://u:secret@db/t?sslmode=allow", "sslmode=allow"),
            ("postgres://u:secret@db/t?sslmode=verify-ca", "verify-full"),
            ("postgres://u:secret@db/t?sslmode=on", "not a mode"),
            (
                "postgres://u:secret@db/t?sslrootcert=/ca.pem",
                "sslrootcert is given",
            ),
            (
                "host=db password=secret sslmode=disable sslrootcert=/ca.pem",
                "sslrootcert is given",
            ),
            (
                "postgres://u:secret@db/t?sslmode=require&sslrootcert=%zz",
                "two hex digits",
            ),
        ];
        for (url, expected) in table {
            let error = take_tls_parameters(url).expect_err(url).to_string();
            assert!(error.contains(expected), "{url}: {error}");
            assert!(error.contains("[store] url"), "{url}: {error}");
            assert!(!error.contains("secret"), "{url}: {error}");
        }
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_named() {
        let directory = tempfile::tempdir().expect("directory");
        let empty = directory.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let missing = directory.path().join("missing.pem");
        for (path, expected) in [
            (&empty, "holds no PEM certificate"),
            (&missing, "No such file"),
        ] {
            let error = match client_config(Some(path.clone())) {
                Ok(_) => panic!("{} accepted", path.display()),
                Err(error) => error.to_string(),
            };
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(error.contains(expected), "{error}");
        }
    }
}
