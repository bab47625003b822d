//! Appending events to the outbox, inside the transaction of the change they
//! report: every port that writes events calls [`append`].

use crate::db::{self, Conn, Param};
use pazar_actors::{Event, StoreError};

/// Appends `events` to the outbox inside the transaction of `conn`, numbering
/// them from the outbox head. Updating the head row makes event-writing
/// transactions take turns, so `seq` order is commit order and a reader never
/// skips a row that commits late.
pub(crate) async fn append(mut conn: Conn<'_>, events: &[Event]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len() as i64;
    let last: i64 =
        db::sql("update outbox_head set last_seq = last_seq + $1 where id = 1 returning last_seq")
            .bind(&count)
            .fetch_one_in(conn.reborrow())
            .await?
            .get("last_seq")?;
    let first = last - count + 1;
    // 9 parameters a row; SQLite allows 32766 per statement.
    const ROWS_PER_STATEMENT: usize = 1000;
    for (chunk_index, chunk) in events.chunks(ROWS_PER_STATEMENT).enumerate() {
        let offset = first + (chunk_index * ROWS_PER_STATEMENT) as i64;
        let seqs: Vec<i64> = (0..chunk.len() as i64).map(|i| offset + i).collect();
        let data: Vec<String> = chunk.iter().map(|event| event.data.to_string()).collect();
        let sql = format!(
            "insert into outbox_events \
             (seq, id, type, subject, time, source, version, data, traceparent) values {}",
            db::rows(chunk.len(), 9)
        );
        let mut insert = db::sql(&sql);
        for ((event, seq), data) in chunk.iter().zip(&seqs).zip(&data) {
            let values: [&dyn Param; 9] = [
                seq,
                &event.id,
                &event.kind,
                &event.subject,
                &event.time,
                &event.source,
                &event.version,
                data,
                &event.traceparent,
            ];
            insert = insert.bind_all(values);
        }
        insert.execute_in(conn.reborrow()).await?;
    }
    Ok(())
}
