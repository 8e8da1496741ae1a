//! The profile file loader: any bytes are refused with an error or accepted,
//! and what is accepted writes back and reads again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use specsmith::persist::parse_json;
use specsmith::rate_limits::Profile;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(profiles) = parse_json::<Vec<Profile>>(Path::new("model-rate-limits.json"), bytes) {
        let written = serde_json::to_vec(&profiles).unwrap();
        parse_json::<Vec<Profile>>(Path::new("rewritten.json"), &written)
            .expect("a written profile file reads back");
    }
});
