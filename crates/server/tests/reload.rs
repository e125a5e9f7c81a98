//! SIGHUP: the broker stays up, reads its config file again, takes renewed
//! TLS certificates and the limits new connections get, and says what it
//! changed and what needs a restart.

mod common;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warren_codec::Method;

/// A CA and a server certificate it signed, written as server.pem/key.
fn issue(dir: &Path) -> rustls::pki_types::CertificateDer<'static> {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    ca.der().clone()
}

/// Whether a TLS client trusting only `ca` gets connection.start.
fn trusted_by(port: u16, ca: &rustls::pki_types::CertificateDer<'static>) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut start = [0u8; 7];
    tls.write_all(b"AMQP\x00\x00\x09\x01").is_ok() && tls.read_exact(&mut start).is_ok()
}

fn tls_port(log: &str) -> u16 {
    let line = log
        .lines()
        .find(|l| l.contains("listening") && l.contains("tls=true"))
        .expect("a TLS listener");
    let at = line.find("127.0.0.1:").unwrap() + "127.0.0.1:".len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn offered_heartbeat(port: u16) -> u16 {
    match Raw::login(port, "guest", "guest").1 {
        Some((0, Method::ConnectionTune(tune))) => tune.heartbeat,
        other => panic!("no tune: {other:?}"),
    }
}

fn config_text(dir: &Path, heartbeat: u16, connection_max: usize) -> String {
    format!(
        "[listeners]\ntls = [\"127.0.0.1:0\"]\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[limits]\nheartbeat = {heartbeat}\nconnection_max = {connection_max}\n",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    )
}

fn hang_up(warren: &Warren) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &warren.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for_log(warren: &Warren, text: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = warren.stderr();
        if log.matches(text).count() >= count {
            return log;
        }
        assert!(Instant::now() < deadline, "no {text:?} in:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_certificates_and_limits_and_keeps_running() {
    let data = data_dir("reload");
    let pki = data_dir("reload-pki");
    std::fs::create_dir_all(&pki).unwrap();
    let first_ca = issue(&pki);
    let config = pki.join("warren.toml");
    std::fs::write(&config, config_text(&pki, 60, 0)).unwrap();
    let mut warren = Warren::start_with(&data, &["--config", config.to_str().unwrap()]);
    let port = tls_port(&warren.stderr());
    assert!(trusted_by(port, &first_ca));
    assert_eq!(offered_heartbeat(warren.port), 60);

    // Renewed certificates, a new heartbeat, and a key that needs a restart.
    let second_ca = issue(&pki);
    std::fs::write(&config, config_text(&pki, 30, 5)).unwrap();
    hang_up(&warren);
    let log = wait_for_log(&warren, "configuration reloaded", 1);
    assert!(log.contains("limits.heartbeat"), "{log}");
    let log = wait_for_log(&warren, "take a restart", 1);
    assert!(log.contains("limits.connection_max"), "{log}");
    assert!(warren.child.try_wait().unwrap().is_none(), "still running");
    assert!(
        trusted_by(port, &second_ca),
        "the renewed certificate is served"
    );
    assert!(!trusted_by(port, &first_ca));
    assert_eq!(offered_heartbeat(warren.port), 30);

    // A broken file changes nothing, and the broker stays up.
    std::fs::write(&config, "[limits]\nheartbeat = \"often\"\n").unwrap();
    hang_up(&warren);
    wait_for_log(&warren, "configuration not reloaded", 1);
    assert!(warren.child.try_wait().unwrap().is_none());
    assert_eq!(offered_heartbeat(warren.port), 30);

    // SIGTERM still stops it gracefully.
    warren.stop();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&pki);
}

#[test]
fn sighup_without_a_config_file_is_logged_and_harmless() {
    let data = data_dir("reload-none");
    let mut warren = Warren::start(&data);
    hang_up(&warren);
    wait_for_log(&warren, "no config file", 1);
    assert!(warren.child.try_wait().unwrap().is_none());
    assert_eq!(offered_heartbeat(warren.port), 60);
    drop(warren);
    let _ = std::fs::remove_dir_all(&data);
}
