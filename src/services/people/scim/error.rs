//! What SCIM work answers when it refuses: a problem of RFC 7644 §3.12's shape, or a
//! service error.

use crate::domain::scim::ScimProblem;
use crate::error::ServiceError;

/// What a SCIM operation ends in: a service error, or a problem in SCIM's own terms.
#[derive(Debug)]
pub enum ScimError {
    Problem(ScimProblem),
    Service(ServiceError),
}

impl From<ServiceError> for ScimError {
    fn from(e: ServiceError) -> Self {
        ScimError::Service(e)
    }
}

impl From<diesel::result::Error> for ScimError {
    fn from(e: diesel::result::Error) -> Self {
        ScimError::Service(e.into())
    }
}

impl From<ScimProblem> for ScimError {
    fn from(p: ScimProblem) -> Self {
        ScimError::Problem(p)
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

pub(crate) fn not_found(id: i64) -> ScimError {
    ScimProblem::new(404, None, format!("There is no user {id} in this account.")).into()
}

pub(crate) fn conflict(detail: impl Into<String>) -> ScimError {
    ScimProblem::new(409, Some("uniqueness"), detail).into()
}
