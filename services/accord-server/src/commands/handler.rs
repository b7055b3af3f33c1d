//! Turns checked domain commands into durable events, all-or-nothing. The
//! wire commands are parsed and validated before (`input.rs`, through the
//! `Executor`); this module speaks the domain only.

use std::collections::HashMap;
use std::sync::Arc;

use accord_domain::{Agreement, DomainError, EventMetadata, ExpectedVersion, ValidCommand, decide};
use accord_store::{AppendItem, AppendOutcome, EventLog, Fingerprint, StoreError};

use super::state_cache::StateCache;
use crate::error::ApiError;

/// How many times a command is decided again after losing a race to a
/// writer of the same agreement on another node (or a stale cache entry).
const MAX_ATTEMPTS: usize = 16;

/// Locks that serialize this node's writers of one agreement, so that they
/// queue instead of racing and retrying. Agreements share a stripe by hash.
const LOCK_STRIPES: usize = 4_096;

/// A command parsed and validated, ready to decide.
pub(crate) struct CheckedCommand {
    /// The command's idempotency key.
    pub command_id: String,
    /// The digest that tells a retry from a reused id.
    pub fingerprint: Fingerprint,
    /// The version the caller expects the agreement at, if any.
    pub expected: Option<ExpectedVersion>,
    /// What the event will carry besides its payload.
    pub metadata: EventMetadata,
    /// The domain command, validated.
    pub command: ValidCommand,
}

/// Decides and appends commands.
pub(crate) struct CommandHandler {
    log: Arc<dyn EventLog>,
    cache: StateCache,
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl CommandHandler {
    /// Returns a handler appending to `log`.
    pub(crate) fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            log,
            cache: StateCache::default(),
            stripes: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Appends one event per command, all or none, and returns where each
    /// stands.
    pub(crate) async fn execute(
        &self,
        parsed: Vec<CheckedCommand>,
    ) -> Result<Vec<AppendOutcome>, ApiError> {
        let mut stripes: Vec<usize> = parsed
            .iter()
            .map(|command| stripe_of(command.command.agreement_id()))
            .collect();
        // Always in ascending order, so that two batches never deadlock.
        stripes.sort_unstable();
        stripes.dedup();
        let mut _guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            _guards.push(self.stripes[stripe].lock().await);
        }
        let mut last_conflict = None;
        let mut caught_up = false;
        for attempt in 0..MAX_ATTEMPTS {
            // The writer checks every command id, so the first attempt looks
            // ids up only for commands the domain refuses (a retry whose
            // effect is already in the agreement). After a conflict, which a
            // duplicate inside a batch also causes, every id is looked up.
            let look_up_first = attempt > 0;
            match self.attempt(&parsed, look_up_first).await {
                Err(ApiError::Store(conflict @ StoreError::WrongExpectedVersion { .. })) => {
                    if let StoreError::WrongExpectedVersion { agreement_id, .. } = &conflict {
                        self.cache.forget(agreement_id);
                    }
                    last_conflict = Some(conflict);
                }
                // Refused against this node's view: with other nodes writing
                // the same log, that view may lag. Catch up once and decide
                // again if it did.
                Err(ApiError::Domain(refusal)) if !caught_up && is_state_refusal(&refusal) => {
                    caught_up = true;
                    if !self.catch_up(&parsed).await? {
                        return Err(ApiError::Domain(refusal));
                    }
                }
                result => return result,
            }
        }
        Err(last_conflict
            .map(ApiError::Store)
            .unwrap_or_else(|| ApiError::Unavailable("too much contention".into())))
    }

    /// Brings the log's view of every agreement in `parsed` up to date;
    /// true if that view may have lagged (other nodes write the log), in
    /// which case the cached states are dropped.
    async fn catch_up(&self, parsed: &[CheckedCommand]) -> Result<bool, ApiError> {
        let mut behind = false;
        let mut seen = std::collections::HashSet::new();
        for command in parsed {
            let agreement_id = command.command.agreement_id();
            if seen.insert(agreement_id) && self.log.catch_up_agreement(agreement_id).await? {
                self.cache.forget(agreement_id);
                behind = true;
            }
        }
        Ok(behind)
    }

    /// Decides every command against the latest known state and appends.
    async fn attempt(
        &self,
        parsed: &[CheckedCommand],
        look_up_first: bool,
    ) -> Result<Vec<AppendOutcome>, ApiError> {
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; parsed.len()];
        let mut items = Vec::new();
        let mut appended_at = Vec::new();
        let mut working: HashMap<String, Option<Agreement>> = HashMap::new();
        for (index, command) in parsed.iter().enumerate() {
            if look_up_first && let Some(outcome) = self.recorded(command).await? {
                outcomes[index] = Some(outcome);
                continue;
            }
            match self.decide_one(&mut working, command).await {
                Ok(item) => {
                    items.push(item);
                    appended_at.push(index);
                }
                Err(refusal) if look_up_first => return Err(refusal),
                Err(refusal) => match self.recorded(command).await? {
                    Some(outcome) => outcomes[index] = Some(outcome),
                    None => return Err(refusal),
                },
            }
        }
        if !items.is_empty() {
            let appended = self.log.append(items).await?;
            self.remember(working, &appended);
            for (index, outcome) in appended_at.into_iter().zip(appended) {
                outcomes[index] = Some(outcome);
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// The original outcome of a command already in the log, or None; an id
    /// reused for a different command is ALREADY_EXISTS.
    async fn recorded(&self, command: &CheckedCommand) -> Result<Option<AppendOutcome>, ApiError> {
        let Some(record) = self.log.find_command(&command.command_id).await? else {
            return Ok(None);
        };
        if record.fingerprint != command.fingerprint {
            return Err(StoreError::CommandIdConflict {
                command_id: command.command_id.clone(),
            }
            .into());
        }
        Ok(Some(record.outcome))
    }

    /// Decides one command against the working state of its agreement and
    /// returns what to append; the working state moves on with the event.
    async fn decide_one(
        &self,
        working: &mut HashMap<String, Option<Agreement>>,
        command: &CheckedCommand,
    ) -> Result<AppendItem, ApiError> {
        let agreement_id = command.command.agreement_id();
        if !working.contains_key(agreement_id) {
            let state = self.load(agreement_id).await?;
            working.insert(agreement_id.to_owned(), state);
        }
        let state = working.get_mut(agreement_id).expect("inserted above");
        let version = state.as_ref().map_or(0, |agreement| agreement.version);
        if state.is_none() && !command.command.opens_agreement() {
            return Err(DomainError::NotFound {
                agreement_id: agreement_id.to_owned(),
            }
            .into());
        }
        if let Some(expected) = command.expected {
            expected.check(agreement_id, version)?;
        }
        let event = decide(state.as_ref(), &command.command)?;
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        *state = Agreement::next(state.take(), agreement_id, &event);
        Ok(AppendItem {
            agreement_id: agreement_id.to_owned(),
            expected,
            command_id: command.command_id.clone(),
            fingerprint: command.fingerprint,
            metadata: command.metadata.clone(),
            event,
        })
    }

    /// Caches the states the appended events produced.
    fn remember(&self, working: HashMap<String, Option<Agreement>>, appended: &[AppendOutcome]) {
        for (agreement_id, state) in working {
            let last = appended
                .iter()
                .rfind(|outcome| outcome.agreement_id == agreement_id);
            match (state, last) {
                (Some(mut agreement), Some(outcome))
                    if !outcome.duplicate && outcome.version == agreement.version =>
                {
                    agreement.position = outcome.position;
                    self.cache.put(agreement);
                }
                (_, Some(_)) => self.cache.forget(&agreement_id),
                (_, None) => {}
            }
        }
    }

    /// Returns the agreement's latest durable state.
    async fn load(&self, agreement_id: &str) -> Result<Option<Agreement>, ApiError> {
        if let Some(agreement) = self.cache.get(agreement_id) {
            return Ok(Some(agreement));
        }
        // Folded a read (at most `READ_BYTES`) at a time, never the whole stream at once.
        let mut state = None;
        let mut next = 1;
        loop {
            let events = self.log.read_stream(agreement_id, next, usize::MAX).await?;
            let Some(last) = events.last() else { break };
            next = last.version + 1;
            state = events.iter().fold(state, Agreement::fold);
        }
        if let Some(agreement) = &state {
            self.cache.put(agreement.clone());
        }
        Ok(state)
    }
}

/// A refusal that depends on the agreement's state (not on the command alone).
fn is_state_refusal(refusal: &DomainError) -> bool {
    !matches!(refusal, DomainError::Invalid(_))
}

fn stripe_of(agreement_id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    agreement_id.hash(&mut hasher);
    (hasher.finish() % LOCK_STRIPES as u64) as usize
}
