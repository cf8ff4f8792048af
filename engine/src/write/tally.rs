//! What became of each stream's rows, counted as they settle: the summary line per stream a
//! sync (or a dry run) ends with.

use super::Verdict;
use std::collections::BTreeMap;

/// Distinct rejection reasons counted per stream; past this, others are counted together.
const REASONS_KEPT: usize = 50;
/// Reasons and fields named in a summary line.
const NAMED_IN_LINE: usize = 5;

#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Written by a request that does not say whether it created or updated.
    pub written: u64,
    pub rejected: u64,
    /// Field → updates that sent it.
    fields: BTreeMap<String, u64>,
    /// Reason → rejections that gave it.
    reasons: BTreeMap<String, u64>,
    other_reasons: u64,
}

impl Tally {
    pub fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Written => self.written += 1,
            Verdict::Created { .. } => self.created += 1,
            Verdict::Updated { fields, .. } => {
                self.updated += 1;
                for field in fields {
                    match self.fields.get_mut(field) {
                        Some(n) => *n += 1,
                        None => {
                            self.fields.insert(field.clone(), 1);
                        }
                    }
                }
            }
            Verdict::Unchanged { .. } => self.unchanged += 1,
            Verdict::Refused { message, .. } => self.rejected(message),
        }
    }

    pub fn rejected(&mut self, reason: &str) {
        self.rejected += 1;
        if let Some(n) = self.reasons.get_mut(reason) {
            *n += 1;
        } else if self.reasons.len() < REASONS_KEPT {
            self.reasons.insert(reason.to_owned(), 1);
        } else {
            self.other_reasons += 1;
        }
    }

    pub fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.written + self.rejected
    }

    /// One line: `stream `clients`: 3 created, 2 updated (city ×2, name ×1), 5 unchanged, 1
    /// rejected (…)`; in a dry run what the sync would do.
    pub fn line(&self, stream: &str, dry_run: bool) -> String {
        let mut parts = Vec::new();
        let mut push = |n: u64, what: &str, detail: String| {
            if n > 0 {
                parts.push(format!("{n} {what}{detail}"));
            }
        };
        push(self.created, "created", String::new());
        push(self.updated, "updated", most_often(&self.fields, 0));
        push(self.unchanged, "unchanged (no request)", String::new());
        push(self.written, "written", String::new());
        push(
            self.rejected,
            "rejected",
            most_often(&self.reasons, self.other_reasons),
        );
        let counts = if parts.is_empty() {
            "no rows".to_owned()
        } else {
            parts.join(", ")
        };
        if dry_run {
            format!("dry run, stream `{stream}` would be: {counts}")
        } else {
            format!("stream `{stream}`: {counts}")
        }
    }
}

/// ` (a ×3; b ×1; 2 more)`: the most frequent keys first.
fn most_often(counts: &BTreeMap<String, u64>, others: u64) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let mut ranked: Vec<(&String, &u64)> = counts.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut named: Vec<String> = ranked
        .iter()
        .take(NAMED_IN_LINE)
        .map(|(key, n)| format!("{key} ×{n}"))
        .collect();
    let rest: u64 = ranked
        .iter()
        .skip(NAMED_IN_LINE)
        .map(|(_, n)| **n)
        .sum::<u64>()
        + others;
    if rest > 0 {
        named.push(format!("{rest} more"));
    }
    format!(" ({})", named.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_counts_fields_and_reasons() {
        let mut tally = Tally::default();
        tally.count(&Verdict::Created {
            id: Some("1".into()),
        });
        for fields in [vec!["city"], vec!["city", "name"]] {
            tally.count(&Verdict::Updated {
                id: "2".into(),
                fields: fields.into_iter().map(String::from).collect(),
            });
        }
        tally.count(&Verdict::Unchanged { id: "3".into() });
        tally.count(&Verdict::refused("field `name` is blank"));
        assert_eq!(
            tally.line("clients", false),
            "stream `clients`: 1 created, 2 updated (city ×2; name ×1), 1 unchanged (no request), 1 rejected (field `name` is blank ×1)"
        );
        assert!(tally
            .line("clients", true)
            .starts_with("dry run, stream `clients` would be: 1 created"));
        assert_eq!(tally.rows(), 5);
    }
}
