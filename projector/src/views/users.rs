//! `rm_users`: accounts with their role, disabled flag and password hash (every request
//! is authenticated against it, through an exact cache).

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_users";
pub const COLUMNS: &str = "username, role, disabled, password_hash, password_position, \
    created_at, created_by, updated_at, updated_by, last_position";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub password_hash: String,
    pub password_position: i64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub last_position: i64,
}

impl UserRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.username.clone()),
            Text(self.role.clone()),
            Int(self.disabled as i64),
            Text(self.password_hash.clone()),
            Int(self.password_position),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            Text(self.updated_at.clone()),
            Text(self.updated_by.clone()),
            Int(self.last_position),
        ]
    }
}

/// `disabled` is stored as 0 or 1 on both databases.
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for UserRow
where
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            username: r.try_get(0)?,
            role: r.try_get(1)?,
            disabled: r.try_get::<i64, _>(2)? != 0,
            password_hash: r.try_get(3)?,
            password_position: r.try_get(4)?,
            created_at: r.try_get(5)?,
            created_by: r.try_get(6)?,
            updated_at: r.try_get(7)?,
            updated_by: r.try_get(8)?,
            last_position: r.try_get(9)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert(UserRow),
    /// Role, disabled flag or password of a user changed.
    Update {
        username: String,
        role: Option<String>,
        disable: bool,
        password_hash: Option<String>,
        at: String,
        by: String,
        position: i64,
    },
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let update = |username: &str, role: Option<String>, disable: bool, password_hash: Option<String>| Op::Update {
        username: username.to_owned(),
        role,
        disable,
        password_hash,
        at: e.at.clone(),
        by: e.actor.clone(),
        position: e.position,
    };
    let op = match event {
        Event::UserCreated(u) => Op::Insert(UserRow {
            username: u.username.to_string(),
            role: u.role.to_string(),
            disabled: false,
            password_hash: u.password_hash.clone(),
            password_position: e.position,
            created_at: e.at.clone(),
            created_by: e.actor.clone(),
            updated_at: e.at.clone(),
            updated_by: e.actor.clone(),
            last_position: e.position,
        }),
        Event::UserRoleChanged(u) => update(u.username.as_str(), Some(u.role.to_string()), false, None),
        Event::UserDisabled(u) => update(u.username.as_str(), None, true, None),
        Event::PasswordChanged(u) => update(u.username.as_str(), None, false, Some(u.password_hash.clone())),
        _ => return,
    };
    ops.push(RowOp::Users(op));
}

pub fn apply(rows: &mut BTreeMap<String, UserRow>, op: Op) {
    match op {
        Op::Insert(row) => {
            rows.insert(row.username.clone(), row);
        }
        Op::Update { username, role, disable, password_hash, at, by, position } => {
            if let Some(u) = rows.get_mut(&username) {
                if let Some(role) = role {
                    u.role = role;
                }
                if disable {
                    u.disabled = true;
                }
                if let Some(hash) = password_hash {
                    u.password_hash = hash;
                    u.password_position = position;
                }
                u.updated_at = at;
                u.updated_by = by;
                u.last_position = position;
            }
        }
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Insert(row) => insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await,
        Op::Update { username, role, disable, password_hash, at, by, position } => on_tx!(tx, conn => {
            // COALESCE keeps what the event does not change.
            sqlx::query(
                "UPDATE rm_users SET role = COALESCE($1, role), \
                 disabled = CASE WHEN $2 = 1 THEN 1 ELSE disabled END, \
                 password_hash = COALESCE($3, password_hash), \
                 password_position = CASE WHEN $4 = 1 THEN $5 ELSE password_position END, \
                 updated_at = $6, updated_by = $7, last_position = $5 WHERE username = $8",
            )
            .bind(role)
            .bind(disable as i64)
            .bind(password_hash.clone())
            .bind(password_hash.is_some() as i64)
            .bind(position)
            .bind(at)
            .bind(by)
            .bind(username)
            .execute(conn)
            .await
            .map(|_| ())
        }),
    }
}
