//! The credentials files the seed's walkthrough starts from: `openrc` (for
//! `source`) and `clouds.yaml` (for `--os-cloud ferrostack`).

use std::path::{Path, PathBuf};

use ferro_identity::bootstrap::{ADMIN_DOMAIN, ADMIN_PROJECT, ADMIN_USER, REGION};

pub struct Credentials<'a> {
    pub auth_url: &'a str,
    pub password: &'a str,
    pub cacert: Option<&'a Path>,
    /// The web console, named in a comment for people reading the file.
    pub dashboard_url: &'a str,
}

pub fn openrc_text(c: &Credentials) -> String {
    let mut s = format!(
        "# ferrostack: credentials of the cloud administrator. Use: source openrc\n\
         # dashboard: {} (domain {ADMIN_DOMAIN}, user {ADMIN_USER}, the password below)\n",
        c.dashboard_url
    );
    let mut var = |k: &str, v: &str| s.push_str(&format!("export {k}={}\n", shell_quote(v)));
    var("OS_AUTH_URL", c.auth_url);
    var("OS_USERNAME", ADMIN_USER);
    var("OS_PASSWORD", c.password);
    var("OS_USER_DOMAIN_NAME", ADMIN_DOMAIN);
    var("OS_PROJECT_NAME", ADMIN_PROJECT);
    var("OS_PROJECT_DOMAIN_NAME", ADMIN_DOMAIN);
    var("OS_AUTH_VERSION", "3");
    var("OS_IDENTITY_API_VERSION", "3");
    var("OS_REGION_NAME", REGION);
    var("OS_AUTH_TYPE", "password");
    if let Some(ca) = c.cacert {
        var("OS_AUTH_PROTOCOL", "https");
        var("OS_CACERT", &ca.display().to_string());
    }
    s
}

pub fn clouds_yaml_text(c: &Credentials) -> String {
    let mut s = format!(
        "clouds:\n  ferrostack:\n    auth:\n      auth_url: \"{}\"\n      username: \"{ADMIN_USER}\"\n      password: \"{}\"\n      \
         user_domain_name: \"{ADMIN_DOMAIN}\"\n      project_name: \"{ADMIN_PROJECT}\"\n      project_domain_name: \"{ADMIN_DOMAIN}\"\n    \
         region_name: \"{REGION}\"\n    identity_api_version: 3\n    auth_type: password\n",
        c.auth_url, c.password
    );
    if let Some(ca) = c.cacert {
        s.push_str(&format!("    cacert: \"{}\"\n", ca.display()));
    }
    s
}

fn shell_quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:._-=".contains(c))
    {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// Writes both files (mode 0600) into `dir`; returns the openrc path.
pub fn write(dir: &Path, c: &Credentials) -> std::io::Result<PathBuf> {
    crate::files::write_private(&dir.join("clouds.yaml"), clouds_yaml_text(c).as_bytes())?;
    let path = dir.join("openrc");
    crate::files::write_private(&path, openrc_text(c).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrc_has_the_seed_variables() {
        let ca = PathBuf::from("/s/tls/ca.crt");
        let text = openrc_text(&Credentials {
            auth_url: "https://127.0.0.1:5000/v3",
            password: "p'w",
            cacert: Some(&ca),
            dashboard_url: "https://127.0.0.1:8080/",
        });
        for line in [
            "# dashboard: https://127.0.0.1:8080/ (domain admin_domain, user admin, the password below)",
            "export OS_AUTH_URL=https://127.0.0.1:5000/v3",
            "export OS_USERNAME=admin",
            "export OS_PASSWORD='p'\\''w'",
            "export OS_USER_DOMAIN_NAME=admin_domain",
            "export OS_PROJECT_NAME=admin",
            "export OS_PROJECT_DOMAIN_NAME=admin_domain",
            "export OS_AUTH_VERSION=3",
            "export OS_IDENTITY_API_VERSION=3",
            "export OS_REGION_NAME=RegionOne",
            "export OS_AUTH_TYPE=password",
            "export OS_AUTH_PROTOCOL=https",
            "export OS_CACERT=/s/tls/ca.crt",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
