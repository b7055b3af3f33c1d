//! Accord's read models and the projector that keeps them. The projector
//! follows the log from its checkpoint; each batch of read-model writes is
//! committed atomically with the checkpoint, so a crash never double-applies
//! or skips an event. Read models are derived data: they can always be
//! rebuilt from the log.

mod error;
mod gaps;
mod keys;
mod positions;
mod postings;
mod project;
mod projector;
mod queries;
mod read_ahead;
mod read_models;
mod rebuild;
mod rebuilt;
mod reconcile;
mod stored;
mod writes;

pub use error::ProjectionError;
pub use positions::{IndexedPositions, PositionQuery};
pub use project::PendingChanges;
pub use projector::{Projector, ProjectorHandle};
pub use queries::{AgreementFilter, AgreementPage, LocalizationReport};
pub use read_models::{PROJECTION_NAME, ReadModels};
pub use rebuild::{RebuildStatus, rebuild};
pub use rebuilt::{Rebuild, RebuildClaim};
pub use reconcile::{Divergence, reconcile};
