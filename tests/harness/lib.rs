//! Test harness: talks to the moto server that `scripts/test` (or `scripts/dr-run`) started on a loopback port,
//! seeds fleets through the real SDK, and builds the real function handlers against it.
//!
//! Each test uses its own region (moto keeps a separate RDS and SNS backend per region) and its own bucket, so
//! tests run in parallel against one server without seeing each other's resources.

pub mod faults;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use aws_sdk_rds::config::{Credentials, Region};
use aws_sdk_rds::types::Tag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, Utc};
use serde_json::Value;

use lifeboat::aws::AwsClients;
use lifeboat::aws::rds::Rds;
use lifeboat::aws::secrets::Secrets;
use lifeboat::clock::FixedClock;
use lifeboat::copy::CopyLimits;
use lifeboat::ledger::{Ledger, LedgerRecord, RunRecord};
use lifeboat::notify::Notifier;
use lifeboat::ownership::Deployment;
use lifeboat::policy::Policy;
use lifeboat::restore::engine::CheckSettings;
use lifeboat::services::Services;
use lifeboat_copy::CopyFunction;
use lifeboat_restore::RestoreFunction;
use lifeboat_retention::RetentionFunction;
use lifeboat_snapshot::SnapshotFunction;
use lifeboat_verify::checks::TlsMode;
use lifeboat_verify::{EndpointOverride, VerifyFunction};

/// The deployment name every sandbox's functions run as, unless a test names another.
pub const DEPLOYMENT: &str = "lifeboat";

/// Environment variable holding the emulator's endpoint, set by `scripts/test`.
pub const ENDPOINT_VAR: &str = "LIFEBOAT_TEST_ENDPOINT";

/// Environment variable holding the endpoint of the emulator whose accounts have the manual snapshot quota raised
/// (1000 per region instead of AWS's default 100), set by `scripts/test`.
pub const RAISED_QUOTA_ENDPOINT_VAR: &str = "LIFEBOAT_TEST_ENDPOINT_RAISED_QUOTA";

/// The emulator's endpoint. Fails loudly when it is not set: integration tests never skip silently.
pub fn endpoint() -> String {
    endpoint_from(ENDPOINT_VAR)
}

/// The endpoint in `var`, or a panic that says how to get one.
fn endpoint_from(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with scripts/test, which installs and starts moto server")
    })
}

/// An RFC 3339 time of a test's simulated clock.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

/// SDK configuration for `region` pointing at the emulator, with dummy credentials.
pub async fn sdk_config(region: &str) -> SdkConfig {
    sdk_config_at(&endpoint(), region).await
}

/// SDK configuration for `region` pointing at the emulator at `endpoint`, with dummy credentials.
pub async fn sdk_config_at(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "lifeboat-tests",
        ))
        .load()
        .await
}

/// A name unique to this test run: `prefix` plus a short random suffix.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A sample event from `events/`, as the function would receive it.
pub fn event(path: &str) -> Value {
    let file = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

/// A Lambda context with `request_id`.
pub fn context(request_id: &str) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_string();
    context
}

/// Counts SDK operations by name, to show how API calls grow.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl CallCounter {
    /// Calls made so far, by operation name.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.0.lock().expect("counter lock").clone()
    }

    /// Forget the calls made so far.
    pub fn reset(&self) {
        self.0.lock().expect("counter lock").clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            *self
                .0
                .lock()
                .expect("counter lock")
                .entry(metadata.name().to_string())
                .or_default() += 1;
        }
        Ok(())
    }
}

/// One test's slice of the emulator: a region, a ledger bucket, an alert topic and clients for them.
pub struct Sandbox {
    /// The emulator it lives in.
    pub endpoint: String,
    /// The region.
    pub region: String,
    /// SDK configuration for the region.
    pub config: SdkConfig,
    /// RDS client.
    pub rds: aws_sdk_rds::Client,
    /// S3 client (path-style).
    pub s3: aws_sdk_s3::Client,
    /// KMS client.
    pub kms: aws_sdk_kms::Client,
    /// Ledger bucket.
    pub bucket: String,
    /// Alert topic ARN.
    pub topic_arn: String,
    /// SQS client reading the queue subscribed to the alert topic.
    sqs: aws_sdk_sqs::Client,
    /// URL of that queue.
    queue_url: String,
    /// Notifications received so far.
    received: Mutex<Vec<(String, String)>>,
}

impl Sandbox {
    /// A new sandbox in `region` with a uniquely named bucket and topic.
    pub async fn new(region: &str) -> Self {
        Self::named(region, &unique("ledger"), &unique("alerts")).await
    }

    /// A new sandbox in `region` of the emulator whose accounts have a raised manual snapshot quota.
    pub async fn with_raised_quota(region: &str) -> Self {
        Self::named_at(
            &endpoint_from(RAISED_QUOTA_ENDPOINT_VAR),
            region,
            &unique("ledger"),
            &unique("alerts"),
        )
        .await
    }

    /// A sandbox in `region` with the ledger bucket `bucket` and the alert topic `topic`, created here.
    pub async fn named(region: &str, bucket: &str, topic: &str) -> Self {
        Self::named_at(&endpoint(), region, bucket, topic).await
    }

    /// A sandbox in `region` of the emulator at `endpoint`, with the ledger bucket `bucket` and the alert topic
    /// `topic`, created here.
    pub async fn named_at(endpoint: &str, region: &str, bucket: &str, topic: &str) -> Self {
        let config = sdk_config_at(endpoint, region).await;
        let clients = AwsClients::from_sdk_config(config.clone());
        let s3 = clients.s3();
        let bucket = bucket.to_string();
        let mut create = s3.create_bucket().bucket(&bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        create.send().await.expect("create ledger bucket");
        let sns = clients.sns();
        let topic_arn = sns
            .create_topic()
            .name(topic)
            .send()
            .await
            .expect("create topic")
            .topic_arn()
            .expect("topic ARN")
            .to_string();
        // Operators subscribe to the topic; the tests subscribe an SQS queue and read what was delivered.
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("alerts-inbox"))
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue URL")
            .to_string();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue ARN");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe queue");
        Self {
            sqs,
            queue_url,
            received: Mutex::new(Vec::new()),
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            rds: clients.rds(),
            kms: aws_sdk_kms::Client::new(&config),
            s3,
            config,
            bucket,
            topic_arn,
        }
    }

    /// Create a KMS key with the alias `alias` in the sandbox's region (a DR key for another sandbox's copies).
    pub async fn kms_alias(&self, alias: &str) {
        let key = self.kms_key().await;
        self.kms
            .create_alias()
            .alias_name(alias)
            .target_key_id(key)
            .send()
            .await
            .expect("create alias");
    }

    /// Identifiers of every manual DB snapshot in the sandbox's region, whoever made it.
    pub async fn manual_snapshot_ids(&self) -> std::collections::BTreeSet<String> {
        let mut ids = std::collections::BTreeSet::new();
        let mut pages = self
            .rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send();
        while let Some(snapshot) = pages.next().await {
            let snapshot = snapshot.expect("describe snapshots");
            ids.insert(
                snapshot
                    .db_snapshot_identifier()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        ids
    }

    /// Create a KMS key; returns its ID.
    pub async fn kms_key(&self) -> String {
        let key = self
            .kms
            .create_key()
            .description("lifeboat test key")
            .send()
            .await
            .expect("create key");
        key.key_metadata()
            .expect("key metadata")
            .key_id()
            .to_string()
    }

    /// Create a PostgreSQL DB instance with `tags`, encrypted with `kms_key` when given.
    pub async fn instance(&self, id: &str, tags: &[(&str, &str)], kms_key: Option<&str>) {
        self.rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("lifeboat")
            .master_user_password("not-a-real-password")
            .storage_encrypted(kms_key.is_some())
            .set_kms_key_id(kms_key.map(str::to_string))
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create instance {id}: {e:?}"));
    }

    /// The address of the DB instance `id` in the sandbox's region.
    pub async fn endpoint_of(&self, id: &str) -> String {
        self.rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe instance {id}: {e:?}"))
            .db_instances()
            .first()
            .and_then(|db| db.endpoint())
            .and_then(|e| e.address())
            .unwrap_or_else(|| panic!("instance {id} has no endpoint"))
            .to_string()
    }

    /// Create a DB instance of `engine` with the master user `user` and `tags`.
    pub async fn instance_of(&self, id: &str, engine: &str, user: &str, tags: &[(&str, &str)]) {
        self.rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine(engine)
            .allocated_storage(20)
            .master_username(user)
            .master_user_password("not-a-real-password")
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create instance {id}: {e:?}"));
    }

    /// Identifiers of the DB instances and clusters in the region whose identifier starts with `prefix`.
    pub async fn databases_named(&self, prefix: &str) -> Vec<String> {
        let rds = Rds::new(self.rds.clone(), &self.region);
        let mut names: Vec<String> = rds
            .list_databases()
            .await
            .expect("list databases")
            .into_iter()
            .map(|db| db.identifier)
            .filter(|id| id.starts_with(prefix))
            .collect();
        names.sort();
        names
    }

    /// Create an Aurora PostgreSQL cluster with one member instance.
    pub async fn aurora_cluster(&self, id: &str, tags: &[(&str, &str)]) {
        self.rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("lifeboat")
            .master_user_password("not-a-real-password")
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create cluster {id}: {e:?}"));
        self.rds
            .create_db_instance()
            .db_instance_identifier(format!("{id}-1"))
            .db_cluster_identifier(id)
            .db_instance_class("db.r6g.large")
            .engine("aurora-postgresql")
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create cluster member {id}-1: {e:?}"));
    }

    /// Manual DB snapshots of `instance` with their tags, by identifier (RDS's automated ones left out).
    pub async fn instance_snapshots(
        &self,
        instance: &str,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        let out = self
            .rds
            .describe_db_snapshots()
            .db_instance_identifier(instance)
            .send()
            .await
            .expect("describe snapshots");
        out.db_snapshots()
            .iter()
            .filter(|s| s.snapshot_type() == Some("manual"))
            .map(|s| {
                (
                    s.db_snapshot_identifier().unwrap_or_default().to_string(),
                    tag_map(s.tag_list()),
                )
            })
            .collect()
    }

    /// How many manual DB snapshots of `instance` there are: cross-region copies (`-from-` in the name) or originals.
    pub async fn instance_snapshot_count(&self, instance: &str, copies: bool) -> usize {
        self.instance_snapshots(instance)
            .await
            .keys()
            .filter(|id| id.contains("-from-") == copies)
            .count()
    }

    /// Manual DB cluster snapshots of `cluster` with their tags, by identifier.
    pub async fn cluster_snapshots(
        &self,
        cluster: &str,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        let out = self
            .rds
            .describe_db_cluster_snapshots()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .expect("describe cluster snapshots");
        out.db_cluster_snapshots()
            .iter()
            .filter(|s| s.snapshot_type() == Some("manual"))
            .map(|s| {
                (
                    s.db_cluster_snapshot_identifier()
                        .unwrap_or_default()
                        .to_string(),
                    tag_map(s.tag_list()),
                )
            })
            .collect()
    }

    /// Every ledger record in the bucket, in key (time) order.
    pub async fn ledger_records(&self) -> Vec<LedgerRecord> {
        self.ledger_objects()
            .await
            .into_iter()
            .flat_map(|run| run.records)
            .collect()
    }

    /// Every ledger object (one per run and phase) in the bucket, in key (time) order.
    pub async fn ledger_objects(&self) -> Vec<RunRecord> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(lifeboat::ledger::PREFIX)
            .send()
            .await
            .expect("list ledger");
        let mut records = Vec::new();
        for object in listed.contents() {
            let body = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(object.key().expect("key"))
                .send()
                .await
                .expect("get record")
                .body
                .collect()
                .await
                .expect("read record")
                .into_bytes();
            records.push(serde_json::from_slice(&body).expect("ledger object JSON"));
        }
        records
    }

    /// Every notification published to the sandbox's topic so far, as (subject, message) pairs, in order.
    pub async fn notifications(&self) -> Vec<(String, String)> {
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive notifications");
            if out.messages().is_empty() {
                break;
            }
            for message in out.messages() {
                let envelope: Value =
                    serde_json::from_str(message.body().unwrap_or_default()).expect("SNS envelope");
                let subject = envelope["Subject"].as_str().unwrap_or_default().to_string();
                let body = envelope["Message"].as_str().unwrap_or_default().to_string();
                self.received
                    .lock()
                    .expect("received lock")
                    .push((subject, body));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .set_receipt_handle(message.receipt_handle().map(str::to_string))
                    .send()
                    .await
                    .expect("delete notification");
            }
        }
        self.received.lock().expect("received lock").clone()
    }

    /// The real snapshot function wired to this sandbox, running "as of" `now`, its RDS calls counted by
    /// `counter`.
    pub fn snapshot_function(
        &self,
        policy_yaml: &str,
        now: DateTime<Utc>,
        counter: &CallCounter,
    ) -> SnapshotFunction {
        let rds = aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(&self.config)
                .interceptor(counter.clone())
                .build(),
        );
        SnapshotFunction {
            services: self.services(policy_yaml, now),
            rds: adapter(rds, &self.region),
        }
    }
}

impl Sandbox {
    /// The RDS adapter of this sandbox's region, as the functions use it in tests (see [`adapter`]).
    pub fn primary_adapter(&self) -> Rds {
        adapter(self.rds.clone(), &self.region)
    }

    /// The real retention function wired to this sandbox and to the DR regions `dr_regions`, "as of" `now`.
    pub async fn retention_function(
        &self,
        policy_yaml: &str,
        now: DateTime<Utc>,
        dr_regions: &[&str],
    ) -> RetentionFunction {
        RetentionFunction {
            services: self.services(policy_yaml, now),
            primary: self.primary_adapter(),
            dr_regions: dr_adapters_at(&self.endpoint, dr_regions).await,
            continuations: None,
        }
    }

    /// The shared services of a function in this sandbox, running "as of" `now`, as deployment [`DEPLOYMENT`].
    pub fn services(&self, policy_yaml: &str, now: DateTime<Utc>) -> Services {
        self.services_of(DEPLOYMENT, policy_yaml, now)
    }

    /// The shared services of deployment `deployment` (home: this sandbox's region), running "as of" `now`.
    pub fn services_of(&self, deployment: &str, policy_yaml: &str, now: DateTime<Utc>) -> Services {
        let clients = AwsClients::from_sdk_config(self.config.clone());
        Services {
            policy: Policy::from_yaml(policy_yaml).expect("test policy is valid"),
            deployment: Deployment::new(deployment, &self.region).expect("valid deployment name"),
            ledger: Ledger::new(clients.s3(), &self.bucket, &self.region),
            notifier: Notifier::new(clients.sns(), &self.topic_arn, &self.region),
            clock: Arc::new(FixedClock(now)),
            concurrency: 8,
        }
    }

    /// The real copy function wired to this sandbox and the DR regions `dr_regions`, "as of" `now`, with
    /// `slots` copies in flight per region at most.
    pub async fn copy_function(
        &self,
        policy_yaml: &str,
        now: DateTime<Utc>,
        dr_regions: &[&str],
        slots: usize,
    ) -> CopyFunction {
        CopyFunction {
            services: self.services(policy_yaml, now),
            primary: self.primary_adapter(),
            dr_regions: dr_adapters_at(&self.endpoint, dr_regions).await,
            limits: CopyLimits::uniform(slots),
        }
    }

    /// Create the DB subnet group `name` that restore drills are placed in, over the subnets of moto's default
    /// VPC.
    pub async fn drill_subnet_group(&self, name: &str) {
        self.drill_subnet_group_in(&self.region, name).await;
    }

    /// Create the DB subnet group `name` in `region` (a DR region's drills are placed in that region's own), over
    /// the subnets of moto's default VPC there; returns their IDs.
    pub async fn drill_subnet_group_in(&self, region: &str, name: &str) -> Vec<String> {
        let subnets = default_subnets(&self.endpoint, region).await;
        let rds = aws_sdk_rds::Client::new(&sdk_config_at(&self.endpoint, region).await);
        rds.create_db_subnet_group()
            .db_subnet_group_name(name)
            .db_subnet_group_description("private subnets for Lifeboat restore drills")
            .set_subnet_ids(Some(subnets.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create subnet group {name} in {region}: {e:?}"));
        subnets
    }

    /// The real verify function wired to this sandbox, "as of" `now`, its checks connecting to the local
    /// PostgreSQL and MariaDB servers (`postgres_port` lets a test point PostgreSQL drills at a closed port).
    pub fn verify_function(
        &self,
        policy_yaml: &str,
        now: DateTime<Utc>,
        postgres_port: u16,
    ) -> VerifyFunction {
        VerifyFunction {
            services: self.services(policy_yaml, now),
            primary: self.primary_adapter(),
            dr_regions: Vec::new(),
            secrets: Secrets::new(
                aws_sdk_secretsmanager::Client::new(&self.config),
                &self.region,
            ),
            tls: TlsMode::Disable,
            check_timeout: std::time::Duration::from_secs(5),
            endpoint_override: Some(EndpointOverride {
                postgres: ("127.0.0.1".into(), postgres_port),
                mysql: ("127.0.0.1".into(), 3306),
            }),
        }
    }

    /// The real restore function wired to this sandbox and the DR regions `dr_regions`, "as of" `now`, its checks
    /// connecting to the local PostgreSQL (at `postgres_port`) and MariaDB servers.
    pub async fn restore_function(
        &self,
        policy_yaml: &str,
        now: DateTime<Utc>,
        dr_regions: &[&str],
        postgres_port: u16,
    ) -> RestoreFunction {
        RestoreFunction {
            services: self.services(policy_yaml, now),
            primary: self.primary_adapter(),
            dr_regions: dr_adapters_at(&self.endpoint, dr_regions).await,
            secrets: Secrets::new(
                aws_sdk_secretsmanager::Client::new(&self.config),
                &self.region,
            ),
            checks: CheckSettings {
                tls: TlsMode::Disable,
                timeout: std::time::Duration::from_secs(5),
                endpoint_override: Some(EndpointOverride {
                    postgres: ("127.0.0.1".into(), postgres_port),
                    mysql: ("127.0.0.1".into(), 3306),
                }),
            },
        }
    }

    /// The value of secret `name` in the sandbox's region, if it exists.
    pub async fn secret(&self, name: &str) -> Option<String> {
        Secrets::new(
            aws_sdk_secretsmanager::Client::new(&self.config),
            &self.region,
        )
        .get(name)
        .await
        .expect("read secret")
    }

    /// Create secret `name` with `value` (as a crashed run would have left it).
    pub async fn create_secret(&self, name: &str, value: &str) {
        aws_sdk_secretsmanager::Client::new(&self.config)
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create secret");
    }

    /// Build a history the way production does: run the real snapshot function once per scheduled time.
    pub async fn snapshot_history(
        &self,
        policy_yaml: &str,
        times: impl IntoIterator<Item = DateTime<Utc>>,
    ) {
        for time in times {
            let function = self.snapshot_function(policy_yaml, time, &CallCounter::default());
            let mut event = event("snapshot/scheduled-daily.json");
            event["time"] = Value::String(time.to_rfc3339());
            let report = function
                .handle(event, &context(&format!("history-{time}")))
                .await
                .expect("history run");
            assert_eq!(
                report.counts.failed + report.counts.skipped,
                0,
                "history run failed: {report:?}"
            );
        }
    }
}

/// The subnet IDs of moto's default VPC in `region` of the emulator at `endpoint`, read with one EC2
/// DescribeSubnets query sent over a plain TCP connection (the tests need nothing else of EC2, whose SDK crate would
/// double their build time).
async fn default_subnets(endpoint: &str, region: &str) -> Vec<String> {
    let address = endpoint.trim_start_matches("http://").to_string();
    let region = region.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let body = "Action=DescribeSubnets&Version=2016-11-15";
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/ec2/aws4_request, \
             SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(&address).expect("connect to moto");
        stream.write_all(request.as_bytes()).expect("send DescribeSubnets");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read DescribeSubnets");
        response
            .split("<subnetId>")
            .skip(1)
            .filter_map(|rest| rest.split("</subnetId>").next().map(str::to_string))
            .collect::<Vec<_>>()
    })
    .await
    .expect("describe subnets")
}

/// RDS adapters for the DR regions `regions` in the emulator at `endpoint`.
async fn dr_adapters_at(endpoint: &str, regions: &[&str]) -> Vec<Rds> {
    let mut adapters = Vec::new();
    for region in regions {
        adapters.push(adapter(
            aws_sdk_rds::Client::new(&sdk_config_at(endpoint, region).await),
            region,
        ));
    }
    adapters
}

/// The RDS adapter the functions use in tests: snapshots dated by their `lifeboat:created-at` tag, since moto stamps
/// every snapshot with the real time and the tests simulate years (debug builds only; production dates by RDS).
pub fn adapter(client: aws_sdk_rds::Client, region: &str) -> Rds {
    Rds::new(client, region).dated_by_tags_for_tests()
}

/// Create a KMS key in `region` with the alias `alias` (for example `alias/lifeboat-dr`); returns the key's ARN.
pub async fn kms_key_in(region: &str, alias: &str) -> String {
    let kms = aws_sdk_kms::Client::new(&sdk_config(region).await);
    let key = kms
        .create_key()
        .description("lifeboat DR key")
        .send()
        .await
        .expect("create key");
    let metadata = key.key_metadata().expect("key metadata");
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(metadata.key_id())
        .send()
        .await
        .expect("create alias");
    metadata.arn().expect("key ARN").to_string()
}

/// Manual DB snapshots in `region` with their KMS key (if encrypted) and tags, by identifier.
pub async fn snapshot_keys_in(
    region: &str,
) -> BTreeMap<String, (Option<String>, BTreeMap<String, String>)> {
    let rds = aws_sdk_rds::Client::new(&sdk_config(region).await);
    let out = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("describe snapshots");
    out.db_snapshots()
        .iter()
        .map(|s| {
            let id = s.db_snapshot_identifier().unwrap_or_default().to_string();
            (
                id,
                (s.kms_key_id().map(str::to_string), tag_map(s.tag_list())),
            )
        })
        .collect()
}

/// Copy the DB snapshot `source_arn` into `region` under `identifier`, with the source's tags (as a DR copy has).
pub async fn copy_snapshot_to(region: &str, source_arn: &str, identifier: &str) {
    aws_sdk_rds::Client::new(&sdk_config(region).await)
        .copy_db_snapshot()
        .source_db_snapshot_identifier(source_arn)
        .target_db_snapshot_identifier(identifier)
        .copy_tags(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy {source_arn} to {region}: {e:?}"));
}

/// Set the status of the manual snapshot `identifier` of `kind` in `region` on the emulator at `endpoint` (for
/// example `failed`, as RDS leaves a copy that failed): the test-only request `scripts/emulator.py` adds to moto
/// server.
pub async fn set_snapshot_status(
    endpoint: &str,
    region: &str,
    kind: lifeboat::model::DatabaseKind,
    identifier: &str,
    status: &str,
) {
    let authority = endpoint.trim_start_matches("http://").to_string();
    let kind = match kind {
        lifeboat::model::DatabaseKind::Instance => "instance",
        lifeboat::model::DatabaseKind::Cluster => "cluster",
    };
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .unwrap_or_else(|e| panic!("connect to the emulator at {authority}: {e}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP handshake with the emulator");
    tokio::spawn(connection);
    let request = hyper::Request::post(format!(
        "/_lifeboat/snapshot-status?region={region}&kind={kind}&identifier={identifier}&status={status}"
    ))
    .header(hyper::header::HOST, authority)
    .body(http_body_util::Empty::<bytes::Bytes>::new())
    .expect("request");
    let answer = sender
        .send_request(request)
        .await
        .expect("the emulator answers");
    assert_eq!(
        answer.status(),
        hyper::StatusCode::NO_CONTENT,
        "set {identifier} in {region} to {status} on the emulator (is it started by scripts/emulator.sh?)"
    );
}

/// Publish `free_bytes` as the `FreeStorageSpace` of DB instance `instance` in `region` of the emulator, sampled
/// `at`, as RDS publishes it every minute; through the real aws-sdk-cloudwatch client (RPC v2 CBOR).
pub async fn publish_free_storage(
    region: &str,
    instance: &str,
    free_bytes: f64,
    at: chrono::DateTime<chrono::Utc>,
) {
    aws_sdk_cloudwatch::Client::new(&sdk_config(region).await)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("FreeStorageSpace")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("DBInstanceIdentifier")
                        .value(instance)
                        .build(),
                )
                .timestamp(aws_smithy_types::DateTime::from_secs(at.timestamp()))
                .value(free_bytes)
                .build(),
        )
        .send()
        .await
        .expect("put metric data");
}

/// Put the CloudWatch alarm `name` in `region` of the emulator into `state` (`OK`, `ALARM` or `INSUFFICIENT_DATA`)
/// with `reason`, as CloudWatch does when the alarm's metric crosses its threshold. An alarm that does not exist yet
/// is created first, on an RDS metric (a primary that accepts no connections), in moto's default account. Goes
/// through the real aws-sdk-cloudwatch client, which the emulator answers in RPC v2 CBOR (`scripts/emulator.py`).
pub async fn set_alarm(region: &str, name: &str, state: &str, reason: &str) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk_config(region).await);
    let described = cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe alarm {name} in {region}: {e:?}"));
    if described.metric_alarms().is_empty() {
        cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description("the primary database accepts no connections")
            .namespace("AWS/RDS")
            .metric_name("DatabaseConnections")
            .statistic(Statistic::Maximum)
            .period(60)
            .evaluation_periods(3)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .treat_missing_data("breaching")
            .send()
            .await
            .unwrap_or_else(|e| panic!("create alarm {name} in {region}: {e:?}"));
    }
    cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(StateValue::from(state))
        .state_reason(reason)
        .send()
        .await
        .unwrap_or_else(|e| panic!("set alarm {name} in {region} to {state}: {e:?}"));
}

/// Manual DB snapshots in `region`, by identifier, with their tags.
pub async fn snapshots_in(region: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let rds = aws_sdk_rds::Client::new(&sdk_config(region).await);
    let out = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("describe snapshots");
    out.db_snapshots()
        .iter()
        .map(|s| {
            (
                s.db_snapshot_identifier().unwrap_or_default().to_string(),
                tag_map(s.tag_list()),
            )
        })
        .collect()
}

fn rds_tags(tags: &[(&str, &str)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A new database on the local PostgreSQL server (127.0.0.1:5432, trust authentication) that restore drills'
/// checks connect to: a `bookings` table with `rows` rows, the newest created at `newest`, one an hour before it,
/// readable by the `lifeboat` role (the master user of the tests' instances). Returns the database's name.
pub async fn seed_postgres(rows: i64, newest: DateTime<Utc>) -> String {
    let name = unique("lifeboat_drill").replace('-', "_");
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("the local PostgreSQL server (127.0.0.1:5432) must be running");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    client
        .batch_execute("DO $$ BEGIN CREATE ROLE lifeboat LOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
        .await
        .expect("drill role");
    let (db, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={name}"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect to the drill database");
    tokio::spawn(connection);
    db.batch_execute(
        "CREATE TABLE bookings (id serial PRIMARY KEY, created_at timestamptz NOT NULL, paid boolean NOT NULL DEFAULT true);
         GRANT SELECT ON bookings TO lifeboat;",
    )
    .await
    .expect("create table");
    for n in 0..rows {
        let created = (newest - chrono::Duration::hours(n)).to_rfc3339();
        db.execute(
            "INSERT INTO bookings (created_at) VALUES ($1::text::timestamptz)",
            &[&created],
        )
        .await
        .expect("insert booking");
    }
    name
}

/// The Route 53 adapter over the emulator (Route 53 is global: one zone store for every region).
pub async fn route53() -> lifeboat::aws::route53::Route53 {
    lifeboat::aws::route53::Route53::new(
        AwsClients::from_sdk_config(sdk_config("us-east-1").await).route53(),
    )
}

/// Create the public hosted zone `name` in the emulator; returns its ID (without `/hostedzone/`).
pub async fn hosted_zone(name: &str) -> String {
    let client = AwsClients::from_sdk_config(sdk_config("us-east-1").await).route53();
    let zone = client
        .create_hosted_zone()
        .name(name)
        .caller_reference(unique("zone"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create hosted zone {name}: {e:?}"));
    zone.hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .expect("hosted zone ID")
}

/// Create a Route 53 health check (HTTPS on a documentation address); returns its ID.
pub async fn health_check() -> String {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    let client = AwsClients::from_sdk_config(sdk_config("us-east-1").await).route53();
    client
        .create_health_check()
        .caller_reference(unique("check"))
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Https)
                .ip_address("192.0.2.10")
                .port(443)
                .resource_path("/health")
                .build()
                .expect("health check config"),
        )
        .send()
        .await
        .expect("create health check")
        .health_check()
        .map(|h| h.id().to_string())
        .expect("health check ID")
}

/// The record sets named `name` in hosted zone `zone`.
pub async fn route53_records(zone: &str, name: &str) -> Vec<lifeboat::aws::route53::RecordSet> {
    route53()
        .await
        .records(zone, name)
        .await
        .unwrap_or_else(|e| panic!("records {name} in {zone}: {e}"))
}

/// Point the CNAME `name` of hosted zone `zone` at `value` (TTL 60).
pub async fn upsert_cname(zone: &str, name: &str, value: &str) {
    let record = lifeboat::aws::route53::RecordSet {
        name: name.into(),
        record_type: "CNAME".into(),
        ttl: Some(60),
        values: vec![value.into()],
        set_identifier: None,
        failover: None,
        health_check_id: None,
        alias: false,
    };
    route53()
        .await
        .upsert(zone, &[record], "test fixture")
        .await
        .unwrap_or_else(|e| panic!("upsert {name}: {e}"));
}

/// Run `test` on a thread of its own with an 8 MiB stack (Lambda's main thread has as much), on a current-thread
/// runtime. For scenarios that drive a whole handler through many steps in one poll: in debug builds the AWS SDK's
/// response deserializers and the handler's nested futures take stack frames that outgrow a test thread's 2 MiB.
pub fn on_large_stack<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let runner = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("test runtime")
                .block_on(test())
        })
        .expect("test thread");
    if let Err(panic) = runner.join() {
        std::panic::resume_unwind(panic);
    }
}
