//! A TLS certificate as HAProxy reads it: one PEM file with the
//! certificate, its intermediates and its private key. Built from a
//! certificate container's secrets or from one secret holding the whole
//! PEM bundle, and checked here (a parsable X.509 certificate, an
//! unencrypted private key) so a bad one is refused at the API, not found
//! later on the network node.

use x509_parser::prelude::{FromDer, X509Certificate};

/// What HAProxy's `crt` takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateBundle {
    pub pem: String,
    /// The certificate's subject, for logs and messages.
    pub subject: String,
}

/// Why PEM text is not a usable certificate.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn blocks(text: &str, what: &str) -> Result<Vec<pem::Pem>, Invalid> {
    pem::parse_many(text).map_err(|e| Invalid(format!("the {what} is not PEM: {e}")))
}

/// Checks `certificate` (the first certificate is the server's; more are
/// taken as intermediates), `intermediates` and `key`, and joins them.
pub fn bundle(
    certificate: &str,
    intermediates: Option<&str>,
    key: &str,
) -> Result<CertificateBundle, Invalid> {
    let certs: Vec<pem::Pem> = blocks(certificate, "certificate")?
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .collect();
    let Some(first) = certs.first() else {
        return Err(Invalid("no certificate was found in the PEM text".into()));
    };
    let (_, x509) = X509Certificate::from_der(first.contents())
        .map_err(|e| Invalid(format!("the certificate can't be read: {e}")))?;
    let subject = x509.subject().to_string();
    let mut chain = certs.clone();
    if let Some(text) = intermediates {
        for b in blocks(text, "intermediates")? {
            if b.tag() != "CERTIFICATE" {
                return Err(Invalid(
                    "the intermediates hold something that is not a certificate".into(),
                ));
            }
            X509Certificate::from_der(b.contents())
                .map_err(|e| Invalid(format!("an intermediate can't be read: {e}")))?;
            chain.push(b);
        }
    }
    let keys: Vec<pem::Pem> = blocks(key, "private key")?
        .into_iter()
        .filter(|b| b.tag().ends_with("PRIVATE KEY"))
        .collect();
    let key = match keys.as_slice() {
        [k] if k.tag().contains("ENCRYPTED") => {
            return Err(Invalid(
                "the private key is encrypted: store it without a passphrase".into(),
            ))
        }
        [k] => k.clone(),
        [] => return Err(Invalid("no private key was found in the PEM text".into())),
        _ => return Err(Invalid("more than one private key was given".into())),
    };
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let mut pem = pem::encode_many_config(&chain, lf);
    pem.push_str(&pem::encode_config(&key, lf));
    Ok(CertificateBundle { pem, subject })
}

/// One PEM text holding the certificate, any intermediates and the key.
pub fn from_pem_bundle(text: &str) -> Result<CertificateBundle, Invalid> {
    bundle(text, None, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, made for these tests.
    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["www.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_make_a_bundle() {
        let (cert, key) = pair();
        let b = bundle(&cert, None, &key).unwrap();
        assert!(b.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(b.pem.contains("PRIVATE KEY-----"));
        assert_eq!(b, from_pem_bundle(&format!("{cert}{key}")).unwrap());
    }

    #[test]
    fn what_is_not_a_certificate_is_refused_with_its_reason() {
        let (cert, key) = pair();
        assert!(bundle("hello", None, &key)
            .unwrap_err()
            .0
            .contains("no certificate"));
        assert!(bundle(&cert, None, "")
            .unwrap_err()
            .0
            .contains("no private key"));
        let garbled = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(bundle(garbled, None, &key)
            .unwrap_err()
            .0
            .contains("can't be read"));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(bundle(&cert, None, encrypted)
            .unwrap_err()
            .0
            .contains("encrypted"));
        assert!(bundle(&cert, Some(&key), &key)
            .unwrap_err()
            .0
            .contains("intermediates"));
    }
}
