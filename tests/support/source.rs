//! The source server as the tests see it: statements, the binlog end, heartbeats and the
//! rows a table holds, in the comparable text form of [`super::Rows`].

use super::{Row, Rows};
use mysql_async::prelude::Queryable;
use std::fmt;
use std::path::Path;

/// A binlog position ordered the way the server writes it (file sequence, then offset).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub seq: u64,
    pub pos: u64,
    pub file: String,
}

impl Pos {
    pub fn new(file: &str, pos: u64) -> Pos {
        let seq = file
            .rsplit('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("binlog file name without a numeric suffix: {file}"));
        Pos {
            seq,
            pos,
            file: file.to_owned(),
        }
    }

    /// The position in a strata checkpoint file, or `None` when there is none yet (or it is
    /// being replaced this instant).
    pub fn from_checkpoint_file(path: &Path) -> Option<Pos> {
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        let file = json["position"]["file"].as_str()?;
        let pos = json["position"]["pos"].as_u64()?;
        Some(Pos::new(file, pos))
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// A connection to the source server (session time zone UTC, so TIMESTAMPs read as UTC).
pub struct Source {
    pub url: String,
    pub conn: mysql_async::Conn,
    /// Oracle MySQL (else MariaDB).
    pub mysql: bool,
}

impl Source {
    pub async fn connect(url: &str) -> Source {
        let mut conn = super::mysql(url).await;
        conn.query_drop("SET SESSION time_zone = '+00:00'")
            .await
            .expect("set time zone");
        let version: String = conn
            .query_first("SELECT VERSION()")
            .await
            .expect("server version")
            .expect("a version row");
        Source {
            url: url.to_owned(),
            conn,
            mysql: !version.contains("MariaDB"),
        }
    }

    /// Runs each statement in order.
    pub async fn exec(&mut self, statements: &[&str]) {
        super::exec(&mut self.conn, statements).await;
    }

    /// Runs one statement.
    pub async fn run(&mut self, statement: impl AsRef<str>) {
        let s = statement.as_ref();
        self.conn
            .query_drop(s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }

    /// A fresh schema named `schema` holding the tables of `create` (CREATE TABLE
    /// statements without a schema; they run inside it).
    pub async fn create_schema(&mut self, schema: &str, create: &[&str]) {
        self.run(format!("DROP DATABASE IF EXISTS `{schema}`"))
            .await;
        self.run(format!(
            "CREATE DATABASE `{schema}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
        .await;
        self.run(format!("USE `{schema}`")).await;
        for statement in create {
            self.run(statement).await;
        }
    }

    pub async fn drop_schema(&mut self, schema: &str) {
        self.run(format!("DROP DATABASE IF EXISTS `{schema}`"))
            .await;
    }

    /// The end of the binlog: every transaction committed so far lies before it.
    pub async fn binlog_end(&mut self) -> Pos {
        let statement = if self.mysql {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        };
        let row: mysql_async::Row = self
            .conn
            .query_first(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"))
            .unwrap_or_else(|| panic!("{statement}: the server has no binlog"));
        let file: String = row.get(0).expect("binlog file");
        let pos: u64 = row.get(1).expect("binlog position");
        Pos::new(&file, pos)
    }

    /// Commits one small transaction in a schema no test version owns, so every
    /// replicator's checkpoint can move past whatever the binlog holds now.
    pub async fn beat(&mut self) {
        self.exec(&[
            "CREATE DATABASE IF NOT EXISTS strata_e2e_beat",
            "CREATE TABLE IF NOT EXISTS strata_e2e_beat.beat (id INT PRIMARY KEY, at DATETIME(6))",
            "INSERT INTO strata_e2e_beat.beat VALUES (1, NOW(6)) ON DUPLICATE KEY UPDATE at = NOW(6)",
        ])
        .await;
    }

    /// Every row of `schema.table` in the comparable text form, keyed by the `key` column.
    /// The text protocol gives each value as MySQL prints it (`1.50`, `-7`, `héllo`).
    pub async fn rows(&mut self, schema: &str, table: &str, key: &str) -> Rows {
        let statement = format!("SELECT * FROM `{schema}`.`{table}`");
        let rows: Vec<mysql_async::Row> = self
            .conn
            .query(&statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        let mut out = Rows::new();
        for row in rows {
            let columns = row.columns();
            let mut fields = Row::new();
            for (i, column) in columns.iter().enumerate() {
                match row.as_ref(i) {
                    Some(mysql_async::Value::Bytes(b)) => {
                        fields.insert(
                            column.name_str().into_owned(),
                            String::from_utf8_lossy(b).into_owned(),
                        );
                    }
                    Some(mysql_async::Value::NULL) | None => {}
                    Some(other) => panic!("text protocol gave a typed value: {other:?}"),
                }
            }
            let id = fields
                .get(key)
                .unwrap_or_else(|| panic!("{schema}.{table}: row without key column {key}"))
                .clone();
            out.insert(id, fields);
        }
        out
    }

    /// The rows of several tables of one schema.
    pub async fn tables(&mut self, schema: &str, tables: &[&str]) -> TableRows {
        let mut out = TableRows::new();
        for table in tables {
            out.insert((*table).to_owned(), self.rows(schema, table, "id").await);
        }
        out
    }
}

/// Rows by table name.
pub type TableRows = std::collections::BTreeMap<String, Rows>;
