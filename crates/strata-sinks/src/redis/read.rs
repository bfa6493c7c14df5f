//! Reading rows back from Redis for `strata verify` (see [`strata_core::TargetReader`]).
//!
//! A row is the hash `<key_prefix><table>:<id>`; its fields are compared as the bytes the
//! sink stores ([`super::encode::field_value`]), NULL columns being absent fields on both
//! sides. Ids are [`strata_core::SinkOp::id`] texts; a scan splits them back into key parts
//! (each part is [`strata_core::Value::key_text`] of a key value).

use super::encode::{field_value, VERSION_FIELD};
use super::{classify, RedisSettings, SINK};
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use std::collections::BTreeMap;
use strata_core::readback::{parse_sortable, split_key_id};
use strata_core::value::key_id;
use strata_core::{
    ErrorKind, ScanPage, SinkError, StoredKey, StoredRow, StoredVersion, TargetReader, TargetTable,
    Value,
};

/// Reads a version's rows back from Redis.
pub struct RedisReader {
    key_prefix: String,
    timeout: std::time::Duration,
    connection: ConnectionManager,
}

impl RedisReader {
    /// Connects with the sink's settings (URL, DB, key prefix).
    pub async fn connect(settings: RedisSettings) -> Result<RedisReader, SinkError> {
        let connection = super::open_connection(&settings).await?;
        Ok(RedisReader {
            key_prefix: settings.key_prefix,
            timeout: settings.timeout,
            connection,
        })
    }

    fn row_key(&self, table: &TargetTable, id: &str) -> String {
        format!("{}{}:{id}", self.key_prefix, table.name)
    }

    async fn query<T: ::redis::FromRedisValue>(
        &self,
        pipe: &::redis::Pipeline,
        doing: &str,
    ) -> Result<T, SinkError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, pipe.query_async(&mut connection)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(doing, &e)),
            Err(_) => Err(SinkError::new(
                SINK,
                ErrorKind::Timeout,
                format!("{doing} Redis took longer than {:?}", self.timeout),
            )),
        }
    }
}

/// `*`, `?`, `[`, `]` and `\` matched literally in a SCAN pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl TargetReader for RedisReader {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn expected(
        &self,
        table: &TargetTable,
        rows: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        Ok(rows
            .iter()
            .map(|row| {
                let key: Vec<Value> = table.key.iter().map(|&i| row[i].clone()).collect();
                let fields = table
                    .columns
                    .iter()
                    .zip(row)
                    .filter_map(|(c, v)| field_value(v).map(|bytes| (c.name.clone(), bytes)))
                    .collect();
                StoredRow {
                    id: key_id(&key),
                    fields,
                    version: None,
                }
            })
            .collect())
    }

    async fn fetch(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        let mut out = Vec::with_capacity(keys.len());
        for group in keys.chunks(1_000) {
            let ids: Vec<String> = group.iter().map(|k| key_id(k)).collect();
            let mut pipe = ::redis::pipe();
            for id in &ids {
                pipe.cmd("HGETALL").arg(self.row_key(table, id));
            }
            let hashes: Vec<BTreeMap<String, Vec<u8>>> =
                self.query(&pipe, "reading rows from").await?;
            for (id, mut fields) in ids.into_iter().zip(hashes) {
                if fields.is_empty() {
                    continue;
                }
                let version = fields
                    .remove(VERSION_FIELD)
                    .and_then(|v| String::from_utf8(v).ok())
                    .and_then(|v| parse_sortable(&v))
                    .map(StoredVersion::Full);
                out.push(StoredRow {
                    id,
                    fields,
                    version,
                });
            }
        }
        Ok(out)
    }

    async fn scan(
        &self,
        table: &TargetTable,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage, SinkError> {
        let prefix = format!("{}{}:", self.key_prefix, table.name);
        let cursor: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut pipe = ::redis::pipe();
        pipe.cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", glob_escape(&prefix)))
            .arg("COUNT")
            .arg(limit.max(10));
        let ((next, keys),): ((u64, Vec<String>),) = self.query(&pipe, "scanning").await?;
        Ok(ScanPage {
            keys: keys
                .into_iter()
                .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
                .map(|id| StoredKey {
                    parts: split_key_id(&id),
                    id,
                })
                .collect(),
            next: (next != 0).then(|| next.to_string()),
        })
    }
}
