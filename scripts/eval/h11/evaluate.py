#!/usr/bin/env python3
"""Score `specsmith-rs validate` (rule H11) against hand labels of real public scripts.

Reads corpus.tsv and labels.tsv (next to this file unless told otherwise), runs
`specsmith-rs validate --format json --project-dir CHECKOUTS/owner+name` once per repository
of the chosen set, keeps the H11 findings that fall in labelled files, matches them to the labels
by (path, line) and prints true/false positives, misses, precision and recall per language and
overall, plus how often the finding's kind agrees with the label's verdict.

A label with verdict `unbounded` or `silent-fallback` is a violation; `ok` and `none` rows, and
any line of a labelled file without a row, are not. A finding at a line with no violation label
is a false positive. Fetches nothing: the checkouts come from checkout.sh. Python 3 stdlib only.
Exit status: 0 after a completed evaluation (whatever the scores), 2 when an input is broken.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
LANGUAGES = ("sh", "powershell", "batch", "python")
VERDICTS = ("ok", "unbounded", "silent-fallback", "none")
VIOLATIONS = ("unbounded", "silent-fallback")
SETS = ("dev", "dev4", "dev5", "dev6", "dev7", "seen", "test", "test2", "test3", "test4", "test5")
TUNING_SETS = ("dev", "dev4", "dev5", "dev6", "dev7", "seen")


class InputError(Exception):
    """A broken input file, checkout or binary: reported on one line, exit 2."""


def read_tsv(path, columns, what):
    """Rows of a tab-separated file, skipping blank lines and lines starting with '#'."""
    if not os.path.isfile(path):
        raise InputError(f"{what} `{path}` not found")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != columns:
                raise InputError(
                    f"{what} `{path}` line {number}: expected {columns} tab-separated "
                    f"fields, found {len(fields)}"
                )
            rows.append((number, fields))
    return rows


def load_corpus(path):
    corpus = {}
    for number, (repo, commit, set_name) in read_tsv(path, 3, "corpus"):
        if repo.count("/") != 1:
            raise InputError(f"corpus `{path}` line {number}: `{repo}` is not owner/name")
        if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
            raise InputError(f"corpus `{path}` line {number}: `{commit}` is not a 40-hex commit")
        if set_name not in SETS:
            raise InputError(
                f"corpus `{path}` line {number}: set `{set_name}` is not one of {', '.join(SETS)}"
            )
        if repo in corpus:
            raise InputError(f"corpus `{path}` line {number}: `{repo}` is listed twice")
        corpus[repo] = (commit, set_name)
    return corpus


def load_labels(path, corpus):
    """{repo: {path: {"language": str, "lines": {line: (verdict, note)}}}}"""
    labels = defaultdict(dict)
    for number, (repo, file_path, line_text, language, verdict, note) in read_tsv(
        path, 6, "labels"
    ):
        where = f"labels `{path}` line {number}"
        if repo not in corpus:
            raise InputError(f"{where}: repository `{repo}` is not in the corpus")
        if language not in LANGUAGES:
            raise InputError(f"{where}: language `{language}` is not one of {', '.join(LANGUAGES)}")
        if verdict not in VERDICTS:
            raise InputError(f"{where}: verdict `{verdict}` is not one of {', '.join(VERDICTS)}")
        if not line_text.isdigit():
            raise InputError(f"{where}: line `{line_text}` is not a number")
        line = int(line_text)
        if (verdict == "none") != (line == 0):
            raise InputError(f"{where}: verdict `none` goes with line 0, and only with it")
        if not note.strip():
            raise InputError(f"{where}: the note is empty")
        entry = labels[repo].setdefault(file_path, {"language": language, "lines": {}})
        if entry["language"] != language:
            raise InputError(f"{where}: `{file_path}` was labelled {entry['language']} before")
        if line in entry["lines"]:
            raise InputError(f"{where}: `{file_path}` line {line} is labelled twice")
        if line != 0:
            entry["lines"][line] = (verdict, note)
    return labels


def find_binary(explicit):
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise InputError(f"--bin `{explicit}` is not an executable file")
        return explicit
    built = os.path.join(REPO_ROOT, "target", "release", "specsmith-rs")
    if os.path.isfile(built) and os.access(built, os.X_OK):
        return built
    on_path = shutil.which("specsmith-rs")
    if on_path:
        return on_path
    raise InputError(
        "no specsmith-rs binary: build it (cargo build --release) or pass --bin PATH"
    )


def run_validate(binary, project_dir, timeout):
    """The H11 findings and the notes of one checkout, from validate's JSON report."""
    command = [binary, "validate", "--format", "json", "--project-dir", project_dir]
    try:
        # A deadline per repository: a hung run must not stall the evaluation for ever.
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InputError(f"validate on `{project_dir}` did not finish within {timeout} s")
    except OSError as error:
        raise InputError(f"cannot run `{binary}`: {error.strerror}")
    if done.returncode not in (0, 1, 2):
        raise InputError(
            f"validate on `{project_dir}` ended with status {done.returncode}: "
            f"{done.stderr.strip()[:300]}"
        )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise InputError(
            f"validate on `{project_dir}` printed no JSON report (status {done.returncode}): "
            f"{done.stderr.strip()[:300]}"
        )
    findings = [f for f in report.get("findings", []) if f.get("rule") == "H11"]
    return findings, report.get("notes", [])


def new_counts():
    return {
        "tp": 0, "fp": 0, "fp_unlabelled": 0, "fn": 0, "kind_agree": 0, "violations": 0,
        "loops": 0, "files": 0,
    }


def ratio(numerator, denominator):
    return None if denominator == 0 else numerator / denominator


def shown(value):
    return "   n/a" if value is None else f"{value:6.3f}"


def evaluate(corpus, labels, checkouts, binary, set_name, timeout):
    """Counts per language, plus per-loop outcomes and per-repo facts."""
    counts = defaultdict(new_counts)
    outcomes = []  # (repo, path, line, language, outcome, label verdict, finding kind, note)
    repos = defaultdict(lambda: {"files": 0, "loops": 0})
    skipped = []
    outside = 0
    suppressed = 0
    chosen = [r for r, (_, s) in sorted(corpus.items()) if set_name in ("all", s)]
    for repo in chosen:
        files = labels.get(repo, {})
        if not files:
            continue
        project_dir = os.path.join(checkouts, repo.replace("/", "+"))
        if not os.path.isdir(project_dir):
            raise InputError(
                f"no checkout for `{repo}` at `{project_dir}` (run checkout.sh first)"
            )
        for file_path in files:
            if not os.path.isfile(os.path.join(project_dir, file_path)):
                raise InputError(
                    f"labelled file `{file_path}` of `{repo}` is missing from `{project_dir}` "
                    f"(wrong commit or checkout?)"
                )
        findings, notes = run_validate(binary, project_dir, timeout)
        for note in notes:
            if note.get("path") in files:
                skipped.append((repo, note.get("path"), note.get("kind"), note.get("message")))
        by_place = {}
        for finding in findings:
            if finding.get("path") not in files:
                outside += 1
                continue
            if finding.get("suppressed"):
                suppressed += 1
                continue
            by_place.setdefault((finding["path"], finding["line"]), finding)
        for file_path, entry in sorted(files.items()):
            language = entry["language"]
            lines = entry["lines"]
            total = counts[language]
            total["files"] += 1
            total["loops"] += len(lines)
            repos[repo]["files"] += 1
            repos[repo]["loops"] += len(lines)
            for line, (verdict, note) in sorted(lines.items()):
                finding = by_place.pop((file_path, line), None)
                kind = finding["kind"] if finding else ""
                if verdict in VIOLATIONS:
                    total["violations"] += 1
                    if finding:
                        total["tp"] += 1
                        total["kind_agree"] += kind == verdict
                        outcome = "TP"
                    else:
                        total["fn"] += 1
                        outcome = "FN"
                elif finding:
                    total["fp"] += 1
                    outcome = "FP"
                else:
                    outcome = "TN"
                outcomes.append((repo, file_path, line, language, outcome, verdict, kind, note))
        for (file_path, line), finding in sorted(by_place.items()):
            language = files[file_path]["language"]
            counts[language]["fp"] += 1
            counts[language]["fp_unlabelled"] += 1
            outcomes.append(
                (repo, file_path, line, language, "FP", "unlabelled", finding["kind"], "")
            )
    return counts, outcomes, repos, skipped, outside, suppressed


def summary(counts):
    rows = {}
    overall = new_counts()
    for language in LANGUAGES:
        if language not in counts:
            continue
        rows[language] = counts[language]
        for key, value in counts[language].items():
            overall[key] += value
    rows["all"] = overall
    result = {}
    for name, c in rows.items():
        result[name] = dict(
            c,
            precision=ratio(c["tp"], c["tp"] + c["fp"]),
            recall=ratio(c["tp"], c["tp"] + c["fn"]),
            kind_agreement=ratio(c["kind_agree"], c["tp"]),
        )
    return result


def print_text(set_name, binary, table, repos, skipped, outside, suppressed, outcomes, details):
    print(f"H11 evaluation, set {set_name}, binary {binary}")
    print(
        f"{len(repos)} repositories, {sum(r['files'] for r in repos.values())} files, "
        f"{sum(r['loops'] for r in repos.values())} labelled loops"
    )
    header = (
        f"{'language':<11}{'files':>6}{'loops':>6}{'viol':>6}{'TP':>5}{'FP':>5}{'FN':>5}"
        f"{'precision':>10}{'recall':>8}{'kind':>8}"
    )
    print(header)
    for name, row in table.items():
        print(
            f"{name:<11}{row['files']:>6}{row['loops']:>6}{row['violations']:>6}"
            f"{row['tp']:>5}{row['fp']:>5}{row['fn']:>5}"
            f"{shown(row['precision']):>10}{shown(row['recall']):>8}"
            f"{shown(row['kind_agreement']):>8}"
        )
    print("(kind: share of true positives whose kind matches the label's verdict)")
    overall = table["all"]
    print(
        f"false alarms on loops labelled ok: {overall['fp'] - overall['fp_unlabelled']}, "
        f"at lines with no label row: {overall['fp_unlabelled']}"
    )
    print(f"H11 findings outside labelled files (not scored): {outside}")
    if suppressed:
        print(f"suppressed findings in labelled files (not scored): {suppressed}")
    for repo, path, kind, message in skipped:
        print(f"labelled file skipped by validate: {repo} {path}: {kind}: {message}")
    if details:
        print()
        print("outcome  repo  path:line  language  label -> finding  note")
        for repo, path, line, language, outcome, verdict, kind, note in outcomes:
            if outcome == "TN":
                continue
            print(
                f"{outcome}  {repo}  {path}:{line}  {language}  {verdict} -> "
                f"{kind or 'nothing'}  {note}"
            )


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Score specsmith-rs validate (H11) against the hand labels in labels.tsv.",
        epilog="Example: evaluate.py /work/eval/checkouts --set dev --details",
    )
    parser.add_argument("checkouts", help="folder holding owner+name/ checkouts (checkout.sh OUT)")
    parser.add_argument(
        "--bin",
        help="specsmith-rs binary (default: target/release/specsmith-rs of this repository, "
        "else specsmith-rs on PATH)",
    )
    parser.add_argument(
        "--set", dest="set_name", choices=SETS + ("all",), default="dev",
        help="which repositories to score (default: dev; test and test2 to test5 are held out)",
    )
    parser.add_argument("--corpus", default=os.path.join(HERE, "corpus.tsv"), help="corpus.tsv")
    parser.add_argument("--labels", default=os.path.join(HERE, "labels.tsv"), help="labels.tsv")
    parser.add_argument(
        "--details", action="store_true",
        help="list every miss and false alarm, loop by loop (dev sets only, so that the test "
        "set stays unseen by whoever tunes the scanners)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--timeout", type=int, default=600,
        help="seconds one repository's validate run may take (default: 600)",
    )
    args = parser.parse_args(argv)
    if args.details and args.set_name not in TUNING_SETS:
        parser.error("--details is only for the dev sets")
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        if not os.path.isdir(args.checkouts):
            raise InputError(f"CHECKOUTS `{args.checkouts}` is not a folder")
        corpus = load_corpus(args.corpus)
        labels = load_labels(args.labels, corpus)
        binary = find_binary(args.bin)
        counts, outcomes, repos, skipped, outside, suppressed = evaluate(
            corpus, labels, args.checkouts, binary, args.set_name, args.timeout
        )
    except InputError as error:
        print(f"evaluate.py: {error}", file=sys.stderr)
        return 2
    table = summary(counts)
    if args.json:
        document = {
            "set": args.set_name,
            "binary": binary,
            "repositories": len(repos),
            "summary": table,
            "outside_labelled_files": outside,
            "suppressed": suppressed,
            "skipped_labelled_files": [list(s) for s in skipped],
        }
        if args.details:
            document["outcomes"] = [
                dict(zip(("repo", "path", "line", "language", "outcome", "label", "finding",
                          "note"), o))
                for o in outcomes if o[4] != "TN"
            ]
        print(json.dumps(document, indent=2))
    else:
        print_text(args.set_name, binary, table, repos, skipped, outside, suppressed, outcomes,
                   args.details)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
