//! Presence and ephemeral events: encrypted under the channel key, relayed
//! to the space's other subscribers, never stored.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::Bytes;
use crate::limits::{self, Limit, Validate, ValidationError};

/// `presence.set` params: replaces the caller's presence in the space.
/// Result: [`crate::Empty`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceSetParams {
    /// The space.
    pub space: Uuid,
    /// Capability for a shared space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// Encrypted presence state.
    pub data: Bytes,
}

impl Validate for PresenceSetParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())?;
        limits::check(Limit::Presence, self.data.len())
    }
}

/// `presence.clear` params: the caller leaves the space's presence.
/// Result: [`crate::Empty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceClearParams {
    /// The space.
    pub space: Uuid,
}

impl Validate for PresenceClearParams {}

/// `event.send` params: an ephemeral message to the space's other
/// subscribers. Result: [`crate::Empty`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSendParams {
    /// The space.
    pub space: Uuid,
    /// Capability for a shared space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// Encrypted event.
    pub data: Bytes,
}

impl Validate for EventSendParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())?;
        limits::check(Limit::Event, self.data.len())
    }
}
