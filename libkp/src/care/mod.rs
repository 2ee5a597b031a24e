//! Store care: garbage collection that protects every environment and stops
//! cleanly on Ctrl-C, a full verification, and the store's format version.

mod doctor;
mod gc;
mod interrupt;
mod migrate;
mod verify;

pub use doctor::{doctor, repair, Check, Repair, RepairContext, Status};
pub use gc::{gc, GcReport};
pub use interrupt::Interrupts;
pub use migrate::{migrate, MigrateReport, CURRENT};
pub use verify::verify_store;
