//! From the file as written to resolved settings: defaults merged, secrets read, URLs
//! parsed, and every value checked. All problems are collected, so one run shows them all.

use crate::environment::Environment;
use crate::error::Problem;
use crate::file::{
    CheckpointKind, ConfigFile, DefaultsFile, HeartbeatFile, ServerFile, ServersFile, SourceFile,
    TableFile, VersionFile,
};
use crate::key_path::KeyPath;
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::settings::{
    ApplySettings, CheckpointSettings, HeartbeatSettings, MongoTarget, PostgresTarget, RedisTarget,
    SearchTarget, SourceSettings, Targets, TlsMode, TlsSettings, VersionConfig,
};
use std::collections::BTreeMap;
use strata_core::rules::{ColumnPattern, Guard, TableOptions, TablePattern, TableRules};
use strata_core::StartFrom;

/// Highest Redis DB index (Redis's default of 16 databases).
const REDIS_MAX_DB: u8 = 15;

/// Collects problems while resolving.
struct Resolver<'e> {
    env: &'e Environment,
    problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn problem(&mut self, key: KeyPath, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    fn secret(&mut self, key: KeyPath, secret: Option<Secret>) -> Option<Secret> {
        let mut secret = secret?;
        match secret.resolve(self.env) {
            Ok(()) => Some(secret),
            Err(why) => {
                self.problem(key.clone(), format!("`{key}`: {why}"));
                None
            }
        }
    }

    /// A URL with its separately given credentials applied.
    fn url(
        &mut self,
        key: &KeyPath,
        url: &str,
        username: Option<String>,
        password: Option<Secret>,
        schemes: &[&str],
        example: &str,
    ) -> Option<ServerUrl> {
        let password = self.secret(key.key("password"), password);
        let parsed = ServerUrl::parse(url, schemes, example)
            .and_then(|u| u.with_credentials(username, password));
        match parsed {
            Ok(u) => Some(u),
            Err(why) => {
                let key = key.key("url");
                self.problem(key.clone(), format!("`{key}`: {why}"));
                None
            }
        }
    }

    fn positive(&mut self, key: KeyPath, value: usize) -> usize {
        if value == 0 {
            self.problem(
                key.clone(),
                format!("`{key}` is 0; it must be a whole number greater than zero"),
            );
        }
        value
    }
}

/// Resolves and validates the file; the problems are in file order where possible.
pub(crate) fn resolve(
    file: ConfigFile,
    env: &Environment,
) -> Result<(SourceSettings, BTreeMap<String, VersionConfig>), Vec<Problem>> {
    let mut r = Resolver {
        env,
        problems: Vec::new(),
    };
    let source = source(&mut r, file.source);
    let servers = Servers::resolve(&mut r, file.servers);
    let defaults = file.defaults;
    let base = apply_defaults(&mut r, &defaults);
    if file.versions.is_empty() {
        r.problem(
            KeyPath::of(&["versions"]),
            "no version is configured; add a [versions.<name>] table with server_id, schemas \
             and at least one target ([versions.<name>.mongodb], .redis, .opensearch or \
             .postgres)",
        );
    }
    let mut versions = BTreeMap::new();
    for (name, v) in file.versions {
        if let Some(resolved) = version(&mut r, &name, v, &servers, &defaults, base) {
            versions.insert(name, resolved);
        }
    }
    match source {
        Some(source) if r.problems.is_empty() => Ok((source, versions)),
        _ => Err(r.problems),
    }
}

fn source(r: &mut Resolver, s: SourceFile) -> Option<SourceSettings> {
    let key = KeyPath::of(&["source"]);
    let url = r.url(
        &key,
        &s.url,
        s.username,
        s.password,
        &["mysql"],
        "mysql://strata@127.0.0.1:3306",
    );
    let tls_key = key.key("tls");
    match (s.tls.mode, &s.tls.ca_file) {
        (TlsMode::VerifyCa, None) => r.problem(
            tls_key.key("mode"),
            "`source.tls.mode` is \"verify-ca\" but no CA is given; add `ca_file = \
             \"/path/to/ca.pem\"` to source.tls, or use \"required\"",
        ),
        (TlsMode::Disabled, Some(_)) => r.problem(
            tls_key.key("ca_file"),
            "`source.tls.ca_file` is set but TLS is disabled; remove ca_file or set mode = \
             \"verify-ca\"",
        ),
        _ => {}
    }
    if s.read_timeout.0 <= s.heartbeat.0 {
        r.problem(
            key.key("read_timeout"),
            format!(
                "`source.read_timeout` ({:?}) must be longer than `source.heartbeat` ({:?}), or \
                 an idle source looks dead; raise read_timeout (e.g. 6 × heartbeat)",
                s.read_timeout.0, s.heartbeat.0
            ),
        );
    }
    Some(SourceSettings {
        url: url?,
        tls: TlsSettings {
            mode: s.tls.mode,
            ca_file: s.tls.ca_file,
        },
        heartbeat: s.heartbeat.0,
        read_timeout: s.read_timeout.0,
        connect_timeout: s.connect_timeout.0,
    })
}

/// The target servers, parsed.
struct Servers {
    mongodb: Option<ServerUrl>,
    redis: Option<ServerUrl>,
    opensearch: Option<(ServerUrl, Option<String>, Option<Secret>)>,
    postgres: Option<ServerUrl>,
}

const MONGO: (&[&str], &str) = (&["mongodb", "mongodb+srv"], "mongodb://127.0.0.1:27017");
const REDIS: (&[&str], &str) = (&["redis", "rediss"], "redis://127.0.0.1:6379");
const SEARCH: (&[&str], &str) = (&["http", "https"], "http://127.0.0.1:9200");
const POSTGRES: (&[&str], &str) = (
    &["postgres", "postgresql"],
    "postgres://strata@127.0.0.1:5432/postgres",
);

impl Servers {
    fn resolve(r: &mut Resolver, s: ServersFile) -> Servers {
        let key = KeyPath::of(&["servers"]);
        let mut one = |kind: &str, f: Option<ServerFile>, (schemes, ex): (&[&str], &str)| {
            f.and_then(|f| r.url(&key.key(kind), &f.url, f.username, f.password, schemes, ex))
        };
        let mongodb = one("mongodb", s.mongodb, MONGO);
        let redis = one("redis", s.redis, REDIS);
        let postgres = one("postgres", s.postgres, POSTGRES);
        let opensearch = s
            .opensearch
            .and_then(|f| search_server(r, &key.key("opensearch"), f));
        Servers {
            mongodb,
            redis,
            opensearch,
            postgres,
        }
    }
}

/// OpenSearch takes its credentials apart from the URL (HTTP basic auth).
fn search_server(
    r: &mut Resolver,
    key: &KeyPath,
    f: ServerFile,
) -> Option<(ServerUrl, Option<String>, Option<Secret>)> {
    let password = r.secret(key.key("password"), f.password);
    let url = r.url(key, &f.url, None, None, SEARCH.0, SEARCH.1)?;
    if url.username().is_some() || url.password().is_some() {
        let k = key.key("url");
        r.problem(
            k.clone(),
            format!(
                "`{k}` carries credentials; give them as `username` and `password = {{ env = \
                 \"…\" }}` instead"
            ),
        );
        return None;
    }
    Some((url, f.username, password))
}

fn apply_defaults(r: &mut Resolver, d: &DefaultsFile) -> ApplySettings {
    let key = KeyPath::of(&["defaults"]);
    ApplySettings {
        tombstone_ttl: d.tombstone_ttl.0,
        batch_max_rows: r.positive(key.key("batch_max_rows"), d.batch_max_rows),
        batch_max_bytes: d.batch_max_bytes.0,
        batch_max_delay: d.batch_max_delay.0,
        workers: r.positive(key.key("workers"), d.workers),
        queue_capacity: r.positive(key.key("queue_capacity"), d.queue_capacity),
        lag_alert: d.lag_alert.0,
    }
}

fn valid_version_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn version(
    r: &mut Resolver,
    name: &str,
    mut v: VersionFile,
    servers: &Servers,
    defaults: &DefaultsFile,
    base: ApplySettings,
) -> Option<VersionConfig> {
    let key = KeyPath::of(&["versions", name]);
    let before = r.problems.len();
    if !valid_version_name(name) {
        r.problem(
            key.clone(),
            format!(
                "version name \"{name}\" may only have lowercase letters, digits, `_` and `-` \
                 (it names directories, metrics and environment overrides); rename \
                 [versions.{name}]"
            ),
        );
    }
    if v.server_id == 0 {
        r.problem(
            key.key("server_id"),
            format!(
                "`{key}.server_id` is 0, which MySQL refuses for a replica; pick a number from \
                 1 to 4294967295 that no other server or version uses"
            ),
        );
    }
    let heartbeat = v
        .heartbeat
        .take()
        .and_then(|h| heartbeat(r, &key.key("heartbeat"), h, &v.schemas));
    let rules = rules(r, &key, &v, heartbeat.as_ref());
    let start = match v.start.parse::<StartFrom>() {
        Ok(s) => Some(s),
        Err(why) => {
            r.problem(key.key("start"), format!("`{key}.start`: {why}"));
            None
        }
    };
    let data_dir = defaults.data_dir.join(name);
    let checkpoint = match v.checkpoint.kind {
        CheckpointKind::File => CheckpointSettings::File {
            path: v
                .checkpoint
                .path
                .take()
                .unwrap_or_else(|| data_dir.join("checkpoint.json")),
        },
    };
    let apply = ApplySettings {
        tombstone_ttl: v.tombstone_ttl.map_or(base.tombstone_ttl, |d| d.0),
        batch_max_rows: v.batch_max_rows.map_or(base.batch_max_rows, |n| {
            r.positive(key.key("batch_max_rows"), n)
        }),
        batch_max_bytes: v.batch_max_bytes.map_or(base.batch_max_bytes, |s| s.0),
        batch_max_delay: v.batch_max_delay.map_or(base.batch_max_delay, |d| d.0),
        workers: v
            .workers
            .map_or(base.workers, |n| r.positive(key.key("workers"), n)),
        queue_capacity: v.queue_capacity.map_or(base.queue_capacity, |n| {
            r.positive(key.key("queue_capacity"), n)
        }),
        lag_alert: v.lag_alert.map_or(base.lag_alert, |d| d.0),
    };
    let (server_id, http) = (v.server_id, v.http.unwrap_or(defaults.http));
    let targets = targets(r, &key, v, servers);
    if r.problems.len() > before {
        return None;
    }
    Some(VersionConfig {
        name: name.to_owned(),
        server_id,
        rules: rules?,
        start: start?,
        checkpoint,
        http,
        apply,
        targets,
        heartbeat,
        data_dir,
    })
}

/// Whether `name` is a plain MySQL identifier strata can write unquoted in SQL.
fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// The heartbeat row's settings: its schema must be one of the version's own.
fn heartbeat(
    r: &mut Resolver,
    key: &KeyPath,
    h: HeartbeatFile,
    schemas: &[String],
) -> Option<HeartbeatSettings> {
    let before = r.problems.len();
    let schema = match h.schema {
        Some(s) if schemas.contains(&s) => Some(s),
        Some(s) => {
            let k = key.key("schema");
            let fix = match schemas.first() {
                Some(first) => {
                    format!("name one of them, or remove `schema` to use the first (\"{first}\")")
                }
                None => "list the schema in `schemas` first".to_owned(),
            };
            r.problem(
                k.clone(),
                format!(
                    "`{k}` = \"{s}\" is not one of the version's schemas ({}); strata writes \
                     the heartbeat row only into a schema the version reads; {fix}",
                    schemas.join(", ")
                ),
            );
            None
        }
        // No schema at all is reported with `schemas`.
        None => schemas.first().cloned(),
    };
    if !plain_identifier(&h.table) {
        let k = key.key("table");
        r.problem(
            k.clone(),
            format!(
                "`{k}` = \"{}\" is not a plain table name; use 1 to 64 letters, digits and `_`, \
                 e.g. \"strata_heartbeat\"",
                h.table
            ),
        );
    }
    if let Some(s) = schema.as_deref().filter(|s| !plain_identifier(s)) {
        let k = key.key("schema");
        r.problem(
            k.clone(),
            format!(
                "the heartbeat schema \"{s}\" is not a plain name (letters, digits and `_`); \
                 set `{k}` to another of the version's schemas, or remove `heartbeat`"
            ),
        );
    }
    if h.interval.0.is_zero() {
        let k = key.key("interval");
        r.problem(
            k.clone(),
            format!("`{k}` is 0; write how often the row is written, e.g. \"10s\""),
        );
    }
    if r.problems.len() > before {
        return None;
    }
    Some(HeartbeatSettings {
        schema: schema?,
        table: h.table,
        interval: h.interval.0,
    })
}

fn non_empty_names(r: &mut Resolver, key: &KeyPath, names: &[String], what: &str) {
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() {
            let k = key.index(i);
            r.problem(k.clone(), format!("`{k}` is empty; give a {what}"));
        }
    }
}

fn rules(
    r: &mut Resolver,
    key: &KeyPath,
    v: &VersionFile,
    heartbeat: Option<&HeartbeatSettings>,
) -> Option<TableRules> {
    let before = r.problems.len();
    let schemas_key = key.key("schemas");
    if v.schemas.is_empty() {
        r.problem(
            schemas_key.clone(),
            format!(
                "`{schemas_key}` is empty; list the source schemas this version reads, e.g. \
                 schemas = [\"jobfirst_future\"]"
            ),
        );
    }
    non_empty_names(r, &schemas_key, &v.schemas, "schema name");
    for (i, s) in v.schemas.iter().enumerate() {
        if v.schemas[..i].contains(s) {
            let k = schemas_key.index(i);
            r.problem(
                k.clone(),
                format!("`{k}`: schema \"{s}\" is listed twice; list it once"),
            );
        }
    }
    let mut patterns = |field: &str, list: &[String]| -> Vec<TablePattern> {
        let k = key.key(field);
        list.iter()
            .enumerate()
            .filter_map(|(i, p)| match TablePattern::parse(p) {
                Ok(p) => Some(p),
                Err(why) => {
                    let k = k.index(i);
                    r.problem(k.clone(), format!("`{k}`: {why}"));
                    None
                }
            })
            .collect()
    };
    let include = patterns("include", &v.include);
    let mut exclude = patterns("exclude", &v.exclude);
    // The heartbeat table's rows never reach a target; its commits still flow through.
    if let Some(h) = heartbeat {
        match TablePattern::parse(&format!("{}.{}", h.schema, h.table)) {
            Ok(p) => exclude.push(p),
            Err(why) => r.problem(key.key("heartbeat"), format!("`{key}.heartbeat`: {why}")),
        }
    }
    if v.include.is_empty() {
        let k = key.key("include");
        r.problem(
            k.clone(),
            format!("`{k}` is empty, so no table would be replicated; use [\"*\"] for every table"),
        );
    }
    let columns_key = key.key("exclude_columns");
    let exclude_columns = v
        .exclude_columns
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match ColumnPattern::parse(p) {
            Ok(p) => Some(p),
            Err(why) => {
                let k = columns_key.index(i);
                r.problem(k.clone(), format!("`{k}`: {why}"));
                None
            }
        })
        .collect();
    let mut tables = BTreeMap::new();
    let mut targets_seen: BTreeMap<String, String> = BTreeMap::new();
    for (table, t) in &v.tables {
        let tk = key.key("tables").key(table);
        let options = table_options(r, &tk, t);
        let target = options.target.clone().unwrap_or_else(|| {
            table
                .rsplit_once('.')
                .map_or(table.as_str(), |(_, t)| t)
                .to_owned()
        });
        if let Some(other) = targets_seen.insert(target.clone(), table.clone()) {
            r.problem(
                tk.key("target"),
                format!(
                    "tables \"{other}\" and \"{table}\" of [{key}] would both be written as \
                     \"{target}\" in every target; give one of them another `target`"
                ),
            );
        }
        tables.insert(table.clone(), options);
    }
    if r.problems.len() > before {
        return None;
    }
    Some(TableRules::new(
        v.schemas.clone(),
        include,
        exclude,
        exclude_columns,
        tables,
    ))
}

fn table_options(r: &mut Resolver, key: &KeyPath, t: &TableFile) -> TableOptions {
    if t.target.as_deref().is_some_and(|n| n.trim().is_empty()) {
        let k = key.key("target");
        r.problem(
            k.clone(),
            format!("`{k}` is empty; name the table in targets, or remove it"),
        );
    }
    let key_columns = t.key.clone().unwrap_or_default();
    if t.key.as_ref().is_some_and(Vec::is_empty) {
        let k = key.key("key");
        r.problem(
            k.clone(),
            format!(
                "`{k}` is empty; list the columns that identify a row, e.g. [\"id\"], or remove it"
            ),
        );
    }
    non_empty_names(r, &key.key("key"), &key_columns, "column name");
    let guard = match t.guard.as_deref().map(str::trim) {
        None => Guard::BinlogOrder,
        Some("") => {
            let k = key.key("guard");
            r.problem(
                k.clone(),
                format!(
                    "`{k}` is empty; name a column such as \"updated_at\", or remove `guard` \
                     to order writes by the binlog"
                ),
            );
            Guard::BinlogOrder
        }
        Some(column) => Guard::Column(column.to_owned()),
    };
    TableOptions {
        target: t.target.clone(),
        key: key_columns,
        guard,
    }
}

/// The server for one target of a version: the version's own `url`, else `[servers.<kind>]`.
fn target_server(
    r: &mut Resolver,
    key: &KeyPath,
    kind: &str,
    own: (Option<String>, Option<String>, Option<Secret>),
    shared: Option<&ServerUrl>,
    (schemes, example): (&[&str], &str),
) -> Option<ServerUrl> {
    match own {
        (Some(url), username, password) => r.url(key, &url, username, password, schemes, example),
        (None, None, None) => match shared {
            Some(url) => Some(url.clone()),
            // [servers.<kind>] is there but broken, and already reported.
            None if r
                .problems
                .iter()
                .any(|p| p.key.starts_with(&KeyPath::of(&["servers", kind]))) =>
            {
                None
            }
            None => {
                r.problem(
                    key.clone(),
                    format!(
                        "[{key}] has no server: add [servers.{kind}] with `url = \"{example}\"`, \
                         or give this version its own `url`"
                    ),
                );
                None
            }
        },
        (None, _, _) => {
            r.problem(
                key.clone(),
                format!(
                    "[{key}] sets `username` or `password` without `url`; credentials of the \
                     shared server go in [servers.{kind}]"
                ),
            );
            None
        }
    }
}

fn targets(r: &mut Resolver, key: &KeyPath, v: VersionFile, servers: &Servers) -> Targets {
    let declared =
        v.mongodb.is_some() || v.redis.is_some() || v.opensearch.is_some() || v.postgres.is_some();
    let mut t = Targets::default();
    if let Some(m) = v.mongodb {
        let k = key.key("mongodb");
        check_mongo_database(r, &k.key("database"), &m.database);
        let url = target_server(
            r,
            &k,
            "mongodb",
            (m.url, m.username, m.password),
            servers.mongodb.as_ref(),
            MONGO,
        );
        t.mongodb = url.map(|url| MongoTarget {
            url,
            database: m.database,
        });
    }
    if let Some(red) = v.redis {
        let k = key.key("redis");
        let dbs = match (red.db, red.dbs) {
            (Some(db), None) => Some((db, db)),
            (None, Some(range)) => Some((range.0, range.1)),
            (None, None) => {
                r.problem(
                    k.key("db"),
                    format!("[{k}] needs `db = <0-15>` or `dbs = \"<first>-<last>\"`; add one"),
                );
                None
            }
            (Some(_), Some(_)) => {
                r.problem(
                    k.key("dbs"),
                    format!("[{k}] sets both `db` and `dbs`; keep one"),
                );
                None
            }
        };
        if let Some((_, last)) = dbs.filter(|(_, last)| *last > REDIS_MAX_DB) {
            let field = if red.db.is_some() { "db" } else { "dbs" };
            let kk = k.key(field);
            r.problem(
                kk.clone(),
                format!(
                    "`{kk}` reaches DB {last}, but Redis has DBs 0 to {REDIS_MAX_DB} by default; \
                     use DBs from 0 to {REDIS_MAX_DB}"
                ),
            );
        }
        if red.key_prefix.is_empty() {
            let kk = k.key("key_prefix");
            r.problem(
                kk.clone(),
                format!(
                    "`{kk}` is empty; give a prefix such as \"{}:\"",
                    key_last(key)
                ),
            );
        }
        let url = target_server(
            r,
            &k,
            "redis",
            (red.url, red.username, red.password),
            servers.redis.as_ref(),
            REDIS,
        );
        if let Some(u) = url.as_ref().filter(|u| !u.path().is_empty()) {
            let kk = k.key("url");
            r.problem(
                kk.clone(),
                format!(
                    "the Redis URL of [{k}] names DB \"{}\"; leave the DB out of the URL and \
                     set `db` (or `dbs`) in [{k}]",
                    u.path()
                ),
            );
        }
        if let (Some(url), Some((first, last))) = (url, dbs) {
            t.redis = Some(RedisTarget {
                url,
                db: first,
                dbs: first..=last,
                key_prefix: red.key_prefix,
            });
        }
    }
    if let Some(s) = v.opensearch {
        let k = key.key("opensearch");
        check_index_prefix(r, &k.key("index_prefix"), &s.index_prefix, &key_last(key));
        let server = match (s.url, s.username, s.password) {
            (Some(url), username, password) => search_server(
                r,
                &k,
                ServerFile {
                    url,
                    username,
                    password,
                },
            ),
            (None, None, None) => servers.opensearch.clone().or_else(|| {
                target_server(r, &k, "opensearch", (None, None, None), None, SEARCH);
                None
            }),
            own => {
                target_server(r, &k, "opensearch", own, None, SEARCH);
                None
            }
        };
        t.opensearch = server.map(|(url, username, password)| SearchTarget {
            url,
            index_prefix: s.index_prefix,
            username,
            password,
        });
    }
    if let Some(p) = v.postgres {
        let k = key.key("postgres");
        let kk = k.key("schema");
        if p.schema.trim().is_empty() || p.schema.len() > 63 {
            r.problem(
                kk.clone(),
                format!(
                    "`{kk}` must be a PostgreSQL schema name of 1 to 63 bytes, e.g. \"{}\"",
                    key_last(key)
                ),
            );
        }
        let url = target_server(
            r,
            &k,
            "postgres",
            (p.url, p.username, p.password),
            servers.postgres.as_ref(),
            POSTGRES,
        );
        t.postgres = url.map(|url| PostgresTarget {
            url,
            schema: p.schema,
        });
    }
    if !declared {
        r.problem(
            key.clone(),
            format!(
                "[{key}] has no target, so its changes would go nowhere; add at least one of \
                 [{key}.mongodb] (database), [{key}.redis] (db, key_prefix), \
                 [{key}.opensearch] (index_prefix) or [{key}.postgres] (schema)"
            ),
        );
    }
    t
}

fn key_last(key: &KeyPath) -> String {
    key.last_key().unwrap_or("app").to_owned()
}

fn check_mongo_database(r: &mut Resolver, key: &KeyPath, name: &str) {
    let bad = name.chars().find(|c| "/\\. \"$\0".contains(*c));
    if name.is_empty() || name.len() > 63 || bad.is_some() {
        r.problem(
            key.clone(),
            format!(
                "`{key}` = \"{name}\" is not a MongoDB database name: use 1 to 63 characters \
                 without / \\ . space \" or $, e.g. \"jobfirst_future\""
            ),
        );
    }
}

fn check_index_prefix(r: &mut Resolver, key: &KeyPath, prefix: &str, version: &str) {
    let bad = prefix.chars().find(|c| "\\/*?\"<>| ,#:".contains(*c));
    let why = if prefix.is_empty() {
        Some("is empty".to_owned())
    } else if prefix.chars().any(|c| c.is_uppercase()) {
        Some("has uppercase letters, which index names may not".to_owned())
    } else if let Some(c) = bad {
        Some(format!("has `{c}`, which index names may not"))
    } else if prefix.starts_with(['_', '-', '+']) {
        Some("starts with `_`, `-` or `+`, which index names may not".to_owned())
    } else {
        None
    };
    if let Some(why) = why {
        r.problem(
            key.clone(),
            format!(
                "`{key}` = \"{prefix}\" {why}; use lowercase letters, digits and `_`, e.g. \
                 \"{version}_\""
            ),
        );
    }
}
