//! Database errors, with unique-constraint violations translated where the query runs.

/// Result of a database call.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// What can go wrong in a database call, in terms the service layer can act on.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint was violated; the payload names the constraint when known.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    /// Anything else: connection loss, timeouts, bugs. Never shown to clients.
    #[error(transparent)]
    Other(sqlx::Error),
    /// Applying migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db_err) = &err
            && db_err.is_unique_violation()
        {
            let name = db_err.constraint().map(str::to_owned).unwrap_or_else(|| db_err.message().to_owned());
            return DbError::Conflict(name);
        }
        DbError::Other(err)
    }
}
