//! Running statements: error mapping, row decoding, LWT outcomes, manual paging and
//! bounded concurrency. Nothing here knows the data model.

use std::future::Future;
use std::ops::ControlFlow;

use ::scylla::client::session::Session;
use ::scylla::deserialize::row::DeserializeRow;
use ::scylla::errors::{
    DbError, ExecutionError, NewSessionError, NextPageError, NextRowError, PagerExecutionError,
    PrepareError, RequestAttemptError, RequestError, SchemaAgreementError, UseKeyspaceError,
};
use ::scylla::response::PagingState;
use ::scylla::response::query_result::QueryResult;
use ::scylla::serialize::row::SerializeRow;
use ::scylla::statement::prepared::PreparedStatement;
use ::scylla::value::{Counter, CqlValue, MaybeUnset, Row};
use futures::{StreamExt, TryStreamExt};
use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::model::{Page, Window};

use super::ScyllaStore;
use crate::{Result, StoreError};

/// Single-partition requests one store call keeps in flight at once.
pub(super) const CONCURRENCY: usize = 64;

/// Most values in one `IN ?` list. ScyllaDB rejects more than
/// `max_clustering_key_restrictions_per_query` (default 100) clustering keys per query.
pub(super) const MAX_IN: usize = 100;

// ---- ids ---------------------------------------------------------------------------------

/// An id as CQL `bigint`. Ids are `unix_ms << 16 | low16`, below 2^63 until about the year
/// 6429, so the cast keeps the value and the order.
pub(super) fn db(id: Id) -> i64 {
    id.0 as i64
}

/// The inverse of [`db`].
pub(super) fn id(v: i64) -> Id {
    Id(v as u64)
}

/// Milliseconds as CQL `bigint`.
pub(super) fn ms(v: u64) -> i64 {
    v as i64
}

/// Now in microseconds, the unit of CQL write times.
pub(super) fn now_us() -> i64 {
    ms(now_ms()).saturating_mul(1000)
}

/// A millisecond time as a CQL write time (microseconds).
pub(super) fn ms_to_us(v: u64) -> i64 {
    ms(v).saturating_mul(1000)
}

/// A stored millisecond value; negative values (never written) read as 0.
pub(super) fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A counter read back; absent or (after drift) negative counters read as 0.
pub(super) fn count(c: Option<Counter>) -> u64 {
    c.map_or(0, |Counter(n)| u64::try_from(n).unwrap_or(0))
}

/// An optional value left unset when absent, so inserts write no null cells (tombstones).
pub(super) fn unset<T>(v: Option<T>) -> MaybeUnset<T> {
    v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// The inclusive clustering bounds `[lo, hi]` that hold the ids strictly inside `w`, or
/// `None` when no id can be.
pub(super) fn bounds(w: &Window) -> Option<(i64, i64)> {
    const TOP: u64 = i64::MAX as u64;
    let lo = match w.above {
        None => 0,
        Some(a) if a.0 >= TOP => return None,
        Some(a) => a.0 + 1,
    };
    let hi = match w.below {
        None => TOP,
        Some(b) if b.0 == 0 => return None,
        Some(b) => (b.0 - 1).min(TOP),
    };
    (lo <= hi).then_some((lo as i64, hi as i64))
}

/// A page from up to `limit + 1` items read in window order.
pub(super) fn finish<T>(mut items: Vec<T>, w: Window, id_of: impl Fn(&T) -> Id) -> Page<T> {
    let more = items.len() > w.limit;
    items.truncate(w.limit);
    let next = if more {
        items.last().map(|t| w.after(id_of(t)))
    } else {
        None
    };
    Page { items, next }
}

pub(super) fn empty_page<T>() -> Page<T> {
    Page {
        items: Vec::new(),
        next: None,
    }
}

// ---- errors ------------------------------------------------------------------------------

/// Whether a driver error means "the cluster could not answer now" (retry later) rather
/// than "this request is wrong" or "the data is corrupt".
pub(super) trait Transient {
    fn transient(&self) -> bool;
}

impl Transient for DbError {
    fn transient(&self) -> bool {
        matches!(
            self,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::ReadFailure { .. }
                | DbError::WriteFailure { .. }
                | DbError::RateLimitReached { .. }
        )
    }
}

impl Transient for RequestAttemptError {
    fn transient(&self) -> bool {
        match self {
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => true,
            RequestAttemptError::DbError(e, _) => e.transient(),
            _ => false,
        }
    }
}

impl Transient for PrepareError {
    fn transient(&self) -> bool {
        match self {
            PrepareError::ConnectionPoolError(_) => true,
            PrepareError::AllAttemptsFailed { first_attempt } => first_attempt.transient(),
            _ => false,
        }
    }
}

impl Transient for SchemaAgreementError {
    fn transient(&self) -> bool {
        match self {
            SchemaAgreementError::ConnectionPoolError(_) | SchemaAgreementError::Timeout(_) => true,
            SchemaAgreementError::PrepareError(e) => e.transient(),
            SchemaAgreementError::RequestError(e) => e.transient(),
            _ => false,
        }
    }
}

impl Transient for UseKeyspaceError {
    fn transient(&self) -> bool {
        match self {
            UseKeyspaceError::RequestTimeout(_) => true,
            UseKeyspaceError::RequestError(e) => e.transient(),
            _ => false,
        }
    }
}

impl Transient for ExecutionError {
    fn transient(&self) -> bool {
        match self {
            ExecutionError::EmptyPlan
            | ExecutionError::ConnectionPoolError(_)
            | ExecutionError::RequestTimeout(_)
            | ExecutionError::MetadataError(_) => true,
            ExecutionError::LastAttemptError(e) => e.transient(),
            ExecutionError::PrepareError(e) => e.transient(),
            ExecutionError::SchemaAgreementError(e) => e.transient(),
            ExecutionError::UseKeyspaceError(e) => e.transient(),
            _ => false,
        }
    }
}

impl Transient for RequestError {
    fn transient(&self) -> bool {
        match self {
            RequestError::EmptyPlan
            | RequestError::ConnectionPoolError(_)
            | RequestError::RequestTimeout(_) => true,
            RequestError::LastAttemptError(e) => e.transient(),
            _ => false,
        }
    }
}

impl Transient for NextPageError {
    fn transient(&self) -> bool {
        match self {
            NextPageError::RequestFailure(e) => e.transient(),
            _ => false,
        }
    }
}

impl Transient for NextRowError {
    fn transient(&self) -> bool {
        match self {
            NextRowError::NextPageError(e) => e.transient(),
            _ => false,
        }
    }
}

impl Transient for PagerExecutionError {
    fn transient(&self) -> bool {
        match self {
            PagerExecutionError::PrepareError(e) => e.transient(),
            PagerExecutionError::NextPageError(e) => e.transient(),
            PagerExecutionError::SchemaAgreementError(e) => e.transient(),
            PagerExecutionError::MetadataError(_) => true,
            _ => false,
        }
    }
}

impl Transient for NewSessionError {
    fn transient(&self) -> bool {
        match self {
            NewSessionError::FailedToResolveAnyHostname(_) | NewSessionError::MetadataError(_) => {
                true
            }
            NewSessionError::UseKeyspaceError(e) => e.transient(),
            _ => false,
        }
    }
}

/// Map a driver error: `Unavailable` when retrying later may work, `Backend` otherwise.
pub(super) fn fail<E>(context: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: Transient + std::error::Error + Send + Sync + 'static,
{
    move |e| {
        if e.transient() {
            StoreError::unavailable(context, e)
        } else {
            StoreError::backend(context, e)
        }
    }
}

/// Map a decoding error: the response did not have the shape the statement promises.
pub(super) fn corrupt<E>(context: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |e| StoreError::backend(context, e)
}

// ---- LWT outcomes ------------------------------------------------------------------------

/// The answer to a conditional statement: whether it was applied and, when it was not, the
/// row that stood in the way. ScyllaDB and Cassandra return different column sets here
/// (Scylla always returns every column, Cassandra only those of an existing row), so
/// columns are found by name.
pub(super) struct Lwt {
    pub(super) applied: bool,
    names: Vec<String>,
    row: Row,
}

impl Lwt {
    fn column(&self, name: &str) -> Option<&CqlValue> {
        let i = self.names.iter().position(|n| n == name)?;
        self.row.columns.get(i)?.as_ref()
    }

    /// A `bigint` column of the existing row, if present.
    pub(super) fn bigint(&self, column: &str) -> Option<i64> {
        self.column(column)?.as_bigint()
    }

    /// A `boolean` column of the existing row, if present.
    pub(super) fn boolean(&self, column: &str) -> Option<bool> {
        self.column(column)?.as_boolean()
    }
}

// ---- execution ---------------------------------------------------------------------------

impl ScyllaStore {
    pub(super) fn session(&self) -> &Session {
        &self.inner.session
    }

    /// Execute a prepared statement in one request (bounded results only).
    pub(super) async fn run(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult> {
        self.session()
            .execute_unpaged(st, values)
            .await
            .map_err(fail(context))
    }

    /// Execute a statement that returns no rows.
    pub(super) async fn write(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<()> {
        self.run(context, st, values).await.map(drop)
    }

    /// Execute a write with the given write time (microseconds) instead of the client's
    /// clock, so that its order against other writes of the same cells is decided by data
    /// (a version, a post's time) rather than by arrival.
    pub(super) async fn write_at(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        timestamp: i64,
        values: impl SerializeRow,
    ) -> Result<()> {
        let mut st = st.clone();
        st.set_timestamp(Some(timestamp));
        self.write(context, &st, values).await
    }

    /// Add `delta` to a counter column keyed by `key`.
    pub(super) async fn bump(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        key: Id,
        delta: i64,
    ) -> Result<()> {
        self.write(context, st, (Counter(delta), db(key))).await
    }

    /// All rows of a bounded read (a point read or a short `IN` list).
    pub(super) async fn rows<R>(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let rows = self
            .run(context, st, values)
            .await?
            .into_rows_result()
            .map_err(corrupt(context))?;
        let iter = rows.rows::<R>().map_err(corrupt(context))?;
        iter.collect::<Result<Vec<R>, _>>()
            .map_err(corrupt(context))
    }

    /// The first row of a point read, if any.
    pub(super) async fn row<R>(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<R>>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let rows = self
            .run(context, st, values)
            .await?
            .into_rows_result()
            .map_err(corrupt(context))?;
        rows.maybe_first_row::<R>().map_err(corrupt(context))
    }

    /// Whether a row exists.
    pub(super) async fn exists(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<bool> {
        let rows = self
            .run(context, st, values)
            .await?
            .into_rows_result()
            .map_err(corrupt(context))?;
        Ok(rows.rows_num() > 0)
    }

    /// Execute a conditional statement (`IF NOT EXISTS`, `IF EXISTS`, `IF col = ?`).
    pub(super) async fn lwt(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Lwt> {
        let rows = self
            .run(context, st, values)
            .await?
            .into_rows_result()
            .map_err(corrupt(context))?;
        let names: Vec<String> = rows
            .column_specs()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(corrupt(context))?
            .ok_or_else(|| StoreError::backend(context, "a conditional write returned no row"))?;
        let applied = names
            .iter()
            .position(|n| n == "[applied]")
            .and_then(|i| row.columns.get(i))
            .and_then(|v| v.as_ref().and_then(CqlValue::as_boolean))
            .ok_or_else(|| {
                StoreError::backend(context, "a conditional write returned no [applied] column")
            })?;
        Ok(Lwt {
            applied,
            names,
            row,
        })
    }

    /// Read rows page by page (`page_size` rows per request, from settings), handing each to
    /// `each` until it breaks or the result ends. Dropping out early fetches no more pages.
    pub(super) async fn scan<R>(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        values: impl SerializeRow,
        mut each: impl FnMut(R) -> Result<ControlFlow<()>>,
    ) -> Result<()>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let mut paging = PagingState::start();
        loop {
            let (result, response) = self
                .session()
                .execute_single_page(st, &values, paging)
                .await
                .map_err(fail(context))?;
            let rows = result.into_rows_result().map_err(corrupt(context))?;
            for row in rows.rows::<R>().map_err(corrupt(context))? {
                if each(row.map_err(corrupt(context))?)?.is_break() {
                    return Ok(());
                }
            }
            match response.into_paging_control_flow() {
                ControlFlow::Break(()) => return Ok(()),
                ControlFlow::Continue(next) => paging = next,
            }
        }
    }

    /// Read one window of a partition whose clustering key is an id: `st` binds
    /// `(partition, lo, hi, limit)`. Reads `limit + 1` rows to know whether more follow.
    pub(super) async fn window<R, T>(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        partition: Id,
        w: Window,
        decode: impl Fn(R) -> Result<T>,
        id_of: impl Fn(&T) -> Id,
    ) -> Result<Page<T>>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        crate::check::window(&w)?;
        let Some((lo, hi)) = bounds(&w) else {
            return Ok(empty_page());
        };
        let want = w.limit + 1;
        let limit = i32::try_from(want).unwrap_or(i32::MAX);
        let mut items = Vec::with_capacity(want.min(1024));
        self.scan(context, st, (db(partition), lo, hi, limit), |row: R| {
            items.push(decode(row)?);
            Ok(if items.len() >= want {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(finish(items, w, id_of))
    }

    /// Rows of one partition whose clustering id is among `ids`: `st` binds
    /// `(partition, list<bigint>)`. Lists longer than [`MAX_IN`] go in several queries.
    pub(super) async fn among<R>(
        &self,
        context: &'static str,
        st: &PreparedStatement,
        partition: Id,
        ids: &[i64],
    ) -> Result<Vec<R>>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send,
    {
        let chunks = ids.chunks(MAX_IN).map(<[i64]>::to_vec);
        let rows = each(chunks, |chunk| {
            self.rows::<R>(context, st, (db(partition), chunk))
        })
        .await?;
        Ok(rows.into_iter().flatten().collect())
    }
}

/// Run `f` over `items` with at most [`CONCURRENCY`] in flight; results in input order.
pub(super) async fn each<I, T, F, Fut>(items: I, f: F) -> Result<Vec<T>>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    futures::stream::iter(items)
        .map(f)
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use starling_schema::model::Order;

    use super::*;

    #[test]
    fn window_bounds_are_exclusive_and_saturate() {
        let w = Window::newest(10);
        assert_eq!(bounds(&w), Some((0, i64::MAX)));
        assert_eq!(bounds(&w.above(Id(5)).below(Id(9))), Some((6, 8)));
        assert_eq!(bounds(&w.above(Id(5)).below(Id(6))), None);
        assert_eq!(bounds(&w.below(Id(0))), None);
        assert_eq!(bounds(&w.above(Id(u64::MAX))), None);
        assert_eq!(bounds(&w.below(Id(u64::MAX))), Some((0, i64::MAX)));
    }

    #[test]
    fn pages_continue_only_when_more_exist() {
        let w = Window::oldest(2);
        let page = finish(vec![Id(1), Id(2), Id(3)], w, |i| *i);
        assert_eq!(page.items, vec![Id(1), Id(2)]);
        assert_eq!(
            page.next,
            Some(Window {
                above: Some(Id(2)),
                ..w
            })
        );
        let page = finish(vec![Id(1), Id(2)], w, |i| *i);
        assert_eq!(page.next, None);
        let w = Window {
            order: Order::NewestFirst,
            ..w
        };
        let page = finish(vec![Id(9), Id(8), Id(7)], w, |i| *i);
        assert_eq!(
            page.next,
            Some(Window {
                below: Some(Id(8)),
                ..w
            })
        );
    }

    #[test]
    fn ids_keep_their_order_as_bigint() {
        let a = Id::floor_of_ms(1_700_000_000_000);
        let b = Id(a.0 + 1);
        assert!(db(a) < db(b));
        assert_eq!(id(db(b)), b);
        // The last millisecond whose ids still fit: about the year 6429.
        assert!(db(Id::floor_of_ms((1 << 47) - 1)) > 0);
    }
}
