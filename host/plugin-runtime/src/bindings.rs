//! Host bindings generated from the released WIT contract (`toolgate:plugin@0.1.0`, world
//! `plugin`). Synchronous: a call runs on the caller's thread under an epoch deadline.
//!
//! Invariant: nothing outside this crate sees these types; `limits` converts them into the
//! public ones in `types` after checking their sizes.

wasmtime::component::bindgen!({
    path: "../../wit/toolgate-plugin-0.1.0",
    world: "plugin",
});

pub(crate) use toolgate::plugin::types as wit;
