//! Arbitrary bytes as the request of any RPC: the first byte picks the RPC
//! (`gardien::grpc::validate::METHODS`), the rest is the body, decoded and
//! checked by the code the handlers run before any I/O. Whatever the bytes,
//! that code must not panic, and must answer INVALID_ARGUMENT naming a field
//! (or, for a body that is not protobuf at all, saying so), never anything
//! else.

#![no_main]

use gardien::grpc::validate::{check_encoded, METHODS};
use libfuzzer_sys::fuzz_target;
use tonic::Code;
use tonic_types::StatusExt;

/// A fixed clock (2027-01-15), so a run does not depend on when it happens.
const NOW_MS: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let path = METHODS[usize::from(selector) % METHODS.len()];
    let Some(result) = check_encoded(path, body, NOW_MS) else {
        panic!("{path} has no checks");
    };
    let Err(status) = result else {
        return;
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
    match status.get_details_bad_request() {
        Some(request) => {
            assert!(!request.field_violations.is_empty(), "{path}: {status:?}");
            for violation in request.field_violations {
                assert!(!violation.field.is_empty(), "{path}: {status:?}");
            }
        }
        None => assert!(
            status
                .message()
                .starts_with("the request is not a valid protobuf message"),
            "{path}: INVALID_ARGUMENT naming no field: {status:?}"
        ),
    }
});
