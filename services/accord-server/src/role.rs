//! The roles a token can hold, and what each grants.

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Commands.
    Writer,
    /// Queries and streams.
    Reader,
    /// Admin.
    Operator,
    /// What a reader may do, and consuming from consumer groups (join,
    /// acknowledge, skip), which changes a group's durable state.
    Consumer,
}

impl Role {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "writer" => Some(Role::Writer),
            "reader" => Some(Role::Reader),
            "operator" => Some(Role::Operator),
            "consumer" => Some(Role::Consumer),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Consumer => "consumer",
        }
    }

    /// Whether a token holding `held` may make a call that needs `self`:
    /// a consumer may do what a reader may.
    pub(crate) fn granted_by(self, held: &[Role]) -> bool {
        held.contains(&self) || (self == Role::Reader && held.contains(&Role::Consumer))
    }
}
