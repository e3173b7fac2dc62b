//! toolgate daemon library.
