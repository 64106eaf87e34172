//! The live legacy schema is checked against infra/sql/legacy_mysql.sql before any run.

use shared::legacy::{validate_schema, FILE_MOVE_TABLES, LEGACY_DDL};
use tests::MysqlFixture;

#[tokio::test]
async fn a_missing_column_or_table_is_named() {
    let db = MysqlFixture::new().await;
    for statement in shared::legacy::ddl_statements(LEGACY_DDL) {
        sqlx::query(&statement).execute(&db.pool).await.unwrap();
    }
    validate_schema(&db.pool, LEGACY_DDL, &FILE_MOVE_TABLES).await.expect("the DDL's own schema validates");

    sqlx::query("ALTER TABLE repo_file DROP COLUMN treatment").execute(&db.pool).await.unwrap();
    sqlx::query("DROP TABLE customer").execute(&db.pool).await.unwrap();
    let err = validate_schema(&db.pool, LEGACY_DDL, &FILE_MOVE_TABLES).await.unwrap_err().to_string();
    assert!(err.contains("column `repo_file.treatment` is missing"), "{err}");
    assert!(err.contains("table `customer` is missing"), "{err}");
    let err = validate_schema(&db.pool, LEGACY_DDL, &["invoices"]).await.unwrap_err().to_string();
    assert!(err.contains("`invoices` is not declared"), "{err}");
    db.drop_database().await;
}
