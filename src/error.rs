//! The service layer's error. The web edge maps it to pages (`web::error`) and JSON (`web::api`).

/// Messages for one or more input fields, keyed by the field's name in the form or API body.
pub type FieldErrors = Vec<(&'static str, String)>;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Absent, or not visible to the caller: the two look the same from outside.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    #[error("{0}")]
    Conflict(String),
    /// A change to a user that the user's active tokens stand in the way of.
    #[error("blocked by active tokens: {tokens:?}")]
    TokensInTheWay {
        reason: Blocker,
        tokens: Vec<(crate::domain::TokenId, String)>,
    },
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// The database can't be reached or can't take the work now (503, try again shortly).
    /// The text is for the log, never for the caller.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Too much expensive work (password hashing) in flight: try again in a moment (503).
    #[error("busy")]
    Busy,
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(vec![(field, message.into())])
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// Lowering the role would leave the user holding a token above their rights.
    HigherRole,
    /// A user with active tokens can't be removed.
    ActiveTokens,
}
