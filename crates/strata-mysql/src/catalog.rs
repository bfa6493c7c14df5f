//! MariaDB's JSON columns. MariaDB stores JSON as LONGTEXT with a `json_valid` CHECK
//! constraint and its TABLE_MAP does not say which LONGTEXT columns are JSON; its catalog
//! does. Asked once per table (and again after DDL), only for tables with LONGTEXT columns.

use crate::config::SourceConfig;
use crate::connect;
use crate::error::SourceError;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::collections::{HashMap, HashSet};

/// Which columns of which tables are JSON, from `information_schema.CHECK_CONSTRAINTS`.
pub(crate) struct JsonCatalog {
    cfg: SourceConfig,
    conn: Option<Conn>,
    known: HashMap<(String, String), HashSet<String>>,
}

impl JsonCatalog {
    /// A catalog reading through its own connection (opened when first needed).
    pub(crate) fn new(cfg: SourceConfig) -> Self {
        JsonCatalog {
            cfg,
            conn: None,
            known: HashMap::new(),
        }
    }

    /// Forgets what it knows: a DDL statement may have changed column types.
    pub(crate) fn forget(&mut self) {
        self.known.clear();
    }

    /// The JSON columns among `candidates` (LONGTEXT columns) of `schema.table`.
    pub(crate) async fn json_columns(
        &mut self,
        schema: &str,
        table: &str,
        candidates: &[String],
    ) -> Result<HashSet<String>, SourceError> {
        let key = (schema.to_owned(), table.to_owned());
        if let Some(names) = self.known.get(&key) {
            return Ok(names.clone());
        }
        let clauses = match self.check_clauses(schema, table).await {
            Ok(c) => c,
            // One retry on a fresh connection: this one may have timed out while idle.
            Err(_) => {
                self.conn = None;
                self.check_clauses(schema, table).await?
            }
        };
        let names: HashSet<String> = candidates
            .iter()
            .filter(|name| {
                let call = format!("json_valid(`{}`)", name.replace('`', "``"));
                clauses.iter().any(|c| c.contains(&call))
            })
            .cloned()
            .collect();
        self.known.insert(key, names.clone());
        Ok(names)
    }

    async fn check_clauses(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<Vec<String>, SourceError> {
        const QUERY: &str = "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?";
        if self.conn.is_none() {
            self.conn = Some(connect::connect(&self.cfg).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Vec::new());
        };
        conn.exec::<String, _, _>(QUERY, (schema, table))
            .await
            .map_err(|source| SourceError::Query {
                query: QUERY.to_owned(),
                source,
            })
    }
}
