//! SNS topic ARNs (`arn:PARTITION:sns:REGION:ACCOUNT:NAME`): the one parser behind a
//! connection's `topic_arns` and canary topic, the `TopicArn` of every envelope, and the
//! canary's publish target.

/// A topic ARN of the shape `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicArn {
    text: String,
    /// Byte range of the region within `text`.
    region_start: usize,
    region_end: usize,
}

/// Partitions whose SNS endpoints pushgate knows.
const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// Longest topic name SNS allows (a FIFO topic's `.fifo` suffix included).
const MAX_TOPIC_NAME_LEN: usize = 256;

impl TopicArn {
    pub fn parse(text: &str) -> Option<TopicArn> {
        let parts: Vec<&str> = text.split(':').collect();
        let [arn, partition, service, region, account, name] = parts.as_slice() else { return None };
        let well_formed = *arn == "arn"
            && PARTITIONS.contains(partition)
            && *service == "sns"
            && is_region(region)
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && is_topic_name(name);
        if !well_formed {
            return None;
        }
        let region_start = arn.len() + partition.len() + service.len() + 3;
        Some(TopicArn { text: text.to_string(), region_start, region_end: region_start + region.len() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The region, e.g. `us-east-1`: the signing certificate must come from this region's endpoint.
    pub fn region(&self) -> &str {
        &self.text[self.region_start..self.region_end]
    }

    /// The 12-digit account that owns the topic.
    pub fn account(&self) -> &str {
        let after_region = &self.text[self.region_end + 1..];
        &after_region[..12]
    }
}

/// A region name is a DNS label: it becomes part of the endpoint host name.
fn is_region(region: &str) -> bool {
    (1..=32).contains(&region.len())
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && !region.ends_with('-')
}

fn is_topic_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !base.is_empty() && name.len() <= MAX_TOPIC_NAME_LEN && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::TopicArn;

    #[test]
    fn parts_are_read_from_a_well_formed_arn() {
        let arn = TopicArn::parse("arn:aws-cn:sns:cn-north-1:123456789012:a_b-c.fifo").unwrap();
        assert_eq!(
            (arn.region(), arn.account(), arn.as_str()),
            ("cn-north-1", "123456789012", "arn:aws-cn:sns:cn-north-1:123456789012:a_b-c.fifo")
        );
    }

    #[test]
    fn other_services_partitions_accounts_and_names_are_refused() {
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws-iso:sns:us-east-1:123456789012:t",
            "arn:aws:sns:us-east-1:12345:t",
            "arn:aws:sns:US-EAST-1:123456789012:t",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:a/b",
            "arn:aws:sns:us-east-1:123456789012:t:extra",
        ] {
            assert!(TopicArn::parse(bad).is_none(), "{bad}");
        }
    }
}
