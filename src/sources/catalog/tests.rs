use super::*;

#[test]
fn every_source_is_listed_once_in_registry_order() {
    let sources: Vec<SourceKind> = catalog().iter().map(|e| e.source).collect();
    assert_eq!(sources, SourceKind::ALL.to_vec());
    let served = catalog_json()["sources"].as_array().unwrap();
    assert_eq!(served.len(), SourceKind::ALL.len());
    assert_eq!(served[0]["push_url_template"], format!("/push/{}/{{id}}", SourceKind::ALL[0].route_segment()));
}

#[test]
fn every_secret_field_is_one_the_api_masks_and_seals() {
    for entry in catalog() {
        for path in entry.secret_fields {
            let name = path.rsplit('.').next().unwrap().trim_end_matches("[]");
            assert!(crate::secrets::is_secret_field(name), "{:?}: {path} is not masked by `secrets`", entry.source);
        }
    }
}

#[test]
fn every_schema_compiles_as_draft_2020_12_and_allows_no_null_for_a_left_out_field() {
    for entry in catalog() {
        let schema = &entry.config_schema;
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        jsonschema::draft202012::new(schema).unwrap_or_else(|e| panic!("{:?}: {e}", entry.source));
        assert!(!schema.to_string().contains("\"null\""), "{:?}: {schema}", entry.source);
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
