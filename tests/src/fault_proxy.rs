//! A fault-injecting HTTP proxy between the SDK clients and the local AWS endpoint.
//!
//! Clients built for [`FaultProxy::endpoint`] send every request through it. Each request is
//! named by its AWS operation (`S3.PutObject`, `DynamoDB.UpdateItem`, `SQS.ReceiveMessage`,
//! from the `X-Amz-Target` header or the S3 method and query), and the first matching rule
//! whose dice roll hits decides its fate: an error answer of the kind the service really
//! sends (500 InternalError, 503 SlowDown, 400 ThrottlingException), a delay, a connection
//! cut before the request reaches the service, or one cut after the service has acted but
//! before the client hears back — the case that makes retries dangerous. Everything else is
//! forwarded untouched, streaming both ways.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to a request a rule picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 500 InternalError (S3) / InternalServerError (DynamoDB, SQS).
    InternalError,
    /// 503 SlowDown (S3); 503 ServiceUnavailable elsewhere.
    SlowDown,
    /// 400 ThrottlingException (DynamoDB, SQS); 503 SlowDown for S3, which throttles so.
    Throttle,
    /// Forwarded after a pause.
    Delay(Duration),
    /// The connection is dropped before the request is forwarded.
    Cut,
    /// The request is forwarded and acted on, then the connection is dropped unanswered.
    CutAfterForward,
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::InternalError => "500 internal error",
            Fault::SlowDown => "503 slow down",
            Fault::Throttle => "throttled",
            Fault::Delay(_) => "delayed",
            Fault::Cut => "connection cut before forwarding",
            Fault::CutAfterForward => "response lost after the service acted",
        }
    }
}

/// Applies `fault` to a share `rate` (0..=1) of the requests whose operation matches
/// `operation`: an exact name (`S3.PutObject`), a service (`S3.*`), or `*`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub operation: String,
    pub fault: Fault,
    pub rate: f64,
}

impl Rule {
    pub fn new(operation: &str, fault: Fault, rate: f64) -> Self {
        Self { operation: operation.into(), fault, rate }
    }

    fn matches(&self, operation: &str) -> bool {
        match self.operation.strip_suffix('*') {
            Some(prefix) => operation.starts_with(prefix),
            None => self.operation == operation,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct FaultCounts {
    /// Requests seen, by operation.
    pub requests: BTreeMap<String, u64>,
    /// Faults injected, by (kind, operation).
    pub injected: BTreeMap<(&'static str, String), u64>,
    /// Client connections that ended in an error (each cut ends one).
    pub connection_errors: u64,
}

impl FaultCounts {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn total_injected(&self) -> u64 {
        self.injected.values().sum()
    }

    /// Injected faults by kind.
    pub fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for ((kind, _), n) in &self.injected {
            *out.entry(*kind).or_default() += n;
        }
        out
    }
}

struct State {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    rng: Mutex<rand::rngs::StdRng>,
    counts: Mutex<FaultCounts>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Incoming>,
}

pub struct FaultProxy {
    endpoint: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port, with no
    /// rules yet (everything passes).
    pub async fn start(upstream: &str, seed: u64) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fault proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http::<Incoming>();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            counts: Mutex::new(FaultCounts::default()),
            client,
        });
        let serving = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = serving.clone();
                let state_for_errors = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let served = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    // A cut ends its connection in an error on purpose; count, don't print.
                    if served.is_err() {
                        state_for_errors.counts.lock().unwrap().connection_errors += 1;
                    }
                });
            }
        });
        Self { endpoint, state, server }
    }

    /// The URL to give the SDK clients.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.state.rules.lock().unwrap() = rules;
    }

    pub fn counts(&self) -> FaultCounts {
        self.state.counts.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug)]
struct Injected(&'static str);

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "injected: {}", self.0)
    }
}

impl std::error::Error for Injected {}

/// The AWS operation a request calls.
pub fn operation_of<B>(req: &Request<B>) -> String {
    if let Some(target) = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (service, op) = target.split_once('.').unwrap_or((target, ""));
        let service = if service.starts_with("DynamoDB") {
            "DynamoDB"
        } else if service.starts_with("AmazonSQS") {
            "SQS"
        } else {
            service
        };
        return format!("{service}.{op}");
    }
    let query = req.uri().query().unwrap_or("");
    let has = |name: &str| query.split('&').any(|kv| kv == name || kv.starts_with(&format!("{name}=")));
    let path_segments = req.uri().path().trim_matches('/').split('/').filter(|s| !s.is_empty()).count();
    let op = match *req.method() {
        hyper::Method::PUT if has("partNumber") && has("uploadId") => "UploadPart",
        hyper::Method::PUT if req.headers().contains_key("x-amz-copy-source") => "CopyObject",
        hyper::Method::PUT if path_segments <= 1 => "CreateBucket",
        hyper::Method::PUT => "PutObject",
        hyper::Method::POST if has("uploads") => "CreateMultipartUpload",
        hyper::Method::POST if has("uploadId") => "CompleteMultipartUpload",
        hyper::Method::POST if has("delete") => "DeleteObjects",
        hyper::Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        hyper::Method::DELETE => "DeleteObject",
        hyper::Method::HEAD => "HeadObject",
        hyper::Method::GET if has("list-type") || path_segments <= 1 => "ListObjects",
        hyper::Method::GET => "GetObject",
        _ => "Other",
    };
    format!("S3.{op}")
}

fn error_response(operation: &str, fault: Fault) -> Response<ProxyBody> {
    let s3 = operation.starts_with("S3.");
    let (status, code) = match (fault, s3) {
        (Fault::InternalError, true) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        (Fault::InternalError, false) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        (Fault::SlowDown | Fault::Throttle, true) => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
        (Fault::SlowDown, false) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        (Fault::Throttle, false) => (StatusCode::BAD_REQUEST, "ThrottlingException"),
        _ => unreachable!("only error faults have a response"),
    };
    let (content_type, body) = if s3 {
        (
            "application/xml",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>"),
        )
    } else {
        ("application/x-amz-json-1.0", format!("{{\"__type\":\"{code}\",\"message\":\"injected by the test proxy\"}}"))
    };
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", content_type.parse().expect("static header"));
    if !s3 && code == "ThrottlingException" {
        response.headers_mut().insert("x-amzn-query-error", "ThrottlingException;Sender".parse().expect("static header"));
    }
    response
}

async fn handle(state: Arc<State>, mut req: Request<Incoming>) -> Result<Response<ProxyBody>, Injected> {
    let operation = operation_of(&req);
    let fault = {
        let rules = state.rules.lock().unwrap();
        let mut rng = state.rng.lock().unwrap();
        rules.iter().filter(|r| r.matches(&operation)).find(|r| rng.random_bool(r.rate.clamp(0.0, 1.0))).map(|r| r.fault)
    };
    {
        let mut counts = state.counts.lock().unwrap();
        *counts.requests.entry(operation.clone()).or_default() += 1;
        if let Some(f) = fault {
            *counts.injected.entry((f.kind(), operation.clone())).or_default() += 1;
        }
    }
    match fault {
        Some(f @ (Fault::InternalError | Fault::SlowDown | Fault::Throttle)) => return Ok(error_response(&operation, f)),
        Some(Fault::Cut) => return Err(Injected("connection cut")),
        Some(Fault::Delay(pause)) => tokio::time::sleep(pause).await,
        Some(Fault::CutAfterForward) | None => {}
    }
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    *req.uri_mut() = format!("{}{}", state.upstream, path_and_query).parse().map_err(|_| Injected("bad uri"))?;
    let response = state.client.request(req).await.map_err(|_| Injected("upstream unreachable"))?;
    if fault == Some(Fault::CutAfterForward) {
        // Let the service finish (read its whole answer), then drop the connection.
        let (_, body) = response.into_parts();
        if body.collect().await.is_err() {
            return Err(Injected("upstream body"));
        }
        return Err(Injected("response dropped"));
    }
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, body.boxed()))
}
