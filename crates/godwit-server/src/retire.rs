//! Retiring an agent: told to stop its runs, remove its state directory and leave (193); it is
//! retired (194) once it has left and stayed away for a heartbeat window, and then deactivated
//! so that nothing can be sent to it. Coming back after that is 195; not done within the
//! retirement's time limit (`GODWIT_RETIRE_TIMEOUT`, five minutes), 196.

use godwit_codes::Code;

use crate::AppState;
use crate::error::DomainError;
use crate::protocol::ToAgent;
use crate::records::Agent;

/// Asks agent `id` to retire: 693 when it is not connected (it could not remove its state),
/// 680 while it upgrades.
pub async fn request(state: &AppState, id: &str) -> Result<Agent, DomainError> {
    let agent = state.store.get_agent(id).await?;
    crate::upgrades::not_upgrading(state, &agent).await?;
    if !state.hub.is_connected(id).await {
        return Err(
            DomainError::new(Code::FAILED_TO_SEND_MESSAGE_TO_AGENT, &[("agent_id", id)]).details(
                "The agent is not connected, so it cannot remove its state. Start it and retire it again, or deactivate it (POST /v1/agents/{id}/deactivate) and remove its host's state by hand.",
            ),
        );
    }
    crate::upgrades::can(&agent, "retire", "retirement")?;
    state
        .store
        .set_retire(id, Code::AGENT_RETIRE_RUNNING, false)
        .await?;
    if !state.hub.send(id, ToAgent::Retire).await {
        let code = Code::FAILED_TO_SEND_MESSAGE_TO_AGENT;
        state
            .store
            .set_retire(id, Code::AGENT_RETIRE_FAILED, false)
            .await?;
        return Err(DomainError::new(code, &[("agent_id", id)]));
    }
    tracing::info!(agent_id = id, "agent told to retire");
    state.store.get_agent(id).await
}

/// What the sweeper does for retirements: 194 for an agent that left and stayed away a
/// heartbeat window (deactivated then), 196 past the time limit.
pub async fn settle(state: &AppState) {
    let Ok(agents) = state.store.retiring_agents().await else {
        return;
    };
    let now = crate::store::now_ms();
    let window = i64::try_from(state.hub.heartbeat_window.as_millis()).unwrap_or(i64::MAX);
    let limit = i64::try_from(state.hub.retire_timeout.as_millis()).unwrap_or(i64::MAX);
    for a in agents {
        let Some(r) = &a.retire else { continue };
        let gone = !state.hub.is_connected(&a.id).await;
        if let Some(left) = r.left_ms
            && gone
            && now - left > window
        {
            let _ = state
                .store
                .set_agent_state(&a.id, Code::AGENT_STATE_DEACTIVATED, false)
                .await;
            let _ = state
                .store
                .set_retire(&a.id, Code::AGENT_RETIRE_SUCCEEDED, false)
                .await;
            tracing::info!(agent_id = %a.id, "agent retired (194)");
        } else if r.left_ms.is_none() && now - r.since_ms > limit {
            // One that has left only waits out the window.
            let _ = state
                .store
                .set_retire(&a.id, Code::AGENT_RETIRE_TIMEOUT, false)
                .await;
            tracing::info!(agent_id = %a.id, "agent retirement timed out (196)");
        }
    }
}

/// A retired agent's token was used again: the retirement did not hold on its host (195).
pub async fn came_back(state: &AppState, agent: &Agent) {
    if agent
        .retire
        .as_ref()
        .is_some_and(|r| r.status.code == Code::AGENT_RETIRE_SUCCEEDED.id())
    {
        let _ = state
            .store
            .set_retire(&agent.id, Code::AGENT_RETIRE_FAILED, false)
            .await;
        tracing::warn!(agent_id = %agent.id, "a retired agent came back (195)");
    }
}
