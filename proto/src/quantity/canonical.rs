//! [`Amount`](super::Amount) → Kubernetes's canonical text.
//!
//! The rules, as Kubernetes's `Quantity.CanonicalizeBytes`:
//!
//! * Zero is `0` in every format.
//! * Binary SI: a whole number of units of magnitude at least 1024 is written
//!   with the largest binary suffix that divides it exactly (`1536Mi`, `2Gi`);
//!   anything else falls back to decimal SI.
//! * Decimal SI and decimal exponent: the value is `mantissa × 10^exponent` with
//!   the exponent the largest multiple of three that keeps the mantissa whole
//!   (`1500`, `1500m`, `2k`); decimal SI names the exponent with a suffix
//!   (`n` … `E`), decimal exponent writes `e<exponent>` (omitted for zero).

use super::{Format, NANOS_PER_UNIT};

/// Binary suffixes by power of 1024.
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// The largest exponent with a decimal SI suffix (`E`).
const MAX_SI_EXPONENT: i32 = 18;

/// The canonical text of `nanos` nano-units in `format`.
pub(super) fn canonical(nanos: i128, format: Format) -> String {
    if nanos == 0 {
        return "0".to_owned();
    }
    match format {
        Format::BinarySI if nanos.abs() >= 1024 * NANOS_PER_UNIT && nanos % NANOS_PER_UNIT == 0 => {
            binary(nanos / NANOS_PER_UNIT)
        }
        Format::BinarySI | Format::DecimalSI => decimal(nanos, false),
        Format::DecimalExponent => decimal(nanos, true),
    }
}

/// `units` (non-zero) with the largest binary suffix that divides it.
fn binary(mut units: i128) -> String {
    let mut power = 0;
    while power + 1 < BINARY_SUFFIXES.len() && units % 1024 == 0 {
        units /= 1024;
        power += 1;
    }
    format!("{units}{}", BINARY_SUFFIXES[power])
}

/// `nanos` (non-zero) as a whole mantissa and a multiple-of-three exponent.
fn decimal(nanos: i128, exponent_form: bool) -> String {
    let mut mantissa = nanos;
    let mut exponent: i32 = -9;
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    // Move up to two powers of ten back into the mantissa. This cannot
    // overflow: the result still divides `nanos`, as -9 is a multiple of 3.
    let excess = exponent.rem_euclid(3);
    mantissa *= 10_i128.pow(excess as u32);
    exponent -= excess;

    if exponent_form {
        return if exponent == 0 {
            mantissa.to_string()
        } else {
            format!("{mantissa}e{exponent}")
        };
    }
    if exponent > MAX_SI_EXPONENT {
        // Beyond `E` there is no suffix: write a multiple of `E` (cannot
        // overflow, as above).
        mantissa *= 10_i128.pow((exponent - MAX_SI_EXPONENT) as u32);
        exponent = MAX_SI_EXPONENT;
    }
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    format!("{mantissa}{suffix}")
}
