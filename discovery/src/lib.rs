//! Discovery: trends and who to follow, computed in the background by the `discovery` role.
//!
//! Two parts, both running in every discovery process:
//!
//! - [`TrendsWorker`]: a durable consumer on the event stream, shared by every discovery
//!   process like fan-out's, counting hashtag and link use (per account per day) and
//!   favourites and reblogs (per account per post) into decayed scores in Redis
//!   (`starling_timeline::TrendKind`), marking authors active, forgetting deleted posts and
//!   asking for the suggestions of users who just followed someone or signed up.
//! - [`SuggestionJob`]: rounds that recompute every user's suggestions in batches claimed
//!   from a cursor kept in Redis, so any number of processes share a round, a batch whose
//!   worker died is claimed again, and a restarted process carries the round on.
//!
//! Who may trend or be suggested is `starling_schema::policy`'s to say; ranking is
//! `starling_schema::discovery`'s. This crate depends on the schema, the store trait, the
//! timelines' Redis side and the bus; never on the api.

mod error;
mod suggest;
mod trends;

pub use error::DiscoveryError;
pub use suggest::{RoundReport, SuggestionJob};
pub use trends::TrendsWorker;

use starling_schema::settings::DiscoverySettings;
use starling_timeline::TrendParams;

/// The trend parameters the settings give.
pub fn trend_params(settings: &DiscoverySettings) -> TrendParams {
    TrendParams {
        half_life_ms: settings.half_life_secs.max(1).saturating_mul(1_000),
        max_entries: settings.max_entries.max(1),
    }
}
