//! A record as an Automerge document, and its JSON form.
//!
//! The document's root map holds the record's fields: objects become maps,
//! arrays lists, `text` fields Automerge text (so concurrent edits merge
//! character by character), other values scalars. Writing a new value to a
//! text field splices only the part that changed, so an edit and a
//! concurrent edit elsewhere in the same text both survive a merge.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, AutomergeError, ObjId, ObjType, Prop, ROOT, ReadDoc, ScalarValue};
use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::schema::{Field, FieldType};

fn scalar(value: &Value) -> ScalarValue {
    match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int(i),
            None => ScalarValue::F64(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        // Callers handle containers before reaching here.
        Value::Array(_) | Value::Object(_) => ScalarValue::Null,
    }
}

/// The schema of an object's fields, when `field` declares an object.
fn object_fields(field: Option<&Field>) -> Option<&BTreeMap<String, Field>> {
    match field.map(|f| &f.ty) {
        Some(FieldType::Object { fields }) => Some(fields),
        _ => None,
    }
}

/// The schema of a list's items, when `field` declares an array.
fn item_field(field: Option<&Field>) -> Option<&Field> {
    match field.map(|f| &f.ty) {
        Some(FieldType::Array { items }) => Some(items.as_ref()),
        _ => None,
    }
}

/// Writes every entry of `map` into the map object `obj`.
fn fill_map(
    doc: &mut AutoCommit,
    obj: &ObjId,
    field: Option<&Field>,
    map: &Map<String, Value>,
) -> Result<(), AutomergeError> {
    let fields = object_fields(field);
    for (k, v) in map {
        put(
            doc,
            obj,
            Prop::Map(k.clone()),
            fields.and_then(|fs| fs.get(k)),
            v,
        )?;
    }
    Ok(())
}

/// Appends every item of `items` to the (empty) list object `list`.
fn fill_list(
    doc: &mut AutoCommit,
    list: &ObjId,
    field: Option<&Field>,
    items: &[Value],
) -> Result<(), AutomergeError> {
    let item = item_field(field);
    for (i, value) in items.iter().enumerate() {
        insert(doc, list, i, item, value)?;
    }
    Ok(())
}

/// Writes `value` at `prop` of `obj`, shaped by `field` (if the schema has
/// one for it).
fn put(
    doc: &mut AutoCommit,
    obj: &ObjId,
    prop: Prop,
    field: Option<&Field>,
    value: &Value,
) -> Result<(), AutomergeError> {
    match (field.map(|f| &f.ty), value) {
        (Some(FieldType::Text), Value::String(new)) => {
            let text = match doc.get(obj, prop.clone())? {
                Some((automerge::Value::Object(ObjType::Text), id)) => id,
                _ => put_object(doc, obj, prop, ObjType::Text)?,
            };
            splice_diff(doc, &text, new)
        }
        (_, Value::Object(map)) => {
            // Reuse an existing map so concurrent edits to its other keys
            // survive; drop the keys the new value no longer has.
            let inner = match doc.get(obj, prop.clone())? {
                Some((automerge::Value::Object(ObjType::Map), id)) => {
                    let stale: Vec<String> =
                        doc.keys(&id).filter(|k| !map.contains_key(k)).collect();
                    for key in stale {
                        doc.delete(&id, key.as_str())?;
                    }
                    id
                }
                _ => put_object(doc, obj, prop, ObjType::Map)?,
            };
            fill_map(doc, &inner, field, map)
        }
        (_, Value::Array(items)) => {
            let list = put_object(doc, obj, prop, ObjType::List)?;
            fill_list(doc, &list, field, items)
        }
        _ => match prop {
            Prop::Map(key) => doc.put(obj, key, scalar(value)),
            Prop::Seq(index) => doc.put(obj, index, scalar(value)),
        },
    }
}

fn put_object(
    doc: &mut AutoCommit,
    obj: &ObjId,
    prop: Prop,
    ty: ObjType,
) -> Result<ObjId, AutomergeError> {
    match prop {
        Prop::Map(key) => doc.put_object(obj, key, ty),
        Prop::Seq(index) => doc.put_object(obj, index, ty),
    }
}

/// Inserts `value` at `index` of `list`, shaped by `field`.
fn insert(
    doc: &mut AutoCommit,
    list: &ObjId,
    index: usize,
    field: Option<&Field>,
    value: &Value,
) -> Result<(), AutomergeError> {
    match (field.map(|f| &f.ty), value) {
        (_, Value::Object(map)) => {
            let inner = doc.insert_object(list, index, ObjType::Map)?;
            fill_map(doc, &inner, field, map)
        }
        (_, Value::Array(items)) => {
            let inner = doc.insert_object(list, index, ObjType::List)?;
            fill_list(doc, &inner, field, items)
        }
        (Some(FieldType::Text), Value::String(s)) => {
            let text = doc.insert_object(list, index, ObjType::Text)?;
            doc.splice_text(&text, 0, 0, s)
        }
        _ => doc.insert(list, index, scalar(value)),
    }
}

/// Replaces the text of `text` with `new` by one splice over the part that
/// differs (common prefix and suffix kept), counted in characters.
fn splice_diff(doc: &mut AutoCommit, text: &ObjId, new: &str) -> Result<(), AutomergeError> {
    let old = doc.text(text)?;
    let old_chars: Vec<char> = old.chars().collect();
    let new_chars: Vec<char> = new.chars().collect();
    let prefix = old_chars
        .iter()
        .zip(&new_chars)
        .take_while(|(a, b)| a == b)
        .count();
    let max_suffix = old_chars.len().min(new_chars.len()) - prefix;
    let suffix = old_chars
        .iter()
        .rev()
        .zip(new_chars.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let delete = old_chars.len() - prefix - suffix;
    let insert: String = new_chars
        .get(prefix..new_chars.len() - suffix)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    if delete == 0 && insert.is_empty() {
        return Ok(());
    }
    doc.splice_text(
        text,
        prefix,
        isize::try_from(delete).unwrap_or(isize::MAX),
        &insert,
    )
}

/// Sets the given fields of the record (a patch): `null` removes a field.
pub fn apply_patch(
    doc: &mut AutoCommit,
    fields: &BTreeMap<String, Field>,
    patch: &Map<String, Value>,
) -> Result<(), AutomergeError> {
    for (key, value) in patch {
        if value.is_null() {
            if doc.get(ROOT, key.as_str())?.is_some() {
                doc.delete(ROOT, key.as_str())?;
            }
        } else {
            put(doc, &ROOT, Prop::Map(key.clone()), fields.get(key), value)?;
        }
    }
    Ok(())
}

/// Makes the record's fields exactly `record`: sets every given field,
/// removes every other.
pub fn replace(
    doc: &mut AutoCommit,
    fields: &BTreeMap<String, Field>,
    record: &Map<String, Value>,
) -> Result<(), AutomergeError> {
    let stale: Vec<String> = doc.keys(ROOT).filter(|k| !record.contains_key(k)).collect();
    for key in stale {
        doc.delete(ROOT, key.as_str())?;
    }
    apply_patch(doc, fields, record)
}

fn value_json(
    doc: &AutoCommit,
    value: automerge::Value<'_>,
    id: &ObjId,
) -> Result<Value, AutomergeError> {
    Ok(match value {
        automerge::Value::Object(ObjType::Map | ObjType::Table) => {
            Value::Object(map_json(doc, id)?)
        }
        automerge::Value::Object(ObjType::List) => {
            let mut items = Vec::new();
            for i in 0..doc.length(id) {
                if let Some((v, inner)) = doc.get(id, i)? {
                    items.push(value_json(doc, v, &inner)?);
                }
            }
            Value::Array(items)
        }
        automerge::Value::Object(ObjType::Text) => Value::String(doc.text(id)?),
        automerge::Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Value::String(s.to_string()),
            ScalarValue::Int(i) => Value::from(*i),
            ScalarValue::Uint(u) => Value::from(*u),
            ScalarValue::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            ScalarValue::Boolean(b) => Value::Bool(*b),
            ScalarValue::Counter(c) => Value::from(i64::from(c)),
            ScalarValue::Timestamp(t) => Value::from(*t),
            _ => Value::Null,
        },
    })
}

fn map_json(doc: &AutoCommit, obj: &ObjId) -> Result<Map<String, Value>, AutomergeError> {
    let mut out = Map::new();
    for key in doc.keys(obj).collect::<Vec<_>>() {
        if let Some((value, id)) = doc.get(obj, key.as_str())? {
            out.insert(key, value_json(doc, value, &id)?);
        }
    }
    Ok(out)
}

/// The record's current state as JSON (its fields only).
pub fn to_json(doc: &AutoCommit) -> Result<Map<String, Value>, AutomergeError> {
    map_json(doc, &ROOT)
}
