//! `specsmith-rs validate`: each governance check, exit codes, scope and formats.

use predicates::prelude::*;
use predicates::str::diff;
use serde_json::Value;

use crate::fixture::Project;

/// The summary lines of the two loop checks for `scripts` checked files.
fn loop_lines(scripts: usize) -> String {
    format!(
        "  ✓ {scripts} script file(s) checked — no unbounded loops found\n\
         \x20 ✓ {scripts} script file(s) checked — no bare sleep delays found\n"
    )
}

const NO_DOCUMENTS: &str = concat!(
    "  ✓ No scaffold config found (project may not have been created by specsmith)\n",
    "  ✓ No AGENTS.md found (no references to check)\n",
    "  ✓ No docs/REQUIREMENTS.md found (no requirement IDs to check)\n",
    "  ✓ No docs/REQUIREMENTS.md found (architecture linkage not checked)\n",
);

#[test]
fn an_empty_project_passes_every_check() {
    let project = Project::new();
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(diff(format!(
            "{NO_DOCUMENTS}{}\nValid. 6 checks passed.\n",
            loop_lines(0)
        )))
        .stderr("");
}

#[test]
fn project_dir_may_follow_the_subcommand() {
    let project = Project::new();
    project.write("AGENTS.md", "[gone](gone.md)\n");
    project
        .bare_cmd()
        .current_dir(std::env::temp_dir())
        .args(["validate", "--project-dir"])
        .arg(project.root())
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "  ✗ AGENTS.md references gone.md but file does not exist\n",
        ));
}

#[test]
fn scaffold_with_name_and_type_passes() {
    let project = Project::new();
    project.write("scaffold.yml", "name: demo\ntype: cli-python\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(
            "  ✓ scaffold.yml valid: project=demo, type=cli-python\n",
        ));
}

#[test]
fn scaffold_without_type_fails() {
    let project = Project::new();
    project.write("scaffold.yml", "name: demo\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "  ✗ scaffold.yml missing required fields: type\n",
        ))
        .stdout(predicate::str::ends_with(
            "\n1 issue(s) found. 5 checks passed.\n",
        ));
}

#[test]
fn scaffold_that_is_not_a_mapping_or_not_yaml_fails() {
    let project = Project::new();
    project.write("scaffold.yml", "- name\n- type\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "  ✗ scaffold.yml is not a valid YAML mapping\n",
        ));
    project.write("scaffold.yml", "name: [demo\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("  ✗ scaffold.yml parse error: "));
}

#[test]
fn agents_links_resolve_or_fail_one_by_one() {
    let project = Project::new();
    project.write(
        "AGENTS.md",
        "# Agents\nRead [rules](docs/RULES.md#h11), [site](https://example.invalid),\n\
         [mail](mailto:team@example.invalid), [here](#agents), [a](docs/A.md), [b](docs/B.md).\n",
    );
    project.write("docs/RULES.md", "");
    project
        .cmd(&["validate"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "  ✗ AGENTS.md references docs/A.md but file does not exist\n\
             \x20 ✗ AGENTS.md references docs/B.md but file does not exist\n",
        ))
        .stdout(predicate::str::ends_with(
            "\n2 issue(s) found. 5 checks passed.\n",
        ));
    project.write("docs/A.md", "");
    project.write("docs/B.md", "");
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "  ✓ All AGENTS.md local references resolve (3 checked)\n",
        ));
}

#[test]
fn duplicate_requirement_ids_fail_with_counts() {
    let project = Project::new();
    project.write(
        "docs/REQUIREMENTS.md",
        "## REQ-API-1\n- **ID:** REQ-API-1\n## REQ-API-1\n- **ID:** REQ-API-1\n\
         ## REQ-API-2\n- **ID:** REQ-API-2\n",
    );
    project
        .cmd(&["validate"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "  ✗ Duplicate requirement IDs: REQ-API-1(×2)\n",
        ));
    project.write(
        "docs/REQUIREMENTS.md",
        "## REQ-API-1\n- **ID:** REQ-API-1\n## REQ-API-2\n- **ID:** REQ-API-2\n",
    );
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "  ✓ 2 unique requirement IDs found\n",
        ));
}

#[test]
fn architecture_must_reference_an_accepted_requirement() {
    let project = Project::new();
    project.write(
        "docs/REQUIREMENTS.md",
        "- **ID:** REQ-API-1\n- **Status**: Accepted\n",
    );
    project.write("docs/architecture.md", "# Architecture\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "  ✗ architecture.md references no REQ IDs, but REQUIREMENTS.md has 1\n",
        ));
    project.write(
        "docs/architecture.md",
        "# Architecture\nServes REQ-API-1.\n",
    );
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "  ✓ architecture.md references 1 REQ IDs\n",
        ));
}

#[test]
fn all_draft_requirements_need_no_architecture_link() {
    let project = Project::new();
    project.write(
        "docs/REQUIREMENTS.md",
        "- **ID:** REQ-API-1\n- **Status**: Draft\n",
    );
    project.write("ARCHITECTURE.md", "# Architecture\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "  ✓ REQs are all Draft — architecture linkage not yet required (1 REQs)\n",
        ));
}

#[test]
fn scripts_of_every_language_are_counted_and_others_are_not() {
    let project = Project::new();
    project.write("a.sh", "for i in 1 2; do :; done\n");
    project.write("b.bash", "echo\n");
    project.write("c.ps1", "Write-Host\n");
    project.write("d.psm1", "Write-Host\n");
    project.write("e.cmd", "@echo off\r\n");
    project.write("f.BAT", "@echo off\r\n");
    project.write("bin/g", "#!/usr/bin/env bash\necho\n");
    project.write("tools/scripts/h.py", "print()\n");
    project.write("app/i.py", "while True: pass\n");
    project.write("bin/j", "#!/usr/bin/env python3\n");
    project.write("README.md", "while true\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(loop_lines(8)));
}

#[test]
fn gitignore_is_honoured_without_git_and_hidden_automation_is_checked() {
    let project = Project::new();
    project.write(".gitignore", "build/\n*.gen.sh\n");
    project.write("build/a.sh", "echo\n");
    project.write("b.gen.sh", "echo\n");
    project.write(".git/hooks/pre-push.sh", "while true; do :; done\n");
    project.write(".hidden/c.sh", "echo\n");
    project.write("d.sh", "echo\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(loop_lines(2)));
    project.write(".github/scripts/wait.sh", "while true; do :; done\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(".github/scripts/wait.sh:1:1: H11"));
}

#[test]
fn excludes_repeat_and_leave_files_out() {
    let project = Project::new();
    project.write("vendor/a.sh", "echo\n");
    project.write("gen/b.sh", "echo\n");
    project.write("c.sh", "echo\n");
    project.write("vendor/blob.sh", "\0\0\0");
    project
        .cmd(&["validate", "--exclude", "vendor", "--exclude", "gen/*.sh"])
        .assert()
        .code(0)
        .stdout(diff(format!(
            "{NO_DOCUMENTS}{}\nValid. 6 checks passed.\n",
            loop_lines(1)
        )));
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_root_are_not_followed() {
    let project = Project::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("far.sh"), "echo\n").unwrap();
    std::fs::write(outside.path().join("blob.sh"), "\0").unwrap();
    std::os::unix::fs::symlink(outside.path(), project.root().join("linked")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("far.sh"), project.root().join("far.sh"))
        .unwrap();
    project
        .cmd(&["validate"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(loop_lines(0)))
        .stdout(predicate::str::contains("blob").not());
}

#[test]
fn binary_files_are_notes_but_oversized_and_non_utf8_scripts_never_pass() {
    let project = Project::new();
    project.write("ok.sh", "echo\n");
    std::fs::write(project.root().join("blob.sh"), b"while \0 true").unwrap();
    std::fs::write(
        project.root().join("latin1.ps1"),
        b"# caf\xE9\nwhile ($true) {}",
    )
    .unwrap();
    project.write("huge.cmd", &"rem padding\r\n".repeat(100_000));
    let output = project.cmd(&["validate"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().take(3).collect();
    assert!(
        lines[0].starts_with(
            "huge.cmd:1:1: H11 not scanned: this batch script is larger than 1048576 bytes"
        ),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("latin1.ps1:2:1: H11 `while ($true)` loop never ends by itself"),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        "note: blob.sh: skipped: binary file (a NUL byte in its first KiB)"
    );
    assert!(stdout.contains("2 H11 finding(s) in 3 script file(s) checked"));
}

#[test]
fn an_unreadable_file_is_reported_and_the_run_ends_with_2() {
    let project = Project::new();
    // A folder where the scaffold file should be cannot be read as a file,
    // even by root.
    std::fs::create_dir_all(project.root().join("scaffold.yml")).unwrap();
    project.write("AGENTS.md", "[gone](gone.md)\n");
    project
        .cmd(&["validate"])
        .assert()
        .code(2)
        .stdout(predicate::str::starts_with(
            "error: scaffold.yml: cannot read: ",
        ))
        .stdout(predicate::str::contains(
            "  ✗ AGENTS.md references gone.md but file does not exist\n",
        ))
        .stdout(predicate::str::ends_with(
            "Incomplete: 1 file(s) could not be read.\n",
        ));
}

#[test]
fn json_is_a_superset_of_python_specsmith() {
    let project = Project::new();
    project.write("docs/REQUIREMENTS.md", "REQ-A-1\nREQ-A-1\n");
    project.write("s.sh", "echo\n");
    std::fs::write(project.root().join("b.sh"), b"\0").unwrap();
    let output = project
        .cmd(&["validate", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["std_passed"], 5);
    assert_eq!(json["std_failed"], 1);
    assert_eq!(json["complete"], true);
    assert_eq!(json["std_results"].as_array().unwrap().len(), 6);
    assert_eq!(
        json["std_results"][2],
        serde_json::json!({
            "name": "req-unique",
            "passed": false,
            "message": "Duplicate requirement IDs: REQ-A-1(×2)"
        })
    );
    assert_eq!(json["findings"], serde_json::json!([]));
    assert_eq!(
        json["notes"],
        serde_json::json!([{
            "path": "b.sh",
            "kind": "binary",
            "message": "skipped: binary file (a NUL byte in its first KiB)"
        }])
    );
}

#[test]
fn sarif_is_valid_2_1_0() {
    let project = Project::new();
    let output = project
        .cmd(&["validate", "--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let sarif: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].is_string());
    let driver = &sarif["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "specsmith-rs");
    let ids: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["H11", "H23"]);
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn github_annotates_failed_checks_on_their_files() {
    let project = Project::new();
    project.write("scaffold.yml", "name: x\n");
    project
        .cmd(&["validate", "--format", "github"])
        .assert()
        .code(1)
        .stdout(diff(
            "::error file=scaffold.yml,title=scaffold-yml::scaffold.yml missing required fields: type\n",
        ));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let project = Project::new();
    project
        .cmd(&["validate", "--format", "xml"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "error: invalid value 'xml' for '--format <FORMAT>'",
        ));
    project
        .cmd(&["validate", "--exclude", "a["])
        .assert()
        .code(2)
        .stdout("")
        .stderr(diff(
            "error: invalid --exclude glob `a[`: unclosed character class; missing ']'\n",
        ));
    project
        .bare_cmd()
        .args(["validate", "--project-dir", "missing-folder"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "error: --project-dir `missing-folder`: ",
        ));
}

#[test]
fn a_project_dir_that_is_a_file_is_a_usage_error() {
    let project = Project::new();
    let file = project.write("notes.txt", "x");
    let output = project
        .bare_cmd()
        .arg("validate")
        .arg("--project-dir")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        project.redact(&String::from_utf8(output.stderr).unwrap()),
        "error: --project-dir `[ROOT]/notes.txt` is not a directory\n"
    );
}

#[test]
fn validate_reads_but_never_writes() {
    let project = Project::new();
    project.write("scaffold.yml", "name: demo\n");
    project.cmd(&["validate"]).assert().code(1);
    assert_eq!(project.read("scaffold.yml"), "name: demo\n");
    assert!(!project.exists(".specsmith"));
    let entries = std::fs::read_dir(project.root()).unwrap().count();
    assert_eq!(entries, 1);
}

#[test]
fn a_helper_in_a_sourced_file_that_always_exits_ends_an_option_loop() {
    let project = Project::new();
    project.write(
        "scripts/lib/common.sh",
        "bad_arg() {\n  printf 'unknown option: %s\\n' \"$1\" >&2\n  exit 2\n}\n",
    );
    let option_loop =
        "while :; do\n  case $1 in\n    -a) shift ;;\n    *) bad_arg \"$1\" ;;\n  esac\ndone\n";
    // Beside the script, and from the project root, the helper is found.
    project.write(
        "scripts/parse.sh",
        &format!(". ./lib/common.sh\n{option_loop}"),
    );
    project.write(
        "scripts/parse-from-root.sh",
        &format!("source scripts/lib/common.sh\n{option_loop}"),
    );
    // A path that leaves the project, or one that is not literal, is never read.
    let outside = project.root().parent().unwrap().join("common.sh");
    std::fs::copy(project.root().join("scripts/lib/common.sh"), &outside).unwrap();
    project.write(
        "scripts/escape.sh",
        &format!(". ../../common.sh\n{option_loop}"),
    );
    project.write(
        "scripts/dynamic.sh",
        &format!(". \"$LIB\"/common.sh\n{option_loop}"),
    );
    let output = project
        .cmd(&["validate", "--format", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let flagged: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| format!("{}:{}", finding["path"].as_str().unwrap(), finding["line"]))
        .collect();
    assert_eq!(flagged, ["scripts/dynamic.sh:2", "scripts/escape.sh:2"]);
}

#[test]
fn a_message_helper_in_a_dot_sourced_powershell_file_reports_the_give_up() {
    let project = Project::new();
    project.write(
        "eng/common/logging.ps1",
        "function Tell-Failure($text) {\n    Write-Host \"FAILED: $text\"\n}\n",
    );
    let retry = "for ($try = 1; $try -le 5; $try++) {\n    if (Test-Connection $server -Count 1 -Quiet) { break }\n    if ($try -eq 5) { Tell-Failure \"$server unreachable\"; break }\n    Start-Sleep -Seconds 2\n}\n";
    // Found beside the script through $PSScriptRoot, with `..` and either separator.
    project.write(
        "eng/scripts/ping.ps1",
        &format!(". \"$PSScriptRoot\\..\\common\\logging.ps1\"\n{retry}"),
    );
    project.write(
        "eng/scripts/ping-joined.ps1",
        &format!(". (Join-Path $PSScriptRoot '../common/logging.ps1')\n{retry}"),
    );
    // A path from another variable is not read: the give-up looks silent.
    project.write(
        "eng/scripts/ping-dynamic.ps1",
        &format!(". \"$commonDir/logging.ps1\"\n{retry}"),
    );
    let output = project
        .cmd(&["validate", "--format", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let flagged: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            format!(
                "{}:{}:{}",
                finding["path"].as_str().unwrap(),
                finding["line"],
                finding["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(flagged, ["eng/scripts/ping-dynamic.ps1:2:silent-fallback"]);
}
