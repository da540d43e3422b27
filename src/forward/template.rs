//! Subject and topic templates: text with `{tenant_id}`, `{stream}`, `{source}`, `{kind}`
//! and `{connection_id}` placeholders, filled from each record. A filled-in value keeps
//! only characters every subject and topic can hold (`A-Z a-z 0-9 - _`); any other
//! becomes `_`, so a tenant id like `acme.eu` cannot add a subject token.

use crate::model::EventRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    TenantId,
    Stream,
    Source,
    Kind,
    ConnectionId,
}

impl Field {
    const ALL: [(&'static str, Field); 5] = [
        ("tenant_id", Field::TenantId),
        ("stream", Field::Stream),
        ("source", Field::Source),
        ("kind", Field::Kind),
        ("connection_id", Field::ConnectionId),
    ];

    fn parse(name: &str) -> Option<Field> {
        Field::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Field),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; the error names the problem (an unknown placeholder, a brace left open).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Text(rest.to_owned()));
                    break;
                }
                Some(i) if rest.as_bytes()[i] == b'}' => return Err(format!("`}}` without `{{` in `{text}`")),
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Text(rest[..i].to_owned()));
                    }
                    let close = rest[i..].find('}').ok_or_else(|| format!("`{{` is never closed in `{text}`"))? + i;
                    let name = &rest[i + 1..close];
                    let field = Field::parse(name).ok_or_else(|| {
                        let known: Vec<_> = Field::ALL.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                        format!("unknown placeholder `{{{name}}}` (known: {})", known.join(", "))
                    })?;
                    parts.push(Part::Value(field));
                    rest = &rest[close + 1..];
                }
            }
        }
        if parts.is_empty() {
            return Err("the template is empty".into());
        }
        Ok(Template { parts })
    }

    /// The literal text of the template, placeholders left out.
    pub fn literal_text(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            Part::Value(_) => None,
        })
    }

    /// The template filled in with `value` for every placeholder (to check its shape).
    pub fn render_with(&self, value: &str) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Value(_) => value,
            })
            .collect()
    }

    /// The template filled in from `record`.
    pub fn render(&self, record: &EventRecord) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(field) => {
                    let id;
                    let value = match field {
                        Field::TenantId => record.tenant_id.as_str(),
                        Field::Stream => record.stream.as_str(),
                        Field::Source => record.source.as_str(),
                        Field::Kind => record.kind.as_str(),
                        Field::ConnectionId => {
                            id = record.connection_id.to_string();
                            id.as_str()
                        }
                    };
                    push_sanitized(&mut out, value);
                }
            }
        }
        out
    }
}

fn push_sanitized(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('_');
    }
    out.extend(value.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, Position, SourceKind};
    use serde_json::value::RawValue;
    use uuid::Uuid;

    fn record(tenant: &str) -> EventRecord {
        EventRecord {
            position: Position::START,
            id: Uuid::nil(),
            connection_id: Uuid::from_u128(0xabc),
            tenant_id: tenant.into(),
            source: SourceKind::AwsSns,
            stream: "cloud_aws_securityhub_alert".into(),
            kind: EventKind::Alert,
            dedupe_key: "k".into(),
            occurred_at: None,
            received_at: chrono::Utc::now(),
            payload: RawValue::from_string("{}".into()).unwrap(),
        }
    }

    #[test]
    fn placeholders_are_filled_and_sanitized() {
        let t = Template::parse("pushgate.{tenant_id}.{stream}").unwrap();
        assert_eq!(t.render(&record("acme")), "pushgate.acme.cloud_aws_securityhub_alert");
        assert_eq!(t.render(&record("acme.eu *>")), "pushgate.acme_eu___.cloud_aws_securityhub_alert");
        assert_eq!(t.render(&record("")), "pushgate._.cloud_aws_securityhub_alert");
        let all = Template::parse("{source}/{kind}/{connection_id}").unwrap();
        assert_eq!(all.render(&record("a")), "aws_sns/alert/00000000-0000-0000-0000-000000000abc");
    }

    #[test]
    fn bad_templates_say_why() {
        assert!(Template::parse("a.{tenant}").unwrap_err().contains("unknown placeholder `{tenant}`"));
        assert!(Template::parse("a.{stream").unwrap_err().contains("never closed"));
        assert!(Template::parse("a}b").unwrap_err().contains("without"));
        assert!(Template::parse("").is_err());
        assert_eq!(Template::parse("plain").unwrap().render_with("x"), "plain");
    }
}
