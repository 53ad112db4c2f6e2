//! The state file: what seeding created on a server (users with their ids and tokens, the
//! graph's edge file, the celebrity), so later runs reuse a seeded server. It holds
//! access tokens, so it is written with owner-only permissions.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::graph::{Graph, GraphSummary};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    /// The graph node this account is.
    pub node: u32,
    pub id: String,
    pub username: String,
    pub token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub base_url: String,
    /// How the graph was made (generator parameters or the imported file).
    pub graph_source: String,
    pub graph: GraphSummary,
    /// The graph's edges, `u v` per line, beside the state file.
    pub edge_file: PathBuf,
    /// `api` or `admin-import`.
    pub seeded_by: String,
    pub posts_per_user: u32,
    /// The node chosen for the celebrity workload (the most-followed one).
    pub celebrity: Option<u32>,
    /// Users sorted by node.
    pub users: Vec<User>,
}

impl State {
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self).context("encoding the state")?;
        let tmp = path.with_extension("tmp");
        write_private(&tmp, &text)?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
    }

    pub fn load(path: &Path) -> anyhow::Result<State> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The graph, read back from the edge file (relative paths are beside the state).
    pub fn load_graph(&self, state_path: &Path) -> anyhow::Result<Graph> {
        let path = if self.edge_file.is_absolute() {
            self.edge_file.clone()
        } else {
            state_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&self.edge_file)
        };
        let mut edges = read_dense_edges(&path)?;
        edges.sort_unstable();
        edges.dedup();
        anyhow::ensure!(
            edges
                .iter()
                .all(|&(u, v)| u < self.graph.users && v < self.graph.users),
            "{} names nodes outside 0..{}",
            path.display(),
            self.graph.users
        );
        Ok(Graph {
            users: self.graph.users,
            edges,
        })
    }

    /// Index into `users` of each graph node (`None` where seeding made no account).
    pub fn node_index(&self) -> Vec<Option<usize>> {
        let mut out = vec![None; self.graph.users as usize];
        for (i, u) in self.users.iter().enumerate() {
            if let Some(slot) = out.get_mut(u.node as usize) {
                *slot = Some(i);
            }
        }
        out
    }
}

/// An edge file written by [`Graph::write_edge_file`], with its own (dense) node ids.
fn read_dense_edges(path: &Path) -> anyhow::Result<Vec<(u32, u32)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut edges = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let mut cols = line.split_whitespace();
        if let (Some(a), Some(b)) = (cols.next(), cols.next()) {
            let parse = |s: &str| {
                s.parse::<u32>()
                    .with_context(|| format!("{}:{}: bad node {s:?}", path.display(), no + 1))
            };
            edges.push((parse(a)?, parse(b)?));
        }
    }
    Ok(edges)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // `mode` applies only to a new file: an existing one is made private too.
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Read the admin import's tokens file: one JSON object per line,
/// `{"node":"<n>","id":"<account id>","username":"<name>","token":"<access token>"}`.
pub fn read_tokens_file(text: &str) -> anyhow::Result<Vec<User>> {
    #[derive(Deserialize)]
    struct Line {
        node: serde_json::Value,
        id: String,
        username: String,
        token: String,
    }
    let mut users = Vec::new();
    for (no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line =
            serde_json::from_str(line).with_context(|| format!("tokens line {}", no + 1))?;
        let node = match &l.node {
            serde_json::Value::String(s) => s.parse::<u32>().ok(),
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        }
        .with_context(|| format!("tokens line {}: bad node {}", no + 1, l.node))?;
        users.push(User {
            node,
            id: l.id,
            username: l.username,
            token: l.token,
        });
    }
    users.sort_by_key(|u| u.node);
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_lines_become_users() {
        let text = r#"{"node":"2","id":"111","username":"u2","token":"t2"}
{"node":"0","id":"109","username":"u0","token":"t0"}

{"node":1,"id":"110","username":"u1","token":"t1"}
"#;
        let users = read_tokens_file(text).unwrap();
        assert_eq!(
            users.iter().map(|u| u.node).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(users[2].token, "t2");
        assert!(read_tokens_file(r#"{"node":"x","id":"1","username":"a","token":"t"}"#).is_err());
    }

    #[test]
    fn state_round_trips_with_its_graph() {
        let dir = tempfile::tempdir().unwrap();
        let g = Graph {
            users: 4,
            edges: vec![(0, 3), (2, 3), (3, 1)],
        };
        g.write_edge_file(&dir.path().join("s.edges")).unwrap();
        let state = State {
            base_url: "http://x".into(),
            graph_source: "test".into(),
            graph: g.summary(),
            edge_file: "s.edges".into(),
            seeded_by: "api".into(),
            posts_per_user: 0,
            celebrity: g.most_followed(),
            users: vec![User {
                node: 3,
                id: "9".into(),
                username: "u3".into(),
                token: "secret".into(),
            }],
        };
        let path = dir.path().join("s.json");
        // A temporary file left readable by others (a crashed save, a copy) is made private.
        let leftover = path.with_extension("tmp");
        std::fs::write(&leftover, b"{}").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        state.save(&path).unwrap();
        let back = State::load(&path).unwrap();
        assert_eq!(back.load_graph(&path).unwrap(), g);
        assert_eq!(back.celebrity, Some(3));
        assert_eq!(back.node_index(), vec![None, None, None, Some(0)]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "tokens are private to the owner");
        }
    }
}
