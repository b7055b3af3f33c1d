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
        "accord/v1/consumer_groups.proto",
        "accord/v1/transparency.proto",
        "accord/v1/services.proto",
        "accord/cluster/v1/groups.proto",
    ];
    let file_paths: Vec<PathBuf> = files.iter().map(|file| proto_root.join(file)).collect();
    let descriptor_set = protox::compile(&file_paths, [&proto_root])?;

    // Reflection describes the public contract only: what nodes say to
    // each other is not an API (the storage formats are `accord-storage`'s).
    let mut public = descriptor_set.clone();
    public
        .file
        .retain(|file| !file.package().starts_with("accord.cluster"));
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("accord_descriptor.bin"),
        prost::Message::encode_to_vec(&public),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptor_set.clone())?;

    // The server side of `EventLog` once more, answering `Subscribe` with
    // `SubscribeFrame` (a `SubscribeResponse` encoded once and shared by
    // every subscriber) instead of the message; every other type is the one
    // generated above. Clients are unchanged: the bytes are the same.
    let mut event_log = descriptor_set;
    event_log
        .file
        .retain(|file| file.name() == "accord/v1/services.proto");
    for file in &mut event_log.file {
        file.service.retain(|service| service.name() == "EventLog");
        file.message_type.clear();
        file.enum_type.clear();
    }
    let frames = out_dir.join("frames");
    fs::create_dir_all(&frames)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&frames)
        .extern_path(
            ".accord.v1.SubscribeResponse",
            "crate::frame::SubscribeFrame",
        )
        .extern_path(".accord.v1", "crate::v1")
        .compile_fds(event_log)?;

    println!("cargo:rerun-if-changed={}", proto_root.display());
    Ok(())
}
