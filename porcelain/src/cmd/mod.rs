//! One file per verb: parse its options, call libkp, print.

pub mod help;
pub mod image;
pub mod init;
