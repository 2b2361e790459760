//! Variable-length unsigned integers (7 bits a byte, low bits first), as
//! the bytecode cache and the VM's packed spans and error contexts write
//! them.

/// Append `n`.
pub fn put(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The number `put` wrote at `b[*at..]`, moving `at` past it; `None` if
/// the bytes end first or hold no `u32`.
pub fn get(b: &[u8], at: &mut usize) -> Option<u32> {
    let mut n = 0u64;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        n |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return u32::try_from(n).ok();
        }
    }
    None
}

#[test]
fn numbers_read_back_and_cut_ones_do_not() {
    let mut b = Vec::new();
    let ns = [0, 1, 127, 128, 300, 1 << 21, u32::MAX];
    ns.iter().for_each(|&n| put(&mut b, n));
    let mut at = 0;
    for n in ns {
        assert_eq!(get(&b, &mut at), Some(n));
    }
    assert_eq!(at, b.len());
    assert_eq!(get(&b, &mut at), None, "past the end");
    assert_eq!(get(&[0x80], &mut 0), None, "cut short");
    assert_eq!(
        get(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut 0),
        None,
        "over 32 bits"
    );
}
