//! AMQPS: a TLS listener beside the plain one, with a CA made in the test.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::ServerName, RootCertStore};
use warren_codec::*;
use warren_tests::TestServer;

struct Pki {
    ca_der: rustls::pki_types::CertificateDer<'static>,
    dir: std::path::PathBuf,
}

fn make_pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server_params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "warren-tls-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        ca_der: ca.der().clone(),
        dir,
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

async fn tls_server(pki: &Pki) -> TestServer {
    let dir = pki.dir.clone();
    TestServer::start_with(move |c| {
        c.listeners.tls = vec!["127.0.0.1:0".parse().unwrap()];
        c.tls = Some(warren::config::TlsConfig {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca: None,
            ssl_handshake_timeout: 2000,
        });
    })
    .await
}

fn connector(pki: &Pki) -> tokio_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn amqp_over_tls_with_a_ca_made_here() {
    let pki = make_pki();
    let server = tls_server(&pki).await;
    let tcp = TcpStream::connect(server.tls_addr.unwrap()).await.unwrap();
    let mut tls = connector(&pki)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(&PROTOCOL_HEADER).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let frame = loop {
        if let Some(frame) = FrameDecoder::new(0).decode(&mut buf).unwrap() {
            break frame;
        }
        assert!(tls.read_buf(&mut buf).await.unwrap() > 0);
    };
    assert!(matches!(
        frame,
        Frame::Method {
            channel: 0,
            method: Method::ConnectionStart(_)
        }
    ));
    // The plain listener keeps working beside it.
    server.connect().await;
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test]
async fn a_client_stuck_in_the_tls_handshake_does_not_block_others() {
    let pki = make_pki();
    let server = tls_server(&pki).await;
    // Connects and never sends a ClientHello.
    let _stuck = TcpStream::connect(server.tls_addr.unwrap()).await.unwrap();
    let tcp = TcpStream::connect(server.tls_addr.unwrap()).await.unwrap();
    let handshake = connector(&pki).connect(ServerName::try_from("localhost").unwrap(), tcp);
    tokio::time::timeout(Duration::from_secs(1), handshake)
        .await
        .expect("not blocked")
        .unwrap();
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_fails_the_handshake() {
    let pki = make_pki();
    let other = make_pki();
    let server = tls_server(&pki).await;
    let tcp = TcpStream::connect(server.tls_addr.unwrap()).await.unwrap();
    assert!(connector(&other)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .is_err());
    let _ = std::fs::remove_dir_all(&pki.dir);
    let _ = std::fs::remove_dir_all(&other.dir);
}
