//! Simulated DCGM exporter (owned by the DCGM work; stub).
#![allow(dead_code)]
