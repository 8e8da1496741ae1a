//! The anchor's four governance checks on the project's documents: scaffold
//! config, AGENTS.md links, unique requirement IDs, architecture ↔ requirement
//! linkage. Result names and messages follow Python specsmith's `validate`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::{CheckResult, Note, NoteKind};

/// The scaffold config, relative to the project root.
pub const SCAFFOLD_FILE: &str = "scaffold.yml";
/// The agent instructions whose links must resolve.
pub const AGENTS_FILE: &str = "AGENTS.md";
/// The requirements document.
pub const REQUIREMENTS_FILE: &str = "docs/REQUIREMENTS.md";
/// Where the architecture document may live, in order of preference.
pub const ARCHITECTURE_FILES: &[&str] = &[
    "docs/ARCHITECTURE.md",
    "docs/architecture.md",
    "ARCHITECTURE.md",
];

/// A requirement ID anywhere in a document: `REQ-API-12`.
static REQUIREMENT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(REQ-[A-Z]+-\d+)\b").expect("valid regex"));
/// The canonical declaration of a requirement: `**ID:** REQ-API-12`.
static ID_FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\*\*ID:\*\*\s*(REQ-(?:[A-Z]+-)*\d+)").expect("valid regex"));
/// A requirement's status: `**Status**: Draft` or `**Status:** Accepted`.
static STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\*\*Status(?:\*\*:|:\*\*)[ \t]*([A-Za-z]+)").expect("valid regex")
});
/// An inline markdown link or image: `[text](target)`.
static LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[^\]\n]*\]\(([^)\n]*)\)").expect("valid regex"));
/// A URL scheme (`https:`, `mailto:`): the link leaves the project.
static SCHEME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]+:").expect("valid regex"));

/// Runs the four document checks on the project at `root`. A document that
/// exists but cannot be read fails its check and adds an unreadable note.
pub(crate) fn check(root: &Path, notes: &mut Vec<Note>) -> Vec<CheckResult> {
    let mut results = Vec::new();
    results.push(check_scaffold(root, notes));
    results.extend(check_agents_links(root, notes));
    let requirements = read_document(root, REQUIREMENTS_FILE, notes);
    results.push(check_unique_requirement_ids(&requirements));
    results.push(check_architecture_links(root, &requirements, notes));
    results
}

/// A governance document: absent, present but unreadable, or its text.
enum Document {
    Missing,
    Unreadable(io::Error),
    Text(String),
}

fn read_document(root: &Path, relative: &str, notes: &mut Vec<Note>) -> Document {
    match std::fs::read(root.join(relative)) {
        // Markdown and YAML with a stray invalid byte are still worth checking.
        Ok(bytes) => Document::Text(String::from_utf8_lossy(&bytes).into_owned()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Document::Missing,
        Err(error) => {
            notes.push(Note {
                path: relative.to_owned(),
                kind: NoteKind::Unreadable,
                message: format!("cannot read: {error}"),
            });
            Document::Unreadable(error)
        }
    }
}

fn result(name: impl Into<String>, passed: bool, message: impl Into<String>) -> CheckResult {
    CheckResult {
        name: name.into(),
        passed,
        message: message.into(),
        file: None,
    }
}

fn in_file(mut check: CheckResult, file: &str) -> CheckResult {
    check.file = Some(file.to_owned());
    check
}

/// Check 1: `scaffold.yml`, when present, is a YAML mapping with `name` and `type`.
fn check_scaffold(root: &Path, notes: &mut Vec<Note>) -> CheckResult {
    const NAME: &str = "scaffold-yml";
    let text = match read_document(root, SCAFFOLD_FILE, notes) {
        Document::Missing => {
            return result(
                NAME,
                true,
                "No scaffold config found (project may not have been created by specsmith)",
            )
        }
        Document::Unreadable(error) => {
            return in_file(
                result(
                    NAME,
                    false,
                    format!("{SCAFFOLD_FILE} cannot be read: {error}"),
                ),
                SCAFFOLD_FILE,
            )
        }
        Document::Text(text) => text,
    };
    let outcome = match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
        Err(error) => result(NAME, false, format!("{SCAFFOLD_FILE} parse error: {error}")),
        Ok(serde_yaml_ng::Value::Mapping(mapping)) => {
            let field = |key: &str| mapping.get(key).filter(|value| !value.is_null());
            let missing: Vec<&str> = ["name", "type"]
                .into_iter()
                .filter(|key| field(key).is_none())
                .collect();
            match (field("name"), field("type")) {
                (Some(name), Some(kind)) => result(
                    NAME,
                    true,
                    format!(
                        "{SCAFFOLD_FILE} valid: project={}, type={}",
                        scalar_text(name),
                        scalar_text(kind)
                    ),
                ),
                _ => result(
                    NAME,
                    false,
                    format!(
                        "{SCAFFOLD_FILE} missing required fields: {}",
                        missing.join(", ")
                    ),
                ),
            }
        }
        Ok(_) => result(
            NAME,
            false,
            format!("{SCAFFOLD_FILE} is not a valid YAML mapping"),
        ),
    };
    in_file(outcome, SCAFFOLD_FILE)
}

/// A YAML value as one line of text for a message.
fn scalar_text(value: &serde_yaml_ng::Value) -> String {
    match value {
        serde_yaml_ng::Value::String(text) => text.clone(),
        other => serde_yaml_ng::to_string(other)
            .map(|text| text.trim_end().replace('\n', " "))
            .unwrap_or_default(),
    }
}

/// Check 2: every local link in `AGENTS.md` points at a file or folder that exists.
/// Links to anchors and URLs (`https:`, `mailto:`) are not checked, nor are
/// links inside fenced code blocks.
fn check_agents_links(root: &Path, notes: &mut Vec<Note>) -> Vec<CheckResult> {
    let text = match read_document(root, AGENTS_FILE, notes) {
        Document::Missing => {
            return vec![result(
                "agents-refs",
                true,
                "No AGENTS.md found (no references to check)",
            )]
        }
        Document::Unreadable(error) => {
            return vec![in_file(
                result(
                    "agents-refs",
                    false,
                    format!("{AGENTS_FILE} cannot be read: {error}"),
                ),
                AGENTS_FILE,
            )]
        }
        Document::Text(text) => text,
    };
    let mut missing = BTreeSet::new();
    let mut checked = 0;
    for target in local_link_targets(&text) {
        checked += 1;
        let relative = target.trim_start_matches('/');
        // AGENTS.md lives at the root, so its links are relative to the root.
        if !root.join(relative).exists() {
            missing.insert(target);
        }
    }
    if missing.is_empty() {
        return vec![result(
            "agents-refs",
            true,
            format!("All AGENTS.md local references resolve ({checked} checked)"),
        )];
    }
    missing
        .into_iter()
        .map(|target| {
            in_file(
                result(
                    format!("agents-ref:{target}"),
                    false,
                    format!("AGENTS.md references {target} but file does not exist"),
                ),
                AGENTS_FILE,
            )
        })
        .collect()
}

/// The local targets of the markdown links in `text`, without `#fragment` or
/// `?query`, outside fenced code blocks.
pub(crate) fn local_link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
                continue;
            }
            None if trimmed.starts_with("```") => {
                fence = Some("```");
                continue;
            }
            None if trimmed.starts_with("~~~") => {
                fence = Some("~~~");
                continue;
            }
            None => {}
        }
        for capture in LINK.captures_iter(line) {
            let raw = capture[1].trim();
            // `[a](<path with spaces> "title")` and `[a](path "title")`.
            let target = match raw.strip_prefix('<') {
                Some(rest) => rest.split('>').next().unwrap_or_default(),
                None => raw.split_whitespace().next().unwrap_or_default(),
            };
            if SCHEME.is_match(target) {
                continue;
            }
            let target = target.split(['#', '?']).next().unwrap_or_default().trim();
            if !target.is_empty() {
                targets.push(percent_decode(target));
            }
        }
    }
    targets
}

/// `%20` and friends, as markdown renderers resolve them; anything malformed stays as written.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).unwrap_or_else(|_| text.to_owned())
}

/// The requirement IDs a document declares: its `**ID:**` fields when it has
/// any (headings repeat them), else every `REQ-XXX-N` in it.
pub(crate) fn declared_requirement_ids(text: &str) -> Vec<&str> {
    let fields: Vec<&str> = ID_FIELD
        .captures_iter(text)
        .filter_map(|capture| capture.get(1).map(|id| id.as_str()))
        .collect();
    if !fields.is_empty() {
        return fields;
    }
    REQUIREMENT_ID
        .find_iter(text)
        .map(|found| found.as_str())
        .collect()
}

/// Check 3: requirement IDs in `docs/REQUIREMENTS.md` are unique.
fn check_unique_requirement_ids(requirements: &Document) -> CheckResult {
    const NAME: &str = "req-unique";
    let text = match requirements {
        Document::Missing => {
            return result(
                NAME,
                true,
                "No docs/REQUIREMENTS.md found (no requirement IDs to check)",
            )
        }
        Document::Unreadable(error) => {
            return in_file(
                result(
                    NAME,
                    false,
                    format!("{REQUIREMENTS_FILE} cannot be read: {error}"),
                ),
                REQUIREMENTS_FILE,
            )
        }
        Document::Text(text) => text,
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in declared_requirement_ids(text) {
        *counts.entry(id).or_default() += 1;
    }
    let duplicates: Vec<String> = counts
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, count)| format!("{id}(×{count})"))
        .collect();
    if duplicates.is_empty() {
        result(
            NAME,
            true,
            format!("{} unique requirement IDs found", counts.len()),
        )
    } else {
        in_file(
            result(
                NAME,
                false,
                format!("Duplicate requirement IDs: {}", duplicates.join(", ")),
            ),
            REQUIREMENTS_FILE,
        )
    }
}

/// Check 4: the architecture document names at least one requirement ID when the
/// requirements have any, unless every requirement is still Draft.
fn check_architecture_links(
    root: &Path,
    requirements: &Document,
    notes: &mut Vec<Note>,
) -> CheckResult {
    const NAME: &str = "arch-req-refs";
    let requirements_text = match requirements {
        Document::Missing => {
            return result(
                NAME,
                true,
                "No docs/REQUIREMENTS.md found (architecture linkage not checked)",
            )
        }
        Document::Unreadable(_) => {
            return result(
                NAME,
                false,
                format!("{REQUIREMENTS_FILE} cannot be read (architecture linkage not checked)"),
            )
        }
        Document::Text(text) => text,
    };
    let found =
        ARCHITECTURE_FILES
            .iter()
            .find_map(|relative| match read_document(root, relative, notes) {
                Document::Missing => None,
                Document::Unreadable(error) => Some((*relative, Err(error))),
                Document::Text(text) => Some((*relative, Ok(text))),
            });
    let Some((architecture_file, document)) = found else {
        return result(
            NAME,
            true,
            "No architecture document found (architecture linkage not checked)",
        );
    };
    let architecture_name = architecture_file.rsplit('/').next().unwrap_or_default();
    let architecture_text = match document {
        Ok(text) => text,
        Err(error) => {
            return in_file(
                result(
                    NAME,
                    false,
                    format!("{architecture_file} cannot be read: {error}"),
                ),
                architecture_file,
            )
        }
    };
    let requirement_ids: BTreeSet<&str> = REQUIREMENT_ID
        .find_iter(requirements_text)
        .map(|found| found.as_str())
        .collect();
    let references: BTreeSet<&str> = REQUIREMENT_ID
        .find_iter(&architecture_text)
        .map(|found| found.as_str())
        .collect();
    if requirement_ids.is_empty() {
        return result(
            NAME,
            true,
            "REQUIREMENTS.md has no REQ IDs (architecture linkage not required)",
        );
    }
    if !references.is_empty() {
        return result(
            NAME,
            true,
            format!(
                "{architecture_name} references {} REQ IDs",
                references.len()
            ),
        );
    }
    if all_draft(requirements_text) {
        return result(
            NAME,
            true,
            format!(
                "REQs are all Draft \u{2014} architecture linkage not yet required ({} REQs)",
                requirement_ids.len()
            ),
        );
    }
    in_file(
        result(
            NAME,
            false,
            format!(
                "{architecture_name} references no REQ IDs, but REQUIREMENTS.md has {}",
                requirement_ids.len()
            ),
        ),
        architecture_file,
    )
}

/// True when the document has at least one `**Status**` and every one is Draft.
pub(crate) fn all_draft(requirements: &str) -> bool {
    let mut statuses = STATUS
        .captures_iter(requirements)
        .filter_map(|capture| capture.get(1))
        .map(|status| status.as_str())
        .peekable();
    statuses.peek().is_some()
        && statuses.all(|status| status.starts_with("Draft") || status.starts_with("draft"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (relative, text) in files {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn run(files: &[(&str, &str)]) -> Vec<CheckResult> {
        let dir = project(files);
        let mut notes = Vec::new();
        let results = check(dir.path(), &mut notes);
        assert!(notes.is_empty(), "{notes:?}");
        results
    }

    fn named<'a>(results: &'a [CheckResult], name: &str) -> &'a CheckResult {
        results
            .iter()
            .find(|result| result.name == name)
            .unwrap_or_else(|| panic!("no result {name} in {results:?}"))
    }

    #[test]
    fn an_empty_project_passes_every_check() {
        let results = run(&[]);
        assert_eq!(
            results.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["scaffold-yml", "agents-refs", "req-unique", "arch-req-refs"]
        );
        assert!(results.iter().all(|result| result.passed));
    }

    #[test]
    fn scaffold_needs_a_mapping_with_name_and_type() {
        let good = run(&[("scaffold.yml", "name: demo\ntype: cli-python\n")]);
        let good = named(&good, "scaffold-yml");
        assert!(good.passed);
        assert_eq!(
            good.message,
            "scaffold.yml valid: project=demo, type=cli-python"
        );

        let missing = run(&[("scaffold.yml", "name: demo\n")]);
        let missing = named(&missing, "scaffold-yml");
        assert!(!missing.passed);
        assert_eq!(
            missing.message,
            "scaffold.yml missing required fields: type"
        );
        assert_eq!(missing.file.as_deref(), Some("scaffold.yml"));

        for text in ["- a\n- b\n", "", "just text\n"] {
            let results = run(&[("scaffold.yml", text)]);
            let list = named(&results, "scaffold-yml");
            assert!(!list.passed, "{text:?}");
            assert_eq!(list.message, "scaffold.yml is not a valid YAML mapping");
        }

        let broken = run(&[("scaffold.yml", "name: [unclosed\n")]);
        let broken = named(&broken, "scaffold-yml");
        assert!(!broken.passed);
        assert!(
            broken.message.starts_with("scaffold.yml parse error: "),
            "{}",
            broken.message
        );
    }

    #[test]
    fn agents_links_must_resolve() {
        let results = run(&[
            (
                "AGENTS.md",
                "See [rules](docs/RULES.md#h11), [site](https://example.invalid/x), \
                 [mail](mailto:a@b.c), [top](#top), [gone](docs/GONE.md) and [gone again](docs/GONE.md#x).\n\
                 ```\n[in code](not/checked.md)\n```\n",
            ),
            ("docs/RULES.md", "rules"),
        ]);
        assert_eq!(
            results
                .iter()
                .filter(|r| r.name.starts_with("agents-ref"))
                .count(),
            1
        );
        let gone = named(&results, "agents-ref:docs/GONE.md");
        assert!(!gone.passed);
        assert_eq!(
            gone.message,
            "AGENTS.md references docs/GONE.md but file does not exist"
        );
    }

    #[test]
    fn agents_links_that_resolve_pass() {
        let results = run(&[
            (
                "AGENTS.md",
                "[a](docs/A.md) [b](<docs/B C.md> \"title\") [c](docs/B%20C.md)\n",
            ),
            ("docs/A.md", ""),
            ("docs/B C.md", ""),
        ]);
        let passed = named(&results, "agents-refs");
        assert!(passed.passed);
        assert_eq!(
            passed.message,
            "All AGENTS.md local references resolve (3 checked)"
        );
    }

    #[test]
    fn link_targets_drop_fragments_queries_and_titles() {
        assert_eq!(
            local_link_targets("[a](x.md#y) [b](y.md?z) [c](/z.md \"t\") ![i](img.png)"),
            ["x.md", "y.md", "/z.md", "img.png"]
        );
        assert!(local_link_targets("[a](http://x) [b](HTTPS://y) [c](#only)").is_empty());
    }

    #[test]
    fn requirement_ids_must_be_unique_with_counts_listed() {
        let text = "## REQ-API-1\n**ID:** REQ-API-1\n## REQ-API-2\n**ID:** REQ-API-2\n\
                    ## REQ-API-2\n**ID:** REQ-API-2\n**ID:** REQ-API-2\n**ID:** REQ-CLI-3\n**ID:** REQ-CLI-3\n";
        let results = run(&[("docs/REQUIREMENTS.md", text)]);
        let unique = named(&results, "req-unique");
        assert!(!unique.passed);
        assert_eq!(
            unique.message,
            "Duplicate requirement IDs: REQ-API-2(×3), REQ-CLI-3(×2)"
        );
    }

    #[test]
    fn id_fields_win_over_headings() {
        let text =
            "## REQ-API-1 Login\n- **ID:** REQ-API-1\n## REQ-API-2 Logout\n- **ID:** REQ-API-2\n";
        let results = run(&[("docs/REQUIREMENTS.md", text)]);
        let unique = named(&results, "req-unique");
        assert!(unique.passed);
        assert_eq!(unique.message, "2 unique requirement IDs found");
    }

    #[test]
    fn without_id_fields_every_id_counts() {
        let results = run(&[(
            "docs/REQUIREMENTS.md",
            "REQ-A-1 text\nREQ-A-1 again\nREQ-B-2\n",
        )]);
        let unique = named(&results, "req-unique");
        assert!(!unique.passed);
        assert_eq!(unique.message, "Duplicate requirement IDs: REQ-A-1(×2)");
    }

    #[test]
    fn architecture_must_reference_a_requirement() {
        let requirements =
            "**ID:** REQ-A-1\n**Status**: Accepted\n**ID:** REQ-A-2\n**Status**: Draft\n";
        let failing = run(&[
            ("docs/REQUIREMENTS.md", requirements),
            ("docs/architecture.md", "# Architecture\nNo links here.\n"),
        ]);
        let failing = named(&failing, "arch-req-refs");
        assert!(!failing.passed);
        assert_eq!(
            failing.message,
            "architecture.md references no REQ IDs, but REQUIREMENTS.md has 2"
        );

        let passing = run(&[
            ("docs/REQUIREMENTS.md", requirements),
            ("ARCHITECTURE.md", "Implements REQ-A-1.\n"),
        ]);
        let passing = named(&passing, "arch-req-refs");
        assert!(passing.passed);
        assert_eq!(passing.message, "ARCHITECTURE.md references 1 REQ IDs");
    }

    #[test]
    fn all_draft_requirements_need_no_linkage() {
        let requirements =
            "**ID:** REQ-A-1\n**Status**: Draft\n**ID:** REQ-A-2\n**Status:** draft\n";
        let results = run(&[
            ("docs/REQUIREMENTS.md", requirements),
            ("docs/ARCHITECTURE.md", "Nothing yet.\n"),
        ]);
        let check = named(&results, "arch-req-refs");
        assert!(check.passed);
        assert_eq!(
            check.message,
            "REQs are all Draft \u{2014} architecture linkage not yet required (2 REQs)"
        );
        assert!(all_draft("**Status**: Draft"));
        assert!(!all_draft("**Status**: Draft\n**Status**: Accepted"));
        assert!(!all_draft("no status at all"));
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_document_fails_its_check_and_leaves_a_note() {
        // A folder where a file should be cannot be read as a file, even as root.
        let dir = project(&[("scaffold.yml/inner", "")]);
        let mut notes = Vec::new();
        let results = check(dir.path(), &mut notes);
        let scaffold = named(&results, "scaffold-yml");
        assert!(!scaffold.passed);
        assert!(scaffold
            .message
            .starts_with("scaffold.yml cannot be read: "));
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].path, "scaffold.yml");
        assert_eq!(notes[0].kind, NoteKind::Unreadable);
    }
}
