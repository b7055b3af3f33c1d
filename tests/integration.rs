//! Accord's end-to-end tests: the real server (in this process, or as a
//! child process that can be killed), real nats-server processes, real file
//! systems (tmpfs, FUSE), driven through the generated clients. One module
//! per area; run one area with `cargo test -p accord-tests --test
//! integration -- power_cut::`.

mod cluster;
mod commands;
mod console;
mod console_hardening;
mod consumer_groups;
mod crash_loop;
mod durability;
mod errors;
mod execute_stream;
mod failed_writes;
mod filtered_reads;
mod hostile;
mod import_atomicity;
mod nats_store;
mod network_limits;
mod old_data;
mod operations;
mod operator;
mod power_cut;
mod queries;
mod read_models_follow_the_log;
mod readme;
mod reads;
mod security;
mod signed_checkpoints;
mod storage_faults;
mod store_conformance;
mod stream_memory;
mod streams;
mod sync_calls;
mod tls;
mod transparency;
