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
    crate::progress::plan(&["recover", "mark", "remove"]);
    crate::progress::phase("recover");
    let mut recovered = Vec::new();
    if !dry_run {
        let envs = store.list_envs()?;
        let total = Some(envs.len() as u64);
        for (done, env) in envs.into_iter().enumerate() {
            crate::progress::report(done as u64, total);
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
