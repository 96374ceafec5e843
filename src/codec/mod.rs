//! Sans-IO codecs: JSON-RPC 2.0 messages, Server-Sent Events, and the MCP
//! constants the gateway reads. No sockets and no threads live here.

pub mod idscan;
pub mod jsonrpc;
pub mod mcp;
pub mod sse;

pub use jsonrpc::{code, ErrorObj, Id, Message};
