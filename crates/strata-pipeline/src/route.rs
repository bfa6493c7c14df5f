//! Routing: which tables a version replicates, and how each one is written to targets
//! (target name, kept columns, key, guard).

use crate::error::PlanError;
use std::collections::HashMap;
use std::sync::Arc;
use strata_core::{ColumnType, Guard, TableRules, TableSchema, TargetTable};

/// How one source table (in one shape) is written to targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The target table: routed name, kept columns, key.
    pub target: Arc<TargetTable>,
    /// For each kept column, its index in the source row.
    pub col_map: Vec<usize>,
    /// The source row indices of the key columns, in key order.
    pub key: Vec<usize>,
    /// The source row index of the guard column, if the table has one.
    pub guard: Option<usize>,
}

impl Route {
    /// Builds the route of a table, or says why the table cannot be replicated.
    ///
    /// The table's options come from [`TableRules::table_options`]; whether the version
    /// wants the table at all is the caller's question ([`TableRules::wants`]).
    pub fn build(rules: &TableRules, schema: &TableSchema) -> Result<Route, PlanError> {
        let id = &schema.id;
        let rule = rules.table_options(&id.schema, &id.table);
        let names = || {
            schema
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let find = |name: &str, role: &'static str| {
            schema
                .column_index(name)
                .ok_or_else(|| PlanError::UnknownColumn {
                    table: id.clone(),
                    column: name.to_owned(),
                    role,
                    columns: names(),
                })
        };

        let key: Vec<usize> = match rule.filter(|r| !r.key.is_empty()) {
            Some(r) => r
                .key
                .iter()
                .map(|name| find(name, "key"))
                .collect::<Result<_, _>>()?,
            None => schema.primary_key.clone(),
        };
        if key.is_empty() {
            return Err(PlanError::NoKey { table: id.clone() });
        }

        let col_map: Vec<usize> = (0..schema.columns.len())
            .filter(|&i| !rules.column_excluded(&id.schema, &id.table, &schema.columns[i].name))
            .collect();
        let target_key = key
            .iter()
            .map(|&k| {
                col_map
                    .iter()
                    .position(|&c| c == k)
                    .ok_or_else(|| PlanError::KeyExcluded {
                        table: id.clone(),
                        column: schema.columns[k].name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let guard = match rule.map(|r| &r.guard) {
            Some(Guard::Column(name)) => {
                let i = find(name, "guard")?;
                let ty = &schema.columns[i].ty;
                if !is_guard_type(ty) {
                    return Err(PlanError::GuardType {
                        table: id.clone(),
                        column: name.to_owned(),
                        ty: format!("{ty:?}"),
                    });
                }
                Some(i)
            }
            Some(Guard::BinlogOrder) | None => None,
        };

        let target = TargetTable {
            source: id.clone(),
            name: rule
                .and_then(|r| r.target.clone())
                .unwrap_or_else(|| id.table.clone()),
            columns: col_map.iter().map(|&i| schema.columns[i].clone()).collect(),
            key: target_key,
        };
        Ok(Route {
            target: Arc::new(target),
            col_map,
            key,
            guard,
        })
    }
}

/// Integer and temporal columns can order writes; see `plan::guard_value` for the mapping.
fn is_guard_type(ty: &ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::Int { .. }
            | ColumnType::Year
            | ColumnType::Date
            | ColumnType::DateTime { .. }
            | ColumnType::Timestamp { .. }
    )
}

/// Past this many distinct table shapes the cache starts over; shapes change only on DDL,
/// so this is reached only by a pathological stream, and rebuilding is cheap.
const MAX_CACHED_SHAPES: usize = 4096;

/// Routes changes by their table, caching one [`Route`] per distinct table shape.
///
/// The source emits a new `Arc<TableSchema>` per TABLE_MAP event; the cache is keyed by the
/// schema's content (so a DDL that changes columns gets a new route) with a fast path for the
/// `Arc` seen last (consecutive rows share it).
#[derive(Debug)]
pub struct Router {
    rules: TableRules,
    last: Option<(Arc<TableSchema>, Option<Arc<Route>>)>,
    cache: HashMap<Arc<TableSchema>, Option<Arc<Route>>>,
}

impl Router {
    /// A router applying these rules.
    pub fn new(rules: TableRules) -> Self {
        Router {
            rules,
            last: None,
            cache: HashMap::new(),
        }
    }

    /// The rules this router applies.
    pub fn rules(&self) -> &TableRules {
        &self.rules
    }

    /// The route of a table, `None` when the version does not replicate it, or the reason
    /// the table cannot be replicated.
    pub fn route(&mut self, table: &Arc<TableSchema>) -> Result<Option<Arc<Route>>, PlanError> {
        if let Some((schema, route)) = &self.last {
            if Arc::ptr_eq(schema, table) {
                return Ok(route.clone());
            }
        }
        let route = match self.cache.get(table) {
            Some(route) => route.clone(),
            None => {
                let route = if self.rules.wants(&table.id.schema, &table.id.table) {
                    Some(Arc::new(Route::build(&self.rules, table)?))
                } else {
                    None
                };
                if self.cache.len() >= MAX_CACHED_SHAPES {
                    self.cache.clear();
                }
                self.cache.insert(table.clone(), route.clone());
                route
            }
        };
        self.last = Some((table.clone(), route.clone()));
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use strata_core::{Column, ColumnPattern, TableId, TableOptions, TablePattern};

    fn col(name: &str, ty: ColumnType) -> Column {
        Column {
            name: name.into(),
            ty,
            nullable: true,
        }
    }

    fn users(primary_key: Vec<usize>) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            id: TableId::new("app", "users"),
            columns: vec![
                col(
                    "id",
                    ColumnType::Int {
                        bytes: 8,
                        unsigned: false,
                    },
                ),
                col("email", ColumnType::Text { charset: None }),
                col("password_hash", ColumnType::Bytes),
                col("updated_at", ColumnType::DateTime { fsp: 6 }),
                col("bio", ColumnType::Json),
            ],
            primary_key,
        })
    }

    /// Every table of schema `app` except `exclude`, without the `columns`, with `tables`.
    fn rules(exclude: &[&str], columns: &[&str], tables: &[(&str, TableOptions)]) -> TableRules {
        TableRules::new(
            vec!["app".into()],
            vec![TablePattern::parse("*").unwrap()],
            exclude
                .iter()
                .map(|p| TablePattern::parse(p).unwrap())
                .collect(),
            columns
                .iter()
                .map(|p| ColumnPattern::parse(p).unwrap())
                .collect(),
            tables
                .iter()
                .map(|(k, o)| ((*k).to_owned(), o.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn wants_honours_schemas_include_and_exclude() {
        let rules = rules(&["tmp_*", "app.audit"], &[], &[]);
        assert!(rules.wants("app", "users"));
        assert!(!rules.wants("other", "users"));
        assert!(!rules.wants("app", "tmp_1"));
        assert!(!rules.wants("app", "audit"));
    }

    #[test]
    fn route_keeps_columns_maps_key_and_guard() {
        let people = TableOptions {
            target: Some("people".into()),
            key: vec![],
            guard: Guard::Column("updated_at".into()),
        };
        let rules = rules(&[], &["users.password_hash"], &[("users", people)]);
        let route = Route::build(&rules, &users(vec![0])).unwrap();
        assert_eq!(route.target.name, "people");
        assert_eq!(route.col_map, vec![0, 1, 3, 4]);
        let names: Vec<_> = route
            .target
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["id", "email", "updated_at", "bio"]);
        assert_eq!(route.key, vec![0]);
        assert_eq!(route.target.key, vec![0]);
        assert_eq!(route.guard, Some(3));
        assert_eq!(route.target.source, TableId::new("app", "users"));
    }

    #[test]
    fn column_exclusion_ignores_column_case() {
        let rules = rules(&[], &["*.Password_Hash"], &[]);
        let route = Route::build(&rules, &users(vec![0])).unwrap();
        assert_eq!(route.col_map, vec![0, 1, 3, 4]);
        assert_eq!(route.target.name, "users");
        assert_eq!(route.guard, None);
    }

    #[test]
    fn configured_key_replaces_missing_primary_key() {
        let by_email = TableOptions {
            key: vec!["email".into()],
            ..TableOptions::default()
        };
        let rules = rules(&[], &["*.id"], &[("app.users", by_email)]);
        let route = Route::build(&rules, &users(vec![])).unwrap();
        assert_eq!(route.key, vec![1]);
        // `id` is excluded, so `email` is the first kept column.
        assert_eq!(route.target.key, vec![0]);
    }

    #[test]
    fn table_without_key_is_a_config_error_naming_the_fix() {
        let err = Route::build(&rules(&[], &[], &[]), &users(vec![])).unwrap_err();
        assert_eq!(err.kind(), strata_core::ErrorKind::Config);
        let msg = err.to_string();
        assert!(msg.contains("app.users"), "{msg}");
        assert!(
            msg.contains("[versions.<version>.tables.users] key = [\"col\"]"),
            "{msg}"
        );
    }

    #[test]
    fn bad_key_guard_or_exclusion_is_reported() {
        let nope = TableOptions {
            key: vec!["nope".into()],
            ..TableOptions::default()
        };
        let msg = Route::build(&rules(&[], &[], &[("users", nope)]), &users(vec![0]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("no column `nope`") && msg.contains("id, email"),
            "{msg}"
        );

        let json_guard = TableOptions {
            guard: Guard::Column("bio".into()),
            ..TableOptions::default()
        };
        let err =
            Route::build(&rules(&[], &[], &[("users", json_guard)]), &users(vec![0])).unwrap_err();
        assert!(matches!(err, PlanError::GuardType { .. }), "{err}");

        let err = Route::build(&rules(&[], &["users.id"], &[]), &users(vec![0])).unwrap_err();
        assert!(matches!(err, PlanError::KeyExcluded { .. }), "{err}");
    }

    #[test]
    fn router_caches_by_content_and_skips_unwanted_tables() {
        let mut router = Router::new(rules(&[], &[], &[]));
        let a = users(vec![0]);
        let b = users(vec![0]); // same content, another Arc (a new TABLE_MAP)
        let ra = router.route(&a).unwrap().unwrap();
        let rb = router.route(&b).unwrap().unwrap();
        assert!(Arc::ptr_eq(&ra, &rb), "same shape shares one route");

        // A DDL added a column: a new shape, a new route.
        let mut altered = (*a).clone();
        altered.columns.push(col("extra", ColumnType::Year));
        let rc = router.route(&Arc::new(altered)).unwrap().unwrap();
        assert_eq!(rc.target.columns.len(), 6);

        let mut other = (*a).clone();
        other.id = TableId::new("elsewhere", "users");
        assert!(router.route(&Arc::new(other)).unwrap().is_none());
    }
}
