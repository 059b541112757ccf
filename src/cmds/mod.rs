//! The commands of the `iobox` binary that live in their own file: each one's arguments and run.

pub mod chain;
pub mod doctor;
