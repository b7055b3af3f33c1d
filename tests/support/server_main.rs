//! `accord-server` itself, built inside the test package for process tests.

fn main() -> std::process::ExitCode {
    accord_server::main_entry()
}
