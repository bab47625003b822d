//! Stock adjustments from outside systems (a warehouse), read from Kafka's
//! `{prefix}.inbound.stock` topic.
//!
//! One JSON object per message:
//! `{"source_id", "sku" | "product_id", "delta" | "set_on_hand", "reason"}`.
//! `source_id` is the sender's id of the adjustment: the same one delivered twice
//! is applied once. An adjustment goes to the product's ProductStock actor, like
//! the admin endpoint's: a `delta` or a `set_on_hand` that would leave fewer
//! units on hand than are reserved is refused whole, never applied in part.
//! [`schema`] is its JSON Schema (in the README).

use crate::service::Inventory;
use pazar_actors::{DomainError, ProductId, Sku, StockLevels};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

/// One adjustment, as an outside system sends it.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockAdjustment {
    /// The sender's id of this adjustment (1-200 characters): a redelivery
    /// with the same id changes nothing.
    #[schemars(length(min = 1, max = 200))]
    pub source_id: String,
    /// The product, by SKU (or give `product_id`).
    #[serde(default)]
    pub sku: Option<String>,
    /// The product, by id (or give `sku`).
    #[serde(default)]
    pub product_id: Option<Uuid>,
    /// Units to add to `on_hand` (negative removes); not zero. Or give
    /// `set_on_hand`.
    #[serde(default)]
    pub delta: Option<i64>,
    /// The count `on_hand` becomes (a stocktake); zero or more. Or give `delta`.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub set_on_hand: Option<i64>,
    /// Why, kept in the adjustment log (1-500 characters).
    #[schemars(length(min = 1, max = 500))]
    pub reason: String,
}

/// Which product an adjustment names.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// By SKU.
    Sku(Sku),
    /// By id.
    Id(ProductId),
}

/// What an adjustment does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    /// Add to `on_hand`.
    Delta(i64),
    /// Set `on_hand`.
    SetOnHand(i64),
}

/// An adjustment that reads well: what to change, of which product.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjustment {
    /// Its sender's id.
    pub source_id: String,
    /// The product.
    pub target: Target,
    /// The change.
    pub change: Change,
    /// Why.
    pub reason: String,
}

impl Adjustment {
    /// Reads one message; an error names the field at fault.
    pub fn parse(payload: &[u8]) -> Result<Self, DomainError> {
        let raw: StockAdjustment = serde_json::from_slice(payload)
            .map_err(|error| DomainError::invalid("message", error.to_string()))?;
        let source_id = raw.source_id.trim();
        if source_id.is_empty() || source_id.len() > 200 {
            return Err(DomainError::invalid(
                "source_id",
                "must be 1-200 characters",
            ));
        }
        let reason = raw.reason.trim();
        if reason.is_empty() || reason.len() > 500 {
            return Err(DomainError::invalid("reason", "must be 1-500 characters"));
        }
        let target = match (raw.sku.as_deref(), raw.product_id) {
            (Some(sku), None) => Target::Sku(Sku::parse(sku)?),
            (None, Some(id)) => Target::Id(ProductId(id)),
            _ => {
                return Err(DomainError::invalid(
                    "sku",
                    "give exactly one of sku and product_id",
                ))
            }
        };
        let change = match (raw.delta, raw.set_on_hand) {
            (Some(0), None) => return Err(DomainError::invalid("delta", "must not be zero")),
            (Some(delta), None) => Change::Delta(delta),
            (None, Some(count)) if count < 0 => {
                return Err(DomainError::invalid("set_on_hand", "must be zero or more"))
            }
            (None, Some(count)) => Change::SetOnHand(count),
            _ => {
                return Err(DomainError::invalid(
                    "delta",
                    "give exactly one of delta and set_on_hand",
                ))
            }
        };
        Ok(Self {
            source_id: source_id.to_owned(),
            target,
            change,
            reason: reason.to_owned(),
        })
    }

    /// The id its `source_id` is remembered by once applied (a name-based UUID,
    /// so any string the sender uses works).
    pub fn dedup_id(&self) -> Uuid {
        Uuid::new_v5(&INBOUND_NAMESPACE, self.source_id.as_bytes())
    }

    /// The message key it is produced with: its product, so one product's
    /// adjustments stay in order.
    pub fn key(&self) -> String {
        match &self.target {
            Target::Sku(sku) => sku.as_str().to_owned(),
            Target::Id(id) => id.0.to_string(),
        }
    }

    /// Applies it through the product's ProductStock actor.
    pub async fn apply(&self, inventory: &Inventory) -> Result<StockLevels, DomainError> {
        let product = match &self.target {
            Target::Id(id) => *id,
            Target::Sku(sku) => inventory.product_by_sku(sku).await?,
        };
        match self.change {
            Change::Delta(delta) => inventory.adjust_stock(product, delta, &self.reason).await,
            Change::SetOnHand(count) => inventory.set_on_hand(product, count, &self.reason).await,
        }
    }
}

/// The namespace of the ids `source_id`s are remembered by.
const INBOUND_NAMESPACE: Uuid = Uuid::from_u128(0x7a3c_1f0e_5b2d_4c8a_9e61_0d4b_8f27_c115);

/// The JSON Schema of an inbound stock adjustment.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(StockAdjustment)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustment_names_one_product_and_one_change() {
        let ok = Adjustment::parse(
            br#"{"source_id":"wh-1","sku":"MUG-1","delta":-2,"reason":"breakage"}"#,
        )
        .unwrap();
        assert_eq!(ok.target, Target::Sku(Sku::parse("MUG-1").unwrap()));
        assert_eq!(ok.change, Change::Delta(-2));
        assert_eq!(ok.key(), "MUG-1");
        assert_eq!(
            ok.dedup_id(),
            Adjustment::parse(br#"{"source_id":"wh-1","sku":"X","set_on_hand":1,"reason":"r"}"#)
                .unwrap()
                .dedup_id(),
            "the same source id is the same adjustment"
        );
        let field = |raw: &str| match Adjustment::parse(raw.as_bytes()) {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(field(r#"{"source_id":"a","delta":1,"reason":"r"}"#), "sku");
        assert_eq!(
            field(
                r#"{"source_id":"a","sku":"A","product_id":"00000000-0000-0000-0000-000000000000","delta":1,"reason":"r"}"#
            ),
            "sku"
        );
        assert_eq!(
            field(r#"{"source_id":"a","sku":"A","reason":"r"}"#),
            "delta"
        );
        assert_eq!(
            field(r#"{"source_id":"a","sku":"A","delta":0,"reason":"r"}"#),
            "delta"
        );
        assert_eq!(
            field(r#"{"source_id":"a","sku":"A","set_on_hand":-1,"reason":"r"}"#),
            "set_on_hand"
        );
        assert_eq!(
            field(r#"{"source_id":" ","sku":"A","delta":1,"reason":"r"}"#),
            "source_id"
        );
        assert_eq!(
            field(r#"{"source_id":"a","sku":"A","delta":1,"reason":""}"#),
            "reason"
        );
        assert_eq!(
            field(r#"{"source_id":"a","sku":"A","delta":1,"reason":"r","x":1}"#),
            "message"
        );
        assert_eq!(field("not json"), "message");
    }
}

#[cfg(test)]
mod readme {
    /// The README documents the adjustment with its JSON Schema, exactly as the
    /// code reads it (`PAZAR_BLESS=1` prints the schema to paste in).
    #[test]
    fn the_readme_shows_the_schema_the_code_reads() {
        let schema = serde_json::to_string_pretty(&super::schema()).unwrap();
        if std::env::var_os("PAZAR_BLESS").is_some() {
            println!("{schema}");
        }
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        assert!(
            readme.contains(&schema),
            "README.md's inbound stock schema differs from the code: run \
             `PAZAR_BLESS=1 cargo test -p pazar-catalog readme -- --nocapture` and paste it"
        );
    }
}
