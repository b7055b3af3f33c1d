//! `accord-bench`: the load generator (see the library).

fn main() -> std::process::ExitCode {
    accord_bench::main_entry()
}
