//! A thin HTTP client for the few Elasticsearch/OpenSearch calls the sink makes, and the
//! mapping of their failures to [`SinkError`] kinds.

use super::SearchSettings;
use reqwest::{Method, StatusCode};
use strata_core::{ErrorKind, SinkError};

/// The sink's name in errors and metrics.
pub(super) const SINK: &str = "opensearch";

/// An answer with its status and body.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The HTTP side of the sink.
pub(super) struct Http {
    client: reqwest::Client,
    base: String,
    credentials: Option<(String, Option<String>)>,
}

impl Http {
    pub(super) fn new(settings: &SearchSettings) -> Result<Http, SinkError> {
        // reqwest is built without a default crypto provider: install ring (a no-op when the
        // process already has a provider).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                SinkError::new(
                    SINK,
                    ErrorKind::Config,
                    format!("building the HTTP client: {e}"),
                )
                .with_source(e)
            })?;
        let base = settings.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Config,
                "url must start with http:// or https:// (e.g. http://127.0.0.1:9200)",
            ));
        }
        let credentials = settings
            .username
            .clone()
            .map(|user| (user, settings.password.clone()));
        Ok(Http {
            client,
            base,
            credentials,
        })
    }

    /// Sends one request; `Err` only when no answer came back (a status is the caller's to
    /// judge, see [`status_error`]).
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        doing: &str,
    ) -> Result<Answer, SinkError> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, password.as_ref());
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let transport = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Connection
            };
            // reqwest's messages carry the URL, which never holds credentials here (they
            // go in a header).
            SinkError::new(
                SINK,
                kind,
                format!("{doing}: {e} (is the server up and reachable at the configured url?)"),
            )
            .with_source(e)
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer { status, body })
    }
}

/// The error an unsuccessful status stands for.
pub(super) fn status_error(doing: &str, answer: &Answer) -> SinkError {
    let status = answer.status;
    let reason = error_reason(&answer.json()).unwrap_or_else(|| {
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned()
    });
    let (kind, hint) = match status.as_u16() {
        429 | 503 => (
            ErrorKind::Throttled,
            " (the cluster asks to slow down; retrying)",
        ),
        401 | 403 => (
            ErrorKind::Config,
            " (check username/password and the user's index privileges)",
        ),
        500..=599 => (ErrorKind::Connection, ""),
        _ => (ErrorKind::Rejected, ""),
    };
    SinkError::new(
        SINK,
        kind,
        format!("{doing}: HTTP {status}: {reason}{hint}"),
    )
}

/// The kind of a per-item bulk failure with HTTP status `status`.
pub(super) fn item_kind(status: u16) -> ErrorKind {
    match status {
        429 | 503 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Connection,
        _ => ErrorKind::Rejected,
    }
}

/// `type: reason` of an Elasticsearch error object (or of a body holding one under
/// `error`), without the field value previews Elasticsearch puts in some reasons: those
/// are row data and must not reach logs.
pub(super) fn error_reason(value: &serde_json::Value) -> Option<String> {
    let error = value.get("error").unwrap_or(value);
    if let Some(text) = error.as_str() {
        return Some(text.to_owned());
    }
    let kind = error.get("type")?.as_str()?;
    let reason = error.get("reason").and_then(|r| r.as_str()).unwrap_or("");
    let reason = match reason.find(". Preview of field's value") {
        Some(at) => &reason[..at],
        None => reason,
    };
    let mut text = format!("{kind}: {reason}");
    if let Some(cause) = error
        .get("caused_by")
        .and_then(|c| c.get("type"))
        .and_then(|t| t.as_str())
    {
        // The cause's reason often quotes the value ("For input string: …"): type only.
        text.push_str(&format!(" (caused by {cause})"));
    }
    Some(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_drop_value_previews() {
        let item = json!({
            "type": "mapper_parsing_exception",
            "reason": "failed to parse field [s] of type [long] in document with id '2'. Preview of field's value: 'secret'",
            "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"secret\""}
        });
        let text = error_reason(&item).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(
            text.contains("failed to parse field [s] of type [long]"),
            "{text}"
        );
    }

    #[test]
    fn statuses_map_to_retry_kinds() {
        assert_eq!(item_kind(429), ErrorKind::Throttled);
        assert_eq!(item_kind(503), ErrorKind::Throttled);
        assert_eq!(item_kind(400), ErrorKind::Rejected);
        let answer = Answer {
            status: StatusCode::UNAUTHORIZED,
            body: b"{}".to_vec(),
        };
        assert_eq!(status_error("x", &answer).kind, ErrorKind::Config);
    }
}
