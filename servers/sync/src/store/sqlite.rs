//! (placeholder until the backend lands on this branch)
#![allow(missing_docs, unused_variables, clippy::unused_async)]

use super::*;

#[derive(Debug, Clone)]
pub struct SqliteStore;

impl SqliteStore {
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> { Err(StoreError::UnsupportedUrl(url.to_owned())) }
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> { Err(StoreError::Corrupt("placeholder")) }
    pub(crate) async fn ping(&self) -> Result<(), StoreError> { Err(StoreError::Corrupt("placeholder")) }
    pub(crate) async fn ensure_personal_space(&self, space: Uuid, owner: Uuid) -> Result<SpaceInfo, StoreError> { Err(StoreError::Corrupt("placeholder")) }
    pub(crate) async fn space(&self, space: Uuid) -> Result<Option<SpaceInfo>, StoreError> { Err(StoreError::Corrupt("placeholder")) }
    pub(crate) async fn push(&self, space: Uuid, changes: &[Change]) -> Result<PushOutcome, StoreError> { Err(StoreError::Corrupt("placeholder")) }
    pub(crate) async fn pull_page(&self, space: Uuid, since: u64, upto: u64, after: Option<(u64, Uuid)>, limit: u32) -> Result<Vec<RecordRow>, StoreError> { Err(StoreError::Corrupt("placeholder")) }
}
