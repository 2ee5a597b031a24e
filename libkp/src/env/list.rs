//! `karapace list`'s one pass: every record read once, in parallel, with the
//! state users see.

use rayon::prelude::*;

use super::Result;
use super::{EnvRecord, State, META_DIR};
use crate::store::Store;

impl Store {
    /// Every environment with its effective state, sorted as
    /// [`Store::list_envs`] sorts. A run directory with no marker in it is
    /// not locked or looked at further: nothing runs there.
    pub fn list_envs_with_state(&self) -> Result<Vec<(EnvRecord, State)>> {
        let dir = self.root().join("meta").join(META_DIR);
        let Some(dir) = self.existing_dir(&dir)? else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = crate::store_dir_entries(&dir)?
            .into_iter()
            .filter_map(|(n, _)| n.strip_suffix(".json").map(str::to_string))
            .collect();
        let mut out: Vec<(EnvRecord, State)> = ids
            .par_iter()
            .map(|id| -> Result<Option<(EnvRecord, State)>> {
                let Some(rec) = self.read_env(id)? else { return Ok(None) };
                let run = self.env_dir(id).join("run");
                let any_marker = std::fs::read_dir(&run).is_ok_and(|mut d| d.next().is_some());
                let state = if any_marker {
                    self.effective_state(&rec)?
                } else {
                    rec.state
                };
                Ok(Some((rec, state)))
            })
            .filter_map(|r| r.transpose())
            .collect::<Result<_>>()?;
        out.sort_by(|(a, _), (b, _)| {
            (a.name.as_deref().unwrap_or("~"), &a.env_id).cmp(&(b.name.as_deref().unwrap_or("~"), &b.env_id))
        });
        Ok(out)
    }
}
