//! A small evaluator of the template's IAM policies, for fence tests that ask "would this request be allowed?"
//! rather than "does this statement have that condition?".
//!
//! [`Env`] resolves the template's intrinsic functions (`!Ref`, `!GetAtt`, `!Sub`, `!Join`, `!Split`, `!Select`,
//! `!If` with the template's own Conditions) for one deployment: parameter values (the template's defaults unless a
//! test sets them), pseudo parameters and the physical names of the stack's resources. [`Role`] holds a function
//! role's statements resolved that way (its inline documents and the managed policies it attaches; SAM policy
//! templates such as `VPCAccessPolicy` are left out) and decides a [`Request`] as IAM does for one identity policy
//! set: an explicit Deny of any resource the request involves wins, else every resource needs an Allow.
//!
//! Supported: Action/NotAction, Resource/NotResource, and the condition operators the template uses
//! (StringEquals, StringNotEquals, StringLike, ArnLike, ArnEquals, Bool, Null, and ForAllValues:/ForAnyValue:
//! StringEquals, StringNotEquals, StringLike). An operator it does not know fails the test, so a new kind of
//! condition cannot silently evaluate as true.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

/// Pseudo parameters and parameter values of one deployment, and the physical ids of the stack's resources.
pub struct Env<'a> {
    template: &'a Value,
    params: BTreeMap<String, Value>,
    refs: BTreeMap<String, String>,
}

impl<'a> Env<'a> {
    /// The deployment `stack` in `region` of account 123456789012 (partition `aws`), with every parameter at its
    /// template default and made-up physical ids for the buckets, topic, key and queue.
    pub fn new(template: &'a Value, stack: &str, region: &str) -> Self {
        let mut params = BTreeMap::new();
        params.insert("AWS::StackName".into(), Value::String(stack.into()));
        params.insert("AWS::Region".into(), Value::String(region.into()));
        params.insert("AWS::AccountId".into(), Value::String(ACCOUNT.into()));
        params.insert("AWS::Partition".into(), Value::String("aws".into()));
        params.insert(
            "AWS::URLSuffix".into(),
            Value::String("amazonaws.com".into()),
        );
        let mut env = Env {
            template,
            params,
            refs: BTreeMap::new(),
        };
        if let Some(Value::Mapping(declared)) = template.get("Parameters") {
            for (name, declaration) in declared {
                let name = scalar(name);
                let default = declaration.get("Default").map(scalar).unwrap_or_default();
                env.set(&name, &[default.as_str()]);
            }
        }
        let key =
            format!("arn:aws:kms:{region}:{ACCOUNT}:key/00000000-1111-2222-3333-444444444444");
        for (id, physical) in [
            ("LedgerBucket", format!("{stack}-ledgerbucket-1a2b3c")),
            ("ReportsBucket", format!("{stack}-reportsbucket-4d5e6f")),
            (
                "AlertTopic",
                format!("arn:aws:sns:{region}:{ACCOUNT}:{stack}-AlertTopic-7g8h"),
            ),
            ("LifeboatKey", key.clone()),
            (
                "DeadLetterQueue",
                format!("https://sqs.{region}.amazonaws.com/{ACCOUNT}/{stack}-dlq"),
            ),
        ] {
            env.refs.insert(id.into(), physical);
        }
        for (attribute, value) in [
            (
                "LedgerBucket.Arn",
                format!("arn:aws:s3:::{stack}-ledgerbucket-1a2b3c"),
            ),
            (
                "ReportsBucket.Arn",
                format!("arn:aws:s3:::{stack}-reportsbucket-4d5e6f"),
            ),
            ("LifeboatKey.Arn", key),
            (
                "DeadLetterQueue.Arn",
                format!("arn:aws:sqs:{region}:{ACCOUNT}:{stack}-dlq"),
            ),
        ] {
            env.refs.insert(attribute.into(), value);
        }
        env
    }

    /// Set parameter `name` (a String parameter takes the first value; a CommaDelimitedList all of them, and
    /// `[""]` is what CloudFormation makes of an empty list).
    pub fn set(&mut self, name: &str, values: &[&str]) -> &mut Self {
        let declared = self
            .template
            .get("Parameters")
            .and_then(|p| p.get(name))
            .unwrap_or_else(|| panic!("the template declares no parameter {name}"));
        let is_list = declared
            .get("Type")
            .map(scalar)
            .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
        let value = if is_list {
            // CloudFormation splits the parameter's text on commas.
            let text = values.join(",");
            Value::Sequence(
                text.split(',')
                    .map(|v| Value::String(v.trim().to_string()))
                    .collect(),
            )
        } else {
            Value::String(values.first().copied().unwrap_or_default().to_string())
        };
        self.params.insert(name.to_string(), value);
        self
    }

    /// The role of the function `id` (an `AWS::Serverless::Function`), its statements resolved.
    pub fn role(&self, id: &str) -> Role {
        let function = self
            .template
            .get("Resources")
            .and_then(|r| r.get(id))
            .unwrap_or_else(|| panic!("the template has no resource {id}"));
        let mut statements = Vec::new();
        let policies = function
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .and_then(Value::as_sequence)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for policy in policies {
            let document = if policy.get("Statement").is_some() {
                Some(policy)
            } else if let Value::Tagged(tagged) = policy
                && tagged.tag == "Ref"
            {
                let name = scalar(&tagged.value);
                self.template
                    .get("Resources")
                    .and_then(|r| r.get(name.as_str()))
                    .filter(|r| {
                        r.get("Type").map(scalar).as_deref() == Some("AWS::IAM::ManagedPolicy")
                    })
                    .and_then(|r| r.get("Properties"))
                    .and_then(|p| p.get("PolicyDocument"))
            } else {
                // A SAM policy template (VPCAccessPolicy): not part of any fence.
                None
            };
            let Some(document) = document.and_then(|d| self.resolve(d)) else {
                continue;
            };
            let bodies = match document.get("Statement") {
                Some(Value::Sequence(items)) => items.clone(),
                Some(single) => vec![single.clone()],
                None => Vec::new(),
            };
            statements.extend(bodies.iter().map(|body| Stmt::parse(id, body)));
        }
        Role {
            id: id.to_string(),
            statements,
        }
    }

    /// Whether the template's condition `name` holds for this deployment.
    pub fn condition(&self, name: &str) -> bool {
        let definition = self
            .template
            .get("Conditions")
            .and_then(|c| c.get(name))
            .unwrap_or_else(|| panic!("the template has no condition {name}"));
        self.truth(definition)
    }

    fn truth(&self, value: &Value) -> bool {
        let Value::Tagged(tagged) = value else {
            panic!("not a condition function: {value:?}");
        };
        let args = || match &tagged.value {
            Value::Sequence(items) => items.clone(),
            other => vec![other.clone()],
        };
        match tagged.tag.to_string().trim_start_matches('!') {
            "Not" => !self.truth(&args()[0]),
            "And" => args().iter().all(|a| self.truth(a)),
            "Or" => args().iter().any(|a| self.truth(a)),
            "Equals" => {
                let args = args();
                self.resolve(&args[0]) == self.resolve(&args[1])
            }
            "Condition" => self.condition(&scalar(&tagged.value)),
            other => panic!("unknown condition function {other}"),
        }
    }

    /// `value` with its intrinsic functions resolved; `None` for `!Ref AWS::NoValue` (and what it removes).
    pub fn resolve(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Sequence(items) => Some(Value::Sequence(
                items.iter().filter_map(|v| self.resolve(v)).collect(),
            )),
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve(v) {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Value::Mapping(out))
            }
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let arg = &tagged.value;
                let list = |v: &Value| -> Vec<Value> {
                    match self.resolve(v) {
                        Some(Value::Sequence(items)) => items,
                        other => panic!("{tag}: expected a list, got {other:?}"),
                    }
                };
                match tag.trim_start_matches('!') {
                    "Ref" => self.reference(&scalar(arg)),
                    "GetAtt" => {
                        let name = match arg {
                            Value::Sequence(parts) => {
                                parts.iter().map(scalar).collect::<Vec<_>>().join(".")
                            }
                            other => scalar(other),
                        };
                        Some(Value::String(self.attribute(&name)))
                    }
                    "Sub" => {
                        let (text, vars) = match arg {
                            Value::Sequence(parts) => (scalar(&parts[0]), parts.get(1)),
                            other => (scalar(other), None),
                        };
                        let mut bound = BTreeMap::new();
                        if let Some(Value::Mapping(vars)) = vars {
                            for (k, v) in vars {
                                let v = self.resolve(v).map(|v| scalar(&v)).unwrap_or_default();
                                bound.insert(scalar(k), v);
                            }
                        }
                        Some(Value::String(self.substitute(&text, &bound)))
                    }
                    "Join" => {
                        let Value::Sequence(parts) = arg else {
                            panic!("Join takes [delimiter, list]");
                        };
                        let delimiter = scalar(&parts[0]);
                        let items: Vec<String> = list(&parts[1]).iter().map(scalar).collect();
                        Some(Value::String(items.join(&delimiter)))
                    }
                    "Split" => {
                        let Value::Sequence(parts) = arg else {
                            panic!("Split takes [delimiter, text]");
                        };
                        let delimiter = scalar(&parts[0]);
                        let text = self
                            .resolve(&parts[1])
                            .map(|v| scalar(&v))
                            .unwrap_or_default();
                        Some(Value::Sequence(
                            text.split(delimiter.as_str())
                                .map(|p| Value::String(p.to_string()))
                                .collect(),
                        ))
                    }
                    "Select" => {
                        let Value::Sequence(parts) = arg else {
                            panic!("Select takes [index, list]");
                        };
                        let index: usize = scalar(&parts[0]).parse().expect("Select index");
                        list(&parts[1]).get(index).cloned()
                    }
                    "If" => {
                        let Value::Sequence(parts) = arg else {
                            panic!("If takes [condition, then, else]");
                        };
                        let chosen = if self.condition(&scalar(&parts[0])) {
                            &parts[1]
                        } else {
                            &parts[2]
                        };
                        self.resolve(chosen)
                    }
                    other => {
                        panic!("intrinsic function {other} is not supported by the fence tests")
                    }
                }
            }
            other => Some(other.clone()),
        }
    }

    fn reference(&self, name: &str) -> Option<Value> {
        if name == "AWS::NoValue" {
            return None;
        }
        if let Some(value) = self.params.get(name) {
            return Some(value.clone());
        }
        Some(Value::String(
            self.refs
                .get(name)
                .cloned()
                .unwrap_or_else(|| format!("{}-{name}", self.stack())),
        ))
    }

    fn attribute(&self, name: &str) -> String {
        if let Some(value) = self.refs.get(name) {
            return value.clone();
        }
        // A function role SAM makes (<Function>Role.Arn) and the like: named after the resource.
        let (resource, attribute) = name.split_once('.').unwrap_or((name, "Arn"));
        if attribute == "Arn" && resource.ends_with("Role") {
            return format!("arn:aws:iam::{ACCOUNT}:role/{}-{resource}", self.stack());
        }
        if attribute == "Arn" && resource.ends_with("Function") {
            let region = scalar(&self.params["AWS::Region"]);
            return format!(
                "arn:aws:lambda:{region}:{ACCOUNT}:function:{}-{resource}",
                self.stack()
            );
        }
        format!("{}-{resource}.{attribute}", self.stack())
    }

    fn stack(&self) -> String {
        scalar(&self.params["AWS::StackName"])
    }

    fn substitute(&self, text: &str, bound: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').expect("unterminated ${ in !Sub");
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = bound.get(name) {
                out.push_str(value);
            } else if name.contains('.') && !name.starts_with("AWS::") {
                out.push_str(&self.attribute(name));
            } else {
                let value = self
                    .reference(name)
                    .unwrap_or_else(|| panic!("!Sub of AWS::NoValue"));
                assert!(
                    !matches!(value, Value::Sequence(_)),
                    "!Sub cannot take the list parameter {name}"
                );
                out.push_str(&scalar(&value));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The account of [`Env`]'s deployments.
pub const ACCOUNT: &str = "123456789012";

/// A resolved scalar as text.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// A resolved scalar or list as texts.
fn texts(value: Option<&Value>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        Some(other) => vec![scalar(other)],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// One resolved statement.
#[derive(Debug, Clone)]
pub struct Stmt {
    /// `<function>: <Sid>`.
    pub place: String,
    effect: Effect,
    actions: Vec<String>,
    not_actions: Vec<String>,
    resources: Vec<String>,
    not_resources: Option<Vec<String>>,
    /// (operator, key, values)
    conditions: Vec<(String, String, Vec<String>)>,
}

impl Stmt {
    fn parse(function: &str, body: &Value) -> Stmt {
        let sid = body.get("Sid").map(scalar).unwrap_or_default();
        let effect = match body.get("Effect").map(scalar).as_deref() {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => panic!("{function}: statement {sid}: Effect {other:?}"),
        };
        let mut conditions = Vec::new();
        if let Some(Value::Mapping(operators)) = body.get("Condition") {
            for (operator, keys) in operators {
                let Value::Mapping(keys) = keys else {
                    panic!("{function}: statement {sid}: condition {operator:?} is not a mapping");
                };
                for (key, values) in keys {
                    conditions.push((scalar(operator), scalar(key), texts(Some(values))));
                }
            }
        }
        Stmt {
            place: format!("{function}: {sid}"),
            effect,
            actions: texts(body.get("Action")),
            not_actions: texts(body.get("NotAction")),
            resources: texts(body.get("Resource")),
            not_resources: body.get("NotResource").map(|r| texts(Some(r))),
            conditions,
        }
    }

    fn covers(&self, action: &str) -> bool {
        if !self.not_actions.is_empty() {
            return !self.not_actions.iter().any(|p| glob(p, action, false));
        }
        self.actions.iter().any(|p| glob(p, action, false))
    }

    fn names(&self, arn: &str) -> bool {
        match &self.not_resources {
            Some(not) => !not.iter().any(|p| glob(p, arn, true)),
            None => self.resources.iter().any(|p| glob(p, arn, true)),
        }
    }

    fn holds(&self, context: &Context) -> bool {
        self.conditions.iter().all(|(operator, key, values)| {
            condition(&self.place, operator, lookup(context, key), values)
        })
    }

    fn applies(&self, action: &str, arn: &str, context: &Context) -> bool {
        self.covers(action) && self.names(arn) && self.holds(context)
    }
}

/// Request context keys (lower case) and their values.
type Context = BTreeMap<String, Vec<String>>;

/// The values of the context key `key` (condition keys compare case-insensitively).
fn lookup<'c>(context: &'c Context, key: &str) -> Option<&'c Vec<String>> {
    context.get(&key.to_ascii_lowercase())
}

/// Whether the condition `operator` `key`: `wanted` holds when the request has `actual` for the key.
fn condition(place: &str, operator: &str, actual: Option<&Vec<String>>, wanted: &[String]) -> bool {
    let (qualifier, test) = match operator.split_once(':') {
        Some((q, t)) => (Some(q), t),
        None => (None, operator),
    };
    let matches = |value: &str, pattern: &str| -> bool {
        match test {
            "StringEquals" | "StringNotEquals" | "ArnEquals" | "Bool" => value == pattern,
            "StringLike" | "ArnLike" => glob(pattern, value, true),
            "Null" => unreachable!(),
            other => {
                panic!("{place}: condition operator {other} is not supported by the fence tests")
            }
        }
    };
    let negated = test == "StringNotEquals";
    // A value meets the operator: equal to (like) one of the wanted values, or for a negated operator to none.
    let meets = |value: &str| {
        let any = wanted.iter().any(|w| matches(value, w));
        if negated { !any } else { any }
    };
    if test == "Null" {
        assert!(qualifier.is_none(), "{place}: a qualified Null");
        let absent = actual.is_none_or(Vec::is_empty);
        return wanted.iter().all(|w| (w == "true") == absent);
    }
    match qualifier {
        Some("ForAllValues") => actual.is_none_or(|values| values.iter().all(|v| meets(v))),
        Some("ForAnyValue") => actual.is_some_and(|values| values.iter().any(|v| meets(v))),
        Some(other) => {
            panic!("{place}: condition qualifier {other} is not supported by the fence tests")
        }
        None => match actual {
            // A missing key: the values do not match, and a negated operator holds.
            None => negated,
            Some(values) => values.iter().all(|v| meets(v)),
        },
    }
}

/// Whether `pattern` (`*` and `?` wildcards) matches `text`; actions compare case-insensitively, resources and
/// condition values exactly.
pub fn glob(pattern: &str, text: &str, case_sensitive: bool) -> bool {
    fn go(p: &[u8], t: &[u8], cs: bool) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t, cs) || (!t.is_empty() && go(p, &t[1..], cs)),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..], cs),
            (Some(a), Some(b)) if (cs && a == b) || (!cs && a.eq_ignore_ascii_case(b)) => {
                go(&p[1..], &t[1..], cs)
            }
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes(), case_sensitive)
}

/// A resource a request involves, with its tags.
#[derive(Debug, Clone)]
pub struct Resource {
    arn: String,
    tags: Vec<(String, String)>,
}

/// One API request as IAM authorizes it: an action on one or more resources, in a region, with request keys.
#[derive(Debug, Clone)]
pub struct Request {
    action: String,
    region: String,
    resources: Vec<Resource>,
    context: Context,
}

impl Request {
    /// `action` sent to `region` (global services: us-east-1).
    pub fn new(action: &str, region: &str) -> Self {
        Request {
            action: action.to_string(),
            region: region.to_string(),
            resources: Vec::new(),
            context: Context::new(),
        }
    }

    /// The request involves `arn`, which carries `tags`.
    pub fn on(mut self, arn: &str, tags: &[(&str, &str)]) -> Self {
        self.resources.push(Resource {
            arn: arn.to_string(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        self
    }

    /// The request sets `tags` (aws:RequestTag/<key> and aws:TagKeys).
    pub fn tagging(mut self, tags: &[(&str, &str)]) -> Self {
        for (k, v) in tags {
            self.context.insert(
                format!("aws:requesttag/{k}").to_ascii_lowercase(),
                vec![v.to_string()],
            );
        }
        self.context.insert(
            "aws:tagkeys".into(),
            tags.iter().map(|(k, _)| k.to_string()).collect(),
        );
        self
    }

    /// The request context key `key` has `values`.
    pub fn with(mut self, key: &str, values: &[&str]) -> Self {
        self.context.insert(
            key.to_ascii_lowercase(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        self
    }

    fn context_for(&self, resource: &Resource) -> Context {
        let mut context = self.context.clone();
        context.insert("aws:requestedregion".into(), vec![self.region.clone()]);
        for (k, v) in &resource.tags {
            context.insert(
                format!("aws:resourcetag/{k}").to_ascii_lowercase(),
                vec![v.clone()],
            );
        }
        context
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {} on", self.action, self.region)?;
        for r in &self.resources {
            write!(f, " {} {:?}", r.arn, r.tags)?;
        }
        if !self.context.is_empty() {
            write!(f, " with {:?}", self.context)?;
        }
        Ok(())
    }
}

/// How IAM decides a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// An explicit Deny (the statement) of one of its resources.
    Denied(String),
    /// No Allow for this resource.
    NotAllowed(String),
}

/// A function role's resolved statements.
pub struct Role {
    pub id: String,
    pub statements: Vec<Stmt>,
}

impl Role {
    /// IAM's decision on `request` (this role's identity policies only).
    pub fn decide(&self, request: &Request) -> Decision {
        assert!(
            !request.resources.is_empty(),
            "{request}: names no resource"
        );
        if let Some(deny) = self.fence(request) {
            return Decision::Denied(deny);
        }
        self.decide_by_allows(request)
    }

    /// The decision of the Allow statements alone, as if the role had no Deny: whether they are least privilege
    /// by themselves.
    pub fn decide_by_allows(&self, request: &Request) -> Decision {
        for resource in &request.resources {
            let context = request.context_for(resource);
            if !self.statements.iter().any(|s| {
                s.effect == Effect::Allow && s.applies(&request.action, &resource.arn, &context)
            }) {
                return Decision::NotAllowed(resource.arn.clone());
            }
        }
        Decision::Allowed
    }

    /// Whether any Allow statement names `action` (whatever its resources and conditions).
    pub fn allows_any(&self, action: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.covers(action))
    }

    /// The Deny statement that refuses `request` whatever the Allows say (a too-broad Allow added later), if any.
    pub fn fence(&self, request: &Request) -> Option<String> {
        request.resources.iter().find_map(|resource| {
            let context = request.context_for(resource);
            self.statements
                .iter()
                .find(|s| {
                    s.effect == Effect::Deny && s.applies(&request.action, &resource.arn, &context)
                })
                .map(|s| s.place.clone())
        })
    }

    /// Assert that `request` is allowed.
    #[track_caller]
    pub fn allows(&self, request: &Request) {
        let decision = self.decide(request);
        assert_eq!(
            decision,
            Decision::Allowed,
            "{} must be allowed: {request}",
            self.id
        );
    }

    /// Assert that `request` is refused, and by the Allows alone too (they grant no more than needed, whatever
    /// the Denies add).
    #[track_caller]
    pub fn refuses(&self, request: &Request) {
        let decision = self.decide(request);
        assert_ne!(
            decision,
            Decision::Allowed,
            "{} must refuse {request}",
            self.id
        );
        let by_allows = self.decide_by_allows(request);
        assert_ne!(
            by_allows,
            Decision::Allowed,
            "{}: an Allow permits {request} (only a Deny refuses it)",
            self.id
        );
    }

    /// Assert that `request` is refused by an explicit Deny, so that no Allow can ever permit it.
    #[track_caller]
    pub fn fences(&self, request: &Request) {
        assert!(
            self.fence(request).is_some(),
            "{}: no explicit Deny refuses {request} (an Allow added later could permit it)",
            self.id
        );
    }
}
