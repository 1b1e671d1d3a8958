//! PGRST200's hint, as PostgREST 13 gives it: when an embed finds no relationship, the closest name
//! among the relations related to the parent ("Perhaps you meant 'books' instead of 'bookz'."), or,
//! when the parent has no relationships at all, the closest relation that has some. Closeness is
//! PostgREST's fuzzy set (the `fuzzyset` library's defaults): candidates sharing a trigram (else a
//! bigram) of the padded, alphanumeric-only name, ranked by Levenshtein similarity, at least 0.33.

use super::SchemaCache;
use std::collections::{BTreeSet, HashMap};

/// Candidates ranked by gram similarity before the Levenshtein ranking (the library's limit).
const TOP_BY_GRAMS: usize = 50;
/// The least similarity suggested.
const MIN_SCORE: f64 = 0.33;

impl SchemaCache {
    /// "Perhaps you meant …" for an embed of `child` in `parent` (of `schema`) that matched nothing.
    pub fn relationship_hint(&self, schema: &str, parent: &str, child: &str) -> Option<String> {
        let mut parents = BTreeSet::new();
        let mut children = BTreeSet::new();
        for fk in self
            .fks
            .iter()
            .filter(|fk| fk.schema == schema && fk.fschema == schema)
        {
            parents.insert(fk.table.as_str());
            parents.insert(fk.ftable.as_str());
            if fk.table == parent {
                children.insert(fk.ftable.as_str());
            }
            if fk.ftable == parent {
                children.insert(fk.table.as_str());
                // The other side of a junction.
                self.fks
                    .iter()
                    .filter(|b| b.schema == fk.schema && b.table == fk.table && b.name != fk.name)
                    .for_each(|b| {
                        children.insert(b.ftable.as_str());
                    });
            }
        }
        if parents.contains(parent) {
            // No suggestion when the child itself is related (the hint was what failed).
            let best = matches(&children, child)
                .into_iter()
                .find(|(score, _)| *score < 1.0)?;
            Some(format!(
                "Perhaps you meant '{}' instead of '{child}'.",
                best.1
            ))
        } else {
            let best = matches(&parents, parent).into_iter().next()?;
            Some(format!(
                "Perhaps you meant '{}' instead of '{parent}'.",
                best.1
            ))
        }
    }
}

/// `-name-` in lower case without what is neither alphanumeric, a space nor a comma.
fn padded(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == ',')
        .collect();
    format!("-{kept}-")
}

fn grams(s: &str, n: usize) -> HashMap<String, usize> {
    let mut chars: Vec<char> = padded(s).chars().collect();
    while chars.len() < n {
        chars.push('-');
    }
    let mut out = HashMap::new();
    for w in chars.windows(n) {
        *out.entry(w.iter().collect()).or_insert(0) += 1;
    }
    out
}

fn cosine(a: &HashMap<String, usize>, b: &HashMap<String, usize>) -> f64 {
    let dot: usize = a.iter().map(|(g, n)| n * b.get(g).unwrap_or(&0)).sum();
    let norm =
        |m: &HashMap<String, usize>| (m.values().map(|n| n * n).sum::<usize>() as f64).sqrt();
    dot as f64 / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The names of `set` close to `query`, best first, with their similarity (1 for the name itself).
fn matches<'s>(set: &BTreeSet<&'s str>, query: &str) -> Vec<(f64, &'s str)> {
    let q = query.to_lowercase();
    if let Some(exact) = set.iter().find(|s| s.to_lowercase() == q) {
        return vec![(1.0, exact)];
    }
    for n in [3, 2] {
        let qg = grams(query, n);
        let mut by_grams: Vec<(f64, &str)> = set
            .iter()
            .map(|s| (cosine(&qg, &grams(s, n)), *s))
            .filter(|(score, _)| *score > 0.0)
            .collect();
        by_grams.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut ranked: Vec<(f64, &str)> = by_grams
            .into_iter()
            .take(TOP_BY_GRAMS)
            .map(|(_, s)| {
                let l = s.to_lowercase();
                let longest = l.chars().count().max(q.chars().count()).max(1);
                (1.0 - levenshtein(&q, &l) as f64 / longest as f64, s)
            })
            .filter(|(score, _)| *score >= MIN_SCORE)
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        if !ranked.is_empty() {
            return ranked;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_follow_postgrest_examples() {
        let set: BTreeSet<&str> = ["directors", "roles", "actors"].into_iter().collect();
        assert_eq!(matches(&set, "role")[0].1, "roles");
        assert_eq!(matches(&set, "actors")[0], (1.0, "actors"));
        assert!(matches(&set, "noclosealternative").is_empty());
        let films: BTreeSet<&str> = ["films"].into_iter().collect();
        assert_eq!(matches(&films, "film")[0].1, "films");
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }
}
