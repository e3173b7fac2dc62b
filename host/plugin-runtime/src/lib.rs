//! Placeholder; replaced by the plugin runtime.
