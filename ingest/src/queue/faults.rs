//! The queue under injected faults, for tests and failure drills: [`FaultyQueue`] consults a
//! [`cauce_store::faults::Injector`] before every call, as the store's and the lake's wrappers
//! do. Commanded failures strike every call that changes the queue (`receive` included: it
//! hides what it delivers); the schedule strikes any call.

use std::time::Duration;

use async_trait::async_trait;

use cauce_store::faults::{injected, Fault, Injector, Schedule};

use super::{DeadLetter, Delivery, OutMessage, Queue};
use crate::error::{IngestError, Result};

/// A queue under injected faults.
#[derive(Debug)]
pub struct FaultyQueue<Q> {
    inner: Q,
    faults: Injector,
}

impl<Q: Queue> FaultyQueue<Q> {
    /// Wraps `inner` with faults on `schedule`.
    pub fn new(inner: Q, schedule: Schedule) -> Self {
        FaultyQueue {
            inner,
            faults: Injector::new(schedule),
        }
    }

    /// The faults: schedule, commands and counts.
    pub fn faults(&self) -> &Injector {
        &self.faults
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }
}

/// The queue's error for an injected fault in `operation`: the embedded queue's failed
/// transaction, or SQS's throttling or timeout.
fn error(operation: &'static str) -> impl FnOnce(Fault) -> IngestError {
    move |fault| match fault {
        Fault::Fail | Fault::Delay(_) => IngestError::QueueTransaction {
            message: "database or disk is full (injected)".into(),
            transient: true,
        },
        Fault::Throttle => IngestError::Partial {
            operation,
            failed: 1,
            reason: "ThrottlingException: rate exceeded (injected)".into(),
        },
        Fault::LoseAnswer => IngestError::aws("SQS", operation, injected(fault)),
    }
}

/// A call that changes the queue: commanded failures strike it.
const WRITE: Option<&[String]> = Some(&[]);

#[async_trait]
impl<Q: Queue> Queue for FaultyQueue<Q> {
    async fn send(&self, messages: Vec<OutMessage>) -> Result<()> {
        let call = self.inner.send(messages);
        self.faults
            .run(WRITE, call, error("SendMessageBatch"))
            .await
    }

    async fn receive(&self, max: usize) -> Result<Vec<Delivery>> {
        let call = self.inner.receive(max);
        self.faults.run(WRITE, call, error("ReceiveMessage")).await
    }

    async fn ack(&self, deliveries: &[Delivery]) -> Result<()> {
        let call = self.inner.ack(deliveries);
        self.faults
            .run(WRITE, call, error("DeleteMessageBatch"))
            .await
    }

    async fn release(
        &self,
        deliveries: &[Delivery],
        reason: &str,
        retry_in: Duration,
    ) -> Result<()> {
        let call = self.inner.release(deliveries, reason, retry_in);
        let error = error("ChangeMessageVisibilityBatch");
        self.faults.run(WRITE, call, error).await
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        let call = self.inner.dead_letter(delivery, reason);
        self.faults.run(WRITE, call, error("SendMessage")).await
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>> {
        let call = self.inner.dead_letters(max);
        self.faults.run(None, call, error("ReceiveMessage")).await
    }

    async fn replay(&self, ids: &[String]) -> Result<usize> {
        let call = self.inner.replay(ids);
        self.faults
            .run(WRITE, call, error("SendMessageBatch"))
            .await
    }

    async fn pending(&self) -> Result<u64> {
        let call = self.inner.pending();
        self.faults
            .run(None, call, error("GetQueueAttributes"))
            .await
    }

    async fn dead_lettered(&self) -> Result<u64> {
        let call = self.inner.dead_lettered();
        self.faults
            .run(None, call, error("GetQueueAttributes"))
            .await
    }
}
