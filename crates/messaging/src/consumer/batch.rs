//! One delivery batch in one Postgres transaction, with one inbox claim.
//!
//! [`Consumer::apply`] first sets aside the messages its handler does not
//! act on (acked, no database work) and the second copy of a message the
//! batch carries twice. Then one run of the transaction claims every
//! remaining message id in one statement ([`inbox::claim_all`]), hands the
//! fresh ones to the handler directly on the transaction, in batch order
//! ([`Handler::handle_batch`]: one message at a time by default, all of the
//! run's orders at once for a handler that shares its loads and saves), and
//! commits. A repeat (its id already claimed by an earlier batch) is done
//! without its handler.
//!
//! No savepoints: they would cost three statements a message on every
//! batch to protect against a failure that is rare. When a handler fails,
//! the transaction may hold part of that message's writes (or be aborted by
//! its failed statement), so the whole run is rolled back and the batch
//! runs again in a new transaction without the failing message, whose
//! outcome (dead letter or retry) is kept. What a committed run wrote to
//! the outbox on its transaction comes back with the outcomes, for the
//! consumer to publish. Each failed run drops one
//! message, so a batch runs at most once more than it has messages. When
//! work shared by several messages fails and no message is known to be at
//! fault ([`BatchFailure::Shared`]), each message runs in a transaction of
//! its own, which names the one at fault. Nothing
//! is acked before the run that commits, so a crash anywhere leaves every
//! message to be redelivered, and the claims that committed with the
//! effects make the redelivery harmless. `docs/adr/0014-batched-consumers.md`
//! has the reasoning.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use async_nats::jetstream::Message;
use sqlx::PgConnection;

use super::{Batch, BatchFailure, Consumer, Handler, HandlerError};
use crate::envelope::{Incoming, Outgoing};
use crate::inbox;
use crate::outbox::{self, capture};

/// What becomes of one message of a batch; settled only after the batch's
/// transaction is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Handled, a repeat, or not for this handler: ack.
    Done,
    /// Dead letter with this reason, then ack.
    DeadLetter(String),
    /// Redeliver later (dead letter once the deliveries are spent).
    Retry(String),
}

impl From<HandlerError> for Outcome {
    fn from(err: HandlerError) -> Self {
        match err {
            HandlerError::Rejected(reason) => Outcome::DeadLetter(reason),
            HandlerError::Retry(reason) | HandlerError::Transient(reason) => Outcome::Retry(reason),
        }
    }
}

/// Which messages of a batch the transaction has to run, decided before
/// any database work. Positions are indexes into the batch.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    /// The messages to claim and handle, in batch order, each event id once.
    to_run: Vec<usize>,
    /// The messages the handler does not act on.
    ignored: Vec<usize>,
    /// `(copy, first)`: the message at `copy` carries the event id of the
    /// earlier message at `first`.
    copies: Vec<(usize, usize)>,
}

fn plan<'a>(
    messages: impl IntoIterator<Item = &'a Incoming>,
    handles: impl Fn(&Incoming) -> bool,
) -> Plan {
    let mut plan = Plan::default();
    let mut first_with_id: HashMap<&str, usize> = HashMap::new();
    for (index, incoming) in messages.into_iter().enumerate() {
        if !handles(incoming) {
            plan.ignored.push(index);
            continue;
        }
        match first_with_id.entry(incoming.envelope.event_id.as_str()) {
            Entry::Occupied(first) => plan.copies.push((index, *first.get())),
            Entry::Vacant(slot) => {
                slot.insert(index);
                plan.to_run.push(index);
            }
        }
    }
    plan
}

/// How one run of a batch's transaction ended.
enum Run {
    /// With the messages the run wrote to the outbox, for the consumer to
    /// publish.
    Committed(Vec<Outgoing>),
    /// The handler of the message at `index` failed; everything the run
    /// wrote is rolled back.
    Failed { index: usize, outcome: Outcome },
    /// Work shared by the run's messages failed with this outcome, and no
    /// message is known to be at fault; everything is rolled back.
    Split(Outcome),
}

impl<H: Handler> Consumer<H> {
    /// Applies `batch` and returns one outcome per message, in batch order;
    /// the messages its committed runs wrote to the outbox are added to
    /// `written`. An error (of the database, not of a handler) voids the
    /// batch: nothing of it is committed, except the runs of messages run
    /// one at a time that committed before it, whose messages are in
    /// `written` too.
    pub(super) async fn apply(
        &self,
        batch: &[(Message, Incoming)],
        written: &mut Vec<Outgoing>,
    ) -> std::result::Result<Vec<Outcome>, sqlx::Error> {
        let Plan {
            to_run,
            ignored,
            copies,
        } = plan(batch.iter().map(|(_, incoming)| incoming), |incoming| {
            self.handler.handles(incoming)
        });
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        for index in ignored {
            outcomes[index] = Some(Outcome::Done);
        }
        // Over the whole batch, failed messages included, as before: a
        // message retried later may still be behind the recorded sequence.
        let highest = if self.settings.track_progress {
            batch
                .iter()
                .map(|(_, incoming)| incoming.stream_sequence)
                .max()
        } else {
            None
        };

        // A batch with nothing to claim or record needs no transaction.
        if !to_run.is_empty() || highest.is_some() {
            self.run_until_committed(batch, to_run, highest, &mut outcomes, written)
                .await?;
        }

        // The second copy of a message is a repeat and never handled, but
        // it settles as its first copy does: when both are deliveries of
        // one stream message, acking one while the other is nak'd would
        // ack the message whose effect was just rolled back.
        for (copy, first) in copies {
            outcomes[copy] = outcomes[first].clone();
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                debug_assert!(outcome.is_some(), "every message of a batch has an outcome");
                outcome.unwrap_or_else(|| Outcome::Retry("batch left unfinished".to_owned()))
            })
            .collect())
    }

    /// Runs the messages at `to_run` until a run commits, dropping each
    /// failing message with its outcome. Each failed run drops one message
    /// and a run without messages cannot fail, so the last of these runs
    /// commits (or errors). When shared work fails and no message is known
    /// to be at fault, each message runs on its own instead.
    async fn run_until_committed(
        &self,
        batch: &[(Message, Incoming)],
        mut to_run: Vec<usize>,
        highest: Option<u64>,
        outcomes: &mut [Option<Outcome>],
        written: &mut Vec<Outgoing>,
    ) -> std::result::Result<(), sqlx::Error> {
        let most_runs = to_run.len() + 1;
        for run in 1..=most_runs {
            match self.run_once(batch, &to_run, highest).await? {
                Run::Committed(messages) => {
                    written.extend(messages);
                    for &index in &to_run {
                        outcomes[index] = Some(Outcome::Done);
                    }
                    return Ok(());
                }
                Run::Failed { index, outcome } => {
                    outcomes[index] = Some(outcome);
                    to_run.retain(|&other| other != index);
                    tracing::debug!(durable = %self.settings.durable, run, left = to_run.len(), "running the batch again without its failing message");
                }
                Run::Split(outcome) if to_run.len() == 1 => {
                    outcomes[to_run[0]] = Some(outcome);
                    to_run.clear();
                }
                Run::Split(_) => {
                    tracing::debug!(durable = %self.settings.durable, messages = to_run.len(), "running the batch one message at a time");
                    for index in to_run {
                        outcomes[index] =
                            Some(match self.run_once(batch, &[index], None).await? {
                                Run::Committed(messages) => {
                                    written.extend(messages);
                                    Outcome::Done
                                }
                                Run::Failed { outcome, .. } | Run::Split(outcome) => outcome,
                            });
                    }
                    if highest.is_some() {
                        // Progress over the whole batch, failed messages
                        // included, as for a batch run at once.
                        if let Run::Committed(messages) = self.run_once(batch, &[], highest).await?
                        {
                            written.extend(messages);
                        }
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// One run of the batch's transaction over the messages at `to_run`:
    /// claims their ids, hands the fresh ones to the handler in order,
    /// records progress and commits; when the handler fails it rolls
    /// everything back and says what failed instead.
    async fn run_once(
        &self,
        batch: &[(Message, Incoming)],
        to_run: &[usize],
        highest: Option<u64>,
    ) -> std::result::Result<Run, sqlx::Error> {
        let durable = &self.settings.durable;
        // Queued in memory, not in the database (see `Turnstile`).
        let _turn = match &self.turnstile {
            Some(turnstile) => Some(turnstile.enter().await),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let ids: Vec<&str> = to_run
            .iter()
            .map(|&index| batch[index].1.envelope.event_id.as_str())
            .collect();
        let fresh = inbox::claim_all(&mut tx, durable, &ids).await?;
        let mut written = Vec::new();
        // A repeat was handled by an earlier batch, whose effect committed
        // with its claim.
        let running: Vec<usize> = to_run
            .iter()
            .copied()
            .filter(|&index| fresh.contains(batch[index].1.envelope.event_id.as_str()))
            .collect();
        if !running.is_empty() {
            let run = Batch::new(
                durable,
                running.iter().map(|&index| &batch[index].1).collect(),
            );
            let connection = capture::connection_id(&tx);
            let (handled, messages) =
                capture::capturing(connection, self.handler.handle_batch(&mut tx, &run)).await;
            written = messages;
            if let Err(failure) = handled {
                // A broken connection fails the rollback too; that error is
                // the batch's, and `apply_patiently` holds the batch.
                tx.rollback().await?;
                let (at_fault, err) = match failure {
                    BatchFailure::Message(position, err) => (running.get(position).copied(), err),
                    BatchFailure::Shared(err) => (None, err),
                };
                if let HandlerError::Transient(reason) = err {
                    // Not a message's fault (another transaction's locks, a
                    // restarting server): the batch is held and run again
                    // whole, as for a transient error of its own statements.
                    return Err(sqlx::Error::Io(std::io::Error::other(reason)));
                }
                return Ok(match at_fault {
                    Some(index) => {
                        run.span(&batch[index].1)
                            .in_scope(|| tracing::warn!(error = %err, "message not handled"));
                        Run::Failed {
                            index,
                            outcome: err.into(),
                        }
                    }
                    None => {
                        tracing::warn!(durable = %durable, error = %err, "batch not handled");
                        Run::Split(err.into())
                    }
                });
            }
        }
        if cfg!(debug_assertions) && !running.is_empty() {
            // A handler that swallowed the error of a failed statement left
            // the transaction aborted, and Postgres answers COMMIT on an
            // aborted transaction with a rollback, not an error: the batch
            // would be acked with nothing committed. Handlers must return
            // such errors; debug builds (the tests) check that they did,
            // release builds save the statement.
            sqlx::query("SELECT 1").execute(&mut *tx).await?;
        }
        if let Some(highest) = highest {
            record_progress(&mut tx, durable, highest).await?;
        }
        // The rows of what this consumer published after earlier runs go
        // with this commit: no transaction of their own.
        let forgetting = self.published.take();
        let committed = async {
            outbox::forget(&mut tx, &forgetting).await?;
            tx.commit().await
        }
        .await;
        if committed.is_err() {
            self.published.add(forgetting);
        }
        committed?;
        Ok(Run::Committed(written))
    }
}

/// The span of one handler call, a child of the producer's trace.
pub(super) fn handle_span(durable: &str, incoming: &Incoming) -> tracing::Span {
    let span = tracing::info_span!(
        "message.handle",
        otel.name = %format!("handle {}", incoming.envelope.r#type),
        consumer = %durable,
        order_id = %incoming.envelope.order_id,
        event_id = %incoming.envelope.event_id,
    );
    if let Some(traceparent) = &incoming.traceparent {
        gendan_telemetry::set_parent_from_traceparent(&span, traceparent);
    }
    span
}

async fn record_progress(
    conn: &mut PgConnection,
    durable: &str,
    stream_sequence: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO consumer_progress (consumer, stream_sequence) VALUES ($1, $2) \
         ON CONFLICT (consumer) DO UPDATE SET stream_sequence = \
           GREATEST(consumer_progress.stream_sequence, EXCLUDED.stream_sequence)",
    )
    .bind(durable)
    .bind(i64::try_from(stream_sequence).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Cause, Outgoing};
    use gendan_proto::v1;

    fn confirmed(order_id: &str) -> Incoming {
        let outgoing = Outgoing::event(
            "orders",
            order_id,
            &v1::OrderConfirmed::default(),
            &Cause::root(order_id),
        );
        Incoming {
            subject: outgoing.subject,
            envelope: outgoing.envelope,
            traceparent: None,
            delivered: 1,
            stream_sequence: 1,
        }
    }

    fn accepted(order_id: &str) -> Incoming {
        let outgoing = Outgoing::event(
            "orders",
            order_id,
            &v1::OrderAccepted::default(),
            &Cause::root(order_id),
        );
        Incoming {
            subject: outgoing.subject,
            envelope: outgoing.envelope,
            traceparent: None,
            delivered: 1,
            stream_sequence: 2,
        }
    }

    #[test]
    fn every_event_id_runs_once_and_later_copies_follow_the_first() {
        let first = confirmed("o-1");
        let other = confirmed("o-2");
        let batch = [first.clone(), other, first.clone(), first];
        let plan = plan(&batch, |_| true);
        assert_eq!(
            plan,
            Plan {
                to_run: vec![0, 1],
                ignored: vec![],
                copies: vec![(2, 0), (3, 0)],
            }
        );
    }

    #[test]
    fn messages_the_handler_does_not_act_on_are_set_aside() {
        let batch = [accepted("o-1"), confirmed("o-1"), accepted("o-2")];
        let plan = plan(&batch, |incoming| incoming.is::<v1::OrderConfirmed>());
        assert_eq!(
            plan,
            Plan {
                to_run: vec![1],
                ignored: vec![0, 2],
                copies: vec![],
            }
        );
    }

    #[test]
    fn a_rejected_message_is_dead_lettered_and_a_failed_one_retried() {
        assert_eq!(
            Outcome::from(HandlerError::Rejected("unknown order".into())),
            Outcome::DeadLetter("unknown order".into())
        );
        assert_eq!(
            Outcome::from(HandlerError::Retry("database: gone".into())),
            Outcome::Retry("database: gone".into())
        );
    }

    #[test]
    fn a_deadlock_or_a_lost_connection_runs_the_batch_again() {
        let lost = sqlx::Error::Io(std::io::Error::other("connection reset"));
        assert!(matches!(
            HandlerError::database(lost),
            HandlerError::Transient(_)
        ));
        assert!(matches!(
            HandlerError::database(sqlx::Error::RowNotFound),
            HandlerError::Retry(_)
        ));
    }
}
