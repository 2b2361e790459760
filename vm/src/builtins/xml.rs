//! `toXML` and `--xml` output.

use crate::error::*;
use crate::value::*;
use crate::vm::Vm;

pub fn register(r: &mut super::Registry) {
    let _ = r;
}

pub fn to_xml_string(vm: &mut Vm, v: Value, strict: bool, location: bool) -> EvalResult<String> {
    let _ = (vm, v, strict, location);
    err("XML output is not implemented yet")
}
