//! pushgate as a real process (the `pushgate serve` binary) for tests that kill it with
//! SIGKILL or run several replicas on one database. It listens on 127.0.0.1 port 0; the
//! bound address is read from its JSON log.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::ADMIN_TOKEN;

pub struct Process {
    pub base: String,
    pub pid: u32,
    child: Child,
}

impl Process {
    /// Starts `pushgate serve` on `database` with the test admin token and master key.
    pub async fn start(database: &str, extra: &[(&str, &str)]) -> Process {
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PUSHGATE_DATABASE_URL", database)
            .env("PUSHGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PUSHGATE_MASTER_KEY", key)
            .env("PUSHGATE_LISTEN", "127.0.0.1:0")
            .env("PUSHGATE_LOG_FORMAT", "json")
            .env("PUSHGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in extra {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the pushgate binary starts");
        let pid = child.id().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if json["fields"]["message"] == "pushgate listening" {
                    return json["fields"]["address"].as_str().unwrap().to_owned();
                }
            }
            panic!("pushgate exited before it listened");
        })
        .await
        .expect("pushgate listens within a minute");
        // Keep reading its log, so a full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Process { base: format!("http://{address}"), pid, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no shutdown, no lease released, nothing flushed.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}
