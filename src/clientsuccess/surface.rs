//! Which write API an account offers: v2 bulk + upsert, v2 single, or v1 (the contract's
//! "three surfaces"), found by probes that cannot create anything, and the route each
//! object × mode takes from there.

use super::http::{ApiClient, ApiRequest, Reply};
use crate::catalog::{ObjectKind, WriteMode};
pub use crate::config::ApiSurface;
use bytes::Bytes;
use engine::error::Fatal;
use reqwest::Method;
use std::fmt;

/// The write routes one object has on this account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routes {
    pub bulk: bool,
    pub upsert: bool,
    pub single: bool,
    /// The v1 API (account-wide; clients and contacts only).
    pub v1: bool,
}

/// How records are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `POST /v2/{object}/bulk`, many a request.
    Bulk,
    /// `POST /v2/{object}`.
    Single,
    /// `POST /v1/clients`, `POST /v1/clients/{id}/contacts`.
    V1,
}

/// How a record found by its uuid (or a lookup) is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// `PUT /v2/{object}/{uuid}` with the fields to change.
    V2Put,
    /// Read the whole record, merge, `PUT` it whole to v1 (a v1 PUT replaces).
    V1Replace,
}

/// How a record is upserted on its natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// `POST /v2/{object}/upsert`.
    Native,
    /// Look it up through v1, then create or update it.
    Lookup,
    /// Find it in a v2 read of every record of its object (once per sync), then create or
    /// update it: an account with v2 single writes and no v1.
    ReadAll,
}

/// One object's routes for each mode; `None` where this account offers no way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRoutes {
    pub create: Option<Create>,
    pub update: Option<Update>,
    pub upsert: Option<Upsert>,
}

impl ObjectRoutes {
    /// Best first, as the contract orders the surfaces.
    pub fn choose(object: ObjectKind, routes: Routes) -> Self {
        let has_v1 = routes.v1 && object != ObjectKind::Contract;
        let create = if routes.bulk && object.has_bulk_insert() {
            Some(Create::Bulk)
        } else if routes.single {
            Some(Create::Single)
        } else if has_v1 {
            Some(Create::V1)
        } else {
            None
        };
        // PUT /v2/{object}/{uuid} belongs to both v2 surfaces; it cannot be probed without a
        // record, so any v2 write route found vouches for it.
        let update = if routes.bulk || routes.single || routes.upsert {
            Some(Update::V2Put)
        } else if has_v1 {
            Some(Update::V1Replace)
        } else {
            None
        };
        let upsert = if routes.upsert {
            Some(Upsert::Native)
        } else if has_v1 && create.is_some() && update.is_some() {
            Some(Upsert::Lookup)
        } else if object != ObjectKind::Contract
            && create.is_some()
            && update == Some(Update::V2Put)
        {
            // Contracts have no natural key but externalId, which only the upsert route matches.
            Some(Upsert::ReadAll)
        } else {
            None
        };
        Self {
            create,
            update,
            upsert,
        }
    }

    /// The routes a pinned surface stands for, without probing.
    pub fn pinned(object: ObjectKind, surface: ApiSurface) -> Self {
        let routes = match surface {
            ApiSurface::Auto | ApiSurface::V2Bulk => Routes {
                bulk: true,
                upsert: true,
                // Contracts have no bulk route: the bulk surface creates them one by one.
                single: object == ObjectKind::Contract,
                v1: false,
            },
            ApiSurface::V2Single => Routes {
                single: true,
                v1: true,
                ..Routes::default()
            },
            ApiSurface::V1 => Routes {
                v1: true,
                ..Routes::default()
            },
        };
        Self::choose(object, routes)
    }

    pub fn supports(&self, mode: WriteMode) -> bool {
        match mode {
            WriteMode::Insert => self.create.is_some(),
            WriteMode::Update => self.update.is_some(),
            WriteMode::Upsert => self.upsert.is_some(),
        }
    }

    /// The surface, in a few words, for logs and `check`.
    pub fn describe(&self) -> String {
        let create = match self.create {
            Some(Create::Bulk) => "v2 bulk",
            Some(Create::Single) => "v2 single",
            Some(Create::V1) => "v1",
            None => "no create route",
        };
        let update = match self.update {
            Some(Update::V2Put) => "v2 PUT",
            Some(Update::V1Replace) => "v1 read-merge-replace",
            None => "no update route",
        };
        let upsert = match self.upsert {
            Some(Upsert::Native) => "v2 upsert",
            Some(Upsert::Lookup) => "v1 lookup then create or update",
            Some(Upsert::ReadAll) => "v2 read of all records then create or update",
            None => "no upsert",
        };
        format!("insert by {create}, update by {update}, upsert by {upsert}")
    }
}

/// The routes chosen for every object a sync (or `check`) writes.
#[derive(Debug, Clone)]
pub struct SurfacePlan {
    objects: Vec<(ObjectKind, ObjectRoutes)>,
    pub detected: bool,
    /// Whether v1's lookups (a client by externalId, contacts by email) can be used; `None`
    /// when detection had no need to ask (the writer asks when a lookup needs it). Pinned
    /// surfaces assume so, as recorded traffic shows v1 beside v2.
    pub v1_reads: Option<bool>,
    /// Each probe detection sent and its answer, so a missing route is reported with what was
    /// tried.
    probes: Vec<Tried>,
}

impl SurfacePlan {
    pub fn routes(&self, object: ObjectKind) -> Option<ObjectRoutes> {
        self.objects
            .iter()
            .find(|(o, _)| *o == object)
            .map(|(_, r)| *r)
    }

    pub fn pinned(surface: ApiSurface, objects: &[ObjectKind]) -> Self {
        Self {
            objects: objects
                .iter()
                .map(|&o| (o, ObjectRoutes::pinned(o, surface)))
                .collect(),
            detected: false,
            v1_reads: Some(true),
            probes: Vec::new(),
        }
    }

    /// Probes the account for each object's routes. Nothing is created: a bulk route is sent
    /// `[]` and a create or upsert route `{}`, which an existing route refuses with a 4xx and
    /// a missing one answers 404 or 405. With `needs` (a sync's objects and modes), the routes
    /// that would serve them are probed first and the rest only if those are missing: every
    /// request at the start is time and budget no record gets. An empty `needs` (`check`)
    /// probes everything.
    pub async fn detect(
        client: &ApiClient,
        objects: &[ObjectKind],
        needs: &[(ObjectKind, WriteMode)],
    ) -> Result<Self, Fatal> {
        let probe = |route: Probe| async move {
            let (found, answer) = ask(client, route.request()).await?;
            Ok::<_, Fatal>(Tried {
                route,
                found,
                answer,
            })
        };
        let wanted = |object: ObjectKind, mode: WriteMode| needs.contains(&(object, mode));
        // The best route of each mode a sync needs (what the contract ranks first).
        let mut first = Vec::new();
        for &object in objects {
            if wanted(object, WriteMode::Insert) && object.has_bulk_insert() {
                first.push(Probe::Bulk(object));
            }
            // A contract create of unknown outcome is settled through the upsert route
            // (contracts have no v1 to look them up by), so inserts want it too.
            let contract_inserts =
                object == ObjectKind::Contract && wanted(object, WriteMode::Insert);
            if wanted(object, WriteMode::Upsert) || contract_inserts {
                first.push(Probe::Upsert(object));
            }
            let inserts_one_by_one = wanted(object, WriteMode::Insert) && !object.has_bulk_insert();
            let updates_only = wanted(object, WriteMode::Update)
                && !wanted(object, WriteMode::Insert)
                && !wanted(object, WriteMode::Upsert);
            if inserts_one_by_one || updates_only {
                first.push(Probe::Single(object));
            }
        }
        let mut tried: Vec<Tried> =
            futures_util::future::try_join_all(first.into_iter().map(probe)).await?;
        let has = |tried: &[Tried], route: Probe| tried.iter().any(|t| t.route == route && t.found);
        let routes_of = |tried: &[Tried], object: ObjectKind, v1: bool| Routes {
            bulk: has(tried, Probe::Bulk(object)),
            upsert: has(tried, Probe::Upsert(object)),
            single: has(tried, Probe::Single(object)),
            v1,
        };
        let served = !needs.is_empty()
            && needs.iter().all(|&(object, mode)| {
                ObjectRoutes::choose(object, routes_of(&tried, object, false)).supports(mode)
            });
        let mut v1_reads = None;
        if !served {
            // Everything not asked yet, at once.
            let mut rest = vec![Probe::V1];
            for &object in objects {
                let bulk = object.has_bulk_insert().then_some(Probe::Bulk(object));
                let all = [
                    bulk,
                    Some(Probe::Upsert(object)),
                    Some(Probe::Single(object)),
                ];
                rest.extend(
                    all.into_iter()
                        .flatten()
                        .filter(|p| !tried.iter().any(|t| t.route == *p)),
                );
            }
            tried.extend(futures_util::future::try_join_all(rest.into_iter().map(probe)).await?);
            v1_reads = Some(has(&tried, Probe::V1));
        }
        let objects = objects
            .iter()
            .map(|&object| {
                let routes = routes_of(&tried, object, v1_reads == Some(true));
                (object, ObjectRoutes::choose(object, routes))
            })
            .collect();
        // In the order the contract ranks them, not the order the answers came.
        tried.sort_by_key(|t| t.route.rank());
        Ok(Self {
            objects,
            detected: true,
            v1_reads,
            probes: tried,
        })
    }

    /// Fails, naming what is missing, when a mode the sync needs has no route.
    pub fn require(&self, needs: &[(ObjectKind, WriteMode, String)]) -> Result<(), Fatal> {
        for (object, mode, stream) in needs {
            let routes = self.routes(*object);
            if routes.is_some_and(|r| r.supports(*mode)) {
                continue;
            }
            let how = if self.detected {
                "this ClientSuccess account does not offer"
            } else {
                "the api_surface chosen does not offer"
            };
            let missing = match (object, mode) {
                (ObjectKind::Contract, WriteMode::Upsert) => format!(
                    "POST /v2/contract/upsert, which {how} (contracts have no v1 API to look them up)"
                ),
                (ObjectKind::Contract, _) => format!(
                    "a v2 contract route, which {how} (contracts cannot be written through v1)"
                ),
                _ => format!("a route for it, which {how}"),
            };
            let tried: Vec<String> = self
                .probes
                .iter()
                .filter(|t| t.route.object().is_none_or(|o| o == *object))
                .map(|t| format!("{} → {}", t.route.request(), t.answer))
                .collect();
            let tried = match tried.as_slice() {
                [] => String::new(),
                probes => format!(" Routes tried: {}.", probes.join(", ")),
            };
            return Err(Fatal::config(format!(
                "{stream}: to {mode} a {object} the connector needs {missing}. Routes found: {}.{tried} \
                 Check base_url, or set api_surface to the surface your account has",
                self.describe()
            )));
        }
        Ok(())
    }

    /// `client: insert by v2 bulk, …; contact: …`.
    pub fn describe(&self) -> String {
        self.objects
            .iter()
            .map(|(object, routes)| format!("{object}: {}", routes.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for SurfacePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn empty(body: &'static str) -> Option<Bytes> {
    Some(Bytes::from_static(body.as_bytes()))
}

/// A route detection may ask about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    V1,
    Bulk(ObjectKind),
    Upsert(ObjectKind),
    Single(ObjectKind),
}

impl Probe {
    /// The request that asks, creating nothing: a bulk route is sent `[]`, any other `{}`.
    fn request(self) -> ApiRequest {
        match self {
            Probe::V1 => ApiRequest::v1(Method::POST, "/clients".into(), empty("{}")),
            Probe::Bulk(object) => {
                ApiRequest::v2(Method::POST, format!("/{object}/bulk"), empty("[]"))
            }
            Probe::Upsert(object) => {
                ApiRequest::v2(Method::POST, format!("/{object}/upsert"), empty("{}"))
            }
            Probe::Single(object) => {
                ApiRequest::v2(Method::POST, format!("/{object}"), empty("{}"))
            }
        }
    }

    /// The object it is about; v1 is account-wide.
    fn object(self) -> Option<ObjectKind> {
        match self {
            Probe::V1 => None,
            Probe::Bulk(object) | Probe::Upsert(object) | Probe::Single(object) => Some(object),
        }
    }

    /// The contract's order: bulk, upsert, single create, v1.
    fn rank(self) -> u8 {
        match self {
            Probe::Bulk(_) => 0,
            Probe::Upsert(_) => 1,
            Probe::Single(_) => 2,
            Probe::V1 => 3,
        }
    }
}

/// A probe and what it found.
#[derive(Debug, Clone)]
struct Tried {
    route: Probe,
    found: bool,
    /// The status, or why there was none.
    answer: String,
}

/// Whether v1 is there (`POST /v1/clients` with `{}`, which creates nothing), for a writer
/// whose detection did not need to ask.
pub async fn v1_exists(client: &ApiClient) -> Result<bool, Fatal> {
    Ok(ask(client, Probe::V1.request()).await?.0)
}

/// Whether a route exists (anything but 404 or 405 says it does), and the answer in words.
async fn ask(client: &ApiClient, probe: ApiRequest) -> Result<(bool, String), Fatal> {
    Ok(match client.send_probe(&probe).await? {
        Reply::Refused { status, .. } => (!matches!(status, 404 | 405), status.to_string()),
        Reply::Success { status, .. } => (true, status.to_string()),
        Reply::Unknown { reason, .. } => (true, format!("no clear answer ({reason})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Routes = Routes {
        bulk: true,
        upsert: true,
        single: true,
        v1: true,
    };

    #[test]
    fn the_best_surface_wins_and_each_falls_back() {
        let client = ObjectRoutes::choose(ObjectKind::Client, ALL);
        assert_eq!(
            (client.create, client.update, client.upsert),
            (
                Some(Create::Bulk),
                Some(Update::V2Put),
                Some(Upsert::Native)
            )
        );
        let contract = ObjectRoutes::choose(ObjectKind::Contract, ALL);
        assert_eq!(contract.create, Some(Create::Single));
        let single = ObjectRoutes::choose(
            ObjectKind::Contact,
            Routes {
                single: true,
                v1: true,
                ..Routes::default()
            },
        );
        assert_eq!(
            (single.create, single.update, single.upsert),
            (
                Some(Create::Single),
                Some(Update::V2Put),
                Some(Upsert::Lookup)
            )
        );
        let v1 = ObjectRoutes::choose(
            ObjectKind::Client,
            Routes {
                v1: true,
                ..Routes::default()
            },
        );
        assert_eq!(
            (v1.create, v1.update, v1.upsert),
            (
                Some(Create::V1),
                Some(Update::V1Replace),
                Some(Upsert::Lookup)
            )
        );
        let contract_v1 = ObjectRoutes::choose(
            ObjectKind::Contract,
            Routes {
                v1: true,
                ..Routes::default()
            },
        );
        assert_eq!(
            (contract_v1.create, contract_v1.update, contract_v1.upsert),
            (None, None, None)
        );
        let mix = ObjectRoutes::choose(
            ObjectKind::Client,
            Routes {
                upsert: true,
                single: true,
                ..Routes::default()
            },
        );
        assert_eq!(
            (mix.create, mix.upsert),
            (Some(Create::Single), Some(Upsert::Native))
        );
    }

    #[test]
    fn a_missing_mode_names_the_stream_and_the_route() {
        let plan = SurfacePlan::pinned(ApiSurface::V1, &[ObjectKind::Contract]);
        let err = plan
            .require(&[(
                ObjectKind::Contract,
                WriteMode::Insert,
                "stream `deals`".into(),
            )])
            .unwrap_err();
        let message = err.message();
        assert!(
            message.contains("stream `deals`") && message.contains("v1"),
            "{message}"
        );
    }
}
