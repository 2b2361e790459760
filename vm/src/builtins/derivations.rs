//! `derivationStrict`, `derivation`, and instantiation.

use crate::error::*;
use crate::value::*;
use crate::vm::Vm;

pub fn register(r: &mut super::Registry) {
    let _ = r;
}

pub fn instantiate(vm: &mut Vm, v: Value) -> EvalResult<Vec<String>> {
    let _ = (vm, v);
    err("instantiation is not implemented yet")
}
