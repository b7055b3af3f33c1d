//! `accord-bench` itself, built inside the test package so that the
//! README's benchmark command runs against the server under test.

fn main() -> std::process::ExitCode {
    accord_bench::main_entry()
}
