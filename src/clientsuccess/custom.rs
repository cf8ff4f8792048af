//! Custom field definitions (`GET /v2/customfield/all/{CLIENT|CONTACT|CONTRACT}`), read once
//! from the account; their types, published in `discover` and checked by `write`, are the
//! catalog's ([`crate::catalog::CustomFields`]).

use super::http::{ApiClient, ApiRequest, Reply};
use crate::catalog::{CustomField, CustomFields, ObjectKind};
use reqwest::Method;

/// Reads the definitions of `objects`. Any failure is an error naming the route and why:
/// callers fall back to the static schemas and say so.
pub async fn read(client: &ApiClient, objects: &[ObjectKind]) -> Result<CustomFields, String> {
    // All objects at once: each read is a round trip before the first record goes out.
    let reads = objects.iter().map(|&object| async move {
        let resource = object.name().to_ascii_uppercase();
        let request = ApiRequest::v2(Method::GET, format!("/customfield/all/{resource}"), None);
        let reply = client
            .send(&request)
            .await
            .map_err(|e| e.message().to_owned())?;
        let body = match reply {
            Reply::Success { body, .. } => body,
            Reply::Refused { status, message } => {
                return Err(format!("{request} answered {status}: {message}"))
            }
            Reply::Unknown { reason, .. } => return Err(reason),
        };
        let definitions: Vec<CustomField> = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "{request} answered something that is not a list of custom field definitions: {e}"
            )
        })?;
        Ok((object, definitions))
    });
    let mut fields = CustomFields::default();
    for (object, definitions) in futures_util::future::try_join_all(reads).await? {
        fields.set(object, definitions);
    }
    Ok(fields)
}
