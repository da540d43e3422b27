use super::*;
use crate::model::SourceKind;
use serde_json::json;

fn read_typed(source: SourceKind, config: &Value) -> Result<(), String> {
    (crate::sources::spec(source).config.read)(config)
}

#[test]
fn every_source_is_listed_once_in_registry_order() {
    let sources: Vec<SourceKind> = SOURCES.iter().map(|s| s.kind).collect();
    assert_eq!(sources, SourceKind::ALL.to_vec());
    let served = catalog_json()["sources"].as_array().unwrap();
    assert_eq!(served.len(), SourceKind::ALL.len());
    assert_eq!(served[0]["push_url_template"], format!("/push/{}/{{id}}", SOURCES[0].route_segment));
    let segments: std::collections::HashSet<&str> = SOURCES.iter().map(|s| s.route_segment).collect();
    assert_eq!(segments.len(), SOURCES.len(), "each source has its own route");
}

#[test]
fn every_secret_field_is_one_the_api_masks_and_seals() {
    let mut named = std::collections::BTreeSet::new();
    for spec in SOURCES {
        for path in spec.secret_fields {
            let name = path.rsplit('.').next().unwrap().trim_end_matches("[]");
            assert!(crate::secrets::is_secret_field(name), "{:?}: {path} is not masked by `secrets`", spec.kind);
            named.insert(name);
        }
    }
    // And the other way round: `secrets` masks connection fields by name wherever they
    // sit; each name it knows is a secret field of some source.
    let masked: std::collections::BTreeSet<&str> = crate::secrets::SECRET_FIELDS.into_iter().collect();
    assert_eq!(named, masked, "the sources' secret fields and the names `secrets` masks differ");
}

#[test]
fn every_schema_compiles_as_draft_2020_12_and_allows_no_null_for_a_left_out_field() {
    for spec in SOURCES {
        let schema = &(spec.config.schema)();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        jsonschema::draft202012::new(schema).unwrap_or_else(|e| panic!("{:?}: {e}", spec.kind));
        assert!(!schema.to_string().contains("\"null\""), "{:?}: {schema}", spec.kind);
    }
}

#[test]
fn null_alternatives_are_removed_and_single_types_collapse() {
    let mut schema = json!({
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}], "description": "kept"},
        }
    });
    without_null(&mut schema);
    assert_eq!(schema["properties"]["a"], json!({"type": "string"}));
    assert_eq!(schema["properties"]["b"], json!({"$ref": "#/$defs/B", "description": "kept"}));
}

#[test]
fn the_typed_reading_refuses_what_the_schema_refuses() {
    let typed = |source, config: Value| read_typed(source, &config);
    assert!(typed(SourceKind::O365Activity, json!({"auth_id": "a"})).is_ok());
    assert!(typed(SourceKind::O365Activity, json!({"auth_id": "a", "other": 1})).unwrap_err().contains("other"));
    assert!(typed(SourceKind::Webhook, json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "id_header": null})).is_err());
    assert!(typed(SourceKind::AwsEventbridge, json!({"auth": {"type": "standard_webhooks", "secret": "whsec_c2VjcmV0"}})).is_err());
}
