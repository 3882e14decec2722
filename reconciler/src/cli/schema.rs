//! `tether schema`: print the JSON Schema of the spec documents, for editors.

use super::{CliError, Outcome};
use tether_schema::json_schema;

/// Print the JSON Schema of Agent and Fleet documents (for yaml-language-server and editors).
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which document's schema to print.
    #[arg(value_enum, default_value = "all")]
    kind: Kind,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// Both, keyed by kind.
    All,
    /// The Agent document (files under agents/).
    Agent,
    /// The Fleet document (fleet.yaml).
    Fleet,
}

/// Runs `tether schema`.
///
/// # Errors
/// Never in practice; the signature matches the other subcommands.
pub fn cmd_schema(args: &SchemaArgs) -> Result<Outcome, CliError> {
    let schema = match args.kind {
        Kind::All => json_schema::all(),
        Kind::Agent => json_schema::agent(),
        Kind::Fleet => json_schema::fleet(),
    };
    let text = serde_json::to_string_pretty(&schema).map_err(|e| {
        CliError::failed(
            format!("cannot render the schema: {e}"),
            "report this as a bug",
        )
    })?;
    println!("{text}");
    Ok(Outcome::Success)
}
