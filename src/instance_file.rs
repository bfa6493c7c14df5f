//! `<data_dir>/<version>/replicator.json`: where a version's running replicator can be
//! reached, and how its last run ended. `strata status` and `strata lag` read it to find a
//! replicator listening on an ephemeral port, and to tell a stopped version from a failed
//! one. Written atomically (temp file, rename), so a reader never sees half a file.

use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use strata_config::VersionConfig;

/// A replicator's run, as recorded in its version's data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The process id.
    pub pid: u32,
    /// The address its `/status`, `/metrics` and `/health/*` answer on.
    pub http: SocketAddr,
    /// When it started, ms since the epoch.
    pub started_at_ms: u64,
    /// When it stopped, ms since the epoch; `None` while running (or after a crash).
    pub stopped_at_ms: Option<u64>,
    /// The error that stopped it, if any.
    pub error: Option<String>,
}

/// The file of `version`.
pub fn path(version: &VersionConfig) -> PathBuf {
    version.data_dir().join("replicator.json")
}

/// Writes `instance` to `path`, creating the directory.
pub fn write(path: &Path, instance: &Instance) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(instance).map_err(io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Reads the file; `Ok(None)` when there is none (the version never ran here).
pub fn read(path: &Path) -> io::Result<Option<Instance>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether process `pid` still exists (Linux `/proc`; elsewhere assumed alive, so the
/// caller relies on the HTTP answer alone).
pub fn process_alive(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    proc_root.join(pid.to_string()).exists()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_is_none() {
        let dir = std::env::temp_dir().join(format!("strata_instance_{}", std::process::id()));
        let file = dir.join("v").join("replicator.json");
        assert_eq!(read(&file).unwrap(), None);
        let instance = Instance {
            pid: 42,
            http: "127.0.0.1:9641".parse().unwrap(),
            started_at_ms: 1,
            stopped_at_ms: Some(2),
            error: Some("boom".into()),
        };
        write(&file, &instance).unwrap();
        assert_eq!(read(&file).unwrap(), Some(instance));
        assert!(process_alive(std::process::id()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
