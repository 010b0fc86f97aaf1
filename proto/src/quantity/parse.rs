//! Quantity text → [`Amount`]: the grammar in the [module docs](super), exact
//! arithmetic on the digits, and Kubernetes's rounding and capping rules.

use super::{Amount, Format, NANOS_PER_UNIT, QuantityError};

/// The magnitude a suffix multiplies the number by.
#[derive(Clone, Copy)]
enum Multiplier {
    /// `10^exponent`.
    Decimal(i64),
    /// `2^bits`, `bits` a multiple of 10 up to 60.
    Binary(u32),
}

/// Parses quantity text into its exact value.
pub(super) fn parse(text: &str) -> Result<Amount, QuantityError> {
    if text.is_empty() {
        return Err(QuantityError::Empty);
    }
    let bytes = text.as_bytes();
    let mut pos = 0;
    let negative = match bytes[0] {
        b'-' => {
            pos = 1;
            true
        }
        b'+' => {
            pos = 1;
            false
        }
        _ => false,
    };

    let integer_start = pos;
    pos = skip_digits(bytes, pos);
    let integer = &text[integer_start..pos];
    let mut fraction = "";
    let mut point = false;
    if bytes.get(pos) == Some(&b'.') {
        point = true;
        let fraction_start = pos + 1;
        pos = skip_digits(bytes, fraction_start);
        fraction = &text[fraction_start..pos];
    }
    // Kubernetes reads a lone "." as zero; a number needs a digit or a point.
    if integer.is_empty() && !point {
        return Err(syntax(text, pos, "a digit or '.'"));
    }

    let (multiplier, format) = interpret_suffix(text, pos)?;
    let out_of_range = |reason| QuantityError::OutOfRange {
        text: text.to_owned(),
        reason,
    };
    let magnitude = match multiplier {
        Multiplier::Decimal(exponent) => {
            let digits = format!("{integer}{fraction}");
            // nanos = digits × 10^(exponent − fraction digits + 9)
            let shift = exponent - fraction.len() as i64 + 9;
            scale_decimal(&digits, shift)
                .ok_or_else(|| out_of_range("the value is too large (more than about 1.7e29)"))?
        }
        Multiplier::Binary(bits) => {
            let fraction = fraction.trim_end_matches('0');
            let digits = format!("{integer}{fraction}");
            scale_binary(&digits, fraction.len(), bits).ok_or_else(|| {
                out_of_range("the value has too many significant digits or is too large")
            })?
        }
    };

    let mut format = format;
    let mut magnitude = magnitude;
    if format == Format::BinarySI {
        // Kubernetes caps binary values at the int64 maximum…
        let cap = i64::MAX as i128 * NANOS_PER_UNIT;
        magnitude = magnitude.min(cap);
        // …and writes fractions of one unit in decimal.
        if magnitude > 0 && magnitude < NANOS_PER_UNIT {
            format = Format::DecimalSI;
        }
    }
    let nanos = if negative { -magnitude } else { magnitude };
    Ok(Amount::from_nanos(nanos, format))
}

/// The position after the run of ASCII digits starting at `pos`.
fn skip_digits(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    pos
}

/// A syntax error at byte `pos` of `text`.
fn syntax(text: &str, pos: usize, expected: &'static str) -> QuantityError {
    let found = match text[pos..].chars().next() {
        Some(c) => format!("{c:?}"),
        None => "end of input".to_owned(),
    };
    QuantityError::Syntax {
        text: text.to_owned(),
        position: pos,
        found,
        expected,
    }
}

/// Reads the suffix that starts at byte `pos` and runs to the end.
fn interpret_suffix(text: &str, pos: usize) -> Result<(Multiplier, Format), QuantityError> {
    let suffix = &text[pos..];
    let decimal = |exponent| Ok((Multiplier::Decimal(exponent), Format::DecimalSI));
    let binary = |bits| Ok((Multiplier::Binary(bits), Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ if suffix.len() > 1 && suffix.starts_with(['e', 'E']) => {
            let exponent = parse_exponent(text, pos + 1)?;
            Ok((Multiplier::Decimal(exponent), Format::DecimalExponent))
        }
        _ => match suffix.find(|c: char| !c.is_ascii_alphabetic()) {
            Some(offset) => Err(syntax(
                text,
                pos + offset,
                "a digit, '.', a unit suffix (Ki, Mi, …, n, u, m, k, M, …) or an exponent (e3)",
            )),
            None => Err(QuantityError::UnknownSuffix {
                text: text.to_owned(),
                suffix: suffix.to_owned(),
            }),
        },
    }
}

/// Reads the signed exponent that starts at byte `pos` and runs to the end.
fn parse_exponent(text: &str, pos: usize) -> Result<i64, QuantityError> {
    let bytes = text.as_bytes();
    let mut digits_start = pos;
    if matches!(bytes.get(pos), Some(b'+' | b'-')) {
        digits_start += 1;
    }
    let digits_end = skip_digits(bytes, digits_start);
    if digits_end == digits_start {
        return Err(syntax(text, digits_start, "a digit in the exponent"));
    }
    if digits_end < text.len() {
        return Err(syntax(
            text,
            digits_end,
            "a digit in the exponent or the end",
        ));
    }
    // Bounded like Kubernetes's int32 scale; anything near the bound is refused
    // or rounded long before the arithmetic could overflow an i64.
    text[pos..]
        .parse::<i32>()
        .map(i64::from)
        .map_err(|_| QuantityError::OutOfRange {
            text: text.to_owned(),
            reason: "the exponent is out of range",
        })
}

/// `⌈digits × 10^shift⌉` for a string of ASCII digits; `None` if it does not
/// fit in an `i128`.
fn scale_decimal(digits: &str, shift: i64) -> Option<i128> {
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if shift >= 0 {
        // i128::MAX has 39 digits.
        if digits.len() as i64 + shift > 39 {
            return None;
        }
        return parse_digits(digits)?.checked_mul(10_i128.checked_pow(shift as u32)?);
    }
    let dropped_count = shift.unsigned_abs();
    if dropped_count >= digits.len() as u64 {
        // A non-zero value smaller than one nano-unit rounds up to one.
        return Some(1);
    }
    let (kept, dropped) = digits.split_at(digits.len() - dropped_count as usize);
    let kept = parse_digits(kept)?;
    if dropped.bytes().any(|b| b != b'0') {
        kept.checked_add(1)
    } else {
        Some(kept)
    }
}

/// `⌈digits / 10^fraction_digits × 2^bits × 10^9⌉`; `None` if the digits or
/// an intermediate product do not fit in an `i128`.
fn scale_binary(digits: &str, fraction_digits: usize, bits: u32) -> Option<i128> {
    let scaled = parse_digits(digits.trim_start_matches('0'))?.checked_mul(1_i128 << bits)?;
    if fraction_digits <= 9 {
        return scaled.checked_mul(10_i128.pow(9 - fraction_digits as u32));
    }
    let divisor = u32::try_from(fraction_digits - 9)
        .ok()
        .and_then(|power| 10_i128.checked_pow(power));
    match divisor {
        Some(divisor) => Some(super::div_away_from_zero(scaled, divisor)),
        // The divisor exceeds any i128, so the quotient is below one nano-unit.
        None => Some(i128::from(scaled != 0)),
    }
}

/// The value of a string of ASCII digits (empty is zero); `None` on overflow.
fn parse_digits(digits: &str) -> Option<i128> {
    digits.bytes().try_fold(0_i128, |value, digit| {
        value.checked_mul(10)?.checked_add(i128::from(digit - b'0'))
    })
}
