//! Store care: garbage collection that protects every environment and stops
//! cleanly on Ctrl-C, a full verification, and the store's format version.

mod gc;
mod interrupt;
mod verify;

pub use gc::{gc, GcReport};
pub use interrupt::Interrupts;
pub use verify::verify_store;
