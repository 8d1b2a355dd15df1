//! The cloud's contract CA: made on a controller's first start (or by the
//! first `ferrostack host add`), kept in `<state>/contract/`, and used to
//! sign the certificates controllers and hosts present to each other.
//!
//! Names inside certificates say what their holder is: a host's common name
//! is `host:NAME`, a controller's `controller`. Host certificates come from
//! the host's own key (it sends a CSR; the key never leaves the host).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// The common name of a controller's certificates.
pub const CONTROLLER_CN: &str = "controller";

/// The common name of host `name`'s certificate.
pub fn host_cn(name: &str) -> String {
    format!("host:{name}")
}

/// Lower-case hex SHA-256 of DER bytes: how certificates are named in the
/// database and pinned in join tokens.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The CA, loaded with its key.
pub struct Ca {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    issuer: Certificate,
    key: KeyPair,
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::CommonName, "ferrostack contract CA");
    p.distinguished_name
        .push(DnType::OrganizationName, "ferrostack");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("contract")
}

impl Ca {
    /// Loads the CA under `<state>/contract`, creating it if absent.
    pub fn load_or_create(state_dir: &Path) -> anyhow::Result<Ca> {
        let dir = dir(state_dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let (key, cert_pem) = if key_path.exists() && cert_path.exists() {
            let key = KeyPair::from_pem(&std::fs::read_to_string(&key_path)?)
                .context("reading the contract CA key")?;
            (key, std::fs::read_to_string(&cert_path)?)
        } else {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            crate::files::write_private(&key_path, key.serialize_pem().as_bytes())?;
            crate::files::write_private(&cert_path, cert.pem().as_bytes())?;
            (key, cert.pem())
        };
        let cert_der = parse_pem_cert(&cert_pem)?;
        // Same name and key as the file: only this copy acts as the issuer.
        let issuer = ca_params()?.self_signed(&key)?;
        Ok(Ca {
            cert_pem,
            cert_der,
            issuer,
            key,
        })
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    fn leaf(
        &self,
        cn: &str,
        dns: &[String],
        ips: &[IpAddr],
        days: i64,
    ) -> anyhow::Result<CertificateParams> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = dns
            .iter()
            .filter(|d| !d.is_empty())
            .map(|d| {
                d.parse::<IpAddr>()
                    .map(SanType::IpAddress)
                    .or_else(|_| Ok::<_, rcgen::Error>(SanType::DnsName(d.clone().try_into()?)))
            })
            .collect::<Result<_, _>>()?;
        p.subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = time_now();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(days);
        Ok(p)
    }

    /// Signs the key in a host's CSR as `host:NAME`, for its name and the
    /// address it advertises (its agent endpoint is reached there).
    pub fn sign_host(&self, name: &str, csr_pem: &str, ip: IpAddr) -> anyhow::Result<String> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| anyhow::anyhow!("the certificate request is unreadable: {e}"))?;
        csr.params = self.leaf(&host_cn(name), &[name.to_owned()], &[ip], 3650)?;
        Ok(csr.signed_by(&self.issuer, &self.key)?.pem())
    }

    /// A fresh key and certificate for this controller, valid for `names`
    /// (server side of the contract port, client side towards agents).
    pub fn controller_identity(&self, names: &[String]) -> anyhow::Result<Identity> {
        let key = KeyPair::generate()?;
        let cert =
            self.leaf(CONTROLLER_CN, names, &[], 365)?
                .signed_by(&key, &self.issuer, &self.key)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A certificate and its private key, in PEM.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Shows the certificate, never the key.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn cert_der(&self) -> anyhow::Result<CertificateDer<'static>> {
        parse_pem_cert(&self.cert_pem)
    }

    pub fn key_der(&self) -> anyhow::Result<PrivateKeyDer<'static>> {
        let key = KeyPair::from_pem(&self.key_pem).context("reading a private key")?;
        Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
    }

    /// For reqwest: the certificate and key in one PEM.
    pub fn reqwest(&self) -> anyhow::Result<reqwest::Identity> {
        reqwest::Identity::from_pem(format!("{}\n{}", self.key_pem, self.cert_pem).as_bytes())
            .context("loading a client certificate")
    }
}

/// A new key and a CSR for it (a joining host's side).
pub fn host_key_and_csr(name: &str) -> anyhow::Result<(KeyPair, String)> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, host_cn(name));
    let csr = p.serialize_request(&key)?;
    Ok((key, csr.pem()?))
}

pub fn parse_pem_cert(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    let block = pem::parse(pem).map_err(|e| anyhow::anyhow!("a certificate is unreadable: {e}"))?;
    Ok(CertificateDer::from(block.contents().to_vec()))
}

/// Roots holding only the contract CA.
pub fn roots(ca_der: &CertificateDer<'static>) -> anyhow::Result<Arc<rustls::RootCertStore>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.clone())?;
    Ok(Arc::new(roots))
}

/// The common name of a certificate, if it has one (checked after rustls
/// verified the chain).
pub fn common_name(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_certificates_carry_the_host_name_and_verify_against_the_ca() {
        let dir = std::env::temp_dir().join(format!("ferro-pki-{}", std::process::id()));
        let ca = Ca::load_or_create(&dir).unwrap();
        let again = Ca::load_or_create(&dir).unwrap();
        assert_eq!(ca.fingerprint(), again.fingerprint(), "the CA is kept");
        let (_key, csr) = host_key_and_csr("h1").unwrap();
        let pem = ca
            .sign_host("h1", &csr, "10.0.0.5".parse().unwrap())
            .unwrap();
        let der = parse_pem_cert(&pem).unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("host:h1"));
        let roots = roots(&ca.cert_der).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots,
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(&der, &[], rustls::pki_types::UnixTime::now())
            .expect("a host certificate verifies as a client");
        assert!(ca
            .sign_host("h1", "not a csr", "10.0.0.5".parse().unwrap())
            .is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
