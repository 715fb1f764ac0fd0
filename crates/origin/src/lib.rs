//! The rules-of-origin engine (see `shared/ORIGIN.md`). Pure: no I/O besides loading the
//! agreement rule data it is given.
