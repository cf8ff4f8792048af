//! The binary's `spec`, `discover` and `check`, run for real against the emulator and against
//! loopback servers that misbehave on purpose.

use integration_tests::harness::{config_for, run_connector, scratch_dir, write_json, Run};
use integration_tests::{Emulator, Options};
use serde_json::{json, Value};
use std::path::Path;

fn spec_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("spec").leak()
}

async fn check(config: &Value) -> Run {
    let dir = scratch_dir("check");
    let path = write_json(&dir, "config.json", config);
    run_connector(&["check", "--config", &path], b"").await
}

fn connection_status(run: &Run) -> (String, String) {
    assert!(run.status.success(), "check must exit 0: {run:?}");
    assert_eq!(run.messages.len(), 1, "exactly one message: {}", run.stdout);
    let status = &run.messages[0]["connectionStatus"];
    (
        status["status"].as_str().unwrap().to_owned(),
        status["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Regenerate with `UPDATE_SPEC=1 cargo test --test cli spec_files`.
#[tokio::test]
async fn spec_files_match_the_code() {
    let spec = run_connector(&["spec"], b"").await;
    assert!(spec.status.success());
    assert_eq!(spec.messages.len(), 1);
    let discover_dir = scratch_dir("discover");
    let config = write_json(
        &discover_dir,
        "c.json",
        &json!({"credentials": {"auth_type": "api_key", "api_key": "k"}}),
    );
    let discover = run_connector(&["discover", "--config", &config], b"").await;
    assert!(discover.status.success(), "{discover:?}");
    let mut files: Vec<(String, Value)> = vec![
        ("spec.json".into(), spec.messages[0]["spec"].clone()),
        (
            "catalog.json".into(),
            discover.of_type("DESTINATION_CATALOG")[0]["destination_catalog"].clone(),
        ),
    ];
    let operations = discover.of_type("DESTINATION_CATALOG")[0]["destination_catalog"]
        ["operations"]
        .as_array()
        .unwrap()
        .clone();
    for op in &operations {
        let mode = match op["sync_mode"].as_str().unwrap() {
            "append" => "insert",
            "update" => "update",
            _ => "upsert",
        };
        files.push((
            format!(
                "schemas/{}.{mode}.json",
                op["object_name"].as_str().unwrap()
            ),
            op["json_schema"].clone(),
        ));
    }
    for object in ["client", "contact", "contract"] {
        let base = destination_clientsuccess::catalog::ObjectKind::parse(object)
            .unwrap()
            .base_schema_of();
        files.push((format!("schemas/{object}.json"), base));
    }
    let update = std::env::var_os("UPDATE_SPEC").is_some();
    for (name, value) in files {
        let path = spec_dir().join(&name);
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else {
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == text,
                "spec/{name} drifted from the code: run `UPDATE_SPEC=1 cargo test --test cli spec_files`"
            );
        }
    }
}

#[tokio::test]
async fn discover_prints_nine_operations_and_needs_no_network() {
    let dir = scratch_dir("discover");
    // A base_url where nothing listens: discover still prints the static catalog.
    let config = write_json(
        &dir,
        "c.json",
        &config_for("http://127.0.0.1:9/v2", "k", json!({})),
    );
    let run = run_connector(&["discover", "--config", &config], b"").await;
    assert!(run.status.success());
    let operations = run.of_type("DESTINATION_CATALOG")[0]["destination_catalog"]["operations"]
        .as_array()
        .unwrap();
    assert_eq!(operations.len(), 9);
    let find = |object: &str, mode: &str| {
        operations
            .iter()
            .find(|o| o["object_name"] == object && o["sync_mode"] == mode)
            .unwrap()
    };
    assert_eq!(find("client", "update")["matching_keys"], json!([["uuid"]]));
    assert_eq!(
        find("client", "append_dedup")["matching_keys"],
        json!([["externalId"], ["name"]])
    );
    assert_eq!(
        find("contact", "append_dedup")["matching_keys"],
        json!([["email"]])
    );
    assert_eq!(
        find("contract", "append_dedup")["matching_keys"],
        json!([["externalId"]])
    );
    // The parent client: by uuid or by externalId, exactly one to create.
    assert_eq!(
        find("contact", "append")["json_schema"]["allOf"],
        json!([{"oneOf": [{"required": ["clientId"]}, {"required": ["clientExternalId"]}]}])
    );
    assert_eq!(
        find("contract", "update")["json_schema"]["allOf"],
        json!([{"not": {"required": ["clientId", "clientExternalId"]}}])
    );
}

#[tokio::test]
async fn config_errors_are_one_config_trace_naming_file_and_field() {
    let dir = scratch_dir("config-errors");
    let missing = dir.join("missing.json").to_string_lossy().into_owned();
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let broken = broken.to_string_lossy().into_owned();
    let bad_field = write_json(
        &dir,
        "bad.json",
        &json!({"credentials": {"auth_type": "api_key", "api_key": "sekrit-999"}, "max_retries": "many"}),
    );
    for (path, expected) in [
        (&missing, "missing.json"),
        (&broken, "not valid JSON"),
        (&bad_field, "`max_retries`"),
    ] {
        let run = run_connector(&["discover", "--config", path], b"").await;
        assert!(!run.status.success());
        assert_eq!(run.messages.len(), 1, "{}", run.stdout);
        let error = run.error_trace().unwrap();
        assert_eq!(error["failure_type"], "config_error");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
        assert!(
            message.contains(path.rsplit('/').next().unwrap()),
            "names the file: {message}"
        );
        run.assert_no_secret("sekrit-999");
    }
}

#[tokio::test]
async fn help_and_version() {
    let bin = integration_tests::harness::connector_bin();
    let version = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8(version.stdout)
        .unwrap()
        .contains(env!("CARGO_PKG_VERSION")));
    let help = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    for command in ["spec", "check", "discover", "write"] {
        assert!(text.contains(command), "{text}");
    }
}

#[tokio::test]
async fn check_succeeds_with_an_api_key() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let run = check(&config_for(
        &emulator.base_url(),
        emulator.api_key(),
        json!({}),
    ))
    .await;
    let (status, message) = connection_status(&run);
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(
        message.contains("client: insert by v2 bulk, update by v2 PUT, upsert by v2 upsert"),
        "{message}"
    );
    run.assert_no_secret(emulator.api_key());
    assert_eq!(emulator.stats()["GET /v2/client/search"]["200"], 1);
    for object in ["client", "contact", "contract"] {
        assert_eq!(emulator.count(object), 0, "check created a {object}");
    }
}

#[tokio::test]
async fn check_succeeds_with_username_and_password() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let options = emulator.options();
    let config = json!({"credentials": {"auth_type": "username_password", "username": options.username,
        "password": options.password, "auth_url": emulator.auth_url()}, "base_url": emulator.base_url()});
    let run = check(&config).await;
    assert_eq!(connection_status(&run).0, "SUCCEEDED", "{}", run.stdout);
    run.assert_no_secret(&options.password);
}

#[tokio::test]
async fn check_reports_a_rejected_key_and_where_to_get_a_new_one() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let run = check(&config_for(
        &emulator.base_url(),
        "revoked-key-31337",
        json!({}),
    ))
    .await;
    let (status, message) = connection_status(&run);
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("401") && message.contains("Global Settings > API Credentials"),
        "{message}"
    );
    run.assert_no_secret("revoked-key-31337");
}

#[tokio::test]
async fn check_reports_a_rejected_password() {
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let config = json!({"credentials": {"auth_type": "username_password", "username": "api-user",
        "password": "wrong-pass-4242", "auth_url": emulator.auth_url()}, "base_url": emulator.base_url()});
    let (status, message) = connection_status(&check(&config).await);
    assert_eq!(status, "FAILED");
    assert!(message.contains("username and password"), "{message}");
}

#[tokio::test]
async fn check_reports_an_unknown_host() {
    // A real NXDOMAIN needs a DNS query, and no traffic may leave this machine in tests. A
    // label over 63 characters fails name resolution before any query is sent (verified with
    // strace: no connect or sendto), which exercises the same "unknown host" path.
    let host = format!("{}.example", "x".repeat(70));
    let (status, message) =
        connection_status(&check(&config_for(&format!("https://{host}/v2"), "k", json!({}))).await);
    assert_eq!(status, "FAILED");
    assert!(message.contains("could not be resolved"), "{message}");
}

#[tokio::test]
async fn check_reports_a_refused_connection() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (status, message) = connection_status(
        &check(&config_for(
            &format!("http://127.0.0.1:{port}/v2"),
            "k",
            json!({}),
        ))
        .await,
    );
    assert_eq!(status, "FAILED");
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test]
async fn check_reports_a_tls_failure() {
    // https to a server that speaks plain HTTP.
    let emulator = Emulator::start(Options::default()).await.unwrap();
    let url = format!("https://{}/v2", emulator.addr());
    let (status, message) =
        connection_status(&check(&config_for(&url, emulator.api_key(), json!({}))).await);
    assert_eq!(status, "FAILED");
    assert!(message.contains("TLS"), "{message}");
}

#[tokio::test]
async fn check_reports_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accept, never answer
        }
    });
    let config = config_for(
        &format!("http://{addr}/v2"),
        "k",
        json!({"request_timeout_secs": 1}),
    );
    let (status, message) = connection_status(&check(&config).await);
    silent.abort();
    assert_eq!(status, "FAILED");
    assert!(message.contains("did not answer within 1 s"), "{message}");
}

#[tokio::test]
async fn check_reports_a_server_error() {
    let emulator = Emulator::start(Options {
        error_rate: 1.0,
        ..Options::default()
    })
    .await
    .unwrap();
    let (status, message) = connection_status(
        &check(&config_for(
            &emulator.base_url(),
            emulator.api_key(),
            json!({}),
        ))
        .await,
    );
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("ClientSuccess answered 50") && message.contains("try again later"),
        "{message}"
    );
}

#[tokio::test]
async fn check_reports_a_config_field_that_breaks_the_spec() {
    let config = json!({"credentials": {"auth_type": "api_key", "api_key": "k"}, "base_url": "http://api.clientsuccess.com/v2"});
    let (status, message) = connection_status(&check(&config).await);
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("base_url") && message.contains("https"),
        "{message}"
    );
    let config = json!({"credentials": {"auth_type": "api_key"}});
    let (status, message) = connection_status(&check(&config).await);
    assert_eq!(status, "FAILED");
    assert!(message.contains("api_key"), "{message}");
}

/// Every field the connector defaults has that default in its SPEC, so the Airbyte form shows
/// what an empty field becomes.
#[test]
fn the_spec_names_every_default() {
    integration_tests::harness::assert_spec_defaults::<destination_clientsuccess::cli::ClientSuccess>(
        &serde_json::json!({"credentials": {"auth_type": "api_key", "api_key": "k"}}),
    );
}
