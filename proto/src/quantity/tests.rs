use std::cmp::Ordering;

use super::*;

fn q(text: &str) -> Quantity {
    Quantity::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn nanos(text: &str) -> i128 {
    Amount::parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .nanos()
}

fn canonical(text: &str) -> String {
    q(text).to_canonical().string
}

#[test]
fn parses_every_suffix() {
    const G: i128 = NANOS_PER_UNIT;
    let table: &[(&str, i128, Format)] = &[
        ("0", 0, Format::DecimalSI),
        ("1", G, Format::DecimalSI),
        ("5n", 5, Format::DecimalSI),
        ("4u", 4_000, Format::DecimalSI),
        ("250m", 250_000_000, Format::DecimalSI),
        ("8k", 8_000 * G, Format::DecimalSI),
        ("7M", 7_000_000 * G, Format::DecimalSI),
        ("6G", 6 * G * G, Format::DecimalSI),
        ("5T", 5_000 * G * G, Format::DecimalSI),
        ("2P", 2_000_000 * G * G, Format::DecimalSI),
        ("1E", G * G * G, Format::DecimalSI),
        ("1Ki", 1024 * G, Format::BinarySI),
        ("64Mi", (64 << 20) * G, Format::BinarySI),
        ("6Gi", (6 << 30) * G, Format::BinarySI),
        ("5Ti", (5 << 40) * G, Format::BinarySI),
        ("4Pi", (4 << 50) * G, Format::BinarySI),
        ("3Ei", (3 << 60) * G, Format::BinarySI),
        ("2e3", 2_000 * G, Format::DecimalExponent),
        ("1.5E-3", 1_500_000, Format::DecimalExponent),
        ("1.3E+6", 1_300_000 * G, Format::DecimalExponent),
        ("0.5e-2", 5_000_000, Format::DecimalExponent),
    ];
    for &(text, expected, format) in table {
        let amount = Amount::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(amount.nanos(), expected, "{text}");
        assert_eq!(amount.format(), format, "{text}");
    }
}

#[test]
fn parses_signs_and_fractions() {
    assert_eq!(nanos("+1"), NANOS_PER_UNIT);
    assert_eq!(nanos("-1"), -NANOS_PER_UNIT);
    assert_eq!(nanos("0.1"), 100_000_000);
    assert_eq!(nanos("1.5Gi"), (3_i128 << 29) * NANOS_PER_UNIT);
    assert_eq!(nanos("0.5Mi"), 524_288 * NANOS_PER_UNIT);
    assert_eq!(nanos("100.035Ki"), 102_435_840_000_000);
    assert_eq!(nanos(".001"), 1_000_000);
    assert_eq!(nanos("1."), NANOS_PER_UNIT);
    assert_eq!(nanos("1.G"), NANOS_PER_UNIT * NANOS_PER_UNIT);
    assert_eq!(nanos("."), 0);
    assert_eq!(nanos("-.5"), -500_000_000);
    assert_eq!(nanos("000123"), 123 * NANOS_PER_UNIT);
    assert_eq!(nanos("0e999999"), 0);
}

#[test]
fn rounds_below_a_nano_unit_away_from_zero() {
    assert_eq!(nanos("3.001n"), 4);
    assert_eq!(nanos("1.1E-9"), 2);
    assert_eq!(nanos("0.0000000001"), 1);
    assert_eq!(nanos("0.00000012345"), 124);
    assert_eq!(nanos("-0.1n"), -1);
    assert_eq!(nanos("1e-999999"), 1);
    // A fraction of a unit in binary SI rounds up and turns decimal.
    let tiny = Amount::parse("0.000000000001Ki").unwrap();
    assert_eq!((tiny.nanos(), tiny.format()), (2, Format::DecimalSI));
}

#[test]
fn caps_binary_values_at_int64_max_like_kubernetes() {
    assert_eq!(q("9Ei").value(), i64::MAX);
    assert_eq!(q("9223372036854775807Ki").value(), i64::MAX);
    assert_eq!(q("-9Ei").value(), -i64::MAX);
    // Decimal values are not capped.
    assert_eq!(nanos("12E"), 12 * NANOS_PER_UNIT.pow(3));
}

#[test]
fn refuses_malformed_text() {
    let malformed = [
        "",
        "1.2.3",
        "12Mb",
        "Mi",
        "1 Gi",
        "--1",
        " 1",
        "1 ",
        "1.1.M",
        "1+1.0M",
        "0.1mi",
        "0.1am",
        "aoeu",
        ".5i",
        "1i",
        "-3.01i",
        "-3.01e-",
        "1e",
        "1e3x",
        "1e3.5",
        "e3",
        "-",
        "+",
        "1ki",
        "1KI",
        "1e99999999999",
        "1e40",
        "1Ei1",
        "1\u{e9}",
    ];
    for text in malformed {
        assert!(Quantity::parse(text).is_err(), "{text:?} parsed");
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let message = |text: &str| Quantity::parse(text).unwrap_err().to_string();
    assert!(matches!(Quantity::parse(""), Err(QuantityError::Empty)));
    assert_eq!(
        Quantity::parse("12Mb"),
        Err(QuantityError::UnknownSuffix {
            text: "12Mb".into(),
            suffix: "Mb".into()
        })
    );
    assert!(
        message("1.2.3").contains(r#""1.2.3": found '.' at byte 3"#),
        "{}",
        message("1.2.3")
    );
    assert!(message("1 Gi").contains("found ' ' at byte 1"));
    assert!(message("--1").contains("found '-' at byte 1, expected a digit or '.'"));
    assert!(message("Mi").contains("found 'M' at byte 0"));
    assert!(message("1e-").contains("end of input at byte 3"));
    assert!(matches!(
        Quantity::parse("1e40"),
        Err(QuantityError::OutOfRange { .. })
    ));
    assert!(matches!(
        Quantity::parse("1e99999999999"),
        Err(QuantityError::OutOfRange { .. })
    ));
}

#[test]
fn canonical_form_follows_kubernetes() {
    let table = [
        ("0", "0"),
        ("0Mi", "0"),
        ("-0", "0"),
        ("0.5", "500m"),
        ("0.1", "100m"),
        ("1000m", "1"),
        ("1.08", "1080m"),
        ("250m", "250m"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("1.5k", "1500"),
        ("10.035M", "10035k"),
        ("1G", "1G"),
        ("1000M", "1G"),
        ("0.0000001", "100n"),
        ("3.001n", "4n"),
        ("+1", "1"),
        ("-1", "-1"),
        ("-1500m", "-1500m"),
        // Decimal exponents stay exponents (`2e3` is canonical in Kubernetes).
        ("2e3", "2e3"),
        ("1E3", "1e3"),
        ("1.5e3", "1500"),
        ("300e6", "300e6"),
        ("3e8", "300e6"),
        ("1e-3", "1e-3"),
        ("80e-3", "80e-3"),
        ("0e5", "0"),
        // Binary stays binary when exact and at least 1Ki.
        ("1024", "1024"),
        ("1Ki", "1Ki"),
        ("1024Ki", "1Mi"),
        ("2048Ki", "2Mi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("1000Mi", "1000Mi"),
        ("1025Ki", "1025Ki"),
        ("1.5Ki", "1536"),
        ("0.5Ki", "512"),
        ("-1Gi", "-1Gi"),
        ("1.0001Ki", "1024102400u"),
        ("0.000000000001Ki", "2n"),
        ("1048576Ei", "9223372036854775807"),
        // Above `E` decimal SI writes multiples of `E`.
        ("1e21", "1e21"),
        ("1000E", "1000E"),
        ("1000000E", "1000000E"),
    ];
    for (text, expected) in table {
        assert_eq!(canonical(text), expected, "canonical({text})");
        // The canonical form parses back to the same value.
        assert_eq!(nanos(expected), nanos(text), "{text} vs {expected}");
    }
}

#[test]
fn canonicalize_rewrites_valid_text_only() {
    let mut quantity = q("0.5");
    quantity.canonicalize();
    assert_eq!(quantity.as_str(), "500m");
    let mut malformed = Quantity {
        string: "12Mb".into(),
    };
    malformed.canonicalize();
    assert_eq!(malformed.as_str(), "12Mb");
    assert_eq!(malformed.to_canonical(), malformed);
}

#[test]
fn value_and_milli_value_round_away_from_zero() {
    assert_eq!(q("250m").milli_value(), 250);
    assert_eq!(q("2").milli_value(), 2000);
    assert_eq!(q("0.1m").milli_value(), 1);
    assert_eq!(q("-0.1m").milli_value(), -1);
    assert_eq!(q("1.5").value(), 2);
    assert_eq!(q("-1.5").value(), -2);
    assert_eq!(q("250m").value(), 1);
    assert_eq!(q("64Mi").value(), 64 << 20);
    assert_eq!(q("1e3").value(), 1000);
    assert_eq!(q("1E").milli_value(), i64::MAX, "saturates");
    assert_eq!(q("-1E").milli_value(), i64::MIN, "saturates");
}

#[test]
fn compares_by_value_across_suffixes() {
    assert_eq!(q("1Gi").cmp_value(&q("1000Mi")), Ordering::Greater);
    assert_eq!(q("1000m").cmp_value(&q("1")), Ordering::Equal);
    assert_eq!(q("1k").cmp_value(&q("1e3")), Ordering::Equal);
    assert_eq!(q("1Ki").cmp_value(&q("1k")), Ordering::Greater);
    assert_eq!(q("10000T").cmp_value(&q("100Gi")), Ordering::Greater);
    assert_eq!(q("50m").cmp_value(&q("100m")), Ordering::Less);
    assert_eq!(q("-1").cmp_value(&q("0")), Ordering::Less);
    assert_ne!(q("1000m"), q("1"), "== compares the text");
    assert_eq!(Amount::parse("1000m"), Amount::parse("1"));
    assert!(Amount::parse("1Gi").unwrap() > Amount::parse("1G").unwrap());
    let mut sorted: Vec<Amount> = ["1Gi", "500m", "1", "1e9", "2Ki"]
        .iter()
        .map(|t| Amount::parse(t).unwrap())
        .collect();
    sorted.sort();
    let texts: Vec<String> = sorted.iter().map(ToString::to_string).collect();
    assert_eq!(texts, ["500m", "1", "2Ki", "1e9", "1Gi"]);
}

#[test]
fn is_zero() {
    for zero in ["0", "0Mi", "-0", "0.0", "0e3", "."] {
        assert!(q(zero).is_zero(), "{zero}");
    }
    assert!(!q("1n").is_zero());
    assert!(Quantity::zero().is_zero());
}

#[test]
fn arithmetic_across_suffixes() {
    let sum = |a: &str, b: &str| q(a).checked_add(&q(b)).unwrap().string;
    let difference = |a: &str, b: &str| q(a).checked_sub(&q(b)).unwrap().string;
    assert_eq!(sum("1Gi", "512Mi"), "1536Mi");
    assert_eq!(sum("500m", "1"), "1500m");
    assert_eq!(sum("1", "500m"), "1500m");
    assert_eq!(sum("1k", "1Ki"), "2024");
    assert_eq!(sum("1Ki", "1k"), "2024");
    assert_eq!(sum("1Gi", "1Gi"), "2Gi");
    assert_eq!(difference("1Gi", "1Gi"), "0");
    assert_eq!(difference("1", "1500m"), "-500m");
    assert_eq!(difference("2Gi", "1Gi"), "1Gi");
    // A zero left operand takes the other's format, so the suffix survives.
    assert_eq!(sum("0", "1Gi"), "1Gi");
    assert_eq!(sum("1Gi", "0"), "1Gi");
    assert_eq!(difference("0", "1Gi"), "-1Gi");
    assert_eq!(sum("0", "100m"), "100m");

    let a = Amount::parse("1Gi").unwrap();
    let b = Amount::parse("1000Mi").unwrap();
    assert_eq!((a - b).nanos(), (24_i128 << 20) * NANOS_PER_UNIT);
    assert_eq!((a + b).to_string(), "2024Mi");
    assert_eq!((-a).to_string(), "-1Gi");

    let huge = Amount::from_nanos(i128::MAX, Format::DecimalSI);
    assert_eq!(
        huge.checked_add(Amount::from_units(1, Format::DecimalSI)),
        None
    );
    assert_eq!(q("1").checked_add(&Quantity::default()), None);
    assert_eq!(Quantity::default().checked_sub(&q("1")), None);
}

#[test]
fn constructors_write_canonical_text() {
    assert_eq!(Quantity::new(2048, Format::BinarySI).as_str(), "2Ki");
    assert_eq!(Quantity::new(1000, Format::DecimalSI).as_str(), "1k");
    assert_eq!(
        Quantity::new_milli(1500, Format::DecimalSI).as_str(),
        "1500m"
    );
    assert_eq!(Quantity::new_milli(2000, Format::DecimalSI).as_str(), "2");
    assert_eq!(Quantity::new(5, Format::BinarySI).as_str(), "5");
    assert_eq!(
        Amount::from_milli(-250, Format::DecimalSI).to_string(),
        "-250m"
    );
}

#[test]
fn malformed_text_reads_as_zero_in_lenient_accessors() {
    let malformed = Quantity::default();
    assert!(malformed.validate().is_err());
    assert_eq!(malformed.value(), 0);
    assert!(malformed.is_zero());
    assert_eq!(malformed.cmp_value(&q("1")), Ordering::Less);
}

#[test]
fn serde_keeps_the_text() {
    let quantity: Quantity = serde_json::from_str(r#""1.5Gi""#).unwrap();
    assert_eq!(quantity.as_str(), "1.5Gi");
    assert_eq!(serde_json::to_string(&quantity).unwrap(), r#""1.5Gi""#);
    let trimmed: Quantity = serde_json::from_str(r#"" 64Mi ""#).unwrap();
    assert_eq!(trimmed.as_str(), "64Mi");
}

#[test]
fn serde_reads_numbers() {
    let read = |json: &str| serde_json::from_str::<Quantity>(json).unwrap();
    assert_eq!(read("2").as_str(), "2");
    assert_eq!(read("-2").as_str(), "-2");
    assert_eq!(read("0.5").as_str(), "0.5");
    assert_eq!(read("1e3").as_str(), "1000");
    assert_eq!(read("1e3").milli_value(), 1_000_000);
    assert_eq!(read("null").as_str(), "0");

    #[derive(serde::Deserialize)]
    struct Resources {
        cpu: Quantity,
        memory: Quantity,
    }
    let resources: Resources = serde_json::from_str(r#"{"cpu": 2, "memory": "64Mi"}"#).unwrap();
    assert_eq!(resources.cpu.milli_value(), 2000);
    assert_eq!(resources.memory.value(), 64 << 20);
    let yaml: Resources = serde_yaml_ng::from_str("cpu: 250m\nmemory: 1e3\n").unwrap();
    assert_eq!(yaml.cpu.milli_value(), 250);
    assert_eq!(yaml.memory.value(), 1000);
}

#[test]
fn serde_refuses_malformed_text_naming_it() {
    let error = serde_json::from_str::<Quantity>(r#""12Mb""#).unwrap_err();
    assert!(error.to_string().contains(r#""12Mb""#), "{error}");
    assert!(serde_json::from_str::<Quantity>(r#""""#).is_err());
    assert!(serde_json::from_str::<Quantity>("true").is_err());
    assert!(serde_json::from_str::<Quantity>("1e300").is_err());
}

#[test]
fn protobuf_round_trip() {
    use prost::Message;
    let quantity = q("250m");
    let bytes = quantity.encode_to_vec();
    assert_eq!(Quantity::decode(bytes.as_slice()).unwrap(), quantity);
}
