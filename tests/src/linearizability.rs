//! A linearizability checker for histories of concurrent operations on a set
//! of independent registers, one per key.
//!
//! # Model
//!
//! Every key is a register that starts absent. An [`Op`] is a read (returns
//! the value or "absent"), a blind write, a delete, or a compare-and-swap
//! whose `expected: None` means "create if absent". A history records, for
//! every operation, who issued it, when it was called, and — if the client
//! learnt the outcome — when it returned and what it returned.
//!
//! An operation whose outcome is unknown (timed out, connection lost) has no
//! return time: it is "possibly applied". It may take effect at any instant
//! after its call, or never, and its result constrains nothing. That is how
//! etcd's robustness tests treat such requests, and it is the only sound
//! reading of a timeout against a replicated store: the proposal may still
//! commit long after the client gave up. Reads whose outcome is unknown carry
//! no information (they change nothing), so the checker ignores them and the
//! [`Recorder`] drops them.
//!
//! A history is linearizable when every operation can be given a single
//! instant inside its `[call, return]` interval such that executing the
//! operations one at a time in that order, on a sequential register, yields
//! exactly the recorded results. Equal timestamps count as concurrent, so
//! coarse clocks make the checker more permissive, never less.
//!
//! # Algorithm
//!
//! Linearizability is compositional (P-compositionality): a history of
//! independent registers is linearizable iff each register's sub-history is,
//! so [`check`] splits by key and checks each key alone.
//!
//! Per key it runs the Wing & Gong search in the form Lowe refined and
//! Porcupine popularised: call and return events are sorted into a doubly
//! linked list; walking it from the front, the search tries to linearize each
//! operation whose call it meets (if its result is possible in the current
//! state), removes that operation's events from the list and starts again
//! from the front. Meeting a *return* event means an operation that must
//! already have taken effect has not, so the search backtracks: it undoes the
//! most recent choice and tries the next candidate after it. Operations with
//! unknown outcomes have no return event, so they never force a backtrack and
//! may stay unlinearized forever ("never applied"). The search succeeds once
//! every operation with a known outcome is linearized.
//!
//! Memoisation makes it practical: the pair (set of linearized operations as a
//! bitset, register state) fully determines the rest of the search, so a pair
//! already explored is never explored again. Values are interned to small
//! integers per key so the state is cheap to hash.
//!
//! Before searching, operations with unknown outcomes are rewritten into
//! equivalent cheaper forms (see `settle_unknowns`): one whose unique value
//! was read must have taken effect before that read returned, so it gets that
//! return time; one whose effect nobody after its call could depend on is
//! left out. Without this, every timed-out write stays a candidate until the
//! end of the history and the memo table explodes.
//!
//! The problem is NP-complete in general, so the search is bounded: every
//! key gets a budget of search steps and a key that exhausts it yields
//! [`CheckResult::Unknown`] instead of hanging. Memory grows with the number
//! of memoised states, each holding one bit per operation on the key.
//!
//! When a key is not linearizable, the [`Violation`] describes the deepest
//! point the search reached: the longest linearizable prefix it found, the
//! register's value there, and the operation that had to take effect next
//! but could not, together with the operations concurrent with it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// A register's name: a key in the store.
pub type Key = Vec<u8>;

/// A register's value.
pub type Value = Vec<u8>;

/// Identifies the client (thread, task, connection) that issued an operation.
/// Used only in explanations: the checker relies on timestamps, not on client
/// order.
pub type ClientId = u64;

/// Identifies an operation within a [`History`] (and the [`Recorder`] that
/// produced it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a client asked the store to do to one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read the key; returns [`Outcome::Read`].
    Read,
    /// Set the key to a value; returns [`Outcome::Done`].
    Write(Value),
    /// Set the key to `new` iff it currently holds `expected` (`None`: iff it
    /// is absent); returns [`Outcome::Cas`].
    Cas {
        /// The value the key must hold for the swap; `None` means "absent".
        expected: Option<Value>,
        /// The value written when the swap happens.
        new: Value,
    },
    /// Remove the key (a no-op if absent); returns [`Outcome::Done`].
    Delete,
}

/// What the store answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The answer to [`Op::Read`]: the value, or `None` if absent.
    Read(Option<Value>),
    /// The acknowledgement of [`Op::Write`] or [`Op::Delete`].
    Done,
    /// The answer to [`Op::Cas`]: whether the swap happened.
    Cas(bool),
}

impl Outcome {
    /// Whether this outcome is a possible answer to `op`.
    pub fn answers(&self, op: &Op) -> bool {
        matches!(
            (op, self),
            (Op::Read, Outcome::Read(_))
                | (Op::Write(_) | Op::Delete, Outcome::Done)
                | (Op::Cas { .. }, Outcome::Cas(_))
        )
    }
}

/// The return of an operation whose outcome the client learnt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Returned {
    /// When the answer arrived (same clock as [`Operation::call`]).
    pub at: u64,
    /// The answer.
    pub outcome: Outcome,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Who issued it.
    pub client: ClientId,
    /// The register it acted on.
    pub key: Key,
    /// What was asked.
    pub op: Op,
    /// When it was called: a monotonic timestamp taken before the request was
    /// sent (nanoseconds, or any unit shared by the whole history).
    pub call: u64,
    /// When and what it returned; `None` when the outcome is unknown, which
    /// means it may have taken effect at any time after `call`, or never.
    pub ret: Option<Returned>,
}

impl Operation {
    /// An operation whose answer the client received.
    pub fn returned(
        client: ClientId,
        key: impl Into<Key>,
        op: Op,
        call: u64,
        at: u64,
        outcome: Outcome,
    ) -> Self {
        Operation {
            client,
            key: key.into(),
            op,
            call,
            ret: Some(Returned { at, outcome }),
        }
    }

    /// An operation whose outcome is unknown (timed out, connection lost).
    pub fn unknown(client: ClientId, key: impl Into<Key>, op: Op, call: u64) -> Self {
        Operation {
            client,
            key: key.into(),
            op,
            call,
            ret: None,
        }
    }

    fn validate(&self) {
        if let Some(ret) = &self.ret {
            assert!(
                ret.at >= self.call,
                "operation returned at {} before its call at {}: {self:?}",
                ret.at,
                self.call
            );
            assert!(
                ret.outcome.answers(&self.op),
                "outcome {:?} does not answer {:?}",
                ret.outcome,
                self.op
            );
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} ", self.client)?;
        match &self.op {
            Op::Read => write!(f, "read")?,
            Op::Write(v) => write!(f, "write {}", show(v))?,
            Op::Cas { expected, new } => {
                write!(f, "cas {} -> {}", show_opt(expected.as_deref()), show(new))?
            }
            Op::Delete => write!(f, "delete")?,
        }
        match &self.ret {
            None => write!(f, " [{}, ?] -> unknown", self.call),
            Some(ret) => {
                write!(f, " [{}, {}] -> ", self.call, ret.at)?;
                match &ret.outcome {
                    Outcome::Read(v) => write!(f, "{}", show_opt(v.as_deref())),
                    Outcome::Done => write!(f, "ok"),
                    Outcome::Cas(true) => write!(f, "swapped"),
                    Outcome::Cas(false) => write!(f, "not swapped"),
                }
            }
        }
    }
}

/// Renders a value for explanations: quoted text when printable, else hex.
fn show(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

fn show_opt(v: Option<&[u8]>) -> String {
    v.map_or_else(|| "absent".to_owned(), show)
}

/// A recorded history: operations with their ids, in the order they were
/// added.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<(OpId, Operation)>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// Adds an operation and returns its id (ids count up from 0).
    ///
    /// # Panics
    ///
    /// If the operation returned before it was called, or its outcome does
    /// not answer its kind of operation (a read answered with
    /// [`Outcome::Cas`], say): both are bugs in the recording, not in the
    /// system under test.
    pub fn push(&mut self, op: Operation) -> OpId {
        op.validate();
        let id = OpId(self.ops.last().map_or(0, |(id, _)| id.0 + 1));
        self.ops.push((id, op));
        id
    }

    /// The operation with this id, if it is in the history.
    pub fn get(&self, id: OpId) -> Option<&Operation> {
        self.ops
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|at| &self.ops[at].1)
    }

    /// The operations with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (OpId, &Operation)> {
        self.ops.iter().map(|(id, op)| (*id, op))
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

enum SlotState {
    Pending,
    Returned(Returned),
    Unknown,
    Dropped,
}

struct Slot {
    client: ClientId,
    key: Key,
    op: Op,
    call: u64,
    state: SlotState,
}

/// Records a history from many concurrent clients. `Send + Sync`: share it
/// behind an `Arc`.
///
/// Timestamps are nanoseconds since the recorder was created, from a
/// monotonic clock. Call [`Recorder::invoke`] *before* sending a request and
/// [`Recorder::complete`] *after* its answer arrives, so the recorded
/// interval contains the real one.
pub struct Recorder {
    epoch: Instant,
    slots: Mutex<Vec<Slot>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder with no operations; its clock starts now.
    pub fn new() -> Self {
        Recorder {
            epoch: Instant::now(),
            slots: Mutex::new(Vec::new()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the call of an operation, timestamped now.
    pub fn invoke(&self, client: ClientId, key: impl Into<Key>, op: Op) -> OpId {
        let key = key.into();
        let call = self.now();
        let mut slots = self.lock();
        slots.push(Slot {
            client,
            key,
            op,
            call,
            state: SlotState::Pending,
        });
        OpId(slots.len() - 1)
    }

    /// Records the answer to operation `id`, timestamped now.
    ///
    /// # Panics
    ///
    /// If `id` is unknown or already finished, or `outcome` does not answer
    /// the operation's kind.
    pub fn complete(&self, id: OpId, outcome: Outcome) {
        let at = self.now();
        self.finish(id, SlotState::Returned(Returned { at, outcome }));
    }

    /// Records that operation `id` timed out or lost its connection: it may
    /// or may not take effect. A read in that state tells nothing and is
    /// dropped.
    ///
    /// # Panics
    ///
    /// If `id` is unknown or already finished.
    pub fn timeout(&self, id: OpId) {
        self.finish(id, SlotState::Unknown);
    }

    /// Records that operation `id` failed *and certainly did not take effect*
    /// (rejected before it was proposed, say). It is dropped from the
    /// history. When in doubt, use [`Recorder::timeout`]: dropping a write
    /// that did take effect makes the checker report a false violation.
    ///
    /// # Panics
    ///
    /// If `id` is unknown or already finished.
    pub fn fail(&self, id: OpId) {
        self.finish(id, SlotState::Dropped);
    }

    fn finish(&self, id: OpId, state: SlotState) {
        let mut slots = self.lock();
        let problem = match slots.get_mut(id.0) {
            None => Some(format!("no operation {id}")),
            Some(slot) if !matches!(slot.state, SlotState::Pending) => {
                Some(format!("operation {id} finished twice"))
            }
            Some(slot) => match state {
                SlotState::Returned(ret) if !ret.outcome.answers(&slot.op) => Some(format!(
                    "outcome {:?} does not answer {:?} ({id})",
                    ret.outcome, slot.op
                )),
                SlotState::Unknown if slot.op == Op::Read => {
                    slot.state = SlotState::Dropped;
                    None
                }
                state => {
                    slot.state = state;
                    None
                }
            },
        };
        drop(slots);
        if let Some(problem) = problem {
            panic!("{problem}");
        }
    }

    /// A snapshot of the history so far. Operations still pending count as
    /// having unknown outcomes (pending reads are left out).
    pub fn history(&self) -> History {
        let slots = self.lock();
        let ops = slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let ret = match &slot.state {
                    SlotState::Dropped => return None,
                    SlotState::Pending if slot.op == Op::Read => return None,
                    SlotState::Pending | SlotState::Unknown => None,
                    SlotState::Returned(ret) => Some(ret.clone()),
                };
                let op = Operation {
                    client: slot.client,
                    key: slot.key.clone(),
                    op: slot.op.clone(),
                    call: slot.call,
                    ret,
                };
                Some((OpId(i), op))
            })
            .collect();
        History { ops }
    }
}

/// The default search budget per key used by [`check`].
pub const DEFAULT_STEP_BUDGET: u64 = 2_000_000;

/// The verdict on a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// Every key's sub-history is linearizable.
    Ok,
    /// Some key's sub-history is not linearizable (the first such key, in key
    /// order).
    Violation(Violation),
    /// No violation was found, but the search for this key ran out of budget
    /// before deciding.
    Unknown {
        /// The key whose search was cut short.
        key: Key,
        /// The steps spent on it.
        steps: u64,
    },
}

impl CheckResult {
    /// Whether the history was proven linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }

    /// Whether the history was proven not linearizable.
    pub fn is_violation(&self) -> bool {
        matches!(self, CheckResult::Violation(_))
    }
}

/// Evidence that one key's sub-history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The register.
    pub key: Key,
    /// A human-readable account of where the search got stuck.
    pub explanation: String,
    /// The operations the explanation mentions: the one that could not take
    /// effect, the operations concurrent with it, and the tail of the longest
    /// linearizable prefix.
    pub ops: Vec<OpId>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explanation)
    }
}

/// Checks `history` with the [`DEFAULT_STEP_BUDGET`] per key.
pub fn check(history: &History) -> CheckResult {
    check_with_budget(history, DEFAULT_STEP_BUDGET)
}

/// Checks `history`, spending at most `max_steps_per_key` search steps on
/// each key. Keys are checked in order; the first violation wins over any
/// `Unknown`.
pub fn check_with_budget(history: &History, max_steps_per_key: u64) -> CheckResult {
    let mut by_key: BTreeMap<&[u8], Vec<(OpId, &Operation)>> = BTreeMap::new();
    for (id, op) in history.iter() {
        by_key.entry(&op.key).or_default().push((id, op));
    }
    let mut unknown = None;
    for (key, ops) in by_key {
        match check_key(key, &ops, max_steps_per_key) {
            KeyResult::Ok => {}
            KeyResult::Violation(v) => return CheckResult::Violation(v),
            KeyResult::Unknown(steps) => {
                unknown.get_or_insert(CheckResult::Unknown {
                    key: key.to_vec(),
                    steps,
                });
            }
        }
    }
    unknown.unwrap_or(CheckResult::Ok)
}

/// A register state: absent, or an interned value.
type State = Option<u32>;

/// An operation in interned form: what it needs in order to be stepped.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// A read that returned this.
    Read(State),
    /// A write (`Some`) or delete (`None`), acknowledged or not.
    Set(State),
    /// A compare-and-swap; `swapped` is `None` when the outcome is unknown.
    Cas {
        expected: State,
        new: u32,
        swapped: Option<bool>,
    },
}

impl Step {
    /// The state after this operation takes effect in `state`, or `None` if
    /// its recorded result is impossible there.
    fn apply(self, state: State) -> Option<State> {
        match self {
            Step::Read(seen) => (seen == state).then_some(state),
            Step::Set(to) => Some(to),
            Step::Cas {
                expected,
                new,
                swapped,
            } => {
                let matches = state == expected;
                match swapped {
                    Some(s) if s != matches => None,
                    _ if matches => Some(Some(new)),
                    _ => Some(state),
                }
            }
        }
    }
}

/// One operation of a key's sub-history, in the search's terms.
struct KeyOp<'a> {
    id: OpId,
    op: &'a Operation,
    step: Step,
    /// The return time the search uses: the recorded one, or one the
    /// pre-pass derived for an operation with an unknown outcome.
    ret: Option<u64>,
    completed: bool,
    call_event: usize,
    return_event: Option<usize>,
}

struct Event {
    op: usize,
    is_return: bool,
}

enum KeyResult {
    Ok,
    Violation(Violation),
    Unknown(u64),
}

const NIL: usize = usize::MAX;

/// The deepest point the search reached before a forced backtrack.
struct Deepest {
    prefix: Vec<usize>,
    state: State,
    blocked: usize,
    concurrent: Vec<usize>,
}

/// The event list: a doubly linked list over event indices, whose head is a
/// sentinel at index `events.len()`.
struct EventList {
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
}

impl EventList {
    fn new(len: usize) -> Self {
        let head = len;
        let next = (0..=len)
            .map(|i| {
                if i == head {
                    if len == 0 { NIL } else { 0 }
                } else if i + 1 < len {
                    i + 1
                } else {
                    NIL
                }
            })
            .collect();
        let prev = (0..=len)
            .map(|i| if i == 0 || i == head { head } else { i - 1 })
            .collect();
        EventList { next, prev, head }
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    /// Undoes `unlink(e)`; unlinks must be undone in reverse order.
    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }
}

/// Rewrites operations with unknown outcomes into equivalent, cheaper forms
/// before the search. Each unknown operation `u` that writes state `s` (a
/// write or CAS: `Some(new)`; a delete: `None`) is treated as follows:
///
/// - **Settled**: if `s` is a value that only `u` ever writes and some read
///   returned it (or some CAS succeeded expecting it), `u` certainly took
///   effect before the earliest such operation returned. It gets that return
///   time (a CAS also gets "swapped"), so the search must place it early.
/// - **Dropped**: if no operation that can take effect after `u`'s call
///   could be helped by the register holding `s` — no read returned `s`, no
///   CAS expected `s`, and no CAS *failed* expecting something else — then any
///   linearization applying `u` stays valid without it (the states between
///   `u` and the next write are observed by nobody who needs `s`; an unknown
///   CAS there that now would swap is simply taken as never applied). So `u`
///   is left out.
///
/// Both rewrites keep the answer exact; they remove the main source of
/// blow-up, unknown writes that stay candidates for the whole history.
fn settle_unknowns(kops: &mut Vec<KeyOp<'_>>) {
    let mut writers: HashMap<u32, usize> = HashMap::new();
    for k in kops.iter() {
        match k.step {
            Step::Set(Some(v)) | Step::Cas { new: v, .. } => *writers.entry(v).or_default() += 1,
            _ => {}
        }
    }
    let mut dropped = vec![false; kops.len()];
    for u in 0..kops.len() {
        if kops[u].ret.is_some() {
            continue;
        }
        let s = match kops[u].step {
            Step::Set(s) => s,
            Step::Cas { new, .. } => Some(new),
            Step::Read(_) => continue,
        };
        let call = kops[u].op.call;

        if let Some(v) = s.filter(|v| writers.get(v) == Some(&1)) {
            let required_by = kops
                .iter()
                .filter(|k| match k.step {
                    Step::Read(r) => r == Some(v),
                    Step::Cas {
                        expected, swapped, ..
                    } => expected == Some(v) && swapped == Some(true),
                    Step::Set(_) => false,
                })
                .filter_map(|k| k.ret)
                .min();
            if let Some(by) = required_by {
                let k = &mut kops[u];
                k.ret = Some(by.max(call));
                if let Step::Cas { swapped, .. } = &mut k.step {
                    *swapped = Some(true);
                }
                continue;
            }
        }

        let helped = kops.iter().enumerate().any(|(i, k)| {
            i != u
                && k.op.ret.as_ref().is_none_or(|r| r.at >= call)
                && match k.step {
                    Step::Read(r) => r == s,
                    Step::Cas {
                        expected, swapped, ..
                    } => expected == s || swapped == Some(false),
                    Step::Set(_) => false,
                }
        });
        dropped[u] = !helped;
    }
    let mut i = 0;
    kops.retain(|_| {
        i += 1;
        !dropped[i - 1]
    });
}

fn intern<'a>(interned: &mut HashMap<&'a [u8], u32>, v: &'a [u8]) -> u32 {
    let next = u32::try_from(interned.len()).expect("fewer than 2^32 distinct values");
    *interned.entry(v).or_insert(next)
}

fn check_key(key: &[u8], ops: &[(OpId, &Operation)], budget: u64) -> KeyResult {
    // Intern values so a state is a small integer.
    let mut interned: HashMap<&[u8], u32> = HashMap::new();
    let mut kops: Vec<KeyOp<'_>> = Vec::with_capacity(ops.len());
    for &(id, op) in ops {
        let outcome = op.ret.as_ref().map(|r| &r.outcome);
        let step = match (&op.op, outcome) {
            // A read with an unknown result says nothing.
            (Op::Read, None) => continue,
            (Op::Read, Some(Outcome::Read(v))) => {
                Step::Read(v.as_deref().map(|v| intern(&mut interned, v)))
            }
            (Op::Write(v), _) => Step::Set(Some(intern(&mut interned, v))),
            (Op::Delete, _) => Step::Set(None),
            (Op::Cas { expected, new }, o) => Step::Cas {
                expected: expected.as_deref().map(|v| intern(&mut interned, v)),
                new: intern(&mut interned, new),
                swapped: match o {
                    Some(Outcome::Cas(s)) => Some(*s),
                    _ => None,
                },
            },
            (op, outcome) => unreachable!("validated history: {op:?} answered by {outcome:?}"),
        };
        kops.push(KeyOp {
            id,
            op,
            step,
            ret: op.ret.as_ref().map(|r| r.at),
            completed: false,
            call_event: NIL,
            return_event: None,
        });
    }

    settle_unknowns(&mut kops);
    for k in &mut kops {
        k.completed = k.ret.is_some();
    }

    // Events sorted by time; at equal times calls come first, so operations
    // that touch at an instant count as concurrent.
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(kops.len() * 2);
    for (i, k) in kops.iter().enumerate() {
        order.push((k.op.call, false, i));
        if let Some(r) = k.ret {
            order.push((r, true, i));
        }
    }
    order.sort_unstable();
    let events: Vec<Event> = order
        .iter()
        .enumerate()
        .map(|(e, &(_, is_return, op))| {
            if is_return {
                kops[op].return_event = Some(e);
            } else {
                kops[op].call_event = e;
            }
            Event { op, is_return }
        })
        .collect();

    let mut list = EventList::new(events.len());
    let words = kops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut remaining = kops.iter().filter(|k| k.completed).count();
    let mut deepest: Option<Deepest> = None;
    let mut entry = list.first();
    let mut steps = 0u64;

    loop {
        if remaining == 0 {
            return KeyResult::Ok;
        }
        steps += 1;
        if steps > budget {
            return KeyResult::Unknown(steps - 1);
        }
        let forced_backtrack = entry == NIL || events[entry].is_return;
        if !forced_backtrack {
            let i = events[entry].op;
            if let Some(after) = kops[i].step.apply(state) {
                linearized[i / 64] |= 1 << (i % 64);
                if seen.insert((linearized.clone(), after)) {
                    stack.push((i, state));
                    state = after;
                    list.unlink(kops[i].call_event);
                    if let Some(r) = kops[i].return_event {
                        list.unlink(r);
                    }
                    if kops[i].completed {
                        remaining -= 1;
                    }
                    entry = list.first();
                    continue;
                }
                linearized[i / 64] &= !(1 << (i % 64));
            }
            entry = list.next[entry];
            continue;
        }

        // An operation must have taken effect by now and has not: undo the
        // latest choice and try the next candidate after it.
        if entry != NIL
            && deepest
                .as_ref()
                .is_none_or(|d| stack.len() > d.prefix.len())
        {
            let blocked = events[entry].op;
            let mut concurrent = Vec::new();
            let mut e = list.first();
            while e != entry && e != NIL {
                if events[e].op != blocked {
                    concurrent.push(events[e].op);
                }
                e = list.next[e];
            }
            deepest = Some(Deepest {
                prefix: stack.iter().map(|&(i, _)| i).collect(),
                state,
                blocked,
                concurrent,
            });
        }
        let Some((i, before)) = stack.pop() else {
            let deepest = deepest.expect("the search met a return event before giving up");
            return KeyResult::Violation(explain(key, &kops, &interned, deepest));
        };
        state = before;
        linearized[i / 64] &= !(1 << (i % 64));
        if let Some(r) = kops[i].return_event {
            list.relink(r);
        }
        list.relink(kops[i].call_event);
        if kops[i].completed {
            remaining += 1;
        }
        entry = list.next[kops[i].call_event];
    }
}

fn explain(
    key: &[u8],
    kops: &[KeyOp<'_>],
    interned: &HashMap<&[u8], u32>,
    deepest: Deepest,
) -> Violation {
    use std::fmt::Write as _;

    let value_of = |s: State| -> String {
        match s {
            None => "absent".to_owned(),
            Some(n) => interned
                .iter()
                .find(|&(_, &i)| i == n)
                .map_or_else(|| format!("value {n}"), |(v, _)| show(v)),
        }
    };
    let describe = |i: usize| format!("{} {}", kops[i].id, kops[i].op);
    let blocked = deepest.blocked;

    let mut text = format!("key {} is not linearizable.", show(key));
    let n = deepest.prefix.len();
    if n == 0 {
        let _ = write!(text, " No operation can take effect first;");
    } else {
        let _ = write!(
            text,
            " The longest linearizable prefix found has {n} operation(s), ending with"
        );
        for &i in deepest.prefix.iter().rev().take(3).rev() {
            let _ = write!(text, "\n    {}", describe(i));
        }
        let _ = write!(
            text,
            "\n  after which the register holds {};",
            value_of(deepest.state)
        );
    }
    let _ = write!(
        text,
        " then\n    {}\n  must take effect before it returns, but its result is impossible there",
        describe(blocked)
    );
    if deepest.concurrent.is_empty() {
        text.push('.');
    } else {
        let _ = write!(
            text,
            ", and none of the {} operation(s) concurrent with it can come first to make it possible:",
            deepest.concurrent.len()
        );
        for &i in deepest.concurrent.iter().take(10) {
            let _ = write!(text, "\n    {}", describe(i));
        }
        if deepest.concurrent.len() > 10 {
            let _ = write!(text, "\n    ...");
        }
    }
    if let Some(Outcome::Read(Some(v))) = kops[blocked].op.ret.as_ref().map(|r| &r.outcome) {
        let written = kops.iter().any(|k| match &k.op.op {
            Op::Write(w) | Op::Cas { new: w, .. } => w == v,
            _ => false,
        });
        if !written {
            let _ = write!(
                text,
                "\n  Note: no operation on this key ever wrote {}.",
                show(v)
            );
        }
    }

    let mut ops: Vec<OpId> = deepest
        .prefix
        .iter()
        .rev()
        .take(3)
        .chain(std::iter::once(&blocked))
        .chain(deepest.concurrent.iter().take(10))
        .map(|&i| kops[i].id)
        .collect();
    ops.sort_unstable();
    ops.dedup();
    Violation {
        key: key.to_vec(),
        explanation: text,
        ops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const K: &[u8] = b"k";

    fn v(s: &str) -> Value {
        s.as_bytes().to_vec()
    }

    /// A tiny builder: ops on key `K` with explicit intervals.
    #[derive(Default)]
    struct H(History);

    impl H {
        fn write(&mut self, c: ClientId, val: &str, call: u64, ret: u64) -> OpId {
            self.0.push(Operation::returned(
                c,
                K,
                Op::Write(v(val)),
                call,
                ret,
                Outcome::Done,
            ))
        }
        fn write_unknown(&mut self, c: ClientId, val: &str, call: u64) -> OpId {
            self.0
                .push(Operation::unknown(c, K, Op::Write(v(val)), call))
        }
        fn read(&mut self, c: ClientId, seen: Option<&str>, call: u64, ret: u64) -> OpId {
            self.0.push(Operation::returned(
                c,
                K,
                Op::Read,
                call,
                ret,
                Outcome::Read(seen.map(v)),
            ))
        }
        fn cas(
            &mut self,
            c: ClientId,
            expected: Option<&str>,
            new: &str,
            swapped: bool,
            (call, ret): (u64, u64),
        ) -> OpId {
            self.0.push(Operation::returned(
                c,
                K,
                Op::Cas {
                    expected: expected.map(v),
                    new: v(new),
                },
                call,
                ret,
                Outcome::Cas(swapped),
            ))
        }
        fn delete(&mut self, c: ClientId, call: u64, ret: u64) -> OpId {
            self.0.push(Operation::returned(
                c,
                K,
                Op::Delete,
                call,
                ret,
                Outcome::Done,
            ))
        }
        fn check(&self) -> CheckResult {
            check(&self.0)
        }
    }

    fn violation(r: CheckResult) -> Violation {
        match r {
            CheckResult::Violation(v) => v,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert!(check(&History::new()).is_ok());
    }

    #[test]
    fn accepts_sequential_history() {
        let mut h = H::default();
        h.read(1, None, 0, 1);
        h.write(1, "1", 2, 3);
        h.read(2, Some("1"), 4, 5);
        h.cas(2, Some("1"), "2", true, (6, 7));
        h.cas(1, Some("1"), "3", false, (8, 9));
        h.read(1, Some("2"), 10, 11);
        h.delete(2, 12, 13);
        h.read(2, None, 14, 15);
        h.cas(1, None, "4", true, (16, 17));
        h.cas(2, None, "5", false, (18, 19));
        h.read(1, Some("4"), 20, 21);
        assert_eq!(h.check(), CheckResult::Ok);
    }

    #[test]
    fn accepts_concurrent_history_with_a_valid_order() {
        let mut h = H::default();
        // The write of "1" is slow to return but took effect early.
        h.write(1, "1", 0, 100);
        h.read(2, Some("1"), 10, 20);
        h.write(3, "2", 30, 40);
        h.read(2, Some("2"), 50, 60);
        // Two overlapping reads of an overlapping write may disagree, as
        // long as the old value is seen first.
        h.write(1, "3", 110, 200);
        h.read(2, Some("2"), 120, 130);
        h.read(3, Some("3"), 125, 140);
        h.read(2, Some("3"), 150, 160);
        assert_eq!(h.check(), CheckResult::Ok);
    }

    #[test]
    fn equal_timestamps_count_as_concurrent() {
        let mut h = H::default();
        h.write(1, "1", 0, 10);
        h.read(2, None, 10, 20);
        assert_eq!(h.check(), CheckResult::Ok);
    }

    #[test]
    fn rejects_stale_read_after_completed_write() {
        let mut h = H::default();
        h.write(1, "0", 0, 5);
        let w = h.write(1, "1", 10, 20);
        let r = h.read(2, Some("0"), 30, 40);
        let v = violation(h.check());
        assert_eq!(v.key, K);
        assert!(v.ops.contains(&r), "{v:?}");
        assert!(v.ops.contains(&w), "{v:?}");
        assert!(v.explanation.contains("read"), "{}", v.explanation);
    }

    #[test]
    fn rejects_two_successful_cas_from_the_same_value() {
        let mut h = H::default();
        h.write(1, "0", 0, 5);
        h.cas(1, Some("0"), "a", true, (10, 30));
        h.cas(2, Some("0"), "b", true, (15, 35));
        violation(h.check());
    }

    #[test]
    fn rejects_two_successful_creates() {
        let mut h = H::default();
        h.cas(1, None, "a", true, (10, 30));
        h.cas(2, None, "b", true, (15, 35));
        violation(h.check());
    }

    #[test]
    fn rejects_stale_read_after_completed_cas() {
        let mut h = H::default();
        h.write(1, "0", 0, 5);
        h.cas(1, Some("0"), "1", true, (10, 20));
        h.read(2, Some("0"), 25, 30);
        violation(h.check());
    }

    #[test]
    fn rejects_failed_cas_that_should_have_swapped() {
        let mut h = H::default();
        h.write(1, "0", 0, 5);
        h.cas(1, Some("0"), "1", false, (10, 20));
        violation(h.check());
    }

    #[test]
    fn rejects_read_of_a_value_nobody_wrote() {
        let mut h = H::default();
        h.write(1, "1", 0, 5);
        h.read(2, Some("ghost"), 2, 8);
        let v = violation(h.check());
        assert!(v.explanation.contains("ever wrote"), "{}", v.explanation);
    }

    #[test]
    fn rejects_value_read_before_its_write_was_called() {
        let mut h = H::default();
        h.read(2, Some("1"), 0, 5);
        h.write(1, "1", 10, 20);
        violation(h.check());
    }

    #[test]
    fn rejects_read_after_delete() {
        let mut h = H::default();
        h.write(1, "1", 0, 5);
        h.delete(1, 10, 15);
        h.read(2, Some("1"), 20, 25);
        violation(h.check());
    }

    #[test]
    fn timed_out_write_that_later_becomes_visible_is_accepted() {
        let mut h = H::default();
        h.write(1, "0", 0, 5);
        h.write_unknown(1, "1", 10);
        h.read(2, Some("0"), 20, 30);
        h.read(2, Some("0"), 40, 50);
        h.read(3, Some("1"), 1_000, 1_010);
        assert_eq!(h.check(), CheckResult::Ok);
    }

    #[test]
    fn timed_out_write_never_visible_is_accepted() {
        let mut h = H::default();
        h.write(1, "0", 0, 5);
        h.write_unknown(1, "1", 10);
        h.read(2, Some("0"), 20, 30);
        h.write(3, "2", 40, 50);
        h.read(2, Some("2"), 60, 70);
        assert_eq!(h.check(), CheckResult::Ok);
    }

    #[test]
    fn timed_out_write_takes_effect_at_most_once() {
        let mut h = H::default();
        h.write_unknown(1, "x", 0);
        h.write(2, "y", 10, 20);
        // "x" may land after "y" ...
        h.read(3, Some("x"), 30, 40);
        assert_eq!(h.check(), CheckResult::Ok);
        // ... but then "y" cannot come back.
        h.read(3, Some("y"), 50, 60);
        violation(h.check());
    }

    #[test]
    fn timed_out_write_cannot_take_effect_before_its_call() {
        let mut h = H::default();
        h.read(2, Some("1"), 0, 5);
        h.write_unknown(1, "1", 10);
        violation(h.check());
    }

    #[test]
    fn timed_out_cas_may_or_may_not_have_swapped() {
        let cas = |h: &mut History| {
            h.push(Operation::unknown(
                1,
                K,
                Op::Cas {
                    expected: Some(v("0")),
                    new: v("1"),
                },
                10,
            ));
        };
        for later in ["0", "1"] {
            let mut h = H::default();
            h.write(1, "0", 0, 5);
            cas(&mut h.0);
            h.read(2, Some(later), 20, 30);
            assert_eq!(h.check(), CheckResult::Ok, "later read {later}");
        }
        // It could only have swapped if the register held "0".
        let mut h = H::default();
        h.write(1, "2", 0, 5);
        cas(&mut h.0);
        h.read(2, Some("1"), 20, 30);
        violation(h.check());
    }

    #[test]
    fn keys_are_independent() {
        let mut h = History::new();
        h.push(Operation::returned(
            1,
            b"a".to_vec(),
            Op::Write(v("1")),
            0,
            10,
            Outcome::Done,
        ));
        h.push(Operation::returned(
            2,
            b"b".to_vec(),
            Op::Read,
            20,
            30,
            Outcome::Read(None),
        ));
        h.push(Operation::returned(
            2,
            b"a".to_vec(),
            Op::Read,
            20,
            30,
            Outcome::Read(Some(v("1"))),
        ));
        assert_eq!(check(&h), CheckResult::Ok);
        h.push(Operation::returned(
            3,
            b"b".to_vec(),
            Op::Read,
            40,
            50,
            Outcome::Read(Some(v("1"))),
        ));
        assert_eq!(violation(check(&h)).key, b"b");
    }

    #[test]
    fn budget_exhaustion_yields_unknown_not_a_hang() {
        // Many concurrent writes and a final impossible read: refuting it
        // means exploring every subset of the writes.
        let mut h = H::default();
        for i in 0..24 {
            h.write(i, &format!("w{i}"), 0, 1_000);
        }
        h.read(99, Some("nobody"), 2_000, 2_001);
        assert!(matches!(
            check_with_budget(&h.0, 10_000),
            CheckResult::Unknown { ref key, steps: 10_000 } if key == K
        ));
    }

    #[test]
    fn small_budget_still_decides_easy_histories() {
        let mut h = H::default();
        for i in 0..50 {
            h.write(1, &format!("{i}"), i * 10, i * 10 + 5);
            h.read(2, Some(&format!("{i}")), i * 10 + 6, i * 10 + 8);
        }
        assert_eq!(check_with_budget(&h.0, 1_000), CheckResult::Ok);
    }

    #[test]
    fn recorder_tracks_outcomes_timeouts_and_failures() {
        let rec = std::sync::Arc::new(Recorder::new());
        let threads: Vec<_> = (0..4u64)
            .map(|c| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let key = format!("key{c}").into_bytes();
                    let w = rec.invoke(c, key.clone(), Op::Write(v("x")));
                    rec.complete(w, Outcome::Done);
                    let r = rec.invoke(c, key.clone(), Op::Read);
                    rec.complete(r, Outcome::Read(Some(v("x"))));
                    let lost = rec.invoke(c, key.clone(), Op::Read);
                    rec.timeout(lost);
                    let maybe = rec.invoke(c, key.clone(), Op::Write(v("y")));
                    rec.timeout(maybe);
                    let rejected = rec.invoke(c, key.clone(), Op::Write(v("z")));
                    rec.fail(rejected);
                    let _pending = rec.invoke(c, key, Op::Delete);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let h = rec.history();
        // Per client: write, read, timed-out write, pending delete.
        assert_eq!(h.len(), 16);
        assert_eq!(h.iter().filter(|(_, o)| o.ret.is_none()).count(), 8);
        assert!(h.iter().all(|(_, o)| o.op != Op::Write(v("z"))));
        for (id, op) in h.iter() {
            assert_eq!(h.get(id), Some(op));
            if let Some(r) = &op.ret {
                assert!(r.at >= op.call);
            }
        }
        assert_eq!(check(&h), CheckResult::Ok);
    }

    #[test]
    #[should_panic(expected = "finished twice")]
    fn recorder_rejects_double_completion() {
        let rec = Recorder::new();
        let id = rec.invoke(1, K, Op::Delete);
        rec.complete(id, Outcome::Done);
        rec.timeout(id);
    }

    #[test]
    #[should_panic(expected = "does not answer")]
    fn history_rejects_mismatched_outcome() {
        History::new().push(Operation::returned(
            1,
            K,
            Op::Read,
            0,
            1,
            Outcome::Cas(true),
        ));
    }

    #[test]
    fn timed_out_write_can_explain_a_failed_cas() {
        let mut h = H::default();
        h.write(1, "x", 0, 1);
        h.write_unknown(2, "v", 2);
        // Fails only if "v" landed first.
        h.cas(3, Some("x"), "y", false, (3, 4));
        assert_eq!(h.check(), CheckResult::Ok);
    }

    #[test]
    fn timed_out_delete_can_explain_an_absent_read() {
        let mut h = H::default();
        h.write(1, "x", 0, 1);
        h.0.push(Operation::unknown(2, K, Op::Delete, 2));
        h.read(3, None, 3, 4);
        h.cas(3, None, "z", true, (5, 6));
        assert_eq!(h.check(), CheckResult::Ok);
    }

    /// The definition, by brute force: try every order in which each next
    /// operation was called before every unplaced known operation returned;
    /// operations with unknown outcomes may also never be placed.
    fn brute_force(ops: &[Operation]) -> bool {
        fn go(ops: &[Operation], placed: &mut Vec<bool>, state: Option<Value>) -> bool {
            let pending_known = (0..ops.len()).filter(|&i| !placed[i] && ops[i].ret.is_some());
            if pending_known.clone().next().is_none() {
                return true;
            }
            let deadline = pending_known
                .map(|i| ops[i].ret.as_ref().unwrap().at)
                .min()
                .unwrap();
            for i in 0..ops.len() {
                if placed[i] || ops[i].call > deadline {
                    continue;
                }
                let o = &ops[i];
                let outcome = o.ret.as_ref().map(|r| &r.outcome);
                let next = match (&o.op, outcome) {
                    (Op::Read, Some(Outcome::Read(r))) => (*r == state).then(|| state.clone()),
                    (Op::Read, _) => Some(state.clone()),
                    (Op::Write(w), _) => Some(Some(w.clone())),
                    (Op::Delete, _) => Some(None),
                    (Op::Cas { expected, new }, outcome) => {
                        let matches = *expected == state;
                        match outcome {
                            Some(Outcome::Cas(s)) if *s != matches => None,
                            _ if matches => Some(Some(new.clone())),
                            _ => Some(state.clone()),
                        }
                    }
                };
                if let Some(next) = next {
                    placed[i] = true;
                    let ok = go(ops, placed, next);
                    placed[i] = false;
                    if ok {
                        return true;
                    }
                }
            }
            false
        }
        go(ops, &mut vec![false; ops.len()], None)
    }

    #[test]
    fn agrees_with_brute_force_on_small_random_histories() {
        let values = [None, Some(v("a")), Some(v("b")), Some(v("c"))];
        let (mut accepted, mut rejected) = (0, 0);
        for seed in 0..3_000 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut h = History::new();
            for _ in 0..rng.random_range(1..=7) {
                let call = rng.random_range(0..20);
                let at = call + rng.random_range(0..10);
                let pick = |rng: &mut StdRng| values[rng.random_range(0..values.len())].clone();
                let val = pick(&mut rng).unwrap_or_else(|| v("a"));
                let (op, outcome) = match rng.random_range(0..4) {
                    0 => (Op::Read, Outcome::Read(pick(&mut rng))),
                    1 => (Op::Write(val), Outcome::Done),
                    2 => (Op::Delete, Outcome::Done),
                    _ => (
                        Op::Cas {
                            expected: pick(&mut rng),
                            new: val,
                        },
                        Outcome::Cas(rng.random_bool(0.5)),
                    ),
                };
                h.push(if op != Op::Read && rng.random_bool(0.3) {
                    Operation::unknown(1, K, op, call)
                } else {
                    Operation::returned(1, K, op, call, at, outcome)
                });
            }
            let ops: Vec<Operation> = h.iter().map(|(_, o)| o.clone()).collect();
            let expected = brute_force(&ops);
            let got = check(&h);
            assert_eq!(got.is_ok(), expected, "seed {seed}: {got:?}\n{ops:#?}");
            assert!(got.is_ok() || got.is_violation());
            if expected {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        assert!(accepted > 300 && rejected > 300, "{accepted} / {rejected}");
    }

    /// A history generated from a real sequential execution: the operations
    /// take effect at increasing instants, and each gets a random interval
    /// around its instant, so neighbours overlap. Some writes time out (and
    /// took effect), some are lost (recorded as timed out, never applied).
    fn generate(rng: &mut StdRng, n: usize) -> History {
        let keys: [&[u8]; 2] = [b"a", b"b"];
        let mut registers: HashMap<&[u8], Option<Value>> = HashMap::new();
        let mut history = History::new();
        let mut fresh = 0u32;
        for i in 0..n {
            let at = (i as u64 + 3) * 100;
            let call = at - rng.random_range(0..=250);
            let ret = at + rng.random_range(0..=250);
            let key = keys[rng.random_range(0..keys.len())];
            let client = rng.random_range(0..5);
            let current = registers.entry(key).or_default();
            fresh += 1;
            let new = format!("v{fresh}").into_bytes();
            let (op, outcome) = match rng.random_range(0..10) {
                0..=3 => (Op::Read, Outcome::Read(current.clone())),
                4..=5 => {
                    *current = Some(new.clone());
                    (Op::Write(new), Outcome::Done)
                }
                6 => {
                    *current = None;
                    (Op::Delete, Outcome::Done)
                }
                _ => {
                    let expected = if rng.random_bool(0.6) {
                        current.clone()
                    } else if rng.random_bool(0.5) {
                        None
                    } else {
                        Some(format!("v{}", rng.random_range(1..=fresh)).into_bytes())
                    };
                    let swapped = *current == expected;
                    if swapped {
                        *current = Some(new.clone());
                    }
                    (Op::Cas { expected, new }, Outcome::Cas(swapped))
                }
            };
            let op = if op != Op::Read && rng.random_bool(0.1) {
                Operation::unknown(client, key, op, call)
            } else {
                Operation::returned(client, key, op, call, ret, outcome)
            };
            history.push(op);
            if rng.random_bool(0.05) {
                // A write that timed out and never took effect.
                fresh += 1;
                let lost = Op::Write(format!("v{fresh}").into_bytes());
                history.push(Operation::unknown(client, key, lost, call));
            }
        }
        history
    }

    #[test]
    fn randomized_histories_from_sequential_executions_are_accepted() {
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let n = rng.random_range(1..80);
            let h = generate(&mut rng, n);
            let result = check(&h);
            assert_eq!(result, CheckResult::Ok, "seed {seed}: {h:#?}");
        }
    }

    #[test]
    fn randomized_histories_with_an_impossible_read_are_rejected() {
        let mut mutated = 0;
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let n = rng.random_range(1..80);
            let h = generate(&mut rng, n);
            let reads: Vec<OpId> = h
                .iter()
                .filter(|(_, o)| o.op == Op::Read && o.ret.is_some())
                .map(|(id, _)| id)
                .collect();
            if reads.is_empty() {
                continue;
            }
            let target = reads[rng.random_range(0..reads.len())];
            let mutate = |to: Option<Value>| {
                let mut m = History::new();
                for (id, o) in h.iter() {
                    let mut o = o.clone();
                    if id == target {
                        o.ret.as_mut().unwrap().outcome = Outcome::Read(to.clone());
                    }
                    m.push(o);
                }
                m
            };

            // A value no operation ever wrote.
            let ghost = mutate(Some(v("never-written")));
            let result = violation(check(&ghost));
            assert!(result.ops.contains(&target), "seed {seed}: {result:?}");
            mutated += 1;

            // A value first written by an operation called after the read
            // returned (and written by nothing else).
            let read = h.get(target).unwrap();
            let read_ret = read.ret.as_ref().unwrap().at;
            let future = h.iter().find_map(|(_, o)| match &o.op {
                Op::Write(w) | Op::Cas { new: w, .. } if o.key == read.key && o.call > read_ret => {
                    Some(w.clone())
                }
                _ => None,
            });
            if let Some(w) = future {
                violation(check(&mutate(Some(w))));
            }
        }
        assert!(mutated > 200, "only {mutated} histories had a read");
    }
}
