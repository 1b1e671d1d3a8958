//! The parser on PostgREST's syntax, as supabase-js and supabase-py write it.

use super::*;

fn col(name: &str) -> SelectItem {
    SelectItem::Column {
        field: Field::plain(name),
        alias: None,
        cast: None,
        aggregate: None,
        aggregate_cast: None,
    }
}

#[test]
fn select_with_alias_cast_embed_and_spread() {
    let s = parse_select("id,author:name,price::text,*").unwrap();
    assert_eq!(s.len(), 4);
    assert_eq!(s[0], col("id"));
    assert!(matches!(&s[1], SelectItem::Column { alias: Some(a), .. } if a == "author"));
    assert!(matches!(&s[2], SelectItem::Column { cast: Some(c), .. } if c == "text"));
    let s = parse_select(
        "title,writer:authors!books_author_id_fkey!inner(name,books(id)),...tags(name)",
    )
    .unwrap();
    let SelectItem::Embed(e) = &s[1] else {
        panic!("{s:?}")
    };
    assert_eq!(e.name, "authors");
    assert_eq!(e.alias.as_deref(), Some("writer"));
    assert_eq!(e.hint.as_deref(), Some("books_author_id_fkey"));
    assert_eq!(e.join, Some(JoinType::Inner));
    assert!(matches!(&e.select[1], SelectItem::Embed(b) if b.name == "books"));
    assert!(matches!(&s[2], SelectItem::Embed(t) if t.spread && t.name == "tags"));
    assert!(parse_select("a::text;drop").is_err());
    assert!(parse_select("authors(name").is_err());
}

#[test]
fn select_aggregates_and_json_paths() {
    let s = parse_select("total:amount.sum()::int,count(),data->a->>b").unwrap();
    assert!(
        matches!(&s[0], SelectItem::Column { aggregate: Some(Aggregate::Sum), aggregate_cast: Some(c), alias: Some(a), .. } if c == "int" && a == "total")
    );
    assert_eq!(
        s[1],
        SelectItem::Count {
            alias: None,
            cast: None
        }
    );
    let SelectItem::Column { field, .. } = &s[2] else {
        panic!()
    };
    assert_eq!(field.name, "data");
    assert_eq!(field.json.len(), 2);
    assert!(!field.json[0].text && field.json[1].text);
    assert_eq!(field.default_alias(), "b");
}

#[test]
fn filters_and_lists() {
    let f = parse_filter(Field::plain("age"), "not.gte.18", false).unwrap();
    assert!(f.negated);
    assert!(matches!(
        f.predicate,
        Predicate::Compare { op: Op::Gte, ref value, .. } if value == "18"
    ));
    let f = parse_filter(Field::plain("name"), "in.(a,\"b,c\",d)", false).unwrap();
    assert_eq!(
        f.predicate,
        Predicate::In(vec!["a".into(), "b,c".into(), "d".into()])
    );
    let f = parse_filter(Field::plain("t"), "like(any).{a*,*b}", false).unwrap();
    assert!(
        matches!(f.predicate, Predicate::Compare { quantifier: Some(Quantifier::Any), ref value, .. } if value == "{a%,%b}")
    );
    let f = parse_filter(Field::plain("t"), "wfts(english).cat dog", false).unwrap();
    assert!(
        matches!(f.predicate, Predicate::Fts { kind: Fts::Websearch, language: Some(ref l), .. } if l == "english")
    );
    assert!(parse_filter(Field::plain("a"), "bogus.1", false).is_err());
    assert!(parse_filter(Field::plain("a"), "eq", false).is_err());
    assert!(parse_filter(Field::plain("a"), "is.maybe", false).is_err());
    assert!(parse_filter(Field::plain("a"), "fts(en;drop).x", false).is_err());
    assert!(parse_filter(Field::plain("a"), "gt(any).1", false).is_err());
}

#[test]
fn logic_trees_nest() {
    let (q, _) = parse_query(
        "or=(a.eq.1,and(b.gt.2,c.is.null),not.or(d.in.(1,2),e.eq.\"x,y\"))&books.not.and=(id.lt.3)",
        false,
    )
    .unwrap();
    let (path, Cond::Logic { or, children, .. }) = &q.filters[0] else {
        panic!()
    };
    assert!(path.is_empty() && *or && children.len() == 3);
    let Cond::Logic {
        negated, children, ..
    } = &children[2]
    else {
        panic!()
    };
    assert!(*negated);
    assert!(
        matches!(&children[1], Cond::Filter(Filter { predicate: Predicate::Compare { value, .. }, .. }) if value == "x,y")
    );
    assert!(
        matches!(&q.filters[1], (p, Cond::Logic { negated: true, or: false, .. }) if p == &["books"])
    );
    assert!(parse_query("or=(a.eq.1", false).is_err());
    assert!(parse_query("or=a.eq.1", false).is_err());
}

#[test]
fn quoted_columns_from_supabase_py() {
    assert_eq!(
        parse_column_list("\"id\",\"name\"").unwrap(),
        vec!["id", "name"]
    );
}

#[test]
fn order_terms() {
    let o = parse_order("a.desc.nullslast,b,author(name).desc,data->>x.asc").unwrap();
    assert!(o[0].descending && o[0].nulls == Some(Nulls::Last));
    assert!(!o[1].descending);
    assert_eq!(o[2].relation.as_deref(), Some("author"));
    assert!(o[2].descending);
    assert_eq!(o[3].field.json[0].key, "x");
    assert!(parse_order("a.sideways").is_err());
}

#[test]
fn nested_parameters_have_paths() {
    let (q, x) = parse_query(
        "select=*,books(*)&books.order=id.desc&books.limit=2&books.title=eq.x&limit=1&columns=\"a\",b",
        false,
    )
    .unwrap();
    assert_eq!(q.limit_at(&["books".to_string()]), Some(2));
    assert_eq!(q.limit_at(&[]), Some(1));
    assert_eq!(q.order[0].0, vec!["books"]);
    assert_eq!(q.filters[0].0, vec!["books"]);
    assert_eq!(x.columns.unwrap(), vec!["a", "b"]);
}

#[test]
fn query_decoding() {
    let q = query_pairs("select=id%2Ctitle&title=eq.a+b&done=eq.false");
    assert_eq!(q[0], ("select".into(), "id,title".into()));
    assert_eq!(q[1], ("title".into(), "eq.a b".into()));
}

#[test]
fn bulk_bodies_need_uniform_keys_unless_columns_given() {
    let body = br#"[{"a":1},{"a":2,"b":3}]"#;
    assert!(matches!(
        parse_json_payload(body, true),
        Err(RestError::InvalidBody(_))
    ));
    let p = parse_json_payload(body, false).unwrap();
    assert_eq!(p.rows, 2);
    assert!(!p.single);
}

#[test]
fn csv_bodies() {
    let p = parse_csv_payload(b"id,name\n1,\"a,b\"\n2,NULL\n").unwrap();
    assert_eq!(p.keys, vec!["id", "name"]);
    assert_eq!(
        p.json,
        r#"[{"id":"1","name":"a,b"},{"id":"2","name":null}]"#
    );
}

#[test]
fn prefer_header() {
    let p = parse_prefer(Some(
        "return=representation, resolution=merge-duplicates,count=exact,bogus=1",
    ));
    assert_eq!(p.ret, Some(Return::Representation));
    assert_eq!(p.resolution, Some(Resolution::MergeDuplicates));
    assert_eq!(p.count, Some(Count::Exact));
    assert_eq!(p.invalid, vec!["bogus=1"]);
}

#[test]
fn casts_of_aggregates_inside_embeds_stay_inside() {
    let s = parse_select("name,books(total:pages.sum()::text,c:count()::text)").unwrap();
    let SelectItem::Embed(e) = &s[1] else {
        panic!("{s:?}")
    };
    assert!(
        matches!(&e.select[0], SelectItem::Column { aggregate: Some(Aggregate::Sum), aggregate_cast: Some(c), .. } if c == "text")
    );
    assert!(matches!(&e.select[1], SelectItem::Count { cast: Some(c), .. } if c == "text"));
    assert!(
        matches!(&parse_select("count()::int").unwrap()[0], SelectItem::Count { cast: Some(c), .. } if c == "int")
    );
}
