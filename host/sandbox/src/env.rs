//! The child's environment, rebuilt from nothing: the daemon's own environment (and any secret
//! in it) never reaches a tool.
//!
//! Invariant: the result holds PATH (policy), HOME and TMPDIR (the job's private dirs),
//! LANG=C.UTF-8, plus the passthrough pairs the daemon computed (plugin-declared ∩
//! operator-allowed). Passthrough may not override the fixed variables, nor set loader
//! variables (`LD_*`), nor carry malformed names or NUL bytes.

use std::path::Path;

use crate::error::{SandboxError, truncate_value};

/// Variables the sandbox always sets itself; a passthrough pair may not replace them.
pub const FIXED_VARIABLES: &[&str] = &["PATH", "HOME", "TMPDIR", "LANG"];
/// Locale given to every tool: predictable output for the parsers, UTF-8 safe.
pub const TOOL_LANG: &str = "C.UTF-8";

/// Builds the complete environment of a job.
pub fn build_env(
    path_env: &str,
    home: &Path,
    tmp: &Path,
    passthrough: &[(String, String)],
) -> Result<Vec<(String, String)>, SandboxError> {
    let mut env = vec![
        ("PATH".to_string(), path_env.to_string()),
        ("HOME".to_string(), path_string(home)?),
        ("TMPDIR".to_string(), path_string(tmp)?),
        ("LANG".to_string(), TOOL_LANG.to_string()),
    ];
    for (name, value) in passthrough {
        check_pair(name, value)?;
        if env.iter().any(|(existing, _)| existing == name) {
            return Err(refuse(name, "is set twice or overrides a fixed variable"));
        }
        env.push((name.clone(), value.clone()));
    }
    Ok(env)
}

fn check_pair(name: &str, value: &str) -> Result<(), SandboxError> {
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(refuse(name, "name must be [A-Za-z_][A-Za-z0-9_]*"));
    }
    if FIXED_VARIABLES.contains(&name) {
        return Err(refuse(name, "overrides a variable the sandbox sets itself"));
    }
    if name.starts_with("LD_") {
        return Err(refuse(name, "dynamic loader variables are never passed"));
    }
    if value.contains('\0') {
        return Err(refuse(name, "value contains a NUL byte"));
    }
    Ok(())
}

fn path_string(path: &Path) -> Result<String, SandboxError> {
    path.to_str()
        .filter(|s| !s.contains('\0'))
        .map(str::to_string)
        .ok_or_else(|| refuse("HOME/TMPDIR", "job directory path is not valid UTF-8"))
}

fn refuse(name: &str, reason: &str) -> SandboxError {
    SandboxError::Env {
        name: truncate_value(name),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn fixed_variables_come_first_and_alone() {
        let env = build_env("/usr/bin", Path::new("/j/home"), Path::new("/j/tmp"), &[]).unwrap();
        assert_eq!(
            env,
            vec![
                pair("PATH", "/usr/bin"),
                pair("HOME", "/j/home"),
                pair("TMPDIR", "/j/tmp"),
                pair("LANG", "C.UTF-8"),
            ]
        );
    }

    #[test]
    fn passthrough_table() {
        let cases: &[((&str, &str), bool)] = &[
            (("AWS_PROFILE", "default"), true),
            (("AWS_REGION", ""), true),
            (("_X1", "v"), true),
            (("PATH", "/tmp"), false),
            (("HOME", "/root"), false),
            (("LANG", "C"), false),
            (("LD_PRELOAD", "/tmp/x.so"), false),
            (("LD_LIBRARY_PATH", "/tmp"), false),
            (("", "v"), false),
            (("1ABC", "v"), false),
            (("A=B", "v"), false),
            (("A B", "v"), false),
            (("TOKEN", "a\0b"), false),
        ];
        for ((name, value), allowed) in cases {
            let got = build_env(
                "/bin",
                Path::new("/h"),
                Path::new("/t"),
                &[pair(name, value)],
            );
            assert_eq!(got.is_ok(), *allowed, "{name}={value:?}: {got:?}");
            if *allowed {
                assert!(got.unwrap().contains(&pair(name, value)));
            }
        }
        let twice = build_env(
            "/bin",
            Path::new("/h"),
            Path::new("/t"),
            &[pair("A", "1"), pair("A", "2")],
        );
        assert!(twice.is_err());
    }
}
