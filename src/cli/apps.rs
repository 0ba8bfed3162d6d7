//! `cauce apps …`: create, list, disable and rotate keys. Every command prints JSON lines.

use anyhow::{bail, Context};
use clap::Subcommand;

use cauce_ingest::auth::{AppAdmin, Role, SqliteKeys};

use super::DataArgs;

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an app and print `{"app_id": "...", "api_key": "..."}`. The key is shown only once.
    Create {
        /// A human name for the app.
        #[arg(long)]
        name: String,
        /// Requests a second for the app's key (default: the server's default).
        #[arg(long)]
        rate_limit: Option<u32>,
        /// The key's role: admin, developer, analyst or ingest.
        #[arg(long, default_value = "developer", value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print every app, one JSON line each.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Disable an app's key: its requests get 403 from then on.
    Disable {
        /// The app.
        app_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Enable a disabled app's key again.
    Enable {
        /// The app.
        app_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Replace an app's key and print the new one; the old key stops working.
    RotateKey {
        /// The app.
        app_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("unknown role {s:?}: use admin, developer, analyst or ingest"))
}

/// Opens the key store of a data folder, creating the folder if needed.
pub fn open_keys(data: &DataArgs) -> anyhow::Result<SqliteKeys> {
    std::fs::create_dir_all(&data.data)
        .with_context(|| format!("cannot create the data folder {}", data.data.display()))?;
    Ok(SqliteKeys::open(data.data.join("apps.db"))?)
}

pub async fn run(cmd: AppsCommand) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::Create {
            name,
            rate_limit,
            role,
            data,
        } => {
            let creds = open_keys(&data)?
                .create_app(&name, rate_limit, role)
                .await?;
            println!("{}", serde_json::to_string(&creds)?);
        }
        AppsCommand::List { data } => {
            for app in open_keys(&data)?.list_apps().await? {
                println!("{}", serde_json::to_string(&app)?);
            }
        }
        AppsCommand::Disable { app_id, data } => set_disabled(&data, &app_id, true).await?,
        AppsCommand::Enable { app_id, data } => set_disabled(&data, &app_id, false).await?,
        AppsCommand::RotateKey { app_id, data } => {
            let Some(creds) = open_keys(&data)?.rotate_key(&app_id).await? else {
                bail!("no app {app_id:?}");
            };
            println!("{}", serde_json::to_string(&creds)?);
        }
    }
    Ok(())
}

async fn set_disabled(data: &DataArgs, app_id: &str, disabled: bool) -> anyhow::Result<()> {
    if !open_keys(data)?.set_disabled(app_id, disabled).await? {
        bail!("no app {app_id:?}");
    }
    println!(
        "{}",
        serde_json::json!({ "app_id": app_id, "disabled": disabled })
    );
    Ok(())
}
