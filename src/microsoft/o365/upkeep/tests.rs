use super::*;
use crate::microsoft::o365::manage::Webhook;

const HERE: &str = "https://p.example/push/o365-activity/1";

fn held(content_type: &str, status: &str, webhook: Option<(&str, &str)>) -> ContentSubscription {
    ContentSubscription {
        content_type: content_type.into(),
        status: status.into(),
        webhook: webhook.map(|(status, address)| Webhook { status: status.into(), address: address.into(), expiration: None }),
    }
}

fn types(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn subscriptions_not_started_with_these_settings_are_all_started() {
    let asked = types(&["Audit.Exchange", "Audit.General"]);
    let plan = decide(&[], &asked, HERE, false);
    assert_eq!(plan, Plan { start: asked.clone(), ..Plan::default() }, "nothing held: not a failure");
    // Held already, even enabled and pushing here: started again, which applies the
    // connection's authId; and one no longer asked for that pushes here is stopped.
    let list = [
        held("Audit.Exchange", "enabled", Some(("enabled", HERE))),
        held("Audit.SharePoint", "enabled", Some(("enabled", HERE))),
        held("DLP.All", "enabled", Some(("enabled", "https://elsewhere.example/hook"))),
        held("Audit.AzureActiveDirectory", "disabled", Some(("disabled", HERE))),
    ];
    let plan = decide(&list, &asked, HERE, false);
    assert_eq!(plan, Plan { start: asked, stop: types(&["Audit.SharePoint"]), failed: vec![] });
}

#[test]
fn started_subscriptions_that_match_need_nothing() {
    let list = [held("Audit.Exchange", "enabled", Some(("enabled", HERE))), held("audit.general", "Enabled", Some(("Enabled", HERE)))];
    assert_eq!(decide(&list, &types(&["Audit.Exchange", "Audit.General"]), HERE, true), Plan::default());
    let other = held("Audit.SharePoint", "enabled", Some(("enabled", "https://elsewhere.example")));
    assert_eq!(decide(&[list[0].clone(), other], &types(&["Audit.Exchange"]), HERE, true), Plan::default(), "another's is not ours");
}

#[test]
fn each_difference_of_a_started_subscription_fails_validation_and_restarts_it() {
    let cases = [
        (vec![], "it is not subscribed"),
        (vec![held("Audit.Exchange", "disabled", Some(("enabled", HERE)))], "its subscription is \"disabled\""),
        (vec![held("Audit.Exchange", "enabled", None)], "its subscription has no webhook"),
        (vec![held("Audit.Exchange", "enabled", Some(("disabled", HERE)))], "its webhook is \"disabled\""),
        (vec![held("Audit.Exchange", "enabled", Some(("expired", HERE)))], "its webhook is \"expired\""),
        (
            vec![held("Audit.Exchange", "enabled", Some(("enabled", "https://elsewhere.example/hook")))],
            "its webhook address is \"https://elsewhere.example/hook\", not \"https://p.example/push/o365-activity/1\"",
        ),
    ];
    for (list, why) in cases {
        let plan = decide(&list, &types(&["Audit.Exchange"]), HERE, true);
        assert_eq!(plan.start, types(&["Audit.Exchange"]), "{why}");
        assert_eq!(plan.failed, [format!("Audit.Exchange: {why}")]);
        assert!(plan.stop.is_empty());
    }
}

#[test]
fn only_the_failing_content_types_are_restarted() {
    let list = [held("Audit.Exchange", "enabled", Some(("enabled", HERE))), held("Audit.General", "enabled", Some(("disabled", HERE)))];
    let plan = decide(&list, &types(&["Audit.Exchange", "Audit.General", "DLP.All"]), HERE, true);
    assert_eq!(plan.start, types(&["Audit.General", "DLP.All"]));
    assert_eq!(plan.failed, ["Audit.General: its webhook is \"disabled\"", "DLP.All: it is not subscribed"]);
}
