//! Post text rules live in the domain crate (the trends worker reads links and hashtags
//! with them too); the api uses them from there.

pub use starling_schema::text::*;
