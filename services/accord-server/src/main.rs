//! `accord-server`: see `accord_server` for what it serves.

// glibc's allocator was a third of the server's CPU under load (malloc,
// free and their chunk bookkeeping, mostly from sled's copy-on-write
// nodes); mimalloc serves the same pattern with far less work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    accord_server::main_entry()
}
