//! Host bindings generated from each supported WIT contract: `toolgate:plugin@0.1.0` (released,
//! world `plugin`: describe, plan, parse) and `toolgate:plugin@0.2.0` (the same plus
//! `plan-scan`). Synchronous: a call runs on the caller's thread under an epoch deadline.
//!
//! Invariant: nothing outside this crate sees these types. The runtime works in the newest
//! contract's types (`wit`); `contract` converts a 0.1.0 plugin's answers into them, and
//! `limits` converts them into the public ones in `types` after checking their sizes.

/// The released 0.1.0 contract: plugins built against it keep loading unchanged.
pub(crate) mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/toolgate-plugin-0.1.0",
        world: "plugin",
    });
}

/// The 0.2.0 contract: 0.1.0 plus directory scans by template type.
pub(crate) mod v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/toolgate-plugin-0.2.0",
        world: "plugin",
    });
}

/// The 0.1.0 contract's types, for converting a 0.1.0 plugin's calls.
pub(crate) use v0_1_0::toolgate::plugin::types as wit_v0_1_0;
/// The newest contract's types: what the rest of the runtime reads and writes.
pub(crate) use v0_2_0::toolgate::plugin::types as wit;
