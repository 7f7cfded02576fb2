//! API tests: the real server on a real port, a fresh database per test.
//! They run on SQLite, and on PostgreSQL (+ Redis) when `TEST_DATABASE_URL` (`TEST_REDIS_URL`) is set.

mod accounts;
mod admin;
mod billing;
mod binary;
mod bounded;
mod cli;
mod contact;
mod dashboard;
mod dashboards;
mod docs;
mod errors;
mod external_emails;
mod external_tokens;
mod external_users;
mod flags;
mod health;
mod http_layers;
mod input;
mod jobs;
mod mail;
mod openapi;
mod password_reset;
mod probes;
mod production;
mod projects;
mod rate_limit;
mod rate_limits_wired;
mod realtime;
mod shutdown;
mod stores;
mod telemetry;
mod users;
mod v1_frozen;
mod versions;
mod webhooks;
