//! The statements that must differ between PostgreSQL and SQLite, side by side.

use crate::{Db, Result};

/// A table's column, as the schema reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// Whether the column accepts NULL.
    pub nullable: bool,
}

/// Every column of every application table (migration bookkeeping excluded), sorted.
pub async fn list_columns(db: &Db) -> Result<Vec<Column>> {
    let rows: Vec<(String, String, bool)> = match db {
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT table_name::text, column_name::text, is_nullable = 'YES'
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
            )
            .fetch_all(pool)
            .await?
        }
        Db::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT m.name, p.name, p.\"notnull\" = 0 AND p.pk = 0
                 FROM sqlite_schema m JOIN pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
            )
            .fetch_all(pool)
            .await?
        }
    };
    let mut columns: Vec<Column> =
        rows.into_iter().map(|(table, column, nullable)| Column { table, column, nullable }).collect();
    columns.sort();
    Ok(columns)
}
