//! A fault-injecting HTTP proxy between the SDK clients and moto server.
//!
//! [`FaultProxy::start`] listens on a free loopback port and forwards every request to the emulator. While it is
//! [active](FaultProxy::set_active), each request is faulted with the configured probability, with one of:
//! - [`FaultKind::Throttling`]: HTTP 400 `Throttling` (query protocols: RDS, SNS), 400 `ThrottlingException` (JSON
//!   protocols), or 503 `SlowDown` (S3), which the SDK classifies as throttling; nothing reaches moto;
//! - [`FaultKind::ServerError`]: HTTP 500 `InternalFailure` or 503 `ServiceUnavailable`; nothing reaches moto;
//! - [`FaultKind::ConnectionReset`]: the connection is reset (`SO_LINGER` 0) without any response; nothing reaches
//!   moto;
//! - [`FaultKind::LostResponse`]: the request is forwarded to moto and TAKES EFFECT, then the connection is reset
//!   before the answer is returned.
//!
//! Decisions are deterministic: each is drawn from a xorshift generator seeded by the configured seed, a hash of the
//! request (method, path, query, body; not the signature or date headers) and how many times that same request was
//! seen before, so a retry of a faulted request gets a fresh draw and concurrent requests do not change each
//! other's fate. The proxy counts requests and faults by kind and by operation (the `Action` of query-protocol
//! bodies, the `X-Amz-Target` of JSON-protocol requests, the path of Route 53's record-set and change requests, method
//! and path shape for S3).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// HTTP 400 Throttling (503 SlowDown for S3); the request never reaches moto.
    Throttling,
    /// HTTP 500 or 503; the request never reaches moto.
    ServerError,
    /// The connection is reset without a response; the request never reaches moto.
    ConnectionReset,
    /// The request reaches moto and takes effect; the connection is reset before the response is returned.
    LostResponse,
}

impl FaultKind {
    /// Every kind, in display order.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Throttling,
        FaultKind::ServerError,
        FaultKind::ConnectionReset,
        FaultKind::LostResponse,
    ];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Throttling => "throttling",
            FaultKind::ServerError => "5xx",
            FaultKind::ConnectionReset => "connection reset",
            FaultKind::LostResponse => "lost response",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault forced on one operation, whatever the general probability (for sensitivity experiments).
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Operation name as counted (for example `DeleteDBSnapshot`).
    pub operation: String,
    /// The fault to inject.
    pub kind: FaultKind,
    /// Probability per request of that operation.
    pub probability: f64,
}

/// What the proxy injects.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Probability that a request (while the proxy is active) is faulted.
    pub probability: f64,
    /// Seed of the decisions.
    pub seed: u64,
    /// Relative weights of the kinds chosen for a faulted request.
    pub weights: Vec<(FaultKind, u32)>,
    /// Forced faults per operation, checked before the general probability.
    pub rules: Vec<FaultRule>,
}

impl FaultConfig {
    /// No faults: a counting pass-through.
    pub fn none() -> Self {
        Self::uniform(0.0, 0)
    }

    /// Each request faulted with `probability`, every kind equally likely.
    pub fn uniform(probability: f64, seed: u64) -> Self {
        Self {
            probability,
            seed,
            weights: FaultKind::ALL.iter().map(|k| (*k, 1)).collect(),
            rules: Vec::new(),
        }
    }
}

/// Requests and faults of one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationStats {
    /// Requests received while active.
    pub requests: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
}

impl OperationStats {
    /// Faults injected, all kinds.
    pub fn faulted(&self) -> u64 {
        self.faults.values().sum()
    }
}

/// What the proxy saw and did while active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Per operation (for example `rds:CreateDBSnapshot`, `s3:PUT /{bucket}/{key}`).
    pub operations: BTreeMap<String, OperationStats>,
    /// Requests passed through while inactive (test set-up and inspection), never faulted.
    pub passive_requests: u64,
}

impl FaultStats {
    /// Requests received while active.
    pub fn requests(&self) -> u64 {
        self.operations.values().map(|o| o.requests).sum()
    }

    /// Faults injected of `kind`.
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.operations
            .values()
            .map(|o| o.faults.get(&kind).copied().unwrap_or(0))
            .sum()
    }

    /// Faults injected, all kinds.
    pub fn faults(&self) -> u64 {
        self.operations.values().map(OperationStats::faulted).sum()
    }
}

impl fmt::Display for FaultStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests = self.requests();
        let faults = self.faults();
        writeln!(
            f,
            "requests {requests}, faulted {faults} ({:.1} %): {}",
            if requests == 0 {
                0.0
            } else {
                100.0 * faults as f64 / requests as f64
            },
            FaultKind::ALL
                .iter()
                .map(|k| format!("{k} {}", self.faults_of(*k)))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        writeln!(
            f,
            "  {:<40} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "operation", "requests", "throttle", "5xx", "reset", "lost"
        )?;
        for (operation, stats) in &self.operations {
            let of = |k| stats.faults.get(&k).copied().unwrap_or(0);
            writeln!(
                f,
                "  {:<40} {:>8} {:>8} {:>8} {:>8} {:>8}",
                operation,
                stats.requests,
                of(FaultKind::Throttling),
                of(FaultKind::ServerError),
                of(FaultKind::ConnectionReset),
                of(FaultKind::LostResponse)
            )?;
        }
        Ok(())
    }
}

/// Shared state of a running proxy.
struct State {
    upstream: String,
    config: FaultConfig,
    active: AtomicBool,
    stats: Mutex<FaultStats>,
    /// How often each request fingerprint was seen (a retry draws anew).
    seen: Mutex<BTreeMap<u64, u64>>,
}

/// A running fault-injecting proxy; stops when dropped.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FaultProxy {
    /// Start a proxy to the emulator at `upstream` (for example `http://127.0.0.1:5000`), inactive (no faults, no
    /// counting) until [`FaultProxy::set_active`].
    pub async fn start(upstream: &str, config: FaultConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(State {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            config,
            active: AtomicBool::new(false),
            stats: Mutex::new(FaultStats::default()),
            seen: Mutex::new(BTreeMap::new()),
        });
        let server_state = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(stream, Arc::clone(&server_state)));
            }
        });
        Self {
            endpoint,
            state,
            server,
        }
    }

    /// The proxy's endpoint, for [`crate::sdk_config_at`] and [`crate::Sandbox::named_at`].
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Inject faults (and count requests) from now on, or pass everything through uncounted.
    pub fn set_active(&self, active: bool) {
        self.state.active.store(active, Ordering::SeqCst);
    }

    /// What the proxy saw and did so far.
    pub fn stats(&self) -> FaultStats {
        self.state.stats.lock().expect("stats lock").clone()
    }
}

/// Serve one client connection; a fault that closes the connection resets it.
async fn serve(stream: TcpStream, state: Arc<State>) {
    // A second handle on the socket, to reset it (SO_LINGER 0) while hyper owns the stream.
    let handle: Option<OwnedFd> = stream.as_fd().try_clone_to_owned().ok();
    let kill = Arc::new(Notify::new());
    let service_kill = Arc::clone(&kill);
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(
        TokioIo::new(stream),
        service_fn(move |request| {
            let (state, kill) = (Arc::clone(&state), Arc::clone(&service_kill));
            async move { Ok::<_, Infallible>(handle_request(request, state, kill).await) }
        }),
    );
    tokio::select! {
        _ = connection => {}
        _ = kill.notified() => {
            if let Some(fd) = handle
                && let Ok(socket) = TcpStream::from_std(std::net::TcpStream::from(fd))
            {
                let _ = socket.set_zero_linger();
                drop(socket);
            }
            // The connection (and with it the last handle on the socket) is dropped here: the client gets a reset.
        }
    }
}

/// A request read in full.
struct Buffered {
    method: Method,
    path_and_query: String,
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// The protocol family of a request, which decides how errors look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// awsQuery (RDS, SNS): form-encoded `Action=...`, XML errors.
    Query,
    /// awsJson 1.0 / 1.1 (SQS, KMS, Secrets Manager): `X-Amz-Target`, JSON errors.
    Json,
    /// restXml (S3; Route 53 too, whose 5xx answers the SDK retries by status alone).
    S3,
}

async fn handle_request(
    request: Request<Incoming>,
    state: Arc<State>,
    kill: Arc<Notify>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            kill.notify_one();
            return std::future::pending().await;
        }
    };
    let request = Buffered {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        headers: parts.headers,
        body,
    };
    let (protocol, operation) = classify(&request);
    let fault = if state.active.load(Ordering::SeqCst) {
        let fault = decide(&state, &request, &operation);
        let mut stats = state.stats.lock().expect("stats lock");
        let entry = stats.operations.entry(operation.clone()).or_default();
        entry.requests += 1;
        if let Some(kind) = fault {
            *entry.faults.entry(kind).or_default() += 1;
        }
        fault
    } else {
        state.stats.lock().expect("stats lock").passive_requests += 1;
        None
    };
    let seed = fingerprint(&request) ^ state.config.seed;
    match fault {
        None => match forward(&state.upstream, request).await {
            Ok(response) => response,
            Err(_) => {
                kill.notify_one();
                std::future::pending().await
            }
        },
        Some(FaultKind::Throttling) => throttling(protocol),
        Some(FaultKind::ServerError) => server_error(protocol, seed.is_multiple_of(2)),
        Some(FaultKind::ConnectionReset) => {
            kill.notify_one();
            std::future::pending().await
        }
        Some(FaultKind::LostResponse) => {
            // The request takes effect; its answer is read in full and thrown away.
            let _ = forward(&state.upstream, request).await;
            kill.notify_one();
            std::future::pending().await
        }
    }
}

/// The protocol and the operation name of a request.
fn classify(request: &Buffered) -> (Protocol, String) {
    let service = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    if let Some(target) = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        let operation = target.rsplit('.').next().unwrap_or(target);
        return (Protocol::Json, format!("{service}:{operation}"));
    }
    let form = request
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        let action = std::str::from_utf8(&request.body)
            .ok()
            .and_then(|body| {
                body.split('&')
                    .find_map(|pair| pair.strip_prefix("Action="))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".into());
        return (Protocol::Query, format!("{service}:{action}"));
    }
    // Route 53 (REST-XML): the record-set and change operations the failover function makes, by path.
    if service == "route53" {
        let path = request.path_and_query.split('?').next().unwrap_or_default();
        let operation = match (
            request.method.as_str(),
            path.ends_with("/rrset") || path.ends_with("/rrset/"),
        ) {
            ("POST", true) => "ChangeResourceRecordSets",
            ("GET", true) => "ListResourceRecordSets",
            ("GET", false) if path.contains("/change/") => "GetChange",
            _ => "unknown",
        };
        return (Protocol::S3, format!("route53:{operation}"));
    }
    // S3, path-style: /{bucket}[/{key}][?subresource...]
    let (path, query) = request
        .path_and_query
        .split_once('?')
        .unwrap_or((&request.path_and_query, ""));
    let segments = path.trim_start_matches('/').splitn(2, '/').count();
    let shape = match (path.trim_start_matches('/').is_empty(), segments) {
        (true, _) => "/".to_string(),
        (false, 1) => "/{bucket}".to_string(),
        _ => "/{bucket}/{key}".to_string(),
    };
    let mut subresources: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or(p))
        .filter(|p| !p.starts_with("x-") && !p.starts_with("X-"))
        .collect();
    subresources.sort_unstable();
    subresources.dedup();
    let query = if subresources.is_empty() {
        String::new()
    } else {
        format!("?{}", subresources.join("&"))
    };
    (
        Protocol::S3,
        format!("{service}:{} {shape}{query}", request.method),
    )
}

/// FNV-1a over what identifies a request (not its date or signature).
fn fingerprint(request: &Buffered) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        request.method.as_str().as_bytes(),
        request.path_and_query.as_bytes(),
        &request.body,
    ] {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// xorshift64* generator.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // SplitMix64 of the seed, so that nearby seeds give unrelated streams (and never zero).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Whether and how to fault this request.
fn decide(state: &State, request: &Buffered, operation: &str) -> Option<FaultKind> {
    let print = fingerprint(request);
    let occurrence = {
        let mut seen = state.seen.lock().expect("seen lock");
        let n = seen.entry(print).or_default();
        *n += 1;
        *n
    };
    let mut rng =
        XorShift::new(state.config.seed ^ print ^ occurrence.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let config = &state.config;
    let short = operation.split_once(':').map_or(operation, |(_, op)| op);
    for rule in &config.rules {
        if (rule.operation == operation || rule.operation == short) && rng.unit() < rule.probability
        {
            return Some(rule.kind);
        }
    }
    if rng.unit() >= config.probability {
        return None;
    }
    let total: u32 = config.weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let mut pick = (rng.next() % u64::from(total)) as u32;
    for (kind, weight) in &config.weights {
        if pick < *weight {
            return Some(*kind);
        }
        pick -= weight;
    }
    None
}

/// Send `request` to moto and read its answer in full.
async fn forward(upstream: &str, request: Buffered) -> Result<Response<Full<Bytes>>, String> {
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connect to {upstream}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let is_head = request.method == Method::HEAD;
    let mut builder = Request::builder()
        .method(request.method)
        .uri(request.path_and_query);
    for (name, value) in &request.headers {
        if name != TRANSFER_ENCODING && name != CONTENT_LENGTH {
            builder = builder.header(name, value);
        }
    }
    let upstream_request = builder
        .body(Full::new(request.body))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(upstream_request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("read: {e}"))?
        .to_bytes();
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.remove("connection");
    if !is_head {
        parts.headers.remove(CONTENT_LENGTH);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("content type"),
    );
    response
        .headers_mut()
        .insert("x-amzn-requestid", HeaderValue::from_static("fault-proxy"));
    response
}

fn query_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "text/xml",
        format!(
            "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>fault-proxy</RequestId></ErrorResponse>"
        ),
    )
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
             <RequestId>fault-proxy</RequestId></Error>"
        ),
    )
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/x-amz-json-1.1",
        format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
    )
}

/// A throttling answer the SDK classifies as throttling for `protocol`.
fn throttling(protocol: Protocol) -> Response<Full<Bytes>> {
    match protocol {
        Protocol::Query => query_error(
            StatusCode::BAD_REQUEST,
            "Sender",
            "Throttling",
            "Rate exceeded",
        ),
        Protocol::Json => json_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        Protocol::S3 => s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Reduce your request rate",
        ),
    }
}

/// A 500 (or 503 when `unavailable`) answer for `protocol`.
fn server_error(protocol: Protocol, unavailable: bool) -> Response<Full<Bytes>> {
    let (status, query_code, s3_code) = if unavailable {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "ServiceUnavailable",
        )
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "InternalError",
        )
    };
    match protocol {
        Protocol::Query => query_error(status, "Receiver", query_code, "injected server error"),
        Protocol::Json => json_error(status, query_code, "injected server error"),
        Protocol::S3 => s3_error(status, s3_code, "injected server error"),
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift;

    #[test]
    fn xorshift_is_roughly_uniform() {
        let mut rng = XorShift::new(42);
        let hits = (0..100_000).filter(|_| rng.unit() < 0.15).count();
        assert!((14_000..16_000).contains(&hits), "{hits}");
    }
}
