//! The `specsmith-rs` binary: parse, delegate to the library, map the result to an exit code.

fn main() -> std::process::ExitCode {
    specsmith::cli::main()
}
