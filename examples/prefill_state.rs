//! Writes a project's pacing state with a window already holding many
//! events, for benchmarks of the CLI at a realistic window size
//! (`scripts/bench/cli_pair.sh`).
//!
//! Usage: `prefill_state STATE_FILE PROVIDER MODEL EVENTS [1]`
//!
//! With a last argument `1` the file is written in state format 1 (events as
//! a pretty-printed list of objects), which older builds read, so a
//! benchmark can time a build from before format 2 on the same window.
//!
//! The events are spread over the last second and recorded as successes, so
//! nothing is in flight and the window holds them for about a minute. The
//! model's limits are generous (a million requests per minute), matching the
//! profile the benchmark sets.

use std::time::Duration;

use specsmith::rate_limits::clock::{Clock as _, SystemClock};
use specsmith::rate_limits::owner::Owner;
use specsmith::rate_limits::scheduler::{model_key, AcquireRequest, Decision, ModelState};
use specsmith::rate_limits::store::{FileStore, StateStore, StoreError};
use specsmith::rate_limits::Profile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, provider, model, events, format_1) = match args.as_slice() {
        [path, provider, model, events] => (path, provider, model, events, false),
        [path, provider, model, events, one] if one == "1" => (path, provider, model, events, true),
        _ => return Err("usage: prefill_state STATE_FILE PROVIDER MODEL EVENTS [1]".into()),
    };
    let events: u64 = events.parse()?;
    let profile = Profile::new(provider, model, 1_000_000, 1_000_000_000, 1.0, 1_000)?;
    let (key, provider, model) = model_key(provider, model).ok_or("bad provider or model")?;
    let mut state = ModelState::new(&provider, &model, &profile);
    let request = AcquireRequest {
        estimated_input_tokens: 100,
        max_output_tokens: 100,
        owner: Owner::current(),
        lease: Duration::from_secs(600),
        bucket: None,
    };
    let end = SystemClock.now();
    let start = end.saturating_sub(1_000);
    for index in 0..events {
        let at = start + index * 1_000 / events.max(1);
        let id = format!("rsv-{index:016x}");
        match state.try_acquire(at, &profile, &request, id.clone())? {
            Decision::Granted(_) => {}
            Decision::Wait { reason, .. } => {
                return Err(format!("event {index} refused ({reason})").into())
            }
        }
        state.record_success(at, Some(&profile), &id, 50, 50)?;
    }
    FileStore::new(path).measure_and_replace(|mut whole| {
        whole.models.insert(key.clone(), state.clone());
        Ok::<_, StoreError>(((), whole))
    })?;
    // An empty window leaves nothing to write, hence no file.
    if format_1 && std::path::Path::new(path).exists() {
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        json["version"] = 1.into();
        let list: Vec<serde_json::Value> = state
            .window()
            .events()
            .map(|event| {
                serde_json::json!({
                    "sequence": event.sequence,
                    "at": event.at,
                    "requests": event.requests,
                    "tokens": event.tokens,
                })
            })
            .collect();
        json["models"][&key]["events"] = list.into();
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}
