//! Benchmark support for pollhttp.
