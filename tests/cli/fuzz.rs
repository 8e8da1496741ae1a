//! A bounded fuzz run in the normal test suite: the profile loader, the state
//! loader, the classifier (and the usage reader it sits beside) and the four
//! loop scanners get random bytes, mutated valid inputs and pathological
//! shapes (deep nesting, long lines, huge numbers). None may panic, take more
//! than [`PER_INPUT`], or return more than its input can explain.
//!
//! The same entry points are the cargo-fuzz targets in `fuzz/`
//! (docs/reliability.md says how to run them for longer). The seed is printed;
//! `SPECSMITH_TEST_SEED` replays a run.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use specsmith::persist::parse_json;
use specsmith::rate_limits::retry::{classify, ProviderResponse, MAX_MESSAGE_CHARS};
use specsmith::rate_limits::store::parse_state;
use specsmith::rate_limits::usage::find_usage;
use specsmith::rate_limits::Profile;
use specsmith::validate::loops::{scan, Language};

use crate::harness::seed;

/// The longest one input may take (debug build, a loaded machine).
const PER_INPUT: Duration = Duration::from_secs(5);
/// The longest a whole target's run may take before it is called a hang.
const PER_TARGET: Duration = Duration::from_secs(120);
const CASES: u32 = 300;
const MAX_INPUT: usize = 4096;

const PROFILE_SEED: &str = r#"[
  {"provider": "openai", "model": "gpt-4o", "rpm_limit": 500, "tpm_limit": 30000,
   "utilization_target": 0.7, "concurrency_cap": 4, "source": "project"},
  {"provider": "anthropic", "model": "*", "rpm_limit": 50, "tpm_limit": 40000, "extra": {"kept": [1, 2]}}
]"#;

const STATE_SEED: &str = r#"{
  "version": 1,
  "models": {
    "openai::gpt-4o": {
      "provider": "openai", "model": "gpt-4o", "rpm_limit": 500, "tpm_limit": 30000,
      "effective_rpm_limit": 350, "effective_tpm_limit": 21000,
      "base_concurrency_cap": 1, "current_concurrency_cap": 1, "success_streak": 0,
      "moving_average_requests": 0.25, "moving_average_tokens": 37.5, "next_sequence": 1,
      "events": [{ "sequence": 0, "at": 1795432101208, "requests": 1, "tokens": 150 }],
      "in_flight": [{
        "id": "rsv-750199743fd6fecc", "provider": "openai", "model": "gpt-4o", "sequence": 0,
        "estimated_input_tokens": 100, "max_output_tokens": 50, "estimated_tokens": 150,
        "acquired_at": 1795432101208, "lease_expires_at": 1795432701208,
        "owner": { "host": "build-7", "pid": 41872, "start_time": 190306 }
      }]
    }
  }
}"#;

/// The same state in format 2, with a released event among three.
const STATE_SEED_V2: &str = r#"{"version":2,"models":{"openai::gpt-4o":{"provider":"openai","model":"gpt-4o","rpm_limit":500,"tpm_limit":30000,"effective_rpm_limit":350,"effective_tpm_limit":21000,"base_concurrency_cap":2,"current_concurrency_cap":2,"success_streak":0,"moving_average_requests":0.25,"moving_average_tokens":37.5,"next_sequence":3,"events":{"first":0,"at":[1795432101208,4,0],"tokens":[30,0,150],"released":[1]},"in_flight":[{"id":"rsv-750199743fd6fecc","provider":"openai","model":"gpt-4o","sequence":2,"estimated_input_tokens":100,"max_output_tokens":50,"estimated_tokens":150,"acquired_at":1795432101212,"lease_expires_at":1795432701208,"owner":{"host":"build-7","pid":41872,"start_time":190306}}]}}}"#;

/// The same state in format 3: the columns as strings.
const STATE_SEED_V3: &str = r#"{"version":3,"models":{"openai::gpt-4o":{"provider":"openai","model":"gpt-4o","rpm_limit":500,"tpm_limit":30000,"effective_rpm_limit":350,"effective_tpm_limit":21000,"base_concurrency_cap":2,"current_concurrency_cap":2,"success_streak":0,"moving_average_requests":0.25,"moving_average_tokens":37.5,"next_sequence":3,"events":{"first":0,"at":"1795432101208 4 0","tokens":"30 0 150","released":[1]},"in_flight":[{"id":"rsv-750199743fd6fecc","provider":"openai","model":"gpt-4o","sequence":2,"estimated_input_tokens":100,"max_output_tokens":50,"estimated_tokens":150,"acquired_at":1795432101212,"lease_expires_at":1795432701208,"owner":{"host":"build-7","pid":41872,"start_time":190306}}]}}}"#;

const ERROR_SEEDS: [&str; 4] = [
    r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 30, Used 30, Requested 1. Please try again in 2s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#,
    "data: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\ndata: [DONE]\n",
];

/// Words that steer mutations into the grammar each input is read with.
const DICTIONARY: [&str; 40] = [
    "while",
    "until",
    "for",
    "do",
    "done",
    "loop",
    "goto",
    ":loop",
    "if",
    "fi",
    "then",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "'",
    "`",
    "\\",
    "$(",
    "<<EOF\n",
    "EOF\n",
    "sleep 1",
    "Start-Sleep",
    "timeout",
    "\n",
    "\r\n",
    "\u{feff}",
    "18446744073709551615",
    "-1",
    "1e309",
    "NaN",
    "null",
    ",",
    ":",
    "retry-after: ",
    "x-ratelimit-reset-requests: 6m0s",
    "429",
];

fn fixtures(language_folder: &str) -> Vec<String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/loops")
        .join(language_folder);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension != "expected")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned())
        .collect()
}

/// One edit of a seed: replace, insert, delete or duplicate a slice, or drop in a dictionary word.
#[derive(Debug, Clone)]
enum Mutation {
    Insert {
        at: usize,
        word: usize,
    },
    Delete {
        at: usize,
        length: usize,
    },
    Flip {
        at: usize,
        byte: u8,
    },
    Duplicate {
        at: usize,
        length: usize,
        times: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..DICTIONARY.len()).prop_map(|(at, word)| Mutation::Insert { at, word }),
        (any::<usize>(), 0usize..64).prop_map(|(at, length)| Mutation::Delete { at, length }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (any::<usize>(), 1usize..32, 1usize..64)
            .prop_map(|(at, length, times)| Mutation::Duplicate { at, length, times }),
    ]
}

fn apply(seed: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for mutation in mutations {
        let at = |position: usize, bytes: &Vec<u8>| position % (bytes.len() + 1);
        match *mutation {
            Mutation::Insert { at: position, word } => {
                let index = at(position, &bytes);
                bytes.splice(index..index, DICTIONARY[word].bytes());
            }
            Mutation::Delete {
                at: position,
                length,
            } => {
                let index = at(position, &bytes);
                let end = (index + length).min(bytes.len());
                bytes.drain(index..end);
            }
            Mutation::Flip { at: position, byte } => {
                if !bytes.is_empty() {
                    let index = position % bytes.len();
                    bytes[index] = byte;
                }
            }
            Mutation::Duplicate {
                at: position,
                length,
                times,
            } => {
                let index = at(position, &bytes);
                let end = (index + length).min(bytes.len());
                let slice = bytes[index..end].repeat(times);
                bytes.splice(end..end, slice);
            }
        }
        bytes.truncate(4 * MAX_INPUT);
    }
    bytes
}

/// Random bytes, a mutated seed, or a pathological shape.
fn input(seeds: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let openers = [
        "[",
        "{\"a\":",
        "(",
        "$(",
        "while true; do ",
        "if x; then ",
        "\"",
        "'",
        "`",
        "{",
        "for /l %%i in (1,1,2) do (",
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..MAX_INPUT),
        (
            proptest::sample::select(seeds),
            proptest::collection::vec(mutation(), 0..12)
        )
            .prop_map(|(seed, mutations)| apply(&seed, &mutations)),
        (proptest::sample::select(openers.to_vec()), 1usize..3000)
            .prop_map(|(opener, depth)| opener.repeat(depth).into_bytes()),
        (0..DICTIONARY.len(), 1usize..2000)
            .prop_map(|(word, times)| DICTIONARY[word].repeat(times).into_bytes()),
    ]
}

/// Runs `check` on `CASES` inputs from `strategy` in a thread, so a hang is
/// reported as one instead of stalling the suite.
fn fuzz(target: &'static str, seeds: Vec<String>, check: fn(&[u8])) {
    let seed_value = seed(target);
    let (done, finished) = mpsc::channel();
    std::thread::Builder::new()
        .name(target.to_owned())
        .spawn(move || {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&seed_value.to_le_bytes());
            let config = Config {
                cases: CASES,
                failure_persistence: None,
                ..Config::default()
            };
            let mut runner =
                TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
            let result = runner.run(&input(seeds), |bytes| {
                let started = Instant::now();
                check(&bytes);
                let took = started.elapsed();
                prop_assert!(
                    took < PER_INPUT,
                    "{target}: one input of {} bytes took {took:?}",
                    bytes.len()
                );
                Ok(())
            });
            let _ = done.send(result.map_err(|error| error.to_string()));
        })
        .unwrap();
    match finished.recv_timeout(PER_TARGET) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("{target}: {error}"),
        Err(_) => panic!("{target}: no answer within {PER_TARGET:?}: a hang"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_profile_loader_refuses_or_accepts_any_input_without_panicking() {
    fuzz("profile loader", vec![PROFILE_SEED.to_owned()], |bytes| {
        if let Ok(profiles) = parse_json::<Vec<Profile>>(Path::new("model-rate-limits.json"), bytes)
        {
            assert!(profiles.len() <= bytes.len(), "more profiles than bytes");
            // What was accepted can be written back and read again.
            let written = serde_json::to_vec(&profiles).unwrap();
            parse_json::<Vec<Profile>>(Path::new("rewritten.json"), &written)
                .expect("a written profile file reads back");
        }
    });
}

#[test]
fn the_state_loader_refuses_or_accepts_any_input_without_panicking() {
    let seeds = vec![
        STATE_SEED.to_owned(),
        STATE_SEED_V2.to_owned(),
        STATE_SEED_V3.to_owned(),
    ];
    fuzz("state loader", seeds, |bytes| {
        if let Ok(state) = parse_state(Path::new("model-rate-limit-state.json"), bytes) {
            assert!(state.models.len() <= bytes.len(), "more models than bytes");
            // What was accepted can be written back and read again.
            let written = serde_json::to_vec(&state).unwrap();
            let again = parse_state(Path::new("rewritten.json"), &written)
                .unwrap_or_else(|error| panic!("an accepted state does not read back: {error}"));
            assert_eq!(again, state, "the state changed on a round trip");
        }
    });
}

#[test]
fn the_classifier_reads_any_answer_without_panicking() {
    let seeds = ERROR_SEEDS.iter().map(|seed| (*seed).to_owned()).collect();
    fuzz("classifier", seeds, |bytes| {
        // The first two bytes choose the status and whether the first line is a header.
        let status = bytes.first().map(|&byte| {
            if byte < 200 {
                429
            } else {
                400 + u16::from(byte)
            }
        });
        let body = text(bytes.get(2..).unwrap_or_default());
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
        assert!(
            verdict.message.chars().count() <= MAX_MESSAGE_CHARS,
            "message of {} chars",
            verdict.message.len()
        );
        if let Some(wait) = verdict.retry_after_seconds {
            assert!(wait.is_finite() && wait >= 0.0, "wait {wait}");
        }
        let _ = find_usage(&body);
    });
}

fn scan_all(bytes: &[u8]) {
    let source = text(bytes).replace("\r\n", "\n");
    let lines = source.lines().count().max(1);
    for language in [
        Language::Shell,
        Language::PowerShell,
        Language::Batch,
        Language::Python,
    ] {
        let findings = scan(language, &source);
        for finding in &findings {
            assert!(
                finding.line >= 1 && finding.line <= lines + 1,
                "{language:?}: line {} of {lines}",
                finding.line
            );
            assert!(finding.column >= 1, "{language:?}: column 0");
        }
        assert!(
            findings.len() <= 2 * source.len() + 1,
            "{language:?}: {} findings",
            findings.len()
        );
    }
}

#[test]
fn the_four_loop_scanners_read_any_text_without_panicking() {
    let seeds = ["shell", "powershell", "cmd", "python"]
        .iter()
        .flat_map(|folder| fixtures(folder))
        .collect();
    fuzz("loop scanners", seeds, scan_all);
}
