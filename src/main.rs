//! The `candor` command line: a thin front over the `candor` library.

mod cli;

fn main() -> std::process::ExitCode {
    candor::engine::tune_allocator();
    // Die quietly on a closed pipe (`candor ... | head`) like other command-line tools.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::main()
}
