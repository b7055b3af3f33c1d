//! `accord-server`: see `accord_server` for what it serves.

// glibc's allocator was a third of the server's CPU under load (malloc,
// free and their chunk bookkeeping, mostly from sled's copy-on-write
// nodes); mimalloc does the same work for much less (BENCHMARKS.md,
// "Allocator"). Every binary that runs the server or opens its data
// directory declares it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    accord_server::main_entry()
}
