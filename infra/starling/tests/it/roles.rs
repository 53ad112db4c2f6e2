//! Each role started and stopped on its own, in its own node: the api alone takes posts but
//! fans nothing out; a fan-out node started later delivers what waited in the stream; once it
//! is stopped, delivery waits again for the next one.

use std::time::Duration;

use starling::Role;

use crate::helpers::spawn_app_roles;

#[tokio::test]
async fn a_fanout_node_started_and_stopped_alone_delivers_only_while_it_runs() {
    let mut app = spawn_app_roles(&[Role::Api], |_| {}).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&bob, &alice).await;

    let first = app.status(&alice, "while no fan-out runs").await;
    let first = first["id"].as_str().expect("id").to_owned();
    let (seen, _) = app
        .home_until(&bob, Duration::from_millis(1_500), |ids| {
            ids.contains(&first)
        })
        .await;
    assert!(!seen, "an api-only node fanned a post out");

    // A fan-out node on its own (with its own /metrics) delivers what waited in the stream.
    let fanout = app
        .spawn_role_node(2, &[Role::Fanout], |s| {
            s.metrics.listen = "127.0.0.1:0".into()
        })
        .await;
    assert!(fanout.addr.is_none(), "a fan-out node serves no api");
    let (seen, ids) = app
        .home_until(&bob, Duration::from_secs(20), |ids| ids.contains(&first))
        .await;
    assert!(
        seen,
        "the fan-out node did not deliver the waiting post: {ids:?}"
    );
    let metrics_addr = fanout.metrics_addr.expect("metrics address");
    let metrics = app
        .http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("starling_fanout_events_total{outcome=\"applied\",type=\"post.created\"}"),
        "the fan-out node's /metrics does not count the applied post:\n{metrics}"
    );

    // Stopped, it delivers nothing more; the next fan-out node picks up where it left off.
    fanout.stop().await;
    let second = app.status(&alice, "after the fan-out node stopped").await;
    let second = second["id"].as_str().expect("id").to_owned();
    let (seen, _) = app
        .home_until(&bob, Duration::from_millis(1_500), |ids| {
            ids.contains(&second)
        })
        .await;
    assert!(!seen, "a stopped fan-out node still delivered");
    let again = app.spawn_role_node(3, &[Role::Fanout], |_| {}).await;
    let (seen, ids) = app
        .home_until(&bob, Duration::from_secs(20), |ids| ids.contains(&second))
        .await;
    assert!(seen, "the next fan-out node did not deliver: {ids:?}");
    assert_eq!(
        ids.iter().filter(|id| **id == first).count(),
        1,
        "the first post is in the home once"
    );
    again.stop().await;
    app.stop().await;
}
