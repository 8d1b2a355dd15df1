//! The all-in-one host's leg on the external network: the bridge of the
//! first physical network mapping (`br-ex` for `physnet1:br-ex`), with the
//! address `--external-cidr` gives it, as the seed's main node reaches
//! 172.16.0.0/20. Optionally, NAT from that network out of the host's
//! other interfaces (`--external-nat`), in a table of our own.

use anyhow::Context;
use ferro_agent::driver::{run, run_with_input};

use crate::cloud::Config;

async fn ip(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    Ok(run("configuring the external bridge", "ip", &args).await?)
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
        run_with_input(
            "the external NAT table",
            "nft",
            &["-f".to_owned(), "-".to_owned()],
            &script,
        )
        .await?;
        tokio::fs::write("/proc/sys/net/ipv4/ip_forward", b"1")
            .await
            .context("enabling forwarding")?;
        tracing::info!(%network, "NAT from the external network enabled");
    }
    tracing::info!(bridge, %cidr, "external network bridge ready");
    Ok(())
}
