//! "Sudo mode": the signed-in person gives their password (and second factor) again before a
//! powerful act, under the sign-in limiter; audited.

use super::two_factor::record;
use super::People;
use crate::domain::EventKind;
use crate::error::ServiceError;
use crate::repo::User;
use crate::services::vocabulary::{Actor, SignInError};

impl People {
    /// "Sudo mode": the signed-in person gives their password (and second factor) again,
    /// under the sign-in limiter.
    pub async fn reauthenticate(
        &self,
        actor: Actor,
        email: &str,
        password: &str,
        code: Option<&str>,
        address: &str,
    ) -> Result<(), SignInError> {
        let me = actor.user_id.get();
        let (user, second) = self
            .limited(email, password, address, move |conn, user| {
                let second = crate::repo::two_factor::factors(conn, user.id)?;
                Ok((user, second))
            })
            .await?;
        if user.id != me {
            return Err(SignInError::WrongCredentials);
        }
        if second.passkeys && !second.totp {
            return Err(SignInError::UsePasskey);
        }
        if second.totp {
            let code = code.ok_or(SignInError::SecondFactorRequired)?;
            self.check_second_factor(actor.user_id, code, address)
                .await?;
        }
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                let user = User::find(conn, me)?.ok_or(ServiceError::NotFound)?;
                record(
                    conn,
                    &user,
                    EventKind::UserReauthenticated,
                    "confirmed their password for a powerful act",
                    now,
                )
            })
            .await
            .map_err(SignInError::Service)
    }
}
