//! The RDS calls of failover and failback (feature `failover`): cross-region read replicas, their promotion,
//! Aurora global databases, and stopping an old primary so it takes no writes.

use serde::{Deserialize, Serialize};

use super::{AwsError, Rds, tag_list};
use crate::model::Endpoint;

/// A cross-region read replica to create in this region.
pub struct ReplicaSpec<'a> {
    /// Identifier of the new instance.
    pub id: &'a str,
    /// The tag key that marks it (with `id` as value): what proves a clash of names is this very replica.
    pub marker: &'a str,
    /// ARN of the instance it replicates (in another region: RDS takes the source's region from it).
    pub source_arn: &'a str,
    /// Instance class.
    pub instance_class: &'a str,
    /// DB subnet group in this region.
    pub subnet_group: &'a str,
    /// VPC security groups in this region (never empty).
    pub security_groups: &'a [String],
    /// KMS key in this region for an encrypted source (`None`: RDS's default key).
    pub kms_key: Option<&'a str>,
    /// Tags of the new instance.
    pub tags: &'a [(String, String)],
}

/// A read replica in this region of an instance elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// Its identifier.
    pub id: String,
    /// Its ARN.
    pub arn: String,
    /// Its status.
    pub status: String,
    /// Its source, as RDS reports it (an ARN for a cross-region replica).
    pub source: String,
    /// Its engine version.
    pub engine_version: String,
    /// Where it accepts connections.
    pub endpoint: Option<Endpoint>,
}

/// An Aurora global database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalDatabase {
    /// Its identifier.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Its engine version.
    pub engine_version: String,
    /// Its clusters.
    pub members: Vec<GlobalMember>,
}

/// One cluster of an Aurora global database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalMember {
    /// The cluster's ARN.
    pub cluster_arn: String,
    /// Its region (from the ARN).
    pub region: String,
    /// Whether it is the writer.
    pub writer: bool,
}

impl Rds {
    /// Create the read replica `spec` of an instance in another region (`CreateDBInstanceReadReplica` with
    /// `SourceRegion`), private. A replica of that name that carries `spec.marker` = `spec.id` is this very request
    /// (retried after a lost answer) and counts as done; any other clash of names is an error.
    pub async fn create_replica(&self, spec: &ReplicaSpec<'_>) -> Result<(), AwsError> {
        let result = self
            .client
            .create_db_instance_read_replica()
            .db_instance_identifier(spec.id)
            .source_db_instance_identifier(spec.source_arn)
            .db_instance_class(spec.instance_class)
            .db_subnet_group_name(spec.subnet_group)
            .set_vpc_security_group_ids(Some(spec.security_groups.to_vec()))
            .set_kms_key_id(spec.kms_key.map(str::to_string))
            .publicly_accessible(false)
            .set_tags(Some(tag_list(spec.tags)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = AwsError::from_sdk("rds:CreateDBInstanceReadReplica", &self.region, &e);
                if self
                    .is_restored(crate::model::DatabaseKind::Instance, spec.id, spec.marker)
                    .await
                {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Promote the read replica `id` to a standalone instance (`PromoteReadReplica`). One that is no longer a
    /// replica (promoted by an earlier call whose answer was lost) counts as done.
    pub async fn promote_replica(&self, id: &str) -> Result<(), AwsError> {
        match self
            .client
            .promote_read_replica()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = AwsError::from_sdk("rds:PromoteReadReplica", &self.region, &e);
                let promoted = self
                    .client
                    .describe_db_instances()
                    .db_instance_identifier(id)
                    .send()
                    .await
                    .is_ok_and(|out| {
                        out.db_instances().first().is_some_and(|db| {
                            db.read_replica_source_db_instance_identifier().is_none()
                        })
                    });
                if promoted { Ok(()) } else { Err(error) }
            }
        }
    }

    /// Stop the DB instance `id` so it takes no writes (`StopDBInstance`; RDS starts it again after 7 days, which
    /// the failover message says). Returns `false` when it is stopped or stopping already.
    pub async fn stop_instance(&self, id: &str) -> Result<bool, AwsError> {
        match self
            .client
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let error = AwsError::from_sdk("rds:StopDBInstance", &self.region, &e);
                let status = self
                    .client
                    .describe_db_instances()
                    .db_instance_identifier(id)
                    .send()
                    .await
                    .ok()
                    .and_then(|out| {
                        out.db_instances()
                            .first()
                            .and_then(|db| db.db_instance_status().map(str::to_string))
                    });
                match status.as_deref() {
                    Some("stopped" | "stopping") => Ok(false),
                    _ => Err(error),
                }
            }
        }
    }

    /// The read replicas in this region of the instance `source_id` of `source_region`.
    pub async fn replicas_of(
        &self,
        source_id: &str,
        source_region: &str,
    ) -> Result<Vec<Replica>, AwsError> {
        let is_source = |reported: &str| {
            reported == source_id
                || (reported.ends_with(&format!(":db:{source_id}"))
                    && reported.split(':').nth(3) == Some(source_region))
        };
        let mut found = Vec::new();
        let mut pages = self
            .client
            .describe_db_instances()
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let db =
                item.map_err(|e| AwsError::from_sdk("rds:DescribeDBInstances", &self.region, &e))?;
            let Some(source) = db.read_replica_source_db_instance_identifier() else {
                continue;
            };
            if !is_source(source) {
                continue;
            }
            found.push(Replica {
                id: db.db_instance_identifier().unwrap_or_default().to_string(),
                arn: db.db_instance_arn().unwrap_or_default().to_string(),
                status: db.db_instance_status().unwrap_or_default().to_string(),
                source: source.to_string(),
                engine_version: db.engine_version().unwrap_or_default().to_string(),
                endpoint: db.endpoint().and_then(|e| {
                    Some(Endpoint {
                        host: e.address()?.to_string(),
                        port: u16::try_from(e.port()?).ok()?,
                    })
                }),
            });
        }
        Ok(found)
    }

    /// The Aurora global database the cluster `cluster_arn` belongs to (`DescribeGlobalClusters`), if any.
    pub async fn global_database_of(
        &self,
        cluster_arn: &str,
    ) -> Result<Option<GlobalDatabase>, AwsError> {
        let mut pages = self
            .client
            .describe_global_clusters()
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let global = item
                .map_err(|e| AwsError::from_sdk("rds:DescribeGlobalClusters", &self.region, &e))?;
            let members: Vec<GlobalMember> = global
                .global_cluster_members()
                .iter()
                .filter_map(|m| {
                    let arn = m.db_cluster_arn()?.to_string();
                    Some(GlobalMember {
                        region: arn.split(':').nth(3).unwrap_or_default().to_string(),
                        writer: m.is_writer().unwrap_or(false),
                        cluster_arn: arn,
                    })
                })
                .collect();
            if members.iter().any(|m| m.cluster_arn == cluster_arn) {
                return Ok(Some(GlobalDatabase {
                    id: global
                        .global_cluster_identifier()
                        .unwrap_or_default()
                        .to_string(),
                    status: global.status().unwrap_or_default().to_string(),
                    engine_version: global.engine_version().unwrap_or_default().to_string(),
                    members,
                }));
            }
        }
        Ok(None)
    }

    /// Planned switchover of the global database `global_id` to its cluster `target_arn` (no data loss; both
    /// regions healthy). A switchover RDS is already carrying out to that cluster counts as done.
    pub async fn switchover_global(
        &self,
        global_id: &str,
        target_arn: &str,
    ) -> Result<(), AwsError> {
        match self
            .client
            .switchover_global_cluster()
            .global_cluster_identifier(global_id)
            .target_db_cluster_identifier(target_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = AwsError::from_sdk("rds:SwitchoverGlobalCluster", &self.region, &e);
                self.already_moving(global_id, target_arn, error).await
            }
        }
    }

    /// Failover of the global database `global_id` to its cluster `target_arn`; `allow_data_loss` lets Aurora
    /// promote it although writes were not replicated (the primary region is down).
    pub async fn failover_global(
        &self,
        global_id: &str,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> Result<(), AwsError> {
        match self
            .client
            .failover_global_cluster()
            .global_cluster_identifier(global_id)
            .target_db_cluster_identifier(target_arn)
            .allow_data_loss(allow_data_loss)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = AwsError::from_sdk("rds:FailoverGlobalCluster", &self.region, &e);
                self.already_moving(global_id, target_arn, error).await
            }
        }
    }

    /// After a refused switchover or failover: done if `target_arn` is the writer already (an earlier call whose
    /// answer was lost), else the error.
    async fn already_moving(
        &self,
        global_id: &str,
        target_arn: &str,
        error: AwsError,
    ) -> Result<(), AwsError> {
        match self.global_database_of(target_arn).await {
            Ok(Some(global))
                if global.id == global_id
                    && global
                        .members
                        .iter()
                        .any(|m| m.writer && m.cluster_arn == target_arn) =>
            {
                Ok(())
            }
            _ => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
    use aws_sdk_rds::operation::promote_read_replica::{
        PromoteReadReplicaError, PromoteReadReplicaOutput,
    };
    use aws_sdk_rds::operation::stop_db_instance::StopDBInstanceError;
    use aws_sdk_rds::operation::switchover_global_cluster::{
        SwitchoverGlobalClusterError, SwitchoverGlobalClusterOutput,
    };
    use aws_sdk_rds::types::error::{InvalidDbInstanceStateFault, InvalidGlobalClusterStateFault};
    use aws_sdk_rds::types::{DbInstance, GlobalCluster, GlobalClusterMember};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const EAST: &str = "arn:aws:rds:us-east-1:123456789012:cluster:app";
    const WEST: &str = "arn:aws:rds:us-west-2:123456789012:cluster:app-west";

    fn global(writer: &str) -> GlobalCluster {
        GlobalCluster::builder()
            .global_cluster_identifier("app-global")
            .status("available")
            .engine_version("16.4")
            .global_cluster_members(
                GlobalClusterMember::builder()
                    .db_cluster_arn(EAST)
                    .is_writer(writer == EAST)
                    .build(),
            )
            .global_cluster_members(
                GlobalClusterMember::builder()
                    .db_cluster_arn(WEST)
                    .is_writer(writer == WEST)
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn the_global_database_of_a_cluster_names_its_members_regions_and_writer() {
        let describe = mock!(Client::describe_global_clusters)
            .sequence()
            .output(|| {
                DescribeGlobalClustersOutput::builder()
                    .global_clusters(global(EAST))
                    .build()
            })
            .repeatedly()
            .build();
        let rds = Rds::new(mock_client!(aws_sdk_rds, [&describe]), "us-west-2");
        let found = rds.global_database_of(WEST).await.unwrap().unwrap();
        assert_eq!(found.id, "app-global");
        assert_eq!(
            found.members,
            [
                GlobalMember {
                    cluster_arn: EAST.into(),
                    region: "us-east-1".into(),
                    writer: true
                },
                GlobalMember {
                    cluster_arn: WEST.into(),
                    region: "us-west-2".into(),
                    writer: false
                }
            ]
        );
        assert_eq!(rds.global_database_of("arn:other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_refused_switchover_is_done_when_the_target_is_the_writer_already_else_an_error() {
        let refused = || {
            mock!(Client::switchover_global_cluster).then_error(|| {
                SwitchoverGlobalClusterError::InvalidGlobalClusterStateFault(
                    InvalidGlobalClusterStateFault::builder()
                        .message("a switchover is in progress")
                        .build(),
                )
            })
        };
        let writer_is = |writer: &'static str| {
            mock!(Client::describe_global_clusters).then_output(move || {
                DescribeGlobalClustersOutput::builder()
                    .global_clusters(global(writer))
                    .build()
            })
        };
        let (refusal, moved) = (refused(), writer_is(WEST));
        let rds = Rds::new(
            mock_client!(aws_sdk_rds, RuleMode::Sequential, [&refusal, &moved]),
            "us-west-2",
        );
        rds.switchover_global("app-global", WEST).await.unwrap();

        let (refusal, not_moved) = (refused(), writer_is(EAST));
        let rds = Rds::new(
            mock_client!(aws_sdk_rds, RuleMode::Sequential, [&refusal, &not_moved]),
            "us-west-2",
        );
        let err = rds.switchover_global("app-global", WEST).await.unwrap_err();
        assert!(err.to_string().contains("SwitchoverGlobalCluster"), "{err}");

        let ok = mock!(Client::switchover_global_cluster)
            .match_requests(|r| {
                r.global_cluster_identifier() == Some("app-global")
                    && r.target_db_cluster_identifier() == Some(WEST)
            })
            .then_output(|| SwitchoverGlobalClusterOutput::builder().build());
        let rds = Rds::new(mock_client!(aws_sdk_rds, [&ok]), "us-west-2");
        rds.switchover_global("app-global", WEST).await.unwrap();
    }

    #[tokio::test]
    async fn a_promotion_whose_answer_was_lost_counts_as_done() {
        let refused = || {
            mock!(Client::promote_read_replica).then_error(|| {
                PromoteReadReplicaError::InvalidDbInstanceStateFault(
                    InvalidDbInstanceStateFault::builder()
                        .message("not a read replica")
                        .build(),
                )
            })
        };
        let described = |source: Option<&'static str>| {
            mock!(Client::describe_db_instances).then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .db_instances(
                        DbInstance::builder()
                            .db_instance_identifier("app-replica")
                            .set_read_replica_source_db_instance_identifier(
                                source.map(str::to_string),
                            )
                            .build(),
                    )
                    .build()
            })
        };
        let (refusal, standalone) = (refused(), described(None));
        let rds = Rds::new(
            mock_client!(aws_sdk_rds, RuleMode::Sequential, [&refusal, &standalone]),
            "us-west-2",
        );
        rds.promote_replica("app-replica").await.unwrap();

        let (refusal, still_replica) =
            (refused(), described(Some("arn:aws:rds:us-east-1:1:db:app")));
        let rds = Rds::new(
            mock_client!(
                aws_sdk_rds,
                RuleMode::Sequential,
                [&refusal, &still_replica]
            ),
            "us-west-2",
        );
        assert!(rds.promote_replica("app-replica").await.is_err());

        let promoted = mock!(Client::promote_read_replica)
            .then_output(|| PromoteReadReplicaOutput::builder().build());
        let rds = Rds::new(mock_client!(aws_sdk_rds, [&promoted]), "us-west-2");
        rds.promote_replica("app-replica").await.unwrap();
    }

    #[tokio::test]
    async fn stopping_a_stopped_instance_is_not_an_error() {
        let refused = mock!(Client::stop_db_instance).then_error(|| {
            StopDBInstanceError::InvalidDbInstanceStateFault(
                InvalidDbInstanceStateFault::builder()
                    .message("stopped")
                    .build(),
            )
        });
        let stopped = mock!(Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("app")
                        .db_instance_status("stopped")
                        .build(),
                )
                .build()
        });
        let rds = Rds::new(
            mock_client!(aws_sdk_rds, RuleMode::Sequential, [&refused, &stopped]),
            "us-east-1",
        );
        assert!(!rds.stop_instance("app").await.unwrap());
    }

    #[tokio::test]
    async fn replicas_are_found_by_their_cross_region_source() {
        let describe = mock!(Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("app-west")
                        .db_instance_status("available")
                        .engine_version("16.4")
                        .read_replica_source_db_instance_identifier(
                            "arn:aws:rds:us-east-1:123456789012:db:app",
                        )
                        .build(),
                )
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("other-west")
                        .read_replica_source_db_instance_identifier(
                            "arn:aws:rds:eu-west-1:123456789012:db:app",
                        )
                        .build(),
                )
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("standalone")
                        .build(),
                )
                .build()
        });
        let rds = Rds::new(mock_client!(aws_sdk_rds, [&describe]), "us-west-2");
        let found = rds.replicas_of("app", "us-east-1").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].id.as_str(), found[0].status.as_str()),
            ("app-west", "available")
        );
    }
}
