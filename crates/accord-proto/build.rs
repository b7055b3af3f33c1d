//! Compiles `proto/` with protox (pure Rust, no system protoc), writes the
//! descriptor set for reflection, and generates the prost and tonic code.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "accord/v1/common.proto",
        "accord/v1/commands.proto",
        "accord/v1/events.proto",
        "accord/v1/queries.proto",
        "accord/v1/streams.proto",
        "accord/v1/admin.proto",
        "accord/v1/services.proto",
        "accord/storage/v1/common.proto",
        "accord/storage/v1/record.proto",
        "accord/storage/v1/views.proto",
    ];
    let file_paths: Vec<PathBuf> = files.iter().map(|file| proto_root.join(file)).collect();
    let descriptor_set = protox::compile(&file_paths, [&proto_root])?;

    // Reflection describes the public contract only: the storage formats
    // are not an API.
    let mut public = descriptor_set.clone();
    public
        .file
        .retain(|file| !file.package().starts_with("accord.storage"));
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("accord_descriptor.bin"),
        prost::Message::encode_to_vec(&public),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptor_set)?;

    println!("cargo:rerun-if-changed={}", proto_root.display());
    Ok(())
}
