//! Events the users service publishes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Shops: own cart, own orders.
    Customer,
    /// Runs the shop.
    Admin,
}

/// `users.registered`: a new account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserRegistered {
    /// The account (also the event's subject).
    pub user_id: Uuid,
    /// Its e-mail address (where the welcome mail goes).
    pub email: String,
    /// The name it gave.
    pub name: String,
    /// What it may do.
    pub role: Role,
}
