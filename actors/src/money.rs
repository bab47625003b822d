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

impl Currency {
    /// Digits after the decimal point of the currency's minor unit (ISO 4217).
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    fn symbol(&self) -> Option<&'static str> {
        Some(match self.as_str() {
            "EUR" => "€",
            "USD" => "$",
            "GBP" => "£",
            "JPY" => "¥",
            _ => return None,
        })
    }
}

impl Money {
    /// For people: `€12.50`, `¥1250`, `12.500 KWD` (the minor units placed by the
    /// currency's exponent; a symbol where one is unambiguous, else the code).
    pub fn display(&self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.amount < 0 { "-" } else { "" };
        let units = self.amount.unsigned_abs();
        let number = if exponent == 0 {
            units.to_string()
        } else {
            let scale = 10u64.pow(exponent);
            format!(
                "{}.{:0width$}",
                units / scale,
                units % scale,
                width = exponent as usize
            )
        };
        match self.currency.symbol() {
            Some(symbol) => format!("{sign}{symbol}{number}"),
            None => format!("{sign}{number} {}", self.currency),
        }
    }

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
    fn money_is_displayed_per_currency() {
        let show = |amount, code| Money::price(amount, code).unwrap().display();
        assert_eq!(show(1250, "EUR"), "€12.50");
        assert_eq!(show(5, "USD"), "$0.05");
        assert_eq!(show(1250, "JPY"), "¥1250");
        assert_eq!(show(12500, "KWD"), "12.500 KWD");
        assert_eq!(show(199, "CHF"), "1.99 CHF");
    }

    #[test]
    fn negative_price_is_rejected() {
        assert!(Money::price(-1, "EUR").is_err());
        assert_eq!(Money::price(0, "usd").unwrap().currency.as_str(), "USD");
    }
}
