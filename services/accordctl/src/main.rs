//! `accordctl`: see the `accordctl` library for the commands.

fn main() -> std::process::ExitCode {
    accordctl::main_entry()
}
