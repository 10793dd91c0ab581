//! Ids from the path, parsed once at the edge by one extractor: `Id<TokenId>` reads the
//! route's `{tokenId}`, `Id<UserId>` its `{userId}`, `Id<AccountId>` its `{clientId}` (Gcore's
//! name for an account). Anything that isn't a positive decimal number answers 404 in the
//! shape of where it was asked — JSON under `/iam`, SCIM's under `/scim`, a page elsewhere —
//! exactly like an id that doesn't exist, so a probe learns nothing from the difference.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::domain::{
    AccountId, DeliveryId, PasskeyId, ServiceAccountId, TokenId, TrustPolicyId, UserId, WebhookId,
};

/// An id type and the route segment it comes from.
pub trait PathId: std::str::FromStr + Copy + 'static {
    const SEGMENT: &'static str;
}

impl PathId for TokenId {
    const SEGMENT: &'static str = "tokenId";
}

impl PathId for UserId {
    const SEGMENT: &'static str = "userId";
}

impl PathId for PasskeyId {
    const SEGMENT: &'static str = "passkeyId";
}

impl PathId for WebhookId {
    const SEGMENT: &'static str = "webhookId";
}

impl PathId for DeliveryId {
    const SEGMENT: &'static str = "deliveryId";
}

impl PathId for ServiceAccountId {
    const SEGMENT: &'static str = "serviceAccountId";
}

impl PathId for TrustPolicyId {
    const SEGMENT: &'static str = "policyId";
}

impl PathId for AccountId {
    const SEGMENT: &'static str = "clientId";
}

/// The id of type `T` in the request's path.
#[derive(Debug, Clone, Copy)]
pub struct Id<T>(pub T);

impl<T> Id<T> {
    pub fn get(self) -> T {
        self.0
    }
}

/// A path id that isn't one: "not found", in the shape of the part of the app it was asked of.
#[derive(Debug)]
pub struct NoSuchId {
    under: Under,
}

#[derive(Debug, Clone, Copy)]
enum Under {
    Api,
    Scim,
    Pages,
}

impl NoSuchId {
    pub fn of(req: &HttpRequest) -> NoSuchId {
        let path = req.path();
        let under = if path.starts_with("/iam/") {
            Under::Api
        } else if path.starts_with("/scim/") {
            Under::Scim
        } else {
            Under::Pages
        };
        NoSuchId { under }
    }
}

impl std::fmt::Display for NoSuchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}

impl ResponseError for NoSuchId {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::NOT_FOUND
    }

    fn error_response(&self) -> HttpResponse {
        match self.under {
            Under::Api => super::api::error::ApiError::NotFound.error_response(),
            Under::Scim => super::scim::no_such_user().error_response(),
            Under::Pages => super::WebError::NotFound.error_response(),
        }
    }
}

impl<T: PathId> FromRequest for Id<T> {
    type Error = NoSuchId;
    type Future = Ready<Result<Id<T>, NoSuchId>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.match_info()
                .get(T::SEGMENT)
                .and_then(|raw| raw.parse::<T>().ok())
                .map(Id)
                .ok_or_else(|| NoSuchId::of(req)),
        )
    }
}
