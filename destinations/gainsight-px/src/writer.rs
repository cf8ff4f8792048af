//! Records into PX writes, one request a record (the API has no bulk): insert is a POST,
//! update a PUT, upsert a PUT then a POST on 404, as the vendor's loader does. A POST refused
//! as a possible duplicate, or one whose outcome is unknown, is checked with a GET before
//! anything is sent again, so a retried create never makes a duplicate.

use crate::api::{path_safe, ApiClient};
use crate::objects::PxObject;
use bytes::Bytes;
use engine::catalog::{Object, WriteMode};
use engine::error::Fatal;
use engine::http::{sharing_retries, Reply};
use engine::write::prepare::Prepared;
use engine::write::{Verdict, Writer};
use reqwest::Method;

pub struct PxWriter {
    client: ApiClient,
    /// Per object, set once a read of its collection answered: the route exists.
    collections_seen: [tokio::sync::OnceCell<()>; 2],
}

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
    pub fn new(client: ApiClient) -> Self {
        Self {
            client,
            collections_seen: Default::default(),
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
        sharing_retries(async {
            loop {
                match self.client.create(object, body.clone()).await? {
                    Reply::Success { .. } => return Ok(Verdict::Written),
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
                                Put::Updated => Verdict::Written,
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
                            return Ok(Verdict::Written);
                        }
                    }
                }
            }
        }).await
    }
}

impl Writer for PxWriter {
    type Object = PxObject;

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
                WriteMode::Update => match self.put(object, &id, body).await? {
                    Put::Updated => Verdict::Written,
                    Put::NotFound { message } => Verdict::refused_with(404, message),
                    Put::Refused(verdict) => verdict,
                },
                WriteMode::Upsert => match self.put(object, &id, body.clone()).await? {
                    Put::Updated => Verdict::Written,
                    Put::NotFound { .. } => self.create(object, &id, body).await?,
                    Put::Refused(verdict) => verdict,
                },
            };
            verdicts.push(verdict);
        }
        Ok(verdicts)
    }
}
