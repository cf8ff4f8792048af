//! moto (from PyPI, installed by scripts/test.sh into .venv) in server mode on loopback: a
//! real S3-compatible store for the rejected-records tests of every destination.

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// moto in server mode on 127.0.0.1, a port of its choosing.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
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

    pub async fn create_bucket(&self, bucket: &str) {
        let answer = crate::http_client()
            .build()
            .unwrap()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{answer:?}");
    }

    /// Keys under `prefix`, from a ListObjectsV2 answer.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let xml = crate::http_client()
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
    pub async fn object(&self, bucket: &str, key: &str) -> String {
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

    pub fn config(&self, bucket: &str) -> Value {
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
