//! # iobox
//!
//! A privacy-first retail behaviour appliance: camera frames in, blurred faces, anonymous shopper-behaviour
//! events out. Frames flow one way: capture -> anonymize -> perceive -> track -> behaviour -> store -> views.
//!
//! # Layout
//! - [`config`]: the TOML configuration (`RawConfig` as written, `Config` validated).
//! - [`capture`]: cameras and files through GStreamer (and nokhwa for USB); per-camera bounded queues;
//!   the anonymized-video encoder. The only module that knows GStreamer or nokhwa.
//! - [`infer`]: ONNX Runtime sessions, the model manifest, preprocessing, the face detector. The only module
//!   that knows `ort`.
//! - [`anonymize`]: blurs faces in place; the only way to make an [`anonymize::AnonymizedFrame`].
//! - [`worker`]: the per-frame sequence a worker runs (faces, pose, emotion -> blur -> tracks, floor).
//! - [`track`]: short-lived anonymous track ids (ByteTrack-style), pure code.
//! - [`calibration`]: per-camera image<->floor homography, floor plan, zones and lines; pure code.
//! - [`fuse`]: per-camera tracks on the shared floor plan joined into store tracks (one per visit) by
//!   position and time alone, across overlapping views and along camera adjacencies; pure code.
//! - [`behaviour`]: zone dwell, line crossings, queues, shelf interactions, journeys, mood and heat; pure.
//! - [`alerts`]: real-time alert rules over the behaviour events (pure), published to MQTT and/or a webhook
//!   from threads of their own.
//! - [`store`]: SQLite schema, migrations, the batched writer thread, k-suppressed report queries and raw
//!   exports. The only module that knows rusqlite.
//! - [`jobs`]: `iobox blur`, `run`, `analyze`, `calibrate`, `report` and `export`, end to end.
//! - [`heatmap`]: floor-plan heatmaps (presence, dwell) with a colour bar, from k-suppressed cells.
//! - [`overlay`]: pictures: calibration overlays on anonymized frames and on the floor plan.
//! - [`live`]: what a run shares with the dashboard in its process: the latest anonymized still of each
//!   camera and the recent alerts.
//! - [`server`]: the staff dashboard and its JSON API (axum on a small tokio runtime; logins, roles,
//!   k-suppressed figures, heatmaps, anonymized previews, calibration overlays, OpenAPI).
//! - [`geometry`]: boxes and points with their coordinate space in their names.
//! - [`stats`], [`stop`], [`paths`]: timing rings, the shared stop request, finding bundled files.
//! - [`clock`]: the run's time, injectable: monotonic for durations, anchored once to the wall clock.

pub mod alerts;
pub mod anonymize;
pub mod behaviour;
pub mod buckets;
pub mod calibration;
pub mod capture;
pub mod chain;
pub mod clock;
pub mod config;
pub mod fuse;
#[cfg(test)]
mod fuzz;
pub mod geometry;
pub mod heatmap;
pub mod infer;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod overlay;
pub mod paths;
pub mod server;
pub mod stats;
pub mod stop;
pub mod store;
#[cfg(feature = "raw-pixels")]
pub mod testing;
pub mod track;
pub mod when;
pub mod worker;
