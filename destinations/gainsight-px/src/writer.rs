//! Records into PX writes, one request a record (the API has no bulk): insert is a POST;
//! upsert finds the record through the engine's reconcile toolkit (a GET by key while that is
//! cheaper, the search's pages once not), then POSTs, PUTs only what differs, or sends nothing;
//! update PUTs, comparing first once the listing is held. A POST refused as a possible
//! duplicate, or one whose outcome is unknown, is checked with a GET before anything is sent
//! again, so a retried create never makes a duplicate.

use crate::api::{path_safe, ApiClient};
use crate::objects::PxObject;
use bytes::Bytes;
use engine::catalog::{Object, WriteMode};
use engine::error::Fatal;
use engine::http::{create_until_known, Creation, Reply};
use engine::reconcile::store::Store;
use engine::reconcile::{Finder, MergedContainer, Page, Reconciler, Rules, Stored};
use engine::write::backlog::Backlog;
use engine::write::prepare::Prepared;
use engine::write::{Verdict, Writer};
use reqwest::Method;
use serde_json::{Map, Value};

/// Records a search page holds: PX's largest.
const SEARCH_PAGE: usize = 1000;

pub struct PxWriter {
    client: ApiClient,
    /// Per object, set once a read of its collection answered: the route exists.
    collections_seen: [tokio::sync::OnceCell<()>; 2],
    reconciler: Reconciler<PxObject>,
}

/// Custom values merge member by member; the rest compares by value. A PUT carries the
/// record's key and its product keys whatever else it changes.
const ACCOUNT_RULES: MergedContainer = MergedContainer {
    container: PxObject::CUSTOM_CONTAINER,
    always_sent: &["id", "propertyKeys"],
};
const USER_RULES: MergedContainer = MergedContainer {
    container: PxObject::CUSTOM_CONTAINER,
    always_sent: &["identifyId", "propertyKeys"],
};

/// What a PUT found.
enum Put {
    Updated,
    NotFound {
        message: String,
    },
    /// Refused for its content: the record's verdict.
    Refused(Verdict),
}

impl Put {
    fn verdict(self) -> Result<(), Verdict> {
        match self {
            Put::Updated => Ok(()),
            Put::NotFound { message } => Err(Verdict::refused_with(404, message)),
            Put::Refused(verdict) => Err(verdict),
        }
    }
}

impl PxWriter {
    pub fn new(client: ApiClient, dry_run: bool) -> Self {
        Self {
            client,
            collections_seen: Default::default(),
            reconciler: Reconciler::new(dry_run),
        }
    }

    async fn put(&self, object: PxObject, id: &str, body: Bytes) -> Result<Put, Fatal> {
        let path = if path_safe(id) {
            ApiClient::record_path(object, id)
        } else {
            format!("/v1/{}/update", object.collection())
        };
        match self
            .client
            .send(Method::PUT, path, Some(body), false)
            .await?
        {
            Reply::Success { .. } => Ok(Put::Updated),
            Reply::Refused {
                status: 404,
                message,
            } => {
                let seen = &self.collections_seen[object.index()];
                seen.get_or_try_init(|| self.client.collection_exists(object))
                    .await?;
                Ok(Put::NotFound { message })
            }
            Reply::Refused { status, message } => {
                Ok(Put::Refused(Verdict::refused_with(status, message)))
            }
            // A PUT is idempotent: the engine retries it; Unknown comes only for creates.
            Reply::Unknown { reason, .. } => Err(Fatal::config(reason)),
        }
    }
    /// POSTs a create of `id`; one whose answer was lost is looked for before it is sent again,
    /// and one refused as a possible duplicate of an existing record updates it instead.
    async fn post(
        &self,
        object: PxObject,
        id: &str,
        body: Bytes,
    ) -> Result<Result<(), Verdict>, Fatal> {
        let send = || self.client.create(object, body.clone());
        // It may have landed: look before sending it again.
        let look =
            |_| async { Ok((self.client.exists(object, id).await? == Some(true)).then_some(())) };
        match create_until_known(send, look).await? {
            Creation::Answered(_) | Creation::Found(()) => Ok(Ok(())),
            // "Possible duplicate": another writer, or an earlier attempt, made it.
            Creation::Refused {
                status: 400,
                message,
            } => {
                if self.client.exists(object, id).await? != Some(true) {
                    return Ok(Err(Verdict::refused_with(400, message)));
                }
                self.client.notice(format!(
                    "POST /v1/{} for {object} {id:?} was refused ({message}) and the {object} exists: updating it instead",
                    object.collection()
                ));
                Ok(Err(match self.put(object, id, body).await?.verdict() {
                    Ok(()) => Verdict::Updated {
                        id: id.to_owned(),
                        fields: Vec::new(),
                    },
                    Err(verdict) => verdict,
                }))
            }
            Creation::Refused { status, message } => {
                Ok(Err(Verdict::refused_with(status, message)))
            }
        }
    }
}

/// A POST creates (looked for before it is sent again), a PUT updates what differs.
impl Store<PxObject> for PxWriter {
    fn rules(&self, object: PxObject) -> &dyn Rules {
        match object {
            PxObject::Account => &ACCOUNT_RULES,
            PxObject::User => &USER_RULES,
        }
    }

    async fn create(
        &self,
        object: PxObject,
        _: WriteMode,
        row: Map<String, Value>,
    ) -> Result<Result<Stored, Verdict>, Fatal> {
        let id = row
            .get(object.id_field())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let body = Bytes::from(serde_json::to_vec(&row).expect("JSON"));
        Ok(self.post(object, &id, body).await?.map(|()| Stored {
            key: Some(id.clone()),
            id,
            fields: row,
        }))
    }

    async fn update(
        &self,
        object: PxObject,
        _: WriteMode,
        id: &str,
        changed: &Map<String, Value>,
    ) -> Result<Result<(), Verdict>, Fatal> {
        let body = Bytes::from(serde_json::to_vec(changed).expect("JSON"));
        Ok(self.put(object, id, body).await?.verdict())
    }
}

/// Accounts and users by key: a GET a record while cheaper, the search's pages once not.
impl Finder<PxObject> for PxWriter {
    fn can_look_up(&self, _: PxObject) -> bool {
        true
    }

    async fn look_up(&self, object: PxObject, key: &str) -> Result<Vec<Stored>, Fatal> {
        Ok(self
            .client
            .read(object, key)
            .await?
            .into_iter()
            .map(|fields| Stored {
                id: key.to_owned(),
                key: Some(key.to_owned()),
                fields,
            })
            .collect())
    }

    async fn list_page(&self, object: PxObject, next: Option<String>) -> Result<Page, Fatal> {
        let (records, scroll, hits) = self.client.search(object, None, next, SEARCH_PAGE).await?;
        let key = object.id_field();
        Ok(Page {
            records: records
                .into_iter()
                .filter_map(|fields| {
                    let id = fields.get(key)?.as_str()?.to_owned();
                    Some(Stored {
                        key: Some(id.clone()),
                        id,
                        fields,
                    })
                })
                .collect(),
            next: scroll,
            pages: hits.map(|n| n.div_ceil(SEARCH_PAGE as u64)),
        })
    }
}

impl Writer for PxWriter {
    type Object = PxObject;

    fn attach(&self, backlog: Backlog) {
        self.reconciler.attach(backlog);
    }

    fn batch_limit(&self, _: PxObject, _: WriteMode) -> usize {
        1
    }

    fn stop(&self) {
        self.client.stop();
    }

    fn concurrency_limit(&self) -> Option<usize> {
        Some(self.client.concurrency_limit())
    }

    async fn write(
        &self,
        object: PxObject,
        mode: WriteMode,
        records: &[Prepared],
    ) -> Result<Vec<Verdict>, Fatal> {
        let mut verdicts = Vec::with_capacity(records.len());
        for record in records {
            // Every mode's schema requires the key; the configured product keys are in the
            // body already (a plan default).
            let id = record
                .id
                .clone()
                .expect("every mode's schema requires the key");
            let reconciler = &self.reconciler;
            let row = || serde_json::from_slice(record.body()).unwrap_or_default();
            verdicts.push(match mode {
                // Sent as it came: an insert has nothing to compare, so nothing to parse.
                WriteMode::Insert if reconciler.dry_run() => Verdict::Created { id: None },
                WriteMode::Insert => {
                    let body = Bytes::copy_from_slice(record.body());
                    match self.post(object, &id, body).await? {
                        Ok(()) => Verdict::Created { id: Some(id) },
                        Err(verdict) => verdict,
                    }
                }
                WriteMode::Update => reconciler.update_by_id(self, object, &id, row()).await?,
                WriteMode::Upsert => {
                    let ambiguous = |ids: &[String]| {
                        format!(
                            "{} {object}s have the key {id:?}: {}",
                            ids.len(),
                            ids.join(", ")
                        )
                    };
                    reconciler
                        .upsert(self, object, &id, row(), ambiguous)
                        .await?
                }
            });
        }
        Ok(verdicts)
    }
}
