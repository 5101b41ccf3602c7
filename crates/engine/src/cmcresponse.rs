//! CMC failure responses for front ends that hold a [`Ca`].

use crate::ca::Ca;
use crate::error::{EngineError, EngineResult};

/// A signed CMC Full PKI Response reporting `err` for body part `body_part`.
pub async fn failure(ca: &Ca, err: &EngineError, body_part: u32) -> EngineResult<Vec<u8>> {
    crate::reply::failure(ca.core(), err, body_part).await
}
