//! Queries: a Mongo-style filter language compiled to SQL over the
//! materialised JSON of each record, so a query never decodes Automerge.
//!
//! Filters: implicit equality (`{"done": false}`), `$eq $ne $gt $gte $lt
//! $lte $in $nin $exists $regex $contains` per field, `$and $or $not` to
//! combine, dotted paths into nested objects. On an array field a
//! comparison holds when it holds for some element (`{"tags": "x"}` matches
//! records whose tags contain "x"); `$ne`/`$nin` then mean no element
//! matches. `$ne`, `$nin` and `$not` also match records where the field is
//! absent.
//!
//! The compiled SQL expects the collection's table under the alias `r`
//! (`json_each` has a column named `json` of its own).
//!
//! Invariants: every path spliced into SQL is checked against the schema
//! first (so it is a chain of identifiers), every value is a bound
//! parameter, and a field's SQL expression is exactly the one its index is
//! declared on, so SQLite's planner can use the index.

use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::{AUTO_FIELDS, Collection, FieldType};

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The path is not a field of the collection.
    #[error("unknown field {0:?}")]
    UnknownField(String),
    /// An operator this language does not have.
    #[error("unknown operator {0:?}")]
    UnknownOperator(String),
    /// An operator's argument has the wrong shape; names the operator.
    #[error("{0} needs {1}")]
    BadArgument(&'static str, &'static str),
    /// The filter is not an object.
    #[error("a filter must be a JSON object")]
    NotAnObject,
    /// `$regex` does not compile.
    #[error("invalid $regex: {0}")]
    BadRegex(String),
    /// A sort on a field that is not a scalar.
    #[error("cannot sort by {0:?}")]
    BadSort(String),
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// A query: filter, sort keys, paging.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The filter (`{}` or absent: every record).
    #[serde(default)]
    pub filter: Value,
    /// Sort keys, most significant first; ties end in id order.
    #[serde(default)]
    pub sort: Vec<(String, Direction)>,
    /// At most this many records.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many first.
    #[serde(default)]
    pub offset: Option<u64>,
}

/// A compiled `WHERE` clause and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// SQL boolean expression.
    pub sql: String,
    /// Values for its `?` placeholders, in order.
    pub params: Vec<SqlValue>,
}

/// The SQL expression of a field: `json_extract(json, '$.a.b')`.
pub fn field_expr(path: &str) -> String {
    format!("json_extract(json, '$.{path}')")
}

struct Compiler<'a> {
    collection: &'a Collection,
    params: Vec<SqlValue>,
}

/// What kind of field a path names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Array,
    Other,
}

impl Compiler<'_> {
    fn kind(&self, path: &str) -> Result<Kind, QueryError> {
        if AUTO_FIELDS.contains(&path) {
            return Ok(Kind::Scalar);
        }
        let field = self
            .collection
            .field(path)
            .ok_or_else(|| QueryError::UnknownField(path.to_owned()))?;
        Ok(match field.ty {
            FieldType::Array { .. } => Kind::Array,
            FieldType::Object { .. } => Kind::Other,
            _ => Kind::Scalar,
        })
    }

    fn bind(&mut self, value: &Value) -> Result<String, QueryError> {
        let v = match value {
            Value::Null => SqlValue::Null,
            // json_extract gives booleans as integers 1 and 0.
            Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => SqlValue::Text(s.clone()),
            Value::Array(_) | Value::Object(_) => {
                return Err(QueryError::BadArgument("a comparison", "a scalar value"));
            }
        };
        self.params.push(v);
        Ok("?".to_owned())
    }

    fn filter(&mut self, filter: &Value) -> Result<String, QueryError> {
        let Value::Object(map) = filter else {
            return Err(QueryError::NotAnObject);
        };
        let mut terms = Vec::new();
        for (key, value) in map {
            terms.push(match key.as_str() {
                "$and" | "$or" => {
                    let Value::Array(items) = value else {
                        return Err(QueryError::BadArgument("$and/$or", "an array of filters"));
                    };
                    if items.is_empty() {
                        return Err(QueryError::BadArgument("$and/$or", "at least one filter"));
                    }
                    let parts = items
                        .iter()
                        .map(|f| self.filter(f))
                        .collect::<Result<Vec<_>, _>>()?;
                    let glue = if key == "$and" { " AND " } else { " OR " };
                    format!("({})", parts.join(glue))
                }
                "$not" => format!("NOT COALESCE(({}), 0)", self.filter(value)?),
                op if op.starts_with('$') => return Err(QueryError::UnknownOperator(op.into())),
                path => self.field(path, value)?,
            });
        }
        Ok(if terms.is_empty() {
            "1".to_owned()
        } else {
            terms.join(" AND ")
        })
    }

    fn field(&mut self, path: &str, condition: &Value) -> Result<String, QueryError> {
        let kind = self.kind(path)?;
        match condition {
            Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                let regex_options = ops.get("$options").and_then(Value::as_str).unwrap_or("");
                let mut terms = Vec::new();
                for (op, arg) in ops {
                    if op == "$options" {
                        continue;
                    }
                    terms.push(self.op(path, kind, op, arg, regex_options)?);
                }
                Ok(format!("({})", terms.join(" AND ")))
            }
            value => self.op(path, kind, "$eq", value, ""),
        }
    }

    fn op(
        &mut self,
        path: &str,
        kind: Kind,
        op: &str,
        arg: &Value,
        regex_options: &str,
    ) -> Result<String, QueryError> {
        let x = field_expr(path);
        // On arrays, a comparison holds when some element satisfies it.
        let each = |cond: String| {
            format!("EXISTS (SELECT 1 FROM json_each(r.json, '$.{path}') WHERE {cond})")
        };
        let cmp = |me: &mut Self, sql_op: &str| -> Result<String, QueryError> {
            let p = me.bind(arg)?;
            Ok(match kind {
                Kind::Array => each(format!("value {sql_op} {p}")),
                _ => format!("{x} {sql_op} {p}"),
            })
        };
        match op {
            "$eq" if arg.is_null() => Ok(format!("{x} IS NULL")),
            "$ne" if arg.is_null() => Ok(format!("{x} IS NOT NULL")),
            "$eq" => cmp(self, "="),
            "$ne" => {
                let p = self.bind(arg)?;
                Ok(match kind {
                    Kind::Array => format!("NOT {}", each(format!("value = {p}"))),
                    _ => format!("({x} IS NULL OR {x} != {p})"),
                })
            }
            "$gt" => cmp(self, ">"),
            "$gte" => cmp(self, ">="),
            "$lt" => cmp(self, "<"),
            "$lte" => cmp(self, "<="),
            "$in" | "$nin" => {
                let Value::Array(items) = arg else {
                    return Err(QueryError::BadArgument("$in/$nin", "an array"));
                };
                if items.is_empty() {
                    // Nothing is in the empty set.
                    return Ok(if op == "$in" { "0" } else { "1" }.to_owned());
                }
                let ps = items
                    .iter()
                    .map(|v| self.bind(v))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(", ");
                Ok(match (op, kind) {
                    ("$in", Kind::Array) => each(format!("value IN ({ps})")),
                    ("$in", _) => format!("{x} IN ({ps})"),
                    (_, Kind::Array) => format!("NOT {}", each(format!("value IN ({ps})"))),
                    _ => format!("({x} IS NULL OR {x} NOT IN ({ps}))"),
                })
            }
            "$exists" => {
                let Value::Bool(want) = arg else {
                    return Err(QueryError::BadArgument("$exists", "true or false"));
                };
                let not = if *want { "NOT " } else { "" };
                Ok(format!("json_type(json, '$.{path}') IS {not}NULL"))
            }
            "$regex" => {
                let Value::String(pattern) = arg else {
                    return Err(QueryError::BadArgument("$regex", "a string"));
                };
                let pattern = if regex_options.contains('i') {
                    format!("(?i){pattern}")
                } else {
                    pattern.clone()
                };
                regex::Regex::new(&pattern).map_err(|e| QueryError::BadRegex(e.to_string()))?;
                let p = self.bind(&Value::String(pattern))?;
                Ok(match kind {
                    Kind::Array => each(format!("value REGEXP {p}")),
                    _ => format!("{x} REGEXP {p}"),
                })
            }
            "$contains" => {
                let p = self.bind(arg)?;
                Ok(match kind {
                    Kind::Array => each(format!("value = {p}")),
                    _ => format!("instr({x}, {p}) > 0"),
                })
            }
            other => Err(QueryError::UnknownOperator(other.into())),
        }
    }
}

/// Compiles `filter` (a JSON object, or null for none) for `collection`.
pub fn compile_filter(collection: &Collection, filter: &Value) -> Result<Compiled, QueryError> {
    let mut c = Compiler {
        collection,
        params: Vec::new(),
    };
    let sql = match filter {
        Value::Null => "1".to_owned(),
        f => c.filter(f)?,
    };
    Ok(Compiled {
        sql,
        params: c.params,
    })
}

/// The `ORDER BY` list of `sort` (always ending with the id).
pub fn compile_sort(
    collection: &Collection,
    sort: &[(String, Direction)],
) -> Result<String, QueryError> {
    let mut keys = Vec::new();
    for (path, direction) in sort {
        let ok = AUTO_FIELDS.contains(&path.as_str())
            || collection.field(path).is_some_and(|f| f.ty.is_scalar());
        if !ok {
            return Err(QueryError::BadSort(path.clone()));
        }
        let dir = match direction {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        };
        keys.push(format!("{} {dir}", field_expr(path)));
    }
    keys.push("id ASC".to_owned());
    Ok(keys.join(", "))
}
