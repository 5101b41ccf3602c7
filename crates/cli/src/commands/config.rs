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
    /// Period (e.g. 1w): base CRL interval of `serve`'s schedule (lockbox.toml `[crl]`).
    #[value(name = "crl.period")]
    CrlPeriod,
    /// Period (e.g. 12h): added to every CRL's nextUpdate.
    #[value(name = "crl.overlap")]
    CrlOverlap,
    /// Period (e.g. 1d): delta CRL interval; `off` publishes no scheduled deltas.
    #[value(name = "crl.delta_period")]
    CrlDeltaPeriod,
    /// true/false: `serve` answers OCSP at /ocsp.
    #[value(name = "ocsp.enabled")]
    OcspEnabled,
    /// Period (e.g. 1h): OCSP response validity and cache lifetime.
    #[value(name = "ocsp.response_validity")]
    OcspResponseValidity,
    /// Period (e.g. 2w): validity of the OCSP signing certificate.
    #[value(name = "ocsp.signing_validity")]
    OcspSigningValidity,
}

/// Settings kept in the home's `lockbox.toml` (read when the CA is opened:
/// a running `serve` takes them at its next start).
fn set_in_file(g: &Global, key: Setting, value: &str) -> Result<serde_json::Value> {
    use lockbox_engine::period::Period;
    let period = |v: &str| Period::parse(v).map_err(anyhow::Error::from);
    let home = lockbox_engine::config::Home::new(crate::backend::home_of(g)?);
    let mut config = home.load_config()?;
    let shown = match key {
        Setting::CrlPeriod => {
            config.crl.period = Some(period(value)?);
            json!({ "crl.period": value })
        }
        Setting::CrlOverlap => {
            config.crl.overlap = Some(period(value)?);
            json!({ "crl.overlap": value })
        }
        Setting::CrlDeltaPeriod => {
            config.crl.delta_period = match value.to_ascii_lowercase().as_str() {
                "off" | "none" | "0" => None,
                v => Some(period(v)?),
            };
            json!({ "crl.delta_period": value })
        }
        Setting::OcspEnabled => {
            let on = parse_switch(value)?;
            config.ocsp.enabled = Some(on);
            json!({ "ocsp.enabled": on })
        }
        Setting::OcspResponseValidity => {
            config.ocsp.response_validity = period(value)?;
            json!({ "ocsp.response_validity": value })
        }
        Setting::OcspSigningValidity => {
            config.ocsp.signing_validity = period(value)?;
            json!({ "ocsp.signing_validity": value })
        }
        other => anyhow::bail!("{other:?} is a database setting, not one of lockbox.toml"),
    };
    home.save_config(&config)?;
    Ok(shown)
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
    let ConfigCmd::Set { key, value } = cmd;
    let l = local(g).await?;
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
        Setting::CrlPeriod
        | Setting::CrlOverlap
        | Setting::CrlDeltaPeriod
        | Setting::OcspEnabled
        | Setting::OcspResponseValidity
        | Setting::OcspSigningValidity => {
            let shown = set_in_file(g, key, &value)?;
            print(
                g,
                shown,
                "Set in lockbox.toml (a running `lockbox serve` takes it at its next start)".into(),
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
