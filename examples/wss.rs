//! WebSocket over TLS (`wss://`): TLS is the stream's job. This program makes a
//! certificate for `localhost` with rcgen, serves a wss echo endpoint with
//! tokio-rustls, and connects a wss client that trusts that certificate only.
//!
//! `cargo run --example wss --features tokio`

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::ClientRequest;
use wsmachine::{CloseCode, Config, OwnedEvent};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    // A self-signed certificate for localhost, made at start.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert_der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));

    // Server: TLS, then the WebSocket handshake, then echo.
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)?;
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let tls = acceptor.accept(tcp).await?;
        let mut ws = WebSocket::accept(tls, Config::default()).await?;
        loop {
            match ws.recv().await? {
                OwnedEvent::Text(text) => ws.send_text(&text).await?,
                OwnedEvent::Binary(data) => ws.send_binary(&data).await?,
                OwnedEvent::Closed(info) => return Ok::<_, BoxError>(info),
                _ => {}
            }
        }
    });

    // Client: trusts the generated certificate, nothing else.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der)?;
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let request = ClientRequest::new(&format!("wss://localhost:{port}/secure"))?;
    let tcp = TcpStream::connect(("127.0.0.1", request.port())).await?;
    let tls = TlsConnector::from(Arc::new(client_config))
        .connect(ServerName::try_from(request.host().to_owned())?, tcp)
        .await?;
    let mut ws = WebSocket::connect(tls, &request, Config::default()).await?;
    println!(
        "wss: connected to {} over TLS",
        format_args!("wss://localhost:{port}/secure")
    );

    for text in ["hello over TLS", "ünïcödé ✓"] {
        ws.send_text(text).await?;
        match ws.recv().await? {
            OwnedEvent::Text(echo) => println!("wss: sent {text:?}, got back {echo:?}"),
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    ws.close(CloseCode::NORMAL, "done").await?;
    while !matches!(ws.recv().await?, OwnedEvent::Closed(_)) {}
    let info = server.await??;
    println!(
        "wss: closed cleanly: {}, code {}",
        info.is_clean(),
        info.code()
    );
    Ok(())
}
