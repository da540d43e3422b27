//! What is logged, and how: a tracing filter and the line format.

use serde::Serialize;

use super::layers::Layers;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// A tracing filter such as `info,pushgate=debug`, checked to parse.
    pub filter: String,
    pub format: LogFormat,
}

impl Logging {
    pub(super) fn read(layers: &mut Layers) -> Logging {
        let format = match layers.raw("log_format") {
            Some("json") => LogFormat::Json,
            Some("text") | None => LogFormat::Text,
            Some(other) => {
                layers.error(format!("PUSHGATE_LOG_FORMAT: `{other}` is neither `text` nor `json`"));
                LogFormat::Text
            }
        };
        let filter = layers.text("log").unwrap_or_else(|| "info".into());
        // The filter parser panics on some non-ASCII input, so it only ever sees ASCII.
        if !filter.is_ascii() {
            layers.error("PUSHGATE_LOG: a tracing filter is ASCII, like `info` or `info,pushgate=debug`");
        } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&filter) {
            layers.error(format!("PUSHGATE_LOG: {e}"));
        }
        Logging { filter, format }
    }
}
