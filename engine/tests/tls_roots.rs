//! A TLS exchange with a loopback server whose certificate a CA made here signed: refused
//! while nothing trusts that CA, accepted once `SSL_CERT_FILE` names it (as a company CA is
//! added behind a TLS-inspecting proxy). Its own test binary: it sets a process-wide variable.

use engine::http::{Transport, TransportFailure};
use reqwest::header::HeaderName;
use reqwest::{Method, StatusCode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA's PEM, and a server on 127.0.0.1 presenting a certificate it signed: its port.
async fn server_signed_by_a_new_ca() -> (String, u16) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "engine test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca.pem(), port)
}

fn transport() -> Transport {
    Transport::new(
        Duration::from_secs(5),
        1,
        HeaderName::from_static("authorization"),
        "destination-test/1.0",
    )
    .unwrap()
}

#[tokio::test]
async fn a_ca_given_by_ssl_cert_file_is_trusted() {
    std::env::remove_var("SSL_CERT_FILE");
    let (ca_pem, port) = server_signed_by_a_new_ca().await;
    let uri: http::Uri = format!("https://127.0.0.1:{port}/v1/things")
        .parse()
        .unwrap();

    let untrusted = transport()
        .exchange(Method::GET, uri.clone(), "k", None)
        .await
        .err()
        .expect("a certificate no root vouches for is refused");
    assert_eq!(untrusted.failure, TransportFailure::Tls);

    let dir = std::env::temp_dir().join(format!("engine-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("company-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::env::set_var("SSL_CERT_FILE", &ca_file);
    let answer = transport()
        .exchange(Method::GET, uri, "k", None)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(&answer.body[..], b"{}");
    let _ = std::fs::remove_dir_all(dir);
}
