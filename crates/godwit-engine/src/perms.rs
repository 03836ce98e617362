//! Permissions: what a file's owner, group, mode, POSIX ACLs, extended attributes and times
//! are at the source (extract), what they become at the target through an owner map
//! (translate), and setting them there (apply). Each step fails for one path with its code:
//! 7020 when a principal has no mapping, 7030 when the target refuses.
//!
//! POSIX ACLs are read and written as the kernel keeps them, in the `system.posix_acl_access`
//! and `system.posix_acl_default` extended attributes (a version, then tag, permissions and id
//! for each entry), so that the ids of named users and groups in them are translated like the
//! owner's.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::error::{JobError, reason};

/// The extended attributes that hold POSIX ACLs.
const ACL_ACCESS: &str = "system.posix_acl_access";
const ACL_DEFAULT: &str = "system.posix_acl_default";

/// One entry of a POSIX ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclEntry {
    pub tag: u16,
    pub perm: u16,
    /// A named user's or group's id; `u32::MAX` for the other tags.
    pub id: u32,
}

const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;

/// A POSIX ACL as the kernel keeps it in an extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Acl(pub Vec<AclEntry>);

impl Acl {
    /// The ACL in an extended attribute's value, or None when it is not one.
    pub fn decode(b: &[u8]) -> Option<Acl> {
        if b.len() < 4
            || u32::from_le_bytes(b[..4].try_into().ok()?) != 2
            || !(b.len() - 4).is_multiple_of(8)
        {
            return None;
        }
        let entries = b[4..]
            .chunks_exact(8)
            .map(|e| AclEntry {
                tag: u16::from_le_bytes([e[0], e[1]]),
                perm: u16::from_le_bytes([e[2], e[3]]),
                id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            })
            .collect();
        Some(Acl(entries))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = 2u32.to_le_bytes().to_vec();
        for e in &self.0 {
            b.extend_from_slice(&e.tag.to_le_bytes());
            b.extend_from_slice(&e.perm.to_le_bytes());
            b.extend_from_slice(&e.id.to_le_bytes());
        }
        b
    }

    /// As `getfacl` writes it, on one line: `user::rwx,user:alice:r-x,group::r-x,mask::r-x,...`
    /// (a named user or group by its name on this machine, else its id).
    pub fn text(&self) -> String {
        let perm = |p: u16| {
            format!(
                "{}{}{}",
                if p & 4 != 0 { 'r' } else { '-' },
                if p & 2 != 0 { 'w' } else { '-' },
                if p & 1 != 0 { 'x' } else { '-' }
            )
        };
        self.0
            .iter()
            .map(|e| {
                let (kind, id) = match e.tag {
                    0x01 => ("user", String::new()),
                    ACL_USER => ("user", user_name(e.id).unwrap_or_else(|| e.id.to_string())),
                    0x04 => ("group", String::new()),
                    ACL_GROUP => (
                        "group",
                        group_name(e.id).unwrap_or_else(|| e.id.to_string()),
                    ),
                    0x10 => ("mask", String::new()),
                    _ => ("other", String::new()),
                };
                format!("{kind}:{id}:{}", perm(e.perm))
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What a path carries: its owner and group, mode, ACLs, other extended attributes, times.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// The permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub acl_access: Option<Acl>,
    pub acl_default: Option<Acl>,
    /// Other extended attributes, by name (`user.*`; `security.*` and `trusted.*` as root).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub symlink: bool,
    pub dir: bool,
    /// The target holds none of it: an object whose metadata has no owner or mode. Nothing
    /// it holds matches, and a report shows nothing for it.
    pub none: bool,
}

/// Reads what `path` carries (without following a link).
pub fn extract(path: &Path) -> io::Result<Meta> {
    let m = fs::symlink_metadata(path)?;
    let mut meta = Meta {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode() & 0o7777,
        atime: (m.atime(), m.atime_nsec()),
        mtime: (m.mtime(), m.mtime_nsec()),
        symlink: m.file_type().is_symlink(),
        dir: m.is_dir(),
        ..Meta::default()
    };
    for name in xattr_names(path)? {
        let Some(value) = xattr(path, &name)? else {
            continue;
        };
        match name.as_str() {
            ACL_ACCESS => meta.acl_access = Acl::decode(&value),
            ACL_DEFAULT => meta.acl_default = Acl::decode(&value),
            _ if carried_xattr(&name) => {
                meta.xattrs.insert(name, value);
            }
            _ => {}
        }
    }
    Ok(meta)
}

/// Whether an extended attribute is the file's own to carry: `user.*` always, `security.*`
/// and `trusted.*` (which only root may set) when running as root. `system.*` ones are the
/// file system's (ACLs are carried by name above).
fn carried_xattr(name: &str) -> bool {
    name.starts_with("user.")
        || (rustix::process::geteuid().is_root()
            && (name.starts_with("security.") || name.starts_with("trusted.")))
}

fn xattr_names(path: &Path) -> io::Result<Vec<String>> {
    let mut buf = Vec::with_capacity(256);
    loop {
        match rustix::fs::llistxattr(path, rustix::buffer::spare_capacity(&mut buf)) {
            Ok(_) => break,
            Err(rustix::io::Errno::RANGE) => buf.reserve(buf.capacity().max(256) * 2),
            // A file system without extended attributes holds none.
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect())
}

fn xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(64);
    loop {
        match rustix::fs::lgetxattr(path, name, rustix::buffer::spare_capacity(&mut buf)) {
            Ok(_) => return Ok(Some(buf)),
            Err(rustix::io::Errno::RANGE) => buf.reserve(buf.capacity().max(64) * 2),
            // Gone since it was listed.
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

pub use godwit_spec::permissions::{OwnerRules as OwnerMap, To, What};

/// Translating principals through the owner map, with this machine's names for them.
pub trait Translate {
    /// The target's id of source user `uid`.
    fn user(&self, uid: u32) -> Result<u32, String>;
    /// The target's id of source group `gid`.
    fn group(&self, gid: u32) -> Result<u32, String>;
}

impl Translate for OwnerMap {
    fn user(&self, uid: u32) -> Result<u32, String> {
        let name = user_name(uid);
        let to = name
            .as_ref()
            .and_then(|n| self.users().get(n))
            .or_else(|| self.users().get(&uid.to_string()))
            .or(self.default_user());
        let shown = name.unwrap_or_else(|| uid.to_string());
        match to {
            None if self.strict() => Err(format!(
                "user {shown} (uid {uid}) is not in the owner map, which has no default (*=...)"
            )),
            None | Some(To::Keep) => Ok(uid),
            Some(To::Id(id)) => Ok(*id),
            Some(To::Name(n)) => user_id(n).ok_or_else(|| {
                format!("user {shown} maps to {n}, which this machine does not know")
            }),
        }
    }

    fn group(&self, gid: u32) -> Result<u32, String> {
        let name = group_name(gid);
        let to = name
            .as_ref()
            .and_then(|n| self.groups().get(n))
            .or_else(|| self.groups().get(&gid.to_string()))
            .or(self.default_group());
        let shown = name.unwrap_or_else(|| gid.to_string());
        match to {
            None if self.strict() => Err(format!(
                "group {shown} (gid {gid}) is not in the owner map, which has no default (@*=...)"
            )),
            None | Some(To::Keep) => Ok(gid),
            Some(To::Id(id)) => Ok(*id),
            Some(To::Name(n)) => group_id(n).ok_or_else(|| {
                format!("group {shown} maps to @{n}, which this machine does not know")
            }),
        }
    }
}

/// Names already looked up, by (group?, id): a tree has few owners and many files, and each
/// look-up may read the whole user database.
type NameCache = std::sync::Mutex<std::collections::HashMap<(bool, u32), Option<String>>>;

static NAMES: std::sync::OnceLock<NameCache> = std::sync::OnceLock::new();

/// Forgets the names looked up: each run looks them up afresh (an agent runs for months).
fn forget_names() {
    if let Some(cache) = NAMES.get() {
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn cached_name(group: bool, id: u32, look_up: impl FnOnce() -> Option<String>) -> Option<String> {
    let cache = NAMES.get_or_init(Default::default);
    if let Some(name) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&(group, id))
    {
        return name.clone();
    }
    let name = look_up();
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert((group, id), name.clone());
    name
}

/// The name of user `uid` on this machine.
pub fn user_name(uid: u32) -> Option<String> {
    cached_name(false, uid, || {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    })
}

/// The name of group `gid` on this machine.
pub fn group_name(gid: u32) -> Option<String> {
    cached_name(true, gid, || {
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten()
            .map(|g| g.name)
    })
}

fn user_id(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// `meta` with its principals translated through `map` (the owner, the group, and the named
/// users and groups of its ACLs), keeping only what `what` carries; the reason when a principal
/// cannot be translated (7020).
pub fn translate(meta: &Meta, map: &OwnerMap, what: What) -> Result<Meta, String> {
    let mut out = Meta {
        symlink: meta.symlink,
        dir: meta.dir,
        ..Meta::default()
    };
    if what.owner {
        out.uid = map.user(meta.uid)?;
        out.gid = map.group(meta.gid)?;
    }
    if what.mode {
        out.mode = meta.mode;
    }
    if what.acl {
        let acl = |a: &Option<Acl>| -> Result<Option<Acl>, String> {
            let Some(a) = a else { return Ok(None) };
            let mut entries = Vec::with_capacity(a.0.len());
            for e in &a.0 {
                let id = match e.tag {
                    ACL_USER => map.user(e.id)?,
                    ACL_GROUP => map.group(e.id)?,
                    _ => e.id,
                };
                entries.push(AclEntry { id, ..*e });
            }
            Ok(Some(Acl(entries)))
        };
        out.acl_access = acl(&meta.acl_access)?;
        out.acl_default = acl(&meta.acl_default)?;
    }
    if what.xattr {
        out.xattrs = meta.xattrs.clone();
    }
    if what.times {
        out.atime = meta.atime;
        out.mtime = meta.mtime;
    }
    Ok(out)
}

/// Sets on `path` what `want` says, for what `what` carries: the owner first (a change of
/// owner clears setuid and setgid), then the mode, the ACLs, the extended attributes, and the
/// times last (setting the others changes none of them, but a later write would). The reason
/// when the target refuses (7030).
pub fn apply(path: &Path, want: &Meta, what: What) -> Result<(), String> {
    let fail = |step: &str, e: io::Error| format!("{step}: {}", reason(&e));
    if what.owner {
        std::os::unix::fs::lchown(path, Some(want.uid), Some(want.gid))
            .map_err(|e| fail("chown", e))?;
    }
    if what.mode && !want.symlink {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(want.mode))
            .map_err(|e| fail("chmod", e))?;
    }
    if what.acl && !want.symlink {
        for (name, acl) in [
            (ACL_ACCESS, &want.acl_access),
            (ACL_DEFAULT, &want.acl_default),
        ] {
            match acl {
                Some(a) => {
                    rustix::fs::lsetxattr(path, name, &a.encode(), rustix::fs::XattrFlags::empty())
                        .map_err(|e| fail("setfacl", e.into()))?
                }
                None => match rustix::fs::lremovexattr(path, name) {
                    Ok(()) | Err(rustix::io::Errno::NODATA) => {}
                    // A file system without ACLs has none to remove.
                    Err(rustix::io::Errno::NOTSUP) => {}
                    Err(e) => return Err(fail("setfacl", e.into())),
                },
            }
        }
    }
    if what.xattr {
        for (name, value) in &want.xattrs {
            rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
                .map_err(|e| fail(&format!("setxattr {name}"), e.into()))?;
        }
    }
    if what.times {
        use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
        let ts = |(s, ns): (i64, i64)| Timespec {
            tv_sec: s,
            tv_nsec: ns as _,
        };
        let times = Timestamps {
            last_access: ts(want.atime),
            last_modification: ts(want.mtime),
        };
        utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| fail("utimensat", e.into()))?;
    }
    Ok(())
}

/// What `meta` holds, for a report: `owner:group mode`, the ACLs as getfacl writes them, the
/// extended attributes' names, the modification time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_acl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<String>,
    pub mtime: String,
}

impl Shown {
    pub fn of(meta: &Meta) -> Shown {
        Shown {
            owner: user_name(meta.uid).unwrap_or_else(|| meta.uid.to_string()),
            group: group_name(meta.gid).unwrap_or_else(|| meta.gid.to_string()),
            uid: meta.uid,
            gid: meta.gid,
            mode: format!("{:04o}", meta.mode),
            acl: meta.acl_access.as_ref().map(Acl::text),
            default_acl: meta.acl_default.as_ref().map(Acl::text),
            xattrs: meta.xattrs.keys().cloned().collect(),
            mtime: format!("{}.{:09}", meta.mtime.0, meta.mtime.1),
        }
    }
}

/// Where permissions are set: a local folder, or an SFTP server, which carries owners, groups,
/// modes and times (in whole seconds), but no ACLs or extended attributes, and sets what a link
/// points to rather than the link.
#[derive(Debug)]
pub enum PermsTarget<'a> {
    Local(&'a Path),
    Sftp {
        sftp: &'a crate::sftp::SftpTarget,
        rt: tokio::runtime::Handle,
    },
    /// An S3 bucket or an Azure Blob container: a file's owner, group, mode and times as the
    /// object's metadata, in
    /// rclone's form (`mode` in octal with the file type, `uid`, `gid`, `atime` and `mtime` in
    /// RFC 3339), with `uname` and `gname`. Folders have nothing to hold them.
    Object {
        remote: &'a crate::store::Remote,
        client: MetadataWriter<'a>,
        /// The target's prefix in the bucket: empty, or ending with `/`.
        prefix: String,
        rt: tokio::runtime::Handle,
    },
}

/// How an object store's user metadata is replaced: S3's copy onto itself, Azure's Set Blob
/// Metadata.
#[derive(Debug)]
pub enum MetadataWriter<'a> {
    S3(crate::uploads::Client),
    Azure(&'a crate::azure::AzureTarget),
}

impl MetadataWriter<'_> {
    async fn write(
        &self,
        key: &str,
        content_type: Option<&str>,
        metadata: &[(String, String)],
    ) -> Result<(), String> {
        match self {
            MetadataWriter::S3(c) => c
                .replace_metadata(key, content_type, metadata)
                .await
                .map_err(|e| format!("copy with new metadata: {e}")),
            MetadataWriter::Azure(a) => a
                .set_metadata(key, metadata)
                .await
                .map_err(|e| format!("set blob metadata: {e}")),
        }
    }
}

/// What an object's user metadata holds of `want`, for what `what` carries: `uid`, `gid`,
/// `uname`, `gname`, `mode` (octal, with the file type), `atime` and `mtime` (RFC 3339), as
/// rclone writes them.
pub(crate) fn object_metadata(want: &Meta, what: What) -> Vec<(String, String)> {
    let mut meta = Vec::new();
    if what.owner {
        meta.push(("uid".into(), want.uid.to_string()));
        meta.push(("gid".into(), want.gid.to_string()));
        if let Some(n) = user_name(want.uid) {
            meta.push(("uname".into(), n));
        }
        if let Some(n) = group_name(want.gid) {
            meta.push(("gname".into(), n));
        }
    }
    if what.mode {
        let kind = if want.symlink { 0o120000 } else { 0o100000 };
        meta.push(("mode".into(), format!("{:o}", kind | want.mode)));
    }
    if what.times {
        meta.push(("atime".into(), rfc3339(want.atime)));
        meta.push(("mtime".into(), rfc3339(want.mtime)));
    }
    meta
}

/// A fingerprint of what `want` sets for what `what` carries, as the index keeps it for
/// permissions carried with the data: the same permissions give the same number. The access
/// time is left out: reading a file to copy it changes it at the source.
pub(crate) fn fingerprint(want: &Meta, what: What) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let flags = [what.owner, what.mode, what.acl, what.xattr, what.times];
    h.update(&flags.map(u8::from));
    if what.owner {
        h.update(&want.uid.to_le_bytes());
        h.update(&want.gid.to_le_bytes());
    }
    if what.mode {
        h.update(&want.mode.to_le_bytes());
    }
    if what.acl {
        for acl in [&want.acl_access, &want.acl_default] {
            match acl {
                Some(a) => h.update(&a.encode()),
                None => h.update(b"-"),
            }
            h.update(b"|");
        }
    }
    if what.xattr {
        for (name, value) in &want.xattrs {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(&(value.len() as u64).to_le_bytes());
            h.update(value);
        }
    }
    if what.times {
        h.update(&want.mtime.0.to_le_bytes());
        h.update(&want.mtime.1.to_le_bytes());
    }
    h.digest()
}

/// `secs.nanos` as RFC 3339, as rclone writes times in metadata.
fn rfc3339((secs, nanos): (i64, i64)) -> String {
    let t = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(secs).unwrap_or(0),
            nanos.clamp(0, 999_999_999) as u32,
        );
    humantime::format_rfc3339_nanos(t).to_string()
}

/// An RFC 3339 time as (seconds, nanoseconds).
fn parse_time(text: &str) -> Option<(i64, i64)> {
    let t = humantime::parse_rfc3339_weak(text).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((
        i64::try_from(d.as_secs()).ok()?,
        i64::from(d.subsec_nanos()),
    ))
}

/// The owner, group, mode and times an object's metadata holds (0 for what it lacks).
fn from_metadata(m: opendal::UserMetadata<'_>) -> Meta {
    let num = |k: &str, radix: u32| {
        m.get(k)
            .and_then(|v| u32::from_str_radix(v.trim(), radix).ok())
            .unwrap_or(0)
    };
    Meta {
        uid: num("uid", 10),
        gid: num("gid", 10),
        mode: num("mode", 8) & 0o7777,
        atime: m.get("atime").and_then(parse_time).unwrap_or_default(),
        mtime: m.get("mtime").and_then(parse_time).unwrap_or_default(),
        none: m.get("uid").is_none() && m.get("mode").is_none(),
        ..Meta::default()
    }
}

/// How an object store's metadata is written, and the target's prefix in it; 724 when
/// godwit cannot write it there.
fn object_writer(r: &crate::store::Remote) -> Result<(MetadataWriter<'_>, &str), JobError> {
    match (&r.s3, &r.azure) {
        (Some(s3), _) => crate::uploads::Client::new(s3)
            .map(|c| (MetadataWriter::S3(c), s3.prefix.as_str()))
            .ok_or_else(|| {
                JobError::config(
                    "permissions to S3 are written with the object's metadata, which needs \
                     static credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                )
            }),
        (None, Some(az)) => Ok((MetadataWriter::Azure(az), az.prefix.as_str())),
        (None, None) => Err(JobError::config(&format!(
            "permissions cannot be set at {}: an Azure Blob target needs the account's key \
             (AZURE_STORAGE_CONNECTION_STRING with an AccountKey, or AZURE_STORAGE_ACCOUNT \
             and AZURE_STORAGE_KEY), and an in-memory store holds none",
            r.shown
        ))),
    }
}

impl<'a> PermsTarget<'a> {
    /// Refuses (724) a target permissions cannot be set at: object metadata needs the
    /// store's own static credentials. Checked before a run starts.
    pub fn check(target: &crate::backend::Side) -> Result<(), JobError> {
        match target {
            crate::backend::Side::Remote(r) if r.sftp.is_none() => object_writer(r).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Where permissions go on `target`, whose calls `rt` drives (a remote one); 724 when
    /// they cannot be set there (see [`check`](Self::check)).
    pub fn open(
        target: &'a crate::backend::Side,
        rt: Option<&tokio::runtime::Runtime>,
    ) -> Result<PermsTarget<'a>, JobError> {
        use crate::backend::Side;
        let (r, rt) = match (target, rt) {
            (Side::Local(root), _) => return Ok(PermsTarget::Local(root)),
            (Side::Remote(r), Some(rt)) => (r, rt.handle().clone()),
            (Side::Remote(r), None) => return Err(crate::store::no_runtime(r)),
        };
        if let Some(sftp) = &r.sftp {
            return Ok(PermsTarget::Sftp { sftp, rt });
        }
        let (client, prefix) = object_writer(r)?;
        Ok(PermsTarget::Object {
            remote: r,
            client,
            prefix: prefix.to_string(),
            rt,
        })
    }

    /// What the target holds at `rel` now; the reason when it cannot be read.
    pub(crate) fn now(&self, rel: &[u8]) -> Result<Meta, String> {
        const MISSING: &str = "the target does not hold it (copy it first)";
        match self {
            PermsTarget::Local(root) => {
                let path = crate::backend::inside_target(root, rel)?;
                extract(&path).map_err(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        MISSING.to_string()
                    } else {
                        reason(&e)
                    }
                })
            }
            PermsTarget::Sftp { sftp, rt } => {
                let rel = std::str::from_utf8(rel)
                    .map_err(|_| "the name is not UTF-8, which SFTP cannot address".to_string())?;
                match rt.block_on(sftp.attributes(rel)) {
                    Ok((uid, gid, mode, atime, mtime)) => Ok(Meta {
                        uid,
                        gid,
                        mode,
                        atime: (atime, 0),
                        mtime: (mtime, 0),
                        ..Meta::default()
                    }),
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => Err(MISSING.into()),
                    Err(e) => Err(crate::store::short_reason(&e)),
                }
            }
            PermsTarget::Object { remote, rt, .. } => {
                let rel = std::str::from_utf8(rel).map_err(|_| {
                    "the name is not UTF-8, which an object store cannot address".to_string()
                })?;
                match rt.block_on(remote.op.stat(rel)) {
                    Ok(m) => Ok(m.user_metadata().map(from_metadata).unwrap_or(Meta {
                        none: true,
                        ..Meta::default()
                    })),
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => Err(MISSING.into()),
                    Err(e) => Err(crate::store::short_reason(&e)),
                }
            }
        }
    }

    /// Whether the target has nothing to hold a folder's permissions (an object store).
    pub(crate) fn no_folders(&self) -> bool {
        matches!(self, PermsTarget::Object { .. })
    }

    /// What of `what` this target carries for a path (a link: on SFTP, nothing).
    pub(crate) fn carries(&self, what: What, symlink: bool) -> What {
        match self {
            PermsTarget::Local(_) => what,
            PermsTarget::Sftp { .. } if symlink => What {
                owner: false,
                mode: false,
                acl: false,
                xattr: false,
                times: false,
            },
            PermsTarget::Sftp { .. } | PermsTarget::Object { .. } => What {
                acl: false,
                xattr: false,
                ..what
            },
        }
    }

    /// What of the source's `meta` this target cannot hold, said for the report.
    pub(crate) fn cannot(&self, meta: &Meta, what: What) -> Vec<String> {
        let mut out = Vec::new();
        if let PermsTarget::Object { .. } = self {
            if what.acl && (meta.acl_access.is_some() || meta.acl_default.is_some()) {
                out.push("ACLs: the object's metadata holds owner, group and mode only".into());
            }
            if what.xattr && !meta.xattrs.is_empty() {
                out.push("extended attributes: not carried to object metadata".into());
            }
        }
        if let PermsTarget::Sftp { .. } = self {
            if meta.symlink {
                out.push(
                    "a link's own owner, mode and times: SFTP sets those of what it points to"
                        .into(),
                );
            }
            if what.acl && (meta.acl_access.is_some() || meta.acl_default.is_some()) {
                out.push("ACLs: SFTP carries none".into());
            }
            if what.xattr && !meta.xattrs.is_empty() {
                out.push("extended attributes: SFTP carries none".into());
            }
            if what.times && (meta.mtime.1 != 0 || meta.atime.1 != 0) {
                out.push("times below a second: SFTP keeps whole seconds".into());
            }
        }
        out
    }

    /// Sets `want` (for what `what` carries) on `rel`; the reason when the target refuses.
    pub(crate) fn set(&self, rel: &[u8], want: &Meta, what: What) -> Result<(), String> {
        match self {
            PermsTarget::Local(root) => {
                apply(&crate::backend::inside_target(root, rel)?, want, what)
            }
            PermsTarget::Sftp { sftp, rt } => {
                if !(what.owner || what.mode || what.times) {
                    return Ok(());
                }
                let rel = std::str::from_utf8(rel)
                    .map_err(|_| "the name is not UTF-8, which SFTP cannot address".to_string())?;
                rt.block_on(sftp.set_attributes(
                    rel,
                    what.owner.then_some((want.uid, want.gid)),
                    what.mode.then_some(want.mode),
                    what.times.then_some((want.atime.0, want.mtime.0)),
                ))
                .map_err(|e| format!("setstat: {}", crate::store::short_reason(&e)))
            }
            PermsTarget::Object {
                remote,
                client,
                prefix,
                rt,
            } => {
                let rel = std::str::from_utf8(rel).map_err(|_| {
                    "the name is not UTF-8, which an object store cannot address".to_string()
                })?;
                rt.block_on(async {
                    // What the object holds already (godwit's own time among it) stays.
                    let stat = remote
                        .op
                        .stat(rel)
                        .await
                        .map_err(|e| format!("head: {}", crate::store::short_reason(&e)))?;
                    let mut meta: BTreeMap<String, String> = stat
                        .user_metadata()
                        .map(|m| {
                            m.into_iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    meta.extend(object_metadata(want, what));
                    let meta: Vec<(String, String)> = meta.into_iter().collect();
                    client
                        .write(&format!("{prefix}{rel}"), stat.content_type(), &meta)
                        .await
                })
            }
        }
    }
}

/// How a permissions run goes.
#[derive(Debug, Clone)]
pub struct PermsOptions {
    pub what: What,
    pub map: OwnerMap,
    /// Apply nothing: report what would be set.
    pub simulate: bool,
    /// The names the target holds for sanitized source names.
    pub filter: crate::filter::Filter,
    /// Where a simulation keeps what it said would be set, path by path, for the real run
    /// after it to compare with (`None`: not kept).
    pub simulation: Option<std::path::PathBuf>,
}

/// What a permissions run did (or, simulated, would do), as the summary keeps it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PermsTally {
    pub simulate: bool,
    /// Paths whose permissions were set (or would be).
    pub applied: u64,
    /// Paths with a principal the owner map does not translate (7020).
    pub untranslatable: u64,
    /// Paths the target refused, or does not hold (7030).
    pub failed: u64,
    /// Of the paths applied, those the target held as they should be already: nothing was
    /// set on them (a run after an interrupted one sets only what it had not).
    pub already: u64,
    /// The simulation this run followed, and the paths whose permissions at the source are
    /// not what it reported (re-read, set as they are now, and marked in the report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_simulation: Option<SinceSimulation>,
    /// Source paths that could not be read.
    pub unreadable: u64,
    /// Folders the target has nothing to hold permissions for (an object store): recorded,
    /// with nothing set.
    #[serde(skip_serializing_if = "is_zero")]
    pub folders_not_held: u64,
    /// Paths each owner at the target gets (or would get), by name.
    pub owners: BTreeMap<String, u64>,
    /// Paths each group at the target gets (or would get), by name.
    pub groups: BTreeMap<String, u64>,
    /// The run folder's report: one line a path, what is there now and what is (or would be)
    /// set.
    pub report: String,
}

/// How a run compares with the simulation before it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinceSimulation {
    /// The simulation's run id.
    pub run: String,
    /// Paths whose permissions differ from what it reported, or that it did not see.
    pub changed: u64,
}

/// What a simulation said would be set on each path: a small database in the migration's
/// folder, replaced by each simulation and used up by the real run after it.
struct Simulated {
    db: redb::Database,
    run: String,
}

const SIMULATED: redb::TableDefinition<&[u8], u64> = redb::TableDefinition::new("would-set");
const SIMULATED_RUN: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("run");

impl Simulated {
    /// A new record of simulation `run` at `path`, replacing any earlier one.
    fn create(path: &Path, run: &str) -> Result<Simulated, redb::Error> {
        let _ = fs::remove_file(path);
        let db = redb::Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(SIMULATED)?;
        txn.open_table(SIMULATED_RUN)?.insert("run", run)?;
        txn.commit()?;
        Ok(Simulated {
            db,
            run: run.to_string(),
        })
    }

    /// The last simulation's record, if there is one.
    fn open(path: &Path) -> Option<Simulated> {
        if !path.exists() {
            return None;
        }
        let db = redb::Database::open(path).ok()?;
        let run = {
            let txn = redb::ReadableDatabase::begin_read(&db).ok()?;
            let table = txn.open_table(SIMULATED_RUN).ok()?;
            table.get("run").ok()??.value().to_string()
        };
        Some(Simulated { db, run })
    }

    fn add(&self, prints: &[(Vec<u8>, u64)]) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(SIMULATED)?;
            for (rel, print) in prints {
                table.insert(rel.as_slice(), print)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn get(&self, rel: &[u8]) -> Option<u64> {
        let txn = redb::ReadableDatabase::begin_read(&self.db).ok()?;
        let table = txn.open_table(SIMULATED).ok()?;
        table.get(rel).ok()?.map(|v| v.value())
    }
}

/// Whether the target holds `want` already, for what `what` carries (the modification time
/// stands for the times: the access time changes whenever a file is read).
fn held_already(dst: &PermsTarget<'_>, now: &Meta, want: &Meta, what: What) -> bool {
    let seconds_only = matches!(dst, PermsTarget::Sftp { .. });
    !now.none
        && (!what.owner || (now.uid, now.gid) == (want.uid, want.gid))
        && (!what.mode || want.symlink || now.mode == want.mode)
        && (!what.acl
            || want.symlink
            || (now.acl_access == want.acl_access && now.acl_default == want.acl_default))
        && (!what.xattr
            || want
                .xattrs
                .iter()
                .all(|(k, v)| now.xattrs.get(k) == Some(v)))
        && (!what.times
            || if seconds_only {
                now.mtime.0 == want.mtime.0
            } else {
                now.mtime == want.mtime
            })
}

/// One line of `permissions.jsonl`.
#[derive(Debug, Serialize)]
struct ReportLine<'a> {
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_path: Option<&'a str>,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    now: Option<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    set: Option<Shown>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cannot: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// The target held it so already: nothing was set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    already: bool,
    /// Its permissions at the source are not what the simulation before this run reported
    /// (`changed`), or it did not see the path (`new`).
    #[serde(skip_serializing_if = "Option::is_none")]
    since_simulation: Option<&'static str>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the last simulation said would be set, in the migration's folder.
pub const SIMULATION_FILE: &str = "permissions-simulation.redb";

/// The report file of a permissions run.
pub const REPORT_FILE: &str = "permissions.jsonl";

/// Carries the permissions of every path of the local source `src` (the root folder too) to
/// the same path at the local target `dst`, recording each in the copy log and the report.
#[allow(clippy::too_many_arguments)]
pub fn carry(
    src: &Path,
    dst: &PermsTarget<'_>,
    index: Option<&crate::index::Index>,
    options: &PermsOptions,
    run: &crate::state::Run,
    log: &mut crate::record::CopyLog,
    stop: &std::sync::atomic::AtomicBool,
    progress: &std::sync::atomic::AtomicU64,
) -> Result<PermsTally, JobError> {
    use crate::walk::{Event, WalkOptions, walk};
    use std::io::Write;
    forget_names();
    let report_path = run.dir.join(REPORT_FILE);
    let file = fs::File::create(&report_path).map_err(|e| {
        let shown = report_path.display().to_string();
        JobError::new(
            godwit_codes::Code::SCAN_REPORT_FOLDER_ERROR,
            &[("path", &shown), ("reason", &reason(&e))],
        )
    })?;
    let mut report = io::BufWriter::new(file);
    let mut tally = PermsTally {
        simulate: options.simulate,
        report: report_path.display().to_string(),
        ..PermsTally::default()
    };
    let report_error =
        |e: io::Error| JobError::config(&format!("{}: {}", report_path.display(), reason(&e)));
    // A simulation keeps what it would set; the real run after it compares.
    let simulation_error = |e: redb::Error| {
        let path = options.simulation.as_deref().unwrap_or(Path::new(""));
        JobError::config(&format!("{}: {e}", path.display()))
    };
    let simulated = match (&options.simulation, options.simulate) {
        (Some(path), true) => Some(Simulated::create(path, &run.id).map_err(simulation_error)?),
        (Some(path), false) => Simulated::open(path),
        (None, _) => None,
    };
    let mut would_set: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut changed = 0u64;
    let mut one = |rel: &[u8],
                   tally: &mut PermsTally,
                   log: &mut crate::record::CopyLog|
     -> Result<(), JobError> {
        progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut line = one_path(src, dst, index, options, rel, tally);
        match (&simulated, line.print) {
            (Some(sim), Some(print)) if options.simulate => {
                would_set.push((rel.to_vec(), print));
                if would_set.len() >= 4096 {
                    sim.add(&std::mem::take(&mut would_set))
                        .map_err(simulation_error)?;
                }
            }
            (Some(sim), Some(print)) => {
                line.since_simulation = match sim.get(rel) {
                    None => Some("new"),
                    Some(p) if p != print => Some("changed"),
                    Some(_) => None,
                };
                changed += u64::from(line.since_simulation.is_some());
            }
            _ => {}
        }
        log.write(run, &line.record)?;
        let text = serde_json::to_string(&line.report(&line.record)).unwrap_or_default();
        writeln!(report, "{text}").map_err(report_error)
    };
    one(b"", &mut tally, log)?;
    let (tx, rx) = crossbeam_channel::bounded::<Event>(4096 / crate::walk::BATCH_EVENTS);
    let walk_options = WalkOptions {
        follow_links: false,
        threads: 2,
        list_names: false,
        batch: true,
    };
    std::thread::scope(|s| -> Result<(), JobError> {
        s.spawn(|| {
            walk(src, walk_options, &options.filter, &|_| {}, &tx, stop);
            drop(tx);
        });
        for event in crate::walk::events(&rx) {
            match event {
                Event::Entry(e) => one(&e.rel, &mut tally, log)?,
                Event::Error { rel, error } => {
                    tally.unreadable += 1;
                    let record = crate::record::CopyRecord::new(
                        &rel,
                        0,
                        godwit_codes::Code::AZSM2061,
                        &[("reason", &reason(&error))],
                    );
                    log.write(run, &record)?;
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    report.flush().map_err(report_error)?;
    if let Some(sim) = simulated {
        if options.simulate {
            sim.add(&would_set).map_err(simulation_error)?;
        } else {
            tally.since_simulation = Some(SinceSimulation {
                run: sim.run.clone(),
                changed,
            });
            drop(sim);
            if !stop.load(std::sync::atomic::Ordering::Relaxed)
                && let Some(path) = &options.simulation
            {
                // Used up: the next run compares with the next simulation.
                let _ = fs::remove_file(path);
            }
        }
    }
    Ok(tally)
}

/// One path's record and report line.
struct PathResult {
    record: crate::record::CopyRecord,
    now: Option<Meta>,
    set: Option<Meta>,
    cannot: Vec<String>,
    reason: Option<String>,
    already: bool,
    /// The fingerprint of what is (or would be) set, for the simulation's record.
    print: Option<u64>,
    since_simulation: Option<&'static str>,
}

impl PathResult {
    fn report<'a>(&'a self, r: &'a crate::record::CopyRecord) -> ReportLine<'a> {
        ReportLine {
            path: &r.path,
            target_path: r.target_path.as_deref(),
            code: r.code.id(),
            now: self.now.as_ref().filter(|m| !m.none).map(Shown::of),
            set: self.set.as_ref().map(Shown::of),
            cannot: self.cannot.clone(),
            reason: self.reason.as_deref(),
            already: self.already,
            since_simulation: self.since_simulation,
        }
    }
}

fn one_path(
    src: &Path,
    dst: &PermsTarget<'_>,
    index: Option<&crate::index::Index>,
    options: &PermsOptions,
    rel: &[u8],
    tally: &mut PermsTally,
) -> PathResult {
    use godwit_codes::Code;
    use std::os::unix::ffi::OsStrExt;
    let target = index
        .and_then(|i| i.target_name(rel).ok().flatten())
        .unwrap_or_else(|| rel.to_vec());
    let shown_target = (target != rel).then(|| crate::record::display_path(&target));
    let result = |code: Code, params: &[(&str, &str)], why: Option<&str>| {
        let mut record = crate::record::CopyRecord::new(rel, 0, code, params);
        record.target_path = shown_target.clone();
        PathResult {
            record,
            now: None,
            set: None,
            cannot: Vec::new(),
            reason: why.map(str::to_string),
            already: false,
            print: None,
            since_simulation: None,
        }
    };
    let meta = match extract(&src.join(std::ffi::OsStr::from_bytes(rel))) {
        Ok(m) => m,
        Err(e) => {
            tally.unreadable += 1;
            let why = reason(&e);
            return result(Code::AZSM2063, &[("reason", &why)], Some(&why));
        }
    };
    let shown = crate::record::display_path(rel);
    if meta.dir && dst.no_folders() {
        // Nothing to set; said in the report, not a failure.
        tally.folders_not_held += 1;
        let mut r = result(Code::AZSM0000, &[], None);
        r.cannot = vec!["a folder's permissions: the store has no folders to hold them".into()];
        return r;
    }
    let now = match dst.now(&target) {
        Ok(now) => now,
        Err(why) => {
            tally.failed += 1;
            return result(
                Code::PERMISSION_APPLY_FAILURE,
                &[("path", &shown), ("reason", &why)],
                Some(&why),
            );
        }
    };
    let what = dst.carries(options.what, meta.symlink);
    let mut want = match translate(&meta, &options.map, what) {
        Ok(w) => w,
        Err(why) => {
            tally.untranslatable += 1;
            let mut r = result(
                Code::PERMISSION_TRANSLATION_ERROR,
                &[("path", &shown), ("reason", &why)],
                Some(&why),
            );
            r.now = Some(now);
            return r;
        }
    };
    let print = fingerprint(&want, what);
    // What is not carried stays as the target has it.
    if !what.owner {
        (want.uid, want.gid) = (now.uid, now.gid);
    }
    if !what.mode {
        want.mode = now.mode;
    }
    if !what.times {
        (want.atime, want.mtime) = (now.atime, now.mtime);
    }
    let mut cannot = dst.cannot(&meta, options.what);
    let root = rustix::process::geteuid().is_root();
    if matches!(dst, PermsTarget::Local(_))
        && what.owner
        && !root
        && (want.uid != now.uid || want.gid != now.gid)
    {
        cannot.push("owner and group: only root may give a file to another user".to_string());
    }
    let already = held_already(dst, &now, &want, what);
    let applied = if options.simulate || already {
        Ok(())
    } else {
        dst.set(&target, &want, what)
    };
    let mut r = match &applied {
        Ok(()) => {
            tally.applied += 1;
            tally.already += u64::from(already);
            let owner = user_name(want.uid).unwrap_or_else(|| want.uid.to_string());
            let group = group_name(want.gid).unwrap_or_else(|| want.gid.to_string());
            *tally.owners.entry(owner).or_default() += 1;
            *tally.groups.entry(group).or_default() += 1;
            result(Code::AZSM0000, &[], None)
        }
        Err(why) => {
            tally.failed += 1;
            result(
                Code::PERMISSION_APPLY_FAILURE,
                &[("path", &shown), ("reason", why)],
                Some(why),
            )
        }
    };
    r.now = Some(now);
    r.set = Some(want);
    r.cannot = cannot;
    r.already = already && applied.is_ok();
    r.print = Some(print);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acl_reads_back_as_it_was_written() {
        let acl = Acl(vec![
            AclEntry {
                tag: 0x01,
                perm: 7,
                id: u32::MAX,
            },
            AclEntry {
                tag: ACL_USER,
                perm: 5,
                id: 4_000_000_001,
            },
            AclEntry {
                tag: 0x04,
                perm: 5,
                id: u32::MAX,
            },
            AclEntry {
                tag: 0x10,
                perm: 5,
                id: u32::MAX,
            },
            AclEntry {
                tag: 0x20,
                perm: 0,
                id: u32::MAX,
            },
        ]);
        assert_eq!(Acl::decode(&acl.encode()), Some(acl.clone()));
        assert_eq!(
            acl.text(),
            "user::rwx,user:4000000001:r-x,group::r-x,mask::r-x,other::---"
        );
        assert_eq!(Acl::decode(b"\x01\0\0\0"), None, "another version");
        assert_eq!(Acl::decode(b"\x02\0\0\0\x01"), None, "a broken entry");
    }

    #[test]
    fn an_owner_map_maps_ids_and_refuses_what_it_does_not_name() {
        let map = OwnerMap::parse("# ids\n1001=2001\n@1002=@2002 # a group\nroot=keep\n").unwrap();
        assert_eq!(map.user(1001), Ok(2001));
        assert_eq!(map.group(1002), Ok(2002));
        assert_eq!(map.user(0), Ok(0), "root by name, kept");
        let e = map.user(4242).unwrap_err();
        assert!(e.contains("4242") && e.contains("no default"), "{e}");
        let map = OwnerMap::parse("*=keep\n@*=@3000").unwrap();
        assert_eq!(map.user(4242), Ok(4242));
        assert_eq!(map.group(4242), Ok(3000));
        assert_eq!(OwnerMap::default().user(4242), Ok(4242), "no map: ids kept");
        for bad in ["alice", "@staff=bob", "=x", "a="] {
            let e = OwnerMap::parse(bad).unwrap_err();
            assert!(
                e.message.contains("owner map line 1"),
                "{bad}: {}",
                e.message
            );
        }
        assert!(What::parse("owner,dance").is_err());
        assert_eq!(
            What::parse("mode,times").unwrap(),
            What {
                owner: false,
                mode: true,
                acl: false,
                xattr: false,
                times: true
            }
        );
    }

    #[test]
    fn a_file_carries_its_mode_xattrs_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"x").unwrap();
        fs::write(&b, b"y").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&a, fs::Permissions::from_mode(0o2750)).unwrap();
        let xattrs = rustix::fs::lsetxattr(&a, "user.tag", b"v1", rustix::fs::XattrFlags::empty());
        let meta = extract(&a).unwrap();
        let want = translate(&meta, &OwnerMap::default(), What::default()).unwrap();
        apply(&b, &want, What::default()).unwrap();
        let got = extract(&b).unwrap();
        assert_eq!(got.mode, 0o2750);
        assert_eq!(got.mtime, meta.mtime);
        if xattrs.is_ok() {
            assert_eq!(
                got.xattrs.get("user.tag").map(Vec::as_slice),
                Some(&b"v1"[..])
            );
        }
    }
}
