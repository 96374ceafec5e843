//! MCP Sentinel: an MCP gateway. See `docs/architecture.md` for the map.

pub mod cli;
pub mod codec;
pub mod config;
