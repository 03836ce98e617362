//! Every option of a job, typed. The command line fills them from its flags, the control plane
//! keeps them as a migration's options, and the agent receives them with each command. On the
//! wire they are camelCase JSON; a field the receiver does not know is refused (1030 at the
//! agent, 605 at the API), never ignored, so a misspelt option cannot silently turn a feature
//! off.

use godwit_codes::Code;
use serde::{Deserialize, Serialize};

use crate::error::JobError;
use crate::filter::FilterRules;
use crate::location::StoreKind;

/// How much to check after writing a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Verify {
    /// Trust what was written.
    None,
    /// The size written must be the source's (the default).
    #[default]
    Size,
    /// Re-read the target and compare its checksum with the source's.
    Full,
}

/// What to do with symbolic links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Links {
    /// Leave them out, each recorded as AZSM2021 (the default: nothing silently changes).
    #[default]
    Skip,
    /// Copy what they point to.
    Follow,
    /// Recreate the link itself at the target (a local target only; elsewhere AZSM2021).
    Copy,
}

/// Names the target cannot hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum SanitizeMode {
    /// Such files are recorded as unsupported (AZSM2022-2024) and not copied.
    #[default]
    Off,
    /// Renamed at the target while copying; the source keeps its names.
    OnTheFly,
    /// The `sanitize` command renames them on the source itself.
    InPlace,
}

/// What decides whether a file is already at the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Compare {
    /// godwit's index of what it wrote (no request to the target for an unchanged file).
    #[default]
    Index,
    /// A listing of the target (a target changed behind godwit's back, or a lost index).
    Target,
}

/// The rules of a kind of target, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ProfileName {
    S3,
    AzureBlob,
    Sftp,
    Posix,
    Windows,
}

impl ProfileName {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::S3 => "s3",
            ProfileName::AzureBlob => "azure-blob",
            ProfileName::Sftp => "sftp",
            ProfileName::Posix => "posix",
            ProfileName::Windows => "windows",
        }
    }

    /// The profile of a kind of target.
    pub fn for_kind(kind: StoreKind) -> ProfileName {
        match kind {
            StoreKind::S3 | StoreKind::Memory => ProfileName::S3,
            StoreKind::AzureBlob => ProfileName::AzureBlob,
            StoreKind::Sftp => ProfileName::Sftp,
            StoreKind::Local => ProfileName::Posix,
        }
    }
}

/// A job's options. Every field has a default, so `{}` is a valid set of options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobOptions {
    #[serde(default)]
    pub filters: FilterRules,
    /// A true-up deletes at the target what is gone from the source (guarded).
    #[serde(default)]
    pub sync_deletes: bool,
    #[serde(default)]
    pub sanitize: SanitizeMode,
    /// Folders that hold nothing exist at the target too.
    #[serde(default)]
    pub create_empty_dirs: bool,
    #[serde(default)]
    pub verify: Verify,
    /// A true-up pauses for review when it would delete more than this: `500` or `2%`
    /// (default: 5% of the files in the index, at most 1,000).
    #[serde(
        default,
        with = "max_delete_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^[0-9]+(\\.[0-9]+)?%?$", max_length = 32))]
    pub max_delete: Option<MaxDelete>,
    /// Bytes a second for the whole run: `10M`, `512K` (powers of 1024), or a timetable of
    /// rates by local time, with optional days: `08:00,10M 18:00,off`,
    /// `Mon-08:00,1M Sat-00:00,off` (default: no limit).
    #[serde(
        default,
        with = "bandwidth_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^[0-9A-Za-z:,./ -]+$", max_length = 512))]
    pub bwlimit: Option<Bandwidth>,
    /// The rules the target is checked against (default: those of the target's kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_profile: Option<ProfileName>,
    #[serde(default)]
    pub links: Links,
    /// Compute a checksum of each file while reading it, and record it.
    #[serde(default)]
    pub checksum: bool,
    #[serde(default)]
    pub compare: Compare,
    /// Files transferred at once (default: 8 to a local target, 16 to a remote one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 256))]
    pub transfers: Option<u16>,
    /// Decide every file and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// A copy-log record for every excluded file (otherwise they are only counted).
    #[serde(default)]
    pub log_excluded: bool,
    /// A copy-log record for every file found unchanged, AZSM2041 (otherwise they are only
    /// counted: a true-up's log lists what it did, not the millions of files it left alone).
    #[serde(default)]
    pub log_unchanged: bool,
    /// A scan reports a folder with more entries than this (3050; default 50,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_folder_entries: Option<u64>,
    /// Files with several names at the source (hard links) get them at a local target too:
    /// one copy, the other names linked to it, like `rsync -H`.
    #[serde(default)]
    pub hard_links: bool,
    /// Files the index says are at the target that each run checks there, picked at random
    /// (one stat or HEAD each; default 32, 0 turns the check off). A file missing or changed
    /// is copied again and the run ends with AZSM1028.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000000))]
    pub spot_check: Option<u32>,
    /// Exactly the files this list names (a file where the job runs: one path a line, below
    /// the source, escaped as a true-up's `deletes.txt` is), with no walk of the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub files_from: Option<String>,
    /// A speed test stops where it is, cleans up and fails with 6090 after this long: `90s`,
    /// `5m` (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 32))]
    pub max_time: Option<String>,
    /// A speed test estimates the copy of the source this scan run saw (default: the
    /// source's last scan, where there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub from_scan: Option<String>,
    /// A verification takes the source side from the migration's index (what godwit last
    /// copied) instead of reading the source.
    #[serde(default)]
    pub use_index: bool,
    /// What a copy or true-up deletes or replaces at the target is moved (or, before being
    /// replaced, copied) into a folder of its run under this location instead of being lost:
    /// a path or URL on the same store as the target (the same bucket, container or server;
    /// for a local target the same file system), outside the target. `godwit undo` puts it
    /// back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub backup_dir: Option<String>,
    /// A copy or true-up carries each file's and folder's owner, group, mode, ACLs, extended
    /// attributes and times with its data, through `ownerMap` (a local or mounted source); a
    /// true-up sets a change of permissions alone without sending the data (AZSM2048).
    #[serde(default)]
    pub metadata: bool,
    /// What a permissions run (or a copy with `metadata`) carries: some of
    /// `owner,mode,acl,xattr,times` (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub what: Option<String>,
    /// The owner map of a permissions run (or a copy with `metadata`), its lines as text: `alice=bob`, `1001=2001`,
    /// `@staff=@eng`, `*=keep` (default: every owner and group keeps its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1048576))]
    pub owner_map: Option<String>,
    /// A simulated scan's job limits: the most files one proposed job may hold (default 50
    /// million, the control plane's own default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_max_files: Option<u64>,
    /// ...and the most bytes (default 1 PiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_max_bytes: Option<u64>,
    /// The run whose backups an undo puts back: a run id as `godwit runs` shows it (through
    /// the API, a job run of the same migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub undo_run: Option<String>,
}

impl JobOptions {
    /// The options in `value`, or 1030 naming what is wrong (an unknown or misspelt option, a
    /// value of the wrong kind) for job `job_id`.
    pub fn from_wire(job_id: &str, value: serde_json::Value) -> Result<Self, JobError> {
        serde_json::from_value(value).map_err(|e| {
            JobError::new(
                Code::INVALID_COMMAND_DATA_ERROR,
                &[("job_id", job_id), ("reason", &e.to_string())],
            )
        })
    }

    /// Files each run checks at the target (`spot_check`, default [`DEFAULT_SPOT_CHECK`]).
    pub fn spot_checks(&self) -> u32 {
        self.spot_check.unwrap_or(DEFAULT_SPOT_CHECK)
    }

    /// The transfers to run at once for a target of `kind`.
    pub fn transfers_for(&self, kind: StoreKind) -> usize {
        usize::from(self.transfers.unwrap_or(match kind {
            StoreKind::Local => 8,
            _ => 16,
        }))
        .max(1)
    }
}

/// Files a run checks at the target by default: a small fixed cost (one stat or HEAD each),
/// whatever the number of files.
pub const DEFAULT_SPOT_CHECK: u32 = 32;

/// Default `--max-delete`: this share of the files in the index...
const DEFAULT_SHARE: f64 = 0.05;
/// ...but never more than this many files without a review.
const DEFAULT_CAP: u64 = 1000;

/// `--max-delete`: a number of files, or a share of the files in the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDelete {
    /// 5% of the files in the index, at most 1,000.
    Default,
    Count(u64),
    Percent(f64),
}

impl MaxDelete {
    /// `500` or `2%`; anything else is a 724 usage error naming what is expected.
    pub fn parse(text: &str) -> Result<Self, JobError> {
        let invalid = || {
            JobError::config(&format!(
                "--max-delete {text}: give a number of files (500) or a share of the files in the index (2%)"
            ))
        };
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| invalid())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(invalid());
            }
            return Ok(MaxDelete::Percent(p));
        }
        t.parse().map(MaxDelete::Count).map_err(|_| invalid())
    }

    /// The most files a run may delete without a review, for an index of `files` files.
    pub fn limit(self, files: u64) -> u64 {
        match self {
            MaxDelete::Default => ((files as f64 * DEFAULT_SHARE) as u64).min(DEFAULT_CAP),
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => (files as f64 * p / 100.0) as u64,
        }
    }
}

/// The error that pauses a true-up before it deletes anything, if one should (the engine's
/// for one run, the control plane's for a pool's run over all of its units' lists): 9080 when it
/// would delete more than `limit` files, 9090 when part of the source could not be read, 9100
/// for both.
pub fn delete_guard(deletes: u64, limit: u64, unreadable: u64) -> Option<JobError> {
    let (count, limit_s, unreadable_s) = (
        deletes.to_string(),
        limit.to_string(),
        unreadable.to_string(),
    );
    match (deletes > limit, unreadable > 0 && deletes > 0) {
        (true, true) => Some(JobError::new(
            Code::SYNC_DELETES_TRUE_UP_ERROR,
            &[
                ("count", &count),
                ("limit", &limit_s),
                ("unreadable", &unreadable_s),
            ],
        )),
        (true, false) => Some(JobError::new(
            Code::FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR,
            &[("count", &count), ("limit", &limit_s)],
        )),
        (false, true) => Some(JobError::new(
            Code::INACCESSIBLE_PATH_TRUE_UP_ERROR,
            &[("count", &unreadable_s)],
        )),
        (false, false) => None,
    }
}

impl std::fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxDelete::Default => f.write_str("default"),
            MaxDelete::Count(n) => write!(f, "{n}"),
            MaxDelete::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Parses a rate such as `10M`, `512K`, `1.5G` or `800000` (bytes a second; K, M, G, T are
/// powers of 1024, an optional `B`, `/s` or `i` is accepted: `10MiB/s`).
/// A rate: bytes a second, with K, M, G or T for powers of 1024 (`10M` is 10 MiB/s).
pub fn parse_rate(text: &str) -> Result<u64, JobError> {
    let invalid = |reason: &str| JobError::config(&format!("--bwlimit {text}: {reason}"));
    let t = text
        .trim()
        .trim_end_matches("/s")
        .trim_end_matches(['B', 'b'])
        .trim_end_matches('i');
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let value: f64 = number.trim().parse().map_err(|_| invalid("not a number"))?;
    let scale = match unit.to_ascii_uppercase().as_str() {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(invalid("the unit is one of K, M, G, T")),
    };
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes.is_finite()) {
        return Err(invalid("it must be at least 1 byte a second"));
    }
    Ok(bytes as u64)
}

/// `--bwlimit`: one rate, or a timetable of rates by the local time of day (and day of the
/// week), the way rclone writes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bandwidth {
    /// Bytes a second.
    Rate(u64),
    /// From each slot's time on, its rate, until the next slot's time.
    Timetable(Vec<Slot>),
}

/// One entry of a bandwidth timetable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// 0 for Monday to 6 for Sunday; None: every day.
    pub day: Option<u8>,
    /// Minutes since midnight, local time.
    pub minute: u16,
    /// Bytes a second; None: no limit (`off`).
    pub rate: Option<u64>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Bandwidth {
    /// `10M`, or a timetable: entries `[DAY-]HH:MM,RATE` separated by spaces, RATE a rate or
    /// `off`, DAY `Mon` to `Sun`, given on every entry or on none.
    pub fn parse(text: &str) -> Result<Bandwidth, JobError> {
        let t = text.trim();
        if !t.contains(',') {
            return parse_rate(t).map(Bandwidth::Rate);
        }
        let invalid = |why: String| JobError::config(&format!("--bwlimit {text}: {why}"));
        let mut slots = Vec::new();
        for entry in t.split_whitespace() {
            let (when, rate) = entry
                .split_once(',')
                .ok_or_else(|| invalid(format!("{entry}: write each entry as HH:MM,RATE")))?;
            let (day, clock) = match when.split_once('-') {
                Some((day, clock)) => {
                    let lower = day.to_ascii_lowercase();
                    let d = DAYS
                        .iter()
                        .position(|name| lower.starts_with(name) && lower.len() >= 3)
                        .ok_or_else(|| invalid(format!("{day}: a day is Mon, Tue, ... Sun")))?;
                    (Some(d as u8), clock)
                }
                None => (None, when),
            };
            let minute = clock
                .split_once(':')
                .and_then(|(h, m)| Some((h.parse::<u16>().ok()?, m.parse::<u16>().ok()?)))
                .filter(|(h, m)| *h < 24 && *m < 60 && clock.len() <= 5)
                .map(|(h, m)| h * 60 + m)
                .ok_or_else(|| invalid(format!("{clock}: a time is HH:MM, 00:00 to 23:59")))?;
            let rate = if rate.eq_ignore_ascii_case("off") {
                None
            } else {
                Some(parse_rate(rate)?)
            };
            slots.push(Slot { day, minute, rate });
        }
        if slots.iter().any(|s| s.day.is_some()) && slots.iter().any(|s| s.day.is_none()) {
            return Err(invalid(
                "give a day on every entry of the timetable, or on none".into(),
            ));
        }
        slots.sort_by_key(|s| (s.day, s.minute));
        if slots
            .windows(2)
            .any(|w| (w[0].day, w[0].minute) == (w[1].day, w[1].minute))
        {
            return Err(invalid("two entries for the same time".into()));
        }
        Ok(Bandwidth::Timetable(slots))
    }

    /// The limit at `minute` (since local midnight) of weekday `day` (0 Monday): None when
    /// there is none.
    pub fn rate_at(&self, day: u8, minute: u16) -> Option<u64> {
        let slots = match self {
            Bandwidth::Rate(r) => return Some(*r),
            Bandwidth::Timetable(slots) => slots,
        };
        let key = |s: &Slot| u32::from(s.day.unwrap_or(day)) * 1440 + u32::from(s.minute);
        let now = u32::from(day) * 1440 + u32::from(minute);
        let weekly = slots.iter().any(|s| s.day.is_some());
        let current = slots
            .iter()
            .filter(|s| key(s) <= now)
            .max_by_key(|s| key(s))
            // Before the first entry: the last one goes on from the day (or week) before.
            .or_else(|| {
                slots
                    .iter()
                    .max_by_key(|s| if weekly { key(s) } else { u32::from(s.minute) })
            });
        current.and_then(|s| s.rate)
    }

    /// Whether a limit may ever apply.
    pub fn limits(&self) -> bool {
        match self {
            Bandwidth::Rate(_) => true,
            Bandwidth::Timetable(slots) => slots.iter().any(|s| s.rate.is_some()),
        }
    }
}

impl std::fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bandwidth::Rate(r) => write!(f, "{r}"),
            Bandwidth::Timetable(slots) => {
                for (i, s) in slots.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    if let Some(d) = s.day {
                        let name = DAYS[usize::from(d)];
                        write!(f, "{}{}-", name[..1].to_ascii_uppercase(), &name[1..])?;
                    }
                    write!(f, "{:02}:{:02},", s.minute / 60, s.minute % 60)?;
                    match s.rate {
                        Some(r) => write!(f, "{r}")?,
                        None => f.write_str("off")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// Serde for an optional value kept on the wire as the text people write.
macro_rules! text_serde {
    ($name:ident, $ty:ty, $parse:expr, $show:expr) => {
        pub(crate) mod $name {
            use super::*;

            pub fn serialize<S: serde::Serializer>(
                v: &Option<$ty>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                match v {
                    Some(v) => s.serialize_str(&($show)(v)),
                    None => s.serialize_none(),
                }
            }

            pub fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Option<$ty>, D::Error> {
                let text: Option<String> = Option::deserialize(d)?;
                text.map(|t| {
                    ($parse)(&t).map_err(|e: JobError| serde::de::Error::custom(e.message))
                })
                .transpose()
            }
        }
    };
}

text_serde!(
    bandwidth_text,
    Bandwidth,
    Bandwidth::parse,
    |v: &Bandwidth| v.to_string()
);
text_serde!(
    max_delete_text,
    MaxDelete,
    MaxDelete::parse,
    |v: &MaxDelete| v.to_string()
);
text_serde!(
    size_text,
    u64,
    |t: &str| crate::filter::parse_size("minSize/maxSize", t),
    |v: &u64| v.to_string()
);
text_serde!(
    age_text,
    std::time::Duration,
    |t: &str| crate::filter::parse_age("minAge/maxAge", t),
    |v: &std::time::Duration| humantime::format_duration(*v).to_string()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("800000").unwrap(), 800_000);
        assert_eq!(parse_rate("10M").unwrap(), 10 << 20);
        assert_eq!(parse_rate("10MiB/s").unwrap(), 10 << 20);
        assert_eq!(parse_rate("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_rate("512k").unwrap(), 512 << 10);
        // Timetables, daily and weekly, shown back the way they were written.
        let daily = Bandwidth::parse("18:00,off 08:00,10M 12:30,1M").unwrap();
        assert_eq!(daily.to_string(), "08:00,10485760 12:30,1048576 18:00,off");
        assert_eq!(Bandwidth::parse(&daily.to_string()).unwrap(), daily);
        assert_eq!(
            daily.rate_at(2, 7 * 60 + 59),
            None,
            "before 08:00: yesterday's off"
        );
        assert_eq!(daily.rate_at(2, 8 * 60), Some(10 << 20));
        assert_eq!(daily.rate_at(2, 12 * 60 + 29), Some(10 << 20));
        assert_eq!(daily.rate_at(2, 12 * 60 + 30), Some(1 << 20));
        assert_eq!(daily.rate_at(6, 23 * 60 + 59), None);
        let weekly = Bandwidth::parse("Mon-08:00,1M Sat-00:00,off").unwrap();
        assert_eq!(
            weekly.rate_at(0, 7 * 60),
            None,
            "Monday before 08:00: the weekend's off"
        );
        assert_eq!(weekly.rate_at(4, 23 * 60), Some(1 << 20), "Friday night");
        assert_eq!(weekly.rate_at(5, 0), None);
        assert!(weekly.limits() && !Bandwidth::parse("00:00,off").unwrap().limits());
        for bad in [
            "8:00,1M 08:00,2M",
            "25:00,1M",
            "08:00",
            "Mon-08:00,1M 09:00,2M",
            "Xyz-08:00,1M",
            "08:00,fast",
        ] {
            assert!(Bandwidth::parse(bad).is_err(), "{bad}");
        }
        for bad in ["", "x", "10Q", "0", "-5M"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn max_delete_parses_counts_and_shares() {
        assert_eq!(MaxDelete::parse("500").unwrap(), MaxDelete::Count(500));
        assert_eq!(MaxDelete::parse("2%").unwrap(), MaxDelete::Percent(2.0));
        assert!(MaxDelete::parse("lots").is_err());
        assert!(MaxDelete::parse("120%").is_err());
        assert_eq!(MaxDelete::Default.limit(100), 5);
        assert_eq!(MaxDelete::Default.limit(1_000_000), 1000);
        assert_eq!(MaxDelete::Percent(10.0).limit(50), 5);
    }

    #[test]
    fn a_misspelt_option_is_refused_with_1030() {
        let e = JobOptions::from_wire("r1", serde_json::json!({"syncDelete": true})).unwrap_err();
        assert_eq!(e.code, Code::INVALID_COMMAND_DATA_ERROR);
        assert!(e.message.contains("syncDelete"), "{}", e.message);
        let e = JobOptions::from_wire("r1", serde_json::json!({"filters": {"exclud": ["x"]}}))
            .unwrap_err();
        assert!(e.message.contains("exclud"), "{}", e.message);
    }

    #[test]
    fn options_round_trip_as_people_write_them() {
        let o = JobOptions::from_wire(
            "r1",
            serde_json::json!({
                "syncDeletes": true, "maxDelete": "2%", "bwlimit": "10M", "verify": "full",
                "sanitize": "on-the-fly", "targetProfile": "windows",
                "filters": {"exclude": ["*.tmp"], "minSize": "1K", "maxAge": "7d"}
            }),
        )
        .unwrap();
        assert_eq!(o.max_delete, Some(MaxDelete::Percent(2.0)));
        assert_eq!(o.bwlimit, Some(Bandwidth::Rate(10 << 20)));
        assert_eq!(o.filters.min_size, Some(1024));
        assert_eq!(o.target_profile, Some(ProfileName::Windows));
        let back = JobOptions::from_wire("r1", serde_json::to_value(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert_eq!(
            JobOptions::from_wire("r1", serde_json::json!({})).unwrap(),
            JobOptions::default()
        );
        assert!(JobOptions::from_wire("r1", serde_json::json!({"bwlimit": "fast"})).is_err());
    }
}
