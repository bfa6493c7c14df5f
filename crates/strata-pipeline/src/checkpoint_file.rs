//! The default checkpoint store: one JSON file, replaced atomically.
//!
//! Saving writes a temporary file in the same directory, fsyncs it, renames it over the
//! checkpoint and fsyncs the directory, so after a crash the file holds either the old or the
//! new checkpoint, never a mix.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use strata_core::{BinlogPos, Checkpoint, CheckpointError, CheckpointStore, GtidSet};

/// The file format's version, written into every checkpoint.
const FORMAT: u32 = 1;

/// A checkpoint kept in a JSON file.
#[derive(Debug, Clone)]
pub struct FileCheckpointStore {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    position: PositionForm,
    gtid_set: Option<String>,
    commit_ts_ms: u64,
    written_at_ms: u64,
    format: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionForm {
    file: String,
    pos: u64,
}

impl FileCheckpointStore {
    /// A store keeping its checkpoint at `path` (its directory is created on first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileCheckpointStore { path: path.into() }
    }

    /// Where the checkpoint lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn temp_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoint".into());
        self.path.with_file_name(format!(".{name}.tmp"))
    }

    fn load_blocking(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(self.corrupt("it is not UTF-8 text".into()))
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    location: self.location(),
                    source,
                })
            }
        };
        let form: FileForm = serde_json::from_str(&text)
            .map_err(|e| self.corrupt(format!("it is not a strata checkpoint ({e})")))?;
        if form.format != FORMAT {
            return Err(self.corrupt(format!(
                "its format is {}, this strata reads format {FORMAT}",
                form.format
            )));
        }
        let gtid_set = match form.gtid_set {
            Some(s) => Some(
                s.parse::<GtidSet>()
                    .map_err(|e| self.corrupt(e.to_string()))?,
            ),
            None => None,
        };
        if form.position.file.is_empty() {
            return Err(self.corrupt("its binlog file name is empty".into()));
        }
        Ok(Some(Checkpoint {
            position: BinlogPos::new(form.position.file, form.position.pos),
            gtid_set,
            commit_ts_ms: form.commit_ts_ms,
            written_at_ms: form.written_at_ms,
        }))
    }

    fn save_blocking(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let io = |source: std::io::Error| CheckpointError::Io {
            location: self.location(),
            source,
        };
        let form = FileForm {
            position: PositionForm {
                file: checkpoint.position.file.clone(),
                pos: checkpoint.position.pos,
            },
            gtid_set: checkpoint.gtid_set.as_ref().map(ToString::to_string),
            commit_ts_ms: checkpoint.commit_ts_ms,
            written_at_ms: checkpoint.written_at_ms,
            format: FORMAT,
        };
        let mut bytes = serde_json::to_vec_pretty(&form)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        bytes.push(b'\n');

        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let temp = self.temp_path();
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&temp, &self.path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io(e));
        }
        // The rename is durable only once the directory entry is.
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    fn corrupt(&self, reason: String) -> CheckpointError {
        CheckpointError::Corrupt {
            location: self.location(),
            reason,
        }
    }
}

#[async_trait::async_trait]
impl CheckpointStore for FileCheckpointStore {
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.load_blocking())
            .await
            .map_err(|e| self.join_error(e))?
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let store = self.clone();
        let checkpoint = checkpoint.clone();
        tokio::task::spawn_blocking(move || store.save_blocking(&checkpoint))
            .await
            .map_err(|e| self.join_error(e))?
    }
}

impl FileCheckpointStore {
    fn join_error(&self, e: tokio::task::JoinError) -> CheckpointError {
        CheckpointError::Io {
            location: self.location(),
            source: std::io::Error::other(format!("checkpoint I/O task failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::MysqlGtidSet;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "strata-ckpt-{name}-{}-{}",
            std::process::id(),
            crate::checkpointer::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn checkpoint(gtid: Option<&str>) -> Checkpoint {
        Checkpoint {
            position: BinlogPos::new("binlog.000042", 5_000_000_000),
            gtid_set: gtid.map(|g| g.parse().unwrap()),
            commit_ts_ms: 1_700_000_000_123,
            written_at_ms: 1_700_000_000_456,
        }
    }

    #[tokio::test]
    async fn round_trips_and_leaves_no_temp_file() {
        let dir = temp_dir("round");
        let store = FileCheckpointStore::new(dir.join("v1/checkpoint.json"));
        assert_eq!(store.load().await.unwrap(), None, "absent means none");

        let mysql = checkpoint(Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77"));
        store.save(&mysql).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(mysql.clone()));
        assert!(matches!(
            store.load().await.unwrap().unwrap().gtid_set,
            Some(GtidSet::Mysql(ref s)) if *s == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77".parse::<MysqlGtidSet>().unwrap()
        ));

        let maria = checkpoint(Some("0-1-9,1-2-3"));
        store.save(&maria).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(maria));
        let plain = checkpoint(None);
        store.save(&plain).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(plain));

        let names: Vec<String> = std::fs::read_dir(dir.join("v1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["checkpoint.json"]);
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"format\": 1"), "{text}");
        assert!(text.contains("\"file\": \"binlog.000042\""), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn corrupt_file_says_where_and_what_to_do() {
        let dir = temp_dir("corrupt");
        let path = dir.join("checkpoint.json");
        let store = FileCheckpointStore::new(&path);
        for (content, expect) in [
            ("{ not json", "not a strata checkpoint"),
            (
                r#"{"position":{"file":"b.1","pos":4},"gtid_set":null,"commit_ts_ms":1,"written_at_ms":1,"format":9}"#,
                "format is 9",
            ),
            (
                r#"{"position":{"file":"b.1","pos":4},"gtid_set":"zzz","commit_ts_ms":1,"written_at_ms":1,"format":1}"#,
                "not a GTID set",
            ),
        ] {
            std::fs::write(&path, content).unwrap();
            let err = store.load().await.unwrap_err();
            assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(expect), "{msg}");
            assert!(msg.contains("move it away"), "{msg}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn unwritable_location_is_an_io_error_naming_it() {
        let dir = temp_dir("unwritable");
        let blocker = dir.join("file");
        std::fs::write(&blocker, "x").unwrap();
        // A path *under a regular file* cannot be created.
        let store = FileCheckpointStore::new(blocker.join("checkpoint.json"));
        let err = store.save(&checkpoint(None)).await.unwrap_err();
        assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
        assert!(err.to_string().contains("checkpoint.json"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
