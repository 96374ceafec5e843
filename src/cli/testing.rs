//! Helpers shared by the unit tests of `cli`: parse a list of strings,
//! and the one-line error of a list that does not parse.

use std::ffi::OsString;

use super::{parse, Command, UsageError};

pub(super) fn p(args: &[&str]) -> Result<Command, UsageError> {
    parse(args.iter().map(OsString::from))
}

pub(super) fn error(args: &[&str]) -> String {
    let e = p(args).unwrap_err().0;
    assert!(!e.contains('\n'), "one line: {e}");
    e
}
