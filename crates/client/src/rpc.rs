//! Requests and responses over one socket. The engine sends one request at
//! a time and waits for its response; notifications that arrive meanwhile
//! are queued for it.

use std::collections::VecDeque;

use sealbase_protocol::{
    ClientRequest, DecodeError, Frame, Notification, PullChunk, PullParams, PullResult, decode,
};
use serde::de::DeserializeOwned;

use crate::error::SyncError;
use crate::transport::{Received, Transport};

pub(crate) struct Conn<T> {
    transport: T,
    next_id: u32,
    queued: VecDeque<Notification>,
}

impl<T: Transport> Conn<T> {
    pub(crate) fn new(transport: T) -> Self {
        Self {
            transport,
            next_id: 1,
            queued: VecDeque::new(),
        }
    }

    pub(crate) fn take_notification(&mut self) -> Option<Notification> {
        self.queued.pop_front()
    }

    pub(crate) async fn close(&mut self) {
        self.transport.close().await;
    }

    async fn send(&mut self, request: ClientRequest) -> Result<u32, SyncError> {
        request
            .validate()
            .map_err(|e| SyncError::Refused(format!("{}: {e}", request.method().as_str())))?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let bytes = Frame::request(id, &request)
            .and_then(|f| f.encode())
            .map_err(|e| SyncError::Refused(e.to_string()))?;
        self.transport.send(bytes).await?;
        Ok(id)
    }

    /// Reads one frame; a notification is queued (and `None` returned).
    pub(crate) async fn recv(&mut self) -> Result<Option<Frame>, SyncError> {
        match self.transport.recv().await? {
            Received::Closed { code, reason } => Err(SyncError::Closed { code, reason }),
            Received::Frame(bytes) => {
                let frame = decode(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))?;
                if let Frame::Notification(raw) = &frame {
                    match Notification::from_raw(raw) {
                        Ok(n) => self.queued.push_back(n),
                        // A newer server's notification: not for us.
                        Err(DecodeError::UnknownNotification(_)) => {}
                        Err(e) => return Err(SyncError::Protocol(e.to_string())),
                    }
                    return Ok(None);
                }
                Ok(Some(frame))
            }
        }
    }

    /// Sends a request and returns its decoded result.
    pub(crate) async fn call<R: DeserializeOwned>(
        &mut self,
        request: ClientRequest,
    ) -> Result<R, SyncError> {
        let method = request.method().as_str();
        let id = self.send(request).await?;
        loop {
            if let Some(Frame::Response(response)) = self.recv().await?
                && response.id == id
            {
                return match response.outcome {
                    Ok(value) => value
                        .decode(method)
                        .map_err(|e| SyncError::Protocol(e.to_string())),
                    Err(body) => Err(SyncError::Server {
                        method,
                        error: body,
                    }),
                };
            }
        }
    }

    /// Sends a typed request and returns its typed result.
    pub(crate) async fn request<P>(&mut self, params: P) -> Result<P::Output, SyncError>
    where
        P: sealbase_protocol::Call + Into<ClientRequest>,
        P::Output: DeserializeOwned,
    {
        self.call(params.into()).await
    }

    /// Sends `pull`; its chunks and then its result come from
    /// [`Self::next_pull`] with the returned id.
    pub(crate) async fn start_pull(&mut self, params: PullParams) -> Result<u32, SyncError> {
        self.send(params.into()).await
    }

    /// The next chunk of pull `id` as it arrives, or its result once the
    /// stream is over.
    pub(crate) async fn next_pull(&mut self, id: u32) -> Result<PullEvent, SyncError> {
        loop {
            match self.recv().await? {
                Some(Frame::Chunk(raw)) if raw.id == id => match PullChunk::from_raw(&raw) {
                    Ok(chunk) => return Ok(PullEvent::Chunk(chunk)),
                    Err(DecodeError::UnknownChunk(_)) => {}
                    Err(e) => return Err(SyncError::Protocol(e.to_string())),
                },
                Some(Frame::Response(response)) if response.id == id => {
                    return match response.outcome {
                        Ok(value) => value
                            .decode("pull")
                            .map(PullEvent::Done)
                            .map_err(|e| SyncError::Protocol(e.to_string())),
                        Err(body) => Err(SyncError::Server {
                            method: "pull",
                            error: body,
                        }),
                    };
                }
                _ => {}
            }
        }
    }
}

/// What [`Conn::next_pull`] read.
pub(crate) enum PullEvent {
    /// One chunk of the stream.
    Chunk(PullChunk),
    /// The stream is over.
    Done(PullResult),
}
