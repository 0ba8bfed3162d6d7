//! A small typed client of the HTTP API (blocking, on `ureq`): the routes of the OpenAPI
//! document that a sender and a reader need, with the server's own request and answer types.
//! `cauce demo` and the load benchmarks send through it.
//!
//! ```no_run
//! use cauce_ingest::client::{Answer, Body, Client};
//! use cauce_store::Kind;
//!
//! let client = Client::new("http://127.0.0.1:8080", "ck_…");
//! let items = [serde_json::json!({"event_id": "e1", "name": "open", "timestamp": 1764590400000_i64})];
//! match client.send(Kind::Event, &Body::batch(&items)?)? {
//!     Answer::Done(answer) => println!("{} accepted, {} rejected", answer.accepted, answer.rejected.len()),
//!     Answer::RetryAfter(wait) => std::thread::sleep(wait),
//! }
//! # Ok::<(), cauce_ingest::IngestError>(())
//! ```

use std::io::Write as _;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use cauce_store::Kind;

use crate::api::{BatchResponse, ErrorBody, Health, SegmentAnswer, API_KEY_HEADER};
use crate::error::{IngestError, Result};

/// A request body: JSON, gzip-compressed or not.
#[derive(Debug, Clone)]
pub struct Body {
    bytes: Vec<u8>,
    gzip: bool,
}

impl Body {
    /// A body of JSON bytes, sent as they are.
    pub fn json(bytes: impl Into<Vec<u8>>) -> Body {
        Body {
            bytes: bytes.into(),
            gzip: false,
        }
    }

    /// `{"batch": items}`.
    pub fn batch<T: Serialize>(items: &[T]) -> Result<Body> {
        #[derive(Serialize)]
        struct Batch<'a, T> {
            batch: &'a [T],
        }
        Ok(Body::json(serde_json::to_vec(&Batch { batch: items })?))
    }

    /// The same JSON, gzip-compressed (`Content-Encoding: gzip`), as the analytics SDKs send.
    pub fn gzip(self) -> Body {
        if self.gzip {
            return self;
        }
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(self.bytes.len() / 4),
            flate2::Compression::fast(),
        );
        gz.write_all(&self.bytes)
            .expect("writing to a Vec cannot fail");
        Body {
            bytes: gz.finish().expect("writing to a Vec cannot fail"),
            gzip: true,
        }
    }

    /// The bytes on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What the API answered a send: done (every item accepted or rejected with its reason), or
/// come back later (429 or 503, with the server's `Retry-After`).
#[derive(Debug)]
pub enum Answer<T> {
    /// The body was read; the answer says what became of each item. A 400 of a batch whose
    /// every item was rejected is one, too.
    Done(T),
    /// Throttled or unavailable: nothing was accepted; send it again after this long.
    RetryAfter(Duration),
}

impl<T> Answer<T> {
    /// The same answer, its body mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Done(t) => Answer::Done(f(t)),
            Answer::RetryAfter(wait) => Answer::RetryAfter(wait),
        }
    }
}

/// One page of a user's timeline: the records as JSON objects, each with its `kind`.
#[derive(Debug, Clone, Deserialize)]
pub struct TimelinePage {
    /// The app.
    pub app_id: String,
    /// The user.
    pub user_id: String,
    /// The records, newest first.
    pub records: Vec<serde_json::Value>,
}

/// A client of one server, sending as one app.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    key: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `base` (such as `http://127.0.0.1:8080`), with the app's key.
    pub fn new(base: &str, key: &str) -> Client {
        Client::with_timeout(base, key, Duration::from_secs(60))
    }

    /// A client whose requests give up after `timeout`.
    pub fn with_timeout(base: &str, key: &str, timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            agent,
        }
    }

    /// `POST /v1/{events,stories,tests}`.
    pub fn send(&self, kind: Kind, body: &Body) -> Result<Answer<BatchResponse>> {
        let reply = self.post(&format!("/v1/{}", kind.plural()), body)?;
        match reply.status {
            202 | 207 => Ok(Answer::Done(decode(&reply)?)),
            // A 400 that lists the items is an answer; one without them is a refusal.
            400 => match serde_json::from_str::<BatchResponse>(&reply.text) {
                Ok(answer) => Ok(Answer::Done(answer)),
                Err(_) => Err(refusal(reply.status, &reply.text)),
            },
            _ => retry_or_refusal(&reply),
        }
    }

    /// `POST /v1/batch`: a batch of the Segment tracking protocol, as the analytics SDKs send.
    pub fn send_sdk_batch(&self, body: &Body) -> Result<Answer<SegmentAnswer>> {
        let reply = self.post("/v1/batch", body)?;
        match reply.status {
            200 => Ok(Answer::Done(decode(&reply)?)),
            _ => retry_or_refusal(&reply),
        }
    }

    /// `GET /healthz`.
    pub fn health(&self) -> Result<Health> {
        decode(&self.get("/healthz")?)
    }

    /// `GET /v1/users/{user_id}/timeline?limit=`.
    pub fn timeline(&self, user_id: &str, limit: usize) -> Result<TimelinePage> {
        let reply = self.get(&format!("/v1/users/{user_id}/timeline?limit={limit}"))?;
        match reply.status {
            200 => decode(&reply),
            status => Err(refusal(status, &reply.text)),
        }
    }

    fn post(&self, path: &str, body: &Body) -> Result<Reply> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header(API_KEY_HEADER, &self.key)
            .header("content-type", "application/json");
        if body.gzip {
            req = req.header("content-encoding", "gzip");
        }
        read(req.send(&body.bytes[..]))
    }

    fn get(&self, path: &str) -> Result<Reply> {
        read(
            self.agent
                .get(format!("{}{path}", self.base))
                .header(API_KEY_HEADER, &self.key)
                .call(),
        )
    }
}

/// An answer as it came: its status, `Retry-After` (seconds) and body.
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    text: String,
}

fn read(res: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply> {
    let mut res = res.map_err(|e| IngestError::Http(e.to_string()))?;
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let text = res
        .body_mut()
        .read_to_string()
        .map_err(|e| IngestError::Http(e.to_string()))?;
    Ok(Reply {
        status: res.status().as_u16(),
        retry_after,
        text,
    })
}

/// The body as `T`; a body that is not one is a refusal (a 503's health, say).
fn decode<T: DeserializeOwned>(reply: &Reply) -> Result<T> {
    serde_json::from_str(&reply.text).map_err(|_| refusal(reply.status, &reply.text))
}

/// A 429 or 503 asks to come back (after `Retry-After`, 1 s when absent); anything else is a
/// refusal.
fn retry_or_refusal<T>(reply: &Reply) -> Result<Answer<T>> {
    match reply.status {
        429 | 503 => Ok(Answer::RetryAfter(Duration::from_secs(
            reply.retry_after.unwrap_or(1),
        ))),
        status => Err(refusal(status, &reply.text)),
    }
}

/// The API's refusal: its status, code and message (or the body as it came).
fn refusal(status: u16, text: &str) -> IngestError {
    let body = serde_json::from_str::<ErrorBody>(text).unwrap_or_else(|_| ErrorBody {
        error: "unexpected_answer".to_owned(),
        message: text.chars().take(500).collect(),
    });
    IngestError::Refused {
        status,
        code: body.error,
        message: body.message,
    }
}
