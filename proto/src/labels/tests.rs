use std::collections::BTreeMap;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(text: &str) -> Selector {
    Selector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn only(text: &str) -> Requirement {
    let selector = parse(text);
    assert_eq!(selector.requirements().len(), 1, "{text}");
    selector.requirements()[0].clone()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

#[test]
fn parses_each_operator() {
    let table: &[(&str, &str, Operator, &[&str])] = &[
        ("a=b", "a", Operator::Equals, &["b"]),
        ("a==b", "a", Operator::Equals, &["b"]),
        ("a!=b", "a", Operator::NotEquals, &["b"]),
        ("e in (y,x)", "e", Operator::In, &["x", "y"]),
        ("f notin (z)", "f", Operator::NotIn, &["z"]),
        ("g", "g", Operator::Exists, &[]),
        ("!h", "h", Operator::DoesNotExist, &[]),
        ("n>5", "n", Operator::GreaterThan, &["5"]),
        ("n<5", "n", Operator::LessThan, &["5"]),
        (
            "example.com/app=web",
            "example.com/app",
            Operator::Equals,
            &["web"],
        ),
    ];
    for &(text, key, operator, values) in table {
        let requirement = only(text);
        assert_eq!(requirement.key(), key, "{text}");
        assert_eq!(requirement.operator(), operator, "{text}");
        assert_eq!(requirement.values(), strings(values), "{text}");
    }
}

#[test]
fn parses_a_full_selector_sorted_by_key() {
    let selector = parse("g,a=b,e in (x,y),c!=d,f notin (z),!h");
    assert_eq!(selector.to_string(), "a=b,c!=d,e in (x,y),f notin (z),g,!h");
    let keys: Vec<&str> = selector
        .requirements()
        .iter()
        .map(Requirement::key)
        .collect();
    assert_eq!(keys, ["a", "c", "e", "f", "g", "h"]);
}

#[test]
fn tolerates_whitespace() {
    let selector = parse(" a = b ,\tc!= d,e in( x , y ) ,f notin(z),  ! h\n");
    assert_eq!(selector.to_string(), "a=b,c!=d,e in (x,y),f notin (z),!h");
    assert_eq!(parse("a in(x)"), parse("a in (x)"));
}

#[test]
fn empty_string_matches_everything() {
    for text in ["", "  ", "\t\n"] {
        let selector = parse(text);
        assert!(selector.is_empty());
        assert_eq!(selector, Selector::everything());
        assert!(selector.matches(&labels(&[])));
        assert!(selector.matches(&labels(&[("a", "b")])));
        assert_eq!(selector.to_string(), "");
    }
}

#[test]
fn empty_values_follow_kubernetes() {
    // An omitted value is the empty value, as in Kubernetes.
    assert_eq!(only("a=").values(), [""]);
    assert_eq!(only("a==").values(), [""]);
    assert_eq!(only("a!=").values(), [""]);
    assert_eq!(only("a in ()").values(), [""]);
    assert_eq!(only("a notin ()").values(), [""]);
    assert_eq!(only("a in (,)").values(), [""]);
    assert_eq!(only("x in (foo,,baz)").values(), ["", "baz", "foo"]);
    assert_eq!(only("x in (foo,)").values(), ["", "foo"]);
    let selector = parse("x in (foo,,baz),y,z notin ()");
    assert_eq!(selector.to_string(), "x in (,baz,foo),y,z notin ()");
    assert!(selector.matches(&labels(&[("x", "foo"), ("y", "1")])));
    assert!(selector.matches(&labels(&[("x", ""), ("y", "1"), ("z", "q")])));
    assert!(!selector.matches(&labels(&[("x", "foo"), ("y", "1"), ("z", "")])));
    assert!(!selector.matches(&labels(&[("x", "bar"), ("y", "1")])));
}

#[test]
fn keywords_are_fine_as_keys_and_values() {
    assert_eq!(only("in").operator(), Operator::Exists);
    assert_eq!(only("notin=in").values(), ["in"]);
    assert_eq!(only("in in (in, notin)").values(), ["in", "notin"]);
    assert_eq!(only("!notin").key(), "notin");
}

#[test]
fn matching() {
    let pod = labels(&[("app", "web"), ("tier", "frontend"), ("replicas", "3")]);
    let cases = [
        ("app=web", true),
        ("app==web", true),
        ("app=db", false),
        ("missing=x", false),
        ("app!=db", true),
        ("app!=web", false),
        ("missing!=x", true),
        ("tier in (frontend,backend)", true),
        ("tier in (backend)", false),
        ("missing in (x)", false),
        ("tier notin (backend)", true),
        ("tier notin (frontend)", false),
        ("missing notin (x)", true),
        ("app", true),
        ("missing", false),
        ("!missing", true),
        ("!app", false),
        ("replicas>2", true),
        ("replicas>3", false),
        ("replicas<4", true),
        ("app>1", false),
        ("missing<4", false),
        ("app=web,tier=frontend", true),
        ("app=web,tier=backend", false),
        ("app=web,!missing,tier in (frontend)", true),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text).matches(&pod), expected, "{text}");
    }
    let requirement = only("app=web");
    assert!(requirement.matches(&pod));
    let hash_map: std::collections::HashMap<&str, &str> = [("app", "web")].into();
    assert!(parse("app=web").matches_with(|k| hash_map.get(k).copied()));
}

#[test]
fn display_round_trips() {
    let texts = [
        "a=b,c!=d,e in (x,y),f notin (z),g,!h",
        "a==b",
        "x in (foo,,baz),y,z notin ()",
        "k8s.io/name in (b,a,b),k8s.io/name notin (c)",
        "a=,b!=",
        "n>5,m<1",
        "a,a=b,!b",
        "",
    ];
    for text in texts {
        let selector = parse(text);
        let printed = selector.to_string();
        assert_eq!(parse(&printed), selector, "{text} -> {printed}");
        assert_eq!(parse(&printed).to_string(), printed, "{text}");
    }
    // Requirements on one key keep their written order.
    assert_eq!(parse("a=b,a").to_string(), "a=b,a");
    assert_eq!(parse("a,a=b").to_string(), "a,a=b");
    assert_eq!(
        parse("k8s.io/name in (b,a,b)").to_string(),
        "k8s.io/name in (a,b)"
    );
}

#[test]
fn from_parts_matches_the_string_form() {
    let match_labels = labels(&[("app", "web"), ("tier", "frontend")]);
    let expressions = vec![
        (
            "env".to_owned(),
            "In".to_owned(),
            strings(&["prod", "staging"]),
        ),
        ("track".to_owned(), "NotIn".to_owned(), strings(&["canary"])),
        ("owner".to_owned(), "Exists".to_owned(), vec![]),
        ("legacy".to_owned(), "DoesNotExist".to_owned(), vec![]),
    ];
    let selector = Selector::from_parts(&match_labels, expressions).unwrap();
    assert_eq!(
        selector.to_string(),
        "app=web,env in (prod,staging),!legacy,owner,tier=frontend,track notin (canary)"
    );
    assert_eq!(parse(&selector.to_string()), selector);
    assert!(
        Selector::from_parts(&BTreeMap::new(), [])
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        Selector::from_labels(&match_labels).unwrap(),
        parse("app=web,tier=frontend")
    );
}

#[test]
fn from_parts_validates_like_kubernetes() {
    let expression = |operator: &str, values: &[&str]| {
        Selector::from_parts(
            &BTreeMap::new(),
            [("k".to_owned(), operator.to_owned(), strings(values))],
        )
    };
    assert!(matches!(
        expression("In", &[]),
        Err(SelectorError::Values { reason, .. }) if reason.contains("can't be empty")
    ));
    assert!(matches!(
        expression("NotIn", &[]),
        Err(SelectorError::Values { .. })
    ));
    assert!(matches!(
        expression("Exists", &["x"]),
        Err(SelectorError::Values { reason, .. }) if reason.contains("must be empty")
    ));
    assert!(matches!(
        expression("DoesNotExist", &["x"]),
        Err(SelectorError::Values { .. })
    ));
    assert_eq!(
        expression("Gt", &["1"]),
        Err(SelectorError::UnknownOperator {
            key: "k".into(),
            operator: "Gt".into()
        })
    );
    let unknown = expression("in", &["x"]).unwrap_err().to_string();
    assert!(
        unknown.contains(r#""in" is not a valid label selector operator"#),
        "{unknown}"
    );
    assert!(matches!(
        expression("In", &["bad value"]),
        Err(SelectorError::Label { .. })
    ));
    assert!(expression("In", &[""]).is_ok(), "an empty value is valid");

    let bad_key = labels(&[("-app", "web")]);
    assert!(matches!(
        Selector::from_parts(&bad_key, []),
        Err(SelectorError::Label { source, .. }) if source.part == LabelPart::Key
    ));
    let bad_value = labels(&[("app", "web!")]);
    assert!(matches!(
        Selector::from_parts(&bad_value, []),
        Err(SelectorError::Label { source, .. }) if source.part == LabelPart::Value
    ));
}

#[test]
fn requirement_new_validates() {
    assert!(Requirement::new("a", Operator::Equals, ["b"]).is_ok());
    assert!(Requirement::new("a", Operator::Equals, ["b", "c"]).is_err());
    assert!(Requirement::new("a", Operator::Equals, None::<String>).is_err());
    assert!(Requirement::new("a", Operator::GreaterThan, ["x"]).is_err());
    assert!(Requirement::new("a", Operator::LessThan, ["1", "2"]).is_err());
    assert!(Requirement::new("a", Operator::LessThan, ["12"]).is_ok());
    let selector = Selector::new([
        Requirement::new("z", Operator::Exists, None::<String>).unwrap(),
        Requirement::new("a", Operator::In, ["y", "x", "y"]).unwrap(),
    ]);
    assert_eq!(selector.to_string(), "a in (x,y),z");
}

#[test]
fn malformed_selectors_name_position_and_expectation() {
    let error = |text: &str| match Selector::parse(text) {
        Err(e) => e,
        Ok(s) => panic!("{text:?} parsed as {s}"),
    };
    let syntax = |text: &str| match error(text) {
        SelectorError::Syntax {
            position,
            found,
            expected,
        } => (position, found, expected),
        other => panic!("{text:?}: {other}"),
    };

    let (position, found, expected) = syntax("a in (x");
    assert_eq!((position, found.as_str()), (7, "the end of the string"));
    assert_eq!(expected, "',' or ')'");
    assert_eq!(syntax("=b").0, 0);
    assert_eq!(syntax("=b").1, "'='");
    let (position, found, _) = syntax("in (x)");
    assert_eq!((position, found.as_str()), (3, "'('"));
    assert_eq!(syntax("a b").1, "'b'");
    assert_eq!(syntax("a=b c").0, 4);
    assert_eq!(syntax("a=b,").1, "the end of the string");
    assert_eq!(syntax("a=b,,c").0, 4);
    assert_eq!(syntax(",").0, 0);
    assert_eq!(syntax("a in x").1, "'x'");
    assert_eq!(syntax("a in (x y)").1, "'y'");
    assert_eq!(syntax("a=(b)").1, "'('");
    assert_eq!(syntax("!a=b").1, "'='");
    assert_eq!(syntax("!").1, "the end of the string");
    assert_eq!(syntax("a!b").1, "'!'");
    assert_eq!(syntax("a=b)").1, "')'");

    let message = error("a in (x").to_string();
    assert_eq!(
        message,
        "invalid label selector at byte 7: found the end of the string, expected ',' or ')'"
    );

    // Bad keys and values carry Kubernetes's messages.
    let bad_key = error("a,-bad=x");
    assert!(
        matches!(&bad_key, SelectorError::Label { position: Some(2), source } if source.part == LabelPart::Key),
        "{bad_key}"
    );
    assert!(
        bad_key
            .to_string()
            .contains("at byte 2: invalid label key \"-bad\"")
    );
    assert!(matches!(error("a=b@d"), SelectorError::Label { .. }));
    assert!(matches!(
        error("a in (x,y z)"),
        SelectorError::Syntax { .. }
    ));
    assert!(matches!(error("a in (x,-y)"), SelectorError::Label { .. }));
    assert!(matches!(error("n>x"), SelectorError::Values { .. }));
    assert!(matches!(error("n>"), SelectorError::Values { .. }));
    // Gt/Lt values are label values too, so negative bounds are refused.
    assert!(matches!(error("n<-5"), SelectorError::Label { .. }));
    assert!(matches!(error("é=x"), SelectorError::Label { .. }));
}

#[test]
fn requires_exact_match() {
    let selector = parse("a=b,c in (d),e in (f,g),h!=i");
    assert_eq!(selector.requires_exact_match("a"), Some("b"));
    assert_eq!(selector.requires_exact_match("c"), Some("d"));
    assert_eq!(selector.requires_exact_match("e"), None);
    assert_eq!(selector.requires_exact_match("h"), None);
    assert_eq!(selector.requires_exact_match("x"), None);
}

#[test]
fn label_key_validation() {
    for key in [
        "a",
        "app",
        "A-b_c.d",
        "app.kubernetes.io/name",
        "example.com/MyName",
        "1-2",
        &"k".repeat(63),
    ] {
        assert_eq!(validate_label_key(key), Ok(()), "{key}");
    }
    let bad = [
        ("", "name part must be non-empty"),
        ("-a", "name part must consist of alphanumeric characters"),
        ("a-", "must start and end with an alphanumeric character"),
        ("a b", "name part must consist"),
        ("/a", "prefix part must be non-empty"),
        ("a/", "name part must be non-empty"),
        (
            "Example.com/a",
            "prefix part a lowercase RFC 1123 subdomain",
        ),
        ("a/b/c", "a qualified name must consist"),
        (
            "ex_ample.com/a",
            "prefix part a lowercase RFC 1123 subdomain",
        ),
        ("a..b/c", "prefix part a lowercase RFC 1123 subdomain"),
    ];
    for (key, message) in bad {
        let error = validate_label_key(key).unwrap_err();
        assert_eq!(error.part, LabelPart::Key);
        assert!(error.to_string().contains(message), "{key}: {error}");
    }
    let long = validate_label_key(&"k".repeat(64)).unwrap_err();
    assert_eq!(
        long.reasons,
        ["name part must be no more than 63 characters"]
    );
    let long_prefix = format!("{}/a", "p".repeat(254));
    assert!(
        validate_label_key(&long_prefix)
            .unwrap_err()
            .to_string()
            .contains("prefix part must be no more than 253 characters")
    );
}

#[test]
fn label_value_validation() {
    for value in ["", "a", "my_value", "12345", "A.b-c_D", &"v".repeat(63)] {
        assert_eq!(validate_label_value(value), Ok(()), "{value}");
    }
    for value in ["-a", "a-", "_", "a b", "a/b", "é"] {
        let error = validate_label_value(value).unwrap_err();
        assert_eq!(error.part, LabelPart::Value);
        assert!(
            error
                .to_string()
                .contains("a valid label must be an empty string"),
            "{value}: {error}"
        );
    }
    let long = validate_label_value(&"v".repeat(64)).unwrap_err();
    assert_eq!(long.reasons, ["must be no more than 63 characters"]);
    assert_eq!(label_value_errors("ok"), Vec::<String>::new());
    assert_eq!(qualified_name_errors("ok"), Vec::<String>::new());
    assert_eq!(
        dns1123_subdomain_errors("example.com"),
        Vec::<String>::new()
    );
    assert_eq!(dns1123_subdomain_errors("Example.com").len(), 1);
}
