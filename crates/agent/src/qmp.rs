//! A minimal QMP client: connect to a VM's control socket, negotiate, run
//! one command, return its `return` value (events are skipped).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::driver::{DriverError, Result};

const TIMEOUT: Duration = Duration::from_secs(5);

fn failed(msg: String) -> DriverError {
    DriverError::Failed(msg)
}

/// Runs `command` (with `arguments`, if any) on the QMP socket at `sock`.
pub async fn execute(sock: &Path, command: &str, arguments: Option<Value>) -> Result<Value> {
    tokio::time::timeout(TIMEOUT, run(sock, command, arguments))
        .await
        .map_err(|_| failed(format!("QMP {command}: no answer within {TIMEOUT:?}")))?
}

async fn run(sock: &Path, command: &str, arguments: Option<Value>) -> Result<Value> {
    let stream = UnixStream::connect(sock)
        .await
        .map_err(|e| failed(format!("QMP connect {}: {e}", sock.display())))?;
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    // Greeting.
    lines
        .next_line()
        .await
        .map_err(|e| failed(format!("QMP greeting: {e}")))?;
    let send = |v: Value| {
        let mut s = v.to_string();
        s.push('\n');
        s
    };
    w.write_all(send(json!({"execute": "qmp_capabilities"})).as_bytes())
        .await
        .map_err(|e| failed(e.to_string()))?;
    read_return(&mut lines).await?;
    let mut cmd = json!({"execute": command});
    if let Some(a) = arguments {
        cmd["arguments"] = a;
    }
    w.write_all(send(cmd).as_bytes())
        .await
        .map_err(|e| failed(e.to_string()))?;
    read_return(&mut lines).await
}

async fn read_return(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> Result<Value> {
    loop {
        let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| failed(format!("QMP read: {e}")))?
        else {
            return Err(failed("QMP connection closed".into()));
        };
        let v: Value =
            serde_json::from_str(&line).map_err(|e| failed(format!("QMP reply {line:?}: {e}")))?;
        if let Some(r) = v.get("return") {
            return Ok(r.clone());
        }
        if let Some(e) = v.get("error") {
            return Err(failed(format!("QMP error: {e}")));
        }
    }
}
