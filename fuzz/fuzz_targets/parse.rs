//! libFuzzer target: every parser of untrusted input in the core, on the
//! same bytes. None may panic. See `fuzz/src/lib.rs` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    attio_oauth_broker_fuzz::check(data);
});
