//! A column of whole numbers as the state file holds it: one JSON string of
//! decimal numbers separated by single spaces (`"1795432101208 4 0"`).
//!
//! A window of 10,000 events is two such columns. Read as JSON arrays, each
//! number went through serde on its own, about 200 instructions a number and
//! most of a short-lived command's time; as one string, serde_json scans it
//! once and [`Column::try_for_each`] splits it in a byte loop. Format 2's arrays are still
//! read ([`Column`] takes either).

use std::borrow::Cow;
use std::fmt;

/// Appends `numbers` to `out` in the column's text form.
pub fn write_numbers(out: &mut String, numbers: impl IntoIterator<Item = u64>) {
    let mut buffer = itoa::Buffer::new();
    let mut first = true;
    for number in numbers {
        if !first {
            out.push(' ');
        }
        first = false;
        // Most gaps between events are a few milliseconds: one digit,
        // without the formatter's copy.
        if number < 10 {
            out.push(char::from(b'0' + number as u8));
        } else {
            out.push_str(buffer.format(number));
        }
    }
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
    /// Calls `each` with the index and value of every number, in order,
    /// until it fails; a number that is not one fails with [`ColumnError`].
    pub fn try_for_each<E: From<ColumnError>>(
        &self,
        mut each: impl FnMut(usize, u64) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Column::List(list) => (0..)
                .zip(list)
                .try_for_each(|(index, &number)| each(index, number)),
            Column::Text(text) if text.is_empty() => Ok(()),
            Column::Text(text) => {
                // One pass over the bytes, a digit or a separator each: the
                // loop a 10,000-event window spends its load in.
                let bytes = text.as_bytes();
                let (mut index, mut start, mut value) = (0, 0, 0u64);
                for (position, &byte) in bytes.iter().enumerate() {
                    if byte == b' ' {
                        if position == start {
                            return Err(not_a_number(bytes, start, index).into());
                        }
                        each(index, value)?;
                        (index, start, value) = (index + 1, position + 1, 0);
                        continue;
                    }
                    let digit = byte.wrapping_sub(b'0');
                    if digit > 9 {
                        return Err(not_a_number(bytes, start, index).into());
                    }
                    value = value
                        .checked_mul(10)
                        .and_then(|value| value.checked_add(u64::from(digit)))
                        .ok_or(ColumnError::TooLarge { index })?;
                }
                if start == bytes.len() {
                    return Err(not_a_number(bytes, start, index).into());
                }
                each(index, value)
            }
        }
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
        let mut out = String::new();
        write_numbers(&mut out, numbers.iter().copied());
        out
    }

    fn numbers(column: &Column) -> Result<Vec<u64>, ColumnError> {
        let mut numbers = Vec::new();
        column.try_for_each(|index, number| {
            assert_eq!(index, numbers.len());
            numbers.push(number);
            Ok::<_, ColumnError>(())
        })?;
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
