//! Code generated from `proto/` by `build.rs`.

#![allow(clippy::all, missing_docs)]

pub mod accountsecurity {
    pub mod v1 {
        tonic::include_proto!("gardien.accountsecurity.v1");
    }
}

pub mod support {
    pub mod v1 {
        tonic::include_proto!("gardien.support.v1");
    }
}

/// The encoded `FileDescriptorSet` of every gardien proto file and its
/// imports, served through reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gardien_descriptor.bin"));
