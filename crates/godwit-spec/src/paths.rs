//! Paths as lines of text: how lists of paths (a true-up's deletions, an index shipped
//! between agents) hold any name, whatever bytes it has.

/// `path` as one line of text: UTF-8 as it is, with `\` as `\\`, line breaks as `\n` and `\r`,
/// and bytes that are not UTF-8 as `\xNN`, so any name fits on one line and reads back exactly.
pub fn encode_line(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// The path `encode_line` wrote, or None for a line it cannot have written.
pub fn decode_line(line: &str) -> Option<Vec<u8>> {
    decode_bytes(line.as_bytes())
}

/// [`decode_line`] for a line that may hold bytes that are not UTF-8 (a list written by
/// another program): those are taken as they are.
pub fn decode_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1)? {
            b'\\' => out.push(b'\\'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'x' => {
                let hex = std::str::from_utf8(bytes.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}
