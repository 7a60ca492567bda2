//! The administration API's tag RPCs as the statements they stand for
//! (`CREATE TAG`, `ALTER ... SET | UNSET TAGS`, `MASK COLUMNS TAGGED`, `ROW
//! FILTER ON TAGGED`), and `SHOW TAGS` answers as `ListTags` rows.

use arrow::array::{AsArray, RecordBatch};
use lakegate_admin::{AdminStatement, TagTarget};
use lakegate_admin_api::v1 as api;
use lakegate_policy::TagExpr;

use crate::admin_messages::{invalid, missing, optional, required, table_name};
use crate::error::CallResult;

/// A tag expression given as text.
pub(crate) fn tag_expr(text: &str) -> CallResult<TagExpr> {
    required(text, "tagged")?
        .parse::<TagExpr>()
        .map_err(|e| invalid(e.to_string()))
}

pub(crate) fn create_tag(message: &api::CreateTagRequest) -> CallResult<AdminStatement> {
    if message.values.is_empty() {
        return Err(missing("values"));
    }
    Ok(AdminStatement::CreateTag {
        key: required(&message.key, "key")?,
        values: message.values.clone(),
        comment: message.comment.clone(),
    })
}

fn resource(resource: Option<&api::TagResource>) -> CallResult<TagTarget> {
    match resource.and_then(|r| r.resource.as_ref()) {
        Some(api::tag_resource::Resource::Database(name)) => {
            required(name, "database").map(TagTarget::Database)
        }
        Some(api::tag_resource::Resource::Table(name)) => table_name(name).map(TagTarget::Table),
        Some(api::tag_resource::Resource::Column(column)) => {
            let table = column.table.as_ref().ok_or_else(|| missing("table"))?;
            Ok(TagTarget::Column(
                table_name(table)?,
                required(&column.column, "column")?,
            ))
        }
        None => Err(missing("resource (database, table or column)")),
    }
}

pub(crate) fn set_tags(message: &api::SetTagsRequest) -> CallResult<AdminStatement> {
    if message.tags.is_empty() {
        return Err(missing("tags"));
    }
    let mut tags: Vec<(String, String)> = message
        .tags
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    tags.sort();
    Ok(AdminStatement::SetTags {
        on: resource(message.resource.as_ref())?,
        tags,
    })
}

pub(crate) fn unset_tags(message: &api::UnsetTagsRequest) -> CallResult<AdminStatement> {
    if message.keys.is_empty() {
        return Err(missing("keys"));
    }
    Ok(AdminStatement::UnsetTags {
        on: resource(message.resource.as_ref())?,
        keys: message.keys.clone(),
    })
}

pub(crate) fn tag_mask(message: &api::CreateTagMaskRequest) -> CallResult<AdminStatement> {
    Ok(AdminStatement::CreateTagMask {
        tagged: tag_expr(&message.tagged)?,
        mask: required(&message.mask, "mask")?,
        role: required(&message.role, "role")?,
        name: optional(&message.name),
    })
}

pub(crate) fn tag_row_filter(
    message: &api::CreateTagRowFilterRequest,
) -> CallResult<AdminStatement> {
    Ok(AdminStatement::CreateTagRowFilter {
        tagged: tag_expr(&message.tagged)?,
        role: required(&message.role, "role")?,
        row_filter: required(&message.row_filter, "row_filter")?,
        name: optional(&message.name),
    })
}

/// The rows of a `SHOW TAGS` answer as `ListTags` gives them.
pub(crate) fn tag_rows(batch: &RecordBatch) -> Vec<api::TagRow> {
    let text = |name: &str, row: usize| -> String {
        batch
            .column_by_name(name)
            .map(|column| column.as_string::<i32>().value(row).to_string())
            .unwrap_or_default()
    };
    (0..batch.num_rows())
        .map(|row| api::TagRow {
            key: text("key", row),
            values: text("values", row)
                .split(", ")
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect(),
            resource: text("resource", row),
            value: text("value", row),
            set_on: text("set_on", row),
        })
        .collect()
}
