//! `toJSON` / `fromJSON`.

use crate::error::*;
use crate::value::*;
use crate::vm::Vm;

pub fn register(r: &mut super::Registry) {
    let _ = r;
}

pub fn to_json_string(vm: &mut Vm, v: Value) -> EvalResult<String> {
    let _ = (vm, v);
    err("toJSON is not implemented yet")
}
