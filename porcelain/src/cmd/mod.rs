//! One file per verb: parse its options, call libkp, print.

pub mod help;
pub mod init;
pub mod new;
pub mod pin;
