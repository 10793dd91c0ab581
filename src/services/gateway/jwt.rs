//! Short-lived JWTs for the API (`Bearer`): issued at login, refreshed once each.
//!
//! Signed RS256, as Gcore signs them, so any service can verify one offline with the public
//! key published at `/iam/.well-known/jwks.json`. Each key is named by its RFC 7638
//! thumbprint (`kid`); after a rotation the previous key stays published, and accepted,
//! until the last JWT it signed (a 24-hour refresh token) has expired.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::config::JwtKeyFiles;
use crate::domain::{Role, Secret};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, User};
use crate::services::vocabulary::{Actor, Credential, Unauthorized};

pub const ACCESS_TTL: Duration = Duration::hours(1);
pub const REFRESH_TTL: Duration = Duration::hours(24);

/// The claims of our JWTs: Gcore's, plus `iat` and `role` (our role id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: i64,
    pub user_type: String,
    pub user_groups: Vec<String>,
    pub client_id: i64,
    pub email: String,
    pub username: String,
    pub sso_entity: Option<String>,
    pub is_admin: bool,
    pub client_name: String,
    pub exchangeable: bool,
    /// On an access token: the `jti` of the refresh token issued with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rjti: Option<String>,
    pub role: i32,
    /// The user's JWT generation when issued (ours): an older one is refused.
    #[serde(default)]
    pub gen: i32,
}

/// One RSA key: its name, what verifies with it, and its public half as a JWK.
struct PublicKey {
    kid: String,
    decoding: DecodingKey,
    jwk: Value,
}

impl PublicKey {
    fn of(key: &rsa::RsaPrivateKey) -> PublicKey {
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        // RFC 7638: SHA-256 over the required members, in lexicographic order, no spaces.
        let thumbprint = Sha256::digest(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        let kid = URL_SAFE_NO_PAD.encode(thumbprint);
        PublicKey {
            decoding: DecodingKey::from_rsa_raw_components(
                &key.n().to_bytes_be(),
                &key.e().to_bytes_be(),
            ),
            jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}),
            kid,
        }
    }
}

/// The signing key, and the one it replaced until that one's last JWT has expired.
pub struct JwtKeys {
    encoding: EncodingKey,
    current: PublicKey,
    previous: Option<(PublicKey, OffsetDateTime)>,
}

pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

pub(crate) fn parse_private_key(pem: &str) -> anyhow::Result<rsa::RsaPrivateKey> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| {
            anyhow::anyhow!(
                "the JWT signing key is not an RSA private key in PEM (PKCS#8 or PKCS#1); \
                 make one with: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"
            )
        })
}

impl JwtKeys {
    pub fn new(files: &JwtKeyFiles) -> anyhow::Result<JwtKeys> {
        let key = parse_private_key(&files.current_pem)?;
        let der = key
            .to_pkcs1_der()
            .map_err(|e| anyhow::anyhow!("can't encode the JWT signing key: {e}"))?;
        let previous = match &files.previous {
            Some((pem, retired)) => Some((PublicKey::of(&parse_private_key(pem)?), *retired)),
            None => None,
        };
        Ok(JwtKeys {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            current: PublicKey::of(&key),
            previous,
        })
    }

    /// The previous key, while a JWT it signed can still be alive.
    fn previous(&self, now: OffsetDateTime) -> Option<&PublicKey> {
        self.previous
            .as_ref()
            .filter(|(_, retired)| now < *retired + REFRESH_TTL)
            .map(|(key, _)| key)
    }

    /// The public keys as a JWK Set (`/iam/.well-known/jwks.json`).
    pub fn jwks(&self, now: OffsetDateTime) -> Value {
        let keys: Vec<&Value> = std::iter::once(&self.current)
            .chain(self.previous(now))
            .map(|k| &k.jwk)
            .collect();
        json!({ "keys": keys })
    }

    pub fn issue(
        &self,
        user: &User,
        account: &Account,
        now: OffsetDateTime,
    ) -> ServiceResult<TokenPair> {
        let role = user.role;
        let claims = |token_type: &str, ttl: Duration, rjti: Option<String>| Claims {
            token_type: token_type.into(),
            exp: (now + ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            jti: Secret::generate().into_exposed(),
            user_id: user.id,
            user_type: "common".into(),
            user_groups: vec![role.name().to_string()],
            client_id: user.account_id,
            email: user.email.clone(),
            username: user.email.clone(),
            sso_entity: None,
            is_admin: role.is_admin(),
            client_name: account.name.clone(),
            exchangeable: false,
            rjti,
            role: role.id(),
            gen: user.jwt_generation,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.current.kid.clone());
        let encode = |c: &Claims| {
            jsonwebtoken::encode(&header, c, &self.encoding)
                .map_err(|e| ServiceError::Internal(anyhow::anyhow!("JWT encoding failed: {e}")))
        };
        let refresh = claims("refresh", REFRESH_TTL, None);
        let access = claims("access", ACCESS_TTL, Some(refresh.jti.clone()));
        Ok(TokenPair {
            access: encode(&access)?,
            refresh: encode(&refresh)?,
        })
    }

    /// Checks signature (RS256 only, by a key we publish), type and expiry (against our
    /// clock, so tests can move time).
    pub fn decode(
        &self,
        jwt: &str,
        token_type: &str,
        now: OffsetDateTime,
    ) -> Result<Claims, Unauthorized> {
        if jwt.len() > 4096 {
            return Err(Unauthorized);
        }
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| Unauthorized)?;
        let key = match header.kid.as_deref() {
            None => &self.current,
            Some(kid) if kid == self.current.kid => &self.current,
            Some(kid) => self
                .previous(now)
                .filter(|k| k.kid == kid)
                .ok_or(Unauthorized)?,
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(jwt, &key.decoding, &validation)
            .map_err(|_| Unauthorized)?
            .claims;
        if claims.token_type != token_type || claims.exp <= now.unix_timestamp() {
            return Err(Unauthorized);
        }
        Ok(claims)
    }

    /// A Bearer access token as a credential; the role is the one it was issued with.
    pub fn verify_access(
        &self,
        jwt: &str,
        now: OffsetDateTime,
    ) -> Result<Credential, Unauthorized> {
        let claims = self.decode(jwt, "access", now)?;
        let role = Role::from_id(claims.role).ok_or(Unauthorized)?;
        Ok(Credential {
            actor: Actor {
                user_id: crate::domain::UserId::new(claims.user_id),
                account_id: crate::domain::AccountId::new(claims.client_id),
                role,
                origin: Default::default(),
            },
            token_id: None,
            stale: false,
            allowed: None,
            routes: None,
            rate: None,
            quota: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;
    use time::macros::datetime;

    fn user() -> User {
        let mut u = User::fixture(3, 7, Role::Engineers);
        u.email = "alice@example.com".into();
        u
    }

    fn account() -> Account {
        Account {
            id: 7,
            name: "Acme".into(),
            created_at: datetime!(2026-01-01 0:00),
            leak_response: Default::default(),
            scim_token_hash: None,
            max_lifetime_days: None,
            expiry_required: false,
            mfa_required: false,
            max_idle_days: None,
            routes_required: false,
            max_rate_limit: None,
        }
    }

    /// Two keys, made once for all tests (RSA key generation is the slow part).
    fn pems() -> &'static (String, String) {
        static PEMS: OnceLock<(String, String)> = OnceLock::new();
        PEMS.get_or_init(|| {
            (
                crate::config::generate_rsa_pem().unwrap(),
                crate::config::generate_rsa_pem().unwrap(),
            )
        })
    }

    fn keys() -> JwtKeys {
        JwtKeys::new(&JwtKeyFiles {
            current_pem: pems().0.clone(),
            previous: None,
        })
        .unwrap()
    }

    fn other_keys() -> JwtKeys {
        JwtKeys::new(&JwtKeyFiles {
            current_pem: pems().1.clone(),
            previous: None,
        })
        .unwrap()
    }

    #[test]
    fn access_tokens_carry_gcore_claims_and_expire_after_an_hour() {
        let now = datetime!(2026-11-28 10:00 UTC);
        let pair = keys().issue(&user(), &account(), now).unwrap();
        let header = jsonwebtoken::decode_header(&pair.access).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(keys().current.kid.as_str()));
        let claims = keys().decode(&pair.access, "access", now).unwrap();
        assert_eq!(
            (claims.user_id, claims.client_id, claims.is_admin),
            (3, 7, false)
        );
        assert_eq!(claims.user_groups, vec!["Engineers".to_string()]);
        assert_eq!(
            (claims.user_type.as_str(), claims.username.as_str()),
            ("common", "alice@example.com")
        );
        assert_eq!(claims.client_name, "Acme");
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(keys()
            .decode(&pair.access, "access", now + Duration::minutes(59))
            .is_ok());
        assert!(keys()
            .decode(&pair.access, "access", now + Duration::hours(1))
            .is_err());
        let refresh = keys().decode(&pair.refresh, "refresh", now).unwrap();
        assert_eq!(refresh.exp - refresh.iat, 24 * 3600);
        assert_eq!(claims.rjti.as_deref(), Some(refresh.jti.as_str()));
    }

    #[test]
    fn the_wrong_type_a_tampered_signature_or_another_key_is_refused() {
        let now = datetime!(2026-11-28 10:00 UTC);
        let pair = keys().issue(&user(), &account(), now).unwrap();
        assert!(
            keys().verify_access(&pair.refresh, now).is_err(),
            "refresh is not access"
        );
        assert!(keys().decode(&pair.access, "refresh", now).is_err());
        let mut tampered = pair.access.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys().verify_access(&tampered, now).is_err());
        let forged = other_keys().issue(&user(), &account(), now).unwrap();
        assert!(keys().verify_access(&forged.access, now).is_err());
        assert!(keys().verify_access("not.a.jwt", now).is_err());
        assert!(keys().verify_access(&"a".repeat(10_000), now).is_err());
        // An HS256 token "signed" with the public key (algorithm confusion) is refused.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &keys().decode(&pair.access, "access", now).unwrap(),
            &EncodingKey::from_secret(keys().current.jwk.to_string().as_bytes()),
        )
        .unwrap();
        assert!(keys().verify_access(&hs, now).is_err());
    }

    #[test]
    fn after_a_rotation_the_old_key_verifies_until_its_last_jwt_expires() {
        let rotated_at = datetime!(2026-11-28 10:00 UTC);
        let old = keys().issue(&user(), &account(), rotated_at).unwrap();
        let rotated = JwtKeys::new(&JwtKeyFiles {
            current_pem: pems().1.clone(),
            previous: Some((pems().0.clone(), rotated_at)),
        })
        .unwrap();
        let kids = |k: &JwtKeys, at| -> Vec<String> {
            k.jwks(at)["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["kid"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            kids(&rotated, rotated_at),
            vec![other_keys().current.kid.clone(), keys().current.kid.clone()]
        );
        assert!(rotated.verify_access(&old.access, rotated_at).is_ok());
        let later = rotated_at + Duration::hours(23);
        assert!(rotated.decode(&old.refresh, "refresh", later).is_ok());
        let gone = rotated_at + REFRESH_TTL;
        assert_eq!(kids(&rotated, gone), vec![other_keys().current.kid.clone()]);
        assert!(rotated.decode(&old.refresh, "refresh", gone).is_err());
        let new = rotated.issue(&user(), &account(), later).unwrap();
        assert!(rotated.verify_access(&new.access, later).is_ok());
    }
}
