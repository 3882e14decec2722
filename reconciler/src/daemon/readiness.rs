//! [`Readiness`]: whether the daemon is ready, as a pass leaves it and `/readyz` reports it.

use std::sync::{Arc, PoisonError, RwLock};

/// Whether the daemon is ready, and if not, its status (`not ready` or `degraded`) and why.
/// Cheap to clone; all clones share the state.
#[derive(Debug, Clone)]
pub struct Readiness {
    not_ready: Arc<RwLock<Option<(&'static str, String)>>>,
}

impl Default for Readiness {
    /// Not ready: waiting for the first reconcile.
    fn default() -> Self {
        Readiness {
            not_ready: Arc::new(RwLock::new(Some((
                "not ready",
                "waiting for the first reconcile to finish".to_owned(),
            )))),
        }
    }
}

impl Readiness {
    /// Marks the daemon ready (after the first reconcile finished successfully).
    pub fn set_ready(&self) {
        *self
            .not_ready
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Marks the daemon not ready, with a reason shown by `/readyz`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self
            .not_ready
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(("not ready", reason.into()));
    }

    /// Marks the daemon degraded (passes keep failing), with a reason shown by `/readyz`.
    pub fn set_degraded(&self, reason: impl Into<String>) {
        *self
            .not_ready
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(("degraded", reason.into()));
    }

    /// `Ok` when ready, else the status (`not ready` or `degraded`) and the reason.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match &*self
            .not_ready
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            None => Ok(()),
            Some(not_ready) => Err(not_ready.clone()),
        }
    }
}
