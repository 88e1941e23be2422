//! Strict decoding for input that comes from people: HTTP bodies, flags and files.
//!
//! Objects read from an API server are decoded tolerantly (unknown fields are dropped, unknown
//! enum values are kept as `Unknown`). Input typed by a person should instead fail loudly, so a
//! typo does not silently change meaning. [`from_slice`] and friends reject unknown fields and
//! unknown enum values, each with one sentence naming the JSON path and what is allowed there.
//!
//! Unknown fields are found with `serde_ignored` (so the types themselves stay tolerant, no
//! `deny_unknown_fields`); unknown enum values with [`StrictCheck`], which every type decoded
//! this way implements.

use std::fmt;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// Where in a document a value sits, e.g. `spec.resources[0].group`.
///
/// Built on the stack while walking a value, so checking allocates nothing unless it fails.
#[derive(Clone, Copy, Debug)]
pub struct FieldPath<'a> {
    parent: Option<&'a FieldPath<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Segment<'a> {
    Root,
    Field(&'a str),
    Index(usize),
}

impl<'a> FieldPath<'a> {
    /// The document itself.
    pub const fn root() -> Self {
        Self {
            parent: None,
            segment: Segment::Root,
        }
    }

    /// The field `name` of the value at this path.
    pub fn field(&'a self, name: &'a str) -> FieldPath<'a> {
        FieldPath {
            parent: Some(self),
            segment: Segment::Field(name),
        }
    }

    /// Item `index` of the list at this path.
    pub fn index(&'a self, index: usize) -> FieldPath<'a> {
        FieldPath {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut segments = Vec::new();
        let mut cursor = Some(self);
        while let Some(path) = cursor {
            segments.push(path.segment);
            cursor = path.parent;
        }
        let mut wrote = false;
        for segment in segments.iter().rev() {
            match segment {
                Segment::Root => {}
                Segment::Field(name) => {
                    if wrote {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                    wrote = true;
                }
                Segment::Index(index) => {
                    write!(f, "[{index}]")?;
                    wrote = true;
                }
            }
        }
        if !wrote {
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// Why strict decoding refused a document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StrictError {
    /// The bytes are not valid JSON/YAML, or a value has the wrong type.
    #[error("invalid value at `{path}`: {message}")]
    Syntax { path: String, message: String },
    /// A field the type does not define.
    #[error("unknown field `{path}`{}", allowed_suffix("fields", allowed))]
    UnknownField { path: String, allowed: Vec<String> },
    /// An enum value the type does not define.
    #[error(
        "unknown value {value:?} at `{path}`{}",
        allowed_suffix("values", allowed)
    )]
    UnknownValue {
        path: String,
        value: String,
        allowed: Vec<String>,
    },
}

fn allowed_suffix(what: &str, allowed: &[String]) -> String {
    if allowed.is_empty() {
        return String::new();
    }
    let list = allowed
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("; allowed {what} there: {list}")
}

impl StrictError {
    /// An enum value outside `allowed`.
    pub fn unknown_value(path: &FieldPath<'_>, value: &str, allowed: &[&str]) -> Self {
        Self::UnknownValue {
            path: path.to_string(),
            value: value.to_owned(),
            allowed: allowed.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// The JSON path the error is about.
    pub fn path(&self) -> &str {
        match self {
            Self::Syntax { path, .. }
            | Self::UnknownField { path, .. }
            | Self::UnknownValue { path, .. } => path,
        }
    }
}

/// Values that can hold enum values outside the known set, and can say where.
///
/// Types without such enums implement it as `Ok(())`; containers delegate to their items.
pub trait StrictCheck {
    /// Fails on the first unknown enum value found under `path`.
    fn strict_check(&self, path: &FieldPath<'_>) -> Result<(), StrictError>;
}

impl<T: StrictCheck> StrictCheck for Option<T> {
    fn strict_check(&self, path: &FieldPath<'_>) -> Result<(), StrictError> {
        match self {
            Some(value) => value.strict_check(path),
            None => Ok(()),
        }
    }
}

impl<T: StrictCheck> StrictCheck for Vec<T> {
    fn strict_check(&self, path: &FieldPath<'_>) -> Result<(), StrictError> {
        self.iter()
            .enumerate()
            .try_for_each(|(i, item)| item.strict_check(&path.index(i)))
    }
}

impl<T: StrictCheck> StrictCheck for Box<T> {
    fn strict_check(&self, path: &FieldPath<'_>) -> Result<(), StrictError> {
        (**self).strict_check(path)
    }
}

/// Implements [`StrictCheck`] for types that hold no open enums.
macro_rules! no_open_enums {
    ($($ty:ty),+ $(,)?) => {
        $(impl $crate::strict::StrictCheck for $ty {
            fn strict_check(&self, _: &$crate::strict::FieldPath<'_>) -> ::std::result::Result<(), $crate::strict::StrictError> {
                Ok(())
            }
        })+
    };
}
pub(crate) use no_open_enums;

/// Implements [`StrictCheck`] by checking the listed fields (serialized names given explicitly).
macro_rules! check_fields {
    ($ty:ty { $($field:ident => $wire:literal),+ $(,)? }) => {
        impl $crate::strict::StrictCheck for $ty {
            fn strict_check(&self, path: &$crate::strict::FieldPath<'_>) -> ::std::result::Result<(), $crate::strict::StrictError> {
                $( $crate::strict::StrictCheck::strict_check(&self.$field, &path.field($wire))?; )+
                Ok(())
            }
        }
    };
}
pub(crate) use check_fields;

no_open_enums!(String, bool, i32, i64, u32, u64, serde_json::Value);

/// Strictly decodes JSON bytes.
pub fn from_slice<T>(bytes: &[u8]) -> Result<T, StrictError>
where
    T: DeserializeOwned + StrictCheck + JsonSchema,
{
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = decode::<T, _>(&mut json)?;
    json.end().map_err(|e| StrictError::Syntax {
        path: ".".to_owned(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// Strictly decodes a JSON string.
pub fn from_str<T>(text: &str) -> Result<T, StrictError>
where
    T: DeserializeOwned + StrictCheck + JsonSchema,
{
    from_slice(text.as_bytes())
}

/// Strictly decodes an already parsed JSON value (e.g. from YAML).
pub fn from_value<T>(value: serde_json::Value) -> Result<T, StrictError>
where
    T: DeserializeOwned + StrictCheck + JsonSchema,
{
    decode::<T, _>(value)
}

/// Strictly decodes a single YAML document.
pub fn from_yaml_str<T>(text: &str) -> Result<T, StrictError>
where
    T: DeserializeOwned + StrictCheck + JsonSchema,
{
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| StrictError::Syntax {
            path: ".".to_owned(),
            message: e.to_string(),
        })?;
    from_value(value)
}

fn decode<'de, T, D>(deserializer: D) -> Result<T, StrictError>
where
    T: DeserializeOwned + StrictCheck + JsonSchema,
    D: serde::Deserializer<'de>,
    D::Error: fmt::Display,
{
    let mut track = serde_path_to_error::Track::new();
    let mut ignored: Vec<Vec<PathPart>> = Vec::new();
    let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
    let result: Result<T, _> =
        serde_ignored::deserialize(tracked, |path| ignored.push(path_parts(&path)));
    let value = match result {
        Ok(value) => value,
        Err(err) => {
            return Err(StrictError::Syntax {
                path: track.path().to_string(),
                message: err.to_string(),
            });
        }
    };
    // Derived Kubernetes kinds skip `apiVersion`/`kind` on decode; they are not unknown fields.
    ignored.retain(
        |parts| !matches!(parts.as_slice(), [PathPart::Key(k)] if k == "apiVersion" || k == "kind"),
    );
    if let Some(parts) = ignored.first() {
        return Err(unknown_field::<T>(parts));
    }
    value.strict_check(&FieldPath::root())?;
    Ok(value)
}

#[derive(Clone, Debug)]
enum PathPart {
    Key(String),
    Index(usize),
}

fn path_parts(path: &serde_ignored::Path<'_>) -> Vec<PathPart> {
    use serde_ignored::Path;
    let mut parts = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => path_parts(parent),
    };
    match path {
        Path::Seq { index, .. } => parts.push(PathPart::Index(*index)),
        Path::Map { key, .. } => parts.push(PathPart::Key(key.clone())),
        _ => {}
    }
    parts
}

fn render(parts: &[PathPart]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            PathPart::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathPart::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Builds the error for an unknown field, listing the fields the schema allows next to it.
fn unknown_field<T: JsonSchema>(parts: &[PathPart]) -> StrictError {
    let settings = schemars::generate::SchemaSettings::openapi3().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let parent = parts.split_last().map(|(_, parent)| parent).unwrap_or(&[]);
    let mut allowed: Vec<String> = schema_at(schema.as_value(), parent)
        .map(property_names)
        .unwrap_or_default();
    if parent.is_empty() {
        for key in ["apiVersion", "kind"] {
            if !allowed.iter().any(|a| a == key) {
                allowed.push(key.to_owned());
            }
        }
    }
    allowed.sort();
    allowed.dedup();
    StrictError::UnknownField {
        path: render(parts),
        allowed,
    }
}

fn schema_at<'s>(
    schema: &'s serde_json::Value,
    parts: &[PathPart],
) -> Option<&'s serde_json::Value> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(schema);
    };
    let next = match first {
        PathPart::Key(key) => {
            find_in_branches(schema, &|s| s.get("properties").and_then(|p| p.get(key))).or_else(
                || {
                    find_in_branches(schema, &|s| {
                        s.get("additionalProperties").filter(|a| a.is_object())
                    })
                },
            )
        }
        PathPart::Index(_) => find_in_branches(schema, &|s| s.get("items")),
    }?;
    schema_at(next, rest)
}

/// Looks for `pick` in the schema itself or in its `allOf`/`anyOf`/`oneOf` branches.
fn find_in_branches<'s>(
    schema: &'s serde_json::Value,
    pick: &dyn Fn(&'s serde_json::Value) -> Option<&'s serde_json::Value>,
) -> Option<&'s serde_json::Value> {
    if let Some(found) = pick(schema) {
        return Some(found);
    }
    ["allOf", "anyOf", "oneOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(|v| v.as_array()))
        .flatten()
        .find_map(|branch| find_in_branches(branch, pick))
}

fn property_names(schema: &serde_json::Value) -> Vec<String> {
    let mut names = Vec::new();
    collect_property_names(schema, &mut names);
    names
}

fn collect_property_names(schema: &serde_json::Value, names: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        names.extend(props.keys().cloned());
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for branch in schema
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            collect_property_names(branch, names);
        }
    }
}
