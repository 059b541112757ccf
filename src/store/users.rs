//! Dashboard users (`iobox user add`): a name, an argon2 password hash as a PHC string, a role.
//!
//! The store only keeps the strings; hashing and verifying passwords is `server::auth`'s job, and the role's
//! meaning is the dashboard's. The table's CHECK constraint allows the roles `staff` and `integrator`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Error, Result, sql_err};

/// One row of `users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// `$argon2id$v=19$...`.
    pub password_hash: String,
    /// `staff` or `integrator`.
    pub role: String,
    pub created_at_ms: i64,
}

/// Adds a user (creating and migrating the database as needed). With `replace`, an existing user of that
/// name gets the new hash and role; without, an existing name is an error. Returns whether a user of that
/// name existed.
pub fn add(path: &Path, user: &User, replace: bool) -> Result<bool> {
    let conn = super::open_rw(path)?;
    let tx = conn.unchecked_transaction().map_err(sql_err(path))?;
    let existed = find(&tx, &user.name).map_err(|e| rename(e, path))?.is_some();
    if existed && !replace {
        return Err(Error::UserExists { path: path.to_path_buf(), name: user.name.clone() });
    }
    tx.execute(
        "INSERT INTO users (name, password_hash, role, created_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role",
        params![user.name, user.password_hash, user.role, user.created_at_ms],
    )
    .map_err(sql_err(path))?;
    tx.commit().map_err(sql_err(path))?;
    Ok(existed)
}

/// Removes a user; returns whether there was one.
pub fn remove(path: &Path, name: &str) -> Result<bool> {
    let conn = super::open_rw(path)?;
    Ok(conn.execute("DELETE FROM users WHERE name = ?1", [name]).map_err(sql_err(path))? > 0)
}

/// Every user, by name (hashes included: callers print only names and roles).
pub fn list(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt =
        conn.prepare("SELECT name, password_hash, role, created_at_ms FROM users ORDER BY name").map_err(err(conn))?;
    let rows = stmt.query_map([], row).map_err(err(conn))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err(conn))
}

/// The user called `name`, if any.
pub fn find(conn: &Connection, name: &str) -> Result<Option<User>> {
    conn.query_row("SELECT name, password_hash, role, created_at_ms FROM users WHERE name = ?1", [name], row)
        .optional()
        .map_err(err(conn))
}

/// How many users there are (the dashboard explains how to make the first one when there are none).
pub fn count(conn: &Connection) -> Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64).map_err(err(conn))
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User { name: r.get(0)?, password_hash: r.get(1)?, role: r.get(2)?, created_at_ms: r.get(3)? })
}

fn err(conn: &Connection) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite { path: conn.path().unwrap_or("").into(), source }
}

fn rename(e: Error, path: &Path) -> Error {
    match e {
        Error::Sqlite { source, .. } => Error::Sqlite { path: path.to_path_buf(), source },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: &str) -> User {
        User { name: name.into(), password_hash: format!("hash-of-{name}"), role: role.into(), created_at_ms: 1 }
    }

    #[test]
    fn users_are_added_replaced_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("u.sqlite");
        assert!(!add(&db, &user("ana", "staff"), false).unwrap());
        assert!(matches!(add(&db, &user("ana", "integrator"), false), Err(Error::UserExists { .. })));
        let mut changed = user("ana", "integrator");
        changed.password_hash = "new".into();
        assert!(add(&db, &changed, true).unwrap());
        add(&db, &user("bo", "staff"), false).unwrap();
        let conn = crate::store::open_ro(&db).unwrap();
        let all = list(&conn).unwrap();
        assert_eq!(
            all.iter().map(|u| (u.name.as_str(), u.role.as_str())).collect::<Vec<_>>(),
            [("ana", "integrator"), ("bo", "staff")]
        );
        assert_eq!(find(&conn, "ana").unwrap().unwrap().password_hash, "new");
        assert_eq!(find(&conn, "nobody").unwrap(), None);
        assert_eq!(count(&conn).unwrap(), 2);
        // The CHECK constraint refuses any other role.
        assert!(add(&db, &user("eve", "admin"), false).is_err());
        assert!(remove(&db, "bo").unwrap());
        assert!(!remove(&db, "bo").unwrap());
        assert_eq!(count(&conn).unwrap(), 1);
    }
}
