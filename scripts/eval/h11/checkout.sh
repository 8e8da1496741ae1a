#!/bin/sh
# Unpack each repository of the H11 evaluation corpus, at its labelled commit, from local git
# mirrors. Fetches nothing: get the mirrors first with any git client (see README.md).
#
#   checkout.sh MIRRORS OUT [CORPUS]
#
# MIRRORS holds one git directory per repository, as `MIRRORS/owner+name/repo` or `…/repo/.git` (a mirror
# such as the search tool's fetch leaves) or `MIRRORS/owner+name` (a bare clone or a clone with
# a work tree). OUT receives `OUT/owner+name/`, the tree of the listed commit. CORPUS defaults
# to corpus.tsv next to this script. Blobs a mirror lacks (large files some mirrors leave out)
# are skipped with a note; labelled files are never among them.
set -eu

usage() {
    echo "usage: checkout.sh MIRRORS OUT [CORPUS]" >&2
    echo "  unpacks every repo of CORPUS (default: corpus.tsv beside this script) at its commit" >&2
    echo "  from MIRRORS/owner+name/repo (or MIRRORS/owner+name) into OUT/owner+name/" >&2
}

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
esac
if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
    usage
    exit 2
fi
mirrors=$1
out=$2
corpus=${3:-$(dirname "$0")/corpus.tsv}

if [ ! -d "$mirrors" ]; then
    echo "checkout.sh: MIRRORS \`$mirrors\` is not a folder" >&2
    exit 2
fi
if [ ! -f "$corpus" ]; then
    echo "checkout.sh: corpus file \`$corpus\` not found" >&2
    exit 2
fi
mkdir -p "$out"
tarball=$(mktemp "${TMPDIR:-/tmp}/h11-checkout.XXXXXX")
trap 'rm -f "$tarball"' EXIT

failed=0
# One pass over the corpus file: finite input, no waiting.
while IFS="$(printf '\t')" read -r repo commit set rest; do
    case "$repo" in ''|'#'*) continue ;; esac
    key=$(printf '%s' "$repo" | tr '/' '+')
    gitdir=""
    for candidate in "$mirrors/$key/repo" "$mirrors/$key/repo/.git" "$mirrors/$key/.git" "$mirrors/$key"; do
        if git --git-dir="$candidate" rev-parse --git-dir >/dev/null 2>&1; then
            gitdir=$candidate
            break
        fi
    done
    if [ -z "$gitdir" ]; then
        echo "checkout.sh: no git mirror for $repo under $mirrors/$key" >&2
        failed=1
        continue
    fi
    if ! git --git-dir="$gitdir" cat-file -e "$commit^{commit}" 2>/dev/null; then
        echo "checkout.sh: $repo: commit $commit is not in $gitdir" >&2
        failed=1
        continue
    fi
    target="$out/$key"
    rm -rf "$target"
    mkdir -p "$target"
    # Blobs absent from the mirror make `git archive` fail; leave them out by pathspec.
    missing=$(git -c core.quotePath=false --git-dir="$gitdir" ls-tree -r "$commit" \
        | awk '$2 == "blob" { print $3 }' \
        | git --git-dir="$gitdir" cat-file --batch-check 2>/dev/null \
        | awk '$2 == "missing" { print $1 }' | sort -u)
    if [ -n "$missing" ]; then
        excludes=$(git -c core.quotePath=false --git-dir="$gitdir" ls-tree -r "$commit" \
            | awk -v list="$missing" 'BEGIN { n = split(list, m, "\n"); for (i = 1; i <= n; i++) gone[m[i]] = 1 }
                $2 == "blob" && ($3 in gone) { sub(/^[^\t]*\t/, ""); print }')
        count=$(printf '%s\n' "$excludes" | wc -l | tr -d ' ')
        echo "checkout.sh: $repo: $count file(s) absent from the mirror, left out" >&2
        # git still names the absent blobs on stderr while it leaves them out: keep that quiet.
        if ! printf '%s\n' "$excludes" | sed 's/^/:(exclude,literal)/' | tr '\n' '\0' \
            | xargs -0 git --git-dir="$gitdir" archive --format=tar -o "$tarball" "$commit" -- . \
            2>/dev/null; then
            echo "checkout.sh: $repo: git archive failed" >&2
            failed=1
            continue
        fi
    elif ! git --git-dir="$gitdir" archive --format=tar -o "$tarball" "$commit"; then
        echo "checkout.sh: $repo: git archive failed" >&2
        failed=1
        continue
    fi
    tar -x -C "$target" -f "$tarball"
    rm -f "$tarball"
    echo "$repo $commit ($set) -> $target"
done < "$corpus"

if [ "$failed" -ne 0 ]; then
    echo "checkout.sh: some repositories could not be unpacked (see above)" >&2
    exit 1
fi
