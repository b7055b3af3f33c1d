//! What every read of the log shares, whatever serves it (gRPC, the
//! console, consumer groups): which events a filter carries, and checks of
//! the positions and times a client names.

mod filter;
mod positions;

pub(crate) use filter::{BuyerCountries, EventFilter};
pub(crate) use positions::{MIN_POSITION_AHEAD, first_recorded_at_or_after, within_log};
