//! godwit's one catalog of status and error codes.
//!
//! Every condition a user can meet has one stable code here. The data lives in `codes.toml`
//! beside this crate; `build.rs` checks it and generates [`CATALOG`] and one constant on
//! [`Code`] per entry, so code can only name codes that exist:
//!
//! ```
//! use godwit_codes::Code;
//! let code = Code::FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR;
//! assert_eq!(code.id(), "9080");
//! assert_eq!(Code::AZSM2023, Code::XDM_CLSTATUS_UNSUPP_COMPONENT_LENGTH);
//! assert_eq!(Code::lookup("azsm2023").unwrap(), Code::AZSM2023);
//! ```

use std::fmt;

mod fold;
mod lookup;
mod markdown;

pub use lookup::{LookupError, Suggestion};
pub use markdown::markdown;

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// A code of the catalog. Cheap to copy; [`Code::info`] has everything the catalog says of it.
///
/// Displayed and serialised as its id (`652`, `AZSM2023`, `HTTP404`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(u16);

/// Where a code's number lives. The same number may stand in two namespaces (`500` is
/// `ERR_POST_CONFIG_FILE_GET`, `HTTP500` the HTTP status), so a code is always its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Numeric codes of the migration application: command statuses, agent, job and
    /// control-plane errors (`9080`).
    App,
    /// Scoped string codes: AZSM0xxx agent, AZSM1xxx job run, AZSM2xxx one file (`AZSM2023`).
    Azsm,
    /// HTTP statuses the REST API answers with (`HTTP409`).
    Http,
}

/// What a code is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// An agent: its state, registration, upgrade or local failures.
    Agent,
    /// One run of a command (a job): its status or why it failed.
    Job,
    /// One file or folder in a job's copy log.
    File,
    /// The control plane's own state: projects, its store.
    ControlPlane,
    /// An API request: why it was refused.
    Api,
}

/// Whether a code reports a state, a failure or a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A state something is in (`SCAN : RUNNING`), or an outcome chosen on purpose (excluded).
    Status,
    /// Something went wrong and a person may need to act.
    Error,
    /// It worked.
    Success,
}

/// The state of a command run that a command status code stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// A scheduled job was created and waits for its time.
    Created,
    /// Accepted, waiting to run.
    Queued,
    /// Running.
    Running,
    /// A stop was asked for; the run is winding down.
    Stopping,
    /// Stopped on request; it can be started again and resumes.
    Stopped,
    /// Paused; by a person, or for review before it goes on.
    Paused,
    /// Its agent went away mid-run; it resumes when the agent returns.
    Suspended,
    /// Finished and worked.
    Succeeded,
    /// Finished and failed; the job error code says why.
    Failed,
    /// Not run, because there was nothing for it to do.
    Skipped,
}

/// Which document a code comes from. Only the code and name are taken from a seed; all text is
/// godwit's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The migration application's status and error codes.
    Seed000,
    /// The AZSM scoped agent, job-run and copy-log codes.
    Seed001,
    /// The REST API's HTTP status conventions.
    Seed004,
    /// A code godwit adds in a range a seed reserves.
    Godwit,
}

/// Everything the catalog says of one code.
#[derive(Debug)]
pub struct CodeInfo {
    /// The code as people write it: `652`, `AZSM2023`, `HTTP404`.
    pub id: &'static str,
    /// The namespace of `number`.
    pub namespace: Namespace,
    /// The number, without its namespace prefix.
    pub number: u32,
    /// The symbolic name, as the seed gives it (`COPY_INPROGRESS_ERR`, `SCAN : RUNNING`).
    pub name: &'static str,
    /// Other spellings the seed uses for this code; accepted by [`Code::lookup`].
    pub aliases: &'static [&'static str],
    /// What the code is about.
    pub scope: Scope,
    /// State, failure or success.
    pub kind: Kind,
    /// The command a command status belongs to.
    pub command: Option<Command>,
    /// The command state a command status stands for.
    pub state: Option<State>,
    /// The HTTP status an API answer carrying this code has.
    pub http_status: Option<u16>,
    /// Whether trying the same thing again may work without anyone changing anything.
    pub retryable: bool,
    /// Kept so the numbering matches the seed, but no godwit condition leads to it.
    pub reserved: bool,
    /// The seed gives this code and `duplicate_of` one meaning; godwit emits the other one.
    pub duplicate_of: Option<&'static str>,
    /// Which document the code and name come from.
    pub origin: Origin,
    /// A one-line message with `{named}` parameters; see [`Code::render`].
    pub message: &'static str,
    /// The parameters `message` names, in order.
    pub params: &'static [&'static str],
    /// What the code means.
    pub description: &'static str,
    /// What to do about it.
    pub remediation: &'static str,
}

impl Code {
    /// Everything the catalog says of this code.
    pub fn info(self) -> &'static CodeInfo {
        &CATALOG[usize::from(self.0)]
    }

    /// The code as people write it: `652`, `AZSM2023`, `HTTP404`.
    pub fn id(self) -> &'static str {
        self.info().id
    }

    /// The symbolic name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Every code, in catalog order.
    pub fn all() -> impl ExactSizeIterator<Item = Code> {
        (0..CATALOG.len()).map(|i| Code(i as u16))
    }

    /// The status code of `command` in `state` (`Command::MigrateData`, `State::Running` is 920).
    pub fn command_status(command: Command, state: State) -> Option<Code> {
        Code::all().find(|c| {
            let i = c.info();
            i.command == Some(command) && i.state == Some(state)
        })
    }

    /// The message with its parameters filled in. A parameter not given stays as `{name}`, so
    /// a missing value shows rather than vanishing.
    pub fn render(self, params: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(self.info().message.len());
        let mut rest = self.info().message;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            // build.rs guarantees every `{` has its `}`.
            let close = after.find('}').unwrap_or(after.len());
            let name = &after[..close];
            match params.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            }
            rest = after.get(close + 1..).unwrap_or("");
        }
        out.push_str(rest);
        out
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id(), self.name())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Code::lookup(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! keyed {
    ($ty:ty { $($variant:ident => $key:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in order.
            pub const ALL: &[$ty] = &[$(<$ty>::$variant),+];

            /// The lower-case key used in `codes.toml`, JSON and on the command line.
            pub const fn key(self) -> &'static str {
                match self { $(<$ty>::$variant => $key),+ }
            }

            /// The value with this key, if any.
            pub fn from_key(key: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.key().eq_ignore_ascii_case(key))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.key())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.key())
            }
        }
    };
}

keyed!(Namespace { App => "app", Azsm => "azsm", Http => "http" });
keyed!(Scope {
    Agent => "agent", Job => "job", File => "file", ControlPlane => "control-plane", Api => "api",
});
keyed!(Kind { Status => "status", Error => "error", Success => "success" });
keyed!(State {
    Created => "CREATED", Queued => "QUEUED", Running => "RUNNING", Stopping => "STOPPING",
    Stopped => "STOPPED", Paused => "PAUSED", Suspended => "SUSPENDED",
    Succeeded => "SUCCEEDED", Failed => "FAILED", Skipped => "SKIPPED",
});
keyed!(Origin {
    Seed000 => "seed-000", Seed001 => "seed-001", Seed004 => "seed-004", Godwit => "godwit",
});

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl serde::Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl serde::Serialize for CodeInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CodeInfo", 17)?;
        st.serialize_field("code", self.id)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("aliases", self.aliases)?;
        st.serialize_field("namespace", &self.namespace)?;
        st.serialize_field("scope", &self.scope)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("command", &self.command)?;
        st.serialize_field("state", &self.state)?;
        st.serialize_field("http_status", &self.http_status)?;
        st.serialize_field("retryable", &self.retryable)?;
        st.serialize_field("reserved", &self.reserved)?;
        st.serialize_field("duplicate_of", &self.duplicate_of)?;
        st.serialize_field("origin", &self.origin)?;
        st.serialize_field("message", self.message)?;
        st.serialize_field("params", self.params)?;
        st.serialize_field("description", self.description)?;
        st.serialize_field("remediation", self.remediation)?;
        st.end()
    }
}
