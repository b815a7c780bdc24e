//! Cryptographic building blocks: password hashing on a bounded pool,
//! random tokens stored only as hashes, TOTP, and AES-256-GCM sealing.

pub mod password;
pub mod secretbox;
pub mod token;
pub mod totp;
