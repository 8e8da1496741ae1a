//! The four loop scanners (`validate::loops::scan`): any text gets findings
//! whose lines and columns lie inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specsmith::validate::loops::{scan, Language};

fuzz_target!(|bytes: &[u8]| {
    let source = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let lines = source.lines().count().max(1);
    for language in [
        Language::Shell,
        Language::PowerShell,
        Language::Batch,
        Language::Python,
    ] {
        for finding in scan(language, &source) {
            assert!(finding.line >= 1 && finding.line <= lines + 1);
            assert!(finding.column >= 1);
        }
    }
});
