//! The sync engine's transport in a browser: the `WebSocket` API, binary
//! frames, subprotocol `sealbase.v1`. Events arrive through callbacks and
//! are queued, so `recv` is cancel-safe like the native transport's.

use futures::StreamExt;
use futures::channel::mpsc;
use sealbase_client::{Connector, Received, Transport, TransportError};
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

enum Incoming {
    Open,
    Frame(Vec<u8>),
    Closed { code: u16, reason: String },
    Failed,
}

/// Opens browser WebSockets.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserConnector;

/// An open browser WebSocket.
pub struct BrowserSocket {
    ws: WebSocket,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    // Kept alive while the socket may call them.
    _handlers: Handlers,
}

struct Handlers {
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
    _error: Closure<dyn FnMut(Event)>,
}

fn failed(what: &str, e: &JsValue) -> TransportError {
    TransportError(format!(
        "{what}: {}",
        e.as_string()
            .or_else(|| js_sys::JSON::stringify(e).ok().map(String::from))
            .unwrap_or_default()
    ))
}

impl Connector for BrowserConnector {
    type Transport = BrowserSocket;

    async fn connect(&self, url: &str) -> Result<BrowserSocket, TransportError> {
        let ws = WebSocket::new_with_str(url, sealbase_protocol::SUBPROTOCOL)
            .map_err(|e| failed(&format!("bad sync URL {url:?}"), &e))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, incoming) = mpsc::unbounded();
        let on_open = {
            let tx = tx.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| {
                let _ = tx.unbounded_send(Incoming::Open);
            })
        };
        let on_message = {
            let tx = tx.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                // Text frames are not protocol frames: the engine refuses
                // what it cannot decode, so pass them on as bytes.
                let data = e.data();
                let bytes = match data.dyn_into::<js_sys::ArrayBuffer>() {
                    Ok(buffer) => js_sys::Uint8Array::new(&buffer).to_vec(),
                    Err(other) => other.as_string().unwrap_or_default().into_bytes(),
                };
                let _ = tx.unbounded_send(Incoming::Frame(bytes));
            })
        };
        let on_close = {
            let tx = tx.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
                let _ = tx.unbounded_send(Incoming::Closed {
                    code: e.code(),
                    reason: e.reason(),
                });
            })
        };
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| {
            let _ = tx.unbounded_send(Incoming::Failed);
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut socket = BrowserSocket {
            ws,
            incoming,
            _handlers: Handlers {
                _open: on_open,
                _message: on_message,
                _close: on_close,
                _error: on_error,
            },
        };
        match socket.incoming.next().await {
            Some(Incoming::Open) => Ok(socket),
            Some(Incoming::Closed { code, reason }) => Err(TransportError(format!(
                "could not connect to {url} (close {code} {reason})"
            ))),
            // The browser says no more than this on purpose.
            _ => Err(TransportError(format!("could not connect to {url}"))),
        }
    }
}

impl Transport for BrowserSocket {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.ws
            .send_with_u8_array(&frame)
            .map_err(|e| failed("send", &e))
    }

    async fn recv(&mut self) -> Result<Received, TransportError> {
        loop {
            return match self.incoming.next().await {
                Some(Incoming::Frame(bytes)) => Ok(Received::Frame(bytes)),
                Some(Incoming::Closed { code, reason }) => Ok(Received::Closed {
                    // 1005: the peer sent no code.
                    code: (code != 1005).then_some(code),
                    reason,
                }),
                Some(Incoming::Open) => continue,
                Some(Incoming::Failed) | None => {
                    Err(TransportError("the connection failed".into()))
                }
            };
        }
    }

    async fn close(&mut self) {
        let _ = self.ws.close_with_code(1000);
    }
}

impl Drop for BrowserSocket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}
