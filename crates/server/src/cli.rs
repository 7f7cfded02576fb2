//! The `omnistack` command line: `serve` (the default), `worker`, `migrate`, `config`, `users`,
//! `email`.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::{self, App};
use crate::auth::Role;
use crate::config::Config;
use crate::error::Error;
use crate::mail::{self, TemplateContext, TemplateName};
use crate::telemetry;
use crate::{accounts, users};

/// OmniStack: a production SaaS backend in one binary.
#[derive(Debug, Parser)]
#[command(name = "omnistack", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default), with `JOBS_WORKERS` job workers.
    Serve,
    /// Run background job workers and schedules only (scale them apart from the API).
    Worker,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Manage accounts (bootstrap admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Work with email templates.
    #[command(subcommand)]
    Email(EmailCommand),
}

/// `omnistack email …`.
#[derive(Debug, Subcommand)]
pub enum EmailCommand {
    /// Print a template rendered with sample data: subject, plain text, HTML.
    Preview {
        /// The template (welcome, verify_email, password_reset, notification, contact_admin,
        /// contact_confirmation, daily_report, export_ready, payment_failed).
        #[arg(value_parser = parse_template)]
        name: TemplateName,
    },
}

fn parse_template(value: &str) -> Result<TemplateName, String> {
    value.parse()
}

/// `omnistack users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account with a password (email counts as verified).
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Password, 8 to 128 characters.
        #[arg(long)]
        password: String,
        /// user, admin or super_admin.
        #[arg(long, default_value = "user", value_parser = parse_role)]
        role: Role,
    },
    /// Change the role of an existing account.
    SetRole {
        /// Email address of the account.
        #[arg(long)]
        email: String,
        /// user, admin or super_admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(value: &str) -> Result<Role, String> {
    value.parse()
}

/// Parses the command line and runs it. Exit codes: 0 success, 1 runtime failure,
/// 2 usage or configuration error.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("omnistack: cannot read .env: {err}");
        return ExitCode::from(2);
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("omnistack: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Config) = cli.command {
        // A closed pipe (`omnistack config | head`) is not an error worth a panic.
        let mut out = std::io::stdout().lock();
        for (name, value) in config.describe() {
            if writeln!(out, "{name}={value}").is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Email(EmailCommand::Preview { name })) = cli.command {
        return preview_email(&config, name);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("omnistack: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            telemetry::init_logging(&config);
            runtime.block_on(migrate(config))
        }
        Command::Users(command) => {
            telemetry::init_logging(&config);
            runtime.block_on(manage_users(config, command))
        }
        // Answered above, before the runtime starts.
        Command::Config | Command::Email(_) => Ok(()),
        Command::Worker => runtime.block_on(async {
            let telemetry = telemetry::init(&config);
            let result = app::run_workers(config).await;
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
            result
        }),
        Command::Serve => runtime.block_on(async {
            let telemetry = telemetry::init(&config);
            let result = serve(config).await;
            // The final flush blocks while the exporter (a task on this runtime) drains.
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
            result
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "omnistack stopped with an error");
            eprintln!("omnistack: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `name` rendered with sample data and this configuration's `PROJECT_NAME` and
/// `FRONTEND_URL`.
fn preview_email(config: &Config, name: TemplateName) -> ExitCode {
    match mail::preview(name, &TemplateContext::from_config(config)) {
        Ok(rendered) => {
            let text = format!(
                "Subject: {}\n\n--- text/plain ---\n{}\n--- text/html ---\n{}",
                rendered.subject, rendered.text, rendered.html
            );
            // A closed pipe (`omnistack email preview welcome | head`) is not worth a panic.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("omnistack: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = app::open_database(&config).await?;
    db.migrate().await?;
    tracing::info!(db.system = db.engine().as_str(), "migrations applied");
    db.close().await;
    Ok(())
}

async fn manage_users(config: Config, command: UsersCommand) -> anyhow::Result<()> {
    let db = app::open_database(&config).await?;
    db.migrate().await?;
    let result = match command {
        UsersCommand::Create { email, password, role } => {
            accounts::create_account(&db, &email, &password, role).await.map(|user| (user, "created"))
        }
        UsersCommand::SetRole { email, role } => {
            users::set_role_by_email(&db, &email, role).await.map(|u| (u, "updated"))
        }
    };
    db.close().await;
    let (user, done) = result.map_err(|err| match err {
        Error::Validation(fields) => {
            let problems: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
            anyhow::anyhow!("invalid input: {}", problems.join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    })?;
    println!("{done} {} ({}) with role {}", user.email.unwrap_or_default(), user.id, user.role);
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let address = config.bind_address();
    let listener = TcpListener::bind(address)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {address} (HOST, PORT): {err}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let docs = if config.docs_enabled { format!("API docs at {base}/docs") } else { "API docs disabled".into() };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        environment = config.environment.as_str(),
        "OmniStack listening on {base}: {docs}"
    );
    let grace = config.shutdown_timeout;
    let app = App::build(config).await?;
    let db = app.state.db.clone();
    tracing::info!(db.system = db.engine().as_str(), "ready to serve");
    // One stop signal ends both; requests and running jobs finish side by side.
    let stop = futures::FutureExt::shared(app::stop_signal());
    let workers = app.workers;
    let (served, ()) =
        tokio::join!(app::serve(listener, app.router, app.state.realtime.clone(), stop.clone(), grace), async {
            stop.await;
            workers.shutdown().await;
        });
    served?;
    app.state.activity.flush(&db).await;
    // Usage counted by the last requests and jobs is written before the pool closes.
    if let Err(err) = app.state.usage.flush().await {
        tracing::error!(error = %err, "could not write the last usage counts at shutdown");
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}
