//! SARIF 2.1.0, as GitHub code scanning accepts it: the rule table as
//! `tool.driver.rules`, one result per finding with a physical location,
//! suppressed findings kept with an `inSource` suppression, and skipped files
//! as tool execution notifications.

use std::io::{self, Write};

use serde::Serialize;

use crate::validate::rules::{RuleInfo, RULES};
use crate::validate::{Finding, Note, Report};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// Paths in results are relative to the checked-out project.
const SOURCE_ROOT: &str = "%SRCROOT%";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool,
    /// Declares `%SRCROOT%` without an absolute path: the project folder,
    /// which code scanning takes as the repository root.
    original_uri_base_ids: OriginalBases,
    invocations: [Invocation; 1],
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct OriginalBases {
    #[serde(rename = "%SRCROOT%")]
    source_root: BaseDescription,
}

#[derive(Serialize)]
struct BaseDescription {
    description: Text,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    rules: Vec<SarifRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule {
    id: &'static str,
    name: &'static str,
    short_description: Text,
    full_description: Text,
    help: Help,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
struct Notification {
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: [Location; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressions: Vec<Suppression>,
    properties: Properties<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
}

#[derive(Serialize)]
struct Suppression {
    kind: &'static str,
}

#[derive(Serialize)]
struct Properties<'a> {
    kind: &'a crate::validate::FindingKind,
}

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "specsmith-rs",
                    version: env!("CARGO_PKG_VERSION"),
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    rules: RULES.iter().map(rule).collect(),
                },
            },
            original_uri_base_ids: OriginalBases {
                source_root: BaseDescription {
                    description: Text {
                        text: "The project folder validate checked".to_owned(),
                    },
                },
            },
            invocations: [Invocation {
                execution_successful: !report.has_errors(),
                tool_execution_notifications: report.notes.iter().map(notification).collect(),
            }],
            results: report.findings.iter().map(result).collect(),
        }],
    };
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

fn rule(info: &RuleInfo) -> SarifRule {
    SarifRule {
        id: info.code,
        name: info.name,
        short_description: Text {
            text: info.summary.to_owned(),
        },
        full_description: Text {
            text: info.summary.to_owned(),
        },
        help: Help {
            text: info.explanation.to_owned(),
            markdown: info.explanation.to_owned(),
        },
        default_configuration: Configuration { level: "error" },
    }
}

fn result(finding: &Finding) -> SarifResult<'_> {
    SarifResult {
        rule_id: finding.rule.code(),
        rule_index: finding.rule.index(),
        level: "error",
        message: Text {
            text: finding.message.clone(),
        },
        locations: [location(
            &finding.path,
            Some(Region {
                start_line: finding.line,
                start_column: finding.column,
            }),
        )],
        suppressions: if finding.suppressed {
            vec![Suppression { kind: "inSource" }]
        } else {
            Vec::new()
        },
        properties: Properties {
            kind: &finding.kind,
        },
    }
}

fn notification(note: &Note) -> Notification {
    Notification {
        level: if note.is_error() { "error" } else { "warning" },
        message: Text {
            text: format!("{}: {}", note.path, note.message),
        },
        locations: if note.path.is_empty() {
            Vec::new()
        } else {
            vec![location(&note.path, None)]
        },
    }
}

fn location(path: &str, region: Option<Region>) -> Location {
    Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: uri_path(path),
                uri_base_id: SOURCE_ROOT,
            },
            region,
        },
    }
}

/// A relative `/`-separated path as a URI reference: everything but the
/// unreserved characters and `/` percent-encoded (`my script.sh` → `my%20script.sh`).
fn uri_path(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::uri_path;
    use crate::validate::report::{sample, Format};

    fn sarif() -> Value {
        serde_json::from_str(&sample::render(Format::Sarif, &sample::report())).unwrap()
    }

    #[test]
    fn has_the_required_top_level_fields() {
        let log = sarif();
        assert_eq!(log["version"], "2.1.0");
        assert!(log["$schema"]
            .as_str()
            .unwrap()
            .ends_with("sarif-schema-2.1.0.json"));
        let runs = log["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        let driver = &runs[0]["tool"]["driver"];
        assert_eq!(driver["name"], "specsmith-rs");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        // Every uriBaseId used is declared, without leaking an absolute path.
        let base = &runs[0]["originalUriBaseIds"]["%SRCROOT%"];
        assert!(base["description"]["text"].is_string());
        assert!(base.get("uri").is_none());
    }

    #[test]
    fn lists_every_rule_with_id_name_and_help() {
        let log = sarif();
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap();
        let ids: Vec<&str> = rules
            .iter()
            .map(|rule| rule["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["H11", "H23"]);
        for rule in rules {
            assert!(!rule["name"].as_str().unwrap().is_empty());
            assert!(!rule["shortDescription"]["text"]
                .as_str()
                .unwrap()
                .is_empty());
            assert!(!rule["fullDescription"]["text"].as_str().unwrap().is_empty());
            assert!(rule["help"]["text"].as_str().unwrap().contains("**Fix.**"));
            assert_eq!(rule["defaultConfiguration"]["level"], "error");
        }
    }

    #[test]
    fn each_finding_is_a_located_result() {
        let log = sarif();
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap();
        for result in results {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
            assert!(!result["message"]["text"].as_str().unwrap().is_empty());
            let physical = &result["locations"][0]["physicalLocation"];
            assert!(physical["artifactLocation"]["uri"].is_string());
            assert_eq!(physical["artifactLocation"]["uriBaseId"], "%SRCROOT%");
            assert!(physical["region"]["startLine"].as_u64().unwrap() >= 1);
            assert!(physical["region"]["startColumn"].as_u64().unwrap() >= 1);
        }
        let first = &results[0];
        assert_eq!(first["ruleId"], "H11");
        assert_eq!(first["level"], "error");
        assert_eq!(
            first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "scripts/poll.sh"
        );
        assert_eq!(
            first["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
        assert!(first.get("suppressions").is_none());
        assert_eq!(results[1]["suppressions"][0]["kind"], "inSource");
        assert_eq!(results[2]["ruleId"], "H23");
        assert_eq!(results[2]["ruleIndex"], 1);
        assert_eq!(results[2]["properties"]["kind"], "bare-sleep");
    }

    #[test]
    fn skipped_files_are_notifications() {
        let log = sarif();
        let invocation = &log["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let notifications = invocation["toolExecutionNotifications"].as_array().unwrap();
        assert_eq!(notifications.len(), 2);
        assert_eq!(notifications[0]["level"], "warning");
        assert_eq!(notifications[1]["level"], "error");
    }

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(
            uri_path("scripts/my script#1.sh"),
            "scripts/my%20script%231.sh"
        );
        assert_eq!(uri_path("ok/a-b_c.~d"), "ok/a-b_c.~d");
        assert_eq!(uri_path("é.sh"), "%C3%A9.sh");
    }
}
