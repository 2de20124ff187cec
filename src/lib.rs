//! attio-oauth-broker: an OAuth broker for Attio, run as a Cloudflare Worker.
//!
//! `core` holds every OAuth rule as plain Rust (tested with `cargo test` on
//! the host); `shell` adapts it to the Workers runtime and exists only on
//! wasm32.

pub mod core;

#[cfg(target_arch = "wasm32")]
mod shell;
