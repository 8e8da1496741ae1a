//! How long the sh/bash loop scanner takes on files full of findings: the
//! scan must stay linear in the number of loops and findings per file.
//!
//! Run with `cargo bench --bench validate_shell`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use specsmith::validate::loops::{scan, Language};

/// `count` one-line endless loops, one per line.
fn one_line_loops(count: usize) -> String {
    "while true; do poll; done\n".repeat(count)
}

/// About one MiB of one-line loops, each with its own command and a sleep.
fn one_mebibyte_of_loops() -> String {
    let mut text = String::new();
    let mut index = 0usize;
    while text.len() < 1 << 20 {
        text.push_str(&format!("while true; do poll{index}; sleep 1; done\n"));
        index += 1;
    }
    text
}

/// Waits on the outside world, each with its own deadline and message.
fn guarded_waits(count: usize) -> String {
    let mut text = String::from("deadline=$((SECONDS + 60))\n");
    for index in 0..count {
        text.push_str(&format!(
            "until curl -sf \"$url{index}\"; do (( SECONDS > deadline )) && {{ echo late >&2; exit 1; }}; sleep 1; done\n"
        ));
    }
    text
}

fn benchmarks(criterion: &mut Criterion) {
    let loops = one_line_loops(16_000);
    criterion.bench_function("shell: 16,000 one-line loops", |bencher| {
        bencher.iter(|| scan(Language::Shell, black_box(&loops)))
    });
    let mebibyte = one_mebibyte_of_loops();
    criterion.bench_function("shell: 1 MiB of one-line loops", |bencher| {
        bencher.iter(|| scan(Language::Shell, black_box(&mebibyte)))
    });
    let waits = guarded_waits(4_000);
    criterion.bench_function("shell: 4,000 guarded waits", |bencher| {
        bencher.iter(|| scan(Language::Shell, black_box(&waits)))
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(10);
    targets = benchmarks
}
criterion_main!(group);
