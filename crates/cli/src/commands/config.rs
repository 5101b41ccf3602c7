//! `lockbox config set`: CA settings.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::backend::{local, local_only};
use crate::global::Global;
use crate::output::print;

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Set a CA setting: role_separation, kra.enable_foreign (true/false) or kra_expiry_warning_days (N).
    Set {
        /// The setting.
        key: Setting,
        /// Its new value.
        value: String,
    },
}

/// The CA settings `lockbox config set` changes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Setting {
    /// true/false: a principal holding two CA roles is refused everything (0x80094008).
    #[value(name = "role_separation")]
    RoleSeparation,
    /// true/false: importkms -f may archive keys whose certificates other CAs issued.
    #[value(name = "kra.enable_foreign")]
    KraEnableForeign,
    /// N: days before a KRA certificate expires that event 127 warns (default 30).
    #[value(name = "kra_expiry_warning_days")]
    KraExpiryWarningDays,
}

/// A yes/no setting value; anything else is refused rather than read as "no".
fn parse_switch(value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        _ => Err(lockbox_engine::EngineError::bad_input(
            lockbox_engine::codes::E_INVALIDARG,
            format!("'{value}' is not true or false"),
        )
        .into()),
    }
}

/// `lockbox config set KEY VALUE`
pub async fn config(g: &Global, cmd: ConfigCmd) -> Result<ExitCode> {
    local_only(g, "config")?;
    let l = local(g).await?;
    let ConfigCmd::Set { key, value } = cmd;
    match key {
        Setting::RoleSeparation => {
            let on = parse_switch(&value)?;
            l.ca.set_role_separation(&l.actor, on).await?;
            print(
                g,
                json!({ "role_separation": on }),
                format!("Role separation is {}", if on { "on" } else { "off" }),
            );
        }
        Setting::KraEnableForeign => {
            let on = parse_switch(&value)?;
            l.ca.set_foreign_enabled(&l.actor, on).await?;
            print(
                g,
                json!({ "kra.enable_foreign": on }),
                format!(
                    "Foreign certificate import is {}",
                    if on { "enabled" } else { "disabled" }
                ),
            );
        }
        Setting::KraExpiryWarningDays => {
            let days: u32 = value.trim().parse().map_err(|_| {
                lockbox_engine::EngineError::bad_input(
                    lockbox_engine::codes::E_INVALIDARG,
                    format!("'{value}' is not a number of days"),
                )
            })?;
            l.ca.set_kra_expiry_warning_days(&l.actor, days).await?;
            print(
                g,
                json!({ "kra_expiry_warning_days": days }),
                format!("KRA certificates are reported {days} day(s) before they expire"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
