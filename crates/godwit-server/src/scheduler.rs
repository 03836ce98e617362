//! Schedules: a command started at a time and repeated (once, hourly, daily, weekly) as many
//! times as asked. A schedule's `start_ms` is its next start and `repeat` the starts left.
//! When the state rules refuse a start (the migration is busy, its agent inactive), that start
//! is recorded as a FAILED run with the refusal's code, and the schedule moves on. With several
//! control planes on one PostgreSQL database, each start is made by the one whose move of the
//! schedule to its next start lands first.

use crate::AppState;
use crate::rules::Action;

fn interval_ms(frequency: &str) -> i64 {
    match frequency {
        "hourly" => 3_600_000,
        "daily" => 86_400_000,
        "weekly" => 7 * 86_400_000,
        _ => 0,
    }
}

/// Starts what is due; returns how many schedules fired.
pub async fn fire_due(state: &AppState) -> usize {
    let now = crate::store::now_ms();
    let Ok(due) = state.store.due_schedules(now).await else {
        return 0;
    };
    for s in &due {
        let left = s.repeat - 1;
        let step = interval_ms(&s.frequency);
        // Starts missed while the control plane was down are not made up: the next one is in
        // the future.
        let mut next = s.start_ms + step.max(1);
        while step > 0 && next <= now {
            next += step;
        }
        let left = if step == 0 { 0 } else { left };
        // Another control plane on the same database may have taken this start: then it is
        // theirs to make.
        if !matches!(
            state
                .store
                .advance_schedule(&s.id, (s.start_ms, s.repeat), next, left)
                .await,
            Ok(true)
        ) {
            continue;
        }
        let Ok(m) = state.store.get_migration(&s.migration_id).await else {
            continue;
        };
        if let Err(e) = crate::commands::apply(state, &m, s.command, Action::Start, None).await
            && !e.is_not_found()
        {
            let _ = state.store.refused_run(&m.id, s.command, &e).await;
        }
    }
    due.len()
}
