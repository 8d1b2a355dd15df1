//! Passwords (argon2id, hashed off the async threads) and access tokens (JWT
//! signed with `SECRET_KEY`).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use jsonwebtoken::{
    decode, encode, errors::ErrorKind, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    pub name: String,
    pub email: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
}

#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    algorithm: jsonwebtoken::Algorithm,
    lifetime: Duration,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tokens {
    pub fn new(secret: &str, algorithm: jsonwebtoken::Algorithm, lifetime: Duration) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            algorithm,
            lifetime,
        }
    }

    pub fn issue(
        &self,
        id: i64,
        name: &str,
        email: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now();
        let claims = Claims {
            sub: id.to_string(),
            name: name.to_owned(),
            email: email.to_owned(),
            iat,
            exp: iat + self.lifetime.as_secs(),
        };
        encode(&Header::new(self.algorithm), &claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        decode::<Claims>(token, &self.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// Hashes on a blocking thread: argon2 is meant to be slow.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Checks `password` against `hash`. With no hash (the email is unknown) it
/// still spends one argon2 computation, so that a login takes as long whether
/// the account exists or not.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false),
        None => {
            let salt = SaltString::generate(&mut OsRng);
            let _ = Argon2::default().hash_password(password.as_bytes(), &salt);
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;

    #[test]
    fn a_token_verifies_with_its_secret_only() {
        let t = Tokens::new("s3cret", Algorithm::HS256, Duration::from_secs(60));
        let jwt = t.issue(7, "Ana", "ana@example.com").unwrap();
        let c = t.verify(&jwt).unwrap();
        assert_eq!((c.sub.as_str(), c.email.as_str()), ("7", "ana@example.com"));
        let other = Tokens::new("other", Algorithm::HS256, Duration::from_secs(60));
        assert_eq!(other.verify(&jwt), Err(TokenError::Invalid));
        assert_eq!(t.verify("not.a.token"), Err(TokenError::Invalid));
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let t = Tokens::new("s3cret", Algorithm::HS256, Duration::from_secs(60));
        let old = Claims {
            sub: "1".into(),
            name: "a".into(),
            email: "a@b".into(),
            iat: now() - 3600,
            exp: now() - 600,
        };
        let jwt = encode(
            &Header::new(Algorithm::HS256),
            &old,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert_eq!(t.verify(&jwt), Err(TokenError::Expired));
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong".into(), Some(h)).await);
        assert!(!verify_password("anything".into(), None).await);
    }
}
