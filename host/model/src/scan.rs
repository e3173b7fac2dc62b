//! A scan: an asynchronous IaC scan as its client sees it (created, uploaded, initiated,
//! processing, passed/failed/error) and as the queue runs it.
//!
//! Invariants: a scan moves forward only: awaiting-upload -> uploaded -> queued -> running ->
//! passed | failed | error, except that a scan found `running` after a daemon died goes back to
//! `queued` (its `attempts` grows) until the retry limit, then to `error` with the reason;
//! passed/failed is decided only by [`FailureCriteria::fails`] on the counts of findings; every
//! path in [`TemplateParameters`] is relative to the upload's root and has no `..` component.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{InvalidValue, SeverityCounts, echo};

/// A scan's id: a UUID in its canonical lower-case text form, which is also the scan's folder
/// name on disk, so it is checked before it is used as one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScanId(String);

impl ScanId {
    /// Accepts only the canonical form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower-case hex).
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let groups: Vec<&str> = text.split('-').collect();
        let lengths = [8, 4, 4, 4, 12];
        let canonical = groups.len() == lengths.len()
            && groups.iter().zip(lengths).all(|(group, length)| {
                group.len() == length
                    && group
                        .bytes()
                        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
            });
        if canonical {
            Ok(Self(text.to_string()))
        } else {
            Err(InvalidValue::new(
                "id",
                format!("{:?} is not a scan id (a lower-case UUID)", echo(text)),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ScanId {
    type Error = InvalidValue;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<ScanId> for String {
    fn from(id: ScanId) -> String {
        id.0
    }
}

impl fmt::Display for ScanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a scan is in its life (finer than the API's [`ScanStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanState {
    /// Created; its upload URL has not been used yet.
    AwaitingUpload,
    /// Its file is uploaded and extracted; not initiated yet.
    Uploaded,
    /// Initiated: waiting for a worker (persisted, so it survives a restart).
    Queued,
    /// A worker is running its job.
    Running,
    Passed,
    Failed,
    Error,
}

impl ScanState {
    pub const ALL: [ScanState; 7] = [
        ScanState::AwaitingUpload,
        ScanState::Uploaded,
        ScanState::Queued,
        ScanState::Running,
        ScanState::Passed,
        ScanState::Failed,
        ScanState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScanState::AwaitingUpload => "awaiting_upload",
            ScanState::Uploaded => "uploaded",
            ScanState::Queued => "queued",
            ScanState::Running => "running",
            ScanState::Passed => "passed",
            ScanState::Failed => "failed",
            ScanState::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<ScanState> {
        ScanState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// The status the IaC Scan API reports: everything before an ending is `processing`.
    pub fn status(self) -> ScanStatus {
        match self {
            ScanState::AwaitingUpload
            | ScanState::Uploaded
            | ScanState::Queued
            | ScanState::Running => ScanStatus::Processing,
            ScanState::Passed => ScanStatus::Passed,
            ScanState::Failed => ScanStatus::Failed,
            ScanState::Error => ScanStatus::Error,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ScanState::Passed | ScanState::Failed | ScanState::Error
        )
    }

    /// The states that report `status` (what a `filter[status]` selects).
    pub fn with_status(status: ScanStatus) -> Vec<ScanState> {
        ScanState::ALL
            .into_iter()
            .filter(|state| state.status() == status)
            .collect()
    }
}

/// A scan's status as the IaC Scan API V2 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    Processing,
    Passed,
    Failed,
    Error,
}

impl ScanStatus {
    pub const ALL: [ScanStatus; 4] = [
        ScanStatus::Processing,
        ScanStatus::Passed,
        ScanStatus::Failed,
        ScanStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Processing => "processing",
            ScanStatus::Passed => "passed",
            ScanStatus::Failed => "failed",
            ScanStatus::Error => "error",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<ScanStatus, InvalidValue> {
        ScanStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                InvalidValue::not_allowed(field, text, &["processing", "passed", "failed", "error"])
            })
    }
}

/// Where a scan's templates came from (the IaC Scan API's closed list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AssetType {
    AzureDevOps,
    #[serde(rename = "AWSCodePipeline")]
    AwsCodePipeline,
    BitbucketCloud,
    BitbucketServer,
    CircleCI,
    GitHub,
    #[serde(rename = "GitLab-CICD")]
    GitLabCicd,
    #[serde(rename = "GitLab-SCM")]
    GitLabScm,
    #[serde(rename = "IaC-API")]
    IacApi,
    IntelliJ,
    Jenkins,
    #[serde(rename = "twistcli")]
    Twistcli,
    #[serde(rename = "VSCode")]
    VsCode,
}

impl AssetType {
    pub const ALL: [AssetType; 13] = [
        AssetType::AzureDevOps,
        AssetType::AwsCodePipeline,
        AssetType::BitbucketCloud,
        AssetType::BitbucketServer,
        AssetType::CircleCI,
        AssetType::GitHub,
        AssetType::GitLabCicd,
        AssetType::GitLabScm,
        AssetType::IacApi,
        AssetType::IntelliJ,
        AssetType::Jenkins,
        AssetType::Twistcli,
        AssetType::VsCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetType::AzureDevOps => "AzureDevOps",
            AssetType::AwsCodePipeline => "AWSCodePipeline",
            AssetType::BitbucketCloud => "BitbucketCloud",
            AssetType::BitbucketServer => "BitbucketServer",
            AssetType::CircleCI => "CircleCI",
            AssetType::GitHub => "GitHub",
            AssetType::GitLabCicd => "GitLab-CICD",
            AssetType::GitLabScm => "GitLab-SCM",
            AssetType::IacApi => "IaC-API",
            AssetType::IntelliJ => "IntelliJ",
            AssetType::Jenkins => "Jenkins",
            AssetType::Twistcli => "twistcli",
            AssetType::VsCode => "VSCode",
        }
    }

    /// Parses a wire name; case is ignored because hand-written CI scripts vary it.
    pub fn parse(field: &str, text: &str) -> Result<AssetType, InvalidValue> {
        AssetType::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let allowed: Vec<&str> = AssetType::ALL.iter().map(|kind| kind.as_str()).collect();
                InvalidValue::not_allowed(field, text, &allowed)
            })
    }
}

/// The kind of templates a scan holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateType {
    Tf,
    Cft,
    K8s,
}

impl TemplateType {
    pub const ALL: [TemplateType; 3] = [TemplateType::Tf, TemplateType::Cft, TemplateType::K8s];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateType::Tf => "tf",
            TemplateType::Cft => "cft",
            TemplateType::K8s => "k8s",
        }
    }

    /// Parses `tf`, `cft` or `k8s` in any case (`.prismaCloud/config.yml` writes `TF`).
    pub fn parse(field: &str, text: &str) -> Result<TemplateType, InvalidValue> {
        TemplateType::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| InvalidValue::not_allowed(field, text, &["tf", "cft", "k8s"]))
    }

    /// The file name a single uploaded template gets, so that scanners that go by extension
    /// recognise it.
    pub fn single_file_name(self) -> &'static str {
        match self {
            TemplateType::Tf => "main.tf",
            TemplateType::Cft => "template.yaml",
            TemplateType::K8s => "manifest.yaml",
        }
    }
}

/// How the three thresholds of [`FailureCriteria`] combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    And,
    Or,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::And => "and",
            Operator::Or => "or",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Operator, InvalidValue> {
        match text.to_ascii_lowercase().as_str() {
            "and" => Ok(Operator::And),
            "or" => Ok(Operator::Or),
            _ => Err(InvalidValue::not_allowed(field, text, &["and", "or"])),
        }
    }
}

/// When a scan fails: a threshold per bucket, reached when the bucket's count is at least the
/// threshold; a threshold of 0 leaves that bucket out. With `or` the scan fails when any
/// threshold is reached; with `and` when every non-zero one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FailureCriteria {
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub operator: Operator,
}

impl Default for FailureCriteria {
    /// Upstream's default: any high, medium or low finding fails the scan.
    fn default() -> Self {
        Self {
            high: 1,
            medium: 1,
            low: 1,
            operator: Operator::Or,
        }
    }
}

impl FailureCriteria {
    /// Whether findings with these counts fail the scan.
    pub fn fails(&self, counts: &SeverityCounts) -> bool {
        use crate::severity::Bucket;
        let reached: Vec<bool> = [
            (self.high, Bucket::High),
            (self.medium, Bucket::Medium),
            (self.low, Bucket::Low),
        ]
        .into_iter()
        .filter(|(threshold, _)| *threshold > 0)
        .map(|(threshold, bucket)| counts.bucket(bucket) >= u64::from(threshold))
        .collect();
        match self.operator {
            Operator::Or => reached.iter().any(|hit| *hit),
            Operator::And => !reached.is_empty() && reached.iter().all(|hit| *hit),
        }
    }
}

/// What an initiate call asks for (`templateParameters`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateParameters {
    /// Terraform variables, passed to tools that take them (else reported as not applied).
    pub variables: BTreeMap<String, String>,
    /// Variable files, relative to the upload root.
    pub variable_files: Vec<String>,
    /// Restrict the scan to these files (relative to the upload root).
    pub files: Vec<String>,
    /// Restrict the scan to these folders (relative to the upload root).
    pub folders: Vec<String>,
    /// Keep only findings of these rules.
    pub policy_id_filters: Vec<String>,
}

impl TemplateParameters {
    /// Normalizes a path given relative to the upload's root: upstream clients write
    /// `/dev/app.tf` or `./dev`, so a leading `/` or `./` is dropped; `..`, NUL, backslashes
    /// and empty paths are refused, naming `field`.
    pub fn upload_relative_path(field: &str, text: &str) -> Result<String, InvalidValue> {
        let refuse = |why: &str| {
            Err(InvalidValue::new(
                field,
                format!(
                    "{:?} {why}; paths are relative to the root of the upload, e.g. \"dev/app.tf\"",
                    echo(text)
                ),
            ))
        };
        if text.contains('\0') || text.contains('\\') {
            return refuse("contains a NUL or a backslash");
        }
        let mut parts = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return refuse("leaves the upload (\"..\")"),
                other => parts.push(other),
            }
        }
        if parts.is_empty() {
            return refuse("names no file or folder");
        }
        Ok(parts.join("/"))
    }
}

/// An initiated scan's request: what to scan, how, with which tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    pub template_type: TemplateType,
    pub template_version: Option<String>,
    pub parameters: TemplateParameters,
    /// The plugin that runs the scan (the configured default when the caller names none).
    pub tool: String,
}

/// What the upload held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    pub bytes: u64,
    pub sha256: String,
    /// Files extracted (1 for a single template).
    pub files: u64,
    pub uploaded_at: DateTime<Utc>,
}

/// A remark attached to a scan's results (`meta.errorDetails`): a request part a tool could not
/// honour, a tool error, why a scan ended in `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable kind, e.g. `not_applied`, `tool_error`, `retries_exhausted`.
    pub code: String,
    pub detail: String,
}

/// How a finished scan ended (its findings are stored beside it, not in here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanOutcome {
    /// Findings by severity after `policyIdFilters`.
    pub counts: SeverityCounts,
    pub error_details: Vec<ErrorDetail>,
    /// `type.name` of every resource with a finding (what `filter[resourceList]` matches).
    pub resources: Vec<String>,
}

/// What a create call asks for: the caller's description of a scan, before it has an id, an
/// owner or a state. Every field is already checked (see the IaC API view's create parser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSpec {
    pub asset_name: String,
    pub asset_type: AssetType,
    /// Searchable tags.
    pub tags: BTreeMap<String, String>,
    /// Not searchable; returned as given.
    pub scan_attributes: BTreeMap<String, String>,
    pub failure_criteria: FailureCriteria,
}

/// A scan as the engine and the store know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub id: ScanId,
    pub asset_name: String,
    pub asset_type: AssetType,
    /// Searchable tags.
    pub tags: BTreeMap<String, String>,
    /// Not searchable; returned as given.
    pub scan_attributes: BTreeMap<String, String>,
    pub failure_criteria: FailureCriteria,
    /// Who created it (the tenant's user; `anonymous` without authentication).
    pub user: String,
    /// The tenant that owns it (issue #16): only it sees, reads or initiates it.
    #[serde(default = "implicit_tenant")]
    pub tenant: String,
    pub state: ScanState,
    pub created_at: DateTime<Utc>,
    pub upload: Option<UploadInfo>,
    pub request: Option<ScanRequest>,
    /// How many times a worker started it (a daemon dying mid-run costs one).
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The job that ran (or runs) it.
    pub job_id: Option<String>,
    pub outcome: Option<ScanOutcome>,
}

/// What a create call gives: everything of a scan but its life so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScan {
    pub id: ScanId,
    pub asset_name: String,
    pub asset_type: AssetType,
    pub tags: BTreeMap<String, String>,
    pub scan_attributes: BTreeMap<String, String>,
    pub failure_criteria: FailureCriteria,
    pub user: String,
    /// The tenant that owns it (the caller's; `local` without `[[tenants]]`).
    pub tenant: String,
    pub created_at: DateTime<Utc>,
}

/// The owner of scans recorded before tenants existed (the implicit loopback tenant).
fn implicit_tenant() -> String {
    "local".to_string()
}

impl Scan {
    /// A scan just created: awaiting its upload, never started.
    pub fn created(new: NewScan) -> Scan {
        Scan {
            id: new.id,
            asset_name: new.asset_name,
            asset_type: new.asset_type,
            tags: new.tags,
            scan_attributes: new.scan_attributes,
            failure_criteria: new.failure_criteria,
            user: new.user,
            tenant: new.tenant,
            state: ScanState::AwaitingUpload,
            created_at: new.created_at,
            upload: None,
            request: None,
            attempts: 0,
            started_at: None,
            finished_at: None,
            job_id: None,
            outcome: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    fn counts(high: u64, medium: u64, low: u64) -> SeverityCounts {
        SeverityCounts {
            high,
            medium,
            low,
            ..SeverityCounts::default()
        }
    }

    #[test]
    fn failure_criteria_table() {
        let or = |high, medium, low| FailureCriteria {
            high,
            medium,
            low,
            operator: Operator::Or,
        };
        let and = |high, medium, low| FailureCriteria {
            high,
            medium,
            low,
            operator: Operator::And,
        };
        let table = [
            (FailureCriteria::default(), counts(0, 0, 0), false),
            (FailureCriteria::default(), counts(0, 0, 1), true),
            (or(5, 2, 10), counts(4, 1, 9), false),
            (or(5, 2, 10), counts(0, 2, 0), true),
            (and(1, 1, 1), counts(3, 0, 3), false),
            (and(1, 1, 1), counts(1, 1, 1), true),
            (and(2, 0, 0), counts(2, 0, 0), true),
            (and(0, 0, 0), counts(9, 9, 9), false),
            (or(0, 0, 0), counts(9, 9, 9), false),
        ];
        for (criteria, found, fails) in table {
            assert_eq!(criteria.fails(&found), fails, "{criteria:?} {found:?}");
        }
    }

    #[test]
    fn a_critical_finding_fails_a_scan_that_fails_on_high() {
        let found = SeverityCounts::of(&[Severity::Critical]);
        assert!(FailureCriteria::default().fails(&found));
        let found = SeverityCounts::of(&[Severity::Info, Severity::Info]);
        assert!(!FailureCriteria::default().fails(&found));
    }

    #[test]
    fn upload_relative_paths_table() {
        let allowed = [
            ("/dev/app.tf", "dev/app.tf"),
            ("./dev", "dev"),
            ("dev//nested/./x.tf", "dev/nested/x.tf"),
            ("main.tf", "main.tf"),
        ];
        for (given, normalized) in allowed {
            assert_eq!(
                TemplateParameters::upload_relative_path("files", given).as_deref(),
                Ok(normalized)
            );
        }
        for refused in [
            "",
            "/",
            "./",
            "../etc/passwd",
            "dev/../../x",
            "a\0b",
            "a\\b",
        ] {
            let error =
                TemplateParameters::upload_relative_path("files", refused).expect_err(refused);
            assert_eq!(error.field, "files");
        }
    }

    #[test]
    fn scan_ids_must_be_canonical_uuids() {
        assert!(ScanId::parse("0190a5b2-7c3e-7def-8a12-3456789abcde").is_ok());
        for refused in [
            "",
            "0190A5B2-7C3E-7DEF-8A12-3456789ABCDE",
            "0190a5b2-7c3e-7def-8a12-3456789abcd",
            "../../etc/passwd",
            "0190a5b2_7c3e_7def_8a12_3456789abcde",
            "0190a5b2-7c3e-7def-8a12-3456789abcdg",
        ] {
            assert!(ScanId::parse(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn wire_names_parse_in_any_case_and_refusals_name_the_choices() {
        assert_eq!(
            TemplateType::parse("templateType", "TF"),
            Ok(TemplateType::Tf)
        );
        assert_eq!(
            AssetType::parse("assetType", "gitlab-cicd"),
            Ok(AssetType::GitLabCicd)
        );
        let error = AssetType::parse("assetType", "Gitea").expect_err("not a type");
        assert_eq!(error.field, "assetType");
        assert!(error.message.contains("IaC-API"), "{}", error.message);
        let error = TemplateType::parse("templateType", "helm").expect_err("not a type");
        assert!(error.message.contains("tf, cft, k8s"), "{}", error.message);
    }

    #[test]
    fn states_report_the_api_status() {
        for state in ScanState::ALL {
            assert_eq!(ScanState::parse(state.as_str()), Some(state));
            assert_eq!(
                state.is_terminal(),
                state.status() != ScanStatus::Processing
            );
        }
        assert_eq!(ScanState::with_status(ScanStatus::Processing).len(), 4);
    }
}
