//! A stand-in for `https://sns.<region>.amazonaws.com` on 127.0.0.1: real TLS with a
//! certificate from a test CA, serving the SNS signing certificate and answering
//! SubscribeURL GETs. pushgate reaches it through its test transport (a name override
//! and the extra root), so the same code path that talks to AWS is exercised.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct FakeAws {
    pub host: String,
    pub addr: SocketAddr,
    /// DER of the CA that signed the server's certificate.
    pub root_der: Vec<u8>,
    /// Every request line seen (`GET /path?query`), in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeAws {
    /// Serves `files` (path → body) on `host`; a `/?Action=ConfirmSubscription` GET is
    /// answered with a subscription ARN for the TopicArn it names (403 for the token
    /// `expired`, as AWS answers an expired token).
    pub async fn start(host: &str, files: HashMap<String, Vec<u8>>) -> FakeAws {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "pushgate test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();

        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![server_cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = requests.clone();
        let files = Arc::new(files);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, seen, files) = (acceptor.clone(), seen.clone(), files.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let line = head.lines().next().unwrap_or_default();
                    let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
                    seen.lock().unwrap().push(format!("GET {target}"));
                    let (status, body) = answer(&target, &files);
                    let response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.write_all(&body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        FakeAws { host: host.to_owned(), addr, root_der: ca.der().to_vec(), requests }
    }

    pub fn transport(&self) -> pushgate::outbound::TestTransport {
        pushgate::outbound::TestTransport { host: self.host.clone(), addr: self.addr, root_der: self.root_der.clone() }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(target: &str, files: &HashMap<String, Vec<u8>>) -> (&'static str, Vec<u8>) {
    if let Some(query) = target.strip_prefix("/?") {
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        if params.get("Action").map(String::as_str) == Some("ConfirmSubscription")
            && params.get("Token").map(String::as_str) == Some("expired")
        {
            return ("403 Forbidden", b"<ErrorResponse><Error><Code>AuthorizationError</Code></Error></ErrorResponse>".to_vec());
        }
        if params.get("Action").map(String::as_str) == Some("ConfirmSubscription") {
            let topic = params.get("TopicArn").cloned().unwrap_or_default();
            let xml = format!(
                "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ConfirmSubscriptionResult>\
                 <SubscriptionArn>{topic}:0f6c8e2a-7d1b-4c9e-9a53-1b2c3d4e5f60</SubscriptionArn></ConfirmSubscriptionResult>\
                 </ConfirmSubscriptionResponse>"
            );
            return ("200 OK", xml.into_bytes());
        }
    }
    match files.get(target) {
        Some(body) => ("200 OK", body.clone()),
        None => ("404 Not Found", b"not found".to_vec()),
    }
}
