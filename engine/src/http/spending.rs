//! What a sync spends of an API's request budget, said in a progress line: the requests sent,
//! how many went to finding records, and how long the records waiting take at the pace kept.

/// How long `requests` take at `per_minute`, in hours and minutes.
pub fn duration_of(requests: u64, per_minute: f64) -> String {
    let minutes = (requests as f64 / per_minute.max(0.01)).ceil() as u64;
    match (minutes / 60, minutes % 60) {
        (0, 0) => "under a minute".to_owned(),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// `36000` as `36,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress line's part for an API whose budget is what a sync waits on: `spent` requests
/// (`finding` of them on list pages and look-ups) for `settled` records, and, where a pace is
/// kept (`per_minute`), how long the `waiting` records take at it, each costing what the
/// settled ones did beyond finding.
pub fn spending(
    spent: u64,
    finding: u64,
    per_minute: Option<f64>,
    settled: u64,
    waiting: u64,
) -> String {
    let per_record = match settled {
        0 => 1.0,
        n => spent.saturating_sub(finding) as f64 / n as f64,
    };
    let mut line = format!(
        "{spent} requests spent ({finding} on list pages and lookups, {per_record:.2} a record)"
    );
    if let Some(pace) = per_minute {
        line += &format!(", pace {pace:.0} requests/min");
        if waiting > 0 {
            let left = (waiting as f64 * per_record).ceil() as u64;
            line += &format!(
                "; the {waiting} records waiting take ~{} at this pace",
                duration_of(left, pace)
            );
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_said_in_hours() {
        assert_eq!(duration_of(10_000, 20.0), "8 h 20 min");
        assert_eq!(duration_of(10_000, 100.0), "1 h 40 min");
        assert_eq!(duration_of(30, 20.0), "2 min");
        assert_eq!(thousands(36_000), "36,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn the_records_waiting_cost_what_the_settled_ones_did_beyond_finding() {
        assert_eq!(
            spending(120, 20, Some(20.0), 100, 400),
            "120 requests spent (20 on list pages and lookups, 1.00 a record), pace 20 requests/min; the 400 records waiting take ~20 min at this pace"
        );
        assert_eq!(
            spending(5, 5, None, 0, 10),
            "5 requests spent (5 on list pages and lookups, 1.00 a record)"
        );
    }
}
