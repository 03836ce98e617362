//! The one rule by which code names are compared, shared by `build.rs` (which rejects two
//! entries whose names fold alike) and by lookup at run time (`scan : running` finds
//! `SCAN : RUNNING`).

/// Upper case, with every run of other characters folded to one `_`, none at either end.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}
