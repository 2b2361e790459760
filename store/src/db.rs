//! The store's metadata database (SQLite): which paths are valid, and what is known about them.
//!
//! The tables follow CppNix's `ValidPaths` / `Refs` / `DerivationOutputs` design:
//!
//! * `ValidPaths`: one row per valid store path (printed absolute path), with its NAR hash
//!   (`sha256:<base16>`), NAR size, registration time, deriver and content address.
//! * `Refs`: (referrer, reference) pairs of `ValidPaths` ids; a path may refer to itself.
//! * `DerivationOutputs`: for every valid `.drv`, the path of each output, so that a path that
//!   is needed but missing can be traced back to the derivation that makes it.
//!
//! A path is valid exactly when its `ValidPaths` row exists; rows are only written after the
//! path's files are complete and synced, and several paths are registered in one transaction.
//! The database lives in its own file (not CppNix's `db.sqlite`), so the two implementations
//! never write each other's schema.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::hash::Hash;
use crate::Error;

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ca               text
);
create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);
create index if not exists IndexReference on Refs(reference);
create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;
create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null,
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);
create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
"#;

/// What the store knows about a valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    /// Printed absolute store path.
    pub path: String,
    /// sha256 of the path's NAR serialisation.
    pub nar_hash: Hash,
    pub nar_size: u64,
    /// Printed store paths this path refers to (possibly itself).
    pub references: BTreeSet<String>,
    /// The `.drv` that built this path, if any.
    pub deriver: Option<String>,
    /// The content address, e.g. `text:sha256:<nix32>` or `fixed:r:sha256:<nix32>`.
    pub ca: Option<String>,
    /// Seconds since the epoch.
    pub registration_time: i64,
}

/// An open metadata database.
pub struct Db {
    conn: Connection,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Db(e.to_string())
}

impl Db {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Db, Error> {
        let conn = Connection::open(path).map_err(|e| {
            Error::Db(format!(
                "cannot open store database '{}': {e}",
                path.display()
            ))
        })?;
        Self::setup(conn)
    }

    /// Open an existing database without creating or changing anything.
    pub fn open_read_only(path: &Path) -> Result<Db, Error> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            Error::Db(format!(
                "cannot open store database '{}': {e}",
                path.display()
            ))
        })?;
        conn.busy_timeout(Duration::from_secs(600))
            .map_err(db_err)?;
        Ok(Db { conn })
    }

    fn setup(conn: Connection) -> Result<Db, Error> {
        // Other processes may hold the write lock while they register paths: wait for them.
        conn.busy_timeout(Duration::from_secs(600))
            .map_err(db_err)?;
        // WAL lets readers go on while one writer commits; synchronous=NORMAL with WAL keeps
        // every committed transaction across a crash of the process (CppNix's default too).
        conn.pragma_update(None, "journal_mode", "wal")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "normal")
            .map_err(db_err)?;
        conn.pragma_update(None, "foreign_keys", "on")
            .map_err(db_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db_err)?;
        if version > SCHEMA_VERSION {
            return Err(Error::Db(format!(
                "store database has schema version {version}, newer than this program's {SCHEMA_VERSION}"
            )));
        }
        if version < SCHEMA_VERSION {
            conn.execute_batch(&format!(
                "begin immediate; {SCHEMA} pragma user_version = {SCHEMA_VERSION}; commit;"
            ))
            .map_err(db_err)?;
        }
        Ok(Db { conn })
    }

    fn id_of(&self, path: &str) -> Result<Option<i64>, Error> {
        self.conn
            .prepare_cached("select id from ValidPaths where path = ?1")
            .and_then(|mut s| s.query_row([path], |r| r.get(0)).optional())
            .map_err(db_err)
    }

    /// Whether `path` (printed) is registered.
    pub fn is_valid(&self, path: &str) -> Result<bool, Error> {
        Ok(self.id_of(path)?.is_some())
    }

    /// Everything known about a valid path, or `None` when it is not valid.
    pub fn query_path_info(&self, path: &str) -> Result<Option<PathInfo>, Error> {
        let row = self
            .conn
            .prepare_cached(
                "select id, hash, registrationTime, deriver, narSize, ca from ValidPaths where path = ?1",
            )
            .and_then(|mut s| {
                s.query_row([path], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })
                .optional()
            })
            .map_err(db_err)?;
        let Some((id, hash, time, deriver, size, ca)) = row else {
            return Ok(None);
        };
        let nar_hash = Hash::parse_any_prefixed(&hash)
            .map_err(|e| Error::Db(format!("bad NAR hash of '{path}' in the database: {e}")))?;
        let mut references = BTreeSet::new();
        {
            let mut s = self
                .conn
                .prepare_cached(
                    "select path from Refs join ValidPaths on reference = id where referrer = ?1",
                )
                .map_err(db_err)?;
            let rows = s
                .query_map([id], |r| r.get::<_, String>(0))
                .map_err(db_err)?;
            for r in rows {
                references.insert(r.map_err(db_err)?);
            }
        }
        Ok(Some(PathInfo {
            path: path.to_string(),
            nar_hash,
            nar_size: size.unwrap_or(0) as u64,
            references,
            deriver,
            ca,
            registration_time: time,
        }))
    }

    /// The outputs recorded for a valid derivation: output name -> printed path.
    pub fn query_derivation_outputs(&self, drv: &str) -> Result<BTreeMap<String, String>, Error> {
        let mut s = self
            .conn
            .prepare_cached(
                "select d.id, d.path from DerivationOutputs d join ValidPaths v on d.drv = v.id where v.path = ?1",
            )
            .map_err(db_err)?;
        let rows = s
            .query_map([drv], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db_err)?;
        let mut out = BTreeMap::new();
        for r in rows {
            let (k, v) = r.map_err(db_err)?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// The valid derivations that name `path` as one of their outputs: (drv, output name).
    pub fn query_valid_derivers(&self, path: &str) -> Result<Vec<(String, String)>, Error> {
        let mut s = self
            .conn
            .prepare_cached(
                "select v.path, d.id from DerivationOutputs d join ValidPaths v on d.drv = v.id where d.path = ?1",
            )
            .map_err(db_err)?;
        let rows = s
            .query_map([path], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Register several paths in one transaction. Every reference must be valid already or
    /// be one of the paths registered here. Paths that are valid already are left as they
    /// are. `drv_outputs` gives, for `.drv` paths among them, their output paths.
    pub fn register(
        &mut self,
        infos: &[PathInfo],
        drv_outputs: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<(), Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
        let mut fresh: Vec<&PathInfo> = Vec::new();
        for info in infos {
            let existing: Option<i64> = tx
                .prepare_cached("select id from ValidPaths where path = ?1")
                .and_then(|mut s| s.query_row([&info.path], |r| r.get(0)).optional())
                .map_err(db_err)?;
            if let Some(id) = existing {
                ids.insert(&info.path, id);
                continue;
            }
            tx.prepare_cached(
                "insert into ValidPaths (path, hash, registrationTime, deriver, narSize, ca) values (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    info.path,
                    format!("sha256:{}", info.nar_hash.to_base16()),
                    info.registration_time,
                    info.deriver,
                    info.nar_size as i64,
                    info.ca
                ])
            })
            .map_err(db_err)?;
            ids.insert(&info.path, tx.last_insert_rowid());
            fresh.push(info);
        }
        for info in &fresh {
            let referrer = ids[info.path.as_str()];
            for r in &info.references {
                let reference = match ids.get(r.as_str()) {
                    Some(id) => *id,
                    None => tx
                        .prepare_cached("select id from ValidPaths where path = ?1")
                        .and_then(|mut s| s.query_row([r], |row| row.get(0)).optional())
                        .map_err(db_err)?
                        .ok_or_else(|| {
                            Error::Db(format!(
                                "cannot register path '{}' because its reference '{r}' is not valid",
                                info.path
                            ))
                        })?,
                };
                tx.prepare_cached(
                    "insert or ignore into Refs (referrer, reference) values (?1, ?2)",
                )
                .and_then(|mut s| s.execute(params![referrer, reference]))
                .map_err(db_err)?;
            }
            if let Some(outs) = drv_outputs.get(&info.path) {
                for (name, out) in outs {
                    tx.prepare_cached(
                        "insert or replace into DerivationOutputs (drv, id, path) values (?1, ?2, ?3)",
                    )
                    .and_then(|mut s| s.execute(params![referrer, name, out]))
                    .map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Number of valid paths (for tests and statistics).
    pub fn count_valid(&self) -> Result<u64, Error> {
        self.conn
            .query_row("select count(*) from ValidPaths", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(db_err)
    }
}
