//! Agent upgrades on the control plane: a request checked against the agent and the release
//! (1011, 680, 1010, 693), the order sent to the agent, the agent's reports of its steps, and
//! the end: 994 when it comes back on the version it was sent, 995 otherwise, 996 past its time
//! limit. A drained upgrade waits, QUEUED, until the agent's commands have ended.

use godwit_codes::Code;
use godwit_spec::protocol::{ToAgent, UpgradeOrder, UpgradeStep};

use crate::AppState;
use crate::error::DomainError;
use crate::records::{Agent, Release, Upgrade};
use crate::store::UpgradeRequest;

/// How an upgrade is asked for, checked.
#[derive(Debug, Clone)]
pub struct Ask {
    pub version: String,
    pub drain: bool,
    pub allow_downgrade: bool,
    pub time_limit_ms: i64,
    /// Not before this time: a scheduled upgrade (681 for commands until it has run).
    pub start_ms: Option<i64>,
}

/// The default limit of a whole upgrade: five minutes.
pub const DEFAULT_TIME_LIMIT_SECS: u64 = 5 * 60;

/// Asks agent `agent_id` to upgrade: the record, RUNNING when the order went out, QUEUED when
/// it waits for the agent's commands to end (`drain`) or for its time (`start_ms`).
pub async fn request(state: &AppState, agent_id: &str, ask: &Ask) -> Result<Upgrade, DomainError> {
    let (agent, release) = check(state, agent_id, ask).await?;
    let store = &state.store;
    let up = store
        .create_upgrade(&UpgradeRequest {
            agent_id,
            release: &release,
            from_version: &agent.version,
            drain: ask.drain,
            allow_downgrade: ask.allow_downgrade,
            time_limit_ms: ask.time_limit_ms,
            start_ms: ask.start_ms,
        })
        .await?;
    if ask.start_ms.is_none() && !store.agent_busy(agent_id).await? {
        send(state, &up, &release).await?;
    }
    store.get_upgrade(&up.id).await
}

/// What would refuse the upgrade of `agent_id` (605, AZSM1051, 9150, 1011, 1010, 800, 680,
/// 681, 693); the agent and the release it goes to.
pub async fn check(
    state: &AppState,
    agent_id: &str,
    ask: &Ask,
) -> Result<(Agent, Release), DomainError> {
    let store = &state.store;
    let agent = store.get_agent(agent_id).await?;
    if !ask.allow_downgrade
        && agent.version != ask.version
        && godwit_spec::release::compare(&ask.version, &agent.version)
            .is_some_and(|o| o != std::cmp::Ordering::Greater)
    {
        return Err(DomainError::invalid(&format!(
            "version: {} is not newer than agent {}'s {}; set allowDowngrade to go back",
            ask.version, agent.id, agent.version
        )));
    }
    if state.release_key.is_none() {
        return Err(DomainError::new(Code::GODWIT_RELEASE_KEY_MISSING, &[]));
    }
    if state.hub.is_connected(agent_id).await {
        can(&agent, "upgrade", "upgrades from the control plane")?;
    }
    if agent.version == ask.version {
        return Err(DomainError::new(
            Code::VERSION_UPTODATE_ERROR,
            &[("agent_id", agent_id), ("version", &ask.version)],
        ));
    }
    below_minimum(state, &ask.version)?;
    let platform = agent
        .platform
        .clone()
        .unwrap_or_else(godwit_spec::release::platform);
    let release = store.find_release(&ask.version, &platform).await?;
    if let Some(up) = store.active_upgrade(agent_id).await? {
        return Err(upgrading(&agent, &up));
    }
    if ask.start_ms.is_some() {
        // Scheduled: sent when due, to the agent connected then.
        return Ok((agent, release));
    }
    if !state.hub.is_connected(agent_id).await {
        return Err(DomainError::new(
            Code::FAILED_TO_SEND_MESSAGE_TO_AGENT,
            &[("agent_id", agent_id)],
        )
        .details("The agent is not connected: an upgrade is sent to a connected agent only, so that it is not carried out at some later, unexpected time. Start the agent and ask again."));
    }
    if !ask.drain && store.agent_busy(agent_id).await? {
        return Err(DomainError::new(
            Code::AGENT_UPDATE_INPROGRESS_ERR,
            &[("agent_id", agent_id)],
        )
        .details("The agent runs a command. Ask again when it has ended, or with \"drain\": true to upgrade as soon as its commands have ended."));
    }
    Ok((agent, release))
}

/// 9150 for an agent that did not say it can be asked `feature` when it connected (a godwit
/// from before it).
pub fn can(agent: &Agent, feature: &str, words: &str) -> Result<(), DomainError> {
    if agent.features.iter().any(|f| f == feature) {
        return Ok(());
    }
    Err(DomainError::new(
        Code::NON_COMPATIBLE_AGENT_VERSION_FOR_FEATURE,
        &[
            ("agent_id", &agent.id),
            ("version", &agent.version),
            ("feature", words),
        ],
    )
    .details(format!(
        "Agent {} runs godwit {}, which cannot be asked for {words}. Install a newer godwit on its host by hand.",
        agent.id, agent.version
    )))
}

/// 1010 for a version below the control plane's minimum.
pub fn below_minimum(state: &AppState, version: &str) -> Result<(), DomainError> {
    if let Some(min) = &state.min_agent_version
        && godwit_spec::release::compare(version, min) == Some(std::cmp::Ordering::Less)
    {
        return Err(
            DomainError::new(Code::UNSUPPORTED_VERSION_ERROR, &[("version", version)]).details(
                format!("This control plane takes agents of version {min} or newer."),
            ),
        );
    }
    Ok(())
}

/// 680 while `agent` upgrades (or waits to), 681 while its upgrade is scheduled.
fn upgrading(agent: &Agent, up: &Upgrade) -> DomainError {
    if up.state == "QUEUED" && up.start_ms.is_some_and(|s| s > crate::store::now_ms()) {
        return DomainError::new(Code::AGENT_SCHEDULER_INPROGRESS_ERR, &[("agent_id", &agent.id)])
            .details(format!(
                "Upgrade {} to {} is scheduled; cancel it (DELETE /v1/upgrades/{}) to send commands before it runs.",
                up.id, up.to_version, up.id
            ));
    }
    DomainError::new(
        Code::AGENT_UPDATE_INPROGRESS_ERR,
        &[("agent_id", &agent.id)],
    )
    .details(format!(
        "Upgrade {} to {} is {}; wait for it to end (GET /v1/upgrades/{}).",
        up.id,
        up.to_version,
        up.state.to_lowercase(),
        up.id
    ))
}

/// Refuses a command for an agent that upgrades (680): it would be cut off by the restart.
pub async fn not_upgrading(state: &AppState, agent: &Agent) -> Result<(), DomainError> {
    match state.store.active_upgrade(&agent.id).await? {
        Some(up) => Err(upgrading(agent, &up)),
        None => Ok(()),
    }
}

/// Sends the order; RUNNING from now. Not connected any more: 693, and the upgrade fails; an
/// agent that cannot upgrade itself (a scheduled upgrade due): 9150, and it fails.
async fn send(state: &AppState, up: &Upgrade, release: &Release) -> Result<(), DomainError> {
    let agent = state.store.get_agent(&up.agent_id).await?;
    if let Err(e) = can(&agent, "upgrade", "upgrades from the control plane") {
        let words = e.message();
        state
            .store
            .end_upgrade(
                &up.id,
                Code::AGENT_UPGRADE_FAILED,
                Some((e.code.id(), &words)),
            )
            .await?;
        return Err(e);
    }
    let order = ToAgent::Upgrade(Box::new(UpgradeOrder {
        upgrade_id: up.id.clone(),
        url: format!("/v1/releases/{}/binary", release.id),
        release: release.manifest(),
        allow_downgrade: up.allow_downgrade,
        time_limit_secs: u64::try_from(up.time_limit_ms / 1000).unwrap_or(1).max(1),
    }));
    if !state.store.upgrade_sent(&up.id).await? {
        return Ok(());
    }
    if !state.hub.send(&up.agent_id, order).await {
        let code = Code::FAILED_TO_SEND_MESSAGE_TO_AGENT;
        let words = code.render(&[("agent_id", &up.agent_id)]);
        state
            .store
            .end_upgrade(
                &up.id,
                Code::AGENT_UPGRADE_FAILED,
                Some((code.id(), &words)),
            )
            .await?;
        return Err(DomainError::new(code, &[("agent_id", &up.agent_id)]));
    }
    tracing::info!(upgrade_id = %up.id, agent_id = %up.agent_id, version = %release.version, "upgrade sent");
    Ok(())
}

/// What the sweeper does for upgrades: sends drained ones whose agent has become idle, and
/// ends with 996 those past their time limit.
pub async fn settle(state: &AppState) {
    let Ok(open) = state.store.open_upgrades().await else {
        return;
    };
    let now = crate::store::now_ms();
    for up in open {
        match up.state.as_str() {
            "QUEUED" => {
                if up.start_ms.is_none_or(|s| s <= now)
                    && state.hub.is_connected(&up.agent_id).await
                    && matches!(state.store.agent_busy(&up.agent_id).await, Ok(false))
                    && let Ok(release) = state.store.get_release(&up.release_id).await
                {
                    let _ = send(state, &up, &release).await;
                }
            }
            _ => {
                if up.sent_ms.is_some_and(|sent| now - sent > up.time_limit_ms) {
                    let code = Code::AGENT_UPGRADE_TIMEOUT;
                    let words = code.render(&[("agent_id", &up.agent_id)]);
                    let _ = state
                        .store
                        .end_upgrade(&up.id, code, Some((code.id(), &words)))
                        .await;
                }
            }
        }
    }
}

/// An agent's report on its upgrade: the steps are kept; when it is done, the upgrade ends
/// with 994 if the agent runs the version it was sent and no step failed, else 995 with the
/// last failing step's code.
pub async fn reported(
    state: &AppState,
    agent_id: &str,
    upgrade_id: &str,
    version: &str,
    steps: &[UpgradeStep],
    done: bool,
) -> Result<(), DomainError> {
    let up = state.store.get_upgrade(upgrade_id).await?;
    if up.agent_id != agent_id {
        return Err(DomainError::not_found("upgrade", upgrade_id));
    }
    state.store.upgrade_steps(upgrade_id, steps).await?;
    if !done {
        return Ok(());
    }
    // The last failure says most: a rollback that failed after a failed post-check.
    let failed = steps.iter().rev().find(|s| s.code.is_some());
    match failed {
        None if version == up.to_version => {
            state
                .store
                .end_upgrade(upgrade_id, Code::AGENT_UPGRADE_SUCCEEDED, None)
                .await?;
        }
        _ => {
            let (code, words) = match failed {
                Some(s) => (s.code.clone().unwrap_or_default(), s.message.clone()),
                None => {
                    let c = Code::AGENT_UPGRADE_FAILED;
                    let words = c.render(&[
                        ("agent_id", agent_id),
                        ("actual", version),
                        ("version", &up.to_version),
                    ]);
                    (c.id().to_string(), words)
                }
            };
            state
                .store
                .end_upgrade(
                    upgrade_id,
                    Code::AGENT_UPGRADE_FAILED,
                    Some((&code, &words)),
                )
                .await?;
        }
    }
    Ok(())
}
