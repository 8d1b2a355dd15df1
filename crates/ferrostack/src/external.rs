//! The all-in-one host's leg on the external network: the bridge of the
//! first physical network mapping (`br-ex` for `physnet1:br-ex`), with the
//! address `--external-cidr` gives it, as the seed's main node reaches
//! 172.16.0.0/20. Optionally, NAT from that network out of the host's
//! other interfaces (`--external-nat`), in a table of our own.

use anyhow::Context;

use crate::cloud::Config;

async fn ip(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .context("running ip")?;
    if !out.status.success() {
        anyhow::bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Makes the external bridge and gives it its address (idempotent).
pub async fn prepare(cfg: &Config) -> anyhow::Result<()> {
    let Some(cidr) = &cfg.external_cidr else {
        return Ok(());
    };
    let Some((_, bridge)) = cfg.bridge_mappings.first() else {
        anyhow::bail!("--external-cidr needs a bridge mapping");
    };
    if ip(&["link", "show", bridge]).await.is_err() {
        ip(&["link", "add", bridge, "type", "bridge"]).await?;
        tracing::info!(bridge, "external bridge created");
    }
    ip(&["addr", "replace", cidr, "dev", bridge]).await?;
    ip(&["link", "set", bridge, "up"]).await?;
    if cfg.external_nat {
        let network = ferro_agent::dataplane::nft::cidr_of(cidr)
            .with_context(|| format!("--external-cidr {cidr} is not an address with a prefix"))?;
        let script = format!(
            "table ip ferrostack-external\ndelete table ip ferrostack-external\n\
             table ip ferrostack-external {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
             ip saddr {network} oifname != \"{bridge}\" masquerade\n  }}\n}}\n"
        );
        let mut child = tokio::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .context("running nft")?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(script.as_bytes()).await?;
        }
        anyhow::ensure!(
            child.wait().await?.success(),
            "nft refused the external NAT table"
        );
        tokio::fs::write("/proc/sys/net/ipv4/ip_forward", b"1")
            .await
            .context("enabling forwarding")?;
        tracing::info!(%network, "NAT from the external network enabled");
    }
    tracing::info!(bridge, %cidr, "external network bridge ready");
    Ok(())
}
