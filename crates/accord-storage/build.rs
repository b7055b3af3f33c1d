//! Compiles `proto/accord/storage/` with protox (pure Rust, no system
//! protoc) and generates its prost messages: no services, no gRPC.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "accord/storage/v1/common.proto",
        "accord/storage/v1/record.proto",
        "accord/storage/v1/views.proto",
        "accord/storage/v1/groups.proto",
    ];
    let file_paths: Vec<PathBuf> = files.iter().map(|file| proto_root.join(file)).collect();
    for path in &file_paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let descriptor_set = protox::compile(&file_paths, [&proto_root])?;
    prost_build::Config::new().compile_fds(descriptor_set)?;
    Ok(())
}
