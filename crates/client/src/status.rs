//! Sync status, observable by the app (a status bar, a "saved" badge).

use std::sync::{Arc, Mutex};

/// What the engine is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started, or stopped.
    Stopped,
    /// Opening the socket and authenticating.
    Connecting,
    /// Reading changes from the server.
    Pulling,
    /// Sending local changes.
    Pushing,
    /// Connected and up to date; changes flow both ways as they happen.
    Live,
    /// Not connected; retrying after a delay (`retry_in_ms`).
    Offline,
}

impl Phase {
    /// `stopped`, `connecting`, `pulling`, `pushing`, `live` or `offline`
    /// (the name bindings and status bars show).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Connecting => "connecting",
            Self::Pulling => "pulling",
            Self::Pushing => "pushing",
            Self::Live => "live",
            Self::Offline => "offline",
        }
    }
}

/// A snapshot of the engine's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// What it is doing.
    pub phase: Phase,
    /// Local records with changes the server does not have yet.
    pub pending: u64,
    /// Pulled records refused (bad signature, undecryptable, invalid):
    /// kept aside in the store's quarantine, see `Db::quarantined`.
    pub quarantined: u64,
    /// Local records the server refused (too large, invalid); they stay
    /// local and are not retried until the engine restarts.
    pub rejected: u64,
    /// The latest error, if the latest attempt failed or a record was
    /// refused.
    pub last_error: Option<String>,
    /// When offline: the delay before the next attempt.
    pub retry_in_ms: Option<u64>,
    /// Pulled record versions applied since the engine started.
    pub pulled: u64,
    /// Record versions pushed since the engine started.
    pub pushed: u64,
    /// Connections made since the engine started.
    pub connections: u64,
    /// Unix ms of the last moment the store was known up to date.
    pub synced_at: Option<i64>,
}

impl Default for SyncStatus {
    fn default() -> Self {
        Self {
            phase: Phase::Stopped,
            pending: 0,
            quarantined: 0,
            rejected: 0,
            last_error: None,
            retry_in_ms: None,
            pulled: 0,
            pushed: 0,
            connections: 0,
            synced_at: None,
        }
    }
}

type Listener = Box<dyn Fn(&SyncStatus) + Send>;

/// The shared status: the engine writes it, the app reads it or listens.
#[derive(Clone, Default)]
pub struct StatusCell {
    inner: Arc<Mutex<(SyncStatus, Vec<Listener>)>>,
}

impl std::fmt::Debug for StatusCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StatusCell").field(&self.get()).finish()
    }
}

impl StatusCell {
    /// The current status.
    pub fn get(&self) -> SyncStatus {
        match self.inner.lock() {
            Ok(guard) => guard.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// Calls `listener` with every new status (from the engine's thread).
    pub fn listen(&self, listener: impl Fn(&SyncStatus) + Send + 'static) {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.1.push(Box::new(listener));
    }

    /// Changes the status; listeners hear of it if anything changed.
    pub(crate) fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let before = guard.0.clone();
        f(&mut guard.0);
        if guard.0 != before {
            let (status, listeners) = &*guard;
            for listener in listeners {
                listener(status);
            }
        }
    }
}
