//! String enums that tolerate values they do not know.
//!
//! Objects read from an API server must never fail to decode because of one unexpected enum
//! value: a single bad object would stall a watch shared by every cluster. So each enum here
//! keeps unknown strings in an `Unknown(String)` variant that serializes back unchanged, while
//! its JSON schema still lists only the values upstream allows. Strict decoding of input from
//! people rejects `Unknown` through [`crate::strict::StrictCheck`].

/// Declares a string enum with known wire values plus an `Unknown(String)` catch-all.
///
/// Generates `as_str`, `KNOWN`, `is_known`, `Display`, `From<&str>`/`From<String>`,
/// serde (de)serialization as a plain string, an inline JSON schema with `enum` set to the known
/// values, and a [`crate::strict::StrictCheck`] impl that refuses `Unknown`. Prefix the body with
/// `plain_schema;` for enums whose schema upstream leaves as a bare string (condition status).
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $crate::open_enum::open_enum!(@define enum_schema;
            $(#[$meta])* $vis enum $name { $( $(#[$vmeta])* $variant => $wire, )+ });
    };
    (
        plain_schema;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $crate::open_enum::open_enum!(@define plain_schema;
            $(#[$meta])* $vis enum $name { $( $(#[$vmeta])* $variant => $wire, )+ });
    };
    (@schema enum_schema; $($wire:literal),+) => {
        ::schemars::json_schema!({ "type": "string", "enum": [ $( $wire ),+ ] })
    };
    (@schema plain_schema; $($wire:literal),+) => {
        ::schemars::json_schema!({ "type": "string" })
    };
    (
        @define $schema:ident;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know; kept verbatim so it round-trips.
            Unknown(::std::string::String),
        }

        impl $name {
            /// The wire values this type knows, in schema order.
            pub const KNOWN: &'static [&'static str] = &[ $( $wire ),+ ];

            /// The wire form of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Unknown(other) => other.as_str(),
                }
            }

            /// Whether this is one of [`Self::KNOWN`].
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::std::convert::From<::std::string::String> for $name {
            fn from(value: ::std::string::String) -> Self {
                match value.as_str() {
                    $( $wire => Self::$variant, )+
                    _ => Self::Unknown(value),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let value = <::std::string::String as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from(value))
            }
        }

        impl ::schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(stringify!($name))
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                $crate::open_enum::open_enum!(@schema $schema; $( $wire ),+)
            }
        }

        impl $crate::strict::StrictCheck for $name {
            fn strict_check(&self, path: &$crate::strict::FieldPath<'_>) -> ::std::result::Result<(), $crate::strict::StrictError> {
                match self {
                    Self::Unknown(value) => Err($crate::strict::StrictError::unknown_value(path, value, Self::KNOWN)),
                    _ => Ok(()),
                }
            }
        }
    };
}

pub(crate) use open_enum;
