//! MCP Sentinel: an MCP gateway. See `docs/architecture.md` for the map of
//! modules, threads, channels and locks.

pub mod api;
pub mod auth;
pub mod backend;
pub mod bridge;
pub mod check;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod events;
pub mod exit;
pub mod http;
pub mod manage;
pub mod profiles;
pub mod registry;
pub mod route;
pub mod runtime;
pub mod secfile;
pub mod server;
pub mod session;
pub mod thread;
pub mod transport;
pub mod tui;
pub mod util;
