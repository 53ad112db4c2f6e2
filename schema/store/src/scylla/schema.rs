//! The CQL schema: the files in `schema/cql/`, compiled in, applied in order by `migrate`,
//! and checked at connect.
//!
//! Every statement in a migration file must be idempotent (`CREATE ... IF NOT EXISTS`):
//! `migrate` applies all files every time, then records [`SCHEMA_VERSION`]. Run it from one
//! process at a time (`starling migrate`, or `migrate_on_start` on a single node): Cassandra
//! before 5.0 can disagree on a table created concurrently through two coordinators.
//!
//! The keyspace is created with plain CQL, plus one clause on ScyllaDB 6.0 onwards:
//! `tablets = {'enabled': false}`, since ScyllaDB releases that put keyspaces on tablets by
//! default refused counters and LWTs in them. That clause is added only after the server
//! has shown it is such a ScyllaDB, so Cassandra never sees it. A keyspace created
//! beforehand on tablets makes the migration fail with a message saying what to do.

use std::collections::HashSet;

use std::time::Duration;

use ::scylla::client::session::Session;
use ::scylla::statement::Statement;
use starling_schema::ids::now_ms;
use starling_schema::settings::Replication;

use super::Keyspace;
use super::exec::{corrupt, fail, ms};
use crate::{Result, SCHEMA_VERSION, StoreError};

/// The migration files, in the order they apply.
const MIGRATIONS: &[(&str, &str)] = &[
    ("001_init.cql", include_str!("../../../cql/001_init.cql")),
    (
        "002_social.cql",
        include_str!("../../../cql/002_social.cql"),
    ),
    ("003_oauth.cql", include_str!("../../../cql/003_oauth.cql")),
    (
        "004_startup.cql",
        include_str!("../../../cql/004_startup.cql"),
    ),
    ("005_email.cql", include_str!("../../../cql/005_email.cql")),
    (
        "006_profiles_requests.cql",
        include_str!("../../../cql/006_profiles_requests.cql"),
    ),
    ("007_media.cql", include_str!("../../../cql/007_media.cql")),
    ("008_push.cql", include_str!("../../../cql/008_push.cql")),
    ("009_feeds.cql", include_str!("../../../cql/009_feeds.cql")),
    (
        "010_edits_polls.cql",
        include_str!("../../../cql/010_edits_polls.cql"),
    ),
    (
        "011_conversations.cql",
        include_str!("../../../cql/011_conversations.cql"),
    ),
    (
        "012_discovery.cql",
        include_str!("../../../cql/012_discovery.cql"),
    ),
];

/// `(table, column)` of an `ALTER TABLE table ADD column type` statement.
pub(super) fn added_column(stmt: &str) -> Option<(&str, &str)> {
    let rest = stmt.strip_prefix("ALTER TABLE ")?;
    let mut words = rest.split_whitespace();
    let table = words.next()?;
    (words.next()? == "ADD").then_some(())?;
    let column = words.next()?;
    words.next()?;
    Some((table, column))
}

/// Whether `table` of the keyspace has `column` already (so re-adding it is skipped).
async fn has_column(session: &Session, ks: &Keyspace, table: &str, column: &str) -> Result<bool> {
    const CTX: &str = "reading the columns of a table";
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? \
             AND table_name = ? AND column_name = ?",
            (ks.name.as_str(), table, column),
        )
        .await
        .map_err(fail(CTX))?
        .into_rows_result()
        .map_err(corrupt(CTX))?;
    Ok(rows.rows_num() > 0)
}

/// The row of `schema_version` this store writes.
const COMPONENT: &str = "store";

/// Schema changes wait for the cluster to agree, and dropping a keyspace snapshots it
/// first: both can outlast an ordinary request timeout.
const DDL_TIMEOUT: Duration = Duration::from_secs(120);

/// Run a schema statement (no bound values).
pub(super) async fn ddl(session: &Session, context: &'static str, cql: String) -> Result<()> {
    let mut statement = Statement::new(cql);
    statement.set_request_timeout(Some(DDL_TIMEOUT));
    session
        .query_unpaged(statement, &[])
        .await
        .map_err(fail(context))?;
    Ok(())
}

/// Split CQL text into statements: `;` ends a statement outside quotes, and `--`, `//`
/// and `/* */` comments are dropped.
pub(super) fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                cur.push(c);
                for q in chars.by_ref() {
                    cur.push(q);
                    // A doubled quote re-enters the quoted text on the next turn.
                    if q == c {
                        break;
                    }
                }
            }
            '-' | '/' if chars.peek() == Some(&c) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                cur.push('\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                cur.push(' ');
            }
            ';' => {
                let stmt = cur.trim();
                if !stmt.is_empty() {
                    out.push(stmt.to_owned());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    let rest = cur.trim();
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// The tables the migrations create, by name.
pub(super) fn tables() -> Vec<String> {
    MIGRATIONS
        .iter()
        .flat_map(|(_, text)| split(text))
        .filter_map(|stmt| {
            let rest = stmt.strip_prefix("CREATE TABLE IF NOT EXISTS ")?;
            let name = rest.split(|c: char| c == '(' || c.is_whitespace()).next()?;
            Some(name.to_owned())
        })
        .collect()
}

/// Create the keyspace if needed, apply every migration, record the version.
pub(super) async fn apply(
    session: &Session,
    ks: &Keyspace,
    replication: &Replication,
) -> Result<u32> {
    const CTX: &str = "applying the schema";
    let mut create = format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {} AND durable_writes = true",
        ks.quoted,
        replication.to_cql()
    );
    if scylla_with_tablets(session).await? {
        // The one ScyllaDB-only clause, used only on a server that has just shown it is
        // ScyllaDB with tablets: counters and LWTs need a keyspace on vnodes there.
        create.push_str(" AND tablets = {'enabled': false}");
    }
    ddl(session, CTX, create).await?;
    if let Some(found) = recorded_version(session, ks).await?
        && found > SCHEMA_VERSION
    {
        return Err(newer(CTX, ks, found));
    }
    // The files name tables without a keyspace, as `cqlsh -k <keyspace>` would run them.
    session
        .use_keyspace(ks.name.clone(), true)
        .await
        .map_err(fail(CTX))?;
    for (file, text) in MIGRATIONS {
        for stmt in split(text) {
            if let Some((table, column)) = added_column(&stmt)
                && has_column(session, ks, table, column).await?
            {
                continue;
            }
            tracing::debug!(file, stmt, "applying");
            ddl(session, CTX, stmt)
                .await
                .map_err(|e| explain_tablets(e, ks))?;
        }
        tracing::info!(file, keyspace = %ks.name, "schema file applied");
    }
    let record = format!(
        "INSERT INTO {}.schema_version (component, version, applied_at_ms) VALUES (?, ?, ?)",
        ks.quoted
    );
    let version = i32::try_from(SCHEMA_VERSION).unwrap_or(i32::MAX);
    session
        .query_unpaged(record, (COMPONENT, version, ms(now_ms())))
        .await
        .map_err(fail(CTX))?;
    Ok(SCHEMA_VERSION)
}

/// Check that the keyspace holds every table at this build's version, so that preparing
/// statements cannot fail half way with a less helpful message.
pub(super) async fn check(session: &Session, ks: &Keyspace) -> Result<()> {
    const CTX: &str = "checking the schema";
    let present = existing_tables(session, ks).await?;
    let missing: Vec<String> = tables()
        .into_iter()
        .filter(|t| !present.contains(t))
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::backend(
            CTX,
            format!(
                "keyspace {} lacks the tables {}; run `starling migrate` (or set \
                 store.scylla.migrate_on_start = true) to create them",
                ks.name,
                missing.join(", ")
            ),
        ));
    }
    match recorded_version(session, ks).await? {
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(v) if v > SCHEMA_VERSION => Err(newer(CTX, ks, v)),
        found => Err(StoreError::backend(
            CTX,
            format!(
                "keyspace {} is at schema version {}, this build needs {SCHEMA_VERSION}; run \
                 `starling migrate`",
                ks.name,
                found.unwrap_or(0)
            ),
        )),
    }
}

/// Whether the server is a ScyllaDB that knows tablets (6.0 onwards): its own keyspace
/// table has an `initial_tablets` column. Cassandra has no such table and answers no rows.
async fn scylla_with_tablets(session: &Session) -> Result<bool> {
    const CTX: &str = "checking for ScyllaDB tablets";
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? \
             AND table_name = ?",
            ("system_schema", "scylla_keyspaces"),
        )
        .await
        .map_err(fail(CTX))?
        .into_rows_result()
        .map_err(corrupt(CTX))?;
    let mut names = rows.rows::<(String,)>().map_err(corrupt(CTX))?;
    Ok(names.any(|r| r.is_ok_and(|(name,)| name == "initial_tablets")))
}

/// The server's `commitlog_sync` setting (`periodic`, `batch` or `group`), from
/// `system_views.settings` (Cassandra 4+) or `system.config` (ScyllaDB); `None` if neither
/// says.
pub(super) async fn commitlog_sync(session: &Session) -> Option<String> {
    const QUERIES: [&str; 2] = [
        "SELECT value FROM system_views.settings WHERE name = 'commitlog_sync'",
        "SELECT value FROM system.config WHERE name = 'commitlog_sync'",
    ];
    for query in QUERIES {
        let Ok(result) = session.query_unpaged(query, ()).await else {
            continue;
        };
        let Ok(rows) = result.into_rows_result() else {
            continue;
        };
        if let Ok(Some((Some(value),))) = rows.maybe_first_row::<(Option<String>,)>() {
            return Some(value);
        }
    }
    None
}

/// A keyspace that already existed on tablets (created by hand) cannot hold this schema on
/// ScyllaDB releases that refuse counters and LWTs there: say what to do instead.
fn explain_tablets(e: StoreError, ks: &Keyspace) -> StoreError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&s.to_string());
        source = s.source();
    }
    if !text.to_lowercase().contains("tablets") {
        return e;
    }
    StoreError::backend(
        "applying the schema",
        format!(
            "keyspace {} uses tablets, which this ScyllaDB does not allow counters or \
             lightweight transactions in ({text}); create it first with `CREATE KEYSPACE \
             \"{}\" WITH replication = ... AND tablets = {{'enabled': false}}` (or upgrade \
             ScyllaDB) and run `starling migrate` again",
            ks.name, ks.name
        ),
    )
}

fn newer(context: &'static str, ks: &Keyspace, found: u32) -> StoreError {
    StoreError::backend(
        context,
        format!(
            "keyspace {} is at schema version {found}, newer than this build's {SCHEMA_VERSION}; \
             upgrade Starling",
            ks.name
        ),
    )
}

async fn existing_tables(session: &Session, ks: &Keyspace) -> Result<HashSet<String>> {
    const CTX: &str = "listing the keyspace's tables";
    let rows = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (ks.name.as_str(),),
        )
        .await
        .map_err(fail(CTX))?
        .into_rows_result()
        .map_err(corrupt(CTX))?;
    rows.rows::<(String,)>()
        .map_err(corrupt(CTX))?
        .map(|r| r.map(|(name,)| name))
        .collect::<Result<HashSet<String>, _>>()
        .map_err(corrupt(CTX))
}

/// The version `migrate` last recorded, `None` before the first migration.
async fn recorded_version(session: &Session, ks: &Keyspace) -> Result<Option<u32>> {
    const CTX: &str = "reading the schema version";
    if !existing_tables(session, ks)
        .await?
        .contains("schema_version")
    {
        return Ok(None);
    }
    let query = format!(
        "SELECT version FROM {}.schema_version WHERE component = ?",
        ks.quoted
    );
    let rows = session
        .query_unpaged(query, (COMPONENT,))
        .await
        .map_err(fail(CTX))?
        .into_rows_result()
        .map_err(corrupt(CTX))?;
    let row = rows
        .maybe_first_row::<(Option<i32>,)>()
        .map_err(corrupt(CTX))?;
    Ok(row
        .and_then(|(v,)| v)
        .map(|v| u32::try_from(v).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::super::statements::{TEMPLATES, render};
    use super::*;

    #[test]
    fn splitting_drops_comments_and_keeps_quoted_semicolons() {
        let text = "-- a; comment\nCREATE TABLE a (x int); // another;\n\
                    /* block; */ INSERT INTO a (x) VALUES ('it''s; fine');\n  \n";
        assert_eq!(
            split(text),
            vec![
                "CREATE TABLE a (x int)",
                "INSERT INTO a (x) VALUES ('it''s; fine')"
            ]
        );
    }

    #[test]
    fn every_migration_statement_is_idempotent() {
        let stmts: Vec<String> = MIGRATIONS.iter().flat_map(|(_, t)| split(t)).collect();
        assert!(stmts.len() > 10);
        for stmt in &stmts {
            assert!(
                stmt.starts_with("CREATE TABLE IF NOT EXISTS ") || added_column(stmt).is_some(),
                "not idempotent: {stmt}"
            );
            assert!(!stmt.contains(';'));
        }
        let names = tables();
        let creates = stmts.iter().filter(|s| added_column(s).is_none()).count();
        assert_eq!(names.len(), creates);
        assert_eq!(
            names.iter().collect::<HashSet<_>>().len(),
            names.len(),
            "duplicate table"
        );
    }

    /// Columns of each table, parsed from the migrations.
    fn columns() -> HashMap<String, HashSet<String>> {
        let mut out = HashMap::new();
        let stmts: Vec<String> = MIGRATIONS.iter().flat_map(|(_, t)| split(t)).collect();
        for stmt in &stmts {
            let Some(rest) = stmt.strip_prefix("CREATE TABLE IF NOT EXISTS ") else {
                continue;
            };
            let (name, body) = rest.split_once('(').unwrap_or((rest, ""));
            let cols = body
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("PRIMARY KEY") && !l.starts_with(')'))
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .collect();
            out.insert(name.trim().to_owned(), cols);
        }
        for stmt in &stmts {
            if let Some((table, column)) = added_column(stmt) {
                out.entry(table.to_owned())
                    .or_insert_with(HashSet::new)
                    .insert(column.to_owned());
            }
        }
        out
    }

    #[test]
    fn added_columns_are_recognised() {
        assert_eq!(
            added_column("ALTER TABLE posts ADD poll_id bigint"),
            Some(("posts", "poll_id"))
        );
        assert_eq!(added_column("ALTER TABLE posts DROP poll_id"), None);
        assert_eq!(added_column("CREATE TABLE IF NOT EXISTS x (a int)"), None);
    }

    const CQL_WORDS: &[&str] = &[
        "select",
        "from",
        "token",
        "where",
        "and",
        "insert",
        "into",
        "values",
        "if",
        "not",
        "exists",
        "update",
        "set",
        "delete",
        "using",
        "ttl",
        "timestamp",
        "order",
        "by",
        "asc",
        "desc",
        "limit",
        "in",
        "null",
        "ks",
    ];

    /// Catches a misspelt table or column in any statement without a server.
    #[test]
    fn statements_name_only_tables_and_columns_of_the_schema() {
        let schema = columns();
        for template in TEMPLATES {
            let cql = render(template, "ks").replace("{order}", "ASC");
            assert!(
                !cql.contains('{') && !cql.contains('}'),
                "unrendered: {cql}"
            );
            let lower = cql.to_lowercase();
            let words: Vec<&str> = lower
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .filter(|w| !w.is_empty())
                .collect();
            let Some(table) = words.iter().find_map(|w| w.strip_prefix("ks.")) else {
                assert!(lower.contains("system.local"), "no table in {cql}");
                continue;
            };
            let cols = schema
                .get(table)
                .unwrap_or_else(|| panic!("no table {table}: {cql}"));
            for w in words {
                if w.starts_with("ks.") || CQL_WORDS.contains(&w) {
                    continue;
                }
                assert!(cols.contains(w), "{table} has no column {w}: {cql}");
            }
        }
    }

    /// Every INSERT binds as many values as it names columns.
    #[test]
    fn inserts_bind_one_value_per_column() {
        for template in TEMPLATES.iter().filter(|t| t.starts_with("INSERT")) {
            let cql = render(template, "ks");
            let (columns, values) = cql.split_once(" VALUES ").expect("VALUES");
            let named = columns.split('(').nth(1).unwrap_or("").split(',').count();
            let values = values.split(')').next().unwrap_or("");
            assert_eq!(named, values.matches('?').count(), "{cql}");
        }
    }
}
