//! `lakegate admin tag ...`: the administration API's tag RPCs from the
//! command line (tag definitions, tags on databases, tables and columns,
//! and the masks and row filters attached to tag expressions).

use clap::Subcommand;
use lakegate_admin_api::v1 as api;

use crate::admin_cli::{Client, Rows, changed, pair, status, table_name};

/// What tags are set on or unset from: a database, a table, or a column
/// of a table (`--table` with `--column`).
#[derive(clap::Args, Debug, Clone)]
pub struct TagResourceArgs {
    /// A database.
    #[arg(long, conflicts_with = "table", required_unless_present = "table")]
    pub database: Option<String>,
    /// A table, `database.table`.
    #[arg(long)]
    pub table: Option<String>,
    /// A column of `--table`.
    #[arg(long, requires = "table")]
    pub column: Option<String>,
}

/// `lakegate admin tag ...`: tags and the policies attached to them.
#[derive(Subcommand)]
pub enum TagCommand {
    /// CREATE TAG key VALUES (...).
    Create {
        key: String,
        /// The values it may take (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        values: Vec<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// DROP TAG key.
    Drop { key: String },
    /// ALTER ... SET TAGS (key = 'value', ...).
    Set {
        #[command(flatten)]
        on: TagResourceArgs,
        /// `key=value`; repeatable.
        #[arg(long = "tag", required = true)]
        tags: Vec<String>,
    },
    /// ALTER ... UNSET TAGS (key, ...).
    Unset {
        #[command(flatten)]
        on: TagResourceArgs,
        /// The keys (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        keys: Vec<String>,
    },
    /// MASK COLUMNS TAGGED expression USING mask FOR ROLE role.
    Mask {
        /// The tag expression choosing the columns.
        #[arg(long)]
        tagged: String,
        /// A built-in mask (hash, redact, nullify, show_last_4, ...).
        #[arg(long)]
        mask: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// ROW FILTER ON TAGGED expression FOR ROLE role WHERE filter.
    RowFilter {
        /// The tag expression choosing the tables.
        #[arg(long)]
        tagged: String,
        #[arg(long)]
        role: String,
        /// The filter, as SQL.
        #[arg(long = "where")]
        row_filter: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// DROP MASK name.
    DropMask { name: String },
    /// DROP ROW FILTER name.
    DropRowFilter { name: String },
    /// SHOW TAGS [ON TABLE table].
    List {
        /// The table whose tags (and its columns') to list.
        #[arg(long)]
        table: Option<String>,
    },
}

/// Runs one `tag` sub-command; its answer as rows.
pub(crate) async fn run(client: &mut Client, command: TagCommand) -> Result<Rows, String> {
    match command {
        TagCommand::Create {
            key,
            values,
            comment,
        } => changed(
            client
                .create_tag(api::CreateTagRequest {
                    key,
                    values,
                    comment,
                })
                .await,
        ),
        TagCommand::Drop { key } => changed(client.drop_tag(api::NameRequest { name: key }).await),
        TagCommand::Set { on, tags } => {
            let tags = tags
                .iter()
                .map(|text| pair(text, "--tag key=value"))
                .collect::<Result<_, _>>()?;
            let request = api::SetTagsRequest {
                resource: Some(resource(&on)?),
                tags,
            };
            changed(client.set_tags(request).await)
        }
        TagCommand::Unset { on, keys } => {
            let request = api::UnsetTagsRequest {
                resource: Some(resource(&on)?),
                keys,
            };
            changed(client.unset_tags(request).await)
        }
        TagCommand::Mask {
            tagged,
            mask,
            role,
            name,
        } => {
            let request = api::CreateTagMaskRequest {
                tagged,
                mask,
                role,
                name: name.unwrap_or_default(),
            };
            changed(client.create_tag_mask(request).await)
        }
        TagCommand::RowFilter {
            tagged,
            role,
            row_filter,
            name,
        } => {
            let request = api::CreateTagRowFilterRequest {
                tagged,
                role,
                row_filter,
                name: name.unwrap_or_default(),
            };
            changed(client.create_tag_row_filter(request).await)
        }
        TagCommand::DropMask { name } => {
            changed(client.drop_tag_mask(api::NameRequest { name }).await)
        }
        TagCommand::DropRowFilter { name } => {
            changed(client.drop_tag_row_filter(api::NameRequest { name }).await)
        }
        TagCommand::List { table } => {
            let listing = table.is_some();
            let request = api::ListTagsRequest {
                table: table.as_deref().map(table_name).transpose()?,
            };
            let answer = client
                .list_tags(request)
                .await
                .map_err(status)?
                .into_inner();
            Ok(if listing {
                let rows = answer
                    .tags
                    .into_iter()
                    .map(|t| vec![t.resource, t.key, t.value, t.set_on])
                    .collect();
                Rows::new(&["resource", "key", "value", "set_on"], rows)
            } else {
                let rows = answer
                    .tags
                    .into_iter()
                    .map(|t| vec![t.key, t.values.join(", ")])
                    .collect();
                Rows::new(&["key", "values"], rows)
            })
        }
    }
}

fn resource(args: &TagResourceArgs) -> Result<api::TagResource, String> {
    let resource = match (&args.database, &args.table, &args.column) {
        (Some(database), _, _) => api::tag_resource::Resource::Database(database.clone()),
        (_, Some(table), Some(column)) => api::tag_resource::Resource::Column(api::ColumnName {
            table: Some(table_name(table)?),
            column: column.clone(),
        }),
        (_, Some(table), None) => api::tag_resource::Resource::Table(table_name(table)?),
        (None, None, _) => return Err("give --database or --table".into()),
    };
    Ok(api::TagResource {
        resource: Some(resource),
    })
}
