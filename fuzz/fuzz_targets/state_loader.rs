//! The pacing state loader: any bytes are refused with an error or accepted,
//! and an accepted state survives a round trip unchanged.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use specsmith::rate_limits::store::parse_state;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(state) = parse_state(Path::new("model-rate-limit-state.json"), bytes) {
        let written = serde_json::to_vec(&state).unwrap();
        let again = parse_state(Path::new("rewritten.json"), &written)
            .expect("an accepted state reads back");
        assert_eq!(again, state);
    }
});
