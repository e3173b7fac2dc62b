//! Placeholder; replaced by the sandbox.
