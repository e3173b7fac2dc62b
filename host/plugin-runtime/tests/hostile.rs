//! Each hostile behaviour costs exactly one clean `CallError` with the right reason, and the same
//! runtime answers the next call normally.

mod common;

use common::{
    QUICK_TIMEOUT_MS, assert_ok_plan, patient_config, plan_context, quick_config,
    runtime_with_hostile,
};
use toolgate_plugin_runtime::{
    Arg, CallFailure, Classification, Outcome, OutputFile, RuntimeConfig,
};

fn plan_failure(mode: &str, config: RuntimeConfig) -> CallFailure {
    let runtime = runtime_with_hostile(config);
    let error = runtime
        .plan(
            "hostile",
            &format!(r#"{{"mode":"{mode}"}}"#),
            &plan_context(),
        )
        .expect_err("the hostile call must fail");
    assert_eq!(error.plugin, "hostile");
    assert_eq!(error.call, "plan");
    assert!(
        error
            .to_string()
            .starts_with("plugin `hostile` plan() failed: ")
    );
    assert_ok_plan(&runtime);
    error.reason
}

fn parse_failure(stdout: &str, config: RuntimeConfig) -> CallFailure {
    let runtime = runtime_with_hostile(config);
    let outcome = Outcome {
        stdout: stdout.as_bytes().to_vec(),
        ..Outcome::default()
    };
    let error = runtime.parse("hostile", &outcome).expect_err("must fail");
    assert_eq!((error.plugin.as_str(), error.call), ("hostile", "parse"));
    assert_ok_plan(&runtime);
    runtime
        .parse("hostile", &Outcome::default())
        .expect("ok parse after a failure");
    error.reason
}

#[test]
fn plan_loop_hits_the_deadline() {
    assert_eq!(
        plan_failure("loop", quick_config()),
        CallFailure::Deadline {
            ms: QUICK_TIMEOUT_MS
        }
    );
}

#[test]
fn plan_grow_hits_the_memory_limit() {
    assert_eq!(
        plan_failure("grow", patient_config()),
        CallFailure::MemoryLimit { bytes: 64 << 20 }
    );
}

#[test]
fn plan_grow_hits_the_default_memory_limit() {
    // A deadline far beyond the time to fill 512 MiB: only the memory cap may stop this call.
    let config = RuntimeConfig {
        plan_timeout_ms: 120_000,
        ..RuntimeConfig::default()
    };
    assert_eq!(
        plan_failure("grow", config.clone()),
        CallFailure::MemoryLimit {
            bytes: config.memory_limit_bytes
        }
    );
}

#[test]
fn plan_trap_is_a_trap() {
    match plan_failure("trap", quick_config()) {
        CallFailure::Trap(message) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn plan_loop_with_fuel_exhausts_it() {
    let config = RuntimeConfig {
        fuel: Some(50_000_000),
        plan_timeout_ms: 60_000,
        ..quick_config()
    };
    assert_eq!(plan_failure("loop", config), CallFailure::FuelExhausted);
}

#[test]
fn plan_sleep_traps_instead_of_blocking_the_host_thread() {
    match plan_failure("sleep", quick_config()) {
        CallFailure::Trap(message) => {
            assert!(message.contains("plugins may not sleep"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn plan_with_too_many_args_is_refused_whole() {
    match plan_failure("many-args", quick_config()) {
        CallFailure::ResultTooLarge(what) => assert!(what.contains("4097 argv tokens"), "{what}"),
        other => panic!("expected ResultTooLarge, got {other:?}"),
    }
}

#[test]
fn escape_plan_is_passed_through_unchanged_for_the_host_to_refuse() {
    let runtime = runtime_with_hostile(quick_config());
    let plan = runtime
        .plan("hostile", r#"{"mode":"escape"}"#, &plan_context())
        .unwrap()
        .unwrap();
    assert_eq!(
        plan.args,
        vec![
            Arg::Literal("--read".into()),
            Arg::InputPath("/etc/shadow".into())
        ]
    );
}

fn probe(mode: &str) -> String {
    let runtime = runtime_with_hostile(quick_config());
    let errors = runtime
        .plan(
            "hostile",
            &format!(r#"{{"mode":"{mode}"}}"#),
            &plan_context(),
        )
        .unwrap()
        .expect_err("the probe reports its outcome as a field error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "probe");
    errors[0].message.clone()
}

/// Every call gets a fresh instance whose memory is back to the component's initial image:
/// a call never sees what an earlier call wrote into a static or filled on its heap, whichever
/// way the pooling allocator reset those pages.
#[test]
fn no_call_sees_what_an_earlier_call_left_in_memory() {
    let runtime = runtime_with_hostile(RuntimeConfig::default());
    for secret in ["first-secret", "second-secret", "third-secret"] {
        let errors = runtime
            .plan(
                "hostile",
                &format!(r#"{{"mode":"remember","secret":"{secret}"}}"#),
                &plan_context(),
            )
            .unwrap()
            .expect_err("the probe reports what it found");
        assert_eq!(
            errors[0].message, "remembered nothing",
            "call with {secret}"
        );
    }
}

#[test]
fn open_file_fails_inside_the_plugin() {
    let message = probe("open-file");
    assert!(message.starts_with("open-file failed: "), "{message}");
    assert!(!message.contains("root:"), "file content leaked: {message}");
}

#[test]
fn socket_is_refused_by_wasi_not_by_the_kernel() {
    let message = probe("socket");
    assert!(message.starts_with("socket failed: "), "{message}");
    // The kernel would answer "Connection refused" for 127.0.0.1:1; WASI must deny first.
    assert!(
        !message.to_lowercase().contains("refused"),
        "reached the kernel: {message}"
    );
}

#[test]
fn flooding_stdout_is_bounded_and_does_not_fail_the_call() {
    let config = patient_config();
    let runtime = runtime_with_hostile(config.clone());
    runtime
        .plan("hostile", r#"{"mode":"flood"}"#, &plan_context())
        .unwrap()
        .unwrap();
    let log = runtime.plugin_log("hostile").unwrap();
    assert!(
        log.len() <= config.log_capacity_bytes,
        "{} bytes",
        log.len()
    );
    assert!(
        log.contains("bytes of stdout dropped"),
        "{}",
        &log[log.len() - 200..]
    );
}

#[test]
fn plugin_stderr_reaches_the_plugin_log() {
    let runtime = runtime_with_hostile(quick_config());
    assert_eq!(runtime.plugin_log("hostile").unwrap(), "");
    assert_ok_plan(&runtime);
    let log = runtime.plugin_log("hostile").unwrap();
    assert!(
        log.contains("hostile: planning ok for /var/lib/toolgate/jobs/1/out"),
        "{log}"
    );
    assert_eq!(runtime.plugin_log("nope"), None);
}

#[test]
fn trap_message_lands_in_the_plugin_log() {
    let runtime = runtime_with_hostile(quick_config());
    runtime
        .plan("hostile", r#"{"mode":"trap"}"#, &plan_context())
        .unwrap_err();
    let log = runtime.plugin_log("hostile").unwrap();
    assert!(log.contains("hostile plugin traps on purpose"), "{log}");
}

#[test]
fn parse_loop_hits_the_parse_deadline() {
    assert_eq!(
        parse_failure("loop", quick_config()),
        CallFailure::Deadline {
            ms: QUICK_TIMEOUT_MS
        }
    );
}

#[test]
fn parse_trap_is_a_trap() {
    assert!(matches!(
        parse_failure("trap", quick_config()),
        CallFailure::Trap(_)
    ));
}

#[test]
fn parse_grow_hits_the_memory_limit() {
    assert_eq!(
        parse_failure("grow", patient_config()),
        CallFailure::MemoryLimit { bytes: 64 << 20 }
    );
}

#[test]
fn parse_with_too_many_findings_is_refused_whole() {
    let config = RuntimeConfig {
        memory_limit_bytes: 512 << 20,
        ..patient_config()
    };
    let runtime = runtime_with_hostile(config);
    let outcome = Outcome {
        stdout: b"many-findings".to_vec(),
        ..Outcome::default()
    };
    let error = runtime.parse("hostile", &outcome).unwrap_err();
    match error.reason {
        CallFailure::ResultTooLarge(what) => assert!(what.contains("100001 findings"), "{what}"),
        other => panic!("expected ResultTooLarge, got {other:?}"),
    }
}

#[test]
fn unknown_tool_is_a_clean_error() {
    let runtime = runtime_with_hostile(quick_config());
    let error = runtime.plan("nope", "{}", &plan_context()).unwrap_err();
    assert_eq!(error.reason, CallFailure::UnknownTool);
    let error = runtime.parse("nope", &Outcome::default()).unwrap_err();
    assert_eq!(
        (error.call, error.reason),
        ("parse", CallFailure::UnknownTool)
    );
}

#[test]
fn parse_receives_a_prowler_sized_report_under_the_defaults() {
    // A real prowler scan leaves ~19 MB of OCSF JSON; the default limits must carry it.
    let runtime = runtime_with_hostile(RuntimeConfig::default());
    let report = vec![b'x'; 19 << 20];
    let outcome = Outcome {
        exit_code: Some(3),
        stdout: b"ok".to_vec(),
        files: vec![OutputFile {
            name: "prowler-output.ocsf.json".into(),
            content: report,
            truncated: false,
        }],
        ..Outcome::default()
    };
    let result = runtime.parse("hostile", &outcome).unwrap();
    assert_eq!(result.classification, Classification::Findings);
    assert_eq!(
        result.findings[0].description,
        format!("stdout 2 bytes, 1 files, {} file bytes", 19 << 20)
    );
    assert_eq!(
        result.findings[0].file.as_deref(),
        Some("prowler-output.ocsf.json")
    );
}
