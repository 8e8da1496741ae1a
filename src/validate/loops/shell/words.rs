//! Quote removal, with a map back to where each byte was written.

use std::borrow::Cow;

/// The word with its quotes and escapes removed; expansions stay as written.
pub(super) fn literal(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|byte| matches!(byte, b'\'' | b'"' | b'\\')) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(unquote(raw, None).0)
}

/// Removes quotes and escapes from `raw`. When `origins` is given (one entry
/// per byte of `raw`), the result carries, for each of its bytes, the origin
/// of the byte it came from.
pub(super) fn unquote(raw: &str, origins: Option<&[usize]>) -> (String, Vec<usize>) {
    let bytes = raw.as_bytes();
    let mut output: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut map: Vec<usize> = Vec::new();
    let mut push = |output: &mut Vec<u8>, index: usize| {
        output.push(bytes[index]);
        if let Some(origins) = origins {
            map.push(origins.get(index).copied().unwrap_or(index));
        }
    };
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\'' => {
                index += 1;
                while index < bytes.len() && bytes[index] != b'\'' {
                    push(&mut output, index);
                    index += 1;
                }
                index += 1;
            }
            b'$' if bytes.get(index + 1) == Some(&b'\'') => {
                index += 2;
                while index < bytes.len() && bytes[index] != b'\'' {
                    if bytes[index] == b'\\' && index + 1 < bytes.len() {
                        index += 1;
                    }
                    push(&mut output, index);
                    index += 1;
                }
                index += 1;
            }
            b'"' => {
                index += 1;
                while index < bytes.len() && bytes[index] != b'"' {
                    if bytes[index] == b'\\' {
                        match bytes.get(index + 1) {
                            Some(b'\n') => {
                                index += 2;
                                continue;
                            }
                            Some(b'$' | b'`' | b'"' | b'\\') => index += 1,
                            _ => {}
                        }
                    }
                    push(&mut output, index);
                    index += 1;
                }
                index += 1;
            }
            b'\\' => {
                index += 1;
                if index < bytes.len() {
                    if bytes[index] != b'\n' {
                        push(&mut output, index);
                    }
                    index += 1;
                }
            }
            _ => {
                push(&mut output, index);
                index += 1;
            }
        }
    }
    // Only ASCII quote and escape bytes were dropped, so the bytes kept form
    // whole characters; the lossy path is a guard that never allocates twice.
    let text = match String::from_utf8(output) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
    if map.len() != text.len() {
        map.resize(text.len(), map.last().copied().unwrap_or(0));
    }
    (text, map)
}

/// A heredoc body as the shell it feeds reads it, with each byte's offset in
/// the file (`start` is the body's offset). An unquoted delimiter lets the
/// outer shell undo `\$`, `` \` ``, `\\` and line continuations first; its
/// `$var` and `$(…)` expansions stay as written. A quoted one (`<<'EOF'`)
/// leaves the body as written.
pub(super) fn heredoc_text(body: &str, start: usize, quoted: bool) -> (String, Vec<usize>) {
    if quoted || !body.contains('\\') {
        return (body.to_owned(), (start..start + body.len()).collect());
    }
    let bytes = body.as_bytes();
    let mut output: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut map: Vec<usize> = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            match bytes.get(index + 1) {
                Some(b'\n') => {
                    index += 2;
                    continue;
                }
                Some(b'$' | b'`' | b'\\') => index += 1,
                _ => {}
            }
        }
        output.push(bytes[index]);
        map.push(start + index);
        index += 1;
    }
    // Only ASCII backslashes and newlines were dropped: whole characters remain.
    let text = match String::from_utf8(output) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
    map.resize(text.len(), map.last().copied().unwrap_or(start));
    (text, map)
}

/// The last path component: `/usr/bin/tail` is `tail`.
pub(super) fn basename(word: &str) -> &str {
    match word.as_bytes().iter().rposition(|&byte| byte == b'/') {
        Some(slash) => &word[slash + 1..],
        None => word,
    }
}

/// Is `word` an assignment `name=value` or `name+=value`? Returns the name and value.
pub(super) fn assignment(word: &str) -> Option<(&str, &str)> {
    // A byte search: `=` is ASCII, and this runs for every word the analysis looks at.
    let equals = word.bytes().position(|byte| byte == b'=')?;
    let name = word[..equals].strip_suffix('+').unwrap_or(&word[..equals]);
    let name = name.split('[').next().unwrap_or(name);
    let mut characters = name.chars();
    let first = characters.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
    {
        return None;
    }
    Some((name, &word[equals + 1..]))
}

/// Every shell identifier in `text`, with its byte span.
pub(super) fn identifiers(text: &str) -> impl Iterator<Item = (usize, &str)> + '_ {
    let bytes = text.as_bytes();
    let mut index = 0;
    std::iter::from_fn(move || {
        while index < bytes.len() {
            let byte = bytes[index];
            let starts = byte.is_ascii_alphabetic() || byte == b'_';
            let after_word =
                index > 0 && (bytes[index - 1].is_ascii_alphanumeric() || bytes[index - 1] == b'_');
            if starts && !after_word {
                let start = index;
                while index < bytes.len()
                    && (bytes[index].is_ascii_alphanumeric() || bytes[index] == b'_')
                {
                    index += 1;
                }
                return Some((start, &text[start..index]));
            }
            index += 1;
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_removes_quotes_and_escapes() {
        assert_eq!(literal("plain"), "plain");
        assert_eq!(literal("'a b'"), "a b");
        assert_eq!(literal("\"a \\\"b\\\" \\$x\""), "a \"b\" $x");
        assert_eq!(literal("$'it\\'s'"), "it's");
        assert_eq!(literal("a\\ b"), "a b");
        assert_eq!(literal("'unterminated"), "unterminated");
    }

    #[test]
    fn unquote_maps_each_byte_to_its_origin() {
        let raw = "\"a\\\"b\"";
        let origins: Vec<usize> = (100..100 + raw.len()).collect();
        let (text, map) = unquote(raw, Some(&origins));
        assert_eq!(text, "a\"b");
        assert_eq!(map, vec![101, 103, 104]);
    }

    #[test]
    fn heredoc_text_undoes_the_outer_shells_escapes_only_when_unquoted() {
        let (text, origins) = heredoc_text("a \\$b \\\nc\n", 10, false);
        assert_eq!(text, "a $b c\n");
        assert_eq!(origins, vec![10, 11, 13, 14, 15, 18, 19]);
        let (text, origins) = heredoc_text("a \\$b\n", 10, true);
        assert_eq!(text, "a \\$b\n");
        assert_eq!(origins, (10..16).collect::<Vec<_>>());
    }

    #[test]
    fn assignment_names() {
        assert_eq!(assignment("n=$((n+1))"), Some(("n", "$((n+1))")));
        assert_eq!(assignment("n+=1"), Some(("n", "1")));
        assert_eq!(assignment("--flag=x"), None);
        assert_eq!(assignment("1x=2"), None);
    }

    #[test]
    fn identifiers_skip_digits_inside_words() {
        let found: Vec<&str> = identifiers("SECONDS>end+10 x1")
            .map(|(_, name)| name)
            .collect();
        assert_eq!(found, vec!["SECONDS", "end", "x1"]);
    }
}
