//! The `candor` command line: a thin front over the `candor` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
