//! Compute API microversions.
//!
//! The client names a version in `OpenStack-API-Version: compute X.Y` (or
//! the older `X-OpenStack-Nova-API-Version`); no header means 2.1, `latest`
//! means [`MAX`]. Every response is rendered for the requested version, and
//! says which it was.

use std::fmt;

/// The highest version whose behaviour this service implements throughout.
pub const MAX: Version = Version(2, 79);
pub const MIN: Version = Version(2, 1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16, pub u16);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Version {
    pub fn at_least(self, minor: u16) -> bool {
        self >= Version(2, minor)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum VersionError {
    Malformed(String),
    Unsupported(String),
}

fn parse(v: &str) -> Result<Version, VersionError> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let (a, b) = v
        .split_once('.')
        .ok_or_else(|| VersionError::Malformed(v.to_owned()))?;
    let ver = Version(
        a.parse()
            .map_err(|_| VersionError::Malformed(v.to_owned()))?,
        b.parse()
            .map_err(|_| VersionError::Malformed(v.to_owned()))?,
    );
    if ver < MIN || ver > MAX {
        return Err(VersionError::Unsupported(v.to_owned()));
    }
    Ok(ver)
}

/// The version a request asks for.
pub fn from_headers(h: &axum::http::HeaderMap) -> Result<Version, VersionError> {
    if let Some(v) = h.get("openstack-api-version").and_then(|v| v.to_str().ok()) {
        for part in v.split(',') {
            let mut words = part.split_whitespace();
            if let (Some(service), Some(ver)) = (words.next(), words.next()) {
                if service.eq_ignore_ascii_case("compute") {
                    return parse(ver);
                }
            }
        }
    }
    if let Some(v) = h
        .get("x-openstack-nova-api-version")
        .and_then(|v| v.to_str().ok())
    {
        return parse(v);
    }
    Ok(MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn h(k: &'static str, v: &'static str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(k, v.parse().unwrap());
        m
    }

    #[test]
    fn negotiation() {
        assert_eq!(from_headers(&HeaderMap::new()), Ok(Version(2, 1)));
        assert_eq!(
            from_headers(&h("openstack-api-version", "compute 2.61")),
            Ok(Version(2, 61))
        );
        assert_eq!(
            from_headers(&h("openstack-api-version", "volume 3.0, compute 2.10")),
            Ok(Version(2, 10))
        );
        assert_eq!(
            from_headers(&h("x-openstack-nova-api-version", "2.47")),
            Ok(Version(2, 47))
        );
        assert_eq!(
            from_headers(&h("openstack-api-version", "compute latest")),
            Ok(MAX)
        );
        assert!(matches!(
            from_headers(&h("openstack-api-version", "compute 2.200")),
            Err(VersionError::Unsupported(_))
        ));
        assert!(matches!(
            from_headers(&h("openstack-api-version", "compute two")),
            Err(VersionError::Malformed(_))
        ));
        assert!(Version(2, 47).at_least(47) && !Version(2, 46).at_least(47));
    }
}
