//! serde for Nix values: [`from_value`] reads a Rust type out of a value,
//! forcing only what the type asks for; [`to_value`] builds a value from
//! Rust data. Sets map to structs and maps (in name order), lists to
//! sequences and tuples, `null` to `None` and `()`. Enums are externally
//! tagged, as serde_json writes them: a unit variant is its name as a
//! string, any other a set of one attribute named after the variant.

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::value::{Attrs, Value, View};
use crate::vm::Vm;
use nixvm_compiler::Symbol;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use std::fmt;

/// Read a `T` out of `v`, forcing what `T` needs of it and nothing more.
/// A value of the wrong shape is an error naming where it is
/// ("while reading attribute 'port'").
pub fn from_value<T: de::DeserializeOwned>(vm: &mut Vm, v: &Value) -> EvalResult<T> {
    T::deserialize(Deserializer {
        vm,
        value: v.clone(),
    })
    .map_err(|e| e.0)
}

/// A value made from `data`. Integers beyond 64 signed bits, and map keys
/// that are not strings, are errors.
pub fn to_value<T: Serialize + ?Sized>(data: &T) -> EvalResult<Value> {
    data.serialize(Serializer).map_err(|e| e.0)
}

/// An evaluation error, as serde's traits need it.
#[derive(Debug)]
pub struct Error(pub Box<EvalError>);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.msg)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(EvalError::new(ErrorKind::Type, msg.to_string()))
    }
}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(EvalError::new(ErrorKind::Other, msg.to_string()))
    }
}

fn with_frame(mut e: Error, frame: impl FnOnce() -> String) -> Error {
    e.0.add_trace(frame(), None);
    e
}

// ---- reading --------------------------------------------------------------

struct Deserializer<'a> {
    vm: &'a mut Vm,
    value: Value,
}

impl Deserializer<'_> {
    fn forced(&mut self) -> Result<Value, Error> {
        self.vm.force(self.value.clone()).map_err(Error)
    }
}

fn unexpected(v: &Value) -> Error {
    Error(EvalError::new(
        ErrorKind::Type,
        format!(
            "cannot read {} into a Rust value: {}",
            v.show_type(),
            crate::print::show_short(v)
        ),
    ))
}

impl<'de> de::Deserializer<'de> for Deserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        let v = self.forced()?;
        match v.view() {
            View::Null => visitor.visit_unit(),
            View::Bool(b) => visitor.visit_bool(b),
            View::Int(n) => visitor.visit_i64(n),
            View::Float(f) => visitor.visit_f64(f),
            View::String(s) => match std::str::from_utf8(s.as_bytes()) {
                Ok(s) => visitor.visit_str(s),
                Err(_) => visitor.visit_bytes(s.as_bytes()),
            },
            View::Path(p) => visitor.visit_str(p.as_str()),
            View::Attrs(a) => {
                let entries = (a.sorted_by_name().into_iter())
                    .map(|(k, v)| (k, v.clone()))
                    .collect::<Vec<_>>();
                visitor.visit_map(SetAccess {
                    vm: self.vm,
                    entries: entries.into_iter(),
                    current: None,
                })
            }
            View::List(l) => {
                let items = l.iter().cloned().collect::<Vec<_>>();
                visitor.visit_seq(ListAccess {
                    vm: self.vm,
                    items: items.into_iter(),
                    index: 0,
                })
            }
            _ => Err(unexpected(&v)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        let v = self.forced()?;
        if matches!(v.view(), View::Null) {
            visitor.visit_none()
        } else {
            visitor.visit_some(Deserializer {
                vm: self.vm,
                value: v,
            })
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let v = self.forced()?;
        match v.view() {
            View::String(s) => visitor.visit_enum(s.to_str().into_owned().into_deserializer()),
            View::Attrs(a) if a.len() == 1 => {
                let (k, inner) = a.iter().next().map(|(k, v)| (k, v.clone())).expect("one");
                visitor.visit_enum(EnumAccess {
                    vm: self.vm,
                    variant: k,
                    value: inner,
                })
            }
            _ => Err(with_frame(unexpected(&v), || {
                format!("while reading enum '{name}' (a string, or a set of one attribute)")
            })),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier
    }

    /// What the type does not ask for is not forced (an attribute a struct
    /// has no field for may be a `throw`).
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct SetAccess<'a> {
    vm: &'a mut Vm,
    entries: std::vec::IntoIter<(Symbol, Value)>,
    current: Option<(Symbol, Value)>,
}

impl<'de> de::MapAccess<'de> for SetAccess<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.current = Some((k, v));
                seed.deserialize(k.as_str().into_deserializer()).map(Some)
            }
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (k, v) = self.current.take().expect("a key first");
        seed.deserialize(Deserializer {
            vm: self.vm,
            value: v,
        })
        .map_err(|e| with_frame(e, || format!("while reading attribute '{k}'")))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct ListAccess<'a> {
    vm: &'a mut Vm,
    items: std::vec::IntoIter<Value>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for ListAccess<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(v) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(Deserializer {
            vm: self.vm,
            value: v,
        })
        .map(Some)
        .map_err(|e| with_frame(e, || format!("while reading list element {i}")))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct EnumAccess<'a> {
    vm: &'a mut Vm,
    variant: Symbol,
    value: Value,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = Error;
    type Variant = Deserializer<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let name = seed.deserialize(self.variant.as_str().into_deserializer())?;
        Ok((
            name,
            Deserializer {
                vm: self.vm,
                value: self.value,
            },
        ))
    }
}

impl<'de> de::VariantAccess<'de> for Deserializer<'_> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

// ---- building -------------------------------------------------------------

struct Serializer;

fn int(n: impl TryInto<i64> + fmt::Display + Copy) -> Result<Value, Error> {
    match n.try_into() {
        Ok(n) => Ok(Value::Int(n)),
        Err(_) => Err(Error(EvalError::new(
            ErrorKind::Overflow,
            format!("{n} does not fit in a Nix integer (64 bits, signed)"),
        ))),
    }
}

fn set(entries: Vec<(Symbol, Value)>) -> Value {
    Value::attrs(Attrs::from_unsorted(entries))
}

/// A list being built.
struct Seq(Vec<Value>, Option<&'static str>);
/// A set being built, and the key whose value comes next.
struct Map(Vec<(Symbol, Value)>, Option<Symbol>, Option<&'static str>);

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Map;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value, Error> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        Ok(Value::Float(v as f64))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::str(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::str(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::list(
            v.iter().map(|&b| Value::Int(b as i64)).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::str(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        Ok(set(vec![(
            Symbol::intern(variant),
            v.serialize(Serializer)?,
        )]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, Error> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0)), None))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _n: &'static str, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq, Error> {
        Ok(Seq(Vec::with_capacity(len), Some(variant)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map, Error> {
        Ok(Map(Vec::with_capacity(len.unwrap_or(0)), None, None))
    }
    fn serialize_struct(self, _n: &'static str, len: usize) -> Result<Map, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Map, Error> {
        Ok(Map(Vec::with_capacity(len), None, Some(variant)))
    }
}

impl Seq {
    fn done(self) -> Value {
        let list = Value::list(self.0);
        match self.1 {
            Some(variant) => set(vec![(Symbol::intern(variant), list)]),
            None => list,
        }
    }
}

macro_rules! seq_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Seq {
            type Ok = Value;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.0.push(v.serialize(Serializer)?);
                Ok(())
            }
            fn end(self) -> Result<Value, Error> {
                Ok(self.done())
            }
        }
    };
}
seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

impl Map {
    /// The set; a name given twice is an error (looked for once, in sorted
    /// names, not at every field: a map of n entries stays n log n).
    fn done(self) -> Result<Value, Error> {
        let mut names: Vec<Symbol> = self.0.iter().map(|(k, _)| *k).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            let key = w[0];
            return Err(ser::Error::custom(format!("attribute '{key}' given twice")));
        }
        let s = set(self.0);
        Ok(match self.2 {
            Some(variant) => set(vec![(Symbol::intern(variant), s)]),
            None => s,
        })
    }
    fn field<T: Serialize + ?Sized>(&mut self, key: Symbol, v: &T) -> Result<(), Error> {
        self.0.push((key, v.serialize(Serializer)?));
        Ok(())
    }
}

impl ser::SerializeMap for Map {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let k = key.serialize(Serializer)?;
        match k.view() {
            View::String(s) => {
                self.1 = Some(Symbol::intern(&s.to_str()));
                Ok(())
            }
            _ => Err(ser::Error::custom(format!(
                "an attribute name must be a string, not {}",
                k.show_type()
            ))),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let k = self.1.take().expect("a key first");
        self.field(k, v)
    }
    fn end(self) -> Result<Value, Error> {
        self.done()
    }
}

macro_rules! struct_impl {
    ($trait:ident) => {
        impl ser::$trait for Map {
            type Ok = Value;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                self.field(Symbol::intern(key), v)
            }
            fn end(self) -> Result<Value, Error> {
                self.done()
            }
        }
    };
}
struct_impl!(SerializeStruct);
struct_impl!(SerializeStructVariant);
