//! An HTTP event receiver for forwarding tests: a small HTTP/1.1 server on 127.0.0.1 that
//! keeps every request (headers, body with gzip undone, NDJSON lines) and answers as the
//! test says: 200, 429 with `Retry-After`, 503, 401, 400 for a poisoned record, a
//! Splunk-shaped 400 naming the bad event, or no answer at all (the connection dropped
//! after the body was read). It is hand-written rather than axum so it can drop a
//! connection mid-request.
//!
//! The Splunk HEC answers follow Splunk's documented ones ("Troubleshoot HTTP Event
//! Collector": `{"text":"Success","code":0}`, `{"text":"Invalid data format","code":6,
//! "invalid-event-number":N}`, where events before `N` were indexed and those from `N`
//! on were not).
#![allow(dead_code)]

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    /// The body, decompressed when it came gzip-encoded.
    pub body: Vec<u8>,
    pub lines: Vec<Value>,
    /// The status answered (0: the connection was dropped).
    pub status: u16,
    pub at: std::time::Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200, every line taken.
    Ok,
    /// This status, with `Retry-After` when given; `taken` leading lines count as received
    /// (all of them for a 2xx).
    Status { status: u16, retry_after: Option<u64>, body: String, taken: usize },
    /// Read the request, then close the connection without answering.
    Drop,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer::Status { status, retry_after: None, body: format!("{{\"status\":{status}}}"), taken: 0 }
    }
}

type Rule = Box<dyn Fn(&Request) -> Answer + Send>;

struct State {
    rule: Rule,
    requests: Vec<Request>,
    /// How long each answer waits (a slow collector).
    delay: Duration,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Starts a receiver answering 200 to everything.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State { rule: Box::new(|_| Answer::Ok), requests: Vec::new(), delay: Duration::ZERO }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Receiver { url, state }
    }

    /// Answers every request from now on with `rule`.
    pub fn answer(&self, rule: impl Fn(&Request) -> Answer + Send + 'static) {
        self.state.lock().unwrap().rule = Box::new(rule);
    }

    /// Waits this long before each answer.
    pub fn delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Answers 400 to any request holding a line that contains `marker`, else 200.
    pub fn refuse_lines_containing(&self, marker: &'static str) {
        self.answer(move |r| {
            if r.lines.iter().any(|l| l.to_string().contains(marker)) {
                Answer::Status { status: 400, retry_after: None, body: "{\"error\":\"poisoned record\"}".into(), taken: 0 }
            } else {
                Answer::Ok
            }
        });
    }

    /// Answers as Splunk HEC does: the first line holding `marker` is refused by number,
    /// the lines before it are indexed.
    pub fn hec_refusing(&self, marker: &'static str) {
        self.answer(move |r| match r.lines.iter().position(|l| l.to_string().contains(marker)) {
            Some(n) => Answer::Status {
                status: 400,
                retry_after: None,
                body: format!("{{\"text\":\"Invalid data format\",\"code\":6,\"invalid-event-number\":{n}}}"),
                taken: n,
            },
            None => Answer::Status { status: 200, retry_after: None, body: "{\"text\":\"Success\",\"code\":0}".into(), taken: usize::MAX },
        });
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every line the receiver took, in arrival order.
    pub fn records(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state.requests.iter().flat_map(|r| taken(r).into_iter()).collect()
    }

    /// Waits until at least `n` lines were taken; panics after `within`.
    pub async fn wait_for_records(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let records = self.records();
            if records.len() >= n {
                return records;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("the receiver took {} records, not {n}, within {within:?}", records.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for_requests(&self, n: usize, within: Duration) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{} requests arrived, not {n}, within {within:?}", requests.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The lines a request's answer took.
fn taken(r: &Request) -> Vec<Value> {
    let n = match r.status {
        200..=299 => r.lines.len(),
        _ => r.headers.iter().find(|(k, _)| k == "x-test-taken").and_then(|(_, v)| v.parse().ok()).unwrap_or(0),
    };
    r.lines.iter().take(n).cloned().collect()
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let mut buffer = Vec::new();
    loop {
        let Some(mut request) = read_request(&mut socket, &mut buffer).await else { return };
        let (answer, delay) = {
            let state = state.lock().unwrap();
            ((state.rule)(&request), state.delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (status, retry_after, body, taken) = match answer {
            Answer::Ok => (200, None, "{\"status\":\"ok\"}".to_owned(), usize::MAX),
            Answer::Status { status, retry_after, body, taken } => (status, retry_after, body, taken),
            Answer::Drop => {
                request.status = 0;
                state.lock().unwrap().requests.push(request);
                let _ = socket.shutdown().await;
                return;
            }
        };
        request.status = status;
        // How many lines a refusing answer took travels with the kept request.
        request.headers.push(("x-test-taken".into(), taken.min(request.lines.len()).to_string()));
        state.lock().unwrap().requests.push(request);
        let retry = retry_after.map(|s| format!("retry-after: {s}\r\n")).unwrap_or_default();
        let head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry}\r\n", body.len());
        if socket.write_all(head.as_bytes()).await.is_err() || socket.write_all(body.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 65536];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let headers: Vec<(String, String)> =
        head.lines().skip(1).filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))).collect();
    let length: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let start = head_end + 4;
    while buffer.len() < start + length {
        let mut chunk = [0u8; 65536];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let raw: Vec<u8> = buffer[start..start + length].to_vec();
    buffer.drain(..start + length);
    let gzipped = headers.iter().any(|(k, v)| k == "content-encoding" && v == "gzip");
    let body = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).ok()?;
        out
    } else {
        raw
    };
    let lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).filter_map(|l| serde_json::from_slice(l).ok()).collect();
    Some(Request { headers, body, lines, status: 0, at: std::time::Instant::now() })
}
