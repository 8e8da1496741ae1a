//! Writing to the terminal: stdout that tolerates a closed pipe, tables that
//! stay aligned, colour only when a person is watching.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use crate::rate_limits::secrets;
use comfy_table::{
    presets, Attribute, Cell, CellAlignment, ContentArrangement, Table, TableComponent,
};

/// Writes `bytes` to stdout and flushes.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// Writes `text` and a newline to stdout.
pub fn println(text: &str) -> io::Result<()> {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    write_stdout(line.as_bytes())
}

/// Writes `value` to stdout as pretty JSON.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println(&text)?;
    Ok(())
}

/// Prints an error chain on one line of stderr (`error: outer: inner`),
/// credentials masked and control characters escaped whatever the error
/// echoes, then its hint, if any, on a line of its own.
pub fn print_error(error: &anyhow::Error) {
    let text = secrets::for_message(&format!("{error:#}"));
    let hint = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<super::HintedError>())
        .map(|hinted| format!("\nhint: {}", secrets::for_message(hinted.hint())))
        .unwrap_or_default();
    eprintln!("error: {text}{hint}");
}

/// Prints `warning: TEXT` on stderr, filtered like every message.
pub fn warning(text: &str) {
    eprintln!("warning: {}", secrets::for_message(text));
}

/// A path as messages show it: control characters escaped.
pub fn shown(path: &Path) -> String {
    secrets::escape_controls(&path.display().to_string()).into_owned()
}

/// A table cell or message part that came from input: control characters escaped.
pub fn cell(text: &str) -> String {
    secrets::escape_controls(text).into_owned()
}

/// True when the error is stdout closing under us (`specsmith-rs … | head`),
/// which is not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Colour and emphasis on stdout: only for a terminal, and never under `NO_COLOR`.
pub fn stdout_styled() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Column alignment for [`table`].
#[derive(Clone, Copy)]
pub enum Align {
    Left,
    Right,
}

/// A table with a bold header (when styled) and the given column alignments.
pub fn table(headers: &[(&str, Align)]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_style(TableComponent::HeaderLines, '─')
        .set_style(TableComponent::MiddleHeaderIntersections, '─')
        .set_content_arrangement(ContentArrangement::Disabled);
    let styled = stdout_styled();
    if !styled {
        table.force_no_tty();
    }
    table.set_header(headers.iter().map(|(name, _)| {
        let cell = Cell::new(name);
        if styled {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    for (index, (_, align)) in headers.iter().enumerate() {
        if let (Some(column), Align::Right) = (table.column_mut(index), align) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// Renders `table` without the padding comfy-table leaves at line ends.
pub fn render_table(table: &Table) -> String {
    let mut text = String::new();
    for line in table.lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.pop();
    text
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(200_000_000), "200,000,000");
    }
}
