use super::*;
use crate::route::Route;
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_core::{
    Column, ColumnPattern, ColumnType, Date, DateTime, ErrorKind, Guard, TableId, TableOptions,
    TablePattern, TableRules, TableSchema,
};

fn schema(guard_ty: ColumnType) -> Arc<TableSchema> {
    let col = |name: &str, ty: ColumnType| Column {
        name: name.into(),
        ty,
        nullable: true,
    };
    Arc::new(TableSchema {
        id: TableId::new("shop", "orders"),
        columns: vec![
            col(
                "id",
                ColumnType::Int {
                    bytes: 4,
                    unsigned: false,
                },
            ),
            col("note", ColumnType::Text { charset: None }),
            col("secret", ColumnType::Bytes),
            col("changed", guard_ty),
        ],
        primary_key: vec![0],
    })
}

fn route_with(guard: bool, exclude: &[&str], guard_ty: ColumnType) -> (Route, Arc<TableSchema>) {
    let mut tables = BTreeMap::new();
    if guard {
        tables.insert(
            "orders".into(),
            TableOptions {
                guard: Guard::Column("changed".into()),
                ..TableOptions::default()
            },
        );
    }
    let rules = TableRules::new(
        vec!["shop".into()],
        vec![TablePattern::parse("*").unwrap()],
        vec![],
        exclude
            .iter()
            .map(|p| ColumnPattern::parse(p).unwrap())
            .collect(),
        tables,
    );
    let table = schema(guard_ty);
    (Route::build(&rules, &table).unwrap(), table)
}

fn plain() -> (Route, Arc<TableSchema>) {
    route_with(false, &[], ColumnType::DateTime { fsp: 0 })
}

fn row(id: i64, note: &str, changed: Value) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::String(note.into()),
        Value::Bytes(vec![1, 2]),
        changed,
    ]
}

fn change(
    table: &Arc<TableSchema>,
    op: Op,
    before: Option<Vec<Value>>,
    after: Option<Vec<Value>>,
) -> RowChange {
    RowChange {
        table: table.clone(),
        op,
        before,
        after,
        file: Arc::from("binlog.000007"),
        event_pos: 1234,
        gtid: None,
        ts_ms: 1_700_000_000_000,
        order: 42,
    }
}

fn datetime(y: u16, mo: u8, d: u8, h: u8, micros: u32) -> Value {
    Value::DateTime(DateTime {
        date: Date {
            year: y,
            month: mo,
            day: d,
        },
        hour: h,
        minute: 0,
        second: 0,
        micros,
    })
}

#[test]
fn insert_becomes_an_upsert_of_the_after_image() {
    let (route, table) = plain();
    let after = row(7, "hi", Value::Null);
    let ops = plan(
        &change(&table, Op::Insert, None, Some(after.clone())),
        &route,
    )
    .unwrap()
    .into_vec();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].key, vec![Value::Int(7)]);
    assert_eq!(ops[0].kind, SinkOpKind::Upsert(after));
    assert_eq!(ops[0].version, Version::from_order(42));
    assert!(Arc::ptr_eq(&ops[0].table, &route.target));
}

#[test]
fn update_with_same_key_is_one_upsert() {
    let (route, table) = plain();
    let before = row(7, "old", Value::Null);
    let after = row(7, "new", Value::Null);
    let ops = plan(
        &change(&table, Op::Update, Some(before), Some(after.clone())),
        &route,
    )
    .unwrap()
    .into_vec();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].kind, SinkOpKind::Upsert(after));
}

#[test]
fn update_that_changes_the_key_deletes_the_old_key_first() {
    let (route, table) = route_with(true, &[], ColumnType::DateTime { fsp: 6 });
    let before = row(7, "x", datetime(2024, 1, 1, 0, 0));
    let after = row(8, "x", datetime(2024, 1, 2, 0, 0));
    let ops = plan(
        &change(&table, Op::Update, Some(before), Some(after.clone())),
        &route,
    )
    .unwrap()
    .into_vec();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0].kind, SinkOpKind::Delete);
    assert_eq!(ops[0].key, vec![Value::Int(7)]);
    assert_eq!(ops[1].kind, SinkOpKind::Upsert(after));
    assert_eq!(ops[1].key, vec![Value::Int(8)]);
    // Both carry the change's order; each side its own image's guard.
    assert_eq!(ops[0].version.order, 42);
    assert_eq!(ops[1].version.order, 42);
    assert_eq!(ops[0].version.guard, Some(1_704_067_200_000_000));
    assert_eq!(ops[1].version.guard, Some(1_704_153_600_000_000));
}

#[test]
fn delete_removes_the_before_key_with_the_before_guard() {
    let (route, table) = route_with(
        true,
        &[],
        ColumnType::Int {
            bytes: 8,
            unsigned: false,
        },
    );
    let before = row(9, "bye", Value::Int(17));
    let ops = plan(&change(&table, Op::Delete, Some(before), None), &route)
        .unwrap()
        .into_vec();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].kind, SinkOpKind::Delete);
    assert_eq!(ops[0].key, vec![Value::Int(9)]);
    assert_eq!(
        ops[0].version,
        Version {
            guard: Some(17),
            order: 42
        }
    );
}

#[test]
fn guard_values_map_to_ordered_integers() {
    assert_eq!(guard_value(&Value::Int(-5)), Some(-5));
    assert_eq!(guard_value(&Value::UInt(5)), Some(5));
    assert_eq!(guard_value(&Value::UInt(u64::MAX)), None);
    assert_eq!(guard_value(&Value::Year(2024)), Some(2024));
    assert_eq!(
        guard_value(&datetime(1970, 1, 1, 1, 5)),
        Some(3_600_000_005)
    );
    assert_eq!(
        guard_value(&Value::Date(Date {
            year: 1970,
            month: 1,
            day: 2
        })),
        Some(86_400_000_000)
    );
    assert_eq!(guard_value(&Value::Timestamp(Some(123))), Some(123));
    // NULL and zero dates order before every real guard.
    assert_eq!(guard_value(&Value::Null), Some(i64::MIN));
    assert_eq!(guard_value(&Value::Timestamp(None)), Some(i64::MIN));
    assert_eq!(guard_value(&datetime(0, 0, 0, 0, 0)), Some(i64::MIN));
    assert_eq!(guard_value(&Value::String("x".into())), None);
}

#[test]
fn null_guard_loses_to_any_real_guard_but_orders_by_binlog_among_nulls() {
    let (route, table) = route_with(true, &[], ColumnType::Timestamp { fsp: 0 });
    let mut first = change(
        &table,
        Op::Insert,
        None,
        Some(row(1, "a", Value::Timestamp(Some(0)))),
    );
    first.order = 10;
    let mut null_later = change(&table, Op::Insert, None, Some(row(1, "b", Value::Null)));
    null_later.order = 20;
    let mut null_latest = null_later.clone();
    null_latest.order = 30;
    let v = |c: &RowChange| plan(c, &route).unwrap().into_vec()[0].version;
    assert!(v(&null_later) < v(&first));
    assert!(v(&null_later) < v(&null_latest));
}

#[test]
fn excluded_columns_are_not_written() {
    let (route, table) = route_with(false, &["orders.secret"], ColumnType::Year);
    let after = row(1, "n", Value::Year(2020));
    let ops = plan(&change(&table, Op::Insert, None, Some(after)), &route)
        .unwrap()
        .into_vec();
    assert_eq!(
        ops[0].kind,
        SinkOpKind::Upsert(vec![
            Value::Int(1),
            Value::String("n".into()),
            Value::Year(2020)
        ])
    );
    assert_eq!(route.target.columns.len(), 3);
}

#[test]
fn null_key_is_a_data_error_naming_table_and_position() {
    let (route, table) = plain();
    let mut after = row(0, "x", Value::Null);
    after[0] = Value::Null;
    let err = plan(&change(&table, Op::Insert, None, Some(after)), &route).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Data);
    let msg = err.to_string();
    assert!(msg.contains("shop.orders"), "{msg}");
    assert!(msg.contains("binlog.000007:1234"), "{msg}");
    assert!(msg.contains("`id`"), "{msg}");
}

#[test]
fn missing_or_misaligned_images_are_reported() {
    let (route, table) = plain();
    let err = plan(&change(&table, Op::Delete, None, None), &route).unwrap_err();
    assert!(
        err.to_string().contains("delete without a before image"),
        "{err}"
    );
    let err = plan(
        &change(&table, Op::Insert, None, Some(vec![Value::Int(1)])),
        &route,
    )
    .unwrap_err();
    assert!(err.to_string().contains("1 values for 4 columns"), "{err}");
}

#[test]
fn unsigned_guard_above_i64_is_refused() {
    let (route, table) = route_with(
        true,
        &[],
        ColumnType::Int {
            bytes: 8,
            unsigned: true,
        },
    );
    let after = row(1, "x", Value::UInt(u64::MAX));
    let err = plan(&change(&table, Op::Insert, None, Some(after)), &route).unwrap_err();
    assert!(matches!(err, PlanError::GuardOutOfRange { .. }), "{err}");
}

#[test]
fn update_without_before_image_is_an_upsert() {
    let (route, table) = plain();
    let after = row(3, "x", Value::Null);
    let ops = plan(&change(&table, Op::Update, None, Some(after)), &route)
        .unwrap()
        .into_vec();
    assert_eq!(ops.len(), 1);
    assert!(matches!(ops[0].kind, SinkOpKind::Upsert(_)));
}
