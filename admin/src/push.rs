//! `push stats | test USER`: what the push workers delivered (counts every worker keeps in
//! Redis, and the push consumer's backlog in NATS), and a test push to a user's devices.

use anyhow::Context;
use serde_json::json;
use starling_push::{Deliverer, Outcome, PushWorker};

use crate::command::PushCommand;
use crate::{AdminContext, Outcome as Done};

pub(crate) async fn run(ctx: &AdminContext, command: PushCommand) -> anyhow::Result<Done> {
    match command {
        PushCommand::Stats => stats(ctx).await,
        PushCommand::Test { user } => test(ctx, &user).await,
    }
}

async fn stats(ctx: &AdminContext) -> anyhow::Result<Done> {
    let counts = ctx
        .timelines
        .counters("push")
        .await
        .context("reading the push counters from Redis")?;
    let consumer = &ctx.settings.push.consumer;
    let backlog = ctx.bus.consumer_stats(consumer).await.ok();
    let mut lines: Vec<String> = counts.iter().map(|(k, v)| format!("{k:<14} {v}")).collect();
    if let Some(b) = &backlog {
        lines.push(format!(
            "consumer {consumer}: {} pending, {} in flight, {} redelivered",
            b.pending, b.ack_pending, b.redelivered
        ));
    }
    let get = |name: &str| {
        counts
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| *v)
    };
    let summary = format!(
        "{} notifications for subscribers: {} pushes delivered, {} gone, {} refused, {} failed",
        get("notifications"),
        get("delivered"),
        get("gone"),
        get("refused"),
        get("failed")
    );
    let data = json!({
        "counts": counts.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "consumer": backlog.map(|b| json!({
            "pending": b.pending, "ack_pending": b.ack_pending, "redelivered": b.redelivered,
        })),
    });
    Ok(Done::new(summary, data)?.with_lines(lines))
}

async fn test(ctx: &AdminContext, user: &str) -> anyhow::Result<Done> {
    let account = ctx.account(user).await?;
    let settings = &ctx.settings.push;
    let vapid = starling_push::vapid_key(&ctx.store, settings)
        .await
        .context("loading the VAPID key")?;
    let subject = starling_push::vapid_subject(settings, &ctx.settings.api.public_url);
    let deliverer = Deliverer::new(vapid, subject, settings).context("building the push client")?;
    let worker = PushWorker::new(
        ctx.store.clone(),
        deliverer,
        settings,
        &ctx.settings.api.public_url,
    );
    let report = worker
        .test(account.id)
        .await
        .context("sending test pushes")?;
    let lines = report
        .outcomes
        .iter()
        .map(|(hash, outcome)| {
            let token = hash.get(..12).unwrap_or(hash);
            match outcome {
                Outcome::Failed(why) => format!("token {token}…: failed ({why})"),
                Outcome::Refused(status) => format!("token {token}…: refused ({status})"),
                other => format!("token {token}…: {}", other.label()),
            }
        })
        .collect();
    let delivered = report
        .outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Delivered)
        .count();
    let data: Vec<_> = report
        .outcomes
        .iter()
        .map(|(hash, o)| json!({ "token_hash": hash, "outcome": o.label() }))
        .collect();
    let mut done = Done::new(
        format!(
            "{delivered} of {} test pushes to {} delivered",
            report.outcomes.len(),
            account.username
        ),
        data,
    )?
    .with_lines(lines);
    done.failed = delivered < report.outcomes.len();
    Ok(done)
}
