//! Write access: insert grants resolve to the columns a role may write and
//! the checks its rows must pass; write privileges grant no read; misplaced
//! write privileges are refused.

use std::collections::BTreeMap;

use lakegate_policy::{
    ColumnMask, ColumnSelection, Grant, PolicySet, Privilege, Resource, Role, Subject, TableName,
};

fn role(name: &str) -> Role {
    Role {
        name: name.into(),
        description: String::new(),
    }
}

fn grant(name: &str, on: &str, privileges: &[Privilege]) -> Grant {
    Grant {
        name: name.into(),
        role: "writer".into(),
        resource: Resource::parse(on).unwrap(),
        privileges: privileges.to_vec(),
        grantable: false,
        columns: ColumnSelection::All,
        row_filter: None,
        masks: BTreeMap::new(),
    }
}

fn people() -> TableName {
    TableName::new("crm", "people")
}

fn columns() -> Vec<String> {
    ["id", "region", "customer.name", "customer.email"]
        .map(String::from)
        .to_vec()
}

fn policy(grants: Vec<Grant>) -> Result<PolicySet, lakegate_policy::PolicyErrors> {
    PolicySet::try_new([role("writer")], [], [], grants)
}

#[test]
fn insert_grants_resolve_to_writable_columns_and_checks() {
    let mut own_region = grant("eu_rows", "crm.people", &[Privilege::Insert]);
    own_region.columns = ColumnSelection::Exclude(vec!["customer.email".into()]);
    own_region.row_filter = Some("region = 'EU'".into());
    let database = grant("crm_ids", "crm.*", &[Privilege::Insert]);
    let mut ids_only = database.clone();
    ids_only.columns = ColumnSelection::Include(vec!["id".into()]);
    let policy = policy(vec![own_region, ids_only]).unwrap();

    let access = policy
        .write_access("writer", &people(), &columns())
        .expect("two insert grants cover the table");
    assert_eq!(access.grant_names(), ["eu_rows", "crm_ids"]);
    assert_eq!(
        access.grants[0].columns,
        ["id", "region", "customer.name"],
        "a struct's field is excluded by its path"
    );
    assert_eq!(access.grants[0].check.as_deref(), Some("region = 'EU'"));
    assert_eq!(access.grants[1].columns, ["id"]);
    assert_eq!(access.unwritable_columns(&columns()), ["customer.email"]);
    assert!(!access.accepts_every_row(&columns()));

    // Write privileges grant no read: the table is not even described.
    assert!(
        policy
            .effective_access("writer", &people(), &columns())
            .is_none()
    );
    assert!(!policy.may_describe("writer", &people(), &columns()));
    // Other tables and other roles: default deny.
    let other = TableName::new("hr", "salaries");
    assert!(policy.write_access("writer", &other, &columns()).is_none());
    assert!(
        policy
            .write_access("reader", &people(), &columns())
            .is_none()
    );
}

#[test]
fn an_unconditional_insert_grant_accepts_every_row() {
    let policy = policy(vec![grant("all", "*", &[Privilege::Insert])]).unwrap();
    let access = policy
        .write_access("writer", &people(), &columns())
        .unwrap();
    assert!(access.accepts_every_row(&columns()));
    assert!(access.unwritable_columns(&columns()).is_empty());
}

#[test]
fn select_grants_confer_no_write() {
    let policy = policy(vec![grant("read", "crm.people", &[Privilege::Select])]).unwrap();
    assert!(
        policy
            .write_access("writer", &people(), &columns())
            .is_none()
    );
    assert!(!policy.may_create_table("writer", "crm"));
}

#[test]
fn create_table_is_granted_on_databases() {
    let policy = policy(vec![grant(
        "crm_tables",
        "crm.*",
        &[Privilege::CreateTable],
    )])
    .unwrap();
    assert!(policy.may_create_table("writer", "crm"));
    assert!(!policy.may_create_table("writer", "hr"));
    // It confers no insert into the tables already there.
    assert!(
        policy
            .write_access("writer", &people(), &columns())
            .is_none()
    );
}

#[test]
fn misplaced_write_privileges_are_refused() {
    let mut masked = grant("masked_writes", "crm.people", &[Privilege::Insert]);
    masked.masks.insert(
        "customer.email".into(),
        ColumnMask::builtin("hash").unwrap(),
    );
    let cases = [
        (
            grant("table_create", "crm.people", &[Privilege::CreateTable]),
            "create_table is granted on a database",
        ),
        (
            Grant {
                resource: Resource::Tagged("TRUE".parse().unwrap()),
                ..grant("tagged_insert", "*", &[Privilege::Insert])
            },
            "insert is granted on a table, a database ('db.*') or the catalog ('*')",
        ),
        (masked, "masks do not apply to writes"),
    ];
    for (grant, expected) in cases {
        let name = grant.name.clone();
        let errors = policy(vec![grant]).expect_err(&name);
        let message = errors
            .errors
            .iter()
            .find(|e| e.subject == Subject::Grant(name.clone()))
            .map(|e| e.message.clone())
            .unwrap_or_else(|| panic!("{name}: {errors:?}"));
        assert!(message.contains(expected), "{name}: {message}");
    }
    // Reading and writing in one grant: its masks shape the reading.
    let mut both = grant(
        "both",
        "crm.people",
        &[Privilege::Select, Privilege::Insert],
    );
    both.masks.insert(
        "customer.email".into(),
        ColumnMask::builtin("hash").unwrap(),
    );
    assert!(policy(vec![both]).is_ok());
}

#[test]
fn privileges_parse_by_their_catalog_names() {
    for privilege in Privilege::ALL {
        assert_eq!(Privilege::parse(privilege.name()), Some(privilege));
        assert_eq!(
            Privilege::parse(&privilege.name().to_ascii_uppercase()),
            Some(privilege)
        );
    }
    assert_eq!(Privilege::parse("create table"), None);
}
