//! How long the PowerShell, batch and Python loop scanners take on a 1 MiB
//! file of one-line loops (every one a finding) and of one-line waits.
//!
//! Run with `cargo bench --bench loops`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use specsmith::validate::loops::{scan, Language};

/// Just under 1 MiB of `line` repeated.
fn mebibyte_of(line: &str) -> String {
    line.repeat(((1 << 20) - 1) / line.len())
}

fn benchmarks(criterion: &mut Criterion) {
    let cases = [
        (
            "powershell_while_true",
            Language::PowerShell,
            "while ($true) { Start-Sleep 1 }\n",
        ),
        (
            "powershell_wait",
            Language::PowerShell,
            "while (-not (Test-Path $f)) { Start-Sleep 1 }\n",
        ),
        (
            "powershell_tail",
            Language::PowerShell,
            "Get-Content $log -Wait\n",
        ),
        (
            "batch_goto",
            Language::Batch,
            ":wait\ntimeout /t 1\ngoto wait\n",
        ),
        (
            "batch_conditional_goto",
            Language::Batch,
            ":wait\nif errorlevel 1 (timeout /t 2 & goto wait)\n",
        ),
        (
            "python_while_true",
            Language::Python,
            "while True: time.sleep(1)\n",
        ),
        (
            "python_wait",
            Language::Python,
            "while not os.path.exists(m): time.sleep(1)\n",
        ),
    ];
    let mut group = criterion.benchmark_group("loops_1mib");
    group.sample_size(10);
    for (name, language, line) in cases {
        let source = mebibyte_of(line);
        group.bench_function(name, |bench| {
            bench.iter(|| scan(language, black_box(&source)).len());
        });
    }
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
