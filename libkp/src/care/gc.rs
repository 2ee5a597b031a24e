//! `karapace gc`: what no environment, snapshot, image or ref reaches goes.

use super::Result;
use crate::prune::{prune_until, PruneOptions, PruneReport};
use crate::store::Store;

#[derive(Debug, Default)]
pub struct GcReport {
    pub prune: PruneReport,
    /// Environments whose interrupted restore was cleaned up.
    pub recovered: Vec<String>,
}

/// Finishes interrupted restores, then prunes with every environment record
/// (whatever its state: running and archived ones included) as roots.
/// `dry_run` changes nothing and lists exactly what a run would remove;
/// `stop` is asked between removals.
pub fn gc(store: &Store, dry_run: bool, stop: &dyn Fn() -> bool) -> Result<GcReport> {
    let mut recovered = Vec::new();
    if !dry_run {
        for env in store.list_envs()? {
            if crate::drift::recover(store, &env.env_id)? {
                recovered.push(env.env_id);
            }
        }
    }
    let opts = PruneOptions {
        dry_run,
        ..PruneOptions::default()
    };
    let prune = prune_until(store, &[], &opts, stop)?;
    Ok(GcReport { prune, recovered })
}
