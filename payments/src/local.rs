//! The local payment provider: the embedded default, no network.
//!
//! It keeps its intents in the store and behaves like Stripe's test mode for the
//! documented test cards: `4242 4242 4242 4242` succeeds, `4000 0000 0000 0002` is
//! declined (`card_declined`), `4000 0000 0000 9995` fails with `insufficient_funds`;
//! any other number that passes the Luhn check succeeds. Malformed numbers, past
//! expiry dates and bad CVCs are refused before anything is charged.

use crate::provider::PaymentProvider;
use crate::store::PaymentStore;
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use pazar_actors::payments::{IntentStatus, ProviderIntent};
use pazar_actors::{DomainError, Money, OrderId};
use std::sync::Arc;
use uuid::Uuid;

/// An intent of the local provider, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIntent {
    /// The intent as providers report it.
    pub intent: ProviderIntent,
    /// The order it is for (its idempotency key: one intent per order).
    pub order_id: OrderId,
    /// The amount to charge.
    pub amount: Money,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Card details as typed on the payment page.
#[derive(Clone)]
pub struct Card {
    /// The number; spaces and dashes are ignored.
    pub number: String,
    /// 1-12.
    pub exp_month: u32,
    /// Four digits, or two (20xx).
    pub exp_year: u32,
    /// Three or four digits.
    pub cvc: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits: String = self.number.chars().filter(char::is_ascii_digit).collect();
        let last4 = &digits[digits.len().saturating_sub(4)..];
        write!(f, "Card(…{last4}, {:02}/{})", self.exp_month, self.exp_year)
    }
}

/// What a test card does.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Succeed,
    Fail(&'static str),
}

impl Card {
    /// Checks the card like a payment form would, naming the bad field.
    fn check(&self, now: DateTime<Utc>) -> Result<Outcome, DomainError> {
        let digits: String = self
            .number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(DomainError::invalid("card_number", "must be 12-19 digits"));
        }
        if !luhn(&digits) {
            return Err(DomainError::invalid(
                "card_number",
                "is not a valid card number",
            ));
        }
        if !(1..=12).contains(&self.exp_month) {
            return Err(DomainError::invalid("exp_month", "must be 1-12"));
        }
        let year = if self.exp_year < 100 {
            2000 + self.exp_year
        } else {
            self.exp_year
        };
        if (year as i32, self.exp_month) < (now.year(), now.month()) {
            return Err(DomainError::invalid("exp_year", "the card has expired"));
        }
        if !(3..=4).contains(&self.cvc.len()) || !self.cvc.chars().all(|c| c.is_ascii_digit()) {
            return Err(DomainError::invalid("cvc", "must be 3 or 4 digits"));
        }
        Ok(match digits.as_str() {
            "4000000000000002" => Outcome::Fail("card_declined: your card was declined"),
            "4000000000009995" => {
                Outcome::Fail("insufficient_funds: your card has insufficient funds")
            }
            _ => Outcome::Succeed,
        })
    }
}

/// The Luhn checksum every card number carries.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The simulator.
pub struct LocalPayments {
    store: Arc<dyn PaymentStore>,
}

impl std::fmt::Debug for LocalPayments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalPayments")
    }
}

impl LocalPayments {
    /// A simulator keeping its intents in `store`.
    pub fn new(store: Arc<dyn PaymentStore>) -> Self {
        Self { store }
    }

    /// The payment page's confirmation: charges `card` for the intent of
    /// `client_secret`. Returns the order and the intent after the attempt.
    pub async fn confirm(
        &self,
        client_secret: &str,
        card: &Card,
    ) -> Result<(OrderId, ProviderIntent), DomainError> {
        let mut local = self
            .store
            .local_intent_by_secret(client_secret)
            .await?
            .ok_or(DomainError::NotFound { what: "payment" })?;
        match local.intent.status {
            IntentStatus::Succeeded => return Ok((local.order_id, local.intent)),
            IntentStatus::Canceled => {
                return Err(DomainError::conflict(
                    "payment_cancelled",
                    "the payment was cancelled with its order",
                ))
            }
            IntentStatus::Refunded => {
                return Err(DomainError::conflict(
                    "payment_refunded",
                    "the payment was refunded",
                ))
            }
            IntentStatus::RequiresPaymentMethod | IntentStatus::Processing => {}
        }
        let outcome = card.check(Utc::now())?;
        match outcome {
            Outcome::Succeed => {
                local.intent.status = IntentStatus::Succeeded;
                local.intent.last_error = None;
            }
            Outcome::Fail(reason) => {
                local.intent.status = IntentStatus::RequiresPaymentMethod;
                local.intent.last_error = Some(reason.to_owned());
            }
        }
        self.store.update_local_intent(&local).await?;
        Ok((local.order_id, local.intent))
    }
}

#[async_trait]
impl PaymentProvider for LocalPayments {
    fn name(&self) -> &'static str {
        "local"
    }

    fn publishable_key(&self) -> Option<String> {
        None
    }

    async fn create_intent(
        &self,
        order: OrderId,
        amount: Money,
    ) -> Result<ProviderIntent, DomainError> {
        let id = format!("pi_local_{}", Uuid::now_v7().simple());
        let local = LocalIntent {
            intent: ProviderIntent {
                client_secret: format!("{id}_secret_{}", Uuid::new_v4().simple()),
                id,
                status: IntentStatus::RequiresPaymentMethod,
                last_error: None,
            },
            order_id: order,
            amount,
            created_at: pazar_actors::now(),
        };
        if self.store.insert_local_intent(&local).await? {
            return Ok(local.intent);
        }
        // The order has its intent (an earlier try, or one created meanwhile): that
        // one is the intent.
        self.store
            .local_intent_for_order(order)
            .await?
            .map(|existing| existing.intent)
            .ok_or(DomainError::NotFound { what: "payment" })
    }

    async fn refund(&self, intent_id: &str) -> Result<ProviderIntent, DomainError> {
        let mut local = self
            .store
            .local_intent(intent_id)
            .await?
            .ok_or(DomainError::NotFound { what: "payment" })?;
        match local.intent.status {
            IntentStatus::Refunded => {}
            IntentStatus::Succeeded => {
                local.intent.status = IntentStatus::Refunded;
                self.store.update_local_intent(&local).await?;
            }
            _ => {
                return Err(DomainError::conflict(
                    "not_refundable",
                    "only a succeeded payment can be refunded",
                ))
            }
        }
        Ok(local.intent)
    }

    async fn retrieve(&self, intent_id: &str) -> Result<ProviderIntent, DomainError> {
        self.store
            .local_intent(intent_id)
            .await?
            .map(|local| local.intent)
            .ok_or(DomainError::NotFound { what: "payment" })
    }

    async fn cancel_intent(&self, intent_id: &str) -> Result<ProviderIntent, DomainError> {
        let mut local = self
            .store
            .local_intent(intent_id)
            .await?
            .ok_or(DomainError::NotFound { what: "payment" })?;
        if local.intent.status != IntentStatus::Succeeded {
            local.intent.status = IntentStatus::Canceled;
            self.store.update_local_intent(&local).await?;
        }
        Ok(local.intent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, month: u32, year: u32, cvc: &str) -> Card {
        Card {
            number: number.into(),
            exp_month: month,
            exp_year: year,
            cvc: cvc.into(),
        }
    }

    #[test]
    fn test_cards_behave_like_stripe_test_mode() {
        let now = Utc::now();
        let year = now.year() as u32 + 2;
        assert_eq!(
            card("4242 4242 4242 4242", 12, year, "123")
                .check(now)
                .unwrap(),
            Outcome::Succeed
        );
        assert!(matches!(
            card("4000000000000002", 12, year, "123").check(now).unwrap(),
            Outcome::Fail(reason) if reason.starts_with("card_declined")
        ));
        assert!(matches!(
            card("4000-0000-0000-9995", 12, year, "123").check(now).unwrap(),
            Outcome::Fail(reason) if reason.starts_with("insufficient_funds")
        ));
    }

    #[test]
    fn bad_cards_name_the_field() {
        let now = Utc::now();
        let year = now.year() as u32 + 2;
        let field = |c: Card| match c.check(now) {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(card("4242424242424241", 12, year, "123")),
            "card_number"
        );
        assert_eq!(field(card("4242", 12, year, "123")), "card_number");
        assert_eq!(
            field(card("4242424242424242", 13, year, "123")),
            "exp_month"
        );
        assert_eq!(field(card("4242424242424242", 1, 2020, "123")), "exp_year");
        assert_eq!(field(card("4242424242424242", 12, year, "12")), "cvc");
        assert_eq!(
            format!("{:?}", card("4242424242424242", 1, 30, "123")),
            "Card(…4242, 01/30)"
        );
    }
}
