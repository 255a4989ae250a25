//! The Sealbase local store: one SQLite database per app and user holding
//! records as Automerge documents, with typed collections, a Mongo-style
//! query language compiled to SQL over the materialised JSON, and
//! expression indexes.
//!
//! [`schema`] declares collections and validates records; [`doc`] maps a
//! record to and from its Automerge document; [`query`] compiles filters and
//! sorts; [`store`] keeps it all in SQLite ([`Db`]).
//!
//! What it refuses: records that do not satisfy their schema, queries on
//! fields the schema does not have, and any write that would break a unique
//! index; each refusal changes nothing. It reads no clock and draws no
//! randomness itself ([`Env`]), and has no async runtime, so the same code
//! runs natively and in a browser worker.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cached;
pub mod doc;
pub mod query;
mod regexp;
pub mod schema;
pub mod store;
pub mod sync;

pub use query::{Direction, Query, QueryError};
pub use schema::{Collection, Field, FieldType, Index, SchemaError};
pub use store::{Db, DbError, Env, Merged};
pub use sync::{Pending, Quarantined, RemoteRecord};
