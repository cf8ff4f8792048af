//! Each client's locations, read once a sync: how a location or contact row finds the
//! location it belongs to (by name, any case; blank for the primary).

use crate::api::ApiClient;
use engine::error::Fatal;
use engine::write::Verdict;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Clients whose locations may be held before they are all dropped: memory stays bounded, at
/// worst a client's locations are read again.
const CACHE_LIMIT: usize = 50_000;

pub fn id_of(record: &Map<String, Value>) -> u64 {
    record.get("id").and_then(Value::as_u64).unwrap_or_default()
}

/// Whether a location is called `name` (trimmed, any case).
pub fn named(location: &Map<String, Value>, name: &str) -> bool {
    location
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
}

/// Root client id → its locations, as read (or written) this sync.
#[derive(Default)]
pub struct Locations {
    held: Mutex<HashMap<u64, Vec<Map<String, Value>>>>,
    /// Clients whose locations were read: requests spent finding.
    reads: AtomicU64,
}

impl Locations {
    /// The locations of client `root`, read once per sync.
    pub async fn of(
        &self,
        client: &ApiClient,
        root: u64,
    ) -> Result<Vec<Map<String, Value>>, Fatal> {
        if let Some(locations) = self.held.lock().unwrap().get(&root) {
            return Ok(locations.clone());
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let all = client
            .list("/client/locations", &[("parent", root.to_string())])
            .await?;
        let mine: Vec<Map<String, Value>> = all
            .into_iter()
            .filter(|l| l.get("root_id").and_then(Value::as_u64) == Some(root))
            .collect();
        let mut cache = self.held.lock().unwrap();
        if cache.len() > CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(root, mine.clone());
        Ok(mine)
    }

    /// Clients whose locations were read so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Client `root`'s location called `name`, its locations read again (one may have been
    /// created since they were read).
    pub async fn read_again(
        &self,
        client: &ApiClient,
        root: u64,
        name: &str,
    ) -> Result<Option<Map<String, Value>>, Fatal> {
        self.forget(root);
        let locations = self.of(client, root).await?;
        Ok(locations.into_iter().find(|l| named(l, name)))
    }

    /// Reads client `root`'s locations again on the next use.
    pub fn forget(&self, root: u64) {
        self.held.lock().unwrap().remove(&root);
    }

    /// A location as written: it replaces the one of its id; a new primary demotes the others.
    pub fn learn(&self, root: u64, location: Map<String, Value>) {
        let mut cache = self.held.lock().unwrap();
        if let Some(known) = cache.get_mut(&root) {
            known.retain(|l| id_of(l) != id_of(&location));
            if location.get("is_primary") == Some(&Value::Bool(true)) {
                for other in known.iter_mut() {
                    other.insert("is_primary".into(), Value::Bool(false));
                }
            }
            known.push(location);
        }
    }

    /// The location a contact row names under `root`: by name, or the primary when blank
    /// (the first one where none is marked).
    pub async fn find(
        &self,
        client: &ApiClient,
        root: u64,
        name: Option<&str>,
    ) -> Result<Result<u64, Verdict>, Fatal> {
        let locations = self.of(client, root).await?;
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let primary = |l: &&Map<String, Value>| l.get("is_primary") == Some(&Value::Bool(true));
        let matches: Vec<&Map<String, Value>> = match name {
            None if locations.iter().any(|l| primary(&l)) => {
                locations.iter().filter(primary).collect()
            }
            None => locations
                .iter()
                .min_by_key(|l| id_of(l))
                .into_iter()
                .collect(),
            Some(name) => locations.iter().filter(|l| named(l, name)).collect(),
        };
        Ok(match matches.as_slice() {
            [] => Err(Verdict::refused(match name {
                Some(name) => format!("client {root} has no location named {name:?}"),
                None => format!("client {root} has no location"),
            })),
            [one] => Ok(id_of(one)),
            several => Err(Verdict::refused(format!(
                "location name {:?} is ambiguous at client {root}: locations {:?}",
                name.unwrap_or_default(),
                several.iter().map(|l| id_of(l)).collect::<Vec<_>>()
            ))),
        })
    }
}
