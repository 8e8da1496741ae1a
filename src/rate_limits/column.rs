//! A column of whole numbers as the state file holds it: one JSON string of
//! decimal numbers separated by single spaces (`"1795432101208 4 0"`).
//!
//! A window of 10,000 events is two such columns. Read as JSON arrays, each
//! number went through serde on its own, about 200 instructions a number and
//! most of a short-lived command's time; as one string, serde_json scans it
//! once and [`Column::for_each`] splits it in a byte loop. Format 2's arrays are still
//! read ([`Column`] takes either).

use std::borrow::Cow;
use std::fmt;

/// `numbers` in the column's text form as a JSON string, quotes included:
/// digits and spaces need no escaping, so the text can be written as it is
/// (see [`raw`]). `capacity` is a guess of the length, in bytes.
pub fn json_text(numbers: impl IntoIterator<Item = u64>, capacity: usize) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(capacity + 2);
    let mut buffer = itoa::Buffer::new();
    out.push(b'"');
    for number in numbers {
        // Most numbers are gaps of a few milliseconds or token counts of a
        // few hundred: their digits pushed one by one, not copied from the
        // formatter (a call to memcpy each).
        let digit = |value: u64| b'0' + (value % 10) as u8;
        match number {
            0..=9 => out.push(digit(number)),
            10..=99 => out.extend([digit(number / 10), digit(number)]),
            100..=999 => out.extend([digit(number / 100), digit(number / 10), digit(number)]),
            _ => out.extend_from_slice(buffer.format(number).as_bytes()),
        }
        out.push(b' ');
    }
    if out.len() > 1 {
        out.pop();
    }
    out.push(b'"');
    // Only quotes, digits and spaces were written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`json_text`]'s string as a value serde_json writes without looking at
/// it again (escaping a 60 KB column cost as much as making it).
pub fn raw(json_text: String) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
    serde_json::value::RawValue::from_string(json_text)
}

/// A stored column: format 3's text, or format 2's array of numbers.
#[derive(Debug)]
pub enum Column<'de> {
    /// Numbers separated by single spaces, borrowed from the file when it can be.
    Text(Cow<'de, str>),
    /// A JSON array of numbers.
    List(Vec<u64>),
}

impl Column<'_> {
    /// Calls `each` with every number, in order; a field that is not a
    /// number stops the reading with [`ColumnError`].
    pub fn for_each(&self, mut each: impl FnMut(u64)) -> Result<(), ColumnError> {
        let text = match self {
            Column::List(list) => {
                list.iter().for_each(|&number| each(number));
                return Ok(());
            }
            Column::Text(text) if text.is_empty() => return Ok(()),
            Column::Text(text) => text.as_bytes(),
        };
        // One pass over the bytes, a digit or a separator each: the loop a
        // 10,000-event window spends its load in.
        let (mut index, mut start, mut value) = (0, 0, 0u64);
        for (position, &byte) in text.iter().enumerate() {
            if byte == b' ' {
                if position == start {
                    return Err(not_a_number(text, start, index));
                }
                each(value);
                (index, start, value) = (index + 1, position + 1, 0);
                continue;
            }
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                return Err(not_a_number(text, start, index));
            }
            value = value
                .checked_mul(10)
                .and_then(|value| value.checked_add(u64::from(digit)))
                .ok_or(ColumnError::TooLarge { index })?;
        }
        if start == text.len() {
            return Err(not_a_number(text, start, index));
        }
        each(value);
        Ok(())
    }

    /// How many numbers the column holds (text: counted, not checked).
    pub fn len(&self) -> usize {
        match self {
            Column::Text(text) if text.is_empty() => 0,
            Column::Text(text) => text.bytes().filter(|&byte| byte == b' ').count() + 1,
            Column::List(list) => list.len(),
        }
    }

    /// True when the column holds no number.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a column's text is not a list of numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnError {
    /// Something other than digits between two spaces (or at an end).
    #[error("number {index} is `{text}`, not a whole number")]
    NotANumber {
        /// Position in the column, from 0.
        index: usize,
        /// What stands there (at most 20 characters of it).
        text: String,
    },
    /// A number above 2^64 − 1.
    #[error("number {index} is too large")]
    TooLarge {
        /// Position in the column, from 0.
        index: usize,
    },
}

/// The error for the field of `bytes` that starts at `start`, number `index`.
fn not_a_number(bytes: &[u8], start: usize, index: usize) -> ColumnError {
    let field = bytes[start..]
        .split(|&byte| byte == b' ')
        .next()
        .unwrap_or_default();
    ColumnError::NotANumber {
        index,
        text: String::from_utf8_lossy(field).chars().take(20).collect(),
    }
}

impl<'de> serde::Deserialize<'de> for Column<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ColumnVisitor)
    }
}

struct ColumnVisitor;

impl<'de> serde::de::Visitor<'de> for ColumnVisitor {
    type Value = Column<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string of numbers separated by spaces, or a list of numbers")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Column<'de>, E> {
        Ok(Column::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Column<'de>, E> {
        Ok(Column::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Column<'de>, E> {
        Ok(Column::Text(Cow::Owned(text)))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Column<'de>, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        // Bounded by the input: each pass consumes one element.
        while let Some(number) = seq.next_element::<u64>()? {
            list.push(number);
        }
        Ok(Column::List(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(numbers: &[u64]) -> String {
        let quoted = json_text(numbers.iter().copied(), 0);
        let raw = raw(quoted.clone()).unwrap();
        assert_eq!(raw.get(), quoted);
        let text: String = serde_json::from_str(&quoted).unwrap();
        text
    }

    fn numbers(column: &Column) -> Result<Vec<u64>, ColumnError> {
        let mut numbers = Vec::new();
        column.for_each(|number| numbers.push(number))?;
        Ok(numbers)
    }

    fn read(text: &str) -> Result<Vec<u64>, ColumnError> {
        numbers(&Column::Text(Cow::Borrowed(text)))
    }

    #[test]
    fn numbers_round_trip_through_the_text_form() {
        for numbers in [
            vec![],
            vec![0],
            vec![1_795_432_101_208, 4, 0, 0, 17],
            vec![u64::MAX, 0, 9],
            vec![9, 10, 99, 100, 999, 1_000, 12_345],
        ] {
            let written = text(&numbers);
            assert_eq!(read(&written).unwrap(), numbers, "{written:?}");
            assert_eq!(Column::Text(Cow::Borrowed(&written)).len(), numbers.len());
        }
        assert_eq!(text(&[1_795_432_101_208, 4, 0]), "1795432101208 4 0");
    }

    #[test]
    fn anything_but_single_spaces_between_digits_is_refused_naming_the_place() {
        let cases = [
            ("1 x 3", "number 1 is `x`, not a whole number"),
            ("1  3", "number 1 is ``, not a whole number"),
            (" 1", "number 0 is ``, not a whole number"),
            ("1 2 ", "number 2 is ``, not a whole number"),
            ("1 -2", "number 1 is `-2`, not a whole number"),
            ("1.5", "number 0 is `1.5`, not a whole number"),
            ("1\n2", "number 0 is `1\n2`, not a whole number"),
            ("7 18446744073709551616", "number 1 is too large"),
        ];
        for (text, expected) in cases {
            let error = read(text).unwrap_err().to_string();
            assert_eq!(error, expected, "{text:?}");
        }
    }

    #[test]
    fn a_column_reads_from_a_string_or_a_list() {
        let borrowed: Column = serde_json::from_str(r#""5 6""#).unwrap();
        assert!(matches!(borrowed, Column::Text(Cow::Borrowed(_))));
        assert_eq!(numbers(&borrowed), Ok(vec![5, 6]));
        // An escaped string cannot be borrowed; it still reads (and is refused
        // for what it holds, not for how it was written).
        let escaped: Column = serde_json::from_str(r#""5\u0020x""#).unwrap();
        assert!(matches!(escaped, Column::Text(Cow::Owned(_))));
        assert!(numbers(&escaped).is_err());
        let list: Column = serde_json::from_str("[5, 6]").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(numbers(&list), Ok(vec![5, 6]));
        let from_value: Column<'static> =
            serde::Deserialize::deserialize(serde_json::json!("8")).unwrap();
        assert_eq!(numbers(&from_value), Ok(vec![8]));
        let error = serde_json::from_str::<Column>("{}")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("a string of numbers separated by spaces"),
            "{error}"
        );
    }
}
