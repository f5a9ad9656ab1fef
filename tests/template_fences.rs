//! The IAM fences of `infra/template.yaml` (and `infra/dr-region-events.yaml`): what the functions' roles must make
//! impossible whatever the code does. Plain checks of the templates, no emulator: every function role may delete
//! only its own deployment's snapshots and never one under legal hold, may not touch the legal-hold tag, stays in
//! the stack's regions, restores and deletes only tagged drill databases, creates KMS grants only for AWS
//! resources; the ledger is locked; service principals are tied to this account; role ARNs are exported.

use serde_yaml_ng::Value;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
const DR_EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../infra/dr-region-events.yaml"
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

#[test]
fn tag_writes_are_limited_to_lifeboat_keys_or_new_own_snapshots() {
    let template = load(TEMPLATE);
    for (_, statements) in roles(&template) {
        for statement in statements
            .iter()
            .filter(|s| s.is_allow() && s.covers("rds:AddTagsToResource"))
        {
            let lifeboat_keys_only =
                statement.condition("ForAllValues:StringLike", "aws:TagKeys") == ["lifeboat:*"];
            let new_own_resource = statement
                .condition("StringEquals", "aws:RequestTag/lifeboat:deployment")
                == [STACK]
                && statement.condition("StringEquals", "aws:RequestTag/lifeboat:managed")
                    == ["true"];
            assert!(
                lifeboat_keys_only || new_own_resource,
                "{}: the Allow of rds:AddTagsToResource needs either ForAllValues:StringLike aws:TagKeys = \
                 lifeboat:* (tags on existing resources) or StringEquals aws:RequestTag/lifeboat:deployment = \
                 {STACK} and aws:RequestTag/lifeboat:managed = true (tags of a resource being created)",
                statement.place
            );
        }
    }
}

#[test]
fn every_role_is_denied_other_regions() {
    let template = load(TEMPLATE);
    for (id, statements) in roles(&template) {
        let fenced = statements.iter().any(|s| {
            let regions = s
                .condition("StringNotEquals", "aws:RequestedRegion")
                .join(" ");
            s.is_deny()
                && values(s.body.get("Action")) == ["*"]
                && s.resources().iter().any(|r| r == "*")
                && regions.contains(REGION)
                && regions.contains("DrRegions")
        });
        assert!(
            fenced,
            "{id} role: no Deny of Action \"*\" on Resource \"*\" with StringNotEquals aws:RequestedRegion = \
             [{REGION}, the DrRegions parameter]"
        );
    }
}

#[test]
fn drill_databases_are_created_and_destroyed_only_with_drill_tags() {
    let template = load(TEMPLATE);
    let mut seen_create = false;
    let mut seen_destroy = false;
    for (id, statements) in roles(&template) {
        for statement in statements.iter().filter(|s| s.is_allow()) {
            let on_databases = statement.resources().iter().any(|r| may_name_database(r));
            for action in [
                "rds:RestoreDBInstanceFromDBSnapshot",
                "rds:RestoreDBClusterFromSnapshot",
                "rds:CreateDBInstance",
            ] {
                if !statement.covers(action) {
                    continue;
                }
                for resource in statement.resources() {
                    if resource.contains(":subgrp:") {
                        assert!(
                            resource.ends_with(":subgrp:${DrillSubnetGroupName}"),
                            "{}: {action} may use subnet group {resource}; only \
                             subgrp:${{DrillSubnetGroupName}} is allowed",
                            statement.place
                        );
                    }
                }
                if !on_databases {
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
                if !statement.covers(action) || !on_databases {
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
    for function in ["CopyFunction", "VerifyFunction", "RetentionFunction"] {
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
}
