//! API tests: the real server on a real port, a fresh database per test.
//! They run on SQLite, and on PostgreSQL (+ Redis) when `TEST_DATABASE_URL` (`TEST_REDIS_URL`) is set.

mod accounts;
mod cli;
mod docs;
mod errors;
mod health;
mod http_layers;
mod probes;
mod projects;
mod realtime;
mod shutdown;
mod users;
