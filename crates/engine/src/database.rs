//! Facts about the CA database itself (`lockbox db status`).

use lockbox_store::DatabaseStatus;

use crate::core::Core;
use crate::{Actor, EngineResult, Op};

/// The backend, its schema version and its row counts. Whole-table counts
/// cross every manager restriction, so this is the CA administrator's.
pub(crate) async fn status(core: &Core, actor: &Actor) -> EngineResult<DatabaseStatus> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    Ok(core.store.status().await?)
}
