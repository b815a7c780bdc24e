//! Cryptographic building blocks: password hashing on a bounded pool, and
//! random tokens stored only as hashes.

pub mod password;
pub mod token;
