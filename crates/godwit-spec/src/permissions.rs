//! What a permissions run carries and the owner map's rules, as the command line, the agent and
//! the control plane read them: the control plane refuses a map or a list it cannot read
//! before a run is queued.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::JobError;

/// What a permissions run carries (`--what owner,mode,acl,xattr,times`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct What {
    pub owner: bool,
    pub mode: bool,
    pub acl: bool,
    pub xattr: bool,
    pub times: bool,
}

impl Default for What {
    fn default() -> Self {
        What {
            owner: true,
            mode: true,
            acl: true,
            xattr: true,
            times: true,
        }
    }
}

impl What {
    /// `owner,mode,acl,xattr,times` or any of them; anything else is 724 naming the word.
    pub fn parse(text: &str) -> Result<What, JobError> {
        let mut w = What {
            owner: false,
            mode: false,
            acl: false,
            xattr: false,
            times: false,
        };
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "owner" => w.owner = true,
                "mode" => w.mode = true,
                "acl" => w.acl = true,
                "xattr" => w.xattr = true,
                "times" => w.times = true,
                other => {
                    return Err(JobError::config(&format!(
                        "--what {other}: write some of owner, mode, acl, xattr, times"
                    )));
                }
            }
        }
        Ok(w)
    }
}

/// Where a principal goes: another one, or the same (`keep`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    Keep,
    Id(u32),
    Name(String),
}

/// The owner map's rules: users and groups at the source (by name or id) to the target's, with
/// an optional default for those not listed. Without a map every principal keeps its id. Names
/// are looked up where the run is (the engine's `perms::Translate`).
#[derive(Debug, Clone, Default)]
pub struct OwnerRules {
    users: BTreeMap<String, To>,
    groups: BTreeMap<String, To>,
    default_user: Option<To>,
    default_group: Option<To>,
    /// A map was given: a principal it does not name, without a default, is an error (7020).
    strict: bool,
}

impl OwnerRules {
    /// The map in `text`: one `FROM=TO` a line, `@` before a group on both sides (`alice=bob`,
    /// `1001=2001`, `@staff=@eng`), `*=TO` and `@*=TO` the defaults, `keep` for the same
    /// principal; `#` starts a comment. A line that is none of these is 724 naming it.
    pub fn parse(text: &str) -> Result<OwnerRules, JobError> {
        let mut map = OwnerRules {
            strict: true,
            ..OwnerRules::default()
        };
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad =
                |why: &str| JobError::config(&format!("owner map line {}: {raw:?}: {why}", n + 1));
            let (from, to) = line
                .split_once('=')
                .ok_or_else(|| bad("write FROM=TO (alice=bob, 1001=2001, @staff=@eng, *=keep)"))?;
            let (from, to) = (from.trim(), to.trim());
            let group = from.starts_with('@');
            if group != to.starts_with('@') && to != "keep" {
                return Err(bad("a group maps to a group: @ on both sides"));
            }
            let (from, to) = (from.trim_start_matches('@'), to.trim_start_matches('@'));
            if from.is_empty() || to.is_empty() {
                return Err(bad("a name or an id on each side"));
            }
            let to = match to {
                "keep" => To::Keep,
                t => t
                    .parse::<u32>()
                    .map_or_else(|_| To::Name(t.to_string()), To::Id),
            };
            match (group, from) {
                (false, "*") => map.default_user = Some(to),
                (true, "*") => map.default_group = Some(to),
                (false, f) => {
                    map.users.insert(f.to_string(), to);
                }
                (true, f) => {
                    map.groups.insert(f.to_string(), to);
                }
            }
        }
        Ok(map)
    }

    pub fn users(&self) -> &BTreeMap<String, To> {
        &self.users
    }

    pub fn groups(&self) -> &BTreeMap<String, To> {
        &self.groups
    }

    pub fn default_user(&self) -> Option<&To> {
        self.default_user.as_ref()
    }

    pub fn default_group(&self) -> Option<&To> {
        self.default_group.as_ref()
    }

    /// A map was given: a principal it does not name, without a default, is an error.
    pub fn strict(&self) -> bool {
        self.strict
    }
}
