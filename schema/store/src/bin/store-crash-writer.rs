//! Test helper for the crash test (`tests/it/crash.rs`): opens the embedded store in the
//! directory given as the first argument and writes posts until it is killed, printing each
//! post id on stdout only after the store acknowledged it.

use std::io::Write;

use starling_schema::model::{ImportAccount, NewPost};
use starling_schema::settings::{EmbeddedSettings, Limits};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: store-crash-writer DIR")?;
    let settings = EmbeddedSettings {
        path: dir.into(),
        fsync: false,
        cache_mib: 16,
    };
    let store = EmbeddedStore::open(&settings, 2, Limits::default())?;
    let author = match store.accounts_by_usernames(&["crasher"]).await?.pop() {
        Some(a) => a.id,
        None => {
            let new = ImportAccount {
                username: "crasher".into(),
                display_name: None,
                bot: false,
            };
            store.import_accounts(vec![new]).await?.remove(0).id
        }
    };
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let post = NewPost {
            author_id: author,
            text: format!("post {i}"),
            ..NewPost::default()
        };
        let id = store.create_post(post, None).await?.value.id;
        writeln!(out, "{id}")?;
        out.flush()?;
    }
    Ok(())
}
