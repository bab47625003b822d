//! Money as integer minor units plus an ISO 4217 currency code: never floating point.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A three-letter, upper-case ISO 4217 currency code such as `EUR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a currency code; lower case is accepted and normalised.
    pub fn parse(code: &str) -> Result<Self, DomainError> {
        let upper = code.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(DomainError::invalid(
                "price.currency",
                "must be a three-letter ISO 4217 code such as EUR",
            ));
        }
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in the currency's minor unit (cents for EUR), never negative for a price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units, e.g. 1999 for 19.99 EUR.
    pub amount: i64,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Money {
    /// A price: a non-negative amount in a valid currency.
    pub fn price(amount: i64, currency: &str) -> Result<Self, DomainError> {
        if amount < 0 {
            return Err(DomainError::invalid(
                "price.amount",
                "must be zero or more (integer minor units)",
            ));
        }
        Ok(Self {
            amount,
            currency: Currency::parse(currency)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_is_normalised_and_checked() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("E1R").is_err());
    }

    #[test]
    fn negative_price_is_rejected() {
        assert!(Money::price(-1, "EUR").is_err());
        assert_eq!(Money::price(0, "usd").unwrap().currency.as_str(), "USD");
    }
}
