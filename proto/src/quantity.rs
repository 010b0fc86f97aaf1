//! Resource quantities (`250m`, `64Mi`, `1.5Gi`, `2e3`): parsing, comparison,
//! arithmetic and Kubernetes's canonical text form.
//!
//! Two types split the work:
//!
//! * [`Quantity`] is the wire type. It is the protobuf message
//!   `Quantity { string string = 1; }` (the generated API types map onto it with
//!   prost-build's `extern_path`) and reads and writes Kubernetes JSON/YAML as a
//!   plain string. It keeps the text it was given, so a document round-trips
//!   byte for byte; [`Quantity::to_canonical`] gives the form Kubernetes would
//!   write back.
//! * [`Amount`] is the exact numeric value behind the text: a signed count of
//!   nano-units (`i128`) plus the [`Format`] the value prefers to be written in.
//!   It is ordered by value, so `1Gi > 1000Mi` and `1000m == 1`.
//!
//! # Grammar
//!
//! As Kubernetes's `resource.ParseQuantity`:
//!
//! ```text
//! quantity ::= sign? digits ( "." digits? )? suffix | sign? "." digits? suffix
//! sign     ::= "+" | "-"
//! suffix   ::= "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"          (binary SI)
//!            | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"  (decimal SI)
//!            | ("e" | "E") sign? digits                            (decimal exponent)
//! ```
//!
//! No whitespace is allowed inside the text (JSON decoding trims the ends, as
//! Kubernetes does).
//!
//! # Limits
//!
//! * Precision is one nano-unit (`1n`). Finer inputs are rounded up, away from
//!   zero, as Kubernetes does: `0.1n` reads as `1n`, `-0.1n` as `-1n`.
//! * Magnitudes up to `i128::MAX` nano-units (about `1.7e29`, or 170 billion
//!   `E`) are exact; larger inputs are refused with [`QuantityError::OutOfRange`].
//!   Kubernetes itself stores most values in an `int64`.
//! * Like Kubernetes, a binary-SI value larger than `2^63 - 1` is capped to
//!   `2^63 - 1` (`9Ei` reads as `9223372036854775807`).
//! * A binary-SI input whose digits (less leading and trailing zeros) do not fit
//!   in an `i128` is refused, even where the exact value would fit.

mod canonical;
mod parse;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Add, Neg, Sub};
use std::str::FromStr;

/// Nano-units in one unit.
const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// A Kubernetes resource quantity as written (`"250m"`, `"64Mi"`).
///
/// The text is kept as given; [`Quantity::parse`], JSON/YAML decoding and
/// [`From<Amount>`] only ever produce valid text. Protobuf decoding (prost)
/// cannot check it, so code that accepts quantities from the wire validates them
/// with [`Quantity::validate`] (the apiserver does, before storing an object).
///
/// Equality (`==`) and `Hash` compare the text, so equal quantities encode
/// identically; compare values with [`Quantity::cmp_value`] or through
/// [`Quantity::amount`]. The numeric accessors ([`value`](Quantity::value),
/// [`milli_value`](Quantity::milli_value), [`is_zero`](Quantity::is_zero),
/// [`cmp_value`](Quantity::cmp_value)) read malformed text as zero; use
/// [`Quantity::amount`] where that must be told apart.
///
/// `Default` is the empty (malformed) text, as prost requires; use
/// [`Quantity::zero`] for `"0"`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Quantity {
    /// The quantity's text, e.g. `"250m"`.
    #[prost(string, tag = "1")]
    pub string: String,
}

/// The preferred way to write a value, as Kubernetes's `resource.Format`.
///
/// Parsing records which family the suffix came from; canonical text and the
/// results of arithmetic are written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Decimal exponent: `12e6`, `5e-3`.
    DecimalExponent,
    /// Powers of two: `64Mi`, `1Gi`. Values that are not a whole number of
    /// units, or below `1Ki`, are written in decimal SI.
    BinarySI,
    /// Powers of ten with SI suffixes: `250m`, `5G`.
    DecimalSI,
}

/// The exact value of a quantity: a signed count of nano-units and the
/// [`Format`] it prefers to be written in.
///
/// Equality, hashing and ordering look only at the value (`1000m == 1`,
/// `1Gi > 1000Mi`). `Display` writes Kubernetes's canonical text.
///
/// The `+`, `-` and unary `-` operators panic on overflow (beyond about
/// `1.7e29` units); use [`Amount::checked_add`] and [`Amount::checked_sub`]
/// where the inputs are not trusted. A result takes the format of the left
/// operand, or of the right one when the left is zero, as Kubernetes does.
#[derive(Clone, Copy, Debug)]
pub struct Amount {
    nanos: i128,
    format: Format,
}

/// Why a quantity's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantityError {
    /// The text is empty.
    #[error(
        "quantity is empty; expected a number with an optional unit such as \"250m\" or \"64Mi\""
    )]
    Empty,
    /// The text does not follow the quantity grammar.
    #[error("invalid quantity {text:?}: found {found} at byte {position}, expected {expected}")]
    Syntax {
        /// The whole text.
        text: String,
        /// Byte offset of the offending character.
        position: usize,
        /// What was found there: a quoted character or `end of input`.
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// The number is followed by letters that are not a unit.
    #[error(
        "invalid quantity {text:?}: unknown unit suffix {suffix:?}; expected one of \
         Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E, or an exponent such as e3"
    )]
    UnknownSuffix {
        /// The whole text.
        text: String,
        /// The unrecognised suffix.
        suffix: String,
    },
    /// The value (or its exponent) is too large to represent exactly.
    #[error("invalid quantity {text:?}: {reason}")]
    OutOfRange {
        /// The whole text.
        text: String,
        /// What overflowed.
        reason: &'static str,
    },
}

impl Quantity {
    /// Parses and validates `text`, keeping it as given.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        parse::parse(text)?;
        Ok(Self {
            string: text.to_owned(),
        })
    }

    /// The quantity `"0"`.
    pub fn zero() -> Self {
        Self {
            string: "0".to_owned(),
        }
    }

    /// `units` whole units, written canonically in `format` (Kubernetes's
    /// `NewQuantity`).
    pub fn new(units: i64, format: Format) -> Self {
        Amount::from_units(units, format).into()
    }

    /// `milli` thousandths of a unit, written canonically in `format`
    /// (Kubernetes's `NewMilliQuantity`).
    pub fn new_milli(milli: i64, format: Format) -> Self {
        Amount::from_milli(milli, format).into()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.string
    }

    /// The exact value, or why the text is malformed.
    pub fn amount(&self) -> Result<Amount, QuantityError> {
        parse::parse(&self.string)
    }

    /// Checks that the text is a valid quantity.
    pub fn validate(&self) -> Result<(), QuantityError> {
        self.amount().map(|_| ())
    }

    /// The value, or zero for malformed text.
    fn amount_or_zero(&self) -> Amount {
        self.amount()
            .unwrap_or(Amount::from_nanos(0, Format::DecimalSI))
    }

    /// The text Kubernetes would write for this value: `0.5` → `500m`,
    /// `1.5Gi` → `1536Mi`, `2048Ki` → `2Mi`, `1000m` → `1`; a decimal exponent
    /// stays one (`2e3` → `2e3`, `1.5e3` → `1500`). Malformed text is returned
    /// unchanged, for validation to report.
    pub fn to_canonical(&self) -> Quantity {
        match self.amount() {
            Ok(amount) => amount.into(),
            Err(_) => self.clone(),
        }
    }

    /// Rewrites the text in canonical form (see [`Quantity::to_canonical`]).
    pub fn canonicalize(&mut self) {
        if let Ok(amount) = self.amount() {
            self.string = amount.to_string();
        }
    }

    /// The value in whole units, rounded away from zero (Kubernetes's
    /// `Value()`; memory in bytes). Saturates at the `i64` bounds.
    pub fn value(&self) -> i64 {
        self.amount_or_zero().value()
    }

    /// The value in thousandths, rounded away from zero (Kubernetes's
    /// `MilliValue()`; CPU in millicores). Saturates at the `i64` bounds.
    pub fn milli_value(&self) -> i64 {
        self.amount_or_zero().milli_value()
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.amount_or_zero().is_zero()
    }

    /// Compares by value, not text (`1Gi > 1000Mi`, `1000m == 1`); Kubernetes's
    /// `Cmp`.
    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
        self.amount_or_zero().cmp(&other.amount_or_zero())
    }

    /// The sum, written canonically; `None` if either text is malformed or the
    /// sum overflows.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let sum = self.amount().ok()?.checked_add(other.amount().ok()?)?;
        Some(sum.into())
    }

    /// The difference, written canonically; `None` if either text is malformed
    /// or the difference overflows.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let difference = self.amount().ok()?.checked_sub(other.amount().ok()?)?;
        Some(difference.into())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.string)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<&str> for Quantity {
    type Error = QuantityError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

impl From<Amount> for Quantity {
    /// The canonical text of `amount`.
    fn from(amount: Amount) -> Self {
        Self {
            string: amount.to_string(),
        }
    }
}

impl Amount {
    /// `nanos` nano-units (`1n`), to be written in `format`.
    pub const fn from_nanos(nanos: i128, format: Format) -> Self {
        Self { nanos, format }
    }

    /// `milli` thousandths of a unit, to be written in `format`.
    pub const fn from_milli(milli: i64, format: Format) -> Self {
        Self::from_nanos(milli as i128 * 1_000_000, format)
    }

    /// `units` whole units, to be written in `format`.
    pub const fn from_units(units: i64, format: Format) -> Self {
        Self::from_nanos(units as i128 * NANOS_PER_UNIT, format)
    }

    /// Parses quantity text (see the [module docs](self) for the grammar).
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        parse::parse(text)
    }

    /// The value in nano-units; exact.
    pub const fn nanos(self) -> i128 {
        self.nanos
    }

    /// The preferred format.
    pub const fn format(self) -> Format {
        self.format
    }

    /// The same value, to be written in `format`.
    pub const fn with_format(self, format: Format) -> Self {
        Self::from_nanos(self.nanos, format)
    }

    /// Whether the value is zero.
    pub const fn is_zero(self) -> bool {
        self.nanos == 0
    }

    /// The value in whole units, rounded away from zero; saturates at the
    /// `i64` bounds.
    pub fn value(self) -> i64 {
        saturate(div_away_from_zero(self.nanos, NANOS_PER_UNIT))
    }

    /// The value in thousandths, rounded away from zero; saturates at the
    /// `i64` bounds.
    pub fn milli_value(self) -> i64 {
        saturate(div_away_from_zero(self.nanos, 1_000_000))
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        let nanos = self.nanos.checked_add(other.nanos)?;
        Some(Self::from_nanos(nanos, self.result_format(other)))
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        let nanos = self.nanos.checked_sub(other.nanos)?;
        Some(Self::from_nanos(nanos, self.result_format(other)))
    }

    /// The format of `self ⊕ other`: the left operand's, unless it is zero.
    fn result_format(self, other: Amount) -> Format {
        if self.is_zero() {
            other.format
        } else {
            self.format
        }
    }
}

/// `numerator / denominator` rounded away from zero; `denominator > 0`.
fn div_away_from_zero(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    if numerator % denominator == 0 {
        quotient
    } else {
        quotient + numerator.signum()
    }
}

fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Amount {}

impl Hash for Amount {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Add for Amount {
    type Output = Amount;

    fn add(self, other: Amount) -> Amount {
        self.checked_add(other)
            .expect("quantity addition overflowed")
    }
}

impl Sub for Amount {
    type Output = Amount;

    fn sub(self, other: Amount) -> Amount {
        self.checked_sub(other)
            .expect("quantity subtraction overflowed")
    }
}

impl Neg for Amount {
    type Output = Amount;

    fn neg(self) -> Amount {
        let nanos = self
            .nanos
            .checked_neg()
            .expect("quantity negation overflowed");
        Self::from_nanos(nanos, self.format)
    }
}

impl fmt::Display for Amount {
    /// Kubernetes's canonical text for the value in its format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&canonical::canonical(self.nanos, self.format))
    }
}

impl FromStr for Amount {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl serde::Serialize for Quantity {
    /// The text, as a JSON/YAML string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.string)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    /// A string (surrounding whitespace trimmed) or a number (`cpu: 2`,
    /// `memory: 1e3`), validated; `null` reads as `"0"`, as in Kubernetes.
    /// Needs a self-describing format (JSON, YAML).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// Reads a [`Quantity`] from a string or a number.
struct QuantityVisitor;

impl QuantityVisitor {
    fn text<E: serde::de::Error>(text: &str) -> Result<Quantity, E> {
        Quantity::parse(text.trim()).map_err(E::custom)
    }
}

impl serde::de::Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quantity such as \"250m\" or \"64Mi\", or a number")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Quantity, E> {
        Self::text(text)
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Quantity, E> {
        Self::text(&value.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Quantity, E> {
        Self::text(&value.to_string())
    }

    fn visit_i128<E: serde::de::Error>(self, value: i128) -> Result<Quantity, E> {
        Self::text(&value.to_string())
    }

    fn visit_u128<E: serde::de::Error>(self, value: u128) -> Result<Quantity, E> {
        Self::text(&value.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Quantity, E> {
        if !value.is_finite() {
            return Err(E::custom(format!(
                "invalid quantity {value}: not a finite number"
            )));
        }
        // `Display` for f64 writes the shortest decimal that reads back as the
        // same float, never in exponent form: valid quantity text.
        Self::text(&value.to_string())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Quantity, E> {
        Ok(Quantity::zero())
    }
}
