//! The browser SDK's store: `sealbase-db` on SQLite (in OPFS inside a
//! dedicated worker, or in memory), and once signed in the
//! `sealbase-client` engine syncing it over the browser's WebSocket.
//! `js/src/worker.ts` drives it; see docs/sdk.md.

mod checks;
mod env;
mod files;
mod json;
mod socket;

use futures::StreamExt;
use futures::channel::mpsc;
use sealbase_client::presence::{Ephemeral, Peer};
use sealbase_client::spaces::{self, Invitee};
use sealbase_client::{SyncConfig, SyncEngine, SyncHandle, SyncKeys, SyncStatus, TokenSource};
use sealbase_crypto::{AppKey, Did};
use sealbase_db::{Collection, Db, DbError, Query};
use serde_json::{Value, json};
use uuid::Uuid;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise, spawn_local};

pub use checks::verify_signatures;
pub use env::WasmEnv;
use json::{db_error, error, from_js, sync_error, thrown_text, to_js};
pub use socket::{BrowserConnector, BrowserSocket};

type Handle = SyncHandle<WasmEnv>;

/// A local store, and its sync engine once started.
#[wasm_bindgen]
pub struct Store {
    keys: SyncKeys,
    /// The store until sync starts; then the engine shares it through
    /// the handle.
    db: Option<Db<WasmEnv>>,
    handle: Option<Handle>,
}

fn app_key(bytes: &[u8]) -> Result<AppKey, JsValue> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| error("TypeError", "an app key is 32 bytes"))?;
    Ok(AppKey::from_bytes(bytes))
}

fn space_id(text: &str) -> Result<Uuid, JsValue> {
    Uuid::parse_str(text).map_err(|_| error("TypeError", &format!("{text:?} is not a space id")))
}

fn status_json(s: &SyncStatus) -> Value {
    json!({
        "phase": s.phase.as_str(),
        "pending": s.pending,
        "quarantined": s.quarantined,
        "rejected": s.rejected,
        "lastError": s.last_error,
        "retryInMs": s.retry_in_ms,
        "pulled": s.pulled,
        "pushed": s.pushed,
        "connections": s.connections,
        "syncedAt": s.synced_at,
    })
}

fn peer_js(p: &Peer) -> Result<JsValue, JsValue> {
    let value = to_js(&json!({
        "space": p.space.to_string(),
        "peer": p.peer.to_string(),
        "did": p.did.to_string(),
        "seenMs": p.seen_ms,
    }))?;
    js_sys::Reflect::set(
        &value,
        &"data".into(),
        &js_sys::Uint8Array::from(&p.data[..]),
    )?;
    Ok(value)
}

fn ephemeral_js(e: &Ephemeral) -> Result<JsValue, JsValue> {
    match e {
        Ephemeral::Presence(peer) => {
            let value = peer_js(peer)?;
            js_sys::Reflect::set(&value, &"type".into(), &"presence".into())?;
            Ok(value)
        }
        Ephemeral::Leave { space, peer } => to_js(&json!({
            "type": "leave", "space": space.to_string(), "peer": peer.to_string(),
        })),
        Ephemeral::Event {
            space,
            peer,
            did,
            data,
        } => {
            let value = to_js(&json!({
                "type": "event", "space": space.to_string(), "peer": peer.to_string(),
                "did": did.to_string(),
            }))?;
            js_sys::Reflect::set(&value, &"data".into(), &js_sys::Uint8Array::from(&data[..]))?;
            Ok(value)
        }
    }
}

/// Access tokens from a JavaScript function returning a promise of one.
struct JsTokens(js_sys::Function);

impl TokenSource for JsTokens {
    async fn access_token(&self) -> Result<String, String> {
        let text = |e: JsValue| thrown_text(&e, "the token source failed");
        let answer = self.0.call0(&JsValue::NULL).map_err(text)?;
        let token = JsFuture::from(js_sys::Promise::resolve(&answer))
            .await
            .map_err(text)?;
        token
            .as_string()
            .ok_or_else(|| "the token source gave no string".into())
    }
}

impl Store {
    fn new(db: Db<WasmEnv>, ak: &AppKey) -> Self {
        let keys = SyncKeys::from_app_key(ak);
        let mut db = db;
        // Local changes are signed as this user's before sync starts too.
        db.set_author(Some(keys.did().to_string()));
        Self {
            keys,
            db: Some(db),
            handle: None,
        }
    }

    fn read<R>(
        &mut self,
        f: impl FnOnce(&mut Db<WasmEnv>) -> Result<R, DbError>,
    ) -> Result<R, JsValue> {
        match (&mut self.db, &self.handle) {
            (Some(db), _) => f(db),
            (None, Some(handle)) => handle.read(f),
            (None, None) => return Err(error("StoreError", "the store is closed")),
        }
        .map_err(db_error)
    }

    fn write<R>(
        &mut self,
        f: impl FnOnce(&mut Db<WasmEnv>) -> Result<R, DbError>,
    ) -> Result<R, JsValue> {
        match (&mut self.db, &self.handle) {
            (Some(db), _) => f(db),
            (None, Some(handle)) => handle.write(f),
            (None, None) => return Err(error("StoreError", "the store is closed")),
        }
        .map_err(db_error)
    }

    fn handle(&self) -> Result<Handle, JsValue> {
        self.handle
            .clone()
            .ok_or_else(|| error("SyncError", "sync has not started (sign in first)"))
    }

    /// Runs a shared-space operation on the engine; resolves to its result.
    fn op<F, T>(&self, f: impl FnOnce(Handle) -> F + 'static) -> Result<js_sys::Promise, JsValue>
    where
        F: std::future::Future<Output = Result<T, sealbase_client::SyncError>> + 'static,
        T: serde::Serialize,
    {
        let handle = self.handle()?;
        Ok(future_to_promise(async move {
            let value = f(handle).await.map_err(sync_error)?;
            to_js(&value)
        }))
    }
}

impl Store {
    /// Runs a file transfer with the access of the space record `record`
    /// is in; resolves to its result.
    fn file_op<F, Fut>(&self, record: String, f: F) -> Result<js_sys::Promise, JsValue>
    where
        F: FnOnce(sealbase_client::files::FileAccess) -> Fut + 'static,
        Fut: std::future::Future<Output = Result<JsValue, sealbase_client::SyncError>> + 'static,
    {
        let handle = self.handle()?;
        Ok(future_to_promise(async move {
            let access = handle
                .record_file_access(&record)
                .await
                .map_err(sync_error)?;
            f(access).await.map_err(sync_error)
        }))
    }
}

#[wasm_bindgen]
impl Store {
    /// Opens (creating) the database `name` in the Origin Private File
    /// System through the SAH-pool VFS. Dedicated workers only; one
    /// connection per database, so one worker per database at a time
    /// (the SDK's leader tab).
    #[cfg(target_arch = "wasm32")]
    #[wasm_bindgen(js_name = openOpfs)]
    pub async fn open_opfs(name: String, app_key_bytes: Vec<u8>) -> Result<Store, JsValue> {
        use sqlite_wasm_vfs::sahpool::{OpfsSAHPoolCfg, install};
        let ak = app_key(&app_key_bytes)?;
        let config = OpfsSAHPoolCfg {
            // A pool per database: two users' databases on one origin
            // then never contend for the same access handles.
            vfs_name: format!("sealbase-{name}"),
            directory: format!(".sealbase/{name}"),
            ..OpfsSAHPoolCfg::default()
        };
        install::<sqlite_wasm_rs::WasmOsCallback>(&config, true)
            .await
            .map_err(|e| error("StoreError", &format!("OPFS is not available: {e}")))?;
        let db = Db::open(&name, WasmEnv).map_err(db_error)?;
        Ok(Self::new(db, &ak))
    }

    /// A throwaway store in memory (tests, Node).
    #[wasm_bindgen(js_name = openInMemory)]
    pub fn open_in_memory(app_key_bytes: &[u8]) -> Result<Store, JsValue> {
        let ak = app_key(app_key_bytes)?;
        let db = Db::open_in_memory(WasmEnv).map_err(db_error)?;
        Ok(Self::new(db, &ak))
    }

    /// The user's DID in this app.
    pub fn did(&self) -> String {
        self.keys.did().to_string()
    }

    /// Declares a collection (its schema, docs/client.md).
    pub fn define(&mut self, collection: JsValue) -> Result<(), JsValue> {
        let collection: Collection = from_js(&collection, "collection")?;
        self.write(|db| db.define(collection))
    }

    /// Inserts a record; returns it with its id and times. With `id` (a
    /// UUID) the record gets that id; with `resend` as well, an existing
    /// record under that id is the answer (the call was applied before,
    /// by a worker that stopped before answering).
    pub fn insert(
        &mut self,
        collection: &str,
        record: JsValue,
        id: Option<String>,
        resend: Option<bool>,
    ) -> Result<JsValue, JsValue> {
        let record: Value = from_js(&record, "record")?;
        let value = self.write(|db| match id {
            None => db.insert(collection, record),
            Some(id) => match db.insert_with_id(collection, &id, record) {
                Err(DbError::Unique { index, .. }) if index == "id" && resend == Some(true) => {
                    db.get(collection, &id)?.ok_or(DbError::NotFound {
                        collection: collection.to_owned(),
                        id,
                    })
                }
                other => other,
            },
        })?;
        to_js(&value)
    }

    /// Inserts many records in one transaction (all or none) under the
    /// given ids (UUIDs, one per record); returns them stored. With
    /// `resend`, a record whose id exists is answered as stored (the
    /// batch was applied before, by a worker that stopped before
    /// answering).
    #[wasm_bindgen(js_name = insertMany)]
    pub fn insert_many(
        &mut self,
        collection: &str,
        records: JsValue,
        ids: Vec<String>,
        resend: Option<bool>,
    ) -> Result<JsValue, JsValue> {
        let records: Vec<Value> = from_js(&records, "records")?;
        if records.len() != ids.len() {
            return Err(error(
                "TypeError",
                &format!("{} records but {} ids", records.len(), ids.len()),
            ));
        }
        let resend = resend == Some(true);
        let stored = self.write(|db| {
            db.batch(|db| {
                let mut stored = Vec::with_capacity(ids.len());
                for (record, id) in records.into_iter().zip(ids) {
                    let value = match db.insert_with_id(collection, &id, record) {
                        Err(DbError::Unique { index, .. }) if index == "id" && resend => {
                            db.get(collection, &id)?.ok_or(DbError::NotFound {
                                collection: collection.to_owned(),
                                id,
                            })?
                        }
                        other => other?,
                    };
                    stored.push(value);
                }
                Ok(stored)
            })
        })?;
        to_js(&stored)
    }

    /// Replaces a record's fields (creating it if absent).
    pub fn put(&mut self, collection: &str, id: &str, record: JsValue) -> Result<JsValue, JsValue> {
        let record: Value = from_js(&record, "record")?;
        let value = self.write(|db| db.put(collection, id, record))?;
        to_js(&value)
    }

    /// Changes the given fields of a record.
    pub fn patch(
        &mut self,
        collection: &str,
        id: &str,
        patch: JsValue,
    ) -> Result<JsValue, JsValue> {
        let patch: Value = from_js(&patch, "patch")?;
        let value = self.write(|db| db.patch(collection, id, patch))?;
        to_js(&value)
    }

    /// Deletes a record; false if there was none.
    pub fn delete(&mut self, collection: &str, id: &str) -> Result<bool, JsValue> {
        self.write(|db| db.delete(collection, id))
    }

    /// A record, or null.
    pub fn get(&mut self, collection: &str, id: &str) -> Result<JsValue, JsValue> {
        let value = self.read(|db| db.get(collection, id))?;
        to_js(&value)
    }

    /// The records matching `query` (`{filter, sort, limit, offset}`).
    pub fn find(&mut self, collection: &str, query: JsValue) -> Result<JsValue, JsValue> {
        let query: Query = from_js(&query, "query")?;
        let value = self.read(|db| db.find(collection, &query))?;
        to_js(&value)
    }

    /// How many records match `filter`.
    pub fn count(&mut self, collection: &str, filter: JsValue) -> Result<f64, JsValue> {
        let filter: Value = from_js(&filter, "filter")?;
        let n = self.read(|db| db.count(collection, &filter))?;
        #[allow(clippy::cast_precision_loss)]
        Ok(n as f64)
    }

    /// The versions of a record, oldest first: `{hash, author, time}`.
    pub fn history(&mut self, collection: &str, id: &str) -> Result<JsValue, JsValue> {
        let versions = self.read(|db| db.history(collection, id))?;
        let list: Vec<Value> = versions
            .iter()
            .map(|v| json!({"hash": v.hash, "author": v.author, "time": v.time}))
            .collect();
        to_js(&list)
    }

    /// Starts a live query: `[id, first result]`.
    pub fn observe(&mut self, collection: &str, query: JsValue) -> Result<JsValue, JsValue> {
        let query: Query = from_js(&query, "query")?;
        let (id, rows) = self.read(|db| db.observe(collection, query))?;
        to_js(&json!([id, rows]))
    }

    /// Ends a live query.
    pub fn unobserve(&mut self, id: f64) -> Result<(), JsValue> {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let id = id as u64;
        self.read(|db| {
            db.unobserve(id);
            Ok(())
        })
    }

    /// The live queries whose result changed since the last call:
    /// `[[id, rows], …]`.
    #[wasm_bindgen(js_name = takeLiveUpdates)]
    pub fn take_live_updates(&mut self) -> Result<JsValue, JsValue> {
        let updates = self.read(|db| Ok(db.take_live_updates()))?;
        to_js(&updates)
    }

    /// Starts syncing with the server at `url` (`ws(s)://…/api/v1/ws`).
    /// `token()` must resolve to a valid access token; `onStatus` hears
    /// every status change. `check(keys, signatures, messages, lengths)`,
    /// if given, checks pulled records' signatures elsewhere (the SDK's
    /// checker worker runs `verifySignatures`) and resolves to their
    /// flags; without it, or when it fails, the engine checks them itself.
    #[wasm_bindgen(js_name = startSync)]
    pub fn start_sync(
        &mut self,
        url: &str,
        token: js_sys::Function,
        on_status: js_sys::Function,
        check: Option<js_sys::Function>,
    ) -> Result<(), JsValue> {
        let Some(db) = self.db.take() else {
            return Err(error("SyncError", "sync has already started"));
        };
        let (engine, handle) = SyncEngine::new(
            SyncConfig::new(url),
            self.keys.clone(),
            db,
            BrowserConnector,
            checks::BrowserRuntime { check },
            JsTokens(token),
        );
        // Status listeners run on the engine's side and must be Send; the
        // JavaScript callback is called from a local task instead.
        let (tx, mut rx) = mpsc::unbounded::<SyncStatus>();
        handle.status_cell().listen(move |s| {
            let _ = tx.unbounded_send(s.clone());
        });
        spawn_local(async move {
            while let Some(status) = rx.next().await {
                if let Ok(value) = to_js(&status_json(&status)) {
                    let _ = on_status.call1(&JsValue::NULL, &value);
                }
            }
        });
        self.handle = Some(handle);
        spawn_local(engine.run());
        Ok(())
    }

    /// Stops the engine (the store stays open).
    #[wasm_bindgen(js_name = stopSync)]
    pub fn stop_sync(&self) -> Result<(), JsValue> {
        self.handle()?.stop();
        Ok(())
    }

    /// Connects now (the network came back).
    pub fn reconnect(&self) -> Result<(), JsValue> {
        self.handle()?.reconnect();
        Ok(())
    }

    /// The device lost its network: drop the socket now, retry later.
    pub fn offline(&self) -> Result<(), JsValue> {
        self.handle()?.offline();
        Ok(())
    }

    /// The sync status.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        to_js(&status_json(&self.handle()?.status()))
    }

    /// The user's shared spaces: `{id, name, status, role, inviter}`.
    pub fn spaces(&self) -> Result<JsValue, JsValue> {
        let Some(handle) = &self.handle else {
            return to_js(&Vec::<Value>::new());
        };
        let list = handle.spaces().map_err(db_error)?;
        let list: Vec<Value> = list
            .iter()
            .map(|s| {
                json!({
                    "id": s.id.to_string(),
                    "name": s.name,
                    "status": s.status.as_str(),
                    "role": s.role.as_str(),
                    "inviter": s.inviter,
                })
            })
            .collect();
        to_js(&list)
    }

    /// Creates a shared space; resolves to its id.
    #[wasm_bindgen(js_name = createSpace)]
    pub fn create_space(&self, name: String) -> Result<js_sys::Promise, JsValue> {
        self.op(move |h| async move { h.create_space(&name).await.map(|id| id.to_string()) })
    }

    /// Invites the user a key directory entry names (the accounts
    /// server's `GET /api/v1/directory/{handle}` for app `clientId`) with
    /// `role`; the entry's attestation is checked first.
    pub fn invite(
        &self,
        space: &str,
        entry: JsValue,
        client_id: &str,
        role: &str,
    ) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        let entry: sealbase_auth::api::DirectoryEntry = from_js(&entry, "directory entry")?;
        let invitee = Invitee::from_directory(&entry, client_id).map_err(sync_error)?;
        let role = spaces::role_from(role).ok_or_else(|| {
            error(
                "TypeError",
                &format!("{role:?} is not read, write or admin"),
            )
        })?;
        self.op(move |h| async move { h.invite(space, invitee, role).await })
    }

    /// Accepts the invitation to `space`.
    pub fn accept(&self, space: &str) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        self.op(move |h| async move { h.accept(space).await })
    }

    /// Declines the invitation to `space`.
    pub fn decline(&self, space: &str) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        self.op(move |h| async move { h.decline(space).await })
    }

    /// Removes a member (admins): revokes, rotates the key without them.
    #[wasm_bindgen(js_name = removeMember)]
    pub fn remove_member(&self, space: &str, did: &str) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        let did: Did = did
            .parse()
            .map_err(|_| error("TypeError", &format!("{did:?} is not a DID")))?;
        self.op(move |h| async move { h.remove_member(space, did).await })
    }

    /// Rotates the space's key (admins).
    pub fn rotate(&self, space: &str) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        self.op(move |h| async move { h.rotate(space).await })
    }

    /// The members, from the verified membership log:
    /// `{did, handle, role, status, invitedBy}`.
    pub fn members(&self, space: &str) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        self.op(move |h| async move {
            let folded = h.members(space).await?;
            Ok(folded
                .members
                .values()
                .map(|m| {
                    json!({
                        "did": m.did.to_string(),
                        "handle": m.handle,
                        "role": m.role.as_str(),
                        "status": m.status.as_str(),
                        "invitedBy": m.invited_by.to_string(),
                    })
                })
                .collect::<Vec<_>>())
        })
    }

    /// Moves records (with their history) into `space`, or back into the
    /// personal space when `space` is null; returns their new ids.
    #[wasm_bindgen(js_name = moveRecords)]
    pub fn move_records(
        &self,
        collection: &str,
        ids: Vec<String>,
        space: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let to = space.as_deref().map(space_id).transpose()?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let moved = self
            .handle()?
            .move_records(collection, &ids, to)
            .map_err(sync_error)?;
        to_js(&moved)
    }

    /// Uploads `body` as a new file belonging to record `record` (in the
    /// record's space; deleting the record deletes the file); resolves to
    /// the file id, which the app stores in a field of the record.
    #[wasm_bindgen(js_name = uploadFile)]
    pub fn upload_file(
        &self,
        record: String,
        body: web_sys::Blob,
    ) -> Result<js_sys::Promise, JsValue> {
        let id = Uuid::parse_str(&record)
            .map_err(|_| error("TypeError", &format!("{record:?} is not a record id")))?;
        self.file_op(record, move |access| async move {
            let file = files::upload(&access, id, &body).await?;
            Ok(file.to_string().into())
        })
    }

    /// Downloads file `file` of record `record` (from the record's space),
    /// checks and opens it; resolves to a `Blob` of MIME type `kind`.
    #[wasm_bindgen(js_name = downloadFile)]
    pub fn download_file(
        &self,
        record: String,
        file: &str,
        kind: String,
    ) -> Result<js_sys::Promise, JsValue> {
        let file = Uuid::parse_str(file)
            .map_err(|_| error("TypeError", &format!("{file:?} is not a file id")))?;
        self.file_op(record, move |access| async move {
            Ok(files::download(&access, file, &kind).await?.into())
        })
    }

    /// Sets this device's presence in `space` (the app's bytes).
    #[wasm_bindgen(js_name = setPresence)]
    pub fn set_presence(&self, space: &str, data: Vec<u8>) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        self.op(move |h| async move { h.set_presence(space, data).await })
    }

    /// Clears this device's presence in `space`.
    #[wasm_bindgen(js_name = clearPresence)]
    pub fn clear_presence(&self, space: &str) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        self.op(move |h| async move { h.clear_presence(space).await })
    }

    /// The peers present in `space`: `{space, peer, did, seenMs, data}`.
    pub fn presence(&self, space: &str) -> Result<JsValue, JsValue> {
        let space = space_id(space)?;
        let list = js_sys::Array::new();
        for peer in self.handle()?.presence(space) {
            list.push(&peer_js(&peer)?);
        }
        Ok(list.into())
    }

    /// Sends an ephemeral event to the space's other members.
    #[wasm_bindgen(js_name = sendEvent)]
    pub fn send_event(&self, space: &str, data: Vec<u8>) -> Result<js_sys::Promise, JsValue> {
        let space = space_id(space)?;
        self.op(move |h| async move { h.send_event(space, data).await })
    }

    /// Calls `listener` with every presence change and event:
    /// `{type: 'presence' | 'leave' | 'event', space, peer, did?, data?}`.
    #[wasm_bindgen(js_name = onEphemeral)]
    pub fn on_ephemeral(&self, listener: js_sys::Function) -> Result<(), JsValue> {
        let mut rx = self.handle()?.ephemeral();
        spawn_local(async move {
            while let Some(e) = rx.next().await {
                if let Ok(value) = ephemeral_js(&e) {
                    let _ = listener.call1(&JsValue::NULL, &value);
                }
            }
        });
        Ok(())
    }
}
