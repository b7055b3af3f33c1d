//! `accordctl` itself, built inside the test package for the operator tests.

fn main() -> std::process::ExitCode {
    accordctl::main_entry()
}
