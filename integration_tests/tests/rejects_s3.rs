//! Rejected records in S3, against a real S3-compatible server (moto, from PyPI, installed by
//! scripts/test.sh into .venv) on loopback: the objects a sync puts, and `check` proving the
//! store (and failing, saying what to fix, when it cannot).

use integration_tests::harness::{
    config_for, record_line, run_connector, scratch_dir, state_line, sync, write_json,
};
use integration_tests::{Emulator, Options};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// moto in server mode on 127.0.0.1, a port of its choosing.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let binary = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
            });
        assert!(
            binary.exists(),
            "{} not found: scripts/test.sh installs moto into .venv (or set MOTO_SERVER)",
            binary.display()
        );
        let mut child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto_server starts");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut endpoint = None;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(at) = line.find("http://127.0.0.1:") {
                endpoint = Some(line[at..].trim().to_owned());
                break;
            }
        }
        Moto {
            child,
            endpoint: endpoint.expect("moto prints its address"),
        }
    }

    async fn create_bucket(&self, bucket: &str) {
        let answer = integration_tests::http_client()
            .build()
            .unwrap()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{answer:?}");
    }

    /// Keys under `prefix`, from a ListObjectsV2 answer.
    async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let xml = integration_tests::http_client()
            .build()
            .unwrap()
            .get(format!(
                "{}/{bucket}?list-type=2&prefix={prefix}",
                self.endpoint
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        xml.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// An object's text, read with the keys (objects are private).
    async fn object(&self, bucket: &str, key: &str) -> String {
        let store = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing-key-id")
            .with_secret_access_key("testing-secret")
            .build()
            .unwrap();
        let bytes = store
            .get(&ObjectPath::from(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn config(&self, bucket: &str) -> Value {
        json!({"storage_type": "S3", "access_key_id": "testing-key-id", "secret_access_key": "testing-secret",
            "s3_bucket_name": bucket, "s3_bucket_region": "us-east-1", "s3_endpoint": self.endpoint,
            "format": {"format_type": "JSONL"}, "bucket_path": "rejects/"})
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn rejected_records_land_in_s3_before_their_states() {
    let moto = Moto::start();
    moto.create_bucket("dlq").await;
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let lines = [
        record_line("c", &json!({"name": "Good"})),
        record_line("c", &json!({"name": "Bad", "status": "GONE"})),
        state_line("c", 1),
        record_line("c", &json!({"colour": "red"})),
        record_line("c", &json!({"name": "Also good"})),
        state_line("c", 2),
    ];
    let s = sync(
        &emulator,
        json!({"object_storage_config": moto.config("dlq")}),
        &[("c", "client", "append")],
        &lines,
    )
    .await;
    s.run.assert_ok();
    assert_eq!(s.run.states().len(), 2);
    assert_eq!(emulator.count("client"), 2);
    let keys = moto.keys("dlq", "rejects/").await;
    // One object per flush before states go out (both states may go out together).
    assert!(!keys.is_empty() && keys.len() <= 2, "{keys:?}");
    let mut stored: Vec<Value> = Vec::new();
    for key in &keys {
        // rejects/{sync id}/{stream}/{yyyy}_{mm}_{dd}_{epoch ms}_{part}.jsonl
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key}");
        assert_eq!(parts[2], "c", "{key}");
        assert!(parts[3].ends_with(".jsonl"), "{key}");
        let text = moto.object("dlq", key).await;
        assert!(!text.is_empty(), "{key}: empty object");
        for line in text.lines() {
            stored.push(serde_json::from_str(line).unwrap());
        }
    }
    stored.sort_by_key(|r| r["line"].as_u64());
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["line"], 2);
    assert_eq!(
        stored[0]["record"],
        json!({"name": "Bad", "status": "GONE"})
    );
    assert_eq!(stored[1]["reason"], "`colour` is not a field of a ClientSuccess client; field `name` is required to insert a client");
    assert_eq!(stored[1]["stream"], "c");
}

async fn check(config: Value) -> (String, String) {
    let dir = scratch_dir("check-rejects");
    let path = write_json(&dir, "c.json", &config);
    let run = run_connector(&["check", "--config", &path], b"").await;
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    (
        status["status"].as_str().unwrap().to_owned(),
        status["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn check_proves_the_rejects_store_or_says_what_to_fix() {
    let moto = Moto::start();
    moto.create_bucket("proved").await;
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let with = |storage: Value| {
        config_for(
            &emulator.base_url(),
            emulator.api_key(),
            json!({"object_storage_config": storage}),
        )
    };
    let (status, message) = check(with(moto.config("proved"))).await;
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(message.contains("s3://proved/rejects"), "{message}");
    assert!(
        moto.keys("proved", "").await.is_empty(),
        "the probe object is deleted"
    );

    let (status, message) = check(with(moto.config("no-such-bucket"))).await;
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("object_storage_config") && message.contains("no-such-bucket"),
        "{message}"
    );
    assert!(!message.contains("testing-secret"), "{message}");

    // A file where a folder should be: the Local store cannot be created.
    let blocker = scratch_dir("check-local").join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let local = json!({"storage_type": "Local", "path": blocker.join("rejected.jsonl")});
    let (status, message) = check(with(local)).await;
    assert_eq!(status, "FAILED");
    assert!(message.contains("object_storage_config.path"), "{message}");
}
