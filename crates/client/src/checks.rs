//! Pulled records wait here, in pull order, for their signature checks.
//!
//! The engine decrypts and decodes each pulled version as it arrives and
//! groups them in batches of [`crate::SyncConfig::apply_batch`]. A full
//! batch's signature checks go to [`Runtime::check_signatures`] (in the
//! browser, a second worker) while the engine goes on receiving, and the
//! engine applies the oldest batch once its answers are in. Batches leave
//! in the order they came, and a record whose check has not passed never
//! leaves as a record: it becomes a refusal (quarantined like any other).

use std::collections::VecDeque;

use futures::FutureExt;
use sealbase_crypto::{RecordEnvelope, SignatureCheck};
use sealbase_protocol::Uuid;

use crate::codec;
use crate::transport::{Runtime, SignatureAnswer};

/// A pulled version ready to apply.
pub(crate) enum Item {
    Record {
        id: Uuid,
        cursor: u64,
        envelope: Box<RecordEnvelope>,
    },
    Tombstone {
        id: Uuid,
        cursor: u64,
    },
    Refused {
        id: Uuid,
        cursor: u64,
        error: String,
    },
}

/// A pulled version as it leaves decryption.
pub(crate) enum Opened {
    /// Needs nothing more (a tombstone, or a version already refused).
    Ready(Item),
    /// Decrypted and decoded; a record only once `check` passes.
    Unchecked {
        id: Uuid,
        cursor: u64,
        envelope: Box<RecordEnvelope>,
        check: Box<SignatureCheck>,
    },
}

enum Answer {
    /// Not handed out: the engine checks the batch itself.
    Here,
    /// Being checked elsewhere.
    Waiting(SignatureAnswer),
    /// Checked elsewhere (`None`: the checker failed).
    Done(Option<Vec<bool>>),
}

/// Items in pull order; `checks` holds one check per unchecked item, in
/// the same order.
struct Batch {
    items: Vec<Slot>,
    checks: Vec<SignatureCheck>,
    answer: Answer,
}

enum Slot {
    Ready(Item),
    Unchecked {
        id: Uuid,
        cursor: u64,
        envelope: Box<RecordEnvelope>,
    },
}

impl Batch {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            checks: Vec::new(),
            answer: Answer::Here,
        }
    }

    /// Whether [`Self::finish`] would complete without waiting.
    fn answered(&mut self) -> bool {
        match &mut self.answer {
            Answer::Here | Answer::Done(_) => true,
            Answer::Waiting(answer) => match answer.now_or_never() {
                Some(flags) => {
                    self.answer = Answer::Done(flags);
                    true
                }
                None => false,
            },
        }
    }

    /// The items with every check settled. Checks run here when they were
    /// not handed out, or when the checker failed or answered for another
    /// number of checks than it was given.
    async fn finish(self) -> Vec<Item> {
        let flags = match self.answer {
            Answer::Here => None,
            Answer::Waiting(answer) => answer.await,
            Answer::Done(flags) => flags,
        };
        let flags = match flags {
            Some(flags) if flags.len() == self.checks.len() => flags,
            _ => self.checks.iter().map(SignatureCheck::verify).collect(),
        };
        let mut flags = flags.into_iter();
        self.items
            .into_iter()
            .map(|slot| match slot {
                Slot::Ready(item) => item,
                Slot::Unchecked {
                    id,
                    cursor,
                    envelope,
                } => {
                    if flags.next() == Some(true) {
                        Item::Record {
                            id,
                            cursor,
                            envelope,
                        }
                    } else {
                        Item::Refused {
                            id,
                            cursor,
                            error: codec::bad_signature(),
                        }
                    }
                }
            })
            .collect()
    }
}

/// The batches of one pull stream.
pub(crate) struct Checks {
    batch_len: usize,
    /// Batches with fewer checks are checked here.
    hand_out_from: usize,
    filling: Batch,
    sent: VecDeque<Batch>,
}

impl Checks {
    /// Batches handed out and not yet applied, beyond which the engine
    /// waits for the oldest (this bounds what a pull holds in memory).
    pub(crate) const MAX_WAITING: usize = 4;
    /// Fewer checks than this are done here: a round trip to another
    /// worker costs more than a few checks (a live change is one record).
    pub(crate) const HAND_OUT_FROM: usize = 8;

    pub(crate) fn new(batch_len: usize) -> Self {
        Self {
            batch_len: batch_len.max(1),
            hand_out_from: Self::HAND_OUT_FROM,
            filling: Batch::new(),
            sent: VecDeque::new(),
        }
    }

    /// Adds the next version of the stream; a batch that is full goes to
    /// `runtime`'s checker.
    pub(crate) fn push(&mut self, opened: Opened, runtime: &impl Runtime) {
        match opened {
            Opened::Ready(item) => self.filling.items.push(Slot::Ready(item)),
            Opened::Unchecked {
                id,
                cursor,
                envelope,
                check,
            } => {
                self.filling.items.push(Slot::Unchecked {
                    id,
                    cursor,
                    envelope,
                });
                self.filling.checks.push(*check);
            }
        }
        if self.filling.items.len() >= self.batch_len {
            self.send(runtime);
        }
    }

    /// Hands the batch being filled to `runtime`'s checker.
    pub(crate) fn send(&mut self, runtime: &impl Runtime) {
        if self.filling.items.is_empty() {
            return;
        }
        let mut batch = std::mem::replace(&mut self.filling, Batch::new());
        if batch.checks.len() >= self.hand_out_from
            && let Some(answer) = runtime.check_signatures(&batch.checks)
        {
            batch.answer = Answer::Waiting(answer);
        }
        self.sent.push_back(batch);
    }

    /// The oldest batch's items if it can be applied now, or if more than
    /// [`Self::MAX_WAITING`] batches wait (then after its answer). `None`
    /// when the engine should go on receiving.
    pub(crate) async fn next_due(&mut self) -> Option<Vec<Item>> {
        let front = self.sent.front_mut()?;
        if front.answered() || self.sent.len() > Self::MAX_WAITING {
            Some(self.sent.pop_front()?.finish().await)
        } else {
            None
        }
    }

    /// Everything left, in order (the stream is over): the batch being
    /// filled is handed out too, and each batch is awaited in turn.
    pub(crate) async fn next_left(&mut self, runtime: &impl Runtime) -> Option<Vec<Item>> {
        self.send(runtime);
        Some(self.sent.pop_front()?.finish().await)
    }

    /// Whether nothing is left.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.sent.is_empty() && self.filling.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use futures::channel::oneshot;
    use sealbase_crypto::Identity;

    use super::*;

    const SPACE: Uuid = Uuid::from_bytes([1; 16]);

    fn block_on<F: std::future::Future>(test: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(test)
    }

    fn unchecked(n: u8, valid: bool) -> Opened {
        let author = Identity::from_secrets(&[3; 32], &[4; 32]);
        let id = Uuid::from_bytes([n; 16]);
        let envelope =
            RecordEnvelope::sign(&author, &SPACE, &id, "notes", 1, vec![n], vec![]).unwrap();
        // A signature made for another record does not verify for this one.
        let check_for = if valid {
            id
        } else {
            Uuid::from_bytes([0xee; 16])
        };
        let check = envelope.signature_check(&SPACE, &check_for).unwrap();
        Opened::Unchecked {
            id,
            cursor: u64::from(n),
            envelope: Box::new(envelope),
            check: Box::new(check),
        }
    }

    fn tombstone(n: u8) -> Opened {
        Opened::Ready(Item::Tombstone {
            id: Uuid::from_bytes([n; 16]),
            cursor: u64::from(n),
        })
    }

    fn summary(items: &[Item]) -> Vec<(u64, &'static str)> {
        items
            .iter()
            .map(|item| match item {
                Item::Record { cursor, .. } => (*cursor, "record"),
                Item::Tombstone { cursor, .. } => (*cursor, "tombstone"),
                Item::Refused { cursor, .. } => (*cursor, "refused"),
            })
            .collect()
    }

    /// Checks here, at once.
    struct Inline;

    impl Runtime for Inline {
        fn now_ms(&self) -> i64 {
            0
        }
        async fn sleep(&self, _ms: u64) {}
    }

    /// Hands each batch's checks out and answers when the test says so,
    /// with what the test says.
    #[derive(Default)]
    struct Elsewhere {
        /// Per batch handed out: its number of checks, and where to answer.
        asked: RefCell<Vec<(usize, Answering)>>,
    }

    type Answering = oneshot::Sender<Option<Vec<bool>>>;

    impl Runtime for Rc<Elsewhere> {
        fn now_ms(&self) -> i64 {
            0
        }
        async fn sleep(&self, _ms: u64) {}
        fn check_signatures(&self, checks: &[SignatureCheck]) -> Option<SignatureAnswer> {
            let (tx, rx) = oneshot::channel();
            self.asked.borrow_mut().push((checks.len(), tx));
            Some(Box::pin(rx.map(|answer| answer.ok().flatten())))
        }
    }

    #[test]
    fn inline_checks_keep_order_and_refuse_bad_signatures() {
        block_on(async {
            let mut checks = Checks::new(3);
            checks.push(unchecked(1, true), &Inline);
            checks.push(tombstone(2), &Inline);
            assert!(checks.next_due().await.is_none(), "nothing is full yet");
            checks.push(unchecked(3, false), &Inline);
            let first = checks.next_due().await.unwrap();
            assert_eq!(
                summary(&first),
                [(1, "record"), (2, "tombstone"), (3, "refused")]
            );
            checks.push(unchecked(4, true), &Inline);
            assert!(checks.next_due().await.is_none());
            let rest = checks.next_left(&Inline).await.unwrap();
            assert_eq!(summary(&rest), [(4, "record")]);
            assert!(checks.next_left(&Inline).await.is_none());
            assert!(checks.is_empty());
        });
    }

    #[test]
    fn answers_from_elsewhere_are_applied_in_order() {
        block_on(async {
            let runtime = Rc::new(Elsewhere::default());
            let mut checks = Checks::new(2);
            checks.hand_out_from = 1;
            for n in 1..=6 {
                checks.push(unchecked(n, n != 4), &runtime);
            }
            // Three batches handed out, none answered: nothing is due.
            assert_eq!(runtime.asked.borrow().len(), 3);
            assert!(checks.next_due().await.is_none());
            // The second batch's answer comes first: still nothing is due,
            // the first goes first.
            let mut asked = std::mem::take(&mut *runtime.asked.borrow_mut());
            let (n, tx) = asked.remove(1);
            assert_eq!(n, 2);
            tx.send(Some(vec![true, false])).unwrap();
            assert!(checks.next_due().await.is_none());
            let (_, tx) = asked.remove(0);
            tx.send(Some(vec![true, true])).unwrap();
            assert_eq!(
                summary(&checks.next_due().await.unwrap()),
                [(1, "record"), (2, "record")]
            );
            assert_eq!(
                summary(&checks.next_due().await.unwrap()),
                [(3, "record"), (4, "refused")]
            );
            assert!(checks.next_due().await.is_none());
            // The checker failing (its answer dropped) means checking here.
            drop(asked);
            assert_eq!(
                summary(&checks.next_left(&runtime).await.unwrap()),
                [(5, "record"), (6, "record")]
            );
            assert!(checks.is_empty());
        });
    }

    #[test]
    fn a_few_checks_are_done_here() {
        block_on(async {
            let runtime = Rc::new(Elsewhere::default());
            let mut checks = Checks::new(Checks::HAND_OUT_FROM);
            for n in 1..u8::try_from(Checks::HAND_OUT_FROM).unwrap() {
                checks.push(unchecked(n, n != 2), &runtime);
            }
            let items = checks.next_left(&runtime).await.unwrap();
            assert!(runtime.asked.borrow().is_empty(), "too few to hand out");
            assert_eq!(
                summary(&items)[..3],
                [(1, "record"), (2, "refused"), (3, "record")]
            );
            // A full batch is handed out.
            for n in 1..=u8::try_from(Checks::HAND_OUT_FROM).unwrap() {
                checks.push(unchecked(n, true), &runtime);
            }
            assert_eq!(runtime.asked.borrow().len(), 1);
        });
    }

    #[test]
    fn a_wrong_answer_cannot_pass_a_bad_signature() {
        block_on(async {
            let runtime = Rc::new(Elsewhere::default());
            let mut checks = Checks::new(2);
            checks.hand_out_from = 1;
            checks.push(unchecked(1, false), &runtime);
            checks.push(unchecked(2, true), &runtime);
            // An answer for another number of checks is not believed.
            let (_, tx) = runtime.asked.borrow_mut().remove(0);
            tx.send(Some(vec![true, true, true])).unwrap();
            assert_eq!(
                summary(&checks.next_left(&runtime).await.unwrap()),
                [(1, "refused"), (2, "record")]
            );
        });
    }

    #[test]
    fn too_many_waiting_batches_wait_for_the_oldest() {
        block_on(async {
            let runtime = Rc::new(Elsewhere::default());
            let mut checks = Checks::new(1);
            checks.hand_out_from = 1;
            for n in 1..=u8::try_from(Checks::MAX_WAITING + 1).unwrap() {
                checks.push(unchecked(n, true), &runtime);
            }
            // Answer the oldest from another thread while the engine waits.
            let (_, tx) = runtime.asked.borrow_mut().remove(0);
            let answering = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                tx.send(Some(vec![true])).unwrap();
            });
            assert_eq!(summary(&checks.next_due().await.unwrap()), [(1, "record")]);
            answering.join().unwrap();
            // Back at the limit: the engine goes on receiving.
            assert!(checks.next_due().await.is_none());
        });
    }
}
