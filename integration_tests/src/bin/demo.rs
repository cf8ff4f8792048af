//! The README's first command: start the emulator, run three real syncs of `examples/` through
//! the connector binary, show the protocol output, then what landed and what was rejected.

use integration_tests::harness::run_connector;
use integration_tests::{Emulator, Options};
use serde_json::Value;
use std::path::Path;

const PHASES: [(&str, &str, &str); 3] = [
    ("1. clients (insert)", "1-catalog.json", "1-clients.jsonl"),
    (
        "2. contacts and contracts of those clients (insert)",
        "2-catalog.json",
        "2-contacts-contracts.jsonl",
    ),
    (
        "3. updates and upserts of all three objects",
        "3-catalog.json",
        "3-updates-upserts.jsonl",
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf();
    let examples = root.join("examples");
    let out = root.join("out");
    std::fs::create_dir_all(&out)?;
    let rejected_path = out.join("rejected.jsonl");
    let _ = std::fs::remove_file(&rejected_path);

    let emulator = Emulator::start(Options::default()).await?;
    println!(
        "ClientSuccess emulator listening at {}\n",
        emulator.base_url()
    );

    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(examples.join("config.json"))?)?;
    config["base_url"] = Value::String(emulator.base_url());
    config["object_storage_config"]["path"] = Value::String(rejected_path.display().to_string());
    let config_path = out.join("config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

    let mut failed = false;
    for (title, catalog, input) in PHASES {
        let text = std::fs::read_to_string(examples.join(input))?;
        // Updates need uuids, known only once created: fill in {{client:EXTERNAL_ID}},
        // {{contact:EMAIL}} and {{contract:EXTERNAL_ID}} from what the emulator holds now.
        let text = fill_uuids(&text, &emulator);
        let input_path = out.join(input);
        std::fs::write(&input_path, &text)?;
        let catalog_path = examples.join(catalog);
        println!("=== {title}");
        println!(
            "$ destination-clientsuccess write --config {} --catalog {} < {}",
            relative(&config_path, &root),
            relative(&catalog_path, &root),
            relative(&input_path, &root)
        );
        let run = run_connector(
            &[
                "write",
                "--config",
                &config_path.to_string_lossy(),
                "--catalog",
                &catalog_path.to_string_lossy(),
            ],
            text.as_bytes(),
        )
        .await;
        print!("{}", run.stdout);
        println!("(exit status {})\n", run.status.code().unwrap_or(-1));
        failed |= !run.status.success();
    }

    println!("=== What landed in the emulator");
    print_table(
        "clients",
        &["uuid", "name", "externalId", "status", "city", "npsScore"],
        &emulator.records("client"),
    );
    print_table(
        "contacts",
        &["uuid", "email", "firstName", "lastName", "title", "mobile"],
        &emulator.records("contact"),
    );
    print_table(
        "contracts",
        &[
            "uuid",
            "name",
            "externalId",
            "amount",
            "startDate",
            "endDate",
        ],
        &emulator.records("contract"),
    );

    println!(
        "=== What was rejected, and why ({})",
        relative(&rejected_path, &root)
    );
    let rejected: Vec<Value> = std::fs::read_to_string(&rejected_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    print_table(
        "rejected records",
        &["stream", "line", "http_status", "reason"],
        &rejected,
    );

    println!("=== Requests the emulator answered");
    for (endpoint, statuses) in emulator.stats() {
        let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
        println!("  {endpoint:<28} {}", statuses.join(", "));
    }
    println!("\nemulator stopped; files in {}", relative(&out, &root));
    if failed {
        anyhow::bail!("a sync failed");
    }
    Ok(())
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn fill_uuids(text: &str, emulator: &Emulator) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        result.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let token = &rest[start + 2..start + end];
        let (object, key) = token.split_once(':').unwrap_or((token, ""));
        let field = if object == "contact" {
            "email"
        } else {
            "externalId"
        };
        let uuid = emulator
            .records(object)
            .into_iter()
            .find(|r| r[field] == key)
            .and_then(|r| r["uuid"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("missing-{object}-{key}"));
        result.push_str(&uuid);
        rest = &rest[start + end + 2..];
    }
    result.push_str(rest);
    result
}

fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 70 {
        format!("{}…", text.chars().take(69).collect::<String>())
    } else {
        text
    }
}

fn print_table(title: &str, columns: &[&str], rows: &[Value]) {
    println!("{title}: {}", rows.len());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        println!("  {}", padded.join(" | ").trim_end());
    };
    line(columns.iter().map(|c| c.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in cells {
        line(row);
    }
    println!();
}
