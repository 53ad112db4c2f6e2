//! Every statement the store runs, prepared once at connect. The keyspace name is the only
//! text spliced in (validated, quoted); every value is a bound marker. Writes that need a
//! chosen write time get it per execution (`ScyllaStore::write_at`), not in the text.
//!
//! Kinds: `read` and `write` are idempotent (the driver may retry or speculate them);
//! `lwt` (conditional) and `counter` (increments) are not, since a blind retry of either can
//! change the outcome. `window` prepares an ascending and a descending variant of a
//! clustering-range read.

use ::scylla::client::session::Session;
use ::scylla::statement::prepared::PreparedStatement;
use starling_schema::model::Order;

use super::exec::fail;
use crate::Result;

/// The columns of a post, in `posts` and `posts_by_author` alike.
pub(super) const POST_COLUMNS: &str = "id, author_id, text, spoiler_text, sensitive, visibility, \
     in_reply_to_id, in_reply_to_account_id, reblog_of, mentions, hashtags, language, \
     created_at_ms, edited_at_ms, poll_id";

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Read,
    Write,
    Lwt,
    Counter,
}

/// Both directions of a clustering-range read.
pub(super) struct Ordered {
    asc: PreparedStatement,
    desc: PreparedStatement,
}

impl Ordered {
    pub(super) fn pick(&self, order: Order) -> &PreparedStatement {
        match order {
            Order::NewestFirst => &self.desc,
            Order::OldestFirst => &self.asc,
        }
    }
}

/// The CQL text of a template for keyspace `ks` (already quoted).
pub(super) fn render(template: &str, ks: &str) -> String {
    template
        .replace("{ks}", ks)
        .replace("{post_columns}", POST_COLUMNS)
}

pub(super) struct Preparer<'a> {
    pub(super) session: &'a Session,
    pub(super) keyspace: &'a str,
    pub(super) page_size: i32,
}

impl Preparer<'_> {
    async fn prepare(&self, kind: Kind, template: &str) -> Result<PreparedStatement> {
        let mut st = self
            .session
            .prepare(render(template, self.keyspace))
            .await
            .map_err(fail("preparing statements"))?;
        st.set_page_size(self.page_size);
        st.set_is_idempotent(matches!(kind, Kind::Read | Kind::Write));
        Ok(st)
    }

    async fn ordered(&self, template: &str) -> Result<Ordered> {
        Ok(Ordered {
            asc: self
                .prepare(Kind::Read, &template.replace("{order}", "ASC"))
                .await?,
            desc: self
                .prepare(Kind::Read, &template.replace("{order}", "DESC"))
                .await?,
        })
    }
}

macro_rules! statements {
    (@type window) => { Ordered };
    (@type $kind:ident) => { PreparedStatement };
    (@kind read) => { Kind::Read };
    (@kind write) => { Kind::Write };
    (@kind lwt) => { Kind::Lwt };
    (@kind counter) => { Kind::Counter };
    (@prepare $p:ident, window, $cql:expr) => { $p.ordered($cql).await? };
    (@prepare $p:ident, $kind:ident, $cql:expr) => {
        $p.prepare(statements!(@kind $kind), $cql).await?
    };
    ($( $kind:ident $name:ident = $cql:expr; )*) => {
        pub(super) struct Statements {
            $( pub(super) $name: statements!(@type $kind), )*
        }

        impl Statements {
            pub(super) async fn prepare(p: &Preparer<'_>) -> Result<Statements> {
                Ok(Statements { $( $name: statements!(@prepare p, $kind, $cql), )* })
            }
        }

        /// Every template, for the tests that check them against the schema.
        #[cfg(test)]
        pub(super) const TEMPLATES: &[&str] = &[$( $cql, )*];
    };
}

statements! {
    // ---- operations -------------------------------------------------------------------
    read ping = "SELECT release_version FROM system.local";
    read lease_get = "SELECT until_ms FROM {ks}.id_leases WHERE node_id = ?";
    write lease_set = "UPDATE {ks}.id_leases SET until_ms = ? WHERE node_id = ?";

    // ---- accounts ---------------------------------------------------------------------
    read account_get = "SELECT id, username, display_name, note, locked, bot, role, suspended, \
        created_at_ms FROM {ks}.accounts WHERE id = ?";
    read accounts_scan_first = "SELECT id, username, display_name, note, locked, bot, role, \
        suspended, created_at_ms FROM {ks}.accounts LIMIT ?";
    read accounts_scan = "SELECT id, username, display_name, note, locked, bot, role, \
        suspended, created_at_ms FROM {ks}.accounts WHERE token(id) > token(?) LIMIT ?";
    write account_insert = "INSERT INTO {ks}.accounts (id, username, display_name, note, \
        locked, bot, role, suspended, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    write account_delete = "DELETE FROM {ks}.accounts WHERE id = ?";
    read username_get = "SELECT account_id FROM {ks}.usernames WHERE username_key = ?";
    write username_delete = "DELETE FROM {ks}.usernames WHERE username_key = ?";
    lwt username_claim = "INSERT INTO {ks}.usernames (username_key, account_id) VALUES (?, ?) \
        IF NOT EXISTS";
    read credentials_get = "SELECT password_hash FROM {ks}.credentials WHERE account_id = ?";
    read credentials_email_get = "SELECT email FROM {ks}.credentials WHERE account_id = ?";
    read email_get = "SELECT account_id FROM {ks}.accounts_by_email WHERE email_key = ?";
    lwt email_claim = "INSERT INTO {ks}.accounts_by_email (email_key, account_id) \
        VALUES (?, ?) IF NOT EXISTS";
    lwt email_release = "DELETE FROM {ks}.accounts_by_email WHERE email_key = ? \
        IF account_id = ?";
    write credentials_insert = "INSERT INTO {ks}.credentials (account_id, password_hash, email) \
        VALUES (?, ?, ?)";
    write credentials_delete = "DELETE FROM {ks}.credentials WHERE account_id = ?";
    read account_counters_get = "SELECT followers, following, statuses \
        FROM {ks}.account_counters WHERE account_id = ?";
    write account_counters_delete = "DELETE FROM {ks}.account_counters WHERE account_id = ?";
    counter followers_add = "UPDATE {ks}.account_counters SET followers = followers + ? \
        WHERE account_id = ?";
    counter following_add = "UPDATE {ks}.account_counters SET following = following + ? \
        WHERE account_id = ?";
    counter statuses_add = "UPDATE {ks}.account_counters SET statuses = statuses + ? \
        WHERE account_id = ?";
    read last_status_get = "SELECT last_status_at_ms FROM {ks}.account_last_status \
        WHERE account_id = ?";
    write last_status_set = "UPDATE {ks}.account_last_status SET last_status_at_ms = ? \
        WHERE account_id = ?";

    // ---- apps and tokens --------------------------------------------------------------
    read app_get = "SELECT id, name, website, redirect_uris, scopes, client_id, secret_hash, \
        created_at_ms FROM {ks}.apps WHERE client_id = ?";
    write app_insert = "INSERT INTO {ks}.apps (client_id, id, name, website, redirect_uris, \
        scopes, secret_hash, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    read token_get = "SELECT token_hash, account_id, app_id, scopes, created_at_ms, \
        expires_at_ms FROM {ks}.tokens WHERE token_hash = ?";
    write token_insert = "INSERT INTO {ks}.tokens (token_hash, account_id, app_id, scopes, \
        created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)";
    write token_delete = "DELETE FROM {ks}.tokens WHERE token_hash = ?";
    read tokens_of = "SELECT token_hash, account_id, app_id, scopes, created_at_ms, \
        expires_at_ms FROM {ks}.tokens_by_account WHERE account_id = ?";
    write token_of_insert = "INSERT INTO {ks}.tokens_by_account (account_id, token_hash, \
        app_id, scopes, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)";
    write token_of_delete = "DELETE FROM {ks}.tokens_by_account \
        WHERE account_id = ? AND token_hash = ?";

    // ---- authorization codes (003_oauth.cql) --------------------------------------------
    read app_id_get = "SELECT client_id FROM {ks}.apps_by_id WHERE id = ?";
    write app_id_insert = "INSERT INTO {ks}.apps_by_id (id, client_id) VALUES (?, ?)";
    read auth_code_get = "SELECT app_id, client_id, account_id, redirect_uri, scopes, \
        code_challenge, code_challenge_method, created_at_ms, expires_at_ms \
        FROM {ks}.auth_codes WHERE code_hash = ?";
    write auth_code_insert = "INSERT INTO {ks}.auth_codes (code_hash, app_id, client_id, \
        account_id, redirect_uri, scopes, code_challenge, code_challenge_method, created_at_ms, \
        expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?";
    lwt auth_code_take = "DELETE FROM {ks}.auth_codes WHERE code_hash = ? IF EXISTS";

    // ---- follows ----------------------------------------------------------------------
    read follow_edge_get = "SELECT active, version FROM {ks}.follow_edges \
        WHERE follower_id = ? AND followee_id = ?";
    lwt follow_edge_create = "INSERT INTO {ks}.follow_edges (follower_id, followee_id, active, \
        version) VALUES (?, ?, ?, ?) IF NOT EXISTS";
    lwt follow_edge_change = "UPDATE {ks}.follow_edges SET active = ?, version = ? \
        WHERE follower_id = ? AND followee_id = ? IF version = ? AND active = ?";
    write following_insert = "INSERT INTO {ks}.following (follower_id, followee_id, \
        created_at_ms) VALUES (?, ?, ?)";
    write following_delete = "DELETE FROM {ks}.following WHERE follower_id = ? \
        AND followee_id = ?";
    write follower_insert = "INSERT INTO {ks}.followers (followee_id, follower_id, \
        created_at_ms) VALUES (?, ?, ?)";
    write follower_delete = "DELETE FROM {ks}.followers WHERE followee_id = ? \
        AND follower_id = ?";
    window followers_page = "SELECT follower_id FROM {ks}.followers WHERE followee_id = ? \
        AND follower_id >= ? AND follower_id <= ? ORDER BY follower_id {order} LIMIT ?";
    window following_page = "SELECT followee_id FROM {ks}.following WHERE follower_id = ? \
        AND followee_id >= ? AND followee_id <= ? ORDER BY followee_id {order} LIMIT ?";
    read following_among = "SELECT followee_id FROM {ks}.following WHERE follower_id = ? \
        AND followee_id IN ?";
    read followers_among = "SELECT follower_id FROM {ks}.followers WHERE followee_id = ? \
        AND follower_id IN ?";

    // ---- profiles and follow requests (schema version 6) ------------------------------
    read profile_get = "SELECT discoverable, fields, privacy, sensitive, language \
        FROM {ks}.account_profiles WHERE account_id = ?";
    write profile_insert = "INSERT INTO {ks}.account_profiles (account_id, discoverable, \
        fields, privacy, sensitive, language) VALUES (?, ?, ?, ?, ?, ?)";
    write profile_delete = "DELETE FROM {ks}.account_profiles WHERE account_id = ?";
    lwt follow_request_claim = "INSERT INTO {ks}.follow_requests (account_id, requester_id, \
        created_at_ms) VALUES (?, ?, ?) IF NOT EXISTS";
    lwt follow_request_take = "DELETE FROM {ks}.follow_requests WHERE account_id = ? \
        AND requester_id = ? IF EXISTS";
    read follow_request_get = "SELECT requester_id FROM {ks}.follow_requests \
        WHERE account_id = ? AND requester_id = ?";
    window follow_requests_page = "SELECT requester_id FROM {ks}.follow_requests \
        WHERE account_id = ? AND requester_id >= ? AND requester_id <= ? \
        ORDER BY requester_id {order} LIMIT ?";
    write follow_request_sent_insert = "INSERT INTO {ks}.follow_requests_sent (requester_id, \
        account_id) VALUES (?, ?)";
    write follow_request_sent_delete = "DELETE FROM {ks}.follow_requests_sent \
        WHERE requester_id = ? AND account_id = ?";
    read follow_requests_sent_among = "SELECT account_id FROM {ks}.follow_requests_sent \
        WHERE requester_id = ? AND account_id IN ?";
    read follow_requests_sent_all = "SELECT account_id FROM {ks}.follow_requests_sent \
        WHERE requester_id = ?";
    read follow_requests_all = "SELECT requester_id FROM {ks}.follow_requests \
        WHERE account_id = ?";
    lwt conversation_mute_claim = "INSERT INTO {ks}.conversation_mutes (account_id, root_id) \
        VALUES (?, ?) IF NOT EXISTS";
    lwt conversation_mute_release = "DELETE FROM {ks}.conversation_mutes WHERE account_id = ? \
        AND root_id = ? IF EXISTS";
    read conversation_mutes_among = "SELECT root_id FROM {ks}.conversation_mutes \
        WHERE account_id = ? AND root_id IN ?";
    write conversation_mutes_delete = "DELETE FROM {ks}.conversation_mutes WHERE account_id = ?";

    // ---- posts ------------------------------------------------------------------------
    read post_get = "SELECT {post_columns}, deleted_at_ms FROM {ks}.posts WHERE id = ?";
    // Full scans for index rebuilds, in token order; the cursor is the last id seen.
    read posts_scan_first = "SELECT {post_columns}, deleted_at_ms FROM {ks}.posts LIMIT ?";
    read posts_scan = "SELECT {post_columns}, deleted_at_ms FROM {ks}.posts \
        WHERE token(id) > token(?) LIMIT ?";
    write post_insert = "INSERT INTO {ks}.posts ({post_columns}) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    write post_purge = "DELETE FROM {ks}.posts WHERE id = ?";
    lwt post_tombstone = "UPDATE {ks}.posts SET deleted_at_ms = ? WHERE id = ? \
        IF deleted_at_ms = null AND author_id = ?";
    write post_of_insert = "INSERT INTO {ks}.posts_by_author ({post_columns}) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    write post_of_delete = "DELETE FROM {ks}.posts_by_author WHERE author_id = ? AND id = ?";
    read post_of_get = "SELECT id FROM {ks}.posts_by_author WHERE author_id = ? AND id = ?";
    window posts_of_page = "SELECT {post_columns} FROM {ks}.posts_by_author \
        WHERE author_id = ? AND id >= ? AND id <= ? ORDER BY id {order} LIMIT ?";
    read post_counters_get = "SELECT replies, reblogs, favourites FROM {ks}.post_counters \
        WHERE post_id = ?";
    counter replies_add = "UPDATE {ks}.post_counters SET replies = replies + ? \
        WHERE post_id = ?";
    counter reblogs_add = "UPDATE {ks}.post_counters SET reblogs = reblogs + ? \
        WHERE post_id = ?";
    counter favourites_add = "UPDATE {ks}.post_counters SET favourites = favourites + ? \
        WHERE post_id = ?";
    read idempotency_get = "SELECT post_id FROM {ks}.idempotency_keys WHERE author_id = ? \
        AND idempotency_key = ?";
    lwt idempotency_claim = "INSERT INTO {ks}.idempotency_keys (author_id, idempotency_key, \
        post_id) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?";

    // ---- favourites and reblogs -------------------------------------------------------
    lwt favourite_claim = "INSERT INTO {ks}.favourites (post_id, account_id, created_at_ms) \
        VALUES (?, ?, ?) IF NOT EXISTS";
    lwt favourite_release = "DELETE FROM {ks}.favourites WHERE post_id = ? AND account_id = ? \
        IF EXISTS";
    read favourite_get = "SELECT account_id FROM {ks}.favourites WHERE post_id = ? \
        AND account_id = ?";
    window favourited_by_page = "SELECT account_id FROM {ks}.favourites WHERE post_id = ? \
        AND account_id >= ? AND account_id <= ? ORDER BY account_id {order} LIMIT ?";
    lwt reblog_claim = "INSERT INTO {ks}.reblogs (post_id, account_id, reblog_id) \
        VALUES (?, ?, ?) IF NOT EXISTS";
    lwt reblog_release = "DELETE FROM {ks}.reblogs WHERE post_id = ? AND account_id = ? \
        IF reblog_id = ?";
    read reblog_get = "SELECT reblog_id FROM {ks}.reblogs WHERE post_id = ? AND account_id = ?";
    window reblogged_by_page = "SELECT account_id FROM {ks}.reblogs WHERE post_id = ? \
        AND account_id >= ? AND account_id <= ? ORDER BY account_id {order} LIMIT ?";

    // ---- blocks and mutes -------------------------------------------------------------
    read block_get = "SELECT target_id FROM {ks}.blocks WHERE account_id = ? AND target_id = ?";
    write block_insert = "INSERT INTO {ks}.blocks (account_id, target_id, created_at_ms) \
        VALUES (?, ?, ?)";
    write block_delete = "DELETE FROM {ks}.blocks WHERE account_id = ? AND target_id = ?";
    write blocked_by_insert = "INSERT INTO {ks}.blocked_by (account_id, blocker_id, \
        created_at_ms) VALUES (?, ?, ?)";
    write blocked_by_delete = "DELETE FROM {ks}.blocked_by WHERE account_id = ? \
        AND blocker_id = ?";
    window blocks_page = "SELECT target_id FROM {ks}.blocks WHERE account_id = ? \
        AND target_id >= ? AND target_id <= ? ORDER BY target_id {order} LIMIT ?";
    read blocks_among = "SELECT target_id FROM {ks}.blocks WHERE account_id = ? \
        AND target_id IN ?";
    read blocked_by_among = "SELECT blocker_id FROM {ks}.blocked_by WHERE account_id = ? \
        AND blocker_id IN ?";
    read mute_get = "SELECT notifications FROM {ks}.mutes WHERE account_id = ? \
        AND target_id = ?";
    write mute_insert = "INSERT INTO {ks}.mutes (account_id, target_id, notifications, \
        created_at_ms) VALUES (?, ?, ?, ?)";
    write mute_delete = "DELETE FROM {ks}.mutes WHERE account_id = ? AND target_id = ?";
    window mutes_page = "SELECT target_id FROM {ks}.mutes WHERE account_id = ? \
        AND target_id >= ? AND target_id <= ? ORDER BY target_id {order} LIMIT ?";
    read mutes_among = "SELECT target_id, notifications FROM {ks}.mutes WHERE account_id = ? \
        AND target_id IN ?";

    // ---- notifications ----------------------------------------------------------------
    write notification_insert = "INSERT INTO {ks}.notifications (account_id, id, kind, \
        from_account_id, post_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)";
    read notification_get = "SELECT account_id, id, kind, from_account_id, post_id, \
        created_at_ms FROM {ks}.notifications WHERE account_id = ? AND id = ?";
    write notification_delete = "DELETE FROM {ks}.notifications WHERE account_id = ? AND id = ?";
    window notifications_page = "SELECT account_id, id, kind, from_account_id, post_id, \
        created_at_ms FROM {ks}.notifications WHERE account_id = ? AND id >= ? AND id <= ? \
        ORDER BY id {order} LIMIT ?";
    window notifications_scan = "SELECT account_id, id, kind, from_account_id, post_id, \
        created_at_ms FROM {ks}.notifications WHERE account_id = ? AND id >= ? AND id <= ? \
        ORDER BY id {order}";
    read notification_ids = "SELECT id FROM {ks}.notifications WHERE account_id = ?";
    write notifications_clear = "DELETE FROM {ks}.notifications WHERE account_id = ? \
        AND id <= ?";

    lwt notification_key_claim = "INSERT INTO {ks}.notification_keys (account_id, kind, \
        from_account_id, post_id, notification_id) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS";

    // ---- conversations, public and tag timelines, who shuns whom ------------------------
    write reply_insert = "INSERT INTO {ks}.replies (post_id, reply_id) VALUES (?, ?)";
    write reply_delete = "DELETE FROM {ks}.replies WHERE post_id = ? AND reply_id = ?";
    window replies_page = "SELECT reply_id FROM {ks}.replies WHERE post_id = ? \
        AND reply_id >= ? AND reply_id <= ? ORDER BY reply_id {order} LIMIT ?";
    write feed_post_insert = "INSERT INTO {ks}.feed_posts (feed, day, post_id) VALUES (?, ?, ?)";
    write feed_post_delete = "DELETE FROM {ks}.feed_posts WHERE feed = ? AND day = ? \
        AND post_id = ?";
    window feed_posts_page = "SELECT post_id FROM {ks}.feed_posts WHERE feed = ? AND day = ? \
        AND post_id >= ? AND post_id <= ? ORDER BY post_id {order} LIMIT ?";
    write feed_day_insert = "INSERT INTO {ks}.feed_days (feed, day) VALUES (?, ?)";
    window feed_days_scan = "SELECT day FROM {ks}.feed_days WHERE feed = ? AND day >= ? \
        AND day <= ? ORDER BY day {order}";
    write muted_by_insert = "INSERT INTO {ks}.muted_by (account_id, muter_id, created_at_ms) \
        VALUES (?, ?, ?)";
    write muted_by_delete = "DELETE FROM {ks}.muted_by WHERE account_id = ? AND muter_id = ?";
    window muted_by_page = "SELECT muter_id FROM {ks}.muted_by WHERE account_id = ? \
        AND muter_id >= ? AND muter_id <= ? ORDER BY muter_id {order} LIMIT ?";
    window blocked_by_page = "SELECT blocker_id FROM {ks}.blocked_by WHERE account_id = ? \
        AND blocker_id >= ? AND blocker_id <= ? ORDER BY blocker_id {order} LIMIT ?";

    // ---- start-up state: markers, filters, announcements ------------------------------
    read markers_get = "SELECT timeline, last_read_id, version, updated_at_ms \
        FROM {ks}.markers WHERE account_id = ?";
    read marker_get = "SELECT timeline, last_read_id, version, updated_at_ms \
        FROM {ks}.markers WHERE account_id = ? AND timeline = ?";
    lwt marker_create = "INSERT INTO {ks}.markers (account_id, timeline, last_read_id, \
        version, updated_at_ms) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS";
    lwt marker_update = "UPDATE {ks}.markers SET last_read_id = ?, version = ?, \
        updated_at_ms = ? WHERE account_id = ? AND timeline = ? IF version = ?";
    read filters_get = "SELECT doc FROM {ks}.filters WHERE account_id = ?";
    read filter_get = "SELECT doc FROM {ks}.filters WHERE account_id = ? AND filter_id = ?";
    write filter_insert = "INSERT INTO {ks}.filters (account_id, filter_id, doc) \
        VALUES (?, ?, ?)";
    write filter_delete = "DELETE FROM {ks}.filters WHERE account_id = ? AND filter_id = ?";
    read announcements_get = "SELECT doc FROM {ks}.announcements WHERE bucket = ?";
    read announcement_get = "SELECT doc FROM {ks}.announcements WHERE bucket = ? AND id = ?";
    write announcement_insert = "INSERT INTO {ks}.announcements (bucket, id, doc) \
        VALUES (?, ?, ?)";
    write announcement_delete = "DELETE FROM {ks}.announcements WHERE bucket = ? AND id = ?";
    read dismissals_get = "SELECT announcement_id FROM {ks}.announcement_dismissals \
        WHERE account_id = ?";
    read dismissal_get = "SELECT announcement_id FROM {ks}.announcement_dismissals \
        WHERE account_id = ? AND announcement_id = ?";
    write dismissal_insert = "INSERT INTO {ks}.announcement_dismissals (account_id, \
        announcement_id) VALUES (?, ?)";

    // ---- media attachments ------------------------------------------------------------
    read media_get = "SELECT post_id, doc FROM {ks}.media WHERE id = ?";
    write media_insert = "INSERT INTO {ks}.media (id, doc) VALUES (?, ?)";
    lwt media_update = "UPDATE {ks}.media SET doc = ? WHERE id = ? IF EXISTS";
    lwt media_attach = "UPDATE {ks}.media SET post_id = ? WHERE id = ? IF post_id = null";
    lwt media_detach = "UPDATE {ks}.media SET post_id = null WHERE id = ? IF post_id = ?";
    write media_delete = "DELETE FROM {ks}.media WHERE id = ?";
    read media_scan_first = "SELECT post_id, doc FROM {ks}.media LIMIT ?";
    read media_scan = "SELECT post_id, doc FROM {ks}.media WHERE token(id) > token(?) LIMIT ?";
    read media_by_post_get = "SELECT position, media_id FROM {ks}.media_by_post \
        WHERE post_id = ?";
    write media_by_post_insert = "INSERT INTO {ks}.media_by_post (post_id, position, \
        media_id) VALUES (?, ?, ?)";
    write media_by_post_delete = "DELETE FROM {ks}.media_by_post WHERE post_id = ? \
        AND position = ?";
    read profile_images_get = "SELECT doc FROM {ks}.profile_images WHERE account_id = ?";
    write profile_images_insert = "INSERT INTO {ks}.profile_images (account_id, doc) \
        VALUES (?, ?)";
    // ---- web push ---------------------------------------------------------------------
    read push_subscriptions_get = "SELECT doc FROM {ks}.push_subscriptions WHERE account_id = ?";
    read push_subscription_get = "SELECT doc FROM {ks}.push_subscriptions \
        WHERE account_id = ? AND token_hash = ?";
    write push_subscription_insert = "INSERT INTO {ks}.push_subscriptions (account_id, \
        token_hash, doc) VALUES (?, ?, ?)";
    write push_subscription_delete = "DELETE FROM {ks}.push_subscriptions \
        WHERE account_id = ? AND token_hash = ?";
    write push_subscriptions_delete = "DELETE FROM {ks}.push_subscriptions WHERE account_id = ?";
    lwt server_key_claim = "INSERT INTO {ks}.server_keys (name, value) VALUES (?, ?) \
        IF NOT EXISTS";
    read server_key_get = "SELECT value FROM {ks}.server_keys WHERE name = ?";
    // ---- direct conversations (011_conversations.cql) -----------------------------------
    read conversation_get = "SELECT participants, last_status_id, unread, removed_through \
        FROM {ks}.account_conversations WHERE account_id = ? AND conversation_id = ?";
    read conversations_all = "SELECT conversation_id FROM {ks}.account_conversations \
        WHERE account_id = ?";
    lwt conversation_create = "INSERT INTO {ks}.account_conversations (account_id, \
        conversation_id, participants, last_status_id, unread) VALUES (?, ?, ?, ?, ?) \
        IF NOT EXISTS";
    lwt conversation_update = "UPDATE {ks}.account_conversations SET participants = ?, \
        last_status_id = ?, unread = ?, removed_through = ? WHERE account_id = ? \
        AND conversation_id = ? IF last_status_id = ?";
    write conversations_delete = "DELETE FROM {ks}.account_conversations WHERE account_id = ?";
    write conversation_last_insert = "INSERT INTO {ks}.conversations_by_last (account_id, \
        last_status_id, conversation_id) VALUES (?, ?, ?)";
    write conversation_last_delete = "DELETE FROM {ks}.conversations_by_last \
        WHERE account_id = ? AND last_status_id = ? AND conversation_id = ?";
    write conversations_last_delete = "DELETE FROM {ks}.conversations_by_last \
        WHERE account_id = ?";
    window conversations_page = "SELECT last_status_id, conversation_id \
        FROM {ks}.conversations_by_last WHERE account_id = ? AND last_status_id >= ? \
        AND last_status_id <= ? ORDER BY last_status_id {order} LIMIT ?";
    write conversation_post_insert = "INSERT INTO {ks}.conversation_posts (account_id, \
        conversation_id, post_id) VALUES (?, ?, ?)";
    write conversation_post_delete = "DELETE FROM {ks}.conversation_posts WHERE account_id = ? \
        AND conversation_id = ? AND post_id = ?";
    write conversation_posts_delete = "DELETE FROM {ks}.conversation_posts \
        WHERE account_id = ? AND conversation_id = ?";
    read conversation_post_newest = "SELECT post_id FROM {ks}.conversation_posts \
        WHERE account_id = ? AND conversation_id = ? AND post_id >= ? \
        ORDER BY post_id DESC LIMIT ?";
    // ---- lists and marks (009_feeds.cql) ------------------------------------------------
    write list_insert = "INSERT INTO {ks}.lists (owner_id, list_id, doc) VALUES (?, ?, ?)";
    read list_get = "SELECT doc FROM {ks}.lists WHERE owner_id = ? AND list_id = ?";
    read lists_get = "SELECT doc FROM {ks}.lists WHERE owner_id = ?";
    write list_delete = "DELETE FROM {ks}.lists WHERE owner_id = ? AND list_id = ?";
    write list_member_insert = "INSERT INTO {ks}.list_members (list_id, account_id) \
        VALUES (?, ?)";
    write list_member_delete = "DELETE FROM {ks}.list_members WHERE list_id = ? \
        AND account_id = ?";
    read list_members_all = "SELECT account_id FROM {ks}.list_members WHERE list_id = ?";
    window list_members_page = "SELECT account_id FROM {ks}.list_members WHERE list_id = ? \
        AND account_id >= ? AND account_id <= ? ORDER BY account_id {order} LIMIT ?";
    write member_list_insert = "INSERT INTO {ks}.member_lists (account_id, owner_id, list_id, \
        doc) VALUES (?, ?, ?, ?)";
    write member_list_delete = "DELETE FROM {ks}.member_lists WHERE account_id = ? \
        AND owner_id = ? AND list_id = ?";
    read member_lists_range = "SELECT doc FROM {ks}.member_lists WHERE account_id = ? \
        AND owner_id >= ? AND owner_id <= ?";
    write mark_insert = "INSERT INTO {ks}.marks (account_id, kind, mark_id, post_id) \
        VALUES (?, ?, ?, ?)";
    write mark_delete = "DELETE FROM {ks}.marks WHERE account_id = ? AND kind = ? \
        AND mark_id = ?";
    read marks_head = "SELECT mark_id FROM {ks}.marks WHERE account_id = ? AND kind = ? \
        LIMIT ?";
    window marks_page = "SELECT mark_id, post_id FROM {ks}.marks WHERE account_id = ? \
        AND kind = ? AND mark_id >= ? AND mark_id <= ? ORDER BY kind {order}, \
        mark_id {order} LIMIT ?";
    lwt mark_key_claim = "INSERT INTO {ks}.mark_keys (account_id, kind, post_id, mark_id) \
        VALUES (?, ?, ?, ?) IF NOT EXISTS";
    read mark_key_get = "SELECT mark_id FROM {ks}.mark_keys WHERE account_id = ? AND kind = ? \
        AND post_id = ?";
    write followed_tag_insert = "INSERT INTO {ks}.followed_tags (account_id, tag) VALUES (?, ?)";
    write followed_tag_delete = "DELETE FROM {ks}.followed_tags WHERE account_id = ? AND tag = ?";
    read followed_tag_get = "SELECT tag FROM {ks}.followed_tags WHERE account_id = ? AND tag = ?";
    read followed_tags_get = "SELECT tag FROM {ks}.followed_tags WHERE account_id = ?";
    write tag_follower_insert = "INSERT INTO {ks}.tag_followers (tag, account_id) VALUES (?, ?)";
    write tag_follower_delete = "DELETE FROM {ks}.tag_followers WHERE tag = ? AND account_id = ?";
    window tag_followers_page = "SELECT account_id FROM {ks}.tag_followers WHERE tag = ? \
        AND account_id >= ? AND account_id <= ? ORDER BY account_id {order} LIMIT ?";
    lwt mark_key_release = "DELETE FROM {ks}.mark_keys WHERE account_id = ? AND kind = ? \
        AND post_id = ? IF mark_id = ?";
    // ---- who to follow (012_discovery.cql) ------------------------------------------------
    read suggestion_dismissal_get = "SELECT target_id FROM {ks}.suggestion_dismissals \
        WHERE account_id = ? AND target_id = ?";
    write suggestion_dismissal_insert = "INSERT INTO {ks}.suggestion_dismissals (account_id, target_id, \
        created_at_ms) VALUES (?, ?, ?)";
    window suggestion_dismissals_page = "SELECT target_id FROM {ks}.suggestion_dismissals \
        WHERE account_id = ? AND target_id >= ? AND target_id <= ? \
        ORDER BY target_id {order} LIMIT ?";

    // ---- edits and polls (010_edits_polls.cql) ---------------------------------------------
    write post_version_insert = "INSERT INTO {ks}.post_versions (post_id, at_ms, doc) \
        VALUES (?, ?, ?)";
    read post_versions_get = "SELECT doc FROM {ks}.post_versions WHERE post_id = ? \
        ORDER BY at_ms ASC";
    write poll_insert = "INSERT INTO {ks}.polls (poll_id, doc) VALUES (?, ?)";
    read poll_get = "SELECT doc FROM {ks}.polls WHERE poll_id = ?";
    lwt poll_vote_claim = "INSERT INTO {ks}.poll_votes (poll_id, account_id, choices) \
        VALUES (?, ?, ?) IF NOT EXISTS";
    read poll_vote_get = "SELECT choices FROM {ks}.poll_votes WHERE poll_id = ? \
        AND account_id = ?";
    window poll_voters_page = "SELECT account_id FROM {ks}.poll_votes WHERE poll_id = ? \
        AND account_id >= ? AND account_id <= ? ORDER BY account_id {order} LIMIT ?";
    counter poll_votes_add = "UPDATE {ks}.poll_counters SET votes = votes + ? \
        WHERE poll_id = ? AND choice = ?";
    read poll_counters_get = "SELECT choice, votes FROM {ks}.poll_counters WHERE poll_id = ?";
    write poll_due_insert = "INSERT INTO {ks}.polls_due (bucket, expires_at_ms, poll_id) \
        VALUES (?, ?, ?)";
    write poll_due_delete = "DELETE FROM {ks}.polls_due WHERE bucket = ? \
        AND expires_at_ms = ? AND poll_id = ?";
    read polls_due_get = "SELECT expires_at_ms, poll_id FROM {ks}.polls_due WHERE bucket = ? \
        AND expires_at_ms <= ? LIMIT ?";
    lwt poll_expiry_claim = "INSERT INTO {ks}.poll_expiry_claims (poll_id, holder) \
        VALUES (?, ?) IF NOT EXISTS USING TTL ?";

    // ---- event outbox -----------------------------------------------------------------
    write outbox_insert = "INSERT INTO {ks}.outbox (node_id, id, payload) VALUES (?, ?, ?)";
    read outbox_head = "SELECT id, payload FROM {ks}.outbox WHERE node_id = ? \
        ORDER BY id ASC LIMIT ?";
    write outbox_delete = "DELETE FROM {ks}.outbox WHERE node_id = ? AND id = ?";
}
