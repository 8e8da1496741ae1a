//! `specsmith: allow H11` comments: a finding on that line, or on the line
//! below, is kept in the report but marked suppressed.

use super::diagnostic::Rule;
use super::loops::Language;

/// The marker that starts a suppression, after a comment opener.
const MARKER: &str = "specsmith: allow";

/// True when line `line` (1-based) of `text`, or the line above it, holds a
/// comment that allows `rule`.
#[cfg(test)]
pub(crate) fn is_suppressed(language: Language, text: &str, line: usize, rule: Rule) -> bool {
    Suppressions::new(language, text).covers(line, rule)
}

/// The suppression comments of one file, found in one pass over its text so
/// that checking every finding stays linear however many findings it has.
pub(crate) struct Suppressions<'t> {
    language: Language,
    /// 1-based numbers of the lines holding the marker, in order, with their text.
    lines: Vec<(usize, &'t str)>,
}

impl<'t> Suppressions<'t> {
    /// Indexes the lines of `text` that hold the marker.
    pub(crate) fn new(language: Language, text: &'t str) -> Self {
        let lines = if text.contains(MARKER) {
            text.split('\n')
                .enumerate()
                .filter(|(_, line)| line.contains(MARKER))
                .map(|(index, line)| (index + 1, line))
                .collect()
        } else {
            Vec::new()
        };
        Suppressions { language, lines }
    }

    /// True when line `line` (1-based), or the line above it, holds a comment
    /// that allows `rule`.
    pub(crate) fn covers(&self, line: usize, rule: Rule) -> bool {
        if line == 0 {
            return false;
        }
        [line, line - 1].into_iter().any(|wanted| {
            self.lines
                .binary_search_by_key(&wanted, |(number, _)| *number)
                .is_ok_and(|found| allows(self.language, self.lines[found].1, rule))
        })
    }
}

/// True when `line` holds a comment `specsmith: allow CODE[, CODE…]` naming `rule`.
fn allows(language: Language, line: &str, rule: Rule) -> bool {
    let Some(position) = line.find(MARKER) else {
        return false;
    };
    if !has_comment_opener(language, &line[..position]) {
        return false;
    }
    line[position + MARKER.len()..]
        .split(|character: char| character == ',' || character.is_whitespace())
        .filter(|word| !word.is_empty())
        .take_while(|word| is_rule_code(word))
        .any(|word| word.eq_ignore_ascii_case(rule.code()))
}

/// A comment starts before the marker, so text in a string or an echo does
/// not silence anything.
fn has_comment_opener(language: Language, before: &str) -> bool {
    match language {
        Language::Shell | Language::Python | Language::PowerShell => before.contains('#'),
        Language::Batch => {
            let trimmed = before.trim_start().trim_start_matches('@');
            let lowered = before.to_ascii_lowercase();
            trimmed.starts_with("::")
                || trimmed
                    .get(..3)
                    .is_some_and(|word| word.eq_ignore_ascii_case("rem"))
                || lowered.contains("& rem ")
        }
    }
}

/// `H` followed by digits, in either case.
fn is_rule_code(word: &str) -> bool {
    let mut characters = word.chars();
    matches!(characters.next(), Some('H' | 'h'))
        && word.len() > 1
        && characters.all(|character| character.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOP: &str = "echo start\n# specsmith: allow H11\nwhile true; do work; done\n";

    #[test]
    fn comment_on_the_line_above_suppresses() {
        assert!(is_suppressed(Language::Shell, LOOP, 3, Rule::H11));
    }

    #[test]
    fn comment_on_the_same_line_suppresses() {
        let text = "while true; do work; done  # specsmith: allow H11\n";
        assert!(is_suppressed(Language::Shell, text, 1, Rule::H11));
    }

    #[test]
    fn only_the_named_rule_is_suppressed() {
        assert!(!is_suppressed(Language::Shell, LOOP, 3, Rule::H23));
        let both =
            "# specsmith: allow H23, H11 because the supervisor kills it\nwhile :; do :; done\n";
        assert!(is_suppressed(Language::Shell, both, 2, Rule::H11));
        assert!(is_suppressed(Language::Shell, both, 2, Rule::H23));
    }

    #[test]
    fn a_comment_two_lines_up_does_not_count() {
        assert!(!is_suppressed(Language::Shell, LOOP, 4, Rule::H11));
        let text = "# specsmith: allow H11\n\nwhile true; do :; done\n";
        assert!(!is_suppressed(Language::Shell, text, 3, Rule::H11));
    }

    #[test]
    fn the_marker_in_a_string_does_not_count() {
        let text = "echo 'specsmith: allow H11'\nwhile true; do :; done\n";
        assert!(!is_suppressed(Language::Shell, text, 2, Rule::H11));
    }

    #[test]
    fn words_after_the_codes_are_not_codes() {
        let text = "# specsmith: allow H23 not H11\nwhile true; do :; done\n";
        assert!(!is_suppressed(Language::Shell, text, 2, Rule::H11));
        assert!(is_suppressed(Language::Shell, text, 2, Rule::H23));
    }

    #[test]
    fn batch_comments_use_rem_or_double_colon() {
        let rem = "REM specsmith: allow H11\r\n:top\r\ngoto top\r\n".replace("\r\n", "\n");
        assert!(is_suppressed(Language::Batch, &rem, 2, Rule::H11));
        let colons = ":: specsmith: allow H11\n:top\ngoto top\n";
        assert!(is_suppressed(Language::Batch, colons, 2, Rule::H11));
        let echo = "echo specsmith: allow H11\n:top\ngoto top\n";
        assert!(!is_suppressed(Language::Batch, echo, 2, Rule::H11));
    }

    #[test]
    fn the_first_line_has_no_line_above() {
        let text = "while true; do :; done\n# specsmith: allow H11\n";
        assert!(!is_suppressed(Language::Shell, text, 1, Rule::H11));
        assert!(!is_suppressed(Language::Shell, text, 0, Rule::H11));
        assert!(!is_suppressed(Language::Shell, text, 99, Rule::H11));
    }

    #[test]
    fn one_index_answers_for_every_line_of_a_long_file() {
        let mut text = "while true; do :; done\n".repeat(2000);
        text.push_str("# specsmith: allow H11\nwhile true; do :; done\n");
        let suppressions = Suppressions::new(Language::Shell, &text);
        assert!(suppressions.covers(2001, Rule::H11));
        assert!(suppressions.covers(2002, Rule::H11));
        assert!(!suppressions.covers(2000, Rule::H11));
        assert!(!suppressions.covers(1, Rule::H11));
        assert!(!suppressions.covers(2003, Rule::H11));
    }
}
