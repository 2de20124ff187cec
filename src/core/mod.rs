//! The sans-IO core: every OAuth decision, as plain functions over plain
//! values. No async, no worker types, no clock or entropy reads (time and a
//! `Rng` are parameters), no panics on input.

pub mod authorize;
pub mod cache;
pub mod callback;
pub mod cimd;
pub mod config;
pub mod crypto;
pub mod error;
pub mod health;
pub mod http;
pub mod metadata;
pub mod pages;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod routes;
pub mod session;
pub mod token;
pub mod types;
pub mod upstream;
