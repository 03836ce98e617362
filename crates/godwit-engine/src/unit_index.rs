//! A pool work unit's part of its migration's index, carried between agents: written out as
//! rows when an agent ends the unit, read in by whichever agent runs that part next. The
//! engine keeps an index for each set of include rules (a unit's part), so a unit that runs
//! on another agent than last time still knows what godwit wrote at the target for its part:
//! a true-up deletes there only what godwit wrote, as it wrote it.

use std::path::Path;

use godwit_spec::Location;
use godwit_spec::paths::{decode_line, encode_line};
use godwit_spec::protocol::IndexRow;

use crate::error::JobError;
use crate::index::{Index, IndexEntry};
use crate::state::Migration;

/// Rows sent or stored at a time.
pub const PAGE: usize = 1000;

/// Calls `page` with the rows of the index of the migration from `source` to `target` with
/// `include` rules, in path order, `PAGE` at a time (the first call's `first` is true; an empty
/// index is one empty page, so the part is emptied where it is kept). Memory holds one page.
pub fn export(
    state_dir: &Path,
    (source, target): (&Location, &Location),
    include: &[String],
    mut page: impl FnMut(bool, Vec<IndexRow>),
) -> Result<u64, JobError> {
    let migration = Migration::open(state_dir, source, Some(target), include)?;
    let index = Index::open(&migration.dir.join("index.redb"))?;
    let (mut rows, mut first, mut count) = (Vec::with_capacity(PAGE), true, 0u64);
    index.for_each_file(|rel, e, name| {
        rows.push(IndexRow {
            path: encode_line(rel),
            size: e.size,
            mtime_ns: e.mtime_ns,
            hash: if e.hash == 0 {
                String::new()
            } else {
                format!("{:032x}", e.hash)
            },
            ino: e.ino,
            target: name.map(encode_line),
        });
        count += 1;
        if rows.len() == PAGE {
            page(
                first,
                std::mem::replace(&mut rows, Vec::with_capacity(PAGE)),
            );
            first = false;
        }
        true
    })?;
    if first || !rows.is_empty() {
        page(first, rows);
    }
    Ok(count)
}

/// Replaces the index of the migration from `source` to `target` with `include` rules by the
/// rows `next` gives, page by page until it gives None (or an error). A row that cannot be
/// read (a path no `encode_line` wrote, a hash that is not hex) is left out: the file is then
/// unknown to the index, so a true-up does not delete it. Returns (rows written, left out).
pub fn import(
    state_dir: &Path,
    (source, target): (&Location, &Location),
    include: &[String],
    mut next: impl FnMut() -> Result<Option<Vec<IndexRow>>, JobError>,
) -> Result<(u64, u64), JobError> {
    let migration = Migration::open(state_dir, source, Some(target), include)?;
    let path = migration.dir.join("index.redb");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            let shown = path.display().to_string();
            return Err(JobError::new(
                godwit_codes::Code::MIGRATION_UPDATE_ERROR,
                &[("path", &shown), ("reason", &crate::error::reason(&e))],
            ));
        }
    }
    let index = Index::open(&path)?;
    let (mut written, mut left_out) = (0u64, 0u64);
    while let Some(rows) = next()? {
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let hash = if row.hash.is_empty() {
                Some(0)
            } else {
                u128::from_str_radix(&row.hash, 16).ok()
            };
            let (Some(rel), Some(hash)) = (decode_line(&row.path), hash) else {
                left_out += 1;
                continue;
            };
            if let Some(name) = row.target.as_deref().and_then(decode_line) {
                index.claim_target_name(&rel, &[name])?;
            }
            entries.push((
                rel,
                IndexEntry {
                    size: row.size,
                    mtime_ns: row.mtime_ns,
                    hash,
                    ino: row.ino,
                },
            ));
        }
        written += entries.len() as u64;
        index.insert_batch(&entries)?;
    }
    Ok((written, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_goes_out_as_rows_and_comes_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (src, dst) = (Location::Local(a.clone()), Location::Local(b.clone()));
        let include = vec!["d/**".to_string()];
        let state = dir.path().join("state");
        {
            let m = Migration::open(&state, &src, Some(&dst), &include).unwrap();
            let index = Index::open(&m.dir.join("index.redb")).unwrap();
            let mut entries = Vec::new();
            for i in 0..2500u64 {
                let rel = format!("d/f{i:05}").into_bytes();
                entries.push((
                    rel,
                    IndexEntry {
                        size: i,
                        mtime_ns: i as i64 * 7,
                        hash: u128::from(i) << 64,
                        ino: i + 1,
                    },
                ));
            }
            // A name that is not UTF-8, with a line break, written at the target as another.
            let odd = b"d/odd\n\xff".to_vec();
            entries.push((
                odd.clone(),
                IndexEntry {
                    size: 3,
                    mtime_ns: -5,
                    hash: 0,
                    ino: 0,
                },
            ));
            index.insert_batch(&entries).unwrap();
            index
                .claim_target_name(&odd, &[b"d/odd_".to_vec()])
                .unwrap();
        }
        let mut pages = Vec::new();
        let n = export(&state, (&src, &dst), &include, |first, rows| {
            pages.push((first, rows))
        })
        .unwrap();
        assert_eq!(n, 2501);
        assert_eq!(pages.len(), 3);
        assert!(pages[0].0 && !pages[1].0 && !pages[2].0);
        // Another agent's state directory reads them in.
        let other = dir.path().join("other");
        let mut it = pages.clone().into_iter();
        let (written, left_out) = import(&other, (&src, &dst), &include, || {
            Ok(it.next().map(|p| p.1))
        })
        .unwrap();
        assert_eq!((written, left_out), (2501, 0));
        let mut again = Vec::new();
        export(&other, (&src, &dst), &include, |first, rows| {
            again.push((first, rows))
        })
        .unwrap();
        assert_eq!(again, pages);
        let m = Migration::open(&other, &src, Some(&dst), &include).unwrap();
        let index = Index::open(&m.dir.join("index.redb")).unwrap();
        assert_eq!(
            index.target_name(b"d/odd\n\xff").unwrap(),
            Some(b"d/odd_".to_vec())
        );
        drop(index);
        drop(m);
        // An empty part is one empty page; reading it in leaves an empty index, not the old one.
        let mut empty = vec![(true, Vec::new())].into_iter();
        import(&other, (&src, &dst), &include, || {
            Ok(empty.next().map(|p| p.1))
        })
        .unwrap();
        let mut seen = Vec::new();
        export(&other, (&src, &dst), &include, |first, rows| {
            seen.push((first, rows.len()))
        })
        .unwrap();
        assert_eq!(seen, vec![(true, 0)]);
    }
}
