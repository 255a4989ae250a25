//! Collections and their schemas: typed fields, validation with errors that
//! name the field, and the automatic fields every record has.
//!
//! A schema is plain data (serde), so an app can declare it in JSON:
//!
//! ```json
//! { "name": "todos", "version": 1,
//!   "fields": { "title": {"type": "string"}, "done": {"type": "boolean"},
//!               "notes": {"type": "text", "optional": true},
//!               "tags": {"type": "array", "items": {"type": "string"}} },
//!   "indexes": [ {"fields": ["done", "title"]} ] }
//! ```
//!
//! Invariants: a record that passed [`Collection::validate`] has every
//! required field, no unknown field, and every value of its declared type;
//! the automatic fields (`id`, `createdAt`, `updatedAt`) are set by the
//! store, never by the caller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields the store sets on every record.
pub const AUTO_FIELDS: &[&str] = &["id", "createdAt", "updatedAt"];

/// The type of a field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FieldType {
    /// A string (last writer wins on concurrent edits).
    String,
    /// Any JSON number.
    Number,
    /// An integer (i64).
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A date: Unix milliseconds (integer).
    Date,
    /// Bytes, as base64url text in JSON.
    Bytes,
    /// Collaborative text: concurrent edits merge character by character.
    Text,
    /// One of the listed strings.
    Enum {
        /// Allowed values.
        values: Vec<String>,
    },
    /// A list of values of one type.
    Array {
        /// Type of each element.
        items: Box<Field>,
    },
    /// A nested object with its own fields.
    Object {
        /// Its fields.
        fields: BTreeMap<String, Field>,
    },
}

/// A field: a type, and whether it may be absent (or null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The type.
    #[serde(flatten)]
    pub ty: FieldType,
    /// May be absent or null.
    #[serde(default)]
    pub optional: bool,
}

/// An index over one or more fields (dotted paths for nested ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Fields in index order.
    pub fields: Vec<String>,
    /// At most one record per combination of values.
    #[serde(default)]
    pub unique: bool,
}

/// A collection's declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// Name: 1–64 of `a-z A-Z 0-9 _`, starting with a letter.
    pub name: String,
    /// Schema version (≥ 1).
    pub version: u32,
    /// The fields (besides the automatic ones).
    pub fields: BTreeMap<String, Field>,
    /// Indexes.
    #[serde(default)]
    pub indexes: Vec<Index>,
}

/// Why a schema or a record was refused. Every variant names where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The collection name is not allowed.
    #[error("collection name {0:?} must be 1–64 letters, digits or _, starting with a letter")]
    BadCollectionName(String),
    /// A field name is not allowed (or is an automatic field).
    #[error("field name {0:?} is not allowed")]
    BadFieldName(String),
    /// Version 0.
    #[error("schema version must be at least 1")]
    BadVersion,
    /// An index names a field that does not exist or cannot be indexed.
    #[error("index field {0:?} is not a scalar field of the collection")]
    BadIndexField(String),
    /// An enum without values.
    #[error("enum field {0:?} has no values")]
    EmptyEnum(String),
    /// The record is not a JSON object.
    #[error("a record must be a JSON object")]
    NotAnObject,
    /// A required field is missing.
    #[error("field {0:?} is required")]
    Missing(String),
    /// A field the schema does not declare.
    #[error("field {0:?} is not in the schema")]
    Unknown(String),
    /// A value of the wrong type; names the field and the expected type.
    #[error("field {field:?} must be {expected}")]
    WrongType {
        /// Dotted path (array elements as `[i]`).
        field: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An enum value outside the list.
    #[error("field {field:?} must be one of {allowed:?}")]
    NotInEnum {
        /// Dotted path.
        field: String,
        /// Allowed values.
        allowed: Vec<String>,
    },
    /// The caller set an automatic field.
    #[error("field {0:?} is set by the store")]
    AutoField(String),
}

fn valid_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Collection {
    /// Checks the declaration itself.
    pub fn check(&self) -> Result<(), SchemaError> {
        if !valid_name(&self.name, 64) {
            return Err(SchemaError::BadCollectionName(self.name.clone()));
        }
        if self.version == 0 {
            return Err(SchemaError::BadVersion);
        }
        check_fields(&self.fields, "")?;
        for index in &self.indexes {
            if index.fields.is_empty() {
                return Err(SchemaError::BadIndexField(String::new()));
            }
            for path in &index.fields {
                if !AUTO_FIELDS.contains(&path.as_str())
                    && !matches!(self.field(path), Some(f) if f.ty.is_scalar())
                {
                    return Err(SchemaError::BadIndexField(path.clone()));
                }
            }
        }
        Ok(())
    }

    /// The field at a dotted path (through nested objects).
    pub fn field(&self, path: &str) -> Option<&Field> {
        let mut fields = &self.fields;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let field = fields.get(part)?;
            if parts.peek().is_none() {
                return Some(field);
            }
            match &field.ty {
                FieldType::Object { fields: inner } => fields = inner,
                _ => return None,
            }
        }
        None
    }

    /// Checks a whole record (without its automatic fields).
    pub fn validate(&self, record: &Value) -> Result<(), SchemaError> {
        let Value::Object(map) = record else {
            return Err(SchemaError::NotAnObject);
        };
        for auto in AUTO_FIELDS {
            if map.contains_key(*auto) {
                return Err(SchemaError::AutoField((*auto).to_owned()));
            }
        }
        validate_object(&self.fields, map, "")
    }
}

fn check_fields(fields: &BTreeMap<String, Field>, prefix: &str) -> Result<(), SchemaError> {
    for (name, field) in fields {
        let path = join(prefix, name);
        if !valid_name(name, 64) || (prefix.is_empty() && AUTO_FIELDS.contains(&name.as_str())) {
            return Err(SchemaError::BadFieldName(path));
        }
        check_type(&field.ty, &path)?;
    }
    Ok(())
}

fn check_type(ty: &FieldType, path: &str) -> Result<(), SchemaError> {
    match ty {
        FieldType::Enum { values } if values.is_empty() => Err(SchemaError::EmptyEnum(path.into())),
        FieldType::Array { items } => check_type(&items.ty, &format!("{path}[]")),
        FieldType::Object { fields } => check_fields(fields, path),
        _ => Ok(()),
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

impl FieldType {
    /// Whether values are single JSON scalars (indexable, sortable).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Self::Array { .. } | Self::Object { .. })
    }

    fn expected(&self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Number => "a number",
            Self::Integer => "an integer",
            Self::Boolean => "true or false",
            Self::Date => "a date (integer Unix milliseconds)",
            Self::Bytes => "bytes (a base64url string)",
            Self::Text => "text (a string)",
            Self::Enum { .. } => "a string",
            Self::Array { .. } => "an array",
            Self::Object { .. } => "an object",
        }
    }
}

fn validate_object(
    fields: &BTreeMap<String, Field>,
    map: &Map<String, Value>,
    prefix: &str,
) -> Result<(), SchemaError> {
    for key in map.keys() {
        if !fields.contains_key(key) {
            return Err(SchemaError::Unknown(join(prefix, key)));
        }
    }
    for (name, field) in fields {
        let path = join(prefix, name);
        match map.get(name) {
            None | Some(Value::Null) if field.optional => {}
            None | Some(Value::Null) => return Err(SchemaError::Missing(path)),
            Some(value) => validate_value(&field.ty, value, &path)?,
        }
    }
    Ok(())
}

/// Checks one value against a type; `path` names it in errors.
pub fn validate_value(ty: &FieldType, value: &Value, path: &str) -> Result<(), SchemaError> {
    let wrong = || SchemaError::WrongType {
        field: path.to_owned(),
        expected: ty.expected(),
    };
    match (ty, value) {
        (FieldType::String | FieldType::Text, Value::String(_)) => Ok(()),
        (FieldType::Number, Value::Number(_)) => Ok(()),
        (FieldType::Integer | FieldType::Date, Value::Number(n)) if n.is_i64() => Ok(()),
        (FieldType::Boolean, Value::Bool(_)) => Ok(()),
        (FieldType::Bytes, Value::String(s)) => {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .map(|_| ())
                .map_err(|_| wrong())
        }
        (FieldType::Enum { values }, Value::String(s)) => {
            if values.iter().any(|v| v == s) {
                Ok(())
            } else {
                Err(SchemaError::NotInEnum {
                    field: path.to_owned(),
                    allowed: values.clone(),
                })
            }
        }
        (FieldType::Array { items }, Value::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                match item {
                    Value::Null if items.optional => {}
                    _ => validate_value(&items.ty, item, &item_path)?,
                }
            }
            Ok(())
        }
        (FieldType::Object { fields }, Value::Object(map)) => validate_object(fields, map, path),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn todos() -> Collection {
        serde_json::from_value(json!({
            "name": "todos", "version": 1,
            "fields": {
                "title": {"type": "string"},
                "done": {"type": "boolean"},
                "priority": {"type": "integer", "optional": true},
                "state": {"type": "enum", "values": ["open", "closed"], "optional": true},
                "notes": {"type": "text", "optional": true},
                "tags": {"type": "array", "items": {"type": "string"}, "optional": true},
                "meta": {"type": "object", "optional": true, "fields": {
                    "owner": {"type": "string"}, "due": {"type": "date", "optional": true}}}
            },
            "indexes": [{"fields": ["done", "title"]}, {"fields": ["meta.owner"], "unique": false}]
        }))
        .unwrap()
    }

    #[test]
    fn declarations_are_checked() {
        todos().check().unwrap();
        let mut bad = todos();
        bad.name = "1x".into();
        assert!(matches!(
            bad.check(),
            Err(SchemaError::BadCollectionName(_))
        ));
        let mut bad = todos();
        bad.indexes.push(Index {
            fields: vec!["tags".into()],
            unique: false,
        });
        assert_eq!(bad.check(), Err(SchemaError::BadIndexField("tags".into())));
        let mut bad = todos();
        bad.fields.insert(
            "id".into(),
            Field {
                ty: FieldType::String,
                optional: false,
            },
        );
        assert_eq!(bad.check(), Err(SchemaError::BadFieldName("id".into())));
    }

    #[test]
    fn records_are_validated_with_the_failing_path() {
        let c = todos();
        c.validate(&json!({"title": "a", "done": false})).unwrap();
        c.validate(
            &json!({"title": "a", "done": true, "priority": null, "tags": ["x"],
            "meta": {"owner": "me", "due": 1_700_000_000_000_i64}}),
        )
        .unwrap();
        assert_eq!(
            c.validate(&json!({"done": false})),
            Err(SchemaError::Missing("title".into()))
        );
        assert_eq!(
            c.validate(&json!({"title": "a", "done": "no"})),
            Err(SchemaError::WrongType {
                field: "done".into(),
                expected: "true or false"
            })
        );
        assert_eq!(
            c.validate(&json!({"title": "a", "done": false, "tags": ["x", 3]})),
            Err(SchemaError::WrongType {
                field: "tags[1]".into(),
                expected: "a string"
            })
        );
        assert_eq!(
            c.validate(&json!({"title": "a", "done": false, "meta": {}})),
            Err(SchemaError::Missing("meta.owner".into()))
        );
        assert!(matches!(
            c.validate(&json!({"title": "a", "done": false, "state": "maybe"})),
            Err(SchemaError::NotInEnum { .. })
        ));
        assert_eq!(
            c.validate(&json!({"title": "a", "done": false, "extra": 1})),
            Err(SchemaError::Unknown("extra".into()))
        );
        assert_eq!(
            c.validate(&json!({"title": "a", "done": false, "priority": 1.5})),
            Err(SchemaError::WrongType {
                field: "priority".into(),
                expected: "an integer"
            })
        );
        assert_eq!(
            c.validate(&json!({"id": "x", "title": "a", "done": false})),
            Err(SchemaError::AutoField("id".into()))
        );
        assert_eq!(c.validate(&json!([1])), Err(SchemaError::NotAnObject));
    }
}
