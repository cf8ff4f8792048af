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
use engine::http::{sharing_retries, Reply};
use engine::reconcile::{
    self, Decision, Finder, Found, MergedContainer, Page, Query, Reconciler, Stored,
};
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
    dry_run: bool,
}

/// Custom values merge member by member; the rest compares by value.
const RULES: MergedContainer = MergedContainer(PxObject::CUSTOM_CONTAINER);

/// What a PUT found.
enum Put {
    Updated,
    NotFound {
        message: String,
    },
    /// Refused for its content: the record's verdict.
    Refused(Verdict),
}

impl PxWriter {
    pub fn new(client: ApiClient, dry_run: bool) -> Self {
        Self {
            client,
            collections_seen: Default::default(),
            reconciler: Reconciler::default(),
            dry_run,
        }
    }

    /// Upsert (and update, once the listing is held): compare with what was found, then
    /// create, PUT only what differs (with the key and the product keys), or send nothing.
    async fn reconcile(
        &self,
        object: PxObject,
        id: &str,
        body: Bytes,
        found: &[Stored],
        mode: WriteMode,
    ) -> Result<Verdict, Fatal> {
        let row: Map<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
        let decision = reconcile::decide(&row, found, &RULES);
        let learn = |fields: Map<String, Value>| {
            self.reconciler.learn(
                object,
                &Stored {
                    id: id.to_owned(),
                    key: Some(id.to_owned()),
                    fields,
                },
            )
        };
        match decision {
            Decision::Unchanged { id } => Ok(Verdict::Unchanged { id }),
            Decision::Ambiguous { ids } => Ok(Verdict::refused(format!(
                "{} {object}s have the key {id:?}: {}",
                ids.len(),
                ids.join(", ")
            ))),
            Decision::Create if mode == WriteMode::Update => Ok(Verdict::refused_with(
                404,
                format!("{object} {id:?} was not found: no {object} has this key"),
            )),
            Decision::Create => {
                let verdict = self.create(object, id, body).await?;
                if verdict.is_written() {
                    learn(row);
                }
                Ok(verdict)
            }
            Decision::Update { changed, .. } => {
                let fields = reconcile::field_names(&changed);
                let mut body = changed.clone();
                for always in [object.id_field(), "propertyKeys"] {
                    if let Some(value) = row.get(always) {
                        body.insert(always.to_owned(), value.clone());
                    }
                }
                let updated = Verdict::Updated {
                    id: id.to_owned(),
                    fields,
                };
                let mut merged = found[0].fields.clone();
                merged.extend(changed);
                if self.dry_run {
                    learn(merged);
                    return Ok(updated);
                }
                let body = Bytes::from(serde_json::to_vec(&body).expect("JSON"));
                Ok(match self.put(object, id, body).await? {
                    Put::Updated => {
                        learn(merged);
                        updated
                    }
                    Put::NotFound { message } => Verdict::refused_with(404, message),
                    Put::Refused(verdict) => verdict,
                })
            }
        }
    }

    /// The record's body (the configured product keys are in it already: a plan default) and
    /// its key (every mode's schema requires it).
    fn body_of(&self, record: &Prepared) -> (Bytes, String) {
        let id = record
            .id
            .clone()
            .expect("every mode's schema requires the key");
        (Bytes::copy_from_slice(record.body()), id)
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

    async fn create(&self, object: PxObject, id: &str, body: Bytes) -> Result<Verdict, Fatal> {
        let created = Verdict::Created {
            id: Some(id.to_owned()),
        };
        if self.dry_run {
            return Ok(created);
        }
        sharing_retries(async {
            loop {
                match self.client.create(object, body.clone()).await? {
                    Reply::Success { .. } => return Ok(created),
                    Reply::Refused {
                        status: 400,
                        message,
                    } => {
                        // "Possible duplicate": another writer, or an earlier attempt, made it.
                        if self.client.exists(object, id).await? == Some(true) {
                            self.client.notice(format!(
                                "POST /v1/{} for {object} {id:?} was refused ({message}) and the {object} exists: updating it instead",
                                object.collection()
                            ));
                            return Ok(match self.put(object, id, body).await? {
                                Put::Updated => Verdict::Updated {
                                    id: id.to_owned(),
                                    fields: Vec::new(),
                                },
                                Put::NotFound { message } => Verdict::refused_with(404, message),
                                Put::Refused(verdict) => verdict,
                            });
                        }
                        return Ok(Verdict::refused_with(400, message));
                    }
                    Reply::Refused { status, message } => {
                        return Ok(Verdict::refused_with(status, message))
                    }
                    Reply::Unknown { .. } => {
                        // It may have landed: look before sending it again.
                        if self.client.exists(object, id).await? == Some(true) {
                            return Ok(created);
                        }
                    }
                }
            }
        }).await
    }
}

/// The fields a record's whole body sends.
fn sent_fields(record: &Prepared) -> Vec<String> {
    serde_json::from_slice::<Map<String, Value>>(record.body())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
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
            let (body, id) = self.body_of(record);
            let verdict = match mode {
                WriteMode::Insert => self.create(object, &id, body).await?,
                WriteMode::Update => match self
                    .reconciler
                    .find_or_blind(self, object, Query::Id(&id))
                    .await?
                {
                    Found::Records(found) => {
                        self.reconcile(object, &id, body, &found, mode).await?
                    }
                    Found::Blind if self.dry_run => Verdict::Updated {
                        id: id.clone(),
                        fields: sent_fields(record),
                    },
                    Found::Blind => match self.put(object, &id, body).await? {
                        Put::Updated => Verdict::Updated {
                            id: id.clone(),
                            fields: sent_fields(record),
                        },
                        Put::NotFound { message } => Verdict::refused_with(404, message),
                        Put::Refused(verdict) => verdict,
                    },
                },
                WriteMode::Upsert => {
                    let found = self.reconciler.find(self, object, &id).await?;
                    self.reconcile(object, &id, body, &found, mode).await?
                }
            };
            verdicts.push(verdict);
        }
        Ok(verdicts)
    }
}
