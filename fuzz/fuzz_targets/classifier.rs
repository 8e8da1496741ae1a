//! The provider-answer classifier and the usage reader: any answer gets a
//! verdict with a bounded message and a finite, non-negative wait.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use specsmith::rate_limits::retry::{classify, ProviderResponse, MAX_MESSAGE_CHARS};
use specsmith::rate_limits::usage::find_usage;

fuzz_target!(|bytes: &[u8]| {
    // The first byte chooses the status, the second whether the first line is a header.
    let status = bytes.first().map(|&byte| {
        if byte < 200 {
            429
        } else {
            400 + u16::from(byte)
        }
    });
    let body = String::from_utf8_lossy(bytes.get(2..).unwrap_or_default()).into_owned();
    let headers = match bytes.get(1) {
        Some(byte) if byte % 2 == 0 => {
            let (line, _) = body.split_once('\n').unwrap_or((&body, ""));
            let (name, value) = line.split_once(':').unwrap_or(("retry-after", line));
            vec![(name.to_owned(), value.to_owned())]
        }
        _ => Vec::new(),
    };
    let response = ProviderResponse {
        status,
        headers,
        body: body.clone(),
    };
    let verdict = classify(
        &response,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
    );
    assert!(verdict.message.chars().count() <= MAX_MESSAGE_CHARS);
    if let Some(wait) = verdict.retry_after_seconds {
        assert!(wait.is_finite() && wait >= 0.0);
    }
    let _ = find_usage(&body);
});
