//! `accord-server`: see `accord_server` for what it serves.

fn main() -> std::process::ExitCode {
    accord_server::main_entry()
}
