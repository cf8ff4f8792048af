//! The three ClientSuccess objects as Rust structs: the one source of their JSON schemas.
//!
//! Every rule of the API contract that a schema can say lives here as a schemars attribute:
//! types, lengths, ranges, the status enum, date formats and `additionalProperties: false`.
//! The per-mode schemas (`catalog::operation_schema`) are these plus the mode's required fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A client (an account) in ClientSuccess.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ClientSuccess client")]
pub struct Client {
    /// The client's ClientSuccess id. Required to update; ignored on create.
    pub uuid: Option<String>,
    /// The client's name. Required to create; the fallback upsert key when there is no externalId.
    #[schemars(length(max = 255))]
    pub name: Option<String>,
    /// The client's lifecycle status. Required by ClientSuccess to create a client: on insert a
    /// missing status is sent as ACTIVE; upserts and updates fill nothing in.
    pub status: Option<ClientStatus>,
    /// Whether the client is active. Required by ClientSuccess to create a client: on insert a
    /// missing value is sent as true when the status is ACTIVE or TRIAL, else false; upserts and
    /// updates fill nothing in.
    pub active: Option<bool>,
    /// Your system's id for the client; the natural key for upsert.
    #[schemars(length(max = 100))]
    pub external_id: Option<String>,
    /// The client's website.
    #[schemars(length(max = 1024))]
    pub site_url: Option<String>,
    /// Address of the client's logo.
    #[schemars(length(max = 1024))]
    pub logo_url: Option<String>,
    /// Desired start date of the client, YYYY-MM-DD.
    #[schemars(extend("format" = "date"))]
    pub inception_date: Option<String>,
    /// Date the client was terminated, YYYY-MM-DD.
    #[schemars(extend("format" = "date"))]
    pub terminated_date: Option<String>,
    /// Street address.
    #[schemars(length(max = 100))]
    pub street: Option<String>,
    /// City.
    #[schemars(length(max = 100))]
    pub city: Option<String>,
    /// State or province.
    #[schemars(length(max = 100))]
    pub state: Option<String>,
    /// Postal code.
    #[schemars(length(max = 20))]
    pub zip: Option<String>,
    /// Country.
    #[schemars(length(max = 100))]
    pub country: Option<String>,
    /// The client's region.
    pub region: Option<Region>,
    /// A tz database name, such as America/Denver.
    #[schemars(length(max = 60))]
    pub timezone: Option<String>,
    /// Salesforce account id.
    #[schemars(length(max = 18))]
    pub salesforce_account_id: Option<String>,
    /// Id of the client in Zendesk.
    #[schemars(length(max = 200))]
    pub zendesk_id: Option<String>,
    /// Id of the client in Freshdesk.
    #[schemars(length(max = 200))]
    pub freshdesk_id: Option<String>,
    /// Id that ties the client to usage data.
    #[schemars(length(max = 200))]
    pub usage_id: Option<String>,
    /// Id of the client in Stripe.
    #[schemars(length(max = 200))]
    pub stripe_id: Option<String>,
    /// Id of the client's external status.
    #[schemars(length(max = 200))]
    pub external_status_id: Option<String>,
    /// Net promoter score, -100 to 100.
    #[schemars(range(min = -100, max = 100))]
    pub nps_score: Option<i32>,
    /// Free text.
    pub note: Option<String>,
    /// ClientSuccess id of the employee who created the client.
    pub created_by_employee_id: Option<u64>,
    /// ClientSuccess id of the employee who last modified the client.
    pub modified_by_employee_id: Option<u64>,
    /// ClientSuccess id of the client's CSM.
    pub managed_by_employee_id: Option<u64>,
    /// ClientSuccess id of the client's sales rep.
    pub assigned_sales_rep_id: Option<u64>,
    /// The sales rep's full name.
    #[schemars(length(max = 45))]
    pub assigned_sales_rep: Option<String>,
    /// ClientSuccess id of the client type.
    pub client_type_id: Option<u64>,
    /// ClientSuccess id of the SuccessCycle template to assign.
    pub success_cycle_template_id: Option<u64>,
    /// ClientSuccess id of the client's primary contact.
    pub primary_contact_id: Option<u64>,
    /// ClientSuccess id of the parent client.
    pub parent_client_id: Option<u64>,
    /// Account teaming roles.
    pub acc_teaming_roles: Option<Vec<AccTeamingRole>>,
    /// Custom field values by key.
    pub custom: Option<BTreeMap<String, CustomValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientStatus {
    Active,
    Inactive,
    Trial,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// ClientSuccess id of the region.
    pub id: Option<u64>,
    /// Name of the region.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccTeamingRole {
    /// ClientSuccess id of the employee.
    pub employee_id: u64,
    /// ClientSuccess id of the role.
    pub role_id: u64,
}

/// A custom field's value: text, a number, a boolean, or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CustomValue {
    Text(String),
    Number(f64),
    Flag(bool),
    Null(()),
}

/// A contact: a person at a client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ClientSuccess contact")]
pub struct Contact {
    /// The contact's ClientSuccess id. Required to update; ignored on create.
    pub uuid: Option<String>,
    /// The uuid of the contact's client, which must already exist in ClientSuccess. To create,
    /// give this or clientExternalId, not both.
    pub client_id: Option<String>,
    /// The externalId of the contact's client, instead of clientId: the connector finds the
    /// client (including one created earlier in the same sync).
    #[schemars(length(max = 100))]
    pub client_external_id: Option<String>,
    /// Email address; the natural key for upsert.
    #[schemars(length(max = 254), email)]
    pub email: Option<String>,
    /// First name.
    #[schemars(length(max = 100))]
    pub first_name: Option<String>,
    /// Last name.
    #[schemars(length(max = 100))]
    pub last_name: Option<String>,
    /// Job title.
    #[schemars(length(max = 100))]
    pub title: Option<String>,
    /// Phone number.
    #[schemars(length(max = 20))]
    pub phone: Option<String>,
    /// Mobile number.
    #[schemars(length(max = 20))]
    pub mobile: Option<String>,
    /// LinkedIn profile address.
    #[schemars(length(max = 1024))]
    pub linkedin_url: Option<String>,
    /// Your system's id for the contact.
    #[schemars(length(max = 100))]
    pub external_id: Option<String>,
    /// Custom field values by key.
    pub custom: Option<BTreeMap<String, CustomValue>>,
}

/// A contract between a client and you.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ClientSuccess contract")]
pub struct Contract {
    /// The contract's ClientSuccess id. Required to update; ignored on create.
    pub uuid: Option<String>,
    /// The uuid of the contract's client, which must already exist in ClientSuccess. To create,
    /// give this or clientExternalId, not both.
    pub client_id: Option<String>,
    /// The externalId of the contract's client, instead of clientId: the connector finds the
    /// client (including one created earlier in the same sync).
    #[schemars(length(max = 100))]
    pub client_external_id: Option<String>,
    /// The contract's name.
    #[schemars(length(max = 255))]
    pub name: Option<String>,
    /// The contract's value, 0 or more.
    #[schemars(range(min = 0))]
    pub amount: Option<f64>,
    /// Start date, YYYY-MM-DD.
    #[schemars(extend("format" = "date"))]
    pub start_date: Option<String>,
    /// End date, YYYY-MM-DD, not before startDate.
    #[schemars(extend("format" = "date"))]
    pub end_date: Option<String>,
    /// Your system's id for the contract; the natural key for upsert.
    #[schemars(length(max = 100))]
    pub external_id: Option<String>,
    /// Custom field values by key.
    pub custom: Option<BTreeMap<String, CustomValue>>,
}
