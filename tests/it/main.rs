//! iobox's integration tests: one binary, one module per area. Everything runs on real media from
//! tests/data and samples/, the bundled models, real GStreamer pipelines and real SQLite files.

mod common;

mod alerts;
mod anonymize;
mod calibration;
mod capture;
mod chain;
mod errors;
mod events;
mod heatmap;
mod metrics;
mod models;
mod people;
mod perception;
mod pg;
mod privacy;
mod report;
mod rtsp;
mod server;
mod shoppers;
mod store_loop;
