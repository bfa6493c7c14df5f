//! The isolation lint: no two versions may share a source schema, a server_id or a target
//! namespace, because then one version's writes (or a replica connection) would clobber
//! another's.
//!
//! How things compare, and why:
//! - source schemas: exactly, as MySQL compares schema names on Linux (case-sensitive);
//! - servers: by normalized `host:port` (see [`ServerUrl::same_server`]); two URLs that share
//!   any host are the same server;
//! - MongoDB databases: case-insensitively, as MongoDB refuses two names differing in case;
//! - Redis: overlapping DB ranges;
//! - index prefixes: one a prefix of the other (`jobfirst_` would match the indices of
//!   `jobfirst_future_`);
//! - PostgreSQL schemas: on the same server and database, case-insensitively (an unquoted
//!   identifier folds to lower case, so `Dao` and `dao` may be one schema);
//! - HTTP listen addresses: the same port on the same or an unspecified address (port 0
//!   picks a free port and never conflicts);
//! - checkpoint files: the same path.

use crate::server_url::ServerUrl;
use crate::settings::VersionConfig;
use std::collections::BTreeMap;

/// One line per conflict, naming both versions, the shared thing and the fix. Empty when the
/// versions are isolated.
pub(crate) fn conflicts(versions: &BTreeMap<String, VersionConfig>) -> Vec<String> {
    let list: Vec<&VersionConfig> = versions.values().collect();
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            pair(a, b, &mut out);
        }
    }
    out
}

fn pair(a: &VersionConfig, b: &VersionConfig, out: &mut Vec<String>) {
    let both = format!("versions `{}` and `{}`", a.name, b.name);
    for schema in a.rules.schemas() {
        if b.rules.wants_schema(schema) {
            out.push(format!(
                "{both} both read source schema `{schema}` (compared exactly, as MySQL does on \
                 Linux); give each version its own schemas"
            ));
        }
    }
    if a.server_id == b.server_id {
        out.push(format!(
            "{both} both use server_id {}; give each version its own server_id (the source \
             drops a replica connection when another one uses the same id)",
            a.server_id
        ));
    }
    let same = |x: &ServerUrl, y: &ServerUrl| x.same_server(y);
    if let (Some(x), Some(y)) = (&a.targets.mongodb, &b.targets.mongodb) {
        if same(&x.url, &y.url) && x.database.eq_ignore_ascii_case(&y.database) {
            out.push(format!(
                "{both} both write MongoDB database `{}` on {}; give each version its own \
                 `database`",
                x.database,
                host_of(&x.url)
            ));
        }
    }
    if let (Some(x), Some(y)) = (&a.targets.redis, &b.targets.redis) {
        let overlap = x.dbs.start() <= y.dbs.end() && y.dbs.start() <= x.dbs.end();
        if same(&x.url, &y.url) && overlap {
            out.push(format!(
                "{both} share Redis DBs on {} ({} and {}); give each version its own DB or \
                 non-overlapping `dbs` range",
                host_of(&x.url),
                range(&x.dbs),
                range(&y.dbs)
            ));
        }
    }
    if let (Some(x), Some(y)) = (&a.targets.opensearch, &b.targets.opensearch) {
        let (p, q) = (&x.index_prefix, &y.index_prefix);
        if same(&x.url, &y.url) && (p.starts_with(q.as_str()) || q.starts_with(p.as_str())) {
            out.push(format!(
                "{both} have overlapping index prefixes `{p}` and `{q}` on {} (one is a prefix of \
                 the other, so their index names can collide); make neither prefix start with \
                 the other, e.g. `{}_` and `{}_`",
                host_of(&x.url),
                a.name,
                b.name
            ));
        }
    }
    if let (Some(x), Some(y)) = (&a.targets.postgres, &b.targets.postgres) {
        if same(&x.url, &y.url)
            && x.database() == y.database()
            && x.schema.eq_ignore_ascii_case(&y.schema)
        {
            out.push(format!(
                "{both} both write PostgreSQL schema `{}` in database `{}` on {}; give each \
                 version its own `schema`",
                x.schema,
                x.database(),
                host_of(&x.url)
            ));
        }
    }
    let (ha, hb) = (a.http, b.http);
    if ha.port() != 0
        && ha.port() == hb.port()
        && (ha.ip() == hb.ip() || ha.ip().is_unspecified() || hb.ip().is_unspecified())
    {
        out.push(format!(
            "{both} both listen on {ha} for /metrics and /status; give each version its own \
             `http` port"
        ));
    }
    if a.checkpoint_path() == b.checkpoint_path() {
        out.push(format!(
            "{both} both keep their checkpoint in {}; remove `checkpoint.path` or give each \
             version its own",
            a.checkpoint_path().display()
        ));
    }
}

fn host_of(url: &ServerUrl) -> String {
    url.server_keys().join(",")
}

fn range(r: &std::ops::RangeInclusive<u8>) -> String {
    if r.start() == r.end() {
        format!("DB {}", r.start())
    } else {
        format!("DBs {}-{}", r.start(), r.end())
    }
}
