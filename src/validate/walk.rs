//! The project walk: find the scripts, read each once, scan the ones that may
//! hold a loop or a sleep.
//!
//! The walk honours `.gitignore`, `.ignore` and `.git/info/exclude` as ripgrep
//! does (also outside a git repository), never follows a symbolic link, and
//! runs on every core. Hidden files and folders are walked: automation lives
//! in `.github/`, `.ci/` and `.husky/`; only version-control metadata
//! (`.git`, `.hg`, `.svn`, `.jj`) is left out.

use std::io::{self, Read};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ignore::overrides::OverrideBuilder;
use ignore::{WalkBuilder, WalkState};

use super::diagnostic::{Finding, FindingKind, Rule};
use super::error::ValidateError;
use super::loops::{self, prefilter, Language};
use super::suppression::Suppressions;
use super::{Note, NoteKind};

/// Bytes read before deciding whether an extensionless file is a shell script.
const SHEBANG_HEAD_BYTES: u64 = 256;

/// What a walk over the project tree found.
#[derive(Debug, Default)]
pub(crate) struct TreeScan {
    /// Findings from every script, unsorted.
    pub findings: Vec<Finding>,
    /// Files skipped or unreadable, unsorted.
    pub notes: Vec<Note>,
    /// Scripts recognised and read (whether or not they needed a full scan).
    pub scripts_checked: usize,
}

/// The per-file loop scanner ([`loops::scan_with`] outside tests): the
/// language, the text, and a reader of the files the script sources.
pub(crate) type Scanner =
    fn(Language, &str, &dyn Fn(&str) -> Option<String>) -> Vec<loops::LoopFinding>;

/// Walks `root` and scans every script in it with `scanner`, in parallel.
///
/// `excludes` are gitignore-style globs relative to `root`; a script bigger than
/// `max_file_size` bytes is an `unscanned` finding (fail closed).
pub(crate) fn scan_tree(
    root: &Path,
    excludes: &[String],
    max_file_size: u64,
    scanner: Scanner,
) -> Result<TreeScan, ValidateError> {
    let overrides = exclude_overrides(root, excludes)?;
    let walker = WalkBuilder::new(root)
        .standard_filters(true)
        .hidden(false)
        .require_git(false)
        .follow_links(false)
        .overrides(overrides)
        .filter_entry(|entry| !is_version_control_dir(entry))
        .build_parallel();

    let findings = Mutex::new(Vec::new());
    let notes = Mutex::new(Vec::new());
    let scripts_checked = AtomicUsize::new(0);

    walker.run(|| {
        let findings = &findings;
        let notes = &notes;
        let scripts_checked = &scripts_checked;
        Box::new(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    push(notes, walk_error_note(root, &error));
                    return WalkState::Continue;
                }
            };
            // Symbolic links are never followed: one could lead out of the root,
            // and a link inside the root points at a file the walk sees anyway.
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                return WalkState::Continue;
            }
            let relative = relative_path(root, entry.path());
            match scan_file(root, entry.path(), &relative, max_file_size, scanner) {
                FileOutcome::NotAScript => {}
                FileOutcome::Scanned(file_findings) => {
                    scripts_checked.fetch_add(1, Ordering::Relaxed);
                    if !file_findings.is_empty() {
                        lock(findings).extend(file_findings);
                    }
                }
                FileOutcome::Skipped(note) => push(notes, note),
            }
            WalkState::Continue
        })
    });

    Ok(TreeScan {
        findings: findings
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner()),
        notes: notes
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner()),
        scripts_checked: scripts_checked.into_inner(),
    })
}

/// A panicking worker cannot leave the lists half-updated (each push is one
/// call), so a poisoned lock still guards consistent data.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn push(notes: &Mutex<Vec<Note>>, note: Note) {
    lock(notes).push(note);
}

/// `--exclude GLOB` as ignore overrides: each glob prefixed with `!` ignores
/// what it matches and leaves everything else to the other filters.
fn exclude_overrides(
    root: &Path,
    excludes: &[String],
) -> Result<ignore::overrides::Override, ValidateError> {
    let mut builder = OverrideBuilder::new(root);
    for glob in excludes {
        let invalid = |reason: String| ValidateError::Exclude {
            glob: glob.clone(),
            reason,
        };
        if glob.trim().is_empty() {
            return Err(invalid("the glob is empty".to_owned()));
        }
        builder
            .add(&format!("!{glob}"))
            .map_err(|error| invalid(glob_error_reason(&error)))?;
    }
    builder.build().map_err(|error| ValidateError::Exclude {
        glob: excludes.join(" "),
        reason: glob_error_reason(&error),
    })
}

/// Version-control metadata: never project automation, often large.
fn is_version_control_dir(entry: &ignore::DirEntry) -> bool {
    entry.file_type().is_some_and(|kind| kind.is_dir())
        && matches!(
            entry.file_name().to_str(),
            Some(".git" | ".hg" | ".svn" | ".jj")
        )
}

/// The reason a glob is invalid, without the `!` we prefixed to it.
fn glob_error_reason(error: &ignore::Error) -> String {
    match error {
        ignore::Error::Glob { err, .. } => err.clone(),
        other => other.to_string(),
    }
}

/// How one file of the tree was handled.
enum FileOutcome {
    /// Not a script in a language we scan.
    NotAScript,
    /// Read and, when it might hold one, scanned.
    Scanned(Vec<Finding>),
    /// A script we could not scan.
    Skipped(Note),
}

/// Reads the file once and scans it when it is a script that may hold a finding.
fn scan_file(
    root: &Path,
    path: &Path,
    relative: &str,
    max_file_size: u64,
    scanner: Scanner,
) -> FileOutcome {
    let by_name = language_from_name(Path::new(relative));
    if by_name == NameMatch::No {
        return FileOutcome::NotAScript;
    }
    let note = |kind: NoteKind, message: String| {
        FileOutcome::Skipped(Note {
            path: relative.to_owned(),
            kind,
            message,
        })
    };
    let bytes = match read_script(path, by_name, max_file_size) {
        Ok(ReadOutcome::NotAScript) => return FileOutcome::NotAScript,
        Ok(ReadOutcome::TooLarge(language, head)) => {
            return FileOutcome::Scanned(vec![too_large(relative, language, &head, max_file_size)])
        }
        Ok(ReadOutcome::Script(language, bytes)) => (language, bytes),
        Err(error) => return note(NoteKind::Unreadable, format!("cannot read: {error}")),
    };
    let (language, bytes) = bytes;
    let Ok(text) = decode(bytes) else {
        return note(
            NoteKind::Binary,
            "skipped: binary file (a NUL byte in its first KiB)".to_owned(),
        );
    };
    if !prefilter::may_have_findings(language, text.as_bytes()) {
        return FileOutcome::Scanned(Vec::new());
    }
    let text = normalize_line_endings(text);
    let suppressions = Suppressions::new(language, &text);
    let resolve = |sourced: &str| read_sourced(root, path, sourced, max_file_size);
    let findings = scanner(language, &text, &resolve)
        .into_iter()
        .map(|finding| Finding {
            suppressed: suppressions.covers(finding.line, finding.rule),
            rule: finding.rule,
            path: relative.to_owned(),
            line: finding.line,
            column: finding.column,
            kind: finding.kind,
            message: finding.message,
        })
        .collect();
    FileOutcome::Scanned(findings)
}

/// The text of a file a shell or PowerShell script sources by the literal path `sourced`:
/// looked up beside the script, then from the project root (where CI runs
/// scripts from). `None` for anything that leaves the project, is not a
/// regular file, is larger than the size limit or is binary.
fn read_sourced(root: &Path, script: &Path, sourced: &str, max_file_size: u64) -> Option<String> {
    let wanted = Path::new(sourced);
    if sourced.is_empty() || wanted.is_absolute() || sourced.contains(['$', '`', '~']) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let beside_script = script.parent().map(|folder| folder.join(wanted));
    beside_script
        .into_iter()
        .chain(std::iter::once(root.join(wanted)))
        .find_map(|candidate| {
            let candidate = candidate.canonicalize().ok()?;
            if !candidate.starts_with(&root) || !candidate.is_file() {
                return None;
            }
            let mut bytes = Vec::new();
            std::fs::File::open(&candidate)
                .ok()?
                .take(max_file_size + 1)
                .read_to_end(&mut bytes)
                .ok()?;
            if bytes.len() as u64 > max_file_size {
                return None;
            }
            decode(bytes).ok().map(normalize_line_endings)
        })
}

/// A script too large to scan fails closed: an `unscanned` H11 finding at its
/// first line, which an allow comment there can silence like any other.
fn too_large(relative: &str, language: Language, head: &[u8], max_file_size: u64) -> Finding {
    let head = normalize_line_endings(String::from_utf8_lossy(head).into_owned());
    Finding {
        rule: Rule::H11,
        path: relative.to_owned(),
        line: 1,
        column: 1,
        kind: FindingKind::Unscanned,
        message: format!(
            "not scanned: this {} script is larger than {max_file_size} bytes, so its loops \
             were not checked; split it, or leave it out with `--exclude` if it is not automation",
            language_name(language)
        ),
        suppressed: Suppressions::new(language, &head).covers(1, Rule::H11),
    }
}

fn language_name(language: Language) -> &'static str {
    match language {
        Language::Shell => "shell",
        Language::PowerShell => "PowerShell",
        Language::Batch => "batch",
        Language::Python => "Python",
    }
}

/// What a file's name says about its language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameMatch {
    /// The extension (or folder, for Python) decides.
    Language(Language),
    /// No extension: a shell script if its shebang names a shell.
    MaybeShebang,
    /// Not a script we scan.
    No,
}

/// The language of the file at `relative` (relative to the project root) by
/// its name alone. Extensions match in any case (`DEPLOY.CMD`).
pub(crate) fn language_from_name(relative: &Path) -> NameMatch {
    let Some(extension) = relative.extension() else {
        return NameMatch::MaybeShebang;
    };
    let extension = extension.to_string_lossy().to_ascii_lowercase();
    match extension.as_str() {
        "sh" | "bash" => NameMatch::Language(Language::Shell),
        "ps1" | "psm1" => NameMatch::Language(Language::PowerShell),
        "cmd" | "bat" => NameMatch::Language(Language::Batch),
        // Python elsewhere is application code, not automation.
        "py" if under_scripts_folder(relative) => NameMatch::Language(Language::Python),
        _ => NameMatch::No,
    }
}

/// True when a folder on the way to the file is named `scripts`.
fn under_scripts_folder(relative: &Path) -> bool {
    let Some(parent) = relative.parent() else {
        return false;
    };
    parent
        .components()
        .any(|component| matches!(component, Component::Normal(name) if name == "scripts"))
}

/// True when `head` starts with a shebang whose interpreter is a POSIX-family
/// shell: `#!/bin/sh`, `#!/usr/bin/env bash`, `#!/usr/bin/env -S bash -e`,
/// `#!/bin/dash`.
pub(crate) fn has_shell_shebang(head: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(b"#!") else {
        return false;
    };
    let first_line = rest.split(|byte| *byte == b'\n').next().unwrap_or_default();
    let first_line = String::from_utf8_lossy(first_line);
    let mut words = first_line.split_whitespace();
    let Some(mut interpreter) = words.next() else {
        return false;
    };
    if basename(interpreter) == "env" {
        match words.find(|word| !word.starts_with('-') && !word.contains('=')) {
            Some(word) => interpreter = word,
            None => return false,
        }
    }
    matches!(
        basename(interpreter),
        "sh" | "bash" | "dash" | "ash" | "ksh" | "mksh" | "zsh" | "busybox"
    )
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The result of reading a candidate script.
enum ReadOutcome {
    NotAScript,
    /// Bigger than the limit: its language and the bytes read before giving up.
    TooLarge(Language, Vec<u8>),
    Script(Language, Vec<u8>),
}

/// Opens the file once: reads the head, decides (for extensionless files) on
/// the shebang, then reads the rest, never more than `max_file_size + 1` bytes.
fn read_script(path: &Path, by_name: NameMatch, max_file_size: u64) -> io::Result<ReadOutcome> {
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(SHEBANG_HEAD_BYTES)
        .read_to_end(&mut bytes)?;
    let language = match by_name {
        NameMatch::Language(language) => language,
        NameMatch::MaybeShebang if has_shell_shebang(&bytes) => Language::Shell,
        NameMatch::MaybeShebang | NameMatch::No => return Ok(ReadOutcome::NotAScript),
    };
    if bytes.len() as u64 == SHEBANG_HEAD_BYTES {
        let remaining = (max_file_size + 1).saturating_sub(SHEBANG_HEAD_BYTES);
        file.take(remaining).read_to_end(&mut bytes)?;
    }
    if bytes.len() as u64 > max_file_size {
        return Ok(ReadOutcome::TooLarge(language, bytes));
    }
    Ok(ReadOutcome::Script(language, bytes))
}

/// Bytes at the start of a file in which a NUL byte means "binary, not a script".
///
/// Only the head decides: a NUL further on (an appended payload, a stray byte)
/// must not hide the loops of an otherwise textual script.
const BINARY_SNIFF_BYTES: usize = 1024;

/// A script's bytes are not text: a NUL byte in the head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Binary;

/// Turns a script's bytes into text without a byte-order mark.
///
/// UTF-16 with a byte-order mark (what Windows PowerShell 5 writes), or
/// without one when the head is plainly UTF-16 ASCII, is decoded too.
/// Invalid sequences become U+FFFD instead of skipping the file: a Latin-1
/// `é` in a comment must not hide a loop. NUL bytes past the head become
/// U+FFFD as well, so every scanner sees ordinary text.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<String, Binary> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Ok(decode_utf16(rest, u16::from_le_bytes));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Ok(decode_utf16(rest, u16::from_be_bytes));
    }
    let head = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
    if head.contains(&0) {
        return match utf16_without_bom(head) {
            Some(unit) => Ok(decode_utf16(&bytes, unit)),
            None => Err(Binary),
        };
    }
    let mut text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
    if text.starts_with('\u{FEFF}') {
        text.drain(..'\u{FEFF}'.len_utf8());
    }
    Ok(without_nul(text))
}

/// The byte order of a head that looks like UTF-16 ASCII text without a
/// byte-order mark: a NUL in every high byte and none in the low bytes.
fn utf16_without_bom(head: &[u8]) -> Option<fn([u8; 2]) -> u16> {
    let pairs = head.chunks_exact(2);
    if pairs.len() < 2 {
        return None;
    }
    let looks_like = |high: usize| {
        head.chunks_exact(2)
            .all(|pair| pair[high] == 0 && pair[1 - high] != 0)
    };
    if looks_like(1) {
        Some(u16::from_le_bytes)
    } else if looks_like(0) {
        Some(u16::from_be_bytes)
    } else {
        None
    }
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let mut text: String = char::decode_utf16(units)
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if !bytes.len().is_multiple_of(2) {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    without_nul(text)
}

fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// CRLF (and a lone CR) become LF, so lines and columns match an editor's.
pub(crate) fn normalize_line_endings(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// `path` relative to `root`, `/`-separated.
fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut text = String::new();
    for component in relative.components() {
        if let Component::Normal(name) = component {
            if !text.is_empty() {
                text.push('/');
            }
            text.push_str(&name.to_string_lossy());
        }
    }
    text
}

/// A walk error (a folder that cannot be listed, a broken ignore file) as a note.
fn walk_error_note(root: &Path, error: &ignore::Error) -> Note {
    Note {
        path: error_path(error)
            .map(|path| relative_path(root, path))
            .unwrap_or_default(),
        kind: NoteKind::Unreadable,
        message: format!("cannot read: {}", error_message(error)),
    }
}

fn error_path(error: &ignore::Error) -> Option<&Path> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child),
        _ => None,
    }
}

/// The innermost message, without the path the note already names.
fn error_message(error: &ignore::Error) -> String {
    match error {
        ignore::Error::WithPath { err, .. } | ignore::Error::WithDepth { err, .. } => {
            error_message(err)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(path: &str) -> NameMatch {
        language_from_name(Path::new(path))
    }

    #[test]
    fn extensions_pick_the_language_in_any_case() {
        assert_eq!(name("a.sh"), NameMatch::Language(Language::Shell));
        assert_eq!(name("ci/b.bash"), NameMatch::Language(Language::Shell));
        assert_eq!(name("c.ps1"), NameMatch::Language(Language::PowerShell));
        assert_eq!(name("Mod.PSM1"), NameMatch::Language(Language::PowerShell));
        assert_eq!(name("BUILD.CMD"), NameMatch::Language(Language::Batch));
        assert_eq!(name("x/run.bat"), NameMatch::Language(Language::Batch));
        assert_eq!(name("README.md"), NameMatch::No);
        assert_eq!(name("src/main.rs"), NameMatch::No);
        assert_eq!(name("deploy"), NameMatch::MaybeShebang);
    }

    #[test]
    fn python_counts_only_under_a_scripts_folder() {
        assert_eq!(name("scripts/a.py"), NameMatch::Language(Language::Python));
        assert_eq!(
            name("tools/scripts/deep/b.py"),
            NameMatch::Language(Language::Python)
        );
        assert_eq!(name("app/main.py"), NameMatch::No);
        assert_eq!(name("scripts.py"), NameMatch::No);
        assert_eq!(name("myscripts/c.py"), NameMatch::No);
    }

    #[test]
    fn shebangs_naming_a_shell_make_a_shell_script() {
        assert!(has_shell_shebang(b"#!/bin/sh\necho"));
        assert!(has_shell_shebang(b"#!/bin/bash -eu\n"));
        assert!(has_shell_shebang(b"#! /usr/bin/env bash\n"));
        assert!(has_shell_shebang(b"#!/usr/bin/env -S bash -e\n"));
        assert!(has_shell_shebang(b"#!/bin/dash\n"));
        assert!(!has_shell_shebang(b"#!/usr/bin/env python3\n"));
        assert!(!has_shell_shebang(b"#!/usr/bin/perl\n"));
        assert!(!has_shell_shebang(b"echo hi\n"));
        assert!(!has_shell_shebang(b"#!\n"));
        assert!(!has_shell_shebang(b"#!/usr/bin/env\n"));
        assert!(!has_shell_shebang(b"# !/bin/sh\n"));
    }

    #[test]
    fn decoding_strips_a_bom_and_keeps_text_with_bad_bytes() {
        assert_eq!(decode(b"\xEF\xBB\xBFwhile :".to_vec()).unwrap(), "while :");
        assert_eq!(decode(b"plain".to_vec()).unwrap(), "plain");
        assert_eq!(decode(b"a\0b".to_vec()), Err(Binary));
        // A Latin-1 byte in a comment: the rest of the text is still there.
        assert_eq!(
            decode(b"# caf\xE9\nwhile :".to_vec()).unwrap(),
            "# caf\u{FFFD}\nwhile :"
        );
    }

    #[test]
    fn only_a_nul_in_the_head_makes_a_file_binary() {
        let mut bytes = b"#!/bin/sh\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'#', BINARY_SNIFF_BYTES));
        bytes.extend(b"\0\nwhile :; do :; done\n");
        let text = decode(bytes).unwrap();
        assert!(
            text.ends_with("\u{FFFD}\nwhile :; do :; done\n"),
            "{text:?}"
        );
        let mut head_nul = b"#!/bin/sh\n\0".to_vec();
        head_nul.extend(std::iter::repeat_n(b'#', 2 * BINARY_SNIFF_BYTES));
        assert_eq!(decode(head_nul), Err(Binary));
    }

    #[test]
    fn decoding_reads_utf16_with_a_bom() {
        let little: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("while ($true) {}".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(little).unwrap(), "while ($true) {}");
        let big: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("sleep".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(big).unwrap(), "sleep");
        assert_eq!(decode(vec![0xFF, 0xFE, 0x41]).unwrap(), "\u{FFFD}");
    }

    #[test]
    fn decoding_reads_utf16_ascii_without_a_bom() {
        let little: Vec<u8> = "while ($true) {}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(decode(little).unwrap(), "while ($true) {}");
        let big: Vec<u8> = "do {} until (0)"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(decode(big).unwrap(), "do {} until (0)");
    }

    #[test]
    fn line_endings_become_lf() {
        assert_eq!(
            normalize_line_endings("a\r\nb\rc\n".to_owned()),
            "a\nb\nc\n"
        );
        assert_eq!(normalize_line_endings("a\nb".to_owned()), "a\nb");
    }

    #[test]
    fn relative_paths_use_forward_slashes() {
        let root = Path::new("/project");
        assert_eq!(
            relative_path(root, Path::new("/project/scripts/a.sh")),
            "scripts/a.sh"
        );
        assert_eq!(relative_path(root, Path::new("/project/x.cmd")), "x.cmd");
    }
}
