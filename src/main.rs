//! `reins`: the command line (see the library).

fn main() -> std::process::ExitCode {
    reins::cli::main()
}
