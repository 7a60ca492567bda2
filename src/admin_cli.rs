//! `lakegate admin`: the administration API's command-line client. Each
//! sub-command is one RPC of `proto/lakegate/admin/v1/admin.proto`, signed
//! in with Basic credentials (the password from `LAKEGATE_PASSWORD`) under
//! the chosen runtime role; answers print as a table or as JSON lines.

use std::path::Path;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use base64::Engine as _;
use lakegate_admin_api::v1 as api;
use lakegate_admin_api::v1::admin_service_client::AdminServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::cli::{AdminCommand, AdminFormat, PrincipalArgs, TargetArgs};

/// The variable holding the signing-in user's password.
pub const PASSWORD_VARIABLE: &str = "LAKEGATE_PASSWORD";
/// The variable holding a new user's password (`create-user`).
pub const NEW_PASSWORD_VARIABLE: &str = "LAKEGATE_NEW_PASSWORD";

/// Where and as whom `lakegate admin` connects.
pub struct Connection<'a> {
    pub server: &'a str,
    pub user: &'a str,
    pub role: Option<&'a str>,
    pub tls_ca: Option<&'a Path>,
}

pub(crate) type Client = AdminServiceClient<
    InterceptedService<Channel, Box<dyn FnMut(tonic::Request<()>) -> CallResult + Send>>,
>;
type CallResult = Result<tonic::Request<()>, tonic::Status>;

/// Runs one sub-command and prints its answer.
pub async fn run_admin(
    connection: Connection<'_>,
    format: AdminFormat,
    command: AdminCommand,
) -> Result<(), String> {
    let mut client = connect(&connection).await?;
    let table = |text: &str| table_name(text);
    let printed = match command {
        AdminCommand::Grant {
            privileges,
            target,
            role,
            columns,
            excluding_columns,
            mask,
            mask_expression,
            row_filter,
            name,
            with_grant_option,
        } => {
            let mut masks = Vec::new();
            for text in &mask {
                let (column, name) = pair(text, "--mask column=mask")?;
                masks.push(api::Mask {
                    column,
                    mask: Some(api::mask::Mask::Builtin(name)),
                });
            }
            for text in &mask_expression {
                let (column, sql) = pair(text, "--mask-expression column=SQL")?;
                masks.push(api::Mask {
                    column,
                    mask: Some(api::mask::Mask::Expression(sql)),
                });
            }
            let request = api::GrantRequest {
                privileges: privilege_values(&privileges)?,
                target: Some(target_message(&target)?),
                role,
                columns,
                excluding_columns,
                masks,
                row_filter: row_filter.unwrap_or_default(),
                name: name.unwrap_or_default(),
                with_grant_option,
            };
            changed(client.grant(request).await)
        }
        AdminCommand::Revoke {
            privileges,
            target,
            role,
        } => {
            let request = api::RevokeRequest {
                privileges: privilege_values(&privileges)?,
                target: Some(target_message(&target)?),
                role,
            };
            changed(client.revoke(request).await)
        }
        AdminCommand::RevokeGrant { name } => {
            changed(client.revoke_grant(api::RevokeGrantRequest { name }).await)
        }
        AdminCommand::ListGrants { role, table: on } => {
            let request = api::ListGrantsRequest {
                role: role.unwrap_or_default(),
                table: on.as_deref().map(table).transpose()?,
            };
            let answer = client.list_grants(request).await.map_err(status)?;
            grants_rows(&answer.into_inner())
        }
        AdminCommand::EffectiveAccess { role, table: on } => {
            let request = api::EffectiveAccessRequest {
                role,
                table: Some(table(&on)?),
            };
            let answer = client.effective_access(request).await.map_err(status)?;
            access_rows(&answer.into_inner())
        }
        AdminCommand::GrantRole { role, to } => {
            let request = api::RoleAssignment {
                role,
                principal: Some(principal(&to)),
            };
            changed(client.grant_role(request).await)
        }
        AdminCommand::RevokeRole { role, from } => {
            let request = api::RoleAssignment {
                role,
                principal: Some(principal(&from)),
            };
            changed(client.revoke_role(request).await)
        }
        AdminCommand::CreateRole { name, comment } => changed(
            client
                .create_role(api::CreateRoleRequest { name, comment })
                .await,
        ),
        AdminCommand::DropRole { name } => {
            changed(client.drop_role(api::NameRequest { name }).await)
        }
        AdminCommand::CreateUser {
            name,
            default_role,
            no_password,
        } => {
            let password = if no_password {
                String::new()
            } else {
                std::env::var(NEW_PASSWORD_VARIABLE).map_err(|_| {
                    format!(
                        "set {NEW_PASSWORD_VARIABLE} to the new user's password \
                         (or pass --no-password)"
                    )
                })?
            };
            let request = api::CreateUserRequest {
                name,
                password,
                default_role: default_role.unwrap_or_default(),
            };
            changed(client.create_user(request).await)
        }
        AdminCommand::DropUser { name } => {
            changed(client.drop_user(api::NameRequest { name }).await)
        }
        AdminCommand::CreateGroup { name } => {
            changed(client.create_group(api::NameRequest { name }).await)
        }
        AdminCommand::DropGroup { name } => {
            changed(client.drop_group(api::NameRequest { name }).await)
        }
        AdminCommand::AlterGroup { group, add, remove } => {
            let (user, add) = match (add, remove) {
                (Some(user), _) => (user, true),
                (None, Some(user)) => (user, false),
                (None, None) => return Err("give --add USER or --remove USER".into()),
            };
            let request = api::AlterGroupRequest { group, user, add };
            changed(client.alter_group(request).await)
        }
        AdminCommand::CreateLocation {
            name,
            url,
            settings,
        } => {
            let settings = settings
                .iter()
                .map(|text| pair(text, "--set key=value"))
                .collect::<Result<_, _>>()?;
            let request = api::CreateLocationRequest {
                name,
                url,
                settings,
            };
            changed(client.create_location(request).await)
        }
        AdminCommand::DropLocation { name } => {
            changed(client.drop_location(api::NameRequest { name }).await)
        }
        AdminCommand::CreateDatabase {
            name,
            location,
            comment,
        } => {
            let request = api::CreateDatabaseRequest {
                name,
                comment,
                location,
            };
            changed(client.create_database(request).await)
        }
        AdminCommand::DropDatabase { name } => {
            changed(client.drop_database(api::NameRequest { name }).await)
        }
        AdminCommand::CreateTable {
            name,
            url,
            format,
            partitions,
            comment,
        } => {
            let partition_columns = partitions
                .iter()
                .map(|text| {
                    let (name, r#type) = text
                        .split_once(':')
                        .ok_or_else(|| format!("--partition takes name:type, not '{text}'"))?;
                    Ok(api::PartitionColumn {
                        name: name.into(),
                        r#type: r#type.into(),
                    })
                })
                .collect::<Result<_, String>>()?;
            let request = api::CreateTableRequest {
                name: Some(table(&name)?),
                url,
                format,
                partition_columns,
                comment,
            };
            changed(client.create_table(request).await)
        }
        AdminCommand::DropTable { name } => changed(client.drop_table(table(&name)?).await),
        AdminCommand::Tag(command) => crate::admin_tag_cli::run(&mut client, command).await,
        AdminCommand::PolicyVersion => {
            let answer = client
                .policy_version(api::PolicyVersionRequest {})
                .await
                .map_err(status)?;
            Ok(Rows::new(
                &["policy_version"],
                vec![vec![answer.into_inner().policy_version.to_string()]],
            ))
        }
        AdminCommand::Health => {
            let answer = client
                .health(api::HealthRequest {})
                .await
                .map_err(status)?
                .into_inner();
            let state = api::health_response::Status::try_from(answer.status)
                .map(|s| s.as_str_name().to_ascii_lowercase())
                .unwrap_or_else(|_| answer.status.to_string());
            Ok(Rows::new(
                &["status", "policy_version", "policy_source"],
                vec![vec![
                    state,
                    answer.policy_version.to_string(),
                    answer.policy_source,
                ]],
            ))
        }
    }?;
    printed.print(format)
}

/// A channel to the server, its calls carrying the credentials and role.
async fn connect(connection: &Connection<'_>) -> Result<Client, String> {
    let (address, tls) = match connection.server.split_once("://") {
        Some(("grpc", rest)) => (format!("http://{rest}"), false),
        Some(("grpc+tls", rest)) => (format!("https://{rest}"), true),
        _ => {
            return Err(format!(
                "--server takes grpc://HOST:PORT or grpc+tls://HOST:PORT, not '{}'",
                connection.server
            ));
        }
    };
    let mut endpoint = Channel::from_shared(address.clone()).map_err(|e| e.to_string())?;
    if tls {
        let Some(ca) = connection.tls_ca else {
            return Err(
                "grpc+tls:// needs --tls-ca FILE, the server's certificate authority".into(),
            );
        };
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(|e| e.to_string())?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", connection.server))?;
    // Health needs no sign-in; everything else does.
    let password = std::env::var(PASSWORD_VARIABLE).unwrap_or_default();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", connection.user));
    let authorization: MetadataValue<_> = format!("Basic {basic}")
        .parse()
        .map_err(|_| "the user name cannot be sent in a header".to_string())?;
    let role: Option<MetadataValue<_>> = connection
        .role
        .map(|role| role.parse())
        .transpose()
        .map_err(|_| "the role cannot be sent in a header".to_string())?;
    let sign_in: Box<dyn FnMut(tonic::Request<()>) -> CallResult + Send> =
        Box::new(move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
            if let Some(role) = &role {
                request
                    .metadata_mut()
                    .insert("x-lakegate-role", role.clone());
            }
            Ok(request)
        });
    Ok(AdminServiceClient::with_interceptor(channel, sign_in))
}

/// An answer as rows of text, printed as a table or JSON lines.
pub(crate) struct Rows {
    names: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Rows {
    pub(crate) fn new(names: &[&str], rows: Vec<Vec<String>>) -> Self {
        Self {
            names: names.iter().map(|n| n.to_string()).collect(),
            rows,
        }
    }

    fn print(self, format: AdminFormat) -> Result<(), String> {
        let schema = Schema::new(
            self.names
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, false))
                .collect::<Vec<_>>(),
        );
        let columns: Vec<ArrayRef> = (0..self.names.len())
            .map(|i| {
                let values = self.rows.iter().map(|row| row[i].as_str());
                std::sync::Arc::new(StringArray::from_iter_values(values)) as ArrayRef
            })
            .collect();
        let batch = RecordBatch::try_new(std::sync::Arc::new(schema), columns)
            .map_err(|e| e.to_string())?;
        match format {
            AdminFormat::Table => {
                let shown = arrow::util::pretty::pretty_format_batches(&[batch])
                    .map_err(|e| e.to_string())?;
                println!("{shown}");
            }
            AdminFormat::Json => {
                let mut writer = arrow::json::LineDelimitedWriter::new(std::io::stdout());
                writer.write(&batch).map_err(|e| e.to_string())?;
                writer.finish().map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// The answer of a change.
pub(crate) fn changed(
    answer: Result<tonic::Response<api::ChangeResponse>, tonic::Status>,
) -> Result<Rows, String> {
    let answer = answer.map_err(status)?.into_inner();
    Ok(Rows::new(
        &["result", "policy_version"],
        vec![vec![answer.result, answer.policy_version.to_string()]],
    ))
}

fn grants_rows(answer: &api::ListGrantsResponse) -> Result<Rows, String> {
    let rows = answer
        .grants
        .iter()
        .map(|grant| {
            let privileges: Vec<String> = grant
                .privileges
                .iter()
                .map(|p| {
                    api::Privilege::try_from(*p)
                        .map(|p| p.as_str_name().to_string())
                        .unwrap_or_else(|_| p.to_string())
                })
                .collect();
            let columns = match (&grant.columns[..], &grant.excluding_columns[..]) {
                ([], []) => "all".to_string(),
                (only, []) => only.join(", "),
                (_, excluding) => format!("all but {}", excluding.join(", ")),
            };
            let masks: Vec<String> = grant
                .masks
                .iter()
                .map(|mask| match &mask.mask {
                    Some(api::mask::Mask::Builtin(name)) => format!("{}: {name}", mask.column),
                    Some(api::mask::Mask::Expression(sql)) => format!("{}: ({sql})", mask.column),
                    None => mask.column.clone(),
                })
                .collect();
            vec![
                grant.name.clone(),
                grant.role.clone(),
                grant.on.clone(),
                privileges.join(", "),
                grant.grantable.to_string(),
                columns,
                masks.join(", "),
                grant.row_filter.clone(),
            ]
        })
        .collect();
    Ok(Rows::new(
        &[
            "name",
            "role",
            "on",
            "privileges",
            "grantable",
            "columns",
            "masks",
            "row_filter",
        ],
        rows,
    ))
}

fn access_rows(answer: &api::EffectiveAccessResponse) -> Result<Rows, String> {
    let privilege = match (answer.visible, answer.can_select) {
        (false, _) => "none",
        (true, true) => "SELECT",
        (true, false) => "DESCRIBE",
    };
    let rows = answer
        .columns
        .iter()
        .map(|c| {
            vec![
                c.column.clone(),
                c.access.clone(),
                answer.rows.clone(),
                privilege.to_string(),
                answer.grants.join(", "),
            ]
        })
        .collect();
    Ok(Rows::new(
        &["column", "access", "rows", "privilege", "grants"],
        rows,
    ))
}

/// A refusal as the command prints it.
pub(crate) fn status(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn privilege_values(names: &[String]) -> Result<Vec<i32>, String> {
    names
        .iter()
        .map(|name| {
            api::Privilege::from_str_name(&name.trim().to_ascii_uppercase())
                .filter(|p| *p != api::Privilege::Unspecified)
                .map(|p| p as i32)
                .ok_or_else(|| format!("unknown privilege '{name}' (select, describe, insert, create_table, administer, assign)"))
        })
        .collect()
}

fn target_message(target: &TargetArgs) -> Result<api::Target, String> {
    let target = match (&target.table, &target.database, &target.tagged) {
        (Some(table), _, _) => api::target::Target::Table(table_name(table)?),
        (_, Some(database), _) => api::target::Target::Database(database.clone()),
        (_, _, Some(expr)) => api::target::Target::Tagged(expr.clone()),
        _ if target.tag_key.is_some() => {
            api::target::Target::Tag(target.tag_key.clone().unwrap_or_default())
        }
        _ => api::target::Target::Catalog(true),
    };
    Ok(api::Target {
        target: Some(target),
    })
}

fn principal(args: &PrincipalArgs) -> api::role_assignment::Principal {
    match (&args.user, &args.group) {
        (Some(user), _) => api::role_assignment::Principal::User(user.clone()),
        (_, group) => api::role_assignment::Principal::Group(group.clone().unwrap_or_default()),
    }
}

pub(crate) fn table_name(text: &str) -> Result<api::TableName, String> {
    let (database, table) = text
        .split_once('.')
        .ok_or_else(|| format!("a table is database.table, not '{text}'"))?;
    Ok(api::TableName {
        database: database.into(),
        table: table.into(),
    })
}

/// `key=value`.
pub(crate) fn pair(text: &str, form: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("{form}, not '{text}'"))
}
