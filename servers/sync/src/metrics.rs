//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Plain atomics: nothing here may slow down the request path. Latencies are
//! kept as sums and counts (Prometheus summaries without quantiles); the
//! benchmarks measure percentiles.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many presence peers there are, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceCounts {
    /// Peers connected to this instance.
    pub local: usize,
    /// Peers of other instances known here.
    pub remote: usize,
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicU64,
    /// Frames received.
    pub frames_in: AtomicU64,
    /// Push requests applied or refused as conflicts.
    pub pushes: AtomicU64,
    /// Records written by pushes.
    pub pushed_records: AtomicU64,
    /// Total push time in microseconds.
    pub push_micros: AtomicU64,
    /// Pull requests completed.
    pub pulls: AtomicU64,
    /// Total pull time in microseconds.
    pub pull_micros: AtomicU64,
    /// Tombstones dropped by compaction.
    pub compacted_tombstones: AtomicU64,
    /// Events sent by this instance's clients and relayed to subscribers.
    pub events: AtomicU64,
    /// Events from other instances relayed to subscribers here.
    pub events_remote: AtomicU64,
    /// Invitations created (retries not counted).
    pub invitations_created: AtomicU64,
    /// Requests refused with `rate_limited` (rates and mailbox caps).
    pub rate_limited: AtomicU64,
    /// File `PUT` requests (any outcome).
    pub file_puts: AtomicU64,
    /// File `GET` requests (any outcome).
    pub file_gets: AtomicU64,
    /// File `HEAD` requests (any outcome).
    pub file_heads: AtomicU64,
    /// Files stored (new uploads recorded).
    pub file_uploads: AtomicU64,
    /// Upload body bytes received.
    pub file_bytes_in: AtomicU64,
    /// Download body bytes sent.
    pub file_bytes_out: AtomicU64,
    /// Objects deleted with their records.
    pub file_objects_deleted: AtomicU64,
    /// Orphaned objects deleted by the sweep.
    pub file_orphans_swept: AtomicU64,
    /// Whether the store has a SQLite write-ahead log: its checkpoint
    /// figures are exported from the start, at zero until the first one.
    pub sqlite_wal: bool,
    /// SQLite WAL checkpoints run (none on Postgres).
    pub wal_checkpoints: AtomicU64,
    /// Frames in the SQLite WAL at the last checkpoint.
    pub wal_frames: AtomicU64,
    /// Of those, the frames the last checkpoint could not copy yet (an
    /// open read still needed them).
    pub wal_pending: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Metrics {
    /// Records one push of `records` changes.
    pub fn observe_push(&self, took: Duration, records: usize) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
        self.pushed_records.fetch_add(
            u64::try_from(records).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.push_micros.fetch_add(micros(took), Ordering::Relaxed);
    }

    /// Records one pull.
    pub fn observe_pull(&self, took: Duration) {
        self.pulls.fetch_add(1, Ordering::Relaxed);
        self.pull_micros.fetch_add(micros(took), Ordering::Relaxed);
    }

    /// Records a SQLite WAL checkpoint.
    pub fn observe_checkpoint(&self, done: crate::store::sqlite::WalCheckpoint) {
        self.wal_checkpoints.fetch_add(1, Ordering::Relaxed);
        self.wal_frames.store(done.frames, Ordering::Relaxed);
        self.wal_pending
            .store(done.frames.saturating_sub(done.copied), Ordering::Relaxed);
    }

    /// Records a compaction pass.
    pub fn observe_compaction(&self, tombstones: u64) {
        self.compacted_tombstones
            .fetch_add(tombstones, Ordering::Relaxed);
    }

    /// The exposition text, with the hub's counters, the presence gauges
    /// and the presence and event messages dropped on their way to other
    /// instances.
    pub fn render(
        &self,
        hub: &crate::hub::Hub,
        presence: PresenceCounts,
        relay_dropped: u64,
    ) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let seconds = |a: &AtomicU64| get(a) as f64 / 1e6;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "sealbase_sync_connections",
            "gauge",
            "Open WebSocket connections.",
            get(&self.connections).to_string(),
        );
        metric(
            "sealbase_sync_subscriptions",
            "gauge",
            "Space subscriptions across connections.",
            hub.subscriptions().to_string(),
        );
        metric(
            "sealbase_sync_frames_received_total",
            "counter",
            "Frames received from clients.",
            get(&self.frames_in).to_string(),
        );
        metric(
            "sealbase_sync_push_requests_total",
            "counter",
            "Push requests handled.",
            get(&self.pushes).to_string(),
        );
        metric(
            "sealbase_sync_pushed_records_total",
            "counter",
            "Records in handled pushes.",
            get(&self.pushed_records).to_string(),
        );
        metric(
            "sealbase_sync_push_seconds_total",
            "counter",
            "Time spent handling pushes.",
            seconds(&self.push_micros).to_string(),
        );
        metric(
            "sealbase_sync_pull_requests_total",
            "counter",
            "Pull requests completed.",
            get(&self.pulls).to_string(),
        );
        metric(
            "sealbase_sync_pull_seconds_total",
            "counter",
            "Time spent streaming pulls.",
            seconds(&self.pull_micros).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP sealbase_sync_file_requests_total File transfer requests by method.\n\
             # TYPE sealbase_sync_file_requests_total counter"
        );
        for (method, count) in [
            ("put", &self.file_puts),
            ("get", &self.file_gets),
            ("head", &self.file_heads),
        ] {
            let _ = writeln!(
                out,
                "sealbase_sync_file_requests_total{{method=\"{method}\"}} {}",
                get(count)
            );
        }
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "sealbase_sync_file_uploads_total",
            "counter",
            "Files stored.",
            get(&self.file_uploads).to_string(),
        );
        metric(
            "sealbase_sync_file_received_bytes_total",
            "counter",
            "File upload bytes received.",
            get(&self.file_bytes_in).to_string(),
        );
        metric(
            "sealbase_sync_file_sent_bytes_total",
            "counter",
            "File download bytes sent.",
            get(&self.file_bytes_out).to_string(),
        );
        metric(
            "sealbase_sync_file_objects_deleted_total",
            "counter",
            "File objects deleted with their records.",
            get(&self.file_objects_deleted).to_string(),
        );
        metric(
            "sealbase_sync_file_orphans_swept_total",
            "counter",
            "Orphaned file objects deleted by the sweep.",
            get(&self.file_orphans_swept).to_string(),
        );
        metric(
            "sealbase_sync_compacted_tombstones_total",
            "counter",
            "Tombstones dropped after the horizon.",
            get(&self.compacted_tombstones).to_string(),
        );
        if self.sqlite_wal {
            metric(
                "sealbase_sync_sqlite_checkpoints_total",
                "counter",
                "SQLite WAL checkpoints run (every 250 ms).",
                get(&self.wal_checkpoints).to_string(),
            );
            metric(
                "sealbase_sync_sqlite_wal_frames",
                "gauge",
                "Pages in the SQLite write-ahead log at the last checkpoint.",
                get(&self.wal_frames).to_string(),
            );
            metric(
                "sealbase_sync_sqlite_wal_pending_frames",
                "gauge",
                "Pages the last checkpoint could not copy into the database yet (an open read needed them).",
                get(&self.wal_pending).to_string(),
            );
        }
        metric(
            "sealbase_sync_notifications_total",
            "counter",
            "Notifications queued to subscribers.",
            get(&hub.stats.delivered).to_string(),
        );
        metric(
            "sealbase_sync_slow_consumers_total",
            "counter",
            "Connections closed because their queue was full (4006).",
            get(&hub.stats.slow_consumers).to_string(),
        );
        metric(
            "sealbase_sync_presence_peers",
            "gauge",
            "Presence peers connected to this instance.",
            presence.local.to_string(),
        );
        metric(
            "sealbase_sync_presence_remote_peers",
            "gauge",
            "Presence peers of other instances known to this one.",
            presence.remote.to_string(),
        );
        metric(
            "sealbase_sync_events_total",
            "counter",
            "Events sent by this instance's clients and relayed.",
            get(&self.events).to_string(),
        );
        metric(
            "sealbase_sync_events_remote_total",
            "counter",
            "Events from other instances relayed to subscribers here.",
            get(&self.events_remote).to_string(),
        );
        metric(
            "sealbase_sync_ephemeral_dropped_total",
            "counter",
            "Presence and event messages to other instances dropped (queue full).",
            relay_dropped.to_string(),
        );
        metric(
            "sealbase_sync_invitations_created_total",
            "counter",
            "Invitations created.",
            get(&self.invitations_created).to_string(),
        );
        metric(
            "sealbase_sync_rate_limited_total",
            "counter",
            "Requests refused with rate_limited.",
            get(&self.rate_limited).to_string(),
        );
        out
    }
}
