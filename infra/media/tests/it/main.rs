//! The media storage conformance suite (every backend passes the same cases) and the
//! media worker against a real store.

#![allow(clippy::unwrap_used)]

mod storage;
