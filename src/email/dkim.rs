//! DKIM with lettre's signer: an RSA or Ed25519 key from PEM, the signing configuration, and
//! the DNS record that publishes it.

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::message::Mailbox;

/// A DKIM private key as PEM: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
pub enum DkimKey {
    Rsa(rsa::RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl DkimKey {
    pub fn from_pem(pem: &str) -> anyhow::Result<DkimKey> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        if let Ok(key) = rsa::RsaPrivateKey::from_pkcs1_pem(pem) {
            return Ok(DkimKey::Rsa(key));
        }
        if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(DkimKey::Rsa(key));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(DkimKey::Ed25519(key));
        }
        anyhow::bail!("not an RSA or Ed25519 private key in PEM (e.g. `openssl genrsa 2048`, `openssl genpkey -algorithm ed25519`)")
    }

    /// Signs with From, To, Subject, Date and Message-ID, relaxed canonicalisation.
    pub fn config(&self, selector: &str, domain: &str) -> anyhow::Result<DkimConfig> {
        use base64::Engine as _;
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let key = match self {
            DkimKey::Rsa(key) => DkimSigningKey::new(
                &key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?,
                DkimSigningAlgorithm::Rsa,
            ),
            DkimKey::Ed25519(key) => DkimSigningKey::new(
                &base64::engine::general_purpose::STANDARD.encode(key.to_bytes()),
                DkimSigningAlgorithm::Ed25519,
            ),
        }
        .map_err(|e| anyhow::anyhow!("the DKIM key can't sign: {e}"))?;
        let headers = ["From", "To", "Subject", "Date", "Message-ID"]
            .into_iter()
            .map(HeaderName::new_from_ascii_str)
            .collect();
        Ok(DkimConfig::new(
            selector.to_owned(),
            domain.to_owned(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        ))
    }

    /// The TXT record to publish at `<selector>._domainkey.<domain>`.
    pub fn dns_record(&self) -> anyhow::Result<String> {
        use base64::Engine as _;
        use rsa::pkcs8::EncodePublicKey as _;
        let (k, p) = match self {
            DkimKey::Rsa(key) => (
                "rsa",
                base64::engine::general_purpose::STANDARD
                    .encode(key.to_public_key().to_public_key_der()?.as_bytes()),
            ),
            DkimKey::Ed25519(key) => (
                "ed25519",
                base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes()),
            ),
        };
        Ok(format!("v=DKIM1; k={k}; p={p}"))
    }
}

/// The domain of the sender's address (`apitokens <no-reply@acme.example>` → `acme.example`).
pub fn sender_domain(from: &str) -> anyhow::Result<String> {
    let mailbox: Mailbox = from
        .parse()
        .map_err(|e| anyhow::anyhow!("APITOKENS_MAIL_FROM: {e}"))?;
    Ok(mailbox.email.domain().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::message::{compose, Envelope, Recipient};
    use crate::email::render::Rendered;

    #[test]
    fn an_ed25519_dkim_key_in_pkcs8_pem_signs_and_publishes() {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let pem = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .to_pkcs8_pem(Default::default())
            .unwrap();
        let key = DkimKey::from_pem(&pem).unwrap();
        let record = key.dns_record().unwrap();
        assert!(record.starts_with("v=DKIM1; k=ed25519; p="), "{record}");
        assert_eq!(record.len(), "v=DKIM1; k=ed25519; p=".len() + 44);
        let config = key.config("s1", "acme.example").unwrap();
        let rendered = Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        };
        let to = Recipient {
            name: "A".into(),
            email: "a@acme.example".into(),
        };
        let mut m = compose(
            &Envelope::new(
                "a <no-reply@acme.example>",
                &to,
                "https://tokens.acme.example",
            ),
            rendered,
        )
        .unwrap();
        m.sign(&config);
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("DKIM-Signature: v=1; a=ed25519-sha256;"),
            "{raw}"
        );
        assert!(
            DkimKey::from_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }
}
