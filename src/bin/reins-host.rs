//! `reins-host`: the session host, started by `reins run` (see the
//! library).

fn main() -> std::process::ExitCode {
    reins::cli::host_main()
}
