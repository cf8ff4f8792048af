//! What the destination folders' demos share: the example config pointed at a running
//! emulator (written to `out/` at the repository root), the printed sync of the examples
//! through the connector built beside the demo, and the rejected records at the end.

use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct Demo {
    /// The destination's folder name (`trackops`): its binary is `destination-{name}`.
    name: &'static str,
    examples: PathBuf,
    config: PathBuf,
    rejected: PathBuf,
}

impl Demo {
    /// `emulator_dir` is the emulator crate's folder (`destinations/{name}/emulator`). Writes
    /// `out/{name}-config.json`: the example config with `base_url` and the rejects file set.
    pub fn prepare(
        emulator_dir: &str,
        name: &'static str,
        base_url: &str,
    ) -> std::io::Result<Self> {
        let folder = Path::new(emulator_dir)
            .parent()
            .expect("destination folder");
        let root = folder
            .parent()
            .and_then(Path::parent)
            .expect("repository root");
        let examples = folder.join("examples");
        let out = root.join("out");
        std::fs::create_dir_all(&out)?;
        let rejected = out.join(format!("{name}-rejected.jsonl"));
        let _ = std::fs::remove_file(&rejected);
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(examples.join("config.json"))?)?;
        config["base_url"] = Value::String(base_url.to_owned());
        config["object_storage_config"]["path"] = Value::String(rejected.display().to_string());
        let config_path = out.join(format!("{name}-config.json"));
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        Ok(Self {
            name,
            examples,
            config: config_path,
            rejected,
        })
    }

    /// Runs the examples through the connector, printing the command and every line it
    /// printed; returns whether it succeeded.
    pub fn sync(&self) -> std::io::Result<bool> {
        let name = self.name;
        let connector = std::env::current_exe()?.with_file_name(format!("destination-{name}"));
        crate::harness::print_sync(
            &connector,
            &self.config,
            &self.examples.join("catalog.json"),
            &self.examples.join("records.jsonl"),
            &format!("destination-{name} write --config out/{name}-config.json --catalog destinations/{name}/examples/catalog.json < destinations/{name}/examples/records.jsonl"),
        )
    }

    /// Prints the rejected records kept by the syncs.
    pub fn print_rejected(&self) {
        println!("\n=== rejected records ({})", self.rejected.display());
        for line in std::fs::read_to_string(&self.rejected)
            .unwrap_or_default()
            .lines()
        {
            println!("  {line}");
        }
    }
}
