//! The IAM fences of `infra/template.yaml` (and `infra/dr-region-events.yaml`): what the functions' roles must make
//! impossible whatever the code does. Plain checks of the templates, no emulator: every function role may delete
//! only its own deployment's snapshots and never one under legal hold, may not touch the legal-hold tag, stays in
//! the stack's regions, restores and deletes only tagged drill databases, creates KMS grants only for AWS
//! resources; the ledger is locked; service principals are tied to this account and this deployment's resources;
//! role ARNs are exported. Ad-hoc restores (the restore function), not fenced by name, are fenced by their tags:
//! a restored database is born with the restore tag and this deployment's identity, only such databases are
//! modified, snapshotted or deleted, databases the policy backs up are out of reach, final snapshots are born as
//! this deployment's, and the restore role deletes no snapshot. Tags are written onto existing resources only under
//! an explicit list of harmless keys (a restore's expiry only on this deployment's restores), every other tag only
//! onto a resource being created; copies read only this deployment's snapshots and write only its copy names. And
//! the alarms: every function's errors and throttles, the dead-letter queue, stale drill evidence, all to the alert
//! topic both ways; a deployment without any alert subscriber says so in its outputs.
//!
//! The failover role's fences are evaluated request by request ([`iam`], tests in [`failover`]): it changes only
//! the named records in the named zone, deletes only this deployment's drill databases, no recovery point and
//! nothing the policy backs up, stops only the named old primaries and its own DR databases, restores only under
//! its own names with this deployment's tags, keeps credentials under lifeboat/failover/ and its state under
//! failover/ in the reports bucket; and for each of these an explicit Deny holds whatever an Allow says. The
//! retention role invokes only its own function, for continuations ([`continuation`]).

#[path = "template_fences/continuation.rs"]
mod continuation;
#[path = "template_fences/failover.rs"]
mod failover;
#[path = "template_fences/iam.rs"]
mod iam;

use serde_yaml_ng::Value;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
const DR_EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../infra/dr-region-events.yaml"
);
const DR_FAILOVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../infra/dr-region-failover.yaml"
);

const STACK: &str = "${AWS::StackName}";
const REGION: &str = "${AWS::Region}";

/// Parse a CloudFormation template; short-form intrinsics (`!Sub`, `!Ref`, ...) stay `Value::Tagged`.
fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// A value as comparable text: `!Ref X` and `!GetAtt X` become `${X}`, `!Sub` its template, any other tag
/// `!Tag` followed by its argument; lists are joined with spaces, mappings rendered as `key: value` pairs.
fn render(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => items.iter().map(render).collect::<Vec<_>>().join(" "),
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| format!("{}: {}", render(k), render(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Tagged(tagged) => {
            let inner = render(&tagged.value);
            if tagged.tag == "Ref" || tagged.tag == "GetAtt" {
                format!("${{{inner}}}")
            } else if tagged.tag == "Sub" {
                inner
            } else {
                format!("{} {inner}", tagged.tag)
            }
        }
    }
}

/// The rendered values of a scalar-or-list field (an absent field has none).
fn values(value: Option<&Value>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().map(render).collect(),
        Some(other) => vec![render(other)],
    }
}

/// Whether the IAM pattern `pattern` (`*` and `?` wildcards, case-insensitive) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    fn matches(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => matches(&p[1..], t) || (!t.is_empty() && matches(p, &t[1..])),
            (Some(b'?'), Some(_)) => matches(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => matches(&p[1..], &t[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), text.as_bytes())
}

/// One statement of a role's policies, with where it comes from for assertion messages.
struct Statement<'a> {
    /// `"<FunctionLogicalId> role, statement <Sid>"`.
    place: String,
    body: &'a Value,
}

impl Statement<'_> {
    fn effect(&self) -> String {
        values(self.body.get("Effect")).join("")
    }

    fn is_allow(&self) -> bool {
        self.effect() == "Allow"
    }

    fn is_deny(&self) -> bool {
        self.effect() == "Deny"
    }

    /// Whether the statement applies to `action` (through `Action` or `NotAction`).
    fn covers(&self, action: &str) -> bool {
        if let Some(not) = self.body.get("NotAction") {
            return !values(Some(not)).iter().any(|p| glob(p, action));
        }
        values(self.body.get("Action"))
            .iter()
            .any(|p| glob(p, action))
    }

    /// The statement's resources, rendered.
    fn resources(&self) -> Vec<String> {
        values(self.body.get("Resource"))
    }

    /// The values the statement's condition `operator` requires of `key` (keys compared case-insensitively).
    fn condition(&self, operator: &str, key: &str) -> Vec<String> {
        let Some(Value::Mapping(keys)) = self.body.get("Condition").and_then(|c| c.get(operator))
        else {
            return Vec::new();
        };
        keys.iter()
            .find(|(k, _)| render(k).eq_ignore_ascii_case(key))
            .map(|(_, v)| values(Some(v)))
            .unwrap_or_default()
    }

    /// Every key of the condition `operator` with the values it requires.
    fn condition_entries(&self, operator: &str) -> Vec<(String, Vec<String>)> {
        let Some(Value::Mapping(keys)) = self.body.get("Condition").and_then(|c| c.get(operator))
        else {
            return Vec::new();
        };
        keys.iter()
            .map(|(k, v)| (render(k), values(Some(v))))
            .collect()
    }

    /// The values required of the first of `keys` the condition `operator` names.
    fn condition_any(&self, operator: &str, keys: &[String]) -> Vec<String> {
        keys.iter()
            .map(|key| self.condition(operator, key))
            .find(|found| !found.is_empty())
            .unwrap_or_default()
    }
}

/// The template's functions (`AWS::Serverless::Function`): logical id and definition.
fn functions(template: &Value) -> Vec<(String, &Value)> {
    let Some(Value::Mapping(resources)) = template.get("Resources") else {
        panic!("the template has no Resources");
    };
    let found: Vec<(String, &Value)> = resources
        .iter()
        .filter(|(_, r)| values(r.get("Type")) == ["AWS::Serverless::Function"])
        .map(|(id, r)| (render(id), r))
        .collect();
    assert!(!found.is_empty(), "the template defines no function");
    found
}

/// Every statement of `function`'s role: its inline policy documents and the customer managed policies of the
/// template (`AWS::IAM::ManagedPolicy`) it attaches with `!Ref`.
fn role_statements<'a>(template: &'a Value, id: &str, function: &'a Value) -> Vec<Statement<'a>> {
    let mut documents: Vec<(String, &Value)> = Vec::new();
    let policies = function
        .get("Properties")
        .and_then(|p| p.get("Policies"))
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for policy in policies {
        if policy.get("Statement").is_some() {
            documents.push((format!("{id} role"), policy));
        } else if let Value::Tagged(tagged) = policy
            && tagged.tag == "Ref"
        {
            let name = render(&tagged.value);
            let document = template
                .get("Resources")
                .and_then(|r| r.get(name.as_str()))
                .filter(|r| values(r.get("Type")) == ["AWS::IAM::ManagedPolicy"])
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("PolicyDocument"));
            if let Some(document) = document {
                documents.push((format!("{id} role (managed policy {name})"), document));
            }
        }
    }
    let mut statements = Vec::new();
    for (owner, document) in documents {
        let bodies: Vec<&Value> = match document.get("Statement") {
            Some(Value::Sequence(items)) => items.iter().collect(),
            Some(single) => vec![single],
            None => Vec::new(),
        };
        for (n, body) in bodies.into_iter().enumerate() {
            let sid = values(body.get("Sid")).join("");
            let sid = if sid.is_empty() { format!("#{n}") } else { sid };
            statements.push(Statement {
                place: format!("{owner}, statement {sid}"),
                body,
            });
        }
    }
    statements
}

/// Every function with all its role's statements.
fn roles(template: &Value) -> Vec<(String, Vec<Statement<'_>>)> {
    functions(template)
        .into_iter()
        .map(|(id, function)| {
            let statements = role_statements(template, &id, function);
            (id, statements)
        })
        .collect()
}

/// The keys under which a resource tag can be named in a condition: the global `aws:ResourceTag/<tag>` and the
/// RDS-specific `rds:<family>-tag/<tag>` of each of `families` (`snapshot`, `db`, `cluster`, ...).
fn resource_tag_keys(tag: &str, families: &[&str]) -> Vec<String> {
    std::iter::once(format!("aws:ResourceTag/{tag}"))
        .chain(families.iter().map(|f| format!("rds:{f}-tag/{tag}")))
        .collect()
}

/// Replace every `${...}` placeholder of `text` by `X` (so an ARN can be split on `:`).
fn strip_placeholders(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push('X');
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `resource` (a rendered ARN pattern, or `*`) can name an RDS DB instance or DB cluster.
fn may_name_database(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let arn = strip_placeholders(resource);
    let parts: Vec<&str> = arn.split(':').collect();
    let rds = parts.get(2).is_some_and(|service| glob(service, "rds"));
    match parts.get(5) {
        Some(kind) => rds && (glob(kind, "db") || glob(kind, "cluster")),
        // `arn:aws:rds:*` and the like: a trailing wildcard spans the resource type too.
        None => rds && parts.last().is_some_and(|last| last.ends_with('*')),
    }
}

/// Whether `resource` (a rendered ARN pattern) names DB instances or DB clusters and nothing else (no `*` spanning
/// the resource type, so never a snapshot).
fn names_only_databases(resource: &str) -> bool {
    let arn = strip_placeholders(resource);
    let parts: Vec<&str> = arn.split(':').collect();
    parts.get(2).is_some_and(|service| *service == "rds")
        && parts
            .get(5)
            .is_some_and(|kind| *kind == "db" || *kind == "cluster")
}

/// Whether `statement` applies only to this deployment's ad-hoc restores: database resources only, which must carry
/// `lifeboat:restore` (`Null` = `"false"`) and this deployment's identity and home region.
fn on_own_restores_only(statement: &Statement<'_>) -> bool {
    let resources = statement.resources();
    let families = ["db", "cluster"];
    !resources.is_empty()
        && resources.iter().all(|r| names_only_databases(r))
        && statement.condition_any("Null", &resource_tag_keys("lifeboat:restore", &families))
            == ["false"]
        && statement.condition_any(
            "StringEquals",
            &resource_tag_keys("lifeboat:deployment", &families),
        ) == [STACK]
        && statement.condition_any(
            "StringEquals",
            &resource_tag_keys("lifeboat:home-region", &families),
        ) == [REGION]
}

#[test]
fn snapshot_deletes_require_this_deployments_tags() {
    let template = load(TEMPLATE);
    let mut allowed = Vec::new();
    for (id, statements) in roles(&template) {
        for statement in statements.iter().filter(|s| s.is_allow()) {
            for (action, family) in [
                ("rds:DeleteDBSnapshot", "snapshot"),
                ("rds:DeleteDBClusterSnapshot", "cluster-snapshot"),
            ] {
                if !statement.covers(action) {
                    continue;
                }
                allowed.push((id.clone(), action));
                for (tag, expected) in [
                    ("lifeboat:managed", "true"),
                    ("lifeboat:deployment", STACK),
                    ("lifeboat:home-region", REGION),
                ] {
                    let keys = resource_tag_keys(tag, &[family]);
                    let found = statement.condition_any("StringEquals", &keys);
                    assert_eq!(
                        found,
                        [expected],
                        "{}: the Allow of {action} lacks the condition StringEquals {} = {expected}",
                        statement.place,
                        keys[0],
                    );
                }
            }
        }
    }
    for action in ["rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot"] {
        assert!(
            allowed
                .iter()
                .any(|(id, a)| id == "RetentionFunction" && *a == action),
            "RetentionFunction role: no Allow of {action} left (retention must still delete its own snapshots)"
        );
    }
}

#[test]
fn every_role_denies_deletes_under_legal_hold() {
    let template = load(TEMPLATE);
    for (id, statements) in roles(&template) {
        for (action, family) in [
            ("rds:DeleteDBSnapshot", "snapshot"),
            ("rds:DeleteDBClusterSnapshot", "cluster-snapshot"),
        ] {
            let keys = resource_tag_keys("lifeboat:legal-hold", &[family]);
            let denied = statements.iter().any(|s| {
                s.is_deny()
                    && s.covers(action)
                    && s.resources().iter().any(|r| r == "*")
                    && s.condition_any("Null", &keys) == ["false"]
            });
            assert!(
                denied,
                "{id} role: no Deny of {action} on Resource \"*\" while the snapshot carries lifeboat:legal-hold \
                 (Condition Null {} = \"false\")",
                keys[0]
            );
        }
    }
}

#[test]
fn every_role_denies_changing_the_legal_hold_tag() {
    let template = load(TEMPLATE);
    for (id, statements) in roles(&template) {
        for action in ["rds:AddTagsToResource", "rds:RemoveTagsFromResource"] {
            let denied = statements.iter().any(|s| {
                s.is_deny()
                    && s.covers(action)
                    && s.resources().iter().any(|r| r == "*")
                    && s.condition("ForAnyValue:StringEquals", "aws:TagKeys")
                        .iter()
                        .any(|k| k == "lifeboat:legal-hold")
            });
            assert!(
                denied,
                "{id} role: no Deny of {action} on Resource \"*\" when aws:TagKeys contains lifeboat:legal-hold \
                 (ForAnyValue:StringEquals)"
            );
        }
    }
}

/// Tag keys no role may ever write onto a resource that exists already: a snapshot's retention (`tier`,
/// `expires-at`), a resource's identity (`managed`, `deployment`, `home-region`, `drill`, `restore`) and the legal
/// hold. One exception: `lifeboat:expires-at` on this deployment's ad-hoc restores (see [`RESTORE_EXISTING_KEYS`]).
const DANGEROUS_KEYS: [&str; 8] = [
    "lifeboat:tier",
    "lifeboat:expires-at",
    "lifeboat:managed",
    "lifeboat:deployment",
    "lifeboat:home-region",
    "lifeboat:legal-hold",
    "lifeboat:drill",
    "lifeboat:restore",
];

/// Exactly the keys the restore function writes onto its existing restored databases: the progress of a restore,
/// and `lifeboat:expires-at`, which an operator's "keep" extends. That one is otherwise dangerous; it is allowed only
/// by a statement on this deployment's restores alone (database resources carrying `lifeboat:restore` and this
/// deployment's identity), where a wrong expiry costs a database that is snapshotted before it is deleted.
const RESTORE_EXISTING_KEYS: [&str; 6] = [
    "lifeboat:restore-phase",
    "lifeboat:restore-available-at",
    "lifeboat:restore-attempts",
    "lifeboat:restore-notified",
    "lifeboat:expires-at",
    "lifeboat:restore-final-snapshot",
];

/// The tag a resource-tag condition key names (`aws:ResourceTag/<tag>` or `rds:<family>-tag/<tag>`), if it is one.
fn resource_tag_of(key: &str) -> Option<&str> {
    let (prefix, tag) = key.split_once('/')?;
    (prefix.eq_ignore_ascii_case("aws:ResourceTag")
        || (prefix.starts_with("rds:") && prefix.ends_with("-tag")))
    .then_some(tag)
}

/// The `lifeboat:` tags a statement requires the resource NOT to carry yet (`Null` `<resource tag key>` = `"true"`)
/// while requiring the request to set them (`StringEquals aws:RequestTag/<tag>`, or `Null aws:RequestTag/<tag>` =
/// `"false"`): such a statement can only tag a resource that is being created, never re-tag one that has them.
fn new_resource_tags(statement: &Statement<'_>) -> Vec<String> {
    statement
        .condition_entries("Null")
        .into_iter()
        .filter(|(_, required)| *required == ["true"])
        .filter_map(|(key, _)| resource_tag_of(&key).map(str::to_string))
        .filter(|tag| tag.starts_with("lifeboat:"))
        .filter(|tag| {
            let request = format!("aws:RequestTag/{tag}");
            !statement.condition("StringEquals", &request).is_empty()
                || statement.condition("Null", &request) == ["false"]
        })
        .collect()
}

/// Whether `statement` stamps what it tags as this deployment's (managed, deployment, home region) in the request.
fn stamps_own_identity(statement: &Statement<'_>) -> bool {
    [
        ("lifeboat:managed", "true"),
        ("lifeboat:deployment", STACK),
        ("lifeboat:home-region", REGION),
    ]
    .iter()
    .all(|(tag, expected)| {
        statement.condition("StringEquals", &format!("aws:RequestTag/{tag}")) == [*expected]
    })
}

/// Whether `statement` stamps what it tags with this deployment's identity (deployment, home region) in the request:
/// what the failover role's databases carry (they are databases, not Lifeboat's recovery points, so not
/// `lifeboat:managed`).
fn stamps_deployment(statement: &Statement<'_>) -> bool {
    [
        ("lifeboat:deployment", STACK),
        ("lifeboat:home-region", REGION),
    ]
    .iter()
    .all(|(tag, expected)| {
        statement.condition("StringEquals", &format!("aws:RequestTag/{tag}")) == [*expected]
    })
}

/// Exactly the keys the failover function writes onto its existing databases: a run's progress.
const FAILOVER_EXISTING_KEYS: [&str; 3] = [
    "lifeboat:failover-phase",
    "lifeboat:failover-available-at",
    "lifeboat:failover-attempts",
];

#[test]
fn snapshot_and_copy_roles_tag_only_new_snapshots() {
    let template = load(TEMPLATE);
    for (id, statements) in roles(&template) {
        if id != "SnapshotFunction" && id != "CopyFunction" {
            continue;
        }
        let mut seen = 0;
        for statement in statements
            .iter()
            .filter(|s| s.is_allow() && s.covers("rds:AddTagsToResource"))
        {
            seen += 1;
            for tag in ["lifeboat:managed", "lifeboat:deployment"] {
                let keys = resource_tag_keys(tag, &["snapshot", "cluster-snapshot"]);
                assert_eq!(
                    statement.condition_any("Null", &keys),
                    ["true"],
                    "{}: the Allow of rds:AddTagsToResource lacks the condition Null {} = \"true\" (only snapshots \
                     being created, which carry no tags yet; never re-tagging or adopting an existing one)",
                    statement.place,
                    keys[0],
                );
            }
            assert!(
                stamps_own_identity(statement),
                "{}: the Allow of rds:AddTagsToResource must require StringEquals aws:RequestTag/lifeboat:managed = \
                 true, aws:RequestTag/lifeboat:deployment = {STACK} and aws:RequestTag/lifeboat:home-region = \
                 {REGION} (a snapshot is born as this deployment's)",
                statement.place
            );
            let moot: Vec<String> = statement
                .condition_entries("StringEqualsIfExists")
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| resource_tag_of(key).is_some())
                .collect();
            assert!(
                moot.is_empty(),
                "{}: StringEqualsIfExists on {moot:?} is moot next to the Null conditions (a new snapshot has no \
                 tags) and reads as if existing snapshots could be tagged: drop it",
                statement.place
            );
        }
        assert!(
            seen > 0,
            "{id} role: no Allow of rds:AddTagsToResource left (it must still create snapshots with tags)"
        );
    }
}

#[test]
fn tags_on_existing_resources_are_limited_to_explicit_safe_keys() {
    let template = load(TEMPLATE);
    let mut verify_keys_on: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut verify_new_drills = false;
    let mut restore_keys_on: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut restore_new = false;
    let mut failover_keys_on: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut failover_new = false;
    for (id, statements) in roles(&template) {
        for statement in statements
            .iter()
            .filter(|s| s.is_allow() && s.covers("rds:AddTagsToResource"))
        {
            let new_only = new_resource_tags(statement);
            if !new_only.is_empty() && id == "FailoverFunction" {
                assert!(
                    stamps_deployment(statement)
                        && new_only.iter().any(|t| t == "lifeboat:failover")
                        && statement.condition("Null", "aws:RequestTag/lifeboat:backup")
                            == ["true"],
                    "{}: the Allow of rds:AddTagsToResource on databases being created (Null {new_only:?}) must \
                     require Null aws:RequestTag/lifeboat:failover = \"false\" with Null \
                     aws:ResourceTag/lifeboat:failover = \"true\", Null aws:RequestTag/lifeboat:backup = \"true\", \
                     and StringEquals aws:RequestTag/lifeboat:deployment = {STACK}, \
                     aws:RequestTag/lifeboat:home-region = {REGION}",
                    statement.place
                );
                failover_new = true;
                continue;
            }
            if !new_only.is_empty() {
                assert!(
                    stamps_own_identity(statement),
                    "{}: the Allow of rds:AddTagsToResource on resources being created (Null {new_only:?}) must \
                     require StringEquals aws:RequestTag/lifeboat:managed = true, \
                     aws:RequestTag/lifeboat:deployment = {STACK} and aws:RequestTag/lifeboat:home-region = \
                     {REGION}",
                    statement.place
                );
                if id == "VerifyFunction"
                    && new_only.iter().any(|t| t == "lifeboat:drill")
                    && statement
                        .resources()
                        .iter()
                        .all(|r| r.ends_with(":db:lbdrill-*") || r.ends_with(":cluster:lbdrill-*"))
                {
                    verify_new_drills = true;
                }
                if id == "RestoreFunction"
                    && new_only.iter().any(|t| t == "lifeboat:restore")
                    && statement
                        .resources()
                        .iter()
                        .all(|r| names_only_databases(r))
                {
                    restore_new = true;
                }
                continue;
            }
            let keys = statement.condition("ForAllValues:StringEquals", "aws:TagKeys");
            assert!(
                !keys.is_empty(),
                "{}: the Allow of rds:AddTagsToResource can tag an existing resource with any key: it needs either \
                 ForAllValues:StringEquals aws:TagKeys = [the keys it writes] or, for tags of a resource being \
                 created, Null aws:ResourceTag/<a lifeboat: tag the request sets> = \"true\"",
                statement.place
            );
            for key in &keys {
                assert!(
                    !key.contains(['*', '?', '$']),
                    "{}: aws:TagKeys lists {key:?}; list plain keys only",
                    statement.place
                );
                let restore_expiry =
                    key == "lifeboat:expires-at" && on_own_restores_only(statement);
                assert!(
                    !DANGEROUS_KEYS.contains(&key.as_str()) || restore_expiry,
                    "{}: the Allow of rds:AddTagsToResource lets {key} be written onto an existing resource \
                     (never allowed: {DANGEROUS_KEYS:?}; lifeboat:expires-at only by a statement on this \
                     deployment's ad-hoc restores alone: db/cluster resources with Null \
                     aws:ResourceTag/lifeboat:restore = \"false\" and StringEquals aws:ResourceTag/lifeboat:deployment \
                     = {STACK}, aws:ResourceTag/lifeboat:home-region = {REGION})",
                    statement.place
                );
            }
            if id == "VerifyFunction" {
                verify_keys_on.push((statement.resources(), keys));
            } else if id == "RestoreFunction" {
                // The restore function tags existing resources only with its own keys, only on its own restores.
                let extra: Vec<&String> = keys
                    .iter()
                    .filter(|k| !RESTORE_EXISTING_KEYS.contains(&k.as_str()))
                    .collect();
                assert!(
                    extra.is_empty() && on_own_restores_only(statement),
                    "{}: the restore role may write onto existing resources only {RESTORE_EXISTING_KEYS:?}, only on \
                     this deployment's restores (db/cluster resources with Null aws:ResourceTag/lifeboat:restore = \
                     \"false\" and this deployment's identity); it writes {extra:?} on {:?}",
                    statement.place,
                    statement.resources()
                );
                restore_keys_on.push((statement.resources(), keys));
            } else if id == "FailoverFunction" {
                // The failover function tags existing databases only with a run's progress, only its own.
                let extra: Vec<&String> = keys
                    .iter()
                    .filter(|k| !FAILOVER_EXISTING_KEYS.contains(&k.as_str()))
                    .collect();
                let own = statement.condition("Null", "aws:ResourceTag/lifeboat:failover")
                    == ["false"]
                    && statement.condition("StringEquals", "aws:ResourceTag/lifeboat:deployment")
                        == [STACK];
                assert!(
                    extra.is_empty() && own,
                    "{}: the failover role may write onto existing resources only {FAILOVER_EXISTING_KEYS:?}, only \
                     on its own databases (Null aws:ResourceTag/lifeboat:failover = \"false\", StringEquals \
                     aws:ResourceTag/lifeboat:deployment = {STACK}); it writes {extra:?} on {:?}",
                    statement.place,
                    statement.resources()
                );
                failover_keys_on.push((statement.resources(), keys));
            }
        }
    }
    // What the verify function writes on existing resources must stay allowed.
    for (kinds, needed) in [
        (
            [":db:lbdrill-*", ":cluster:lbdrill-*"],
            &["lifeboat:drill-phase", "lifeboat:drill-available-at"][..],
        ),
        (
            [":snapshot:lifeboat-*", ":cluster-snapshot:lifeboat-*"],
            &[
                "lifeboat:verified-at",
                "lifeboat:verify-result",
                "lifeboat:restore-seconds",
            ][..],
        ),
    ] {
        for kind in kinds {
            let allowed = verify_keys_on.iter().any(|(resources, keys)| {
                resources.iter().any(|r| r.ends_with(kind))
                    && needed.iter().all(|n| keys.iter().any(|k| k == n))
            });
            assert!(
                allowed,
                "VerifyFunction role: no Allow of rds:AddTagsToResource of {needed:?} on {kind} (the verify \
                 function writes them)"
            );
        }
    }
    assert!(
        verify_new_drills,
        "VerifyFunction role: no Allow of rds:AddTagsToResource for new drill databases (db:lbdrill-* and \
         cluster:lbdrill-*, Null aws:ResourceTag/lifeboat:drill = \"true\"): restores could not tag them"
    );
    // What the restore function writes on its existing restores must stay allowed, on instances and clusters.
    for kind in [":db:lbrestore-*", ":cluster:lbrestore-*"] {
        for key in RESTORE_EXISTING_KEYS {
            assert!(
                restore_keys_on.iter().any(|(resources, keys)| {
                    resources.iter().any(|r| r.ends_with(kind)) && keys.iter().any(|k| k == key)
                }),
                "RestoreFunction role: no Allow of rds:AddTagsToResource of {key} on {kind} (the restore function \
                 writes it on its restores)"
            );
        }
    }
    assert!(
        restore_new,
        "RestoreFunction role: no Allow of rds:AddTagsToResource for new restored databases (db and cluster \
         resources, Null aws:ResourceTag/lifeboat:restore = \"true\"): restores could not tag them"
    );
    // What the failover function writes: tags of its new databases, a run's progress on its existing ones.
    assert!(
        failover_new,
        "FailoverFunction role: no Allow of rds:AddTagsToResource for new failover databases: restores and the \
         failback replica could not tag them"
    );
    for kind in [
        ":db:lbfailover-*",
        ":db:lbfodrill-*",
        ":cluster:lbfailover-*",
        ":cluster:lbfodrill-*",
    ] {
        for key in FAILOVER_EXISTING_KEYS {
            assert!(
                failover_keys_on.iter().any(|(resources, keys)| {
                    resources.iter().any(|r| r.ends_with(kind)) && keys.iter().any(|k| k == key)
                }),
                "FailoverFunction role: no Allow of rds:AddTagsToResource of {key} on {kind} (the failover \
                 function writes it on its databases)"
            );
        }
    }
}

#[test]
fn copies_read_own_sources_and_write_only_own_copy_names() {
    let template = load(TEMPLATE);
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (_, statements) in roles(&template) {
        for statement in statements.iter().filter(|s| s.is_allow()) {
            for (action, family) in [
                ("rds:CopyDBSnapshot", "snapshot"),
                ("rds:CopyDBClusterSnapshot", "cluster-snapshot"),
            ] {
                if !statement.covers(action) {
                    continue;
                }
                let source = format!(
                    "arn:${{AWS::Partition}}:rds:{REGION}:${{AWS::AccountId}}:{family}:lifeboat-*"
                );
                let target = format!(
                    "arn:${{AWS::Partition}}:rds:*:${{AWS::AccountId}}:{family}:lifeboat-*-from-{REGION}"
                );
                let own_tags = [
                    ("lifeboat:deployment", STACK),
                    ("lifeboat:home-region", REGION),
                ]
                .iter()
                .all(|(tag, expected)| {
                    statement.condition_any("StringEquals", &resource_tag_keys(tag, &[family]))
                        == [*expected]
                });
                for resource in statement.resources() {
                    let arn = strip_placeholders(&resource);
                    let parts: Vec<&str> = arn.split(':').collect();
                    // Only resources of the action's own snapshot type (or a wildcard spanning it) apply to it.
                    let names_snapshot =
                        resource == "*" || parts.get(5).is_none_or(|kind| glob(kind, family));
                    if !names_snapshot {
                        continue;
                    }
                    if resource.eq_ignore_ascii_case(&source) {
                        assert!(
                            own_tags,
                            "{}: {action} may read any Lifeboat-named source snapshot; it needs StringEquals \
                             aws:ResourceTag/lifeboat:deployment = {STACK} and aws:ResourceTag/lifeboat:home-region \
                             = {REGION} (never another deployment's snapshot)",
                            statement.place
                        );
                        seen.push((action, "source"));
                    } else if resource.eq_ignore_ascii_case(&target) {
                        let on_tags: Vec<String> = statement
                            .condition_entries("StringEquals")
                            .into_iter()
                            .map(|(key, _)| key)
                            .filter(|key| resource_tag_of(key).is_some())
                            .collect();
                        assert!(
                            on_tags.is_empty(),
                            "{}: {action} on the target {resource} under resource-tag conditions {on_tags:?}: a \
                             copy being created has no tags, so the copy would be denied (give targets their own \
                             statement)",
                            statement.place
                        );
                        seen.push((action, "target"));
                    } else {
                        panic!(
                            "{}: {action} on {resource}: only sources {source} (with this deployment's tags) and \
                             targets {target} (this deployment's copy names) are allowed",
                            statement.place
                        );
                    }
                }
            }
        }
    }
    for action in ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot"] {
        for end in ["source", "target"] {
            assert!(
                seen.contains(&(action, end)),
                "no Allow of {action} on its {end} snapshot left (the copy function must still copy)"
            );
        }
    }
}

/// The calls to global control planes the region fence lets out of this stack's regions (the failover function's
/// Route 53 calls and its reads of Route 53 health-check alarms, both in us-east-1), and only into us-east-1.
const GLOBAL_CALLS: [&str; 4] = [
    "route53:ListResourceRecordSets",
    "route53:ChangeResourceRecordSets",
    "route53:GetChange",
    "cloudwatch:DescribeAlarms",
];

#[test]
fn every_role_is_denied_other_regions() {
    let template = load(TEMPLATE);
    for (id, statements) in roles(&template) {
        let in_own_regions = |s: &Statement<'_>| {
            let regions = s.condition("StringNotEquals", "aws:RequestedRegion");
            let joined = regions.join(" ");
            joined.contains(REGION) && joined.contains("DrRegions")
        };
        let fenced = statements.iter().any(|s| {
            let all_but_global = values(s.body.get("Action")) == ["*"]
                || (s.body.get("Action").is_none()
                    && values(s.body.get("NotAction"))
                        .iter()
                        .all(|a| GLOBAL_CALLS.contains(&a.as_str())));
            // Everything else stays in this stack's regions: us-east-1 is not one of them unless it is a
            // DrRegions value or the stack's own region.
            let regions = s
                .condition("StringNotEquals", "aws:RequestedRegion")
                .join(" ");
            s.is_deny()
                && all_but_global
                && s.resources().iter().any(|r| r == "*")
                && in_own_regions(s)
                && !regions.contains("us-east-1")
        });
        assert!(
            fenced,
            "{id} role: no Deny of Action \"*\" (or NotAction of no more than {GLOBAL_CALLS:?}) on Resource \"*\" \
             with StringNotEquals aws:RequestedRegion = [{REGION}, the DrRegions parameter]"
        );
        for call in GLOBAL_CALLS {
            let exempted = statements.iter().any(|s| {
                s.is_deny()
                    && s.body.get("NotAction").is_some()
                    && !s.covers(call)
                    && in_own_regions(s)
            });
            if !exempted {
                continue;
            }
            let fenced = statements.iter().any(|s| {
                s.is_deny()
                    && s.covers(call)
                    && s.resources().iter().any(|r| r == "*")
                    && in_own_regions(s)
                    && s.condition("StringNotEquals", "aws:RequestedRegion")
                        .join(" ")
                        .contains("us-east-1")
            });
            assert!(
                fenced,
                "{id} role: {call} is exempted from the region fence but no Deny keeps it to [{REGION}, \
                 us-east-1, the DrRegions parameter]"
            );
        }
    }
}

/// The actions that create a database from a recovery point (and the Aurora restore's instance).
const RESTORE_ACTIONS: [&str; 5] = [
    "rds:RestoreDBInstanceFromDBSnapshot",
    "rds:RestoreDBClusterFromSnapshot",
    "rds:RestoreDBInstanceToPointInTime",
    "rds:RestoreDBClusterToPointInTime",
    "rds:CreateDBInstance",
];

#[test]
fn drill_databases_are_created_and_destroyed_only_with_drill_tags() {
    let template = load(TEMPLATE);
    let mut seen_create = false;
    let mut seen_destroy = false;
    for (id, statements) in roles(&template) {
        for statement in statements.iter().filter(|s| s.is_allow()) {
            let on_databases = statement.resources().iter().any(|r| may_name_database(r));
            for action in RESTORE_ACTIONS {
                if !statement.covers(action) {
                    continue;
                }
                for resource in statement.resources() {
                    if resource.contains(":subgrp:") {
                        let failover_network = id == "FailoverFunction"
                            && resource.ends_with(":subgrp:${FailoverSubnetGroupName}");
                        assert!(
                            resource.ends_with(":subgrp:${DrillSubnetGroupName}")
                                || failover_network,
                            "{}: {action} may use subnet group {resource}; only \
                             subgrp:${{DrillSubnetGroupName}} (and for the failover role \
                             subgrp:${{FailoverSubnetGroupName}}) is allowed",
                            statement.place
                        );
                    }
                }
                // The restore role's databases carry the restore tag instead: see
                // restored_databases_are_created_modified_snapshotted_and_deleted_only_with_restore_tags; the
                // failover role's the failover marker: see
                // failover::the_failover_role_restores_only_its_own_names_with_this_deployments_tags.
                if !on_databases || id == "RestoreFunction" || id == "FailoverFunction" {
                    continue;
                }
                seen_create |= id == "VerifyFunction";
                assert_eq!(
                    statement.condition("Null", "aws:RequestTag/lifeboat:drill"),
                    ["false"],
                    "{}: {action} of a DB instance or cluster lacks the condition Null \
                     aws:RequestTag/lifeboat:drill = \"false\" (the new database must carry the drill tag)",
                    statement.place
                );
                assert_eq!(
                    statement.condition("StringEquals", "aws:RequestTag/lifeboat:deployment"),
                    [STACK],
                    "{}: {action} of a DB instance or cluster lacks the condition StringEquals \
                     aws:RequestTag/lifeboat:deployment = {STACK}",
                    statement.place
                );
            }
            for action in [
                "rds:ModifyDBInstance",
                "rds:ModifyDBCluster",
                "rds:DeleteDBInstance",
                "rds:DeleteDBCluster",
            ] {
                if !statement.covers(action)
                    || !on_databases
                    || id == "RestoreFunction"
                    || id == "FailoverFunction"
                {
                    continue;
                }
                seen_destroy |= id == "VerifyFunction";
                let drill = resource_tag_keys("lifeboat:drill", &["db", "cluster"]);
                let deployment = resource_tag_keys("lifeboat:deployment", &["db", "cluster"]);
                assert_eq!(
                    statement.condition_any("Null", &drill),
                    ["false"],
                    "{}: {action} lacks the condition Null aws:ResourceTag/lifeboat:drill = \"false\" (only drill \
                     databases may be modified or deleted)",
                    statement.place
                );
                assert_eq!(
                    statement.condition_any("StringEquals", &deployment),
                    [STACK],
                    "{}: {action} lacks the condition StringEquals aws:ResourceTag/lifeboat:deployment = {STACK}",
                    statement.place
                );
            }
        }
    }
    assert!(
        seen_create && seen_destroy,
        "VerifyFunction role: no Allow left to restore (seen: {seen_create}) or to modify and delete (seen: \
         {seen_destroy}) drill databases"
    );
}

/// The actions that change, snapshot or delete an existing database (or its members' state).
const EXISTING_DATABASE_ACTIONS: [&str; 15] = [
    "rds:ModifyDBInstance",
    "rds:ModifyDBCluster",
    "rds:CreateDBSnapshot",
    "rds:CreateDBClusterSnapshot",
    "rds:DeleteDBInstance",
    "rds:DeleteDBCluster",
    "rds:RebootDBInstance",
    "rds:RebootDBCluster",
    "rds:StopDBInstance",
    "rds:StopDBCluster",
    "rds:StartDBInstance",
    "rds:StartDBCluster",
    "rds:FailoverDBCluster",
    "rds:PromoteReadReplica",
    "rds:RemoveTagsFromResource",
];

/// The restore function's role, with all its statements.
fn restore_role(template: &Value) -> Vec<Statement<'_>> {
    roles(template)
        .into_iter()
        .find(|(id, _)| id == "RestoreFunction")
        .map(|(_, statements)| statements)
        .expect("the template defines RestoreFunction")
}

/// Ad-hoc restores have operator-chosen names, so their fence is their tags: a restored database is born with
/// `lifeboat:restore` and this deployment's identity, and only databases carrying them are modified (the master
/// password), snapshotted (the final snapshot) or deleted. Databases the policy backs up are out of reach whatever
/// the Allows say, since tagging a database being created cannot be told from tagging an untagged existing one.
#[test]
fn restored_databases_are_created_modified_snapshotted_and_deleted_only_with_restore_tags() {
    let template = load(TEMPLATE);
    let statements = restore_role(&template);
    let families = ["db", "cluster"];
    let mut seen: Vec<&str> = Vec::new();
    for statement in statements.iter().filter(|s| s.is_allow()) {
        if !statement.resources().iter().any(|r| may_name_database(r)) {
            continue;
        }
        for action in RESTORE_ACTIONS {
            if !statement.covers(action) {
                continue;
            }
            seen.push(action);
            assert_eq!(
                statement.condition("Null", "aws:RequestTag/lifeboat:restore"),
                ["false"],
                "{}: {action} of a DB instance or cluster lacks the condition Null \
                 aws:RequestTag/lifeboat:restore = \"false\" (the new database must carry the restore tag)",
                statement.place
            );
            for (tag, expected) in [
                ("lifeboat:deployment", STACK),
                ("lifeboat:home-region", REGION),
            ] {
                assert_eq!(
                    statement.condition("StringEquals", &format!("aws:RequestTag/{tag}")),
                    [expected],
                    "{}: {action} of a DB instance or cluster lacks the condition StringEquals \
                     aws:RequestTag/{tag} = {expected}",
                    statement.place
                );
            }
        }
        for action in EXISTING_DATABASE_ACTIONS
            .iter()
            .copied()
            .chain(["rds:AddTagsToResource"])
        {
            if !statement.covers(action) {
                continue;
            }
            // By name too: tags alone cannot tell a database being restored from an existing one without
            // Lifeboat tags, so only lbrestore-* databases may be changed, snapshotted, deleted or tagged.
            for resource in statement
                .resources()
                .iter()
                .filter(|r| may_name_database(r))
            {
                assert!(
                    resource.ends_with(":db:lbrestore-*")
                        || resource.ends_with(":cluster:lbrestore-*"),
                    "{}: {action} on {resource}: the restore role may change, snapshot, delete or tag only \
                     lbrestore-* databases",
                    statement.place
                );
            }
            if action == "rds:AddTagsToResource" {
                continue;
            }
            seen.push(action);
            let restore = resource_tag_keys("lifeboat:restore", &families);
            assert_eq!(
                statement.condition_any("Null", &restore),
                ["false"],
                "{}: {action} on a DB instance or cluster lacks the condition Null \
                 aws:ResourceTag/lifeboat:restore = \"false\" (only restored databases may be modified, \
                 snapshotted or deleted by the restore role)",
                statement.place
            );
            for (tag, expected) in [
                ("lifeboat:deployment", STACK),
                ("lifeboat:home-region", REGION),
            ] {
                let keys = resource_tag_keys(tag, &families);
                assert_eq!(
                    statement.condition_any("StringEquals", &keys),
                    [expected],
                    "{}: {action} on a DB instance or cluster lacks the condition StringEquals {} = {expected}",
                    statement.place,
                    keys[0]
                );
            }
        }
        // A restore is never born with the policy's selection tag (it would be backed up as production).
        if statement.covers("rds:AddTagsToResource") {
            let keys = statement.condition("ForAllValues:StringEquals", "aws:TagKeys");
            let never_backup = statement.condition("Null", "aws:RequestTag/lifeboat:backup")
                == ["true"]
                || (!keys.is_empty() && !keys.iter().any(|k| k == "lifeboat:backup"));
            assert!(
                never_backup,
                "{}: the Allow of rds:AddTagsToResource on databases may write lifeboat:backup; it needs Null \
                 aws:RequestTag/lifeboat:backup = \"true\" (or ForAllValues:StringEquals aws:TagKeys without it)",
                statement.place
            );
        }
    }
    for action in RESTORE_ACTIONS
        .iter()
        .chain(&EXISTING_DATABASE_ACTIONS[..6])
    {
        assert!(
            seen.contains(action),
            "RestoreFunction role: no Allow of {action} on restored databases left (the restore function needs it)"
        );
    }
    // Databases the policy backs up (the default plan selects lifeboat:backup=true) are never changed, deleted or
    // tagged by the restore role.
    for action in [
        "rds:ModifyDBInstance",
        "rds:ModifyDBCluster",
        "rds:DeleteDBInstance",
        "rds:DeleteDBCluster",
        "rds:AddTagsToResource",
        "rds:RemoveTagsFromResource",
    ] {
        let denied = statements.iter().any(|s| {
            s.is_deny()
                && s.covers(action)
                && s.resources()
                    .iter()
                    .any(|r| r.ends_with(":db:*") || r == "*")
                && s.resources()
                    .iter()
                    .any(|r| r.ends_with(":cluster:*") || r == "*")
                && s.condition_any("Null", &resource_tag_keys("lifeboat:backup", &families))
                    == ["false"]
        });
        assert!(
            denied,
            "RestoreFunction role: no Deny of {action} on db:* and cluster:* while the database carries \
             lifeboat:backup (Condition Null aws:ResourceTag/lifeboat:backup = \"false\")"
        );
    }
}

/// The restore role keeps what it restored: before deleting an expired restore it takes a final snapshot, born as
/// this deployment's (so retention manages it like any other), and it deletes no snapshot or automated backup.
#[test]
fn the_restore_role_takes_own_final_snapshots_and_deletes_no_snapshot() {
    let template = load(TEMPLATE);
    let statements = restore_role(&template);
    let allows: Vec<&Statement<'_>> = statements.iter().filter(|s| s.is_allow()).collect();
    for action in [
        "rds:DeleteDBSnapshot",
        "rds:DeleteDBClusterSnapshot",
        "rds:DeleteDBInstanceAutomatedBackup",
        "rds:DeleteDBClusterAutomatedBackup",
    ] {
        let allowed: Vec<&str> = allows
            .iter()
            .filter(|s| s.covers(action))
            .map(|s| s.place.as_str())
            .collect();
        assert!(
            allowed.is_empty(),
            "RestoreFunction role: {action} is allowed by {allowed:?}; the restore function deletes no snapshot \
             or backup (retention does)"
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for (action, family) in [
        ("rds:CreateDBSnapshot", "snapshot"),
        ("rds:CreateDBClusterSnapshot", "cluster-snapshot"),
    ] {
        for statement in allows.iter().filter(|s| s.covers(action)) {
            let on_snapshots: Vec<String> = statement
                .resources()
                .into_iter()
                .filter(|r| !names_only_databases(r))
                .collect();
            if on_snapshots.is_empty() {
                continue;
            }
            for resource in &on_snapshots {
                assert!(
                    resource.contains(":snapshot:lifeboat-")
                        || resource.contains(":cluster-snapshot:lifeboat-"),
                    "{}: {action} may create the snapshot {resource}; final snapshots are Lifeboat-named only \
                     (snapshot:lifeboat-..., cluster-snapshot:lifeboat-...)",
                    statement.place
                );
            }
            assert!(
                stamps_own_identity(statement),
                "{}: {action} of a final snapshot must require StringEquals aws:RequestTag/lifeboat:managed = \
                 true, aws:RequestTag/lifeboat:deployment = {STACK} and aws:RequestTag/lifeboat:home-region = \
                 {REGION} (born as this deployment's, so retention manages it)",
                statement.place
            );
            if on_snapshots
                .iter()
                .any(|r| r.contains(&format!(":{family}:lifeboat-")))
            {
                seen.push(action);
            }
        }
    }
    for action in ["rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot"] {
        assert!(
            seen.contains(&action),
            "RestoreFunction role: no Allow of {action} on its final snapshot (lifeboat-*) left: an expired restore \
             could not be snapshotted before it is deleted"
        );
    }
}

#[test]
fn kms_grants_and_rds_key_use_are_conditioned() {
    let template = load(TEMPLATE);
    for (_, statements) in roles(&template) {
        for statement in statements.iter().filter(|s| s.is_allow()) {
            if statement.covers("kms:CreateGrant") {
                assert_eq!(
                    statement.condition("Bool", "kms:GrantIsForAWSResource"),
                    ["true"],
                    "{}: the Allow of kms:CreateGrant lacks the condition Bool kms:GrantIsForAWSResource = true",
                    statement.place
                );
            }
            let any_key = statement.resources().iter().any(|r| r.contains(":key/*"));
            let uses_keys = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"]
                .iter()
                .any(|a| statement.covers(a));
            if !(any_key && uses_keys) {
                continue;
            }
            let dr_keys = !statement
                .condition("ForAnyValue:StringEquals", "kms:ResourceAliases")
                .is_empty();
            let primary_keys_through_rds = statement.condition("StringEquals", "kms:ViaService")
                == [format!("rds.{REGION}.amazonaws.com")]
                && statement.condition("StringEquals", "kms:CallerAccount")
                    == ["${AWS::AccountId}"];
            assert!(
                dr_keys || primary_keys_through_rds,
                "{}: KMS keys named by a wildcard need either ForAnyValue:StringEquals kms:ResourceAliases (the \
                 policy's DR keys) or StringEquals kms:ViaService = rds.{REGION}.amazonaws.com and \
                 kms:CallerAccount = ${{AWS::AccountId}} (the databases' keys in the primary region)",
                statement.place
            );
        }
    }
}

#[test]
fn ledger_records_are_locked_and_roles_cannot_unlock_them() {
    let template = load(TEMPLATE);
    let bucket = template
        .get("Resources")
        .and_then(|r| r.get("LedgerBucket"))
        .and_then(|b| b.get("Properties"))
        .expect("LedgerBucket with Properties");
    assert_eq!(
        values(bucket.get("ObjectLockEnabled")),
        ["true"],
        "LedgerBucket: ObjectLockEnabled is not true"
    );
    let lock = bucket
        .get("ObjectLockConfiguration")
        .expect("LedgerBucket: no ObjectLockConfiguration");
    assert_eq!(
        values(lock.get("ObjectLockEnabled")),
        ["Enabled"],
        "LedgerBucket: ObjectLockConfiguration.ObjectLockEnabled is not Enabled"
    );
    let retention = lock
        .get("Rule")
        .and_then(|r| r.get("DefaultRetention"))
        .expect("LedgerBucket: ObjectLockConfiguration has no Rule.DefaultRetention");
    assert_eq!(
        values(retention.get("Days")),
        ["${LedgerRetentionDays}"],
        "LedgerBucket: the default retention is not !Ref LedgerRetentionDays days"
    );
    assert_eq!(
        values(retention.get("Mode")),
        ["${LedgerLockMode}"],
        "LedgerBucket: the default retention mode is not !Ref LedgerLockMode"
    );
    let mode = template
        .get("Parameters")
        .and_then(|p| p.get("LedgerLockMode"))
        .expect("no LedgerLockMode parameter");
    assert_eq!(
        values(mode.get("AllowedValues")),
        ["COMPLIANCE", "GOVERNANCE"],
        "LedgerLockMode: AllowedValues must be COMPLIANCE, GOVERNANCE"
    );
    assert_eq!(
        values(mode.get("Default")),
        ["COMPLIANCE"],
        "LedgerLockMode: the default must be COMPLIANCE"
    );

    for (id, statements) in roles(&template) {
        for action in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
            "s3:BypassGovernanceRetention",
        ] {
            let denied = statements.iter().any(|s| {
                s.is_deny()
                    && s.covers(action)
                    && s.body.get("Condition").is_none()
                    && s.resources().iter().any(|r| r == "*")
            });
            assert!(
                denied,
                "{id} role: no unconditional Deny of {action} on Resource \"*\" (the ledger must stay tamper-evident)"
            );
        }
    }
}

/// Every policy statement anywhere under `value` that names a service principal, as (resource id, statement).
fn service_principal_statements<'a>(
    id: &str,
    value: &'a Value,
    out: &mut Vec<(String, &'a Value)>,
) {
    match value {
        Value::Mapping(map) => {
            if value
                .get("Principal")
                .and_then(|p| p.get("Service"))
                .is_some()
            {
                out.push((id.to_string(), value));
            }
            for child in map.values() {
                service_principal_statements(id, child, out);
            }
        }
        Value::Sequence(items) => {
            for child in items {
                service_principal_statements(id, child, out);
            }
        }
        Value::Tagged(tagged) => service_principal_statements(id, &tagged.value, out),
        _ => {}
    }
}

#[test]
fn service_principals_are_tied_to_this_account() {
    let mut checked = 0;
    for path in [TEMPLATE, DR_EVENTS] {
        let template = load(path);
        let Some(Value::Mapping(resources)) = template.get("Resources") else {
            panic!("{path} has no Resources");
        };
        for (id, resource) in resources {
            let mut found = Vec::new();
            service_principal_statements(&render(id), resource, &mut found);
            for (id, statement) in found {
                checked += 1;
                let services = values(statement.get("Principal").and_then(|p| p.get("Service")));
                let sid = values(statement.get("Sid")).join("");
                let statement = Statement {
                    place: format!("{path}: {id}, statement {sid:?}"),
                    body: statement,
                };
                assert_eq!(
                    statement.condition("StringEquals", "aws:SourceAccount"),
                    ["${AWS::AccountId}"],
                    "{}: service principal {services:?} without the condition StringEquals aws:SourceAccount = \
                     ${{AWS::AccountId}} (confused deputy)",
                    statement.place
                );
                let source_arns: Vec<String> = ["ArnLike", "ArnEquals"]
                    .iter()
                    .flat_map(|operator| statement.condition(operator, "aws:SourceArn"))
                    .collect();
                assert!(
                    !source_arns.is_empty()
                        && source_arns.iter().all(|arn| {
                            arn.starts_with("arn:${AWS::Partition}:")
                                && arn.contains(":${AWS::AccountId}:")
                        }),
                    "{}: service principal {services:?} without the condition ArnLike (or ArnEquals) \
                     aws:SourceArn = arn:${{AWS::Partition}}:<service>:<region>:${{AWS::AccountId}}:<this stack's \
                     resources> (confused deputy: only on behalf of this deployment's own resources; found \
                     {source_arns:?})",
                    statement.place
                );
            }
        }
    }
    assert!(
        checked >= 3,
        "expected the key policy, the DLQ policy and the DR forwarder's trust policy to name service principals"
    );
}

#[test]
fn role_arns_are_outputs_for_dr_key_policies() {
    let template = load(TEMPLATE);
    let outputs = template
        .get("Outputs")
        .expect("the template has no Outputs");
    let Value::Mapping(outputs) = outputs else {
        panic!("Outputs is not a mapping");
    };
    for function in [
        "CopyFunction",
        "VerifyFunction",
        "RetentionFunction",
        "RestoreFunction",
        "FailoverFunction",
    ] {
        let expected = format!("${{{function}Role.Arn}}");
        let output = outputs
            .values()
            .find(|o| values(o.get("Value")) == [expected.as_str()]);
        let Some(output) = output else {
            panic!("Outputs: nothing exports !GetAtt {function}Role.Arn");
        };
        let description = values(output.get("Description")).join(" ");
        assert!(
            description.contains("kms:CreateGrant"),
            "Outputs: the description of {function}Role.Arn must say the DR-region key policy must allow it \
             kms:CreateGrant and friends (is {description:?})"
        );
    }
}

#[test]
fn functions_know_their_deployment() {
    let template = load(TEMPLATE);
    let variable = template
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("LIFEBOAT_DEPLOYMENT"));
    assert_eq!(
        values(variable),
        [STACK],
        "Globals.Function.Environment.Variables.LIFEBOAT_DEPLOYMENT must be !Ref AWS::StackName"
    );
}

#[test]
fn functions_know_the_dr_regions() {
    let template = load(TEMPLATE);
    let variable = template
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("LIFEBOAT_DR_REGIONS"));
    let joined = match variable {
        Some(Value::Tagged(tagged)) if tagged.tag == "Join" => Some(&tagged.value),
        Some(other) => other.get("Fn::Join"),
        None => None,
    };
    let parts = joined.and_then(Value::as_sequence).map(|p| {
        p.iter()
            .map(|v| (matches!(v, Value::Tagged(_)), render(v)))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        parts,
        Some(vec![
            (false, ",".to_string()),
            (true, "${DrRegions}".to_string())
        ]),
        "Globals.Function.Environment.Variables.LIFEBOAT_DR_REGIONS must be !Join [\",\", !Ref DrRegions] (the \
         functions check the policy's copy regions against it and retention lists every one of them)"
    );
}

#[test]
fn glob_and_arn_helpers() {
    assert!(glob("rds:Delete*", "rds:DeleteDBSnapshot"));
    assert!(glob("*", "kms:CreateGrant"));
    assert!(!glob("rds:Describe*", "rds:DeleteDBSnapshot"));
    assert!(may_name_database(
        "arn:${AWS::Partition}:rds:*:${AWS::AccountId}:db:lbdrill-*"
    ));
    assert!(may_name_database("*"));
    assert!(may_name_database(
        "arn:${AWS::Partition}:rds:*:${AWS::AccountId}:*"
    ));
    assert!(may_name_database("arn:aws:rds:*"));
    assert!(!may_name_database(
        "arn:${AWS::Partition}:rds:*:${AWS::AccountId}:cluster-snapshot:lbdrill-*"
    ));
    assert!(!may_name_database(
        "arn:${AWS::Partition}:rds:*:${AWS::AccountId}:subgrp:${DrillSubnetGroupName}"
    ));
    assert!(names_only_databases(
        "arn:${AWS::Partition}:rds:*:${AWS::AccountId}:cluster:*"
    ));
    assert!(!names_only_databases("*"));
    assert!(!names_only_databases(
        "arn:${AWS::Partition}:rds:*:${AWS::AccountId}:*"
    ));
    assert!(!names_only_databases(
        "arn:${AWS::Partition}:rds:*:${AWS::AccountId}:cluster-snapshot:lifeboat-*"
    ));
}

/// The monitor reads; it never changes a database, a snapshot or a tag, nor writes outside its own prefixes.
#[test]
fn the_monitor_is_read_only() {
    let template = load(TEMPLATE);
    let functions = functions(&template);
    let (id, function) = functions
        .iter()
        .find(|(id, _)| id == "MonitorFunction")
        .expect("the template defines MonitorFunction");
    let statements = role_statements(&template, id, function);
    let allows: Vec<&Statement<'_>> = statements.iter().filter(|s| s.is_allow()).collect();
    for statement in &allows {
        for action in values(statement.body.get("Action")) {
            let service = action.split(':').next().unwrap_or_default();
            if service.eq_ignore_ascii_case("rds") {
                let verb = action.split(':').nth(1).unwrap_or_default();
                assert!(
                    verb.starts_with("Describe") && !verb.contains('*'),
                    "{}: allows {action}; the monitor may only describe RDS (one named Describe action each)",
                    statement.place
                );
            }
        }
        assert!(
            statement.body.get("NotAction").is_none(),
            "{}: an Allow with NotAction",
            statement.place
        );
    }
    // No RDS write action is allowed by any statement, whatever its pattern.
    for action in [
        "rds:CreateDBSnapshot",
        "rds:CreateDBClusterSnapshot",
        "rds:CopyDBSnapshot",
        "rds:DeleteDBSnapshot",
        "rds:DeleteDBClusterSnapshot",
        "rds:DeleteDBInstance",
        "rds:ModifyDBInstance",
        "rds:AddTagsToResource",
        "rds:RemoveTagsFromResource",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:StartDBInstanceAutomatedBackupsReplication",
    ] {
        assert!(
            !allows.iter().any(|s| s.covers(action)),
            "MonitorFunction role allows {action}"
        );
    }
    for action in [
        "rds:DescribeAccountAttributes",
        "rds:DescribeDBInstanceAutomatedBackups",
        "cloudwatch:GetMetricData",
    ] {
        assert!(
            allows.iter().any(|s| s.covers(action)),
            "MonitorFunction role does not allow {action}"
        );
    }
    // S3 writes only under monitor/ and reports/ of the reports bucket (never the Object-Locked ledger bucket,
    // which would keep every 15-minute version for years); reads of the ledger only under ledger/.
    for statement in allows.iter().filter(|s| s.covers("s3:PutObject")) {
        for resource in statement.resources() {
            assert!(
                resource.starts_with("${ReportsBucket.Arn}/")
                    && (resource.ends_with("/monitor/*") || resource.ends_with("/reports/*")),
                "{}: s3:PutObject on {resource}; the monitor writes only monitor/ and reports/ of the reports bucket",
                statement.place
            );
        }
    }
    let s3_actions: Vec<String> = allows
        .iter()
        .flat_map(|s| values(s.body.get("Action")))
        .filter(|a| a.starts_with("s3:"))
        .collect();
    for action in &s3_actions {
        assert!(
            ["s3:GetObject", "s3:PutObject", "s3:ListBucket"].contains(&action.as_str()),
            "MonitorFunction role allows {action}"
        );
    }
    // It may list its own state prefix: without ListBucket, S3 answers a GET of the missing first state 403, not
    // 404, and the first run of a new stack would fail.
    assert!(
        allows.iter().any(|s| s.covers("s3:ListBucket")
            && s.resources() == ["${ReportsBucket.Arn}"]
            && s.body
                .get("Condition")
                .and_then(|c| c.get("StringLike"))
                .and_then(|c| c.get("s3:prefix"))
                .is_some_and(|p| values(Some(p)) == ["monitor/*"])),
        "MonitorFunction role lists the reports bucket's monitor/ prefix"
    );
}

/// Reconcilers whose runs must not overlap (they plan from what they list, then act) run one at a time.
#[test]
fn reconcilers_run_one_at_a_time() {
    let template = load(TEMPLATE);
    let one_at_a_time = [
        "SnapshotFunction",
        "CopyFunction",
        "RetentionFunction",
        "VerifyFunction",
        "RestoreFunction",
        "FailoverFunction",
    ];
    let functions = functions(&template);
    for id in one_at_a_time {
        let (_, function) = functions
            .iter()
            .find(|(found, _)| found == id)
            .unwrap_or_else(|| panic!("the template has no {id}"));
        let reserved = function
            .get("Properties")
            .and_then(|p| p.get("ReservedConcurrentExecutions"));
        assert_eq!(
            values(reserved),
            ["1"],
            "{id}: ReservedConcurrentExecutions: 1"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Alarms, dashboard and the alert subscription (docs/monitoring.md)
// ---------------------------------------------------------------------------------------------------------------

/// The template's CloudWatch alarms: logical id and properties.
fn alarms(template: &Value) -> Vec<(String, &Value)> {
    let Some(Value::Mapping(resources)) = template.get("Resources") else {
        panic!("the template has no Resources");
    };
    resources
        .iter()
        .filter(|(_, r)| values(r.get("Type")) == ["AWS::CloudWatch::Alarm"])
        .map(|(id, r)| {
            let properties = r
                .get("Properties")
                .unwrap_or_else(|| panic!("alarm {} has no Properties", render(id)));
            (render(id), properties)
        })
        .collect()
}

/// Whether `alarm` watches `namespace`/`metric` with dimension `name` = `value` (a plain alarm, or one of the
/// `MetricStat` queries of a math alarm), or a Metrics Insights query over `metric` of every function of the
/// namespace without a filter on `name` (covering them all).
fn alarm_watches(alarm: &Value, namespace: &str, metric: &str, name: &str, value: &str) -> bool {
    let has_dimension = |dimensions: Option<&Value>| {
        matches!(dimensions, Some(Value::Sequence(ds)) if ds.iter().any(|d| {
            values(d.get("Name")) == [name] && values(d.get("Value")) == [value]
        }))
    };
    let plain = values(alarm.get("Namespace")) == [namespace]
        && values(alarm.get("MetricName")) == [metric]
        && has_dimension(alarm.get("Dimensions"));
    let queries = match alarm.get("Metrics") {
        Some(Value::Sequence(queries)) => queries.as_slice(),
        _ => &[],
    };
    let in_math = queries.iter().any(|q| {
        let Some(m) = q.get("MetricStat").and_then(|s| s.get("Metric")) else {
            return false;
        };
        values(m.get("Namespace")) == [namespace]
            && values(m.get("MetricName")) == [metric]
            && has_dimension(m.get("Dimensions"))
    });
    let insights = queries.iter().any(|q| {
        let expression = values(q.get("Expression")).join(" ");
        expression.contains(&format!("({metric})"))
            && expression.contains(namespace)
            && !expression.contains("WHERE")
    });
    plain || in_math || insights
}

#[test]
fn every_function_has_an_errors_and_a_throttles_alarm() {
    let template = load(TEMPLATE);
    let alarms = alarms(&template);
    for (id, _) in functions(&template) {
        let function = format!("${{{id}}}");
        for metric in ["Errors", "Throttles"] {
            assert!(
                alarms.iter().any(|(_, a)| alarm_watches(
                    a,
                    "AWS/Lambda",
                    metric,
                    "FunctionName",
                    &function
                )),
                "{id}: no alarm on its AWS/Lambda {metric} (one per function, or one over all functions)"
            );
        }
    }
}

#[test]
fn the_dead_letter_queue_has_an_alarm() {
    let template = load(TEMPLATE);
    let found = alarms(&template).into_iter().find(|(_, a)| {
        alarm_watches(
            a,
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            "${DeadLetterQueue.QueueName}",
        )
    });
    let Some((id, alarm)) = found else {
        panic!("no alarm on the dead-letter queue's ApproximateNumberOfMessagesVisible");
    };
    assert_eq!(values(alarm.get("Threshold")), ["0"], "{id}: any message");
    assert_eq!(
        values(alarm.get("ComparisonOperator")),
        ["GreaterThanThreshold"],
        "{id}: any message"
    );
}

#[test]
fn every_alarm_tells_the_alert_topic_both_ways_and_what_to_do() {
    let template = load(TEMPLATE);
    let alarms = alarms(&template);
    assert!(!alarms.is_empty(), "the template defines no alarm");
    for (id, alarm) in alarms {
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(
                values(alarm.get(actions)),
                ["${AlertTopic}"],
                "{id}: {actions} must be the alert topic (an alarm nobody hears of, or whose clearing is \
                 never announced, is half an alarm)"
            );
        }
        let treat = values(alarm.get("TreatMissingData"));
        assert!(
            matches!(
                treat.as_slice(),
                [t] if ["breaching", "notBreaching", "ignore", "missing"].contains(&t.as_str())
            ),
            "{id}: TreatMissingData must be chosen, not left to the default (is {treat:?})"
        );
        let description = values(alarm.get("AlarmDescription")).join(" ");
        assert!(
            description.len() > 80,
            "{id}: AlarmDescription must say what the on-call person should do next (is {description:?})"
        );
        let name = values(alarm.get("AlarmName")).join("");
        assert!(
            name.starts_with(STACK),
            "{id}: AlarmName must start with the stack name (is {name:?})"
        );
    }
}

#[test]
fn the_monitor_alarms_exist() {
    let template = load(TEMPLATE);
    let names: Vec<String> = alarms(&template)
        .iter()
        .map(|(_, a)| values(a.get("AlarmName")).join(""))
        .collect();
    for suffix in [
        "-rpo-breached",
        "-monitor-not-running",
        "-snapshot-quota",
        "-drill-evidence-stale",
        "-dead-letters",
    ] {
        assert!(
            names.iter().any(|n| n == &format!("{STACK}{suffix}")),
            "no alarm {STACK}{suffix} (docs/monitoring.md describes it); alarms: {names:?}"
        );
    }
}

/// Seconds of a policy duration such as `7d`, `12h`, `30m`.
fn duration_seconds(text: &str) -> u64 {
    let (number, unit) = text.split_at(text.len() - 1);
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("not a duration: {text}"));
    number
        * match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => panic!("not a duration: {text}"),
        }
}

#[test]
fn the_drill_evidence_alarm_defaults_to_the_policys_cadence_plus_a_day() {
    let template = load(TEMPLATE);
    let policy = load(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/policy.yaml"));
    let Some(Value::Sequence(plans)) = policy.get("plans") else {
        panic!("infra/policy.yaml has no plans");
    };
    let every = plans
        .iter()
        .filter_map(|p| p.get("verification").and_then(|v| v.get("every")))
        .map(|e| duration_seconds(&render(e)))
        .max()
        .expect("the default policy drills no plan");
    let (id, alarm) = alarms(&template)
        .into_iter()
        .find(|(_, a)| {
            values(a.get("AlarmName")).join("") == format!("{STACK}-drill-evidence-stale")
        })
        .expect("no drill-evidence-stale alarm");
    let threshold = values(alarm.get("Threshold")).join("");
    let parameter = threshold
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_else(|| panic!("{id}: Threshold must be a parameter (is {threshold})"));
    let default = template
        .get("Parameters")
        .and_then(|p| p.get(parameter))
        .and_then(|p| p.get("Default"))
        .map(render)
        .unwrap_or_else(|| panic!("{id}: parameter {parameter} has no Default"));
    assert_eq!(
        default,
        (every + 86_400).to_string(),
        "{parameter}: the default policy's verification cadence ({every} s) plus a day"
    );
    let expression = match alarm.get("Metrics") {
        Some(Value::Sequence(q)) => q
            .iter()
            .map(|q| values(q.get("Expression")).join(" "))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    assert!(
        expression.contains("MAX(DrillEvidenceAgeSeconds)"),
        "{id}: the newest drill's age of every database, at its worst (is {expression:?})"
    );
}

#[test]
fn a_deployment_without_subscriber_says_so_loudly() {
    let template = load(TEMPLATE);
    let subscription = template
        .get("Resources")
        .and_then(|r| r.get("AlertEmailSubscription"))
        .expect("no AlertEmailSubscription");
    let condition = values(subscription.get("Condition")).join("");
    let output = template
        .get("Outputs")
        .and_then(|o| o.get("AlertSubscription"))
        .expect("Outputs: no AlertSubscription saying who receives the alerts");
    let Some(Value::Tagged(value)) = output.get("Value") else {
        panic!("AlertSubscription: the value must be !If [{condition}, <who>, <NONE ...>]");
    };
    assert_eq!(
        value.tag, "If",
        "AlertSubscription: the value must be an !If"
    );
    let Value::Sequence(branches) = &value.value else {
        panic!("AlertSubscription: !If takes [condition, then, else]");
    };
    assert_eq!(
        branches.len(),
        3,
        "AlertSubscription: !If [condition, then, else]"
    );
    assert_eq!(
        render(&branches[0]),
        condition,
        "AlertSubscription: decided by the subscription's own condition"
    );
    let none = render(&branches[2]);
    assert!(
        none.starts_with("NONE") && none.contains("${AlertTopic}"),
        "AlertSubscription without an address must start with NONE and name the topic to subscribe to (is {none:?})"
    );
}

#[test]
fn dashboard_metrics_name_the_emitting_function_and_this_deployment() {
    let template = load(TEMPLATE);
    let body = template
        .get("Resources")
        .and_then(|r| r.get("MonitorDashboard"))
        .and_then(|d| d.get("Properties"))
        .and_then(|p| p.get("DashboardBody"))
        .map(render)
        .expect("no MonitorDashboard body");
    // RestoreSeconds (verify and monitor) and others share names across functions: a search without the
    // function draws every function's series at once.
    let searches: Vec<&str> = body.split("SEARCH(").skip(1).collect();
    assert!(
        !searches.is_empty(),
        "the dashboard searches no Lifeboat metric"
    );
    // Two Lifeboat stacks can run in one account and region: every Lifeboat metric carries the Deployment
    // dimension (the stack name), and a search or metric without it draws the other stack's series too.
    let deployment = format!("Deployment=\\\"{STACK}\\\"");
    for search in searches {
        let query = search.split('\'').nth(1).unwrap_or_default();
        assert!(
            query.contains("Function=") || query.contains("Deployment="),
            "dashboard search {query:?} must filter on Function or Deployment"
        );
        let schema = query
            .strip_prefix('{')
            .and_then(|q| q.split('}').next())
            .unwrap_or_default();
        if schema.starts_with("Lifeboat,") {
            assert!(
                schema.split(',').any(|d| d == "Deployment") && query.contains(&deployment),
                "dashboard search {query:?} must have Deployment in its schema and filter on {deployment}"
            );
        }
    }
    let plain: Vec<&str> = body.split("[\"Lifeboat\", ").skip(1).collect();
    for metric in plain {
        let metric = metric.split(']').next().unwrap_or_default();
        assert!(
            metric.contains(&format!("\"Deployment\", \"{STACK}\"")),
            "dashboard metric [\"Lifeboat\", {metric}] must name the Deployment {STACK}"
        );
    }
}

#[test]
fn lifeboat_metric_alarms_watch_only_this_deployment() {
    let template = load(TEMPLATE);
    let is_this_deployment = |dimensions: Option<&Value>| {
        matches!(dimensions, Some(Value::Sequence(ds)) if ds.iter().any(|d| {
            values(d.get("Name")) == ["Deployment"] && values(d.get("Value")) == [STACK]
        }))
    };
    let mut watched = 0;
    for (id, alarm) in alarms(&template) {
        if values(alarm.get("Namespace")) == ["Lifeboat"] {
            watched += 1;
            assert!(
                is_this_deployment(alarm.get("Dimensions")),
                "alarm {id} must watch the Deployment dimension {STACK}"
            );
        }
        let queries = match alarm.get("Metrics") {
            Some(Value::Sequence(queries)) => queries.as_slice(),
            _ => &[],
        };
        for query in queries {
            if let Some(m) = query.get("MetricStat").and_then(|s| s.get("Metric"))
                && values(m.get("Namespace")) == ["Lifeboat"]
            {
                watched += 1;
                assert!(
                    is_this_deployment(m.get("Dimensions")),
                    "alarm {id}: its Lifeboat metric must have the Deployment dimension {STACK}"
                );
            }
            let expression = values(query.get("Expression")).join(" ");
            if let Some(schema) = expression.split("SCHEMA(").nth(1)
                && schema.starts_with("Lifeboat")
            {
                watched += 1;
                let schema = schema.split(')').next().unwrap_or_default();
                assert!(
                    schema.split(',').any(|d| d.trim() == "Deployment")
                        && expression.contains(&format!("Deployment = '{STACK}'")),
                    "alarm {id}: {expression:?} must have Deployment in its schema and filter on Deployment = '{STACK}'"
                );
            }
        }
    }
    assert!(watched >= 4, "the template alarms on no Lifeboat metric");
}
