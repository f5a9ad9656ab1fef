//! The retention role's continuation fence: it may invoke its own function (a run that would outlast its timeout
//! hands the rest to a new invocation of itself), and no other function, nor the same name in another stack.

use super::iam::{ACCOUNT, Env, Request};
use super::{TEMPLATE, load};

const STACK: &str = "lifeboat";
const REGION: &str = "us-east-2";

fn function(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}")
}

#[test]
fn retention_continues_only_itself() {
    let template = load(TEMPLATE);
    let mut env = Env::new(&template, STACK, REGION);
    env.set("DrRegions", &["us-west-2"]);
    let role = env.role("RetentionFunction");
    let invoke = |arn: &str| Request::new("lambda:InvokeFunction", REGION).on(arn, &[]);
    role.allows(&invoke(&function(REGION, "lifeboat-retention")));
    role.refuses(&invoke(&function(REGION, "lifeboat-copy")));
    role.refuses(&invoke(&function(REGION, "lifeboat-failover")));
    role.refuses(&invoke(&function(REGION, "other-stack-retention")));
    role.refuses(&invoke(&function("us-west-2", "lifeboat-retention")));
    // No other function's role may invoke functions at all.
    for other in [
        "SnapshotFunction",
        "CopyFunction",
        "VerifyFunction",
        "MonitorFunction",
        "RestoreFunction",
        "FailoverFunction",
    ] {
        env.role(other)
            .refuses(&invoke(&function(REGION, "lifeboat-retention")));
    }
}
