//! Social graphs: generated (power-law follower counts, celebrities, reciprocity, all from
//! a seed) or imported from an edge list (`u v` per line, DeathStarBench's format,
//! Matrix Market headers included), and written back out as `u v` lines for the admin
//! bulk import.
//!
//! Node `n` of a graph is `0..users`; an edge `(u, v)` means `u` follows `v`.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index;
use serde::{Deserialize, Serialize};

use crate::dist::PowerLaw;

/// Parameters of a generated graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenParams {
    pub users: u32,
    /// Exponent of the follower-count power law (`P(k) ∝ k^-exponent`).
    pub exponent: f64,
    /// Fewest followers an ordinary account gets.
    pub min_followers: u32,
    /// Most followers an ordinary account gets (celebrities excepted).
    pub max_followers: u32,
    /// Accounts `0..celebrities` are celebrities.
    pub celebrities: u32,
    /// Followers of each celebrity, chosen uniformly.
    pub celebrity_followers: u32,
    /// Chance that a follow is returned.
    pub reciprocity: f64,
    pub seed: u64,
}

/// A directed follow graph on nodes `0..users`, edges sorted and unique, no self-follows.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub users: u32,
    pub edges: Vec<(u32, u32)>,
}

impl Graph {
    pub fn generate(p: &GenParams) -> anyhow::Result<Graph> {
        anyhow::ensure!(p.users >= 2, "a graph needs at least two users");
        anyhow::ensure!(
            (0.0..=1.0).contains(&p.reciprocity),
            "reciprocity is a share in 0..=1"
        );
        anyhow::ensure!(
            p.celebrities < p.users,
            "more celebrities than users requested"
        );
        let others = p.users - 1;
        anyhow::ensure!(
            p.celebrity_followers <= others,
            "a celebrity can have at most {others} followers"
        );
        let law = PowerLaw::new(
            p.exponent,
            u64::from(p.min_followers.max(1)),
            u64::from(p.max_followers.clamp(p.min_followers.max(1), others)),
        )?;
        let mut rng = StdRng::seed_from_u64(p.seed);
        let mut edges = Vec::new();
        for v in 0..p.users {
            let k = if v < p.celebrities {
                p.celebrity_followers
            } else {
                law.sample(&mut rng) as u32
            };
            // Distinct followers among the other users: draw from 0..users-1 and skip v.
            for f in index::sample(&mut rng, others as usize, k as usize) {
                let f = f as u32;
                edges.push((if f >= v { f + 1 } else { f }, v));
            }
        }
        if p.reciprocity > 0.0 {
            let returned: Vec<(u32, u32)> = edges
                .iter()
                .filter(|_| rand::Rng::gen_bool(&mut rng, p.reciprocity))
                .map(|&(u, v)| (v, u))
                .collect();
            edges.extend(returned);
        }
        edges.sort_unstable();
        edges.dedup();
        Ok(Graph {
            users: p.users,
            edges,
        })
    }

    /// Read an edge list: `u v` per line (more columns are ignored), `#`/`%` comments,
    /// blank lines skipped, and the size line of a Matrix Market file skipped. Node labels
    /// are any non-negative integers; they are renumbered densely in order of appearance.
    /// With `undirected`, each line is a follow both ways.
    pub fn read_edge_list(reader: impl BufRead, undirected: bool) -> anyhow::Result<Graph> {
        let mut ids: HashMap<u64, u32> = HashMap::new();
        let mut edges = Vec::new();
        let mut matrix_market = false;
        let mut size_line_seen = false;
        for (no, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("reading line {}", no + 1))?;
            let line = line.trim();
            if no == 0 && line.starts_with("%%MatrixMarket") {
                matrix_market = true;
                continue;
            }
            if line.is_empty() || line.starts_with('#') || line.starts_with('%') {
                continue;
            }
            if matrix_market && !size_line_seen {
                size_line_seen = true;
                continue;
            }
            let mut cols = line.split_whitespace();
            let (Some(a), Some(b)) = (cols.next(), cols.next()) else {
                anyhow::bail!("line {}: expected `u v`, got {line:?}", no + 1);
            };
            let parse = |s: &str| {
                s.parse::<u64>()
                    .with_context(|| format!("line {}: {s:?} is not a node id", no + 1))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a == b {
                continue;
            }
            let mut node = |label: u64| {
                let next = ids.len() as u32;
                *ids.entry(label).or_insert(next)
            };
            let (u, v) = (node(a), node(b));
            edges.push((u, v));
            if undirected {
                edges.push((v, u));
            }
        }
        edges.sort_unstable();
        edges.dedup();
        Ok(Graph {
            users: ids.len() as u32,
            edges,
        })
    }

    pub fn read_edge_file(path: &Path, undirected: bool) -> anyhow::Result<Graph> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Graph::read_edge_list(std::io::BufReader::new(file), undirected)
            .with_context(|| format!("reading edge list {}", path.display()))
    }

    /// Write `u v` per line (u follows v), the format of `starling admin graph import`.
    pub fn write_edge_list(&self, mut out: impl Write) -> std::io::Result<()> {
        for (u, v) in &self.edges {
            writeln!(out, "{u} {v}")?;
        }
        out.flush()
    }

    pub fn write_edge_file(&self, path: &Path) -> anyhow::Result<()> {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        self.write_edge_list(std::io::BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Followers of each node (`followers[v]` = every `u` with `u → v`).
    pub fn followers(&self) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); self.users as usize];
        for &(u, v) in &self.edges {
            out[v as usize].push(u);
        }
        out
    }

    pub fn follower_counts(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.users as usize];
        for &(_, v) in &self.edges {
            out[v as usize] += 1;
        }
        out
    }

    /// The node with the most followers (the lowest such id).
    pub fn most_followed(&self) -> Option<u32> {
        let counts = self.follower_counts();
        (0..self.users).max_by_key(|&v| (counts[v as usize], std::cmp::Reverse(v)))
    }

    /// Users, edges, mean and largest follower count, and the share of returned follows.
    pub fn summary(&self) -> GraphSummary {
        let counts = self.follower_counts();
        let reciprocal = self
            .edges
            .iter()
            .filter(|&&(u, v)| self.edges.binary_search(&(v, u)).is_ok())
            .count();
        GraphSummary {
            users: self.users,
            edges: self.edges.len() as u64,
            mean_followers: self.edges.len() as f64 / f64::from(self.users.max(1)),
            max_followers: counts.iter().copied().max().unwrap_or(0),
            reciprocity: reciprocal as f64 / self.edges.len().max(1) as f64,
            // From the smallest follower count any account has: the law's own k_min.
            exponent_estimate: crate::dist::estimate_exponent(
                counts.iter().copied(),
                counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(1),
                u64::from(self.users.saturating_sub(1)),
            ),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GraphSummary {
    pub users: u32,
    pub edges: u64,
    pub mean_followers: f64,
    pub max_followers: u64,
    pub reciprocity: f64,
    /// Follower-count exponent estimated from the graph (celebrities and returned follows
    /// included, so it is only near the generator's exponent when those are few).
    pub exponent_estimate: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> GenParams {
        GenParams {
            users: 20_000,
            exponent: 2.2,
            min_followers: 1,
            max_followers: 19_999,
            celebrities: 0,
            celebrity_followers: 0,
            reciprocity: 0.0,
            seed: 42,
        }
    }

    #[test]
    fn generated_follower_counts_have_the_exponent() {
        let g = Graph::generate(&params()).unwrap();
        let counts = g.follower_counts();
        assert!(counts.iter().all(|&c| c >= 1));
        let est = crate::dist::estimate_exponent(counts, 1, 19_999).unwrap();
        assert!((est - 2.2).abs() < 0.06, "estimated {est}");
        assert!(
            g.edges
                .iter()
                .all(|&(u, v)| u != v && u < g.users && v < g.users)
        );
        assert!(g.edges.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    }

    #[test]
    fn generation_is_deterministic_from_the_seed() {
        let a = Graph::generate(&params()).unwrap();
        let b = Graph::generate(&params()).unwrap();
        assert_eq!(a, b);
        let c = Graph::generate(&GenParams {
            seed: 43,
            ..params()
        })
        .unwrap();
        assert_ne!(a.edges, c.edges);
    }

    #[test]
    fn celebrities_and_reciprocity() {
        let g = Graph::generate(&GenParams {
            users: 5_000,
            celebrities: 2,
            celebrity_followers: 2_500,
            reciprocity: 0.3,
            max_followers: 100,
            ..params()
        })
        .unwrap();
        let counts = g.follower_counts();
        // Returned follows can only add followers to a celebrity.
        assert!(counts[0] >= 2_500 && counts[1] >= 2_500);
        assert!(
            counts[2..].iter().all(|&c| c <= 100 + 2 + 300),
            "max respected"
        );
        assert_eq!(g.most_followed().map(|v| v < 2), Some(true));
        let s = g.summary();
        // A follow is returned with chance 0.3; both directions of a pair count.
        assert!(
            (0.40..0.52).contains(&s.reciprocity),
            "reciprocity {}",
            s.reciprocity
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(
            Graph::generate(&GenParams {
                users: 1,
                ..params()
            })
            .is_err()
        );
        assert!(
            Graph::generate(&GenParams {
                reciprocity: 1.5,
                ..params()
            })
            .is_err()
        );
        assert!(
            Graph::generate(&GenParams {
                users: 10,
                celebrities: 1,
                celebrity_followers: 10,
                ..params()
            })
            .is_err()
        );
    }

    #[test]
    fn edge_list_import() {
        let text = "# a comment\n10 20\n20 10\n10 30 1.0\n\n30 30\n10 20\n";
        let g = Graph::read_edge_list(text.as_bytes(), false).unwrap();
        // 10→0, 20→1, 30→2; the self-loop and the duplicate are dropped.
        assert_eq!(g.users, 3);
        assert_eq!(g.edges, vec![(0, 1), (0, 2), (1, 0)]);
        let g = Graph::read_edge_list("1 2\n2 3\n".as_bytes(), true).unwrap();
        assert_eq!(g.edges, vec![(0, 1), (1, 0), (1, 2), (2, 1)]);
        assert!(Graph::read_edge_list("1\n".as_bytes(), false).is_err());
        assert!(Graph::read_edge_list("1 x\n".as_bytes(), false).is_err());
    }

    #[test]
    fn matrix_market_import() {
        // The header of DeathStarBench's socfb-Reed98.mtx, shortened.
        let text =
            "%%MatrixMarket matrix coordinate pattern symmetric\n% comment\n4 4 3\n1 2\n1 3\n4 2\n";
        let g = Graph::read_edge_list(text.as_bytes(), true).unwrap();
        assert_eq!(g.users, 4);
        assert_eq!(g.edges.len(), 6);
    }

    #[test]
    fn written_edge_list_reads_back() {
        let g = Graph::generate(&GenParams {
            users: 300,
            ..params()
        })
        .unwrap();
        let mut buf = Vec::new();
        g.write_edge_list(&mut buf).unwrap();
        let back = Graph::read_edge_list(buf.as_slice(), false).unwrap();
        // Renumbering follows first appearance, so compare the shape, not the labels.
        assert_eq!(back.edges.len(), g.edges.len());
        let mut a = g.follower_counts();
        let mut b = back.follower_counts();
        a.retain(|&c| c > 0);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
