//! Ownership (pure): which Lifeboat deployment made a resource, so that each deployment touches only what it made.
//!
//! A deployment is one SAM stack: its name (`LIFEBOAT_DEPLOYMENT`, the stack name) and its home region (the primary
//! region it runs in). Stack names are unique only within a region, so the pair is the identity. Every resource a
//! deployment creates (snapshots, cross-region copies, drill databases) carries both in [`tags::DEPLOYMENT`] and
//! [`tags::HOME_REGION`], and every function plans, copies, deletes, tags and drills only resources whose two tags
//! are its own. Two deployments in one account, even with DR in opposite directions and databases of the same
//! name, therefore never see each other's recovery points as theirs. The IAM policies of the template enforce the
//! same tags, so a bug in this code cannot delete what another deployment made.

use std::collections::HashMap;
use std::fmt;

use crate::model::{DatabaseKind, Snapshot, Tags};
use crate::tags;

/// The identity of one Lifeboat deployment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deployment {
    /// Name of the deployment (the stack name).
    pub name: String,
    /// Its primary region: where its databases and original snapshots are, and where it runs.
    pub home_region: String,
}

/// Who made a resource, as its tags say.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// This deployment.
    Mine,
    /// Another Lifeboat deployment.
    Other(Deployment),
    /// Managed by Lifeboat but without a deployment identity (made before deployments were tagged): no
    /// deployment can prove it made it, so none touches it.
    Unidentified,
    /// Not made by Lifeboat.
    Unmanaged,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Mine => f.write_str("this deployment"),
            Owner::Other(other) => write!(f, "deployment {other}"),
            Owner::Unidentified => f.write_str(
                "Lifeboat, without a deployment tag (no deployment can prove it made it)",
            ),
            Owner::Unmanaged => f.write_str("not Lifeboat (unmanaged)"),
        }
    }
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` of {}", self.name, self.home_region)
    }
}

/// A deployment name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "deployment name `{0}` must be 1 to 128 letters, digits or hyphens, starting with a letter (a CloudFormation stack name)"
)]
pub struct InvalidDeploymentName(pub String);

impl Deployment {
    /// The deployment `name` (a stack name: letters, digits and hyphens, starting with a letter) in `home_region`.
    pub fn new(
        name: impl Into<String>,
        home_region: impl Into<String>,
    ) -> Result<Self, InvalidDeploymentName> {
        let name = name.into();
        let valid = name.len() <= 128
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(InvalidDeploymentName(name));
        }
        Ok(Self {
            name,
            home_region: home_region.into(),
        })
    }

    /// The identity tags every resource this deployment creates carries.
    pub fn tags(&self) -> [(String, String); 2] {
        [
            (tags::DEPLOYMENT.to_string(), self.name.clone()),
            (tags::HOME_REGION.to_string(), self.home_region.clone()),
        ]
    }

    /// Who made the resource carrying `resource_tags`.
    pub fn owner_of(&self, resource_tags: &Tags) -> Owner {
        let managed = resource_tags
            .get(tags::MANAGED)
            .is_some_and(|v| v == tags::TRUE);
        let name = resource_tags.get(tags::DEPLOYMENT);
        let home = resource_tags.get(tags::HOME_REGION);
        match (name, home) {
            (Some(name), Some(home)) if name == self.name && home == self.home_region => {
                if managed {
                    Owner::Mine
                } else {
                    // Someone removed `lifeboat:managed`: the resource is no longer Lifeboat's to touch.
                    Owner::Unmanaged
                }
            }
            (Some(name), Some(home)) if managed => Owner::Other(Deployment {
                name: name.to_owned(),
                home_region: home.to_owned(),
            }),
            _ if managed => Owner::Unidentified,
            _ => Owner::Unmanaged,
        }
    }

    /// Whether this deployment made the resource carrying `resource_tags` (and it is still managed).
    pub fn owns(&self, resource_tags: &Tags) -> bool {
        self.owner_of(resource_tags) == Owner::Mine
    }

    /// The snapshots this deployment made, by (database, kind), in listing order: found once for a fleet, not by
    /// scanning every snapshot for every database.
    pub fn own_snapshots_by_database<'a>(
        &self,
        snapshots: &'a [Snapshot],
    ) -> HashMap<(&'a str, DatabaseKind), Vec<&'a Snapshot>> {
        let mut own: HashMap<_, Vec<&Snapshot>> = HashMap::new();
        for snapshot in snapshots.iter().filter(|s| self.owns(&s.tags)) {
            own.entry((snapshot.database.as_str(), snapshot.kind))
                .or_default()
                .push(snapshot);
        }
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tagged(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().copied().collect()
    }

    #[test]
    fn identity_is_the_name_and_the_home_region() {
        let east = Deployment::new("lifeboat", "us-east-1").unwrap();
        let west = Deployment::new("lifeboat", "us-west-2").unwrap();
        let mut made_by_east = tagged(&[(tags::MANAGED, tags::TRUE)]);
        made_by_east.extend(east.tags());
        assert!(east.owns(&made_by_east));
        assert!(!west.owns(&made_by_east), "same stack name, other region");
        assert_eq!(west.owner_of(&made_by_east), Owner::Other(east.clone()));
        assert_eq!(
            east.owner_of(&tagged(&[(tags::MANAGED, tags::TRUE)])),
            Owner::Unidentified
        );
        assert_eq!(east.owner_of(&tagged(&[])), Owner::Unmanaged);
        let mut unmanaged_now = made_by_east.clone();
        unmanaged_now.remove(tags::MANAGED);
        assert_eq!(east.owner_of(&unmanaged_now), Owner::Unmanaged);
    }

    #[test]
    fn names_are_stack_names() {
        assert!(Deployment::new("lifeboat-prod-2", "us-east-1").is_ok());
        for bad in ["", "2lifeboat", "life_boat", "life boat", &"x".repeat(129)] {
            let err = Deployment::new(bad, "us-east-1").unwrap_err();
            assert!(err.to_string().contains("stack name"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn a_resource_has_exactly_one_owner_among_deployments(
            names in prop::collection::vec("[a-c]", 1..4),
            regions in prop::collection::vec("us-(east|west)-[12]", 1..4),
            tag_name in "[a-c]",
            tag_region in "us-(east|west)-[12]",
        ) {
            let mut resource = tagged(&[(tags::MANAGED, tags::TRUE)]);
            resource.insert(tags::DEPLOYMENT.into(), tag_name);
            resource.insert(tags::HOME_REGION.into(), tag_region);
            let owners = names
                .iter()
                .flat_map(|n| regions.iter().map(move |r| (n, r)))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|(n, r)| Deployment::new(n.as_str(), r.as_str()).unwrap().owns(&resource))
                .count();
            prop_assert!(owners <= 1);
        }
    }
}
