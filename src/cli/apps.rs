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
        at: Where,
    },
    /// Print every app, one JSON line each.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Disable an app's key: its requests get 403 from then on.
    Disable {
        /// The app.
        app_id: String,
        #[command(flatten)]
        at: Where,
    },
    /// Enable a disabled app's key again.
    Enable {
        /// The app.
        app_id: String,
        #[command(flatten)]
        at: Where,
    },
    /// Replace an app's key and print the new one; the old key stops working.
    RotateKey {
        /// The app.
        app_id: String,
        #[command(flatten)]
        at: Where,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("unknown role {s:?}: use admin, developer, analyst or ingest"))
}

/// Whose apps: a data folder's, or (`--aws`) the AWS deployment's.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    #[command(flatten)]
    data: DataArgs,
    /// Manage the AWS deployment's apps: the clients table (`CAUCE_CLIENTS_TABLE`) and each
    /// app's API Gateway key in its usage-plan tier (`CAUCE_USAGE_PLANS`, the JSON of
    /// `terraform output -json usage_plan_ids`). Needs a build with `--features aws`.
    #[arg(long)]
    aws: bool,
    /// The usage-plan tier a new app joins (with `--aws`).
    #[arg(long, env = "CAUCE_TIER", default_value = "standard")]
    tier: String,
}

/// The app admin of `at`.
async fn admin(at: &Where) -> anyhow::Result<Box<dyn AppAdmin>> {
    if !at.aws {
        return Ok(Box::new(open_keys(&at.data)?));
    }
    #[cfg(feature = "aws")]
    {
        Ok(Box::new(
            cauce_ingest::auth::GatewayApps::from_env(&at.tier).await?,
        ))
    }
    #[cfg(not(feature = "aws"))]
    bail!("`--aws` needs a cauce built with `--features aws`")
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
            at,
        } => {
            let creds = admin(&at)
                .await?
                .create_app(&name, rate_limit, role)
                .await?;
            println!("{}", serde_json::to_string(&creds)?);
        }
        AppsCommand::List { at } => {
            for app in admin(&at).await?.list_apps().await? {
                println!("{}", serde_json::to_string(&app)?);
            }
        }
        AppsCommand::Disable { app_id, at } => set_disabled(&at, &app_id, true).await?,
        AppsCommand::Enable { app_id, at } => set_disabled(&at, &app_id, false).await?,
        AppsCommand::RotateKey { app_id, at } => {
            let Some(creds) = admin(&at).await?.rotate_key(&app_id).await? else {
                bail!("no app {app_id:?}");
            };
            println!("{}", serde_json::to_string(&creds)?);
        }
    }
    Ok(())
}

async fn set_disabled(at: &Where, app_id: &str, disabled: bool) -> anyhow::Result<()> {
    if !admin(at).await?.set_disabled(app_id, disabled).await? {
        bail!("no app {app_id:?}");
    }
    println!(
        "{}",
        serde_json::json!({ "app_id": app_id, "disabled": disabled })
    );
    Ok(())
}
