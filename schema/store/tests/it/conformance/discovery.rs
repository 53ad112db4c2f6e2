//! Conformance cases for who to follow (schema version 12).

use starling_schema::model::Window;
use starling_schema::{ErrorKind, Id};
use starling_store::{Store, all_ids};

use super::{Backend, kind, users};

pub async fn dismissed_suggestions_are_kept_per_account_and_listed<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "dis", 4).await;
    let (me, a, c, other) = (ids[0], ids[1], ids[2], ids[3]);
    assert!(s.dismiss_suggestion(me, c).await.unwrap());
    assert!(s.dismiss_suggestion(me, a).await.unwrap());
    // Dismissing again changes nothing.
    assert!(!s.dismiss_suggestion(me, a).await.unwrap());
    let mine = all_ids(|w| s.dismissed_suggestions(me, w)).await.unwrap();
    let mut want = vec![a, c];
    want.sort();
    assert_eq!(mine, want, "listed by id, once each");
    assert!(
        s.dismissed_suggestions(other, Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty(),
        "another account's dismissals are its own"
    );
    // Pages walk the whole list.
    let first = s
        .dismissed_suggestions(me, Window::oldest(1))
        .await
        .unwrap();
    assert_eq!(first.items, vec![want[0]]);
    let rest = s
        .dismissed_suggestions(me, first.next.expect("a second page"))
        .await
        .unwrap();
    assert_eq!(rest.items, vec![want[1]]);
    // A missing account on either side is not found, and nothing is kept.
    let nobody = Id(u64::from(u32::MAX) << 20);
    assert_eq!(
        kind(s.dismiss_suggestion(me, nobody).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.dismiss_suggestion(nobody, me).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        all_ids(|w| s.dismissed_suggestions(me, w)).await.unwrap(),
        want
    );
}
