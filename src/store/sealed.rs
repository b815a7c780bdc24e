//! Columns of sealed values, read and rewritten by table and column name
//! for key rotation (`domain::keys` lists them).

use sea_orm::{
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
    ConnectionTrait, DatabaseConnection, DbErr, Statement,
};
use uuid::Uuid;

/// How many values of `table.column` start with each prefix of
/// `prefix_len` characters, for values in the sealed `format_prefix`
/// format; `""` for the others (legacy values).
pub async fn count_by_prefix<C: ConnectionTrait>(
    db: &C,
    table: &str,
    column: &str,
    format_prefix: &str,
    prefix_len: usize,
) -> Result<Vec<(String, u64)>, DbErr> {
    let sql = format!(
        "SELECT CASE WHEN \"{column}\" LIKE '{format_prefix}%' \
             THEN SUBSTR(\"{column}\", 1, {prefix_len}) ELSE '' END AS prefix, \
             COUNT(*) AS n \
         FROM \"{table}\" WHERE \"{column}\" IS NOT NULL GROUP BY 1"
    );
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .into_iter()
        .map(|row| {
            let prefix: String = row.try_get("", "prefix")?;
            let n: i64 = row.try_get("", "n")?;
            Ok((prefix, n.unsigned_abs()))
        })
        .collect()
}

/// The next rows (by `id`, after `after`) whose `column` is set and does
/// not start with `prefix`: their id and value.
pub async fn not_under(
    db: &DatabaseConnection,
    table: &str,
    id: &str,
    column: &str,
    prefix: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(Uuid, String)>, DbErr> {
    let (id_col, value_col) = (Alias::new(id), Alias::new(column));
    let select = Query::select()
        .column(id_col.clone())
        .column(value_col.clone())
        .from(Alias::new(table))
        .and_where(Expr::col(value_col.clone()).is_not_null())
        .and_where(Expr::col(value_col).not_like(format!("{prefix}%")))
        .and_where_option(after.map(|after| Expr::col(id_col.clone()).gt(after)))
        .order_by(id_col, Order::Asc)
        .limit(limit)
        .to_owned();
    db.query_all(&select)
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get("", id)?, row.try_get("", column)?)))
        .collect()
}

/// In one transaction, each `(id, old, new)`: the value replaced only if it
/// is still `old`. Answers how many were replaced and how many had changed
/// meanwhile.
pub async fn replace(
    db: &DatabaseConnection,
    table: &str,
    id: &str,
    column: &str,
    writes: Vec<(Uuid, String, String)>,
) -> Result<(u64, u64), DbErr> {
    let (mut replaced, mut changed) = (0, 0);
    if writes.is_empty() {
        return Ok((replaced, changed));
    }
    let txn = super::db::begin_write(db).await?;
    for (row_id, old, new) in writes {
        let update = Query::update()
            .table(Alias::new(table))
            .value(Alias::new(column), new)
            .and_where(Expr::col(Alias::new(id)).eq(row_id))
            .and_where(Expr::col(Alias::new(column)).eq(old))
            .to_owned();
        if txn.execute(&update).await?.rows_affected() == 1 {
            replaced += 1;
        } else {
            changed += 1;
        }
    }
    txn.commit().await?;
    Ok((replaced, changed))
}
