//! The RDS adapter's failover calls against the emulator: a cross-region read replica of a DB instance is created,
//! found from its source, promoted (twice: the second is a no-op), and the old primary is fenced (stopped, twice);
//! an Aurora global database is found from its secondary cluster. Switchover and failover of global databases are
//! not implemented by moto: the adapter's unit tests cover them with aws-smithy-mocks.

use lifeboat::aws::rds::{GlobalMember, Rds, ReplicaSpec};
use lifeboat::model::DatabaseKind;
use lifeboat_integration_tests::{Sandbox, sdk_config, unique};

/// The primary region of these tests.
const PRIMARY: &str = "us-west-1";
/// The DR region of these tests.
const DR: &str = "ca-west-1";
/// The tag that marks a replica as Lifeboat's.
const MARKER: &str = "lifeboat:replica";

async fn adapter_in(region: &str) -> Rds {
    Rds::new(aws_sdk_rds::Client::new(&sdk_config(region).await), region)
}

#[tokio::test]
async fn a_cross_region_replica_is_created_found_promoted_and_its_source_fenced() {
    let primary = Sandbox::new(PRIMARY).await;
    let source = unique("orders");
    primary.instance(&source, &[], None).await;
    let source_arn = primary
        .rds
        .describe_db_instances()
        .db_instance_identifier(&source)
        .send()
        .await
        .expect("describe source")
        .db_instances()[0]
        .db_instance_arn()
        .expect("source ARN")
        .to_string();
    let subnet_group = unique("lifeboat-dr");
    primary.drill_subnet_group_in(DR, &subnet_group).await;
    // moto looks a cross-region replica's subnet group up in the source's region (it sets the subnet group before
    // it moves the copied source to the replica's region): a group of the same name there satisfies it.
    primary.drill_subnet_group_in(PRIMARY, &subnet_group).await;

    let dr = adapter_in(DR).await;
    let replica = format!("{source}-dr");
    let tags = [(MARKER.to_string(), replica.clone())];
    dr.create_replica(&ReplicaSpec {
        id: &replica,
        marker: MARKER,
        source_arn: &source_arn,
        instance_class: "db.t3.micro",
        subnet_group: &subnet_group,
        security_groups: &[],
        kms_key: None,
        tags: &tags,
    })
    .await
    .expect("create replica");

    let found = dr.replicas_of(&source, PRIMARY).await.expect("replicas");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, replica);
    assert_eq!(found[0].source, source_arn);
    assert!(found[0].arn.contains(&format!(":{DR}:")), "{found:?}");
    assert!(!found[0].engine_version.is_empty(), "{found:?}");
    assert_eq!(
        dr.replicas_of(&source_arn, "").await.expect("replicas"),
        found
    );
    assert!(
        dr.replicas_of(&source, DR)
            .await
            .expect("replicas")
            .is_empty(),
        "a same-named source in the DR region is another instance"
    );
    let listed = dr.list_databases().await.expect("databases");
    let described = listed
        .iter()
        .find(|d| d.identifier == replica)
        .expect("the replica listed");
    assert_eq!(
        described.engine_version.as_ref(),
        Some(&found[0].engine_version)
    );
    assert_eq!(
        described.replica_source.as_deref(),
        Some(source_arn.as_str())
    );

    // A second promotion is a no-op (AWS refuses it, InvalidDBInstanceState, and the adapter finds the instance
    // standalone). Promoted, the instance reports no source (the emulator's fix of moto, which kept it).
    dr.promote_replica(&replica).await.expect("promote");
    dr.promote_replica(&replica).await.expect("promote again");
    assert!(
        dr.replicas_of(&source, PRIMARY)
            .await
            .expect("replicas")
            .is_empty()
    );
    let promoted = dr.list_databases().await.expect("databases");
    assert_eq!(
        promoted
            .iter()
            .find(|d| d.identifier == replica)
            .map(|d| d.replica_source.clone()),
        Some(None)
    );

    let old_primary = adapter_in(PRIMARY).await;
    assert!(old_primary.stop_instance(&source).await.expect("stop"));
    assert!(
        !old_primary
            .stop_instance(&source)
            .await
            .expect("stop again")
    );
}

#[tokio::test]
async fn a_global_database_is_found_from_its_members() {
    let global = unique("ledger-global");
    let primary_rds = aws_sdk_rds::Client::new(&sdk_config(PRIMARY).await);
    primary_rds
        .create_global_cluster()
        .global_cluster_identifier(&global)
        .engine("aurora-postgresql")
        .send()
        .await
        .expect("create global cluster");
    let (primary_id, secondary_id) = (unique("ledger"), unique("ledger-dr"));
    let primary_arn = primary_rds
        .create_db_cluster()
        .db_cluster_identifier(&primary_id)
        .engine("aurora-postgresql")
        .global_cluster_identifier(&global)
        .master_username("lifeboat")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .expect("create primary cluster")
        .db_cluster()
        .and_then(|c| c.db_cluster_arn())
        .expect("primary ARN")
        .to_string();
    let secondary_arn = aws_sdk_rds::Client::new(&sdk_config(DR).await)
        .create_db_cluster()
        .db_cluster_identifier(&secondary_id)
        .engine("aurora-postgresql")
        .global_cluster_identifier(&global)
        .send()
        .await
        .expect("create secondary cluster")
        .db_cluster()
        .and_then(|c| c.db_cluster_arn())
        .expect("secondary ARN")
        .to_string();

    // Found from the DR region (where failover asks while the primary region is down) as from the primary's.
    let rds = adapter_in(DR).await;
    let found = rds
        .global_database_of(&secondary_arn)
        .await
        .expect("describe global clusters")
        .expect("a global database");
    assert_eq!(
        adapter_in(PRIMARY)
            .await
            .global_database_of(&primary_arn)
            .await
            .expect("describe global clusters")
            .as_ref(),
        Some(&found)
    );
    assert_eq!(found.id, global);
    assert_eq!(found.status, "available");
    assert!(!found.engine_version.is_empty(), "{found:?}");
    assert_eq!(
        found.members,
        [
            GlobalMember {
                cluster_arn: primary_arn.clone(),
                region: PRIMARY.into(),
                writer: true,
            },
            GlobalMember {
                cluster_arn: secondary_arn,
                region: DR.into(),
                writer: false,
            },
        ]
    );
    assert_eq!(
        rds.global_database_of(&primary_arn.replace(&primary_id, &unique("alone")))
            .await
            .expect("describe global clusters"),
        None
    );
    let primary_cluster = adapter_in(PRIMARY)
        .await
        .list_databases()
        .await
        .expect("databases")
        .into_iter()
        .find(|d| d.identifier == primary_id && d.kind == DatabaseKind::Cluster)
        .expect("the primary cluster");
    assert_eq!(
        primary_cluster.engine_version,
        Some(found.engine_version.clone())
    );
}
