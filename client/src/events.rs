//! Events: the record a component leaves of what it did to an object
//! ("Scheduled pod-1 to node-a", "Created pod web-7d9f"), as Kubernetes's
//! `EventRecorder` writes them.
//!
//! [`Recorder::publish`] never blocks and never fails the caller: events go
//! through a bounded queue to one background task that writes them; when
//! the queue is full the event is dropped and counted in the log, because
//! an event is advice, not state. A repeat of the same (object, type,
//! reason, message) within [`AGGREGATION_WINDOW`] bumps `count` and
//! `lastTimestamp` of the event already written instead of creating a new
//! one, as Kubernetes's event correlator does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use capstan_proto::api::core::v1::{Event, EventSource, ObjectReference};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::kinds::Resource;
use capstan_proto::timestamp::{MicroTime, Time};
use tokio::sync::mpsc;

use crate::{Api, Client};

/// A repeat within this window updates the existing event.
pub const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);

/// Events waiting to be written; beyond this they are dropped.
const QUEUE: usize = 1024;

/// Remembered events for aggregation; the oldest half is forgotten beyond it.
const REMEMBERED: usize = 4096;

/// `Normal` or `Warning`, as Kubernetes's event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong or needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Writes events for one component (e.g. `default-scheduler`) on one host.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
}

impl Recorder {
    /// Starts the background writer. `component` is the event source
    /// (`default-scheduler`, `kubelet`, `deployment-controller`); `host`
    /// the node or instance name.
    pub fn new(client: Client, component: &str, host: &str) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let source = EventSource {
            component: component.to_owned(),
            host: host.to_owned(),
        };
        tokio::spawn(write_events(client, source, rx));
        Self { tx }
    }

    /// Records `reason` and `message` about `object`.
    pub fn publish<K: Resource>(&self, object: &K, kind: EventType, reason: &str, message: &str) {
        self.publish_ref(reference(object), kind, reason, message);
    }

    /// Records an event about an object known only by reference.
    pub fn publish_ref(
        &self,
        involved: ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let now = Time::now();
        let event = Event {
            metadata: Some(ObjectMeta {
                namespace: event_namespace(&involved),
                ..Default::default()
            }),
            involved_object: Some(involved),
            reason: reason.to_owned(),
            message: message.to_owned(),
            first_timestamp: Some(now),
            last_timestamp: Some(now),
            event_time: Some(MicroTime::now()),
            count: Some(1),
            r#type: kind.as_str().to_owned(),
            ..Default::default()
        };
        if self.tx.try_send(event).is_err() {
            tracing::debug!(reason, "event queue full or closed; event dropped");
        }
    }
}

/// An [`ObjectReference`] to `object`.
pub fn reference<K: Resource>(object: &K) -> ObjectReference {
    let meta = object.metadata().cloned().unwrap_or_default();
    ObjectReference {
        kind: K::INFO.kind.to_owned(),
        api_version: K::INFO.api_version.to_owned(),
        namespace: meta.namespace,
        name: meta.name,
        uid: meta.uid,
        resource_version: meta.resource_version,
        field_path: String::new(),
    }
}

/// Events about cluster-scoped objects live in `default`, as in Kubernetes.
fn event_namespace(involved: &ObjectReference) -> String {
    if involved.namespace.is_empty() {
        "default".to_owned()
    } else {
        involved.namespace.clone()
    }
}

/// What makes two events "the same" for aggregation.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    uid: String,
    name: String,
    kind: String,
    r#type: String,
    reason: String,
    message: String,
}

struct Seen {
    name: String,
    count: i32,
    first: Option<Time>,
    at: Instant,
}

async fn write_events(client: Client, source: EventSource, mut rx: mpsc::Receiver<Event>) {
    let mut seen: HashMap<Key, Seen> = HashMap::new();
    while let Some(mut event) = rx.recv().await {
        let involved = event.involved_object.clone().unwrap_or_default();
        let namespace = event_namespace(&involved);
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        let key = Key {
            namespace: namespace.clone(),
            uid: involved.uid.clone(),
            name: involved.name.clone(),
            kind: involved.kind.clone(),
            r#type: event.r#type.clone(),
            reason: event.reason.clone(),
            message: event.message.clone(),
        };
        event.source = Some(source.clone());
        event.reporting_component = source.component.clone();
        event.reporting_instance = source.host.clone();
        if let Some(prev) = seen.get_mut(&key)
            && prev.at.elapsed() < AGGREGATION_WINDOW
        {
            let mut update = event.clone();
            let meta = update.metadata_mut();
            meta.name = prev.name.clone();
            update.count = Some(prev.count + 1);
            update.first_timestamp = prev.first;
            match api.get(&prev.name).await {
                Ok(current) => {
                    let mut current = current;
                    current.count = update.count;
                    current.last_timestamp = update.last_timestamp;
                    current.event_time = update.event_time;
                    if api.update(&current).await.is_ok() {
                        prev.count += 1;
                        prev.at = Instant::now();
                        continue;
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::debug!(error = %e, "event update failed");
                    continue;
                }
            }
        }
        let base = if involved.name.is_empty() {
            "event".to_owned()
        } else {
            involved.name.clone()
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("{base}.{nanos:x}");
        event.metadata_mut().name = name.clone();
        match api.create(&event).await {
            Ok(_) => {
                if seen.len() >= REMEMBERED {
                    let mut ages: Vec<Instant> = seen.values().map(|s| s.at).collect();
                    ages.sort();
                    let cut = ages[ages.len() / 2];
                    seen.retain(|_, s| s.at > cut);
                }
                seen.insert(
                    key,
                    Seen {
                        name,
                        count: 1,
                        first: event.first_timestamp,
                        at: Instant::now(),
                    },
                );
            }
            Err(e) => tracing::debug!(error = %e, "event create failed"),
        }
    }
}
