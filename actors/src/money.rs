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

impl TryFrom<&pazar_events::Money> for Money {
    type Error = DomainError;

    /// An amount as events carry it; an error for a malformed currency code.
    fn try_from(money: &pazar_events::Money) -> Result<Self, DomainError> {
        Ok(Self {
            amount: money.amount,
            currency: Currency::parse(&money.currency)?,
        })
    }
}

impl From<Money> for pazar_events::Money {
    fn from(money: Money) -> Self {
        Self {
            amount: money.amount,
            currency: money.currency.as_str().to_owned(),
        }
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

    /// The most units one cart or order line may hold.
    pub const MAX_QUANTITY: i64 = 1_000_000;

    /// The largest price, in minor units (10 billion of a two-decimal currency).
    /// With at most [`Self::MAX_QUANTITY`] units per line, a line's total
    /// always fits; a cart's total is still added with overflow checks.
    pub const MAX_PRICE: i64 = 1_000_000_000_000;

    /// A price: an amount from 0 to [`Self::MAX_PRICE`] in a valid currency.
    pub fn price(amount: i64, currency: &str) -> Result<Self, DomainError> {
        if !(0..=Self::MAX_PRICE).contains(&amount) {
            return Err(DomainError::invalid(
                "price.amount",
                "must be 0 to 1000000000000 (integer minor units)",
            ));
        }
        Ok(Self {
            amount,
            currency: Currency::parse(currency)?,
        })
    }

    /// A sum of prices as read back from the store (an order's total, a payment's
    /// amount): any amount from 0, since a total of up to
    /// [`Self::MAX_QUANTITY`] lines of the dearest price is well above
    /// [`Self::MAX_PRICE`]. New prices go through [`Self::price`].
    pub fn total(amount: i64, currency: &str) -> Result<Self, DomainError> {
        if amount < 0 {
            return Err(DomainError::invalid("amount", "must not be negative"));
        }
        Ok(Self {
            amount,
            currency: Currency::parse(currency)?,
        })
    }

    /// `quantity` times this amount; `None` on overflow (never a capped value).
    pub fn times(self, quantity: i64) -> Option<Self> {
        Some(Self {
            amount: self.amount.checked_mul(quantity)?,
            currency: self.currency,
        })
    }

    /// The sum of two amounts in one currency; `None` on overflow or when the
    /// currencies differ.
    pub fn plus(self, other: Self) -> Option<Self> {
        (self.currency == other.currency).then_some(())?;
        Some(Self {
            amount: self.amount.checked_add(other.amount)?,
            currency: self.currency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Property: `times` and `plus` agree with exact (128-bit) arithmetic whenever
    /// the result fits in an i64, and refuse it otherwise — never a capped value.
    #[test]
    fn arithmetic_is_exact_or_refused() {
        let eur = Currency::parse("EUR").unwrap();
        let mut rng = StdRng::seed_from_u64(42);
        let edges = [
            0,
            1,
            -1,
            i64::MAX,
            i64::MIN,
            i64::MAX / 2 + 1,
            Money::MAX_PRICE,
        ];
        let pick = |rng: &mut StdRng| {
            if rng.gen_bool(0.3) {
                edges[rng.gen_range(0..edges.len())]
            } else {
                let (low, high) = (rng.gen_range(0..63), rng.gen_range(0..63));
                rng.gen_range(-(1i64 << low)..=(1i64 << high))
            }
        };
        for _ in 0..100_000 {
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            let money = Money {
                amount: a,
                currency: eur,
            };
            let product = i128::from(a) * i128::from(b);
            match money.times(b) {
                Some(result) => assert_eq!(i128::from(result.amount), product),
                None => assert!(i64::try_from(product).is_err(), "{a} x {b} refused"),
            }
            let sum = i128::from(a) + i128::from(b);
            match money.plus(Money {
                amount: b,
                currency: eur,
            }) {
                Some(result) => assert_eq!(i128::from(result.amount), sum),
                None => assert!(i64::try_from(sum).is_err(), "{a} + {b} refused"),
            }
        }
        // A line at the bounds always fits.
        let dearest = Money::price(Money::MAX_PRICE, "EUR").unwrap();
        assert!(dearest.times(Money::MAX_QUANTITY).is_some());
        let usd = Money::price(1, "USD").unwrap();
        assert!(Money::price(1, "EUR").unwrap().plus(usd).is_none());
    }

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
        assert!(Money::price(Money::MAX_PRICE + 1, "EUR").is_err());
        assert!(Money::price(Money::MAX_PRICE, "EUR").is_ok());
        // A total may exceed the dearest price, but never be negative.
        assert!(Money::total(Money::MAX_PRICE * 3, "EUR").is_ok());
        assert!(Money::total(-1, "EUR").is_err());
        assert_eq!(Money::price(0, "usd").unwrap().currency.as_str(), "USD");
    }
}
