//! The administration API (`proto/lakegate/admin/v1/admin.proto`), served
//! on the Flight SQL port. Each RPC is the administration statement it
//! stands for, and goes the way that statement goes over Flight SQL: the
//! entry (the policy version check, authentication, the runtime role, the
//! audit event, recorded with the statement as SQL) and the same
//! administration (the same privileges and checks, one transaction).
//!
//! ```text
//! Grant(GrantRequest) ─▶ AdminStatement::Grant ─▶ entry.admit ─▶ Statements::administer ─▶ ChangeResponse
//! ListGrants / EffectiveAccess ─▶ the typed answer of SHOW GRANTS / SHOW EFFECTIVE ACCESS
//! ```
//!
//! Requests become statements, and grants messages, in `admin_messages.rs`.

use lakegate_admin::{AdminStatement, column_rules, rows_text};
use lakegate_admin_api::v1 as api;
use lakegate_admin_api::v1::admin_service_server::AdminService;
use lakegate_catalog::TableFormat;
use tonic::{Request, Response, Status};

use crate::admin_messages::{
    grant_message, grant_statement, grantee, invalid, missing, optional, privileges, required,
    setting_value, table_name, target,
};
use crate::admin_tags;
use crate::entry::{LakegateFlight, recorded};
use crate::error::{CallError, CallResult};

/// The administration API's service (see the module documentation).
#[derive(Debug, Clone)]
pub struct LakegateAdminApi {
    entry: LakegateFlight,
}

impl LakegateAdminApi {
    pub(crate) fn new(entry: LakegateFlight) -> Self {
        Self { entry }
    }

    /// Runs the change `statement` for the caller of `request`, audited as
    /// the RPC `rpc` with the statement's SQL.
    async fn change<T>(
        &self,
        request: Request<T>,
        rpc: &str,
        statement: CallResult<AdminStatement>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let mut call = self.entry.admit(&request, format!("Admin/{rpc}")).await;
        call.audit.statement = statement.as_ref().ok().map(ToString::to_string);
        let pending = self.entry.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            let statement = statement?;
            let statements = self.entry.service().statements();
            let answer = statements.administer_for(&caller, &statement).await?;
            Ok::<_, CallError>(Response::new(api::ChangeResponse {
                result: answer.summary,
                policy_version: answer.version_after,
            }))
        };
        recorded(pending, result.await.map_err(Status::from))
    }
}

#[tonic::async_trait]
impl AdminService for LakegateAdminApi {
    async fn grant(
        &self,
        request: Request<api::GrantRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = grant_statement(request.get_ref());
        self.change(request, "Grant", statement).await
    }

    async fn revoke(
        &self,
        request: Request<api::RevokeRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = (|| {
            Ok(AdminStatement::Revoke {
                privileges: privileges(&message.privileges)?,
                target: target(message.target.as_ref())?,
                role: required(&message.role, "role")?,
            })
        })();
        self.change(request, "Revoke", statement).await
    }

    async fn revoke_grant(
        &self,
        request: Request<api::RevokeGrantRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::RevokeGrant);
        self.change(request, "RevokeGrant", statement).await
    }

    async fn list_grants(
        &self,
        request: Request<api::ListGrantsRequest>,
    ) -> Result<Response<api::ListGrantsResponse>, Status> {
        let message = request.get_ref();
        let role = (!message.role.is_empty()).then(|| message.role.clone());
        let table = message.table.as_ref().map(table_name).transpose();
        let mut call = self.entry.admit(&request, "Admin/ListGrants".into()).await;
        if let Ok(table) = &table {
            let show = AdminStatement::ShowGrants {
                role: role.clone(),
                table: table.clone(),
            };
            call.audit.statement = Some(show.to_string());
        }
        let pending = self.entry.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            let table = table?;
            let statements = self.entry.service().statements();
            let (actor, administration) = statements.administration_for(&caller)?;
            let (grants, version) = administration
                .grants(&actor, role.as_deref(), table.as_ref())
                .await?;
            Ok::<_, CallError>(Response::new(api::ListGrantsResponse {
                grants: grants.iter().map(grant_message).collect(),
                policy_version: version,
            }))
        };
        recorded(pending, result.await.map_err(Status::from))
    }

    async fn grant_role(
        &self,
        request: Request<api::RoleAssignment>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = (|| {
            Ok(AdminStatement::GrantRole {
                role: required(&message.role, "role")?,
                to: grantee(message.principal.as_ref())?,
            })
        })();
        self.change(request, "GrantRole", statement).await
    }

    async fn revoke_role(
        &self,
        request: Request<api::RoleAssignment>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = (|| {
            Ok(AdminStatement::RevokeRole {
                role: required(&message.role, "role")?,
                from: grantee(message.principal.as_ref())?,
            })
        })();
        self.change(request, "RevokeRole", statement).await
    }

    async fn create_role(
        &self,
        request: Request<api::CreateRoleRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = required(&message.name, "name").map(|name| AdminStatement::CreateRole {
            name,
            comment: message.comment.clone(),
        });
        self.change(request, "CreateRole", statement).await
    }

    async fn drop_role(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::DropRole);
        self.change(request, "DropRole", statement).await
    }

    async fn create_user(
        &self,
        request: Request<api::CreateUserRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = (|| {
            Ok(AdminStatement::CreateUser {
                name: required(&message.name, "name")?,
                password: optional(&message.password),
                default_role: optional(&message.default_role),
            })
        })();
        self.change(request, "CreateUser", statement).await
    }

    async fn drop_user(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::DropUser);
        self.change(request, "DropUser", statement).await
    }

    async fn create_group(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::CreateGroup);
        self.change(request, "CreateGroup", statement).await
    }

    async fn drop_group(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::DropGroup);
        self.change(request, "DropGroup", statement).await
    }

    async fn alter_group(
        &self,
        request: Request<api::AlterGroupRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = (|| {
            Ok(AdminStatement::AlterGroup {
                group: required(&message.group, "group")?,
                user: required(&message.user, "user")?,
                add: message.add,
            })
        })();
        self.change(request, "AlterGroup", statement).await
    }

    async fn create_location(
        &self,
        request: Request<api::CreateLocationRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = (|| {
            Ok(AdminStatement::CreateLocation {
                name: required(&message.name, "name")?,
                url: required(&message.url, "url")?,
                settings: message
                    .settings
                    .iter()
                    .map(|(key, value)| (key.clone(), setting_value(value)))
                    .collect(),
            })
        })();
        self.change(request, "CreateLocation", statement).await
    }

    async fn drop_location(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::DropLocation);
        self.change(request, "DropLocation", statement).await
    }

    async fn create_database(
        &self,
        request: Request<api::CreateDatabaseRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement =
            required(&message.name, "name").map(|name| AdminStatement::CreateDatabase {
                name,
                location: Some(message.location.clone()).filter(|l| !l.is_empty()),
                comment: message.comment.clone(),
            });
        self.change(request, "CreateDatabase", statement).await
    }

    async fn drop_database(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::DropDatabase);
        self.change(request, "DropDatabase", statement).await
    }

    async fn create_table(
        &self,
        request: Request<api::CreateTableRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let message = request.get_ref();
        let statement = (|| {
            let name = message
                .name
                .as_ref()
                .ok_or_else(|| missing("name"))
                .and_then(table_name)?;
            let format = match message.format.to_ascii_lowercase().as_str() {
                "" | "parquet" => TableFormat::Parquet,
                "delta" => TableFormat::Delta,
                other => return Err(invalid(format!("format '{other}' is not parquet or delta"))),
            };
            Ok(AdminStatement::CreateTable {
                name,
                url: required(&message.url, "url")?,
                format,
                partition_columns: message
                    .partition_columns
                    .iter()
                    .map(|c| (c.name.clone(), c.r#type.clone()))
                    .collect(),
                comment: message.comment.clone(),
            })
        })();
        self.change(request, "CreateTable", statement).await
    }

    async fn drop_table(
        &self,
        request: Request<api::TableName>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = table_name(request.get_ref()).map(AdminStatement::DropTable);
        self.change(request, "DropTable", statement).await
    }

    async fn effective_access(
        &self,
        request: Request<api::EffectiveAccessRequest>,
    ) -> Result<Response<api::EffectiveAccessResponse>, Status> {
        let message = request.get_ref();
        let asked = (|| {
            let role = required(&message.role, "role")?;
            let table = message
                .table
                .as_ref()
                .ok_or_else(|| missing("table"))
                .and_then(table_name)?;
            Ok::<_, CallError>((role, table))
        })();
        let mut call = self
            .entry
            .admit(&request, "Admin/EffectiveAccess".into())
            .await;
        if let Ok((role, table)) = &asked {
            let show = AdminStatement::ShowEffectiveAccess {
                role: role.clone(),
                table: table.clone(),
            };
            call.audit.statement = Some(show.to_string());
        }
        let pending = self.entry.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            let (role, table) = asked?;
            let statements = self.entry.service().statements();
            let (actor, administration) = statements.administration_for(&caller)?;
            let (access, version) = administration
                .effective_access(&actor, &role, &table)
                .await?;
            let mut answer = api::EffectiveAccessResponse {
                policy_version: version,
                rows: "none".into(),
                ..Default::default()
            };
            if let Some(access) = access.first() {
                answer.visible = true;
                answer.can_select = access.can_select;
                answer.columns = column_rules(access)
                    .into_iter()
                    .map(|(column, access)| api::ColumnAccess { column, access })
                    .collect();
                answer.rows = rows_text(access);
                answer.grants = access.grants.clone();
            }
            Ok::<_, CallError>(Response::new(answer))
        };
        recorded(pending, result.await.map_err(Status::from))
    }

    async fn policy_version(
        &self,
        request: Request<api::PolicyVersionRequest>,
    ) -> Result<Response<api::PolicyVersionResponse>, Status> {
        let call = self
            .entry
            .admit(&request, "Admin/PolicyVersion".into())
            .await;
        let pending = self.entry.audit(call.audit);
        let result = call.caller.map(|_| {
            Response::new(api::PolicyVersionResponse {
                policy_version: self.entry.service().engine().policy_version(),
            })
        });
        recorded(pending, result.map_err(Status::from))
    }

    async fn create_tag(
        &self,
        request: Request<api::CreateTagRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = admin_tags::create_tag(request.get_ref());
        self.change(request, "CreateTag", statement).await
    }

    async fn drop_tag(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::DropTag);
        self.change(request, "DropTag", statement).await
    }

    async fn set_tags(
        &self,
        request: Request<api::SetTagsRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = admin_tags::set_tags(request.get_ref());
        self.change(request, "SetTags", statement).await
    }

    async fn unset_tags(
        &self,
        request: Request<api::UnsetTagsRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = admin_tags::unset_tags(request.get_ref());
        self.change(request, "UnsetTags", statement).await
    }

    async fn create_tag_mask(
        &self,
        request: Request<api::CreateTagMaskRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = admin_tags::tag_mask(request.get_ref());
        self.change(request, "CreateTagMask", statement).await
    }

    async fn create_tag_row_filter(
        &self,
        request: Request<api::CreateTagRowFilterRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = admin_tags::tag_row_filter(request.get_ref());
        self.change(request, "CreateTagRowFilter", statement).await
    }

    async fn drop_tag_mask(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement = required(&request.get_ref().name, "name").map(AdminStatement::DropTagMask);
        self.change(request, "DropTagMask", statement).await
    }

    async fn drop_tag_row_filter(
        &self,
        request: Request<api::NameRequest>,
    ) -> Result<Response<api::ChangeResponse>, Status> {
        let statement =
            required(&request.get_ref().name, "name").map(AdminStatement::DropTagRowFilter);
        self.change(request, "DropTagRowFilter", statement).await
    }

    async fn list_tags(
        &self,
        request: Request<api::ListTagsRequest>,
    ) -> Result<Response<api::ListTagsResponse>, Status> {
        let table = request.get_ref().table.as_ref().map(table_name).transpose();
        let mut call = self.entry.admit(&request, "Admin/ListTags".into()).await;
        if let Ok(table) = &table {
            let show = AdminStatement::ShowTags {
                table: table.clone(),
            };
            call.audit.statement = Some(show.to_string());
        }
        let pending = self.entry.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            let show = AdminStatement::ShowTags { table: table? };
            let statements = self.entry.service().statements();
            let (actor, administration) = statements.administration_for(&caller)?;
            let answer = administration.execute(&actor, &show).await?;
            Ok::<_, CallError>(Response::new(api::ListTagsResponse {
                tags: admin_tags::tag_rows(&answer.batch),
                policy_version: answer.version_after,
            }))
        };
        recorded(pending, result.await.map_err(Status::from))
    }

    /// Unauthenticated, like any health check a load balancer makes: it
    /// says only whether the server can serve.
    async fn health(
        &self,
        _request: Request<api::HealthRequest>,
    ) -> Result<Response<api::HealthResponse>, Status> {
        let service = self.entry.service();
        let status = match service.ensure_current_policy().await {
            Ok(()) => api::health_response::Status::Serving,
            Err(_) => api::health_response::Status::StoreUnreachable,
        };
        Ok(Response::new(api::HealthResponse {
            status: status.into(),
            policy_version: service.engine().policy_version(),
            policy_source: service.policy_source().into(),
        }))
    }
}
