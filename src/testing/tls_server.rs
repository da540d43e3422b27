//! An HTTPS server on 127.0.0.1 for unit tests of pushgate's fetchers (SNS signing
//! certificates, Google's OIDC keys): it serves one host name with a certificate from a
//! test CA of its own, answers every request with the current [`Reply`], and counts
//! the requests. A fetcher reaches it through [`TestTransport`], so the same client
//! code that talks to the real host is exercised.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::PrivateKeyDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::outbound::TestTransport;

/// What the server answers to a request.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body, after a delay.
    Body(String, Duration),
    /// 200 with this body and extra header lines (`Name: value`).
    BodyWithHeaders(String, Vec<String>),
    /// A bare status line (a `Location` header with 3xx).
    Status(u16),
    /// 200 and more than this many bytes, without a `Content-Length`.
    Endless(usize),
    /// Reads the request and never answers.
    Silent,
}

pub struct TlsServer {
    pub host: String,
    pub addr: SocketAddr,
    /// DER of the CA that issued the server's certificate.
    pub root_der: Vec<u8>,
    requests: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
}

impl TlsServer {
    /// A server for `host` answering `reply` until [`TlsServer::set_reply`] changes it.
    pub async fn start(host: &str, reply: Reply) -> TlsServer {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap().signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new(reply));
        let (counted, current) = (requests.clone(), reply.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, counted, current) = (acceptor.clone(), counted.clone(), current.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let reply = current.lock().unwrap().clone();
                    let head = |status: &str, extra: &str| format!("HTTP/1.1 {status}\r\n{extra}Connection: close\r\n\r\n");
                    match reply {
                        Reply::Body(body, delay) => {
                            tokio::time::sleep(delay).await;
                            let response = head("200 OK", &format!("Content-Length: {}\r\n", body.len())) + &body;
                            let _ = tls.write_all(response.as_bytes()).await;
                        }
                        Reply::BodyWithHeaders(body, headers) => {
                            let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
                            let response = head("200 OK", &format!("{extra}Content-Length: {}\r\n", body.len())) + &body;
                            let _ = tls.write_all(response.as_bytes()).await;
                        }
                        Reply::Status(code) => {
                            let extra = match code {
                                300..=399 => "Location: /moved\r\nContent-Length: 0\r\n",
                                _ => "Content-Length: 0\r\n",
                            };
                            let _ = tls.write_all(head(&format!("{code} Whatever"), extra).as_bytes()).await;
                        }
                        Reply::Endless(more_than) => {
                            let _ = tls.write_all(head("200 OK", "").as_bytes()).await;
                            let block = vec![b'A'; 8192];
                            for _ in 0..(more_than / block.len() + 4) {
                                if tls.write_all(&block).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Reply::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer { host: host.to_string(), addr, root_der: ca.der().to_vec(), requests, reply }
    }

    /// What later requests are answered.
    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// Requests answered (or left unanswered) so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// How a client reaches this server under its host name.
    pub fn transport(&self) -> TestTransport {
        TestTransport { host: self.host.clone(), addr: self.addr, root_der: self.root_der.clone() }
    }
}
