//! Connecting a version's targets for reading back.

use std::sync::Arc;
use strata_config::{Targets, VersionConfig};
use strata_core::{SinkError, TargetReader};
use strata_sinks::mongo::{MongoReader, MongoSettings};
use strata_sinks::postgres::{PostgresReader, PostgresSettings};
use strata_sinks::redis::{RedisReader, RedisSettings};
use strata_sinks::search::{SearchReader, SearchSettings};

/// A reader per configured target of `version`, in the order of the sinks.
pub async fn connect_all(version: &VersionConfig) -> Result<Vec<Arc<dyn TargetReader>>, SinkError> {
    let mut readers: Vec<Arc<dyn TargetReader>> = Vec::new();
    let Targets {
        mongodb,
        redis,
        opensearch,
        postgres,
    } = &version.targets;
    if let Some(t) = mongodb {
        let s = MongoSettings::new(t.url.expose(), t.database.clone());
        readers.push(Arc::new(MongoReader::connect(s).await?));
    }
    if let Some(t) = redis {
        let mut s = RedisSettings::new(t.url.expose());
        s.db = t.db;
        s.key_prefix = t.key_prefix.clone();
        readers.push(Arc::new(RedisReader::connect(s).await?));
    }
    if let Some(t) = opensearch {
        let mut s = SearchSettings::new(t.url.expose(), t.index_prefix.clone());
        s.username = t.username.clone();
        s.password = t.password.as_ref().map(|p| p.expose().to_owned());
        readers.push(Arc::new(SearchReader::connect(s).await?));
    }
    if let Some(t) = postgres {
        let s = PostgresSettings::new(t.url.expose(), t.schema.clone());
        readers.push(Arc::new(PostgresReader::connect(s).await?));
    }
    Ok(readers)
}
