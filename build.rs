//! Compiles `proto/` with protox (no system `protoc` needed), writes the
//! encoded descriptor set used by server reflection, and generates the tonic
//! clients and servers.

use std::{env, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "gardien/accountsecurity/v1/account_security_service.proto",
    "gardien/support/v1/support_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("gardien_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .generate_default_stubs(true)
        // INVALID_ARGUMENT, not INTERNAL, for a request that does not decode.
        .codec_path("crate::grpc::codec::Codec")
        .compile_fds(fds)?;
    Ok(())
}
