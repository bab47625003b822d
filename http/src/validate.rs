//! Input checks at the edge, the same on every database: a JSON body is checked
//! against the bounds its OpenAPI schema declares (string lengths, number ranges,
//! array sizes) before it is deserialised, and no text may carry control
//! characters. What the document declares is therefore exactly what is enforced:
//! a bound is written once, as a `#[oai(validator(...))]` on the field.
//!
//! Control characters (Unicode `Cc`: NUL, the C0 set, DEL, C1) are refused in
//! every string; only the fields in [`MULTILINE_FIELDS`] may hold line breaks and
//! tabs. Lengths are counted in Unicode scalar values, as JSON Schema counts them.

use pazar_actors::DomainError;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use serde_json::Value;

/// Fields that may hold `\n`, `\r` and `\t` (free text shown as paragraphs).
pub const MULTILINE_FIELDS: &[&str] = &["description"];

/// Refuses control characters (but line breaks and tabs when `multiline`) and
/// more than `max_chars` characters, naming `field`.
fn check_text(
    field: &str,
    text: &str,
    max_chars: Option<usize>,
    multiline: bool,
) -> Result<(), DomainError> {
    let mut chars = 0usize;
    for c in text.chars() {
        chars += 1;
        if c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')) {
            return Err(DomainError::invalid(
                field,
                format!(
                    "must not contain control characters (found U+{:04X})",
                    c as u32
                ),
            ));
        }
    }
    if let Some(max) = max_chars {
        if chars > max {
            return Err(DomainError::invalid(
                field,
                format!("must be at most {max} characters"),
            ));
        }
    }
    Ok(())
}

/// Checks `value` against `schema` (resolved in `registry`): the first violation
/// is returned, naming the field by its path (`price.amount`, `items[2].quantity`).
pub fn check_value(
    value: &Value,
    schema: &MetaSchemaRef,
    registry: &Registry,
) -> Result<(), DomainError> {
    walk(value, schema, registry, "")
}

fn resolve<'a>(schema: &'a MetaSchemaRef, registry: &'a Registry) -> Option<&'a MetaSchema> {
    match schema {
        MetaSchemaRef::Inline(schema) => Some(schema),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name),
    }
}

fn walk(
    value: &Value,
    schema: &MetaSchemaRef,
    registry: &Registry,
    path: &str,
) -> Result<(), DomainError> {
    let Some(schema) = resolve(schema, registry) else {
        return Ok(());
    };
    for part in &schema.all_of {
        walk(value, part, registry, path)?;
    }
    let field = if path.is_empty() { "body" } else { path };
    // serde would also take an object's fields from an array (`[1, "EUR"]`).
    if schema.ty == "object" && !schema.properties.is_empty() && value.is_array() {
        return Err(DomainError::invalid(field, "must be an object"));
    }
    match value {
        Value::String(text) => {
            let name = path.rsplit('.').next().unwrap_or(path);
            check_text(
                field,
                text,
                schema.max_length,
                MULTILINE_FIELDS.contains(&name),
            )?;
            if let Some(min) = schema.min_length {
                if text.chars().count() < min {
                    return Err(DomainError::invalid(
                        field,
                        format!("must be at least {min} characters"),
                    ));
                }
            }
        }
        Value::Number(number) => {
            if let Some(number) = number.as_f64() {
                check_range(field, number, schema)?;
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.max_items {
                if items.len() > max {
                    return Err(DomainError::invalid(
                        field,
                        format!("must have at most {max} items"),
                    ));
                }
            }
            if let Some(item_schema) = &schema.items {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, registry, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::Object(map) => {
            for (name, property) in &schema.properties {
                if let Some(value) = map.get(*name) {
                    let path = if path.is_empty() {
                        (*name).to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    walk(value, property, registry, &path)?;
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
}

fn check_range(field: &str, number: f64, schema: &MetaSchema) -> Result<(), DomainError> {
    if let Some(min) = schema.minimum {
        let exclusive = schema.exclusive_minimum.unwrap_or(false);
        if number < min || (exclusive && number == min) {
            let relation = if exclusive { "more than" } else { "at least" };
            return Err(DomainError::invalid(
                field,
                format!("must be {relation} {min}"),
            ));
        }
    }
    if let Some(max) = schema.maximum {
        let exclusive = schema.exclusive_maximum.unwrap_or(false);
        if number > max || (exclusive && number == max) {
            let relation = if exclusive { "less than" } else { "at most" };
            return Err(DomainError::invalid(
                field,
                format!("must be {relation} {max}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::Type;
    use poem_openapi::Object;
    use serde_json::json;

    #[derive(Object)]
    struct Inner {
        #[oai(validator(minimum(value = "1"), maximum(value = "10")))]
        quantity: i64,
    }

    #[derive(Object)]
    struct Outer {
        #[oai(validator(max_length = 5))]
        name: String,
        description: Option<String>,
        inner: Inner,
        #[oai(validator(max_items = 2))]
        lines: Vec<Inner>,
    }

    fn check(value: Value) -> Result<(), String> {
        let mut registry = Registry::new();
        Outer::register(&mut registry);
        check_value(&value, &Outer::schema_ref(), &registry).map_err(|e| e.to_string())
    }

    #[test]
    fn declared_bounds_are_enforced_and_name_the_field() {
        let ok = json!({"name": "abcde", "description": "two\nlines\tand a tab",
                        "inner": {"quantity": 10}, "lines": [{"quantity": 1}]});
        assert_eq!(check(ok), Ok(()));
        let long = json!({"name": "abcdéf", "inner": {"quantity": 1}, "lines": []});
        assert!(check(long).unwrap_err().starts_with("name:"));
        let nested = json!({"name": "a", "inner": {"quantity": 11}, "lines": []});
        assert!(check(nested).unwrap_err().starts_with("inner.quantity:"));
        let item = json!({"name": "a", "inner": {"quantity": 1}, "lines": [{"quantity": 0}]});
        assert!(check(item).unwrap_err().starts_with("lines[0].quantity:"));
        let array = json!({"name": "a", "inner": [5], "lines": []});
        assert!(check(array)
            .unwrap_err()
            .starts_with("inner: must be an object"));
        let many = json!({"name": "a", "inner": {"quantity": 1},
                          "lines": [{"quantity": 1}, {"quantity": 1}, {"quantity": 1}]});
        assert!(check(many).unwrap_err().starts_with("lines:"));
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_free_text() {
        let nul = json!({"name": "a\u{0}b", "inner": {"quantity": 1}, "lines": []});
        assert!(check(nul).unwrap_err().contains("U+0000"));
        let newline = json!({"name": "a\nb", "inner": {"quantity": 1}, "lines": []});
        assert!(check(newline).unwrap_err().starts_with("name:"));
        let c1 = json!({"name": "a", "description": "x\u{85}", "inner": {"quantity": 1},
                        "lines": []});
        assert!(check(c1).unwrap_err().starts_with("description:"));
        assert!(check_text("q", "shoes\u{7f}", None, false).is_err());
        assert!(check_text("q", "Größe 42 — 👟", Some(12), false).is_ok());
    }
}
