//! Accepting connections, and the control a fault needs over one of them.
//!
//! Each accepted socket keeps a duplicate of its descriptor in a [`ConnControl`] that travels
//! with every request of the connection. A fault can then end the connection the way the
//! network would: with a TCP reset (`SO_LINGER` 0, then close) or a plain close, and can notice
//! that the client hung up while the request is held.

use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tower_service::Service;

/// How a fault wants a connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Reset,
    Close,
}

/// Per-connection control, inserted into each request's extensions.
#[derive(Debug)]
pub(super) struct ConnControl {
    socket: std::net::TcpStream,
    ending: std::sync::Mutex<Option<Ending>>,
    notify: Notify,
}

impl ConnControl {
    /// Ends the connection with a TCP reset; the pending response is never sent.
    pub(super) fn reset(&self) {
        // Linger 0 makes the final close send RST instead of FIN.
        let _ = socket2::SockRef::from(&self.socket).set_linger(Some(Duration::ZERO));
        self.end(Ending::Reset);
    }

    /// Closes the connection without a response.
    pub(super) fn close(&self) {
        self.end(Ending::Close);
    }

    fn end(&self, how: Ending) {
        *self.ending.lock().unwrap_or_else(|p| p.into_inner()) = Some(how);
        self.notify.notify_one();
    }

    /// Whether the client has closed its side (read EOF). Never blocks: the socket is
    /// non-blocking, shared with the runtime.
    pub(super) fn client_closed(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.socket.peek(&mut probe), Ok(0))
    }
}

/// Accepts connections until `stop` fires, then lets in-flight exchanges finish (up to 5 s).
pub(super) async fn serve(listener: TcpListener, router: Router, stop: oneshot::Receiver<()>) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(socket) = dup(&stream) else { continue };
        let control = Arc::new(ConnControl {
            socket,
            ending: std::sync::Mutex::new(None),
            notify: Notify::new(),
        });
        let router = router.clone();
        let ctl = control.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ctl.clone());
                let mut router = router.clone();
                async move { router.call(req).await }
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = control.notify.notified() => {
                    // Dropping the connection future closes hyper's descriptor; shutting down the
                    // duplicate as well makes the close (or reset) take effect now.
                    if *control.ending.lock().unwrap_or_else(|p| p.into_inner()) == Some(Ending::Close) {
                        let _ = control.socket.shutdown(Shutdown::Both);
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within 5 s of shutdown");
    }
}

/// A second descriptor for the same socket (shares its non-blocking flag).
fn dup(stream: &tokio::net::TcpStream) -> std::io::Result<std::net::TcpStream> {
    socket2::SockRef::from(stream)
        .try_clone()
        .map(std::net::TcpStream::from)
}
