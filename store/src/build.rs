//! Realising derivations (see the module docs once written).
